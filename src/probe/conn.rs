//! One connection of a protocol check, plain TCP, UDP or TLS, with every
//! read and write bounded by the check's deadline and reads capped at
//! MAX_RESPONSE bytes in total.

use super::{tls, ProbeError, MAX_RESPONSE};
use crate::ocf::Deadline;
use rustls::{ClientConnection, StreamOwned};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

enum Inner {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

pub struct Conn {
    inner: Inner,
    pub addr: SocketAddr,
    /// Bytes read so far (the cap is per connection).
    read_total: usize,
    /// Read but not yet consumed by read_line.
    pending: Vec<u8>,
}

fn left(addr: SocketAddr, d: &Deadline) -> Result<Duration, ProbeError> {
    let l = d.remaining();
    if l.is_zero() {
        Err(ProbeError::Timeout { addr })
    } else {
        Ok(l)
    }
}

impl Conn {
    /// Connect to `addr`; with `tls`, speak TLS from the first byte.
    pub fn open(addr: SocketAddr, use_tls: bool, d: &Deadline) -> Result<Conn, ProbeError> {
        let tcp = super::wire::connect(addr, d)?;
        let inner = if use_tls {
            Inner::Tls(Box::new(tls::wrap(addr, &addr.ip().to_string(), tcp)?))
        } else {
            Inner::Plain(tcp)
        };
        Ok(Conn { inner, addr, read_total: 0, pending: Vec::new() })
    }

    fn tcp(&self) -> &TcpStream {
        match &self.inner {
            Inner::Plain(t) => t,
            Inner::Tls(s) => &s.sock,
        }
    }

    fn io_err(&self, op: &'static str, e: std::io::Error) -> ProbeError {
        let addr = self.addr;
        match e.kind() {
            ErrorKind::TimedOut | ErrorKind::WouldBlock => ProbeError::Timeout { addr },
            ErrorKind::InvalidData if matches!(self.inner, Inner::Tls(_)) => {
                ProbeError::Tls { addr, why: e.to_string() }
            }
            _ => ProbeError::Io { addr, op, source: e },
        }
    }

    pub fn send(&mut self, buf: &[u8], d: &Deadline) -> Result<(), ProbeError> {
        let l = left(self.addr, d)?;
        let _ = self.tcp().set_write_timeout(Some(l));
        let _ = self.tcp().set_read_timeout(Some(l));
        let r = match &mut self.inner {
            Inner::Plain(t) => t.write_all(buf).and_then(|_| t.flush()),
            Inner::Tls(s) => s.write_all(buf).and_then(|_| s.flush()),
        };
        r.map_err(|e| self.io_err("send", e))
    }

    /// One read: Ok(0) at EOF. Never more than MAX_RESPONSE in total.
    fn read_once(&mut self, d: &Deadline) -> Result<usize, ProbeError> {
        if self.read_total >= MAX_RESPONSE {
            return Err(ProbeError::Io {
                addr: self.addr,
                op: "receive",
                source: std::io::Error::other("answer longer than the probe reads"),
            });
        }
        let l = left(self.addr, d)?;
        let _ = self.tcp().set_read_timeout(Some(l));
        let _ = self.tcp().set_write_timeout(Some(l));
        let mut buf = [0u8; 4096];
        let want = buf.len().min(MAX_RESPONSE - self.read_total);
        loop {
            let r = match &mut self.inner {
                Inner::Plain(t) => t.read(&mut buf[..want]),
                Inner::Tls(s) => s.read(&mut buf[..want]),
            };
            match r {
                Ok(n) => {
                    self.read_total += n;
                    self.pending.extend_from_slice(&buf[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(self.io_err("receive", e)),
            }
        }
    }

    /// The next line (without CR LF); EOF before a line is an error.
    pub fn line(&mut self, d: &Deadline) -> Result<String, ProbeError> {
        loop {
            if let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
                let rest = self.pending.split_off(i + 1);
                let line = std::mem::replace(&mut self.pending, rest);
                return Ok(String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string());
            }
            if self.read_once(d)? == 0 {
                return Err(self.io_err("receive", ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    /// Exactly `n` bytes (binary protocols).
    pub fn exact(&mut self, n: usize, d: &Deadline) -> Result<Vec<u8>, ProbeError> {
        while self.pending.len() < n {
            if self.read_once(d)? == 0 {
                return Err(self.io_err("receive", ErrorKind::UnexpectedEof.into()));
            }
        }
        let rest = self.pending.split_off(n);
        Ok(std::mem::replace(&mut self.pending, rest))
    }

    /// Everything until the server closes (bounded).
    pub fn until_closed(&mut self, d: &Deadline) -> Result<Vec<u8>, ProbeError> {
        while self.read_once(d)? > 0 {}
        Ok(std::mem::take(&mut self.pending))
    }
}

/// One datagram exchange: send `req`, return the first answer from `addr`
/// that `accept` takes (others are ignored) before the deadline.
pub fn udp_exchange(
    addr: SocketAddr,
    req: &[u8],
    d: &Deadline,
    accept: impl Fn(&[u8]) -> bool,
) -> Result<Vec<u8>, ProbeError> {
    let io = |op: &'static str| move |source: std::io::Error| ProbeError::Io { addr, op, source };
    let bind: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0".parse() } else { "[::]:0".parse() }
        .map_err(|_| io("bind")(ErrorKind::InvalidInput.into()))?;
    let s = UdpSocket::bind(bind).map_err(io("bind a UDP socket for"))?;
    s.connect(addr).map_err(io("connect a UDP socket to"))?;
    s.send(req).map_err(io("send"))?;
    let mut buf = vec![0u8; 4096];
    loop {
        let l = left(addr, d)?;
        s.set_read_timeout(Some(l)).map_err(io("set timeout"))?;
        match s.recv(&mut buf) {
            Ok(n) if accept(&buf[..n]) => return Ok(buf[..n].to_vec()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(ProbeError::Timeout { addr })
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Err(ProbeError::Connect { addr, source: e }),
            Err(e) => return Err(io("receive")(e)),
        }
    }
}
