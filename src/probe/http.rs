//! An HTTP/1.0 check: one request, the status line must be 2xx (a redirect
//! is a failure, never followed), the body must match the expectation.

use super::{wire, Expect, ProbeError};
use crate::ocf::Deadline;
use std::net::SocketAddr;

pub fn request_bytes(method: &str, path: &str, host: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: haven-check\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

/// Split a response into status code, status line and body.
pub fn parse(raw: &[u8]) -> Option<(u16, String, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = match text.split_once("\r\n\r\n") {
        Some((h, b)) => (h.to_string(), b.to_string()),
        None => match text.split_once("\n\n") {
            Some((h, b)) => (h.to_string(), b.to_string()),
            None => (text.to_string(), String::new()),
        },
    };
    let line = head.lines().next()?.trim_end().to_string();
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    Some((status, line, body))
}

pub fn check(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: Option<&str>,
    expect: &Expect,
    d: &Deadline,
) -> Result<(), ProbeError> {
    let host = host.map(str::to_string).unwrap_or_else(|| match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    });
    let mut s = wire::connect(addr, d)?;
    wire::write_all(&mut s, addr, &request_bytes(method, path, &host), d)?;
    // HTTP/1.0 with Connection: close: the server ends the answer.
    let raw = wire::read_until(&mut s, addr, d, |_| false)?;
    judge(addr, &raw, expect)
}

/// A 2xx answer whose body matches: healthy. Redirects are failures.
pub fn judge(addr: SocketAddr, raw: &[u8], expect: &Expect) -> Result<(), ProbeError> {
    let Some((status, line, body)) = parse(raw) else {
        let first = String::from_utf8_lossy(raw).lines().next().unwrap_or_default().to_string();
        return Err(ProbeError::NotHttp { addr, line: first });
    };
    if !(200..300).contains(&status) {
        return Err(ProbeError::HttpStatus { addr, status, line });
    }
    if !expect.matches(&body) {
        return Err(ProbeError::Unexpected { addr, expected: expect.describe() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_responses() {
        let (s, l, b) = parse(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstill alive\n").unwrap();
        assert_eq!((s, l.as_str(), b.as_str()), (200, "HTTP/1.1 200 OK", "still alive\n"));
        assert_eq!(parse(b"HTTP/1.0 302 Found\r\nLocation: /x\r\n\r\n").map(|r| r.0), Some(302));
        assert!(parse(b"SSH-2.0-OpenSSH\r\n").is_none());
    }

    #[test]
    fn request_is_http_1_0_with_host() {
        let r = String::from_utf8(request_bytes("GET", "/test.html", "www.example.org")).unwrap();
        assert!(r.starts_with("GET /test.html HTTP/1.0\r\nHost: www.example.org\r\n"));
        assert!(r.ends_with("\r\n\r\n"));
    }
}
