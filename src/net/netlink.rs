//! A synchronous rtnetlink socket: one request, its replies (dump parts or
//! an ACK), bounded by a deadline. Typed views of links, addresses and
//! routes live in link.rs, addr.rs and route.rs.

use super::NetError;
use crate::ocf::Deadline;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::time::Duration;

pub struct Rtnl {
    sock: Socket,
    seq: u32,
    deadline: Deadline,
}

impl Rtnl {
    /// Open a route socket in the current network namespace. Every request
    /// made through it ends by `deadline`.
    pub fn open(deadline: Deadline) -> Result<Rtnl, NetError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(NetError::Socket)?;
        sock.bind_auto().map_err(NetError::Socket)?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(NetError::Socket)?;
        Ok(Rtnl { sock, seq: 0, deadline })
    }

    /// A dump request (RTM_GET* with NLM_F_DUMP): every reply message.
    pub fn dump(&mut self, op: &str, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>, NetError> {
        self.exchange(op, msg, NLM_F_REQUEST | NLM_F_DUMP)
    }

    /// A change (RTM_NEW*/RTM_DEL*) acknowledged by the kernel. `create`
    /// adds NLM_F_CREATE|NLM_F_EXCL so an existing object is an EEXIST error.
    pub fn change(&mut self, op: &str, msg: RouteNetlinkMessage, create: bool) -> Result<(), NetError> {
        let mut flags = NLM_F_REQUEST | NLM_F_ACK;
        if create {
            flags |= NLM_F_CREATE | NLM_F_EXCL;
        }
        self.exchange(op, msg, flags).map(|_| ())
    }

    fn exchange(
        &mut self,
        op: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NetError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0).map_err(|source| NetError::Request { op: op.to_string(), source })?;

        let mut out = Vec::new();
        let mut rx: Vec<u8> = Vec::with_capacity(64 * 1024);
        loop {
            self.arm_timeout(op)?;
            rx.clear();
            if let Err(e) = self.sock.recv(&mut rx, 0) {
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
                    return Err(NetError::Timeout { op: op.to_string() });
                }
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(NetError::Request { op: op.to_string(), source: e });
            }
            if super::reply::take(op, &rx, seq, &mut out)? == super::reply::Progress::Done {
                return Ok(out);
            }
        }
    }

    /// Bound the next recv by what is left of the deadline.
    fn arm_timeout(&self, op: &str) -> Result<(), NetError> {
        let left = self.deadline.remaining();
        if left.is_zero() {
            return Err(NetError::Timeout { op: op.to_string() });
        }
        set_recv_timeout(&self.sock, left)
            .map_err(|source| NetError::Request { op: format!("{op} (SO_RCVTIMEO)"), source })
    }
}

pub(crate) fn set_recv_timeout(sock: &impl std::os::fd::AsFd, d: Duration) -> io::Result<()> {
    let d = d.max(Duration::from_millis(1));
    let tv = nix::sys::time::TimeVal::new(d.as_secs() as _, d.subsec_micros() as _);
    nix::sys::socket::setsockopt(sock, nix::sys::socket::sockopt::ReceiveTimeout, &tv).map_err(io::Error::from)
}
