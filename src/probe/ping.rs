//! ICMP echo (ldirectord's checktype = ping) from a raw socket: one echo
//! request, wait for the matching reply until the deadline.

use super::ProbeError;
use crate::ocf::Deadline;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

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

pub fn echo(addr: SocketAddr, d: &Deadline) -> Result<(), ProbeError> {
    let io = |op: &'static str| move |e: std::io::Error| ProbeError::Io { addr, op, source: e };
    let (family, proto, req_type, reply_type) = match addr.ip() {
        IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP, 8u8, 0u8),
        IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6, 128u8, 129u8),
    };
    // SAFETY: plain socket(2), checked.
    let raw = unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
    if raw < 0 {
        return Err(io("open an ICMP socket")(std::io::Error::last_os_error()));
    }
    // SAFETY: fresh descriptor owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let id = (std::process::id() & 0xffff) as u16;
    let seq: u16 = 1;
    let mut pkt = [0u8; 16];
    pkt[0] = req_type;
    pkt[4..6].copy_from_slice(&id.to_be_bytes());
    pkt[6..8].copy_from_slice(&seq.to_be_bytes());
    pkt[8..16].copy_from_slice(b"haven-ck");
    if family == libc::AF_INET {
        let c = checksum(&pkt);
        pkt[2..4].copy_from_slice(&c.to_be_bytes());
    }
    let sent = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: zeroed sockaddr_in is valid.
            let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sa.sin_family = libc::AF_INET as u16;
            sa.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            // SAFETY: valid buffers and lengths.
            unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    pkt.as_ptr().cast(),
                    pkt.len(),
                    0,
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as u32,
                )
            }
        }
        SocketAddr::V6(a) => {
            // SAFETY: zeroed sockaddr_in6 is valid.
            let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sa.sin6_family = libc::AF_INET6 as u16;
            sa.sin6_addr.s6_addr = a.ip().octets();
            // SAFETY: valid buffers and lengths.
            unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    pkt.as_ptr().cast(),
                    pkt.len(),
                    0,
                    (&sa as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as u32,
                )
            }
        }
    };
    if sent < 0 {
        return Err(io("send an ICMP echo")(std::io::Error::last_os_error()));
    }
    let mut buf = [0u8; 1500];
    loop {
        let left = d.remaining();
        if left.is_zero() {
            return Err(ProbeError::Timeout { addr });
        }
        let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if rc <= 0 {
            continue;
        }
        // SAFETY: buf valid for its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n <= 0 {
            continue;
        }
        let n = n as usize;
        // IPv4 raw sockets deliver the IP header; IPv6 ones do not.
        let icmp = if family == libc::AF_INET {
            let ihl = usize::from(buf[0] & 0x0f) * 4;
            let src = std::net::Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
            if IpAddr::V4(src) != addr.ip() || n < ihl + 8 {
                continue;
            }
            &buf[ihl..n]
        } else {
            &buf[..n]
        };
        if icmp.len() >= 8 && icmp[0] == reply_type && icmp[4..6] == id.to_be_bytes() && icmp[6..8] == seq.to_be_bytes()
        {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn checksum_of_a_known_packet() {
        // Echo request, id 1, seq 1, no payload: checksum 0xf7fd.
        let p = [8u8, 0, 0, 0, 0, 1, 0, 1];
        assert_eq!(super::checksum(&p), 0xf7fd);
    }
}
