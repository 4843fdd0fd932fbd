//! The lab's client: a namespace of its own on the switch. Requests are
//! made from a thread that entered it (setns affects that thread only), so
//! a measurement costs no fork.

use super::error::LabError;
use super::state::{self, CLIENT};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// One HTTP/1.0 GET / through `addr`: Ok(status line) when it answered.
fn get(addr: SocketAddr, timeout: Duration) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")?;
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf)?;
    let head = String::from_utf8_lossy(&buf[..n]);
    let line = head.lines().next().unwrap_or_default().to_string();
    if line.starts_with("HTTP/") {
        Ok(line)
    } else {
        Err(std::io::Error::other(format!("not an HTTP answer: {line:?}")))
    }
}

/// Run `f` on a thread inside the client's network namespace.
fn in_client<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, LabError> {
    let path = state::netns_path(CLIENT);
    let ns = std::fs::File::open(&path).map_err(LabError::io("open", &path))?;
    let h = std::thread::spawn(move || {
        // setns changes this thread only.
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
        Ok(f())
    });
    h.join()
        .map_err(|_| LabError::Refused("the client thread panicked".into()))?
        .map_err(LabError::io("enter the client namespace", path))
}

/// One request from the client.
pub fn request(addr: SocketAddr, timeout: Duration) -> Result<Result<String, String>, LabError> {
    in_client(move || get(addr, timeout).map_err(|e| e.to_string()))
}

/// Ask until an answer comes: the time from `since` to that answer, or
/// None when `limit` passed first.
pub fn first_answer(addr: SocketAddr, since: Instant, limit: Duration) -> Result<Option<Duration>, LabError> {
    in_client(move || {
        while since.elapsed() < limit {
            let tried = Instant::now();
            if get(addr, Duration::from_millis(250)).is_ok() {
                return Some(since.elapsed());
            }
            // At most 20 attempts a second.
            if let Some(rest) = Duration::from_millis(50).checked_sub(tried.elapsed()) {
                std::thread::sleep(rest);
            }
        }
        None
    })
}
