//! ICMP echo (ldirectord's checktype = ping) from a raw socket (nix): one
//! echo request, then replies read until the matching one or the deadline.
//! The reply parser takes untrusted bytes and never panics.

use super::ProbeError;
use crate::ocf::Deadline;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    recv, sendto, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, SockaddrIn6,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

const ECHO_V4: (u8, u8) = (8, 0);
const ECHO_V6: (u8, u8) = (128, 129);
const SEQ: u16 = 1;

fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in b.chunks(2) {
        let w = if c.len() == 2 { u16::from_be_bytes([c[0], c[1]]) } else { u16::from(c[0]) << 8 };
        sum += u32::from(w);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The echo request (the kernel computes the ICMPv6 checksum itself).
fn request(v4: bool, id: u16) -> [u8; 16] {
    let mut pkt = [0u8; 16];
    pkt[0] = if v4 { ECHO_V4.0 } else { ECHO_V6.0 };
    pkt[4..6].copy_from_slice(&id.to_be_bytes());
    pkt[6..8].copy_from_slice(&SEQ.to_be_bytes());
    pkt[8..16].copy_from_slice(b"haven-ck");
    if v4 {
        let c = checksum(&pkt);
        pkt[2..4].copy_from_slice(&c.to_be_bytes());
    }
    pkt
}

/// Is `b` (what a raw socket delivered) the reply to our echo from
/// `from`? IPv4 raw sockets deliver the IP header, IPv6 ones do not.
pub fn is_reply(b: &[u8], from: IpAddr, id: u16) -> bool {
    let icmp = match from {
        IpAddr::V4(want) => {
            let Some(first) = b.first() else { return false };
            let ihl = usize::from(first & 0x0f) * 4;
            let src = b.get(12..16).map(|s| Ipv4Addr::new(s[0], s[1], s[2], s[3]));
            if ihl < 20 || src != Some(want) {
                return false;
            }
            b.get(ihl..).unwrap_or_default()
        }
        IpAddr::V6(_) => b,
    };
    let reply_type = if from.is_ipv4() { ECHO_V4.1 } else { ECHO_V6.1 };
    icmp.len() >= 8 && icmp[0] == reply_type && icmp[4..6] == id.to_be_bytes() && icmp[6..8] == SEQ.to_be_bytes()
}

fn open(addr: SocketAddr) -> Result<OwnedFd, ProbeError> {
    let (family, proto) = match addr {
        SocketAddr::V4(_) => (AddressFamily::Inet, SockProtocol::Icmp),
        SocketAddr::V6(_) => (AddressFamily::Inet6, SockProtocol::IcmpV6),
    };
    socket(family, SockType::Raw, SockFlag::SOCK_CLOEXEC, proto).map_err(|e| ProbeError::Io {
        addr,
        op: "open an ICMP socket",
        source: e.into(),
    })
}

/// Wait for the reply until the deadline; a failing poll is an error, not
/// a reason to spin.
fn wait_reply(fd: &OwnedFd, addr: SocketAddr, id: u16, d: &Deadline) -> Result<(), ProbeError> {
    let io = |op: &'static str, e: Errno| ProbeError::Io { addr, op, source: e.into() };
    let mut buf = [0u8; 1500];
    loop {
        let left = d.remaining();
        if left.is_zero() {
            return Err(ProbeError::Timeout { addr });
        }
        let ms = PollTimeout::try_from(left.as_millis().clamp(1, 60_000) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(io("wait for an ICMP reply from", e)),
        }
        match recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(n) if is_reply(&buf[..n], addr.ip(), id) => return Ok(()),
            Ok(_) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(e) => return Err(io("receive an ICMP reply from", e)),
        }
    }
}

pub fn echo(addr: SocketAddr, d: &Deadline) -> Result<(), ProbeError> {
    let fd = open(addr)?;
    let id = (std::process::id() & 0xffff) as u16;
    let pkt = request(addr.is_ipv4(), id);
    let sent = match addr {
        SocketAddr::V4(a) => sendto(fd.as_raw_fd(), &pkt, &SockaddrIn::from(a), MsgFlags::empty()),
        SocketAddr::V6(a) => sendto(fd.as_raw_fd(), &pkt, &SockaddrIn6::from(a), MsgFlags::empty()),
    };
    sent.map_err(|e| ProbeError::Io { addr, op: "send an ICMP echo to", source: e.into() })?;
    wait_reply(&fd, addr, id, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_known_packet() {
        // Echo request, id 1, seq 1, no payload: checksum 0xf7fd.
        let p = [8u8, 0, 0, 0, 0, 1, 0, 1];
        assert_eq!(checksum(&p), 0xf7fd);
    }

    #[test]
    fn replies_are_recognised() {
        let from: IpAddr = "203.0.113.5".parse().unwrap();
        let mut ip = vec![0x45u8, 0, 0, 36, 0, 0, 0, 0, 64, 1, 0, 0, 203, 0, 113, 5, 203, 0, 113, 1];
        let mut icmp = request(true, 7).to_vec();
        icmp[0] = 0;
        ip.extend(&icmp);
        assert!(is_reply(&ip, from, 7));
        assert!(!is_reply(&ip, from, 8), "another id");
        assert!(!is_reply(&ip, "203.0.113.6".parse().unwrap(), 7), "another source");
        assert!(!is_reply(&ip[..22], from, 7), "truncated");
        assert!(!is_reply(&[0x4f], from, 7));
    }
}
