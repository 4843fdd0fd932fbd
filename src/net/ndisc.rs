//! IPv6 neighbour discovery: unsolicited neighbour advertisements (RFC 4861
//! 7.2.6) to all-nodes, sent from a raw ICMPv6 socket. The kernel fills in
//! the checksum for ICMPv6 raw sockets.

use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockProtocol, SockType, SockaddrIn6};
use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd};

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

/// An int IPv6 socket option nix has no type for (IPV6_MULTICAST_IF,
/// IPV6_MULTICAST_LOOP).
fn setopt(fd: &OwnedFd, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: `value` is an int that lives for the call and the length passed
    // is its size; `fd` is an open socket borrowed for the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IPV6,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn sockaddr6(ip: Ipv6Addr, scope: u32) -> SockaddrIn6 {
    SockaddrIn6::from(SocketAddrV6::new(ip, 0, 0, scope))
}

/// A socket that sends NAs for `source` (which must be a usable, i.e. not
/// tentative, address on `ifindex`).
pub struct NaSender {
    fd: OwnedFd,
    ifindex: u32,
}

impl NaSender {
    pub fn open(ifindex: u32, source: Ipv6Addr) -> io::Result<NaSender> {
        let fd = socket::socket(AddressFamily::Inet6, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::IcmpV6)?;
        let idx = i32::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // Neighbour discovery packets must carry hop limit 255 (RFC 4861 7.1.2).
        socket::setsockopt(&fd, sockopt::Ipv6MulticastHops, &255)?;
        socket::setsockopt(&fd, sockopt::Ipv6Ttl, &255)?;
        setopt(&fd, libc::IPV6_MULTICAST_IF, idx)?;
        setopt(&fd, libc::IPV6_MULTICAST_LOOP, 0)?;
        let scope = if source.is_unicast_link_local() { ifindex } else { 0 };
        socket::bind(fd.as_raw_fd(), &sockaddr6(source, scope))?;
        Ok(NaSender { fd, ifindex })
    }

    pub fn send(&self, na: &[u8; NA_LEN]) -> io::Result<()> {
        let sa = sockaddr6(ALL_NODES, self.ifindex);
        socket::sendto(self.fd.as_raw_fd(), na, &sa, socket::MsgFlags::empty())?;
        Ok(())
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
