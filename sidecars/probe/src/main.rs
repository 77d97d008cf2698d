//! `bottle-probe tcp <port>` | `bottle-probe http <port> <path>`: exit 0 when the sidecar's own
//! service answers on 127.0.0.1, 1 otherwise. It is copied into every sidecar by the launcher so
//! health checks work in images without a shell (such as `FROM scratch`).
//!
//! `bottle-probe self-test`: the isolation self-test, run in the agent as the agent user before
//! its command starts, while the launcher goes on provisioning it. The checks come in the
//! environment (`BOTTLE_SELF_TEST`, see [`bottle_probe::spec`]), the launcher's signals (files
//! placed, launch ready) on stdin; what each check saw goes to stdout, one line per check, and
//! the launcher judges it. Exit 0 when the checks ran, 2 when they could not be read.

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use bottle_probe::spec;

const TIMEOUT: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["tcp", port] => port_of(port).and_then(tcp),
        ["http", port, path] => port_of(port).and_then(|p| http(p, path)),
        ["self-test"] => return self_test(),
        _ => Err(
            "usage: bottle-probe tcp <port> | bottle-probe http <port> <path> | bottle-probe self-test"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bottle-probe: {e}");
            ExitCode::FAILURE
        }
    }
}

fn self_test() -> ExitCode {
    let text = std::env::var(spec::ENV).unwrap_or_default();
    match spec::Spec::parse(&text) {
        Ok(spec) => {
            let (send, signals) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    if let Some(signal) = spec::Signal::parse(&line) {
                        let _ = send.send(signal);
                    }
                }
                // The end of the input (the launcher closed it, or is gone) means every signal.
            });
            let (seen, timing) = bottle_probe::run::run(&spec, &signals);
            let mut out = std::io::stdout().lock();
            for seen in seen {
                let _ = writeln!(out, "{}", seen.line());
            }
            let _ = writeln!(out, "{}", timing.line());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bottle-probe self-test: {}: {e}", spec::ENV);
            ExitCode::from(2)
        }
    }
}

fn port_of(text: &str) -> Result<u16, String> {
    text.parse().map_err(|_| format!("`{text}` is not a port"))
}

fn connect(port: u16) -> Result<TcpStream, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("connect to port {port}: {e}"))
}

fn tcp(port: u16) -> Result<(), String> {
    connect(port).map(drop)
}

fn http(port: u16, path: &str) -> Result<(), String> {
    let mut stream = connect(port)?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| format!("read: {e}"))?;
    let status = std::str::from_utf8(&head[..n])
        .unwrap_or("")
        .split(' ')
        .nth(1)
        .unwrap_or("");
    if status.starts_with('2') {
        Ok(())
    } else {
        Err(format!("GET {path} answered `{status}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(reply: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(reply.as_bytes());
        });
        port
    }

    #[test]
    fn http_2xx_passes_and_5xx_fails() {
        assert!(http(serve_once("HTTP/1.1 200 OK\r\n\r\n"), "/healthz").is_ok());
        let err = http(serve_once("HTTP/1.1 503 Unavailable\r\n\r\n"), "/healthz").unwrap_err();
        assert!(err.contains("503"), "{err}");
    }

    #[test]
    fn tcp_fails_on_a_closed_port() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(tcp(port).is_err());
        assert!(port_of("x").is_err());
    }
}
