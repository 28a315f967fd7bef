//! `fault-server [--port N] [--port-file PATH]`: runs the fault-injecting range
//! server on 127.0.0.1 until killed. Test harnesses read the port from the one
//! stdout line or from the port file.

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    native::main()
}

/// The server needs sockets and threads; on wasm32 only the library is useful.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::fs;
    use std::io::{self, Write};
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;

    const USAGE: &str = "usage: fault-server [--port N] [--port-file PATH]\n\
        Serves on 127.0.0.1:N (default 0: a free port) until killed.";

    struct Args {
        port: u16,
        port_file: Option<PathBuf>,
    }

    pub fn main() -> ExitCode {
        let args = match parse_args(std::env::args().skip(1)) {
            Ok(Some(args)) => args,
            Ok(None) => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Err(msg) => {
                eprintln!("fault-server: {msg}\n{USAGE}");
                return ExitCode::from(2);
            }
        };
        let handle = match fault_server::start(args.port) {
            Ok(handle) => handle,
            Err(e) => {
                eprintln!(
                    "fault-server: cannot listen on 127.0.0.1:{}: {e}",
                    args.port
                );
                return ExitCode::FAILURE;
            }
        };
        let port = handle.port();
        if let Some(path) = &args.port_file {
            if let Err(e) = write_port_file(path, port) {
                eprintln!("fault-server: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        let mut stdout = io::stdout().lock();
        // A reader that went away must not stop the server.
        let _ = writeln!(stdout, "fault-server listening on http://127.0.0.1:{port}");
        let _ = stdout.flush();
        drop(stdout);
        handle.wait();
        ExitCode::SUCCESS
    }

    /// Ok(None) for `--help`.
    fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
        let mut parsed = Args {
            port: 0,
            port_file: None,
        };
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => {
                    (name.to_string(), Some(value.to_string()))
                }
                _ => (arg, None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or(format!("{name} needs a value"))
            };
            match name.as_str() {
                "--port" => {
                    let v = value()?;
                    parsed.port = v.parse().map_err(|_| format!("bad port: {v:?}"))?;
                }
                "--port-file" => parsed.port_file = Some(PathBuf::from(value()?)),
                "-h" | "--help" => return Ok(None),
                other => return Err(format!("unknown argument: {other}")),
            }
        }
        Ok(Some(parsed))
    }

    /// Writes a temporary file next to `path` and renames it into place, so a
    /// reader polling for `path` never sees it half written.
    fn write_port_file(path: &Path, port: u16) -> io::Result<()> {
        let file_name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
        let mut temp_name = file_name.to_os_string();
        temp_name.push(format!(".{}.tmp", std::process::id()));
        let temp = path.with_file_name(temp_name);
        fs::write(&temp, port.to_string())?;
        fs::rename(&temp, path).inspect_err(|_| {
            let _ = fs::remove_file(&temp);
        })
    }
}
