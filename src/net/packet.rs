//! An AF_PACKET datagram socket bound to one interface: the kernel adds the
//! Ethernet header, haven writes and reads ARP payloads. socket(2), bind(2),
//! sendto(2), poll(2) and recvfrom(2) through nix; only the link-layer
//! address is built by hand (nix has no safe constructor for it).

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, AddressFamily, LinkAddr, SockFlag, SockType, SockaddrLike};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

pub const ETH_P_ARP: u16 = 0x0806;
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// sll_pkttype of frames this host sent (PACKET_OUTGOING).
const PACKET_OUTGOING: u8 = 4;

pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
    protocol: u16,
}

fn sockaddr(ifindex: i32, protocol: u16, mac: &[u8; 6]) -> io::Result<LinkAddr> {
    let mut sll_addr = [0u8; 8];
    sll_addr[..6].copy_from_slice(mac);
    let sa = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 6,
        sll_addr,
    };
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `sa` is a fully initialised sockaddr_ll that lives for the
    // call, and `len` is its exact size; from_raw copies it out.
    unsafe { LinkAddr::from_raw((&sa as *const libc::sockaddr_ll).cast(), Some(len)) }
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))
}

impl PacketSocket {
    /// A socket that sends and receives frames of `protocol` on `ifindex`.
    pub fn open(ifindex: u32, protocol: u16) -> io::Result<PacketSocket> {
        let ifindex = i32::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // Protocol 0 receives nothing until bind(2) names the protocol (packet(7)).
        // Non-blocking: recv_incoming polls first and must not hang after.
        let fd = socket::socket(
            AddressFamily::Packet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )?;
        socket::bind(fd.as_raw_fd(), &sockaddr(ifindex, protocol, &[0; 6])?)?;
        Ok(PacketSocket { fd, ifindex, protocol })
    }

    pub fn send(&self, payload: &[u8], dst: [u8; 6]) -> io::Result<()> {
        let sa = sockaddr(self.ifindex, self.protocol, &dst)?;
        socket::sendto(self.fd.as_raw_fd(), payload, &sa, socket::MsgFlags::empty())?;
        Ok(())
    }

    /// Wait up to `timeout` for a frame that another host sent; returns its
    /// payload length, or None on timeout. Frames this host sent are skipped.
    pub fn recv_incoming(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        let (n, from) = match socket::recvfrom::<LinkAddr>(self.fd.as_raw_fd(), buf) {
            Ok(got) => got,
            Err(nix::errno::Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if from.is_some_and(|sa| sa.pkttype() == PACKET_OUTGOING) {
            return Ok(Some(0));
        }
        Ok(Some(n))
    }

    /// The socket's descriptor, for a caller that must not close it on its
    /// critical path: the last close of a packet socket waits for an RCU
    /// grace period (packet_release calls synchronize_net(), 5-30 ms on a
    /// busy node). The receive buffer is shrunk to the minimum first, so
    /// the frames it still queues until then cost next to nothing.
    pub fn into_lingering(self) -> OwnedFd {
        let _ = socket::setsockopt(&self.fd, socket::sockopt::RcvBuf, &0);
        self.fd
    }
}
