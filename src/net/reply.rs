//! One datagram of netlink replies, split into messages and decoded: the
//! bounds of each message checked against the datagram before it is read,
//! replies to other requests (other sequence numbers) skipped before they
//! are decoded. Generic over the family's message type (rtnetlink's
//! RouteNetlinkMessage, genl.rs's GenlMessage).

use super::NetError;
use netlink_packet_core::{NetlinkDeserializable, NetlinkMessage, NetlinkPayload};

/// The netlink message header is 16 bytes.
const HEADER_LEN: usize = 16;

/// What one datagram said about the request.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// More datagrams follow (a dump in parts).
    More,
    /// The dump's NLMSG_DONE or the request's ACK.
    Done,
}

/// Decode the messages of `rx` that answer request `seq`, appending the
/// inner messages to `out`. A kernel error answer becomes the error.
pub fn take<T: NetlinkDeserializable>(op: &str, rx: &[u8], seq: u32, out: &mut Vec<T>) -> Result<Progress, NetError> {
    let decode = |why: String| NetError::Decode { op: op.to_string(), why };
    let mut offset = 0;
    while offset < rx.len() {
        let rest = &rx[offset..];
        let len = rest.get(..4).map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize);
        if len < HEADER_LEN || len > rest.len() {
            return Err(decode(format!("message length {len} at offset {offset} of a {} byte reply", rx.len())));
        }
        // Messages are 4-byte aligned within the datagram.
        offset += (len + 3) & !3;
        if u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]) != seq {
            continue; // a late reply to an earlier request
        }
        let reply = NetlinkMessage::<T>::deserialize(&rest[..len]).map_err(|e| decode(e.to_string()))?;
        match reply.payload {
            NetlinkPayload::InnerMessage(m) => out.push(m),
            NetlinkPayload::Done(_) => return Ok(Progress::Done),
            NetlinkPayload::Error(e) => {
                return match e.code {
                    None => Ok(Progress::Done), // the ACK
                    Some(_) => Err(NetError::Request { op: op.to_string(), source: e.to_io() }),
                };
            }
            _ => {}
        }
    }
    Ok(Progress::More)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{DoneMessage, NetlinkHeader};
    use netlink_packet_route::RouteNetlinkMessage;

    /// NLM_F_MULTI: a part of a dump.
    const NLM_F_MULTI: u16 = 2;
    use netlink_packet_route::address::{AddressAttribute, AddressMessage};
    use netlink_packet_route::link::{LinkAttribute, LinkMessage};
    use proptest::prelude::*;

    fn bytes(seq: u32, payload: NetlinkPayload<RouteNetlinkMessage>) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.sequence_number = seq;
        header.flags = NLM_F_MULTI;
        let mut m = NetlinkMessage::new(header, payload);
        m.finalize();
        let mut buf = vec![0u8; m.buffer_len()];
        m.serialize(&mut buf);
        buf
    }

    fn address(index: u32, octets: [u8; 4], prefix: u8) -> RouteNetlinkMessage {
        let mut a = AddressMessage::default();
        a.header.family = netlink_packet_route::AddressFamily::Inet;
        a.header.index = index;
        a.header.prefix_len = prefix;
        a.attributes.push(AddressAttribute::Address(std::net::Ipv4Addr::from(octets).into()));
        RouteNetlinkMessage::NewAddress(a)
    }

    fn link(index: u32, name: &str) -> RouteNetlinkMessage {
        let mut l = LinkMessage::default();
        l.header.index = index;
        l.attributes.push(LinkAttribute::IfName(name.to_string()));
        RouteNetlinkMessage::NewLink(l)
    }

    #[test]
    fn a_dump_in_parts_ends_at_done_and_skips_other_requests() {
        let mut out: Vec<RouteNetlinkMessage> = Vec::new();
        let mut part1 = bytes(7, NetlinkPayload::from(address(2, [198, 51, 100, 7], 24)));
        part1.extend(bytes(6, NetlinkPayload::from(link(1, "stale"))));
        assert_eq!(take("dump", &part1, 7, &mut out).unwrap(), Progress::More);
        let part2 = bytes(7, NetlinkPayload::Done(DoneMessage::default()));
        assert_eq!(take("dump", &part2, 7, &mut out).unwrap(), Progress::Done);
        assert_eq!(out, vec![address(2, [198, 51, 100, 7], 24)]);
    }

    #[test]
    fn a_length_beyond_the_datagram_is_refused() {
        let mut b = bytes(1, NetlinkPayload::from(link(3, "eth0")));
        let long = (b.len() as u32 + 4).to_ne_bytes();
        b[..4].copy_from_slice(&long);
        let e = take("dump", &b, 1, &mut Vec::<RouteNetlinkMessage>::new()).unwrap_err();
        assert!(e.to_string().contains("message length"), "{e}");
        assert!(take("dump", &[1, 0, 0, 0], 1, &mut Vec::<RouteNetlinkMessage>::new()).is_err());
    }

    #[test]
    fn prop_netlink_replies() {
        let message = prop_oneof![
            (any::<u32>(), any::<[u8; 4]>(), 0u8..=32).prop_map(|(i, o, p)| address(i, o, p)),
            (any::<u32>(), "[a-z0-9]{1,15}").prop_map(|(i, n)| link(i, &n)),
        ];
        let strategy = (proptest::collection::vec((message, 1u32..4), 0..8), any::<Vec<u8>>(), any::<usize>());
        crate::property::run(
            "netlink_replies",
            2000,
            strategy,
            |seed| {
                // Real kernel replies (a namespace's lo: links, addresses,
                // routes) decode.
                let r = take("seed", seed, 1, &mut Vec::<RouteNetlinkMessage>::new());
                assert!(r.is_ok(), "{r:?}");
            },
            |(messages, noise, cut)| {
                // A well-formed datagram: exactly the messages of our
                // request (sequence 1) come out, in order.
                let mut dgram = Vec::new();
                for (m, seq) in &messages {
                    dgram.extend(bytes(*seq, NetlinkPayload::from(m.clone())));
                }
                let mut out: Vec<RouteNetlinkMessage> = Vec::new();
                assert_eq!(take("dump", &dgram, 1, &mut out).unwrap(), Progress::More);
                let ours: Vec<_> = messages.iter().filter(|(_, s)| *s == 1).map(|(m, _)| m.clone()).collect();
                assert_eq!(out, ours);
                // Truncated anywhere, or any bytes at all: an error or
                // messages, never a panic.
                let cut = if dgram.is_empty() { 0 } else { cut % dgram.len() };
                let _ = take("dump", &dgram[..cut], 1, &mut Vec::<RouteNetlinkMessage>::new());
                let _ = take("dump", &noise, 1, &mut Vec::<RouteNetlinkMessage>::new());
                let _ = take(
                    "dump",
                    &noise,
                    u32::from_ne_bytes([noise.get(8).copied().unwrap_or(0), 0, 0, 0]),
                    &mut Vec::<RouteNetlinkMessage>::new(),
                );
            },
        );
    }
}
