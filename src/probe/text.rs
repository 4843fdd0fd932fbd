//! The line protocols of ldirectord's negotiate checks: SMTP/submission
//! (greeting and EHLO), POP3 and IMAP (greeting, login when configured,
//! TLS from the start for pops/imaps), NNTP (greeting), FTP (login and,
//! with a receive string, a passive-mode download of `request`) and SIP
//! (OPTIONS, 200 OK). The reply parsers are pure functions over untrusted
//! bytes.

use super::conn::{self, Conn};
use super::{Expect, ProbeError};
use crate::ocf::Deadline;
use std::net::SocketAddr;

/// An SMTP/FTP reply line: its code and whether it ends the reply
/// (`250 ok` ends it, `250-more` continues).
pub fn reply_code(line: &str) -> Option<(u16, bool)> {
    let b = line.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = line.get(..3)?.parse().ok()?;
    match b.get(3) {
        None | Some(b' ') => Some((code, true)),
        Some(b'-') => Some((code, false)),
        _ => None,
    }
}

/// POP3: `+OK`; IMAP: `* OK` / `* PREAUTH` (greeting) or `<tag> OK`.
pub fn pop_ok(line: &str) -> bool {
    line.starts_with("+OK")
}

pub fn imap_ok(line: &str, tag: &str) -> bool {
    let mut w = line.split_ascii_whitespace();
    w.next() == Some(tag) && matches!(w.next(), Some("OK") | Some("PREAUTH"))
}

/// NNTP: any 2xx greeting (200 posting allowed, 201 not).
pub fn nntp_ok(line: &str) -> bool {
    line.as_bytes().first() == Some(&b'2')
}

/// `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` -> the port.
pub fn pasv_port(line: &str) -> Option<u16> {
    let inside = line.get(line.find('(')? + 1..line.rfind(')')?)?;
    let nums: Vec<u16> = inside.split(',').map(|n| n.trim().parse::<u16>().ok()).collect::<Option<_>>()?;
    if nums.len() != 6 || nums.iter().any(|n| *n > 255) {
        return None;
    }
    Some(nums[4] * 256 + nums[5])
}

/// A SIP answer's status line is `SIP/2.0 200 ...`.
pub fn sip_ok(answer: &[u8]) -> bool {
    let first = answer.split(|b| *b == b'\n').next().unwrap_or_default();
    first.starts_with(b"SIP/2.0 200")
}

fn fail(addr: SocketAddr, service: &'static str, why: impl Into<String>) -> ProbeError {
    ProbeError::Protocol { addr, service, why: why.into() }
}

/// A whole SMTP/FTP reply (continuation lines read), bounded by the
/// connection's read cap.
fn reply(c: &mut Conn, d: &Deadline, service: &'static str) -> Result<(u16, String), ProbeError> {
    loop {
        let line = c.line(d)?;
        match reply_code(&line) {
            Some((code, true)) => return Ok((code, line)),
            Some((_, false)) => {}
            None => return Err(fail(c.addr, service, format!("not a reply: {line:?}"))),
        }
    }
}

fn expect_code(
    c: &mut Conn,
    d: &Deadline,
    service: &'static str,
    ok: impl Fn(u16) -> bool,
    step: &str,
) -> Result<(), ProbeError> {
    let (code, line) = reply(c, d, service)?;
    if ok(code) {
        Ok(())
    } else {
        Err(fail(c.addr, service, format!("{step}: {line:?}")))
    }
}

pub fn smtp(addr: SocketAddr, d: &Deadline) -> Result<(), ProbeError> {
    let mut c = Conn::open(addr, false, d)?;
    expect_code(&mut c, d, "smtp", |n| n == 220, "greeting")?;
    c.send(b"EHLO haven-check\r\n", d)?;
    expect_code(&mut c, d, "smtp", |n| n == 250, "EHLO")?;
    let _ = c.send(b"QUIT\r\n", d);
    Ok(())
}

pub fn pop(addr: SocketAddr, tls: bool, login: Option<(&str, &str)>, d: &Deadline) -> Result<(), ProbeError> {
    let mut c = Conn::open(addr, tls, d)?;
    let step = |c: &mut Conn, what: &str| -> Result<(), ProbeError> {
        let line = c.line(d)?;
        if pop_ok(&line) {
            Ok(())
        } else {
            Err(fail(c.addr, "pop", format!("{what}: {line:?}")))
        }
    };
    step(&mut c, "greeting")?;
    if let Some((user, pass)) = login {
        c.send(format!("USER {user}\r\n").as_bytes(), d)?;
        step(&mut c, "USER")?;
        c.send(format!("PASS {pass}\r\n").as_bytes(), d)?;
        step(&mut c, "PASS")?;
    }
    let _ = c.send(b"QUIT\r\n", d);
    Ok(())
}

/// IMAP quoted string (RFC 3501): backslash and quote escaped.
fn imap_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn imap(addr: SocketAddr, tls: bool, login: Option<(&str, &str)>, d: &Deadline) -> Result<(), ProbeError> {
    let mut c = Conn::open(addr, tls, d)?;
    let greeting = c.line(d)?;
    if !imap_ok(&greeting, "*") {
        return Err(fail(addr, "imap", format!("greeting: {greeting:?}")));
    }
    if let Some((user, pass)) = login {
        c.send(format!("a1 LOGIN {} {}\r\n", imap_quote(user), imap_quote(pass)).as_bytes(), d)?;
        loop {
            let line = c.line(d)?;
            if line.starts_with("a1 ") {
                if !imap_ok(&line, "a1") {
                    return Err(fail(addr, "imap", format!("LOGIN: {line:?}")));
                }
                break;
            }
        }
    }
    let _ = c.send(b"a2 LOGOUT\r\n", d);
    Ok(())
}

pub fn nntp(addr: SocketAddr, d: &Deadline) -> Result<(), ProbeError> {
    let mut c = Conn::open(addr, false, d)?;
    let line = c.line(d)?;
    let _ = c.send(b"QUIT\r\n", d);
    if nntp_ok(&line) {
        Ok(())
    } else {
        Err(fail(addr, "nntp", format!("greeting: {line:?}")))
    }
}

/// Log in; with something to expect, download `file` in passive mode and
/// match its content.
pub fn ftp(
    addr: SocketAddr,
    user: &str,
    pass: &str,
    file: &str,
    expect: &Expect,
    d: &Deadline,
) -> Result<(), ProbeError> {
    let mut c = Conn::open(addr, false, d)?;
    expect_code(&mut c, d, "ftp", |n| n == 220, "greeting")?;
    c.send(format!("USER {user}\r\n").as_bytes(), d)?;
    let (code, line) = reply(&mut c, d, "ftp")?;
    if code == 331 {
        c.send(format!("PASS {pass}\r\n").as_bytes(), d)?;
        expect_code(&mut c, d, "ftp", |n| n == 230, "PASS")?;
    } else if code != 230 {
        return Err(fail(addr, "ftp", format!("USER: {line:?}")));
    }
    if !matches!(expect, Expect::Any) {
        c.send(b"TYPE I\r\nPASV\r\n", d)?;
        expect_code(&mut c, d, "ftp", |n| n == 200, "TYPE I")?;
        let (code, line) = reply(&mut c, d, "ftp")?;
        let port = pasv_port(&line).filter(|_| code == 227);
        let port = port.ok_or_else(|| fail(addr, "ftp", format!("PASV: {line:?}")))?;
        // The data connection goes to the real server, whatever address
        // the server names.
        let mut data = Conn::open(SocketAddr::new(addr.ip(), port), false, d)?;
        c.send(format!("RETR {file}\r\n").as_bytes(), d)?;
        expect_code(&mut c, d, "ftp", |n| n == 150 || n == 125, "RETR")?;
        let body = data.until_closed(d)?;
        if !expect.matches(&String::from_utf8_lossy(&body)) {
            return Err(ProbeError::Unexpected { addr, expected: expect.describe() });
        }
    }
    let _ = c.send(b"QUIT\r\n", d);
    Ok(())
}

fn sip_request(user: &str, local: SocketAddr, transport: &str) -> Vec<u8> {
    let call: u64 =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |t| t.as_nanos() as u64);
    format!(
        "OPTIONS sip:{user} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bK{call:x}\r\n\
         Max-Forwards: 70\r\nTo: <sip:{user}>\r\nFrom: <sip:{user}>;tag={call:x}\r\nCall-ID: {call:x}@haven\r\n\
         CSeq: 1 OPTIONS\r\nContact: <sip:{user}>\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

pub fn sip(addr: SocketAddr, user: &str, udp: bool, d: &Deadline) -> Result<(), ProbeError> {
    let answer = if udp {
        let local = SocketAddr::new(addr.ip(), 5060);
        conn::udp_exchange(addr, &sip_request(user, local, "UDP"), d, |b| b.starts_with(b"SIP/2.0 "))?
    } else {
        let mut c = Conn::open(addr, false, d)?;
        c.send(&sip_request(user, addr, "TCP"), d)?;
        c.line(d)?.into_bytes()
    };
    if sip_ok(&answer) {
        Ok(())
    } else {
        let first = String::from_utf8_lossy(answer.split(|b| *b == b'\n').next().unwrap_or_default()).to_string();
        Err(fail(addr, "sip", format!("OPTIONS: {:?}", first.trim_end())))
    }
}
