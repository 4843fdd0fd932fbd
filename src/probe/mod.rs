//! Health probes, shared by the director's real-server checks and the
//! instance agent's service checks: TCP connect, an HTTP request with an
//! expected answer, the greeting of SMTP/POP3/IMAP/FTP servers, a raw
//! request/expect exchange, and an external command. Each is synchronous,
//! bounded by a timeout, and reads at most [`MAX_RESPONSE`] bytes.

mod conn;
pub mod digest;
pub mod dns;
pub mod http;
pub mod ldap;
mod ping;
#[cfg(test)]
mod props;
pub mod radius;
pub mod sql;
pub mod text;
mod tls;
mod wire;

use crate::exec;
use crate::ocf::Deadline;
use std::net::SocketAddr;
use std::time::Duration;

/// The most a probe reads of an answer: enough for a status line, headers
/// and a test page; a server streaming more cannot hold the prober.
pub const MAX_RESPONSE: usize = 64 * 1024;

/// What the answer must contain.
#[derive(Clone, Debug)]
pub enum Expect {
    /// Anything (a completed exchange is enough).
    Any,
    /// A substring of the answer (of the body, for HTTP).
    Text(String),
    /// A regular expression matched against the answer (the body, for HTTP).
    Pattern(regex::Regex),
}

impl Expect {
    /// ldirectord's `receive` is a regular expression; fall back to a plain
    /// substring when it is not a valid one.
    pub fn from_receive(s: &str) -> Expect {
        if s.is_empty() {
            return Expect::Any;
        }
        match regex::Regex::new(s) {
            Ok(r) => Expect::Pattern(r),
            Err(_) => Expect::Text(s.to_string()),
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        match self {
            Expect::Any => true,
            Expect::Text(t) => text.contains(t.as_str()),
            Expect::Pattern(r) => r.is_match(text),
        }
    }

    fn describe(&self) -> String {
        match self {
            Expect::Any => "anything".into(),
            Expect::Text(t) => format!("{t:?}"),
            Expect::Pattern(r) => format!("/{}/", r.as_str()),
        }
    }
}

/// The services of ldirectord's negotiate checks beyond HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Smtp,
    Pop,
    Imap,
    Nntp,
    Ftp,
    Ldap,
    Mysql,
    Pgsql,
    Dns,
    Radius,
    Sip,
}

/// One negotiate check and what it needs from the configuration.
#[derive(Clone, Debug)]
pub struct Negotiate {
    pub service: Service,
    /// TLS from the first byte (pops, imaps, ldaps).
    pub tls: bool,
    /// Over UDP (dns, sip on a UDP service; radius always).
    pub udp: bool,
    /// ldirectord's request without its leading '/': a file (ftp), a base
    /// DN (ldap), a query (mysql, pgsql), a name (dns).
    pub request: String,
    pub expect: Expect,
    pub login: Option<String>,
    pub passwd: Option<String>,
    pub database: Option<String>,
    pub secret: Option<String>,
}

impl Negotiate {
    fn run(&self, addr: SocketAddr, d: &Deadline) -> Result<(), ProbeError> {
        let login = self.login.as_deref().map(|u| (u, self.passwd.as_deref().unwrap_or("")));
        let sql = || sql::Login {
            user: self.login.as_deref().unwrap_or(""),
            password: self.passwd.as_deref().unwrap_or(""),
            database: self.database.as_deref().unwrap_or(""),
            query: &self.request,
        };
        match self.service {
            Service::Smtp => text::smtp(addr, d),
            Service::Pop => text::pop(addr, self.tls, login, d),
            Service::Imap => text::imap(addr, self.tls, login, d),
            Service::Nntp => text::nntp(addr, d),
            Service::Ftp => {
                let (u, p) = login.unwrap_or(("anonymous", "haven@localhost"));
                text::ftp(addr, u, p, &self.request, &self.expect, d)
            }
            Service::Sip => text::sip(addr, self.login.as_deref().unwrap_or("haven@localhost"), self.udp, d),
            Service::Ldap => ldap::check(addr, self.tls, login, &self.request, &self.expect, d),
            Service::Mysql => sql::mysql(addr, &sql(), d),
            Service::Pgsql => sql::pgsql(addr, &sql(), d),
            Service::Dns => dns::check(addr, &self.request, &self.expect, !self.udp, d),
            Service::Radius => {
                let (u, p) = login.unwrap_or(("", ""));
                radius::check(addr, u, p, self.secret.as_deref().unwrap_or(""), d)
            }
        }
    }
}

/// Greeting-based services: a server that is up says hello first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Greeting {
    Smtp,
    Pop,
    Imap,
    Ftp,
}

impl Greeting {
    fn ok(self, line: &str) -> bool {
        match self {
            Greeting::Smtp => line.starts_with("220"),
            Greeting::Pop => line.starts_with("+OK"),
            Greeting::Imap => line.starts_with("* OK") || line.starts_with("* PREAUTH"),
            Greeting::Ftp => line.starts_with("220"),
        }
    }
    fn quit(self) -> &'static [u8] {
        match self {
            Greeting::Smtp | Greeting::Ftp => b"QUIT\r\n",
            Greeting::Pop => b"QUIT\r\n",
            Greeting::Imap => b"a1 LOGOUT\r\n",
        }
    }
}

#[derive(Clone, Debug)]
pub enum Probe {
    Connect,
    Http {
        method: String,
        path: String,
        host: Option<String>,
        expect: Expect,
    },
    /// HTTP over TLS; `verify` checks the certificate against the system
    /// CA store and the host name (SNI is the host, or the address).
    Https {
        method: String,
        path: String,
        host: Option<String>,
        expect: Expect,
        verify: bool,
    },
    /// ICMP echo.
    Ping,
    Greeting {
        kind: Greeting,
    },
    /// Send `request` (may be empty) and expect `expect` in the answer.
    Exchange {
        request: Vec<u8>,
        expect: Expect,
    },
    /// A protocol exchange of ldirectord's negotiate checks.
    Negotiate(Box<Negotiate>),
    /// Run a command; exit code 0 means healthy. The target's address and
    /// port are appended as the last two arguments (ldirectord's convention).
    /// It runs as `user`, unprivileged, bounded (crate::privdrop::run_command).
    External {
        argv: Vec<String>,
        user: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("connect to {addr} failed: {source}")]
    Connect { addr: SocketAddr, source: std::io::Error },
    #[error("{addr}: {op} failed: {source}")]
    Io { addr: SocketAddr, op: &'static str, source: std::io::Error },
    #[error("{addr}: no answer before the check timeout")]
    Timeout { addr: SocketAddr },
    #[error("{addr}: HTTP status {status} ({line})")]
    HttpStatus { addr: SocketAddr, status: u16, line: String },
    #[error("{addr}: the answer is not HTTP: {line:?}")]
    NotHttp { addr: SocketAddr, line: String },
    #[error("{addr}: the answer does not contain {expected}")]
    Unexpected { addr: SocketAddr, expected: String },
    #[error("{addr}: greeting {line:?} is not a healthy {kind:?} server's")]
    Greeting { addr: SocketAddr, kind: Greeting, line: String },
    #[error("{addr}: {service} check failed: {why}")]
    Protocol { addr: SocketAddr, service: &'static str, why: String },
    #[error("{addr}: TLS: {why}")]
    Tls { addr: SocketAddr, why: String },
    #[error("check command failed for {addr}: {source}")]
    External { addr: SocketAddr, source: exec::ExecError },
}

impl Probe {
    /// Probe `addr` within `timeout`.
    pub fn run(&self, addr: SocketAddr, timeout: Duration) -> Result<(), ProbeError> {
        let deadline = Deadline::after(timeout);
        match self {
            Probe::Connect => wire::connect(addr, &deadline).map(|_| ()),
            Probe::Http { method, path, host, expect } => {
                http::check(addr, method, path, host.as_deref(), expect, &deadline)
            }
            Probe::Https { method, path, host, expect, verify } => {
                tls::check_https(addr, method, path, host.as_deref(), *verify, expect, &deadline)
            }
            Probe::Ping => ping::echo(addr, &deadline),
            Probe::Negotiate(n) => n.run(addr, &deadline),
            Probe::Greeting { kind } => {
                let mut s = wire::connect(addr, &deadline)?;
                let line = wire::read_line(&mut s, addr, &deadline)?;
                // Be polite: a mail server logs abrupt disconnects.
                let _ = wire::write_all(&mut s, addr, kind.quit(), &deadline);
                if kind.ok(&line) {
                    Ok(())
                } else {
                    Err(ProbeError::Greeting { addr, kind: *kind, line })
                }
            }
            Probe::Exchange { request, expect } => {
                let mut s = wire::connect(addr, &deadline)?;
                if !request.is_empty() {
                    wire::write_all(&mut s, addr, request, &deadline)?;
                }
                let answer = wire::read_some(&mut s, addr, &deadline)?;
                let text = String::from_utf8_lossy(&answer);
                if expect.matches(&text) {
                    Ok(())
                } else {
                    Err(ProbeError::Unexpected { addr, expected: expect.describe() })
                }
            }
            Probe::External { argv, user } => {
                let mut full: Vec<String> = argv.clone();
                full.push(addr.ip().to_string());
                full.push(addr.port().to_string());
                let args: Vec<&str> = full.iter().map(String::as_str).collect();
                crate::privdrop::run_command(&args, user, &deadline)
                    .map(|_| ())
                    .map_err(|source| ProbeError::External { addr, source })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::Instant;

    /// A one-shot server on 127.0.0.1 that answers each connection with
    /// `answer` (after reading the request when `read_first`).
    fn serve(answer: &'static [u8], read_first: bool) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten().take(4) {
                if read_first {
                    let mut buf = [0u8; 1024];
                    let _ = c.read(&mut buf);
                }
                let _ = c.write_all(answer);
            }
        });
        addr
    }

    const T: Duration = Duration::from_secs(2);

    #[test]
    fn connect_ok_and_refused() {
        assert!(Probe::Connect.run(serve(b"", false), T).is_ok());
        let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert!(matches!(Probe::Connect.run(closed, T), Err(ProbeError::Connect { .. })));
    }

    #[test]
    fn http_status_and_body() {
        let http = |expect: &str| Probe::Http {
            method: "GET".into(),
            path: "/test.html".into(),
            host: None,
            expect: Expect::from_receive(expect),
        };
        let ok = serve(b"HTTP/1.1 200 OK\r\n\r\nstill alive\n", true);
        assert!(http("still alive").run(ok, T).is_ok());
        assert!(http("^still").run(ok, T).is_ok());
        assert!(matches!(http("dead").run(ok, T), Err(ProbeError::Unexpected { .. })));
        let moved = serve(b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere/\r\n\r\n", true);
        assert!(matches!(http("").run(moved, T), Err(ProbeError::HttpStatus { status: 302, .. })));
        let junk = serve(b"SSH-2.0-x\r\n", true);
        assert!(matches!(http("").run(junk, T), Err(ProbeError::NotHttp { .. })));
    }

    #[test]
    fn greetings() {
        assert!(Probe::Greeting { kind: Greeting::Smtp }.run(serve(b"220 mail ESMTP\r\n", false), T).is_ok());
        assert!(Probe::Greeting { kind: Greeting::Pop }.run(serve(b"+OK ready\r\n", false), T).is_ok());
        assert!(Probe::Greeting { kind: Greeting::Imap }.run(serve(b"* OK IMAP4rev1\r\n", false), T).is_ok());
        let busy = serve(b"421 too busy\r\n", false);
        assert!(matches!(Probe::Greeting { kind: Greeting::Smtp }.run(busy, T), Err(ProbeError::Greeting { .. })));
    }

    #[test]
    fn silent_server_times_out_in_time() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let hold = std::thread::spawn(move || {
            let c = l.accept();
            std::thread::sleep(Duration::from_millis(800));
            drop(c);
        });
        let start = Instant::now();
        let e = Probe::Greeting { kind: Greeting::Smtp }.run(addr, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, ProbeError::Timeout { .. }), "{e}");
        assert!(start.elapsed() < Duration::from_millis(700));
        let _ = hold.join();
    }

    #[test]
    fn exchange_and_external() {
        let echo = serve(b"PONG\r\n", true);
        let p = Probe::Exchange { request: b"PING\r\n".to_vec(), expect: Expect::Text("PONG".into()) };
        assert!(p.run(echo, T).is_ok());
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert!(Probe::External { argv: vec!["true".into()], user: "nobody".into() }.run(addr, T).is_ok());
        assert!(Probe::External { argv: vec!["false".into()], user: "nobody".into() }.run(addr, T).is_err());
    }

    #[test]
    fn answers_are_bounded() {
        static BIG: [u8; 300_000] = [b'x'; 300_000];
        let big = serve(&BIG, true);
        let p = Probe::Exchange { request: b"x".to_vec(), expect: Expect::Any };
        assert!(p.run(big, T).is_ok());
        let mut s = std::net::TcpStream::connect(big).unwrap();
        s.write_all(b"x").unwrap();
        let got = wire::read_until(&mut s, big, &Deadline::after(T), |_| false).unwrap();
        assert_eq!(got.len(), MAX_RESPONSE);
    }
}
