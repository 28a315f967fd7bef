//! The `fault-server` binary: the ports it reports (stdout, port files) and
//! its second listener.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::TIMEOUT;

/// The binary, running with its port files in a scratch directory: killed,
/// and the directory removed, when dropped (also by a failing assertion).
struct Running {
    child: Child,
    dir: PathBuf,
    /// The first line it printed.
    line: String,
}

impl Running {
    /// Starts the binary with `args(dir)` (`scratch` names the directory:
    /// unique per test, as tests run in parallel) and reads its first line.
    fn start(scratch: &str, args: impl FnOnce(&Path) -> Vec<OsString>) -> Running {
        let dir = std::env::temp_dir().join(format!("{scratch}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_fault-server"))
            .args(args(&dir))
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn fault-server");
        let mut running = Running {
            child,
            dir,
            line: String::new(),
        };
        let stdout = running.child.stdout.take().unwrap();
        BufReader::new(stdout)
            .read_line(&mut running.line)
            .expect("read the first line");
        running
    }

    /// The port in port file `name` of the scratch directory.
    fn port(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).expect("port file")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `raw` on a fresh connection to `port` and reads the answer to EOF.
fn exchange(port: &str, raw: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn the_binary_reports_its_port() {
    let running = Running::start("fault-server-test", |dir| {
        vec!["--port-file".into(), dir.join("port").into()]
    });
    let port = running.port("port");
    let probe = exchange(
        &port,
        "GET /files/none HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        running.line,
        format!("fault-server listening on http://127.0.0.1:{port}\n")
    );
    assert!(probe.starts_with("HTTP/1.1 404 Not Found\r\n"));
}

#[test]
fn the_binary_can_serve_a_second_port() {
    let running = Running::start("fault-server-test2", |dir| {
        let second_file = dir.join("second");
        vec![
            "--port-file".into(),
            dir.join("port").into(),
            format!("--second-port-file={}", second_file.display()).into(),
        ]
    });
    let (a, b) = (running.port("port"), running.port("second"));
    let created = exchange(
        &b,
        "POST /_admin/files/two?size=3 HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    let served = exchange(&a, "GET /files/two HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_ne!(a, b);
    assert_eq!(
        running.line,
        format!("fault-server listening on http://127.0.0.1:{a} and http://127.0.0.1:{b}\n")
    );
    assert!(created.starts_with("HTTP/1.1 200 OK\r\n"), "{created}");
    assert!(served.starts_with("HTTP/1.1 200 OK\r\n"), "{served}");
    assert!(served.contains("\r\nContent-Length: 3\r\n"), "{served}");
}
