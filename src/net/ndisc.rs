//! IPv6 neighbour discovery: unsolicited neighbour advertisements (RFC 4861
//! 7.2.6) to all-nodes, sent from a raw ICMPv6 socket. The kernel fills in
//! the checksum for ICMPv6 raw sockets.

use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub const NA_LEN: usize = 32;
pub const ICMPV6_NA: u8 = 136;
/// The Override flag: replace cached link-layer addresses.
const FLAG_OVERRIDE: u8 = 0x20;
const OPT_TARGET_LLADDR: u8 = 2;
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// An unsolicited NA for `target` at `mac`.
pub fn advertisement(target: Ipv6Addr, mac: [u8; 6]) -> [u8; NA_LEN] {
    let mut b = [0u8; NA_LEN];
    b[0] = ICMPV6_NA;
    b[4] = FLAG_OVERRIDE;
    b[8..24].copy_from_slice(&target.octets());
    b[24] = OPT_TARGET_LLADDR;
    b[25] = 1; // option length in units of 8 bytes
    b[26..32].copy_from_slice(&mac);
    b
}

fn setopt(fd: i32, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: value is a valid int for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(fd, level, name, (&value as *const i32).cast(), std::mem::size_of::<i32>() as libc::socklen_t)
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn sockaddr6(ip: Ipv6Addr, scope: u32) -> libc::sockaddr_in6 {
    // SAFETY: all-zero is a valid sockaddr_in6.
    let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    sa.sin6_family = libc::AF_INET6 as u16;
    sa.sin6_addr.s6_addr = ip.octets();
    sa.sin6_scope_id = scope;
    sa
}

/// A socket that sends NAs for `source` (which must be a usable, i.e. not
/// tentative, address on `ifindex`).
pub struct NaSender {
    fd: OwnedFd,
    ifindex: u32,
}

impl NaSender {
    pub fn open(ifindex: u32, source: Ipv6Addr) -> io::Result<NaSender> {
        // SAFETY: plain socket(2); checked below.
        let raw = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::IPPROTO_ICMPV6) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh descriptor, owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let idx = i32::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // Neighbour discovery packets must carry hop limit 255 (RFC 4861 7.1.2).
        setopt(fd.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, 255)?;
        setopt(fd.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, 255)?;
        setopt(fd.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, idx)?;
        setopt(fd.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, 0)?;
        let scope = if source.is_unicast_link_local() { ifindex } else { 0 };
        let sa = sockaddr6(source, scope);
        // SAFETY: sa is a valid sockaddr_in6.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_in6).cast(),
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(NaSender { fd, ifindex })
    }

    pub fn send(&self, na: &[u8; NA_LEN]) -> io::Result<()> {
        let sa = sockaddr6(ALL_NODES, self.ifindex);
        // SAFETY: buffers valid for their lengths.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                na.as_ptr().cast(),
                na.len(),
                0,
                (&sa as *const libc::sockaddr_in6).cast(),
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn advertisement_layout() {
        let t: std::net::Ipv6Addr = "2001:db8::7".parse().unwrap();
        let na = super::advertisement(t, [2, 0, 0, 0, 0, 9]);
        assert_eq!(na[0], 136);
        assert_eq!(na[4], 0x20);
        assert_eq!(&na[8..24], &t.octets());
        assert_eq!(&na[24..26], &[2, 1]);
        assert_eq!(&na[26..], &[2, 0, 0, 0, 0, 9]);
    }
}
