//! Bounded socket I/O for probes: connect, write, and read with the time
//! left on a deadline, never more than MAX_RESPONSE bytes.

use super::{ProbeError, MAX_RESPONSE};
use crate::ocf::Deadline;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

fn timeout(addr: SocketAddr) -> ProbeError {
    ProbeError::Timeout { addr }
}

fn left(addr: SocketAddr, d: &Deadline) -> Result<Duration, ProbeError> {
    let l = d.remaining();
    if l.is_zero() {
        Err(timeout(addr))
    } else {
        Ok(l)
    }
}

pub fn connect(addr: SocketAddr, d: &Deadline) -> Result<TcpStream, ProbeError> {
    let s = TcpStream::connect_timeout(&addr, left(addr, d)?).map_err(|source| match source.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => timeout(addr),
        _ => ProbeError::Connect { addr, source },
    })?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

pub fn write_all(s: &mut TcpStream, addr: SocketAddr, buf: &[u8], d: &Deadline) -> Result<(), ProbeError> {
    s.set_write_timeout(Some(left(addr, d)?)).map_err(|source| ProbeError::Io { addr, op: "set timeout", source })?;
    s.write_all(buf).map_err(|source| match source.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => timeout(addr),
        _ => ProbeError::Io { addr, op: "send", source },
    })
}

/// Read until `done(buffer)` says enough, EOF, the limit or the deadline.
pub fn read_until(
    s: &mut TcpStream,
    addr: SocketAddr,
    d: &Deadline,
    done: impl Fn(&[u8]) -> bool,
) -> Result<Vec<u8>, ProbeError> {
    let mut out = Vec::with_capacity(4096);
    let mut buf = [0u8; 8192];
    while out.len() < MAX_RESPONSE && !done(&out) {
        s.set_read_timeout(Some(left(addr, d)?)).map_err(|source| ProbeError::Io {
            addr,
            op: "set timeout",
            source,
        })?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n.min(MAX_RESPONSE - out.len())]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
                if out.is_empty() {
                    return Err(timeout(addr));
                }
                break;
            }
            Err(source) => return Err(ProbeError::Io { addr, op: "receive", source }),
        }
    }
    Ok(out)
}

/// The first line the server sends.
pub fn read_line(s: &mut TcpStream, addr: SocketAddr, d: &Deadline) -> Result<String, ProbeError> {
    let raw = read_until(s, addr, d, |b| b.contains(&b'\n'))?;
    let text = String::from_utf8_lossy(&raw);
    Ok(text.lines().next().unwrap_or_default().trim_end().to_string())
}

/// Whatever arrives first (one read's worth, or up to EOF for short answers).
pub fn read_some(s: &mut TcpStream, addr: SocketAddr, d: &Deadline) -> Result<Vec<u8>, ProbeError> {
    read_until(s, addr, d, |b| !b.is_empty())
}
