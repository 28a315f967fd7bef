//! `fault-server [--port N] [--port-file PATH] [--second-port N]
//! [--second-port-file PATH]`: runs the fault-injecting range server on
//! 127.0.0.1 until killed. Test harnesses read the port(s) from the one stdout
//! line or from the port files. A second listener (for cross-origin tests)
//! serves the same files, logs and faults; its port file is written before the
//! first one, so a harness polling for the first finds both.

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

    const USAGE: &str = "usage: fault-server [--port N] [--port-file PATH] \
        [--second-port N] [--second-port-file PATH]\n\
        Serves on 127.0.0.1:N (default 0: a free port) until killed. With \
        --second-port or --second-port-file, also on a second port (default \
        0: a free port) sharing the same state.";

    struct Args {
        port: u16,
        port_file: Option<PathBuf>,
        second_port: Option<u16>,
        second_port_file: Option<PathBuf>,
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
        let second = args
            .second_port
            .or(args.second_port_file.as_ref().map(|_| 0));
        let ports: Vec<u16> = std::iter::once(args.port).chain(second).collect();
        let handle = match fault_server::start_with(&ports) {
            Ok(handle) => handle,
            Err(e) => {
                let wanted: Vec<String> = ports.iter().map(u16::to_string).collect();
                eprintln!(
                    "fault-server: cannot listen on 127.0.0.1 port(s) {}: {e}",
                    wanted.join(", ")
                );
                return ExitCode::FAILURE;
            }
        };
        let ports = handle.ports();
        // The second port first: a harness polling for the first file then
        // finds both.
        let files = [&args.second_port_file, &args.port_file];
        for (path, port) in files.into_iter().zip([ports.get(1), ports.first()]) {
            if let (Some(path), Some(&port)) = (path, port) {
                if let Err(e) = write_port_file(path, port) {
                    eprintln!("fault-server: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
        }
        let urls: Vec<String> = ports
            .iter()
            .map(|port| format!("http://127.0.0.1:{port}"))
            .collect();
        let mut stdout = io::stdout().lock();
        // A reader that went away must not stop the server.
        let _ = writeln!(stdout, "fault-server listening on {}", urls.join(" and "));
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
            second_port: None,
            second_port_file: None,
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
            let port = |v: String| v.parse().map_err(|_| format!("bad port: {v:?}"));
            match name.as_str() {
                "--port" => parsed.port = port(value()?)?,
                "--port-file" => parsed.port_file = Some(PathBuf::from(value()?)),
                "--second-port" => parsed.second_port = Some(port(value()?)?),
                "--second-port-file" => {
                    parsed.second_port_file = Some(PathBuf::from(value()?));
                }
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
