//! One synchronous netlink socket for every family haven speaks: rtnetlink
//! (links, addresses, routes, neighbours) and generic netlink (IPVS, and the
//! controller that resolves its family id). One request at a time; its
//! replies (dump parts up to NLMSG_DONE, or the ACK) are read by one receive
//! loop bounded by a deadline, each message's length checked against the
//! datagram and its sequence number against the request's (reply.rs).
//! Typed views live in link.rs, addr.rs, route.rs, neigh.rs and genl.rs.

use super::reply::{self, Progress};
use super::NetError;
use crate::ocf::Deadline;
use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable, NLM_F_ACK, NLM_F_CREATE,
    NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_sys::{
    protocols::{NETLINK_GENERIC, NETLINK_ROUTE},
    Socket, SocketAddr,
};
use std::fmt::Debug;
use std::io;
use std::time::Duration;

/// The largest datagram read at once; the kernel sizes dump parts below it.
const RECV_BUFFER: usize = 64 * 1024;

/// A netlink family's message type: rtnetlink's RouteNetlinkMessage,
/// generic netlink's GenlMessage.
pub trait Message: NetlinkSerializable + NetlinkDeserializable + Debug {}
impl<T: NetlinkSerializable + NetlinkDeserializable + Debug> Message for T {}

pub struct Netlink {
    sock: Socket,
    seq: u32,
    deadline: Deadline,
}

impl Netlink {
    /// A route socket (rtnetlink) in the current network namespace. Every
    /// request made through it ends by `deadline`.
    pub fn route(deadline: Deadline) -> Result<Netlink, NetError> {
        Netlink::open(NETLINK_ROUTE, deadline)
    }

    /// A generic netlink socket (families resolved by name, genl.rs).
    pub fn generic(deadline: Deadline) -> Result<Netlink, NetError> {
        Netlink::open(NETLINK_GENERIC, deadline)
    }

    fn open(protocol: isize, deadline: Deadline) -> Result<Netlink, NetError> {
        let mut sock = Socket::new(protocol).map_err(NetError::Socket)?;
        sock.bind_auto().map_err(NetError::Socket)?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(NetError::Socket)?;
        Ok(Netlink { sock, seq: 0, deadline })
    }

    /// Bound the requests from now on by `deadline` (a long-lived socket,
    /// as the IPVS director's, gives each request its own).
    pub fn set_deadline(&mut self, deadline: Deadline) {
        self.deadline = deadline;
    }

    /// A dump request (NLM_F_DUMP): every reply message up to NLMSG_DONE.
    pub fn dump<T>(&mut self, op: &str, msg: T) -> Result<Vec<T>, NetError>
    where
        T: Message,
    {
        self.exchange(op, msg, NLM_F_REQUEST | NLM_F_DUMP)
    }

    /// A change acknowledged by the kernel. `create` adds
    /// NLM_F_CREATE|NLM_F_EXCL so an existing object is an EEXIST error.
    pub fn change<T>(&mut self, op: &str, msg: T, create: bool) -> Result<(), NetError>
    where
        T: Message,
    {
        let mut flags = NLM_F_REQUEST | NLM_F_ACK;
        if create {
            flags |= NLM_F_CREATE | NLM_F_EXCL;
        }
        self.exchange(op, msg, flags).map(|_| ())
    }

    /// A request whose answer is data followed by the ACK (as the generic
    /// netlink controller's GETFAMILY): the data messages.
    pub fn query<T>(&mut self, op: &str, msg: T) -> Result<Vec<T>, NetError>
    where
        T: Message,
    {
        self.exchange(op, msg, NLM_F_REQUEST | NLM_F_ACK)
    }

    fn exchange<T>(&mut self, op: &str, msg: T, flags: u16) -> Result<Vec<T>, NetError>
    where
        T: Message,
    {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let buf = encode(msg, flags, seq);
        self.sock.send(&buf, 0).map_err(|source| NetError::Request { op: op.to_string(), source })?;
        receive(op, &mut self.sock, seq, &self.deadline)
    }
}

/// One netlink message: header (length, flags, sequence number) and body.
pub fn encode<T: NetlinkSerializable + Debug>(msg: T, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    packet.finalize();
    let mut buf = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}

/// Where the receive loop gets its datagrams: the socket, or a script in
/// the tests.
pub trait Datagrams {
    /// Replace `buf` with the next datagram, waiting at most `wait`; an
    /// expired wait is WouldBlock (as SO_RCVTIMEO reports it).
    fn next(&mut self, buf: &mut Vec<u8>, wait: Duration) -> io::Result<()>;
}

impl Datagrams for Socket {
    fn next(&mut self, buf: &mut Vec<u8>, wait: Duration) -> io::Result<()> {
        set_recv_timeout(self, wait)?;
        buf.clear();
        buf.reserve(RECV_BUFFER);
        self.recv(buf, 0).map(|_| ())
    }
}

/// The receive loop every request ends in: datagrams until the request's
/// NLMSG_DONE or ACK, each wait bounded by what is left of `deadline`;
/// replies to other requests skipped, malformed lengths and kernel errors
/// returned as errors.
pub fn receive<T: NetlinkDeserializable>(
    op: &str,
    rx: &mut impl Datagrams,
    seq: u32,
    deadline: &Deadline,
) -> Result<Vec<T>, NetError> {
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(RECV_BUFFER);
    loop {
        let left = deadline.remaining();
        if left.is_zero() {
            return Err(NetError::Timeout { op: op.to_string() });
        }
        match rx.next(&mut buf, left) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(NetError::Timeout { op: op.to_string() })
            }
            Err(source) => return Err(NetError::Request { op: op.to_string(), source }),
        }
        if reply::take(op, &buf, seq, &mut out)? == Progress::Done {
            return Ok(out);
        }
    }
}

pub(crate) fn set_recv_timeout(sock: &impl std::os::fd::AsFd, d: Duration) -> io::Result<()> {
    let d = d.max(Duration::from_millis(1));
    let tv = nix::sys::time::TimeVal::new(d.as_secs() as _, d.subsec_micros() as _);
    nix::sys::socket::setsockopt(sock, nix::sys::socket::sockopt::ReceiveTimeout, &tv).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::genl::{nla, GenlMessage};
    use std::collections::VecDeque;
    use std::time::Instant;

    /// NLM_F_MULTI: a part of a dump.
    const MULTI: u16 = 2;

    fn data(seq: u32, cmd: u8) -> Vec<u8> {
        encode(GenlMessage { family: 0x1a, cmd, version: 1, attrs: nla(1, &[cmd; 4]) }, MULTI, seq)
    }

    /// A control message (NLMSG_ERROR = 2 carrying `code`, NLMSG_DONE = 3).
    fn control(kind: u16, seq: u32, code: i32) -> Vec<u8> {
        let body_len = if kind == 2 { 4 + 16 } else { 4 };
        let mut m = Vec::new();
        m.extend_from_slice(&(16 + body_len as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&code.to_ne_bytes());
        m.resize(16 + body_len, 0); // the request's header, echoed
        m
    }

    /// Datagrams from a script; WouldBlock once it is exhausted (the
    /// kernel said nothing more before the wait ran out).
    struct Script(VecDeque<io::Result<Vec<u8>>>);

    impl Datagrams for Script {
        fn next(&mut self, buf: &mut Vec<u8>, _wait: Duration) -> io::Result<()> {
            *buf = self.0.pop_front().unwrap_or_else(|| Err(io::ErrorKind::WouldBlock.into()))?;
            Ok(())
        }
    }

    fn run(script: Vec<io::Result<Vec<u8>>>) -> Result<Vec<GenlMessage>, NetError> {
        receive("test", &mut Script(script.into()), 7, &Deadline::after(Duration::from_secs(5)))
    }

    fn cmds(r: Result<Vec<GenlMessage>, NetError>) -> Vec<u8> {
        r.unwrap().iter().map(|m| m.cmd).collect()
    }

    #[test]
    fn a_dump_in_parts_ends_at_done_and_replies_to_other_requests_are_ignored() {
        let mut first = data(6, 1); // a late answer to the request before
        first.extend(data(7, 2));
        let mut second = data(7, 3);
        second.extend(control(3, 6, 0)); // the earlier request's DONE
        let script = vec![Ok(first), Err(io::ErrorKind::Interrupted.into()), Ok(second), Ok(control(3, 7, 0))];
        assert_eq!(cmds(run(script)), vec![2, 3]);
    }

    #[test]
    fn the_ack_ends_a_request_and_an_error_ack_is_the_kernels_errno() {
        let mut answer = data(7, 4);
        answer.extend(control(2, 7, 0));
        assert_eq!(cmds(run(vec![Ok(answer)])), vec![4]);
        let e = run(vec![Ok(control(2, 6, 0)), Ok(control(2, 7, -libc::EEXIST))]).unwrap_err();
        assert!(matches!(e, NetError::Request { .. }), "{e:?}");
        assert_eq!(e.errno(), Some(libc::EEXIST));
    }

    #[test]
    fn a_truncated_or_short_message_is_refused() {
        let whole = data(7, 1);
        for cut in [3, 15, 16, whole.len() - 1] {
            let e = run(vec![Ok(whole[..cut].to_vec())]).unwrap_err();
            assert!(matches!(e, NetError::Decode { .. }), "cut at {cut}: {e:?}");
        }
        // A header whose length is below the header's own.
        let mut short = whole.clone();
        short[..4].copy_from_slice(&8u32.to_ne_bytes());
        assert!(matches!(run(vec![Ok(short)]), Err(NetError::Decode { .. })));
        // Other requests' messages are skipped, but never read past the datagram.
        let mut stale = data(6, 1);
        stale[..4].copy_from_slice(&4096u32.to_ne_bytes());
        assert!(matches!(run(vec![Ok(stale)]), Err(NetError::Decode { .. })));
    }

    #[test]
    fn silence_and_endless_chatter_both_end_at_the_deadline() {
        assert!(matches!(run(vec![Ok(data(7, 1))]), Err(NetError::Timeout { .. })));
        // Only other requests' replies, forever: the deadline still ends it.
        struct Chatter;
        impl Datagrams for Chatter {
            fn next(&mut self, buf: &mut Vec<u8>, wait: Duration) -> io::Result<()> {
                std::thread::sleep(wait.min(Duration::from_millis(5)));
                *buf = data(6, 1);
                Ok(())
            }
        }
        let start = Instant::now();
        let r: Result<Vec<GenlMessage>, _> =
            receive("test", &mut Chatter, 7, &Deadline::after(Duration::from_millis(60)));
        assert!(matches!(r, Err(NetError::Timeout { .. })), "{r:?}");
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    }

    #[test]
    fn a_real_socket_that_gets_no_answer_times_out_at_the_deadline() {
        // No request sent: the kernel has nothing to say. Opening a
        // netlink socket needs no privilege.
        let mut nl = Netlink::generic(Deadline::after(Duration::from_millis(150))).unwrap();
        let start = Instant::now();
        let r: Result<Vec<GenlMessage>, _> = receive("test", &mut nl.sock, 1, &nl.deadline);
        assert!(matches!(r, Err(NetError::Timeout { .. })), "{r:?}");
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(3), "{took:?}");
    }
}
