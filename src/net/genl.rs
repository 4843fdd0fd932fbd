//! Generic netlink messages (genlmsghdr, then attributes) for the shared
//! socket of netlink.rs, the attribute encoding and a bounds-checked
//! attribute walk, and the controller's family lookup (CTRL_CMD_GETFAMILY).
//! A family's own attributes (IPVS: lb/ipvs.rs) are built on these.

use super::{NetError, Netlink};
use netlink_packet_core::{DecodeError, NetlinkDeserializable, NetlinkHeader, NetlinkSerializable};

/// The generic netlink controller's fixed family id (GENL_ID_CTRL).
pub const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// The flag marking an attribute that holds attributes.
pub const NLA_F_NESTED: u16 = 0x8000;
/// struct genlmsghdr: cmd, version, reserved u16.
const GENL_HEADER_LEN: usize = 4;

/// One generic netlink message: the family (the netlink message type),
/// command, version and the encoded attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenlMessage {
    pub family: u16,
    pub cmd: u8,
    pub version: u8,
    pub attrs: Vec<u8>,
}

impl NetlinkSerializable for GenlMessage {
    fn message_type(&self) -> u16 {
        self.family
    }

    fn buffer_len(&self) -> usize {
        GENL_HEADER_LEN + self.attrs.len()
    }

    fn serialize(&self, buffer: &mut [u8]) {
        buffer[0] = self.cmd;
        buffer[1] = self.version;
        buffer[2..GENL_HEADER_LEN].fill(0);
        buffer[GENL_HEADER_LEN..].copy_from_slice(&self.attrs);
    }
}

impl NetlinkDeserializable for GenlMessage {
    type Error = DecodeError;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<GenlMessage, DecodeError> {
        let attrs = payload.get(GENL_HEADER_LEN..).ok_or_else(|| {
            DecodeError::from(format!("a generic netlink message of {} bytes has no genlmsghdr", payload.len()))
        })?;
        Ok(GenlMessage { family: header.message_type, cmd: payload[0], version: payload[1], attrs: attrs.to_vec() })
    }
}

pub fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// One netlink attribute: length, type, payload, padding.
pub fn nla(kind: u16, payload: &[u8]) -> Vec<u8> {
    let len = 4 + payload.len();
    let mut v = Vec::with_capacity(pad4(len));
    v.extend_from_slice(&(len as u16).to_ne_bytes());
    v.extend_from_slice(&kind.to_ne_bytes());
    v.extend_from_slice(payload);
    v.resize(pad4(len), 0);
    v
}

/// An attribute holding `children`.
pub fn nested(kind: u16, children: &[Vec<u8>]) -> Vec<u8> {
    nla(kind | NLA_F_NESTED, &children.concat())
}

/// (type without the nested flag, payload) of each attribute in `b`,
/// stopping at the first length that is too short or runs past `b`.
pub fn attributes(b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while let Some(h) = b.get(off..off + 4) {
        let len = u16::from_ne_bytes([h[0], h[1]]) as usize;
        let kind = u16::from_ne_bytes([h[2], h[3]]) & !NLA_F_NESTED;
        if len < 4 {
            break;
        }
        let Some(payload) = b.get(off + 4..off + len) else { break };
        out.push((kind, payload));
        off += pad4(len);
    }
    out
}

pub fn u16_of(b: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(..2)?.try_into().ok()?))
}

pub fn u32_of(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

impl Netlink {
    /// The id the kernel gave generic netlink family `name` (ENOENT when
    /// the family is not registered: its module is not loaded).
    pub fn genl_family(&mut self, name: &str) -> Result<u16, NetError> {
        let op = format!("resolve the generic netlink family {name}");
        let mut z = name.as_bytes().to_vec();
        z.push(0);
        let ask = GenlMessage {
            family: GENL_ID_CTRL,
            cmd: CTRL_CMD_GETFAMILY,
            version: 1,
            attrs: nla(CTRL_ATTR_FAMILY_NAME, &z),
        };
        let replies = self.query(&op, ask)?;
        replies
            .iter()
            .find_map(|r| family_id(&r.attrs))
            .ok_or_else(|| NetError::Decode { op, why: "the controller's answer has no CTRL_ATTR_FAMILY_ID".into() })
    }
}

/// CTRL_ATTR_FAMILY_ID among a CTRL_CMD_NEWFAMILY reply's attributes.
fn family_id(attrs: &[u8]) -> Option<u16> {
    attributes(attrs).into_iter().find(|(k, _)| *k == CTRL_ATTR_FAMILY_ID).and_then(|(_, v)| u16_of(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_id_is_found() {
        let mut reply = nla(CTRL_ATTR_FAMILY_NAME, b"IPVS\0");
        reply.extend(nla(CTRL_ATTR_FAMILY_ID, &0x21u16.to_ne_bytes()));
        assert_eq!(family_id(&reply), Some(0x21));
    }

    #[test]
    fn a_message_round_trips_through_the_netlink_header() {
        let m = GenlMessage { family: 0x1a, cmd: 4, version: 1, attrs: nla(1, &7u32.to_ne_bytes()) };
        let bytes = crate::net::netlink::encode(m.clone(), 0, 9);
        assert_eq!(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize, bytes.len());
        assert_eq!(u16::from_ne_bytes([bytes[4], bytes[5]]), 0x1a, "the family is the message type");
        assert_eq!(&bytes[16..20], &[4, 1, 0, 0], "genlmsghdr");
        let back = netlink_packet_core::NetlinkMessage::<GenlMessage>::deserialize(&bytes).unwrap();
        assert_eq!(back.payload, netlink_packet_core::NetlinkPayload::InnerMessage(m));
    }

    #[test]
    fn a_body_shorter_than_the_genl_header_is_refused() {
        let mut bytes =
            crate::net::netlink::encode(GenlMessage { family: 0x1a, cmd: 4, version: 1, attrs: vec![] }, 0, 1);
        bytes.truncate(18);
        bytes[..4].copy_from_slice(&18u32.to_ne_bytes());
        assert!(netlink_packet_core::NetlinkMessage::<GenlMessage>::deserialize(&bytes).is_err());
    }

    #[test]
    fn attributes_stop_at_a_bad_length() {
        let mut b = nla(1, &[1, 2, 3, 4]);
        b.extend(nla(2, &[5]));
        assert_eq!(attributes(&b), vec![(1, &[1u8, 2, 3, 4][..]), (2, &[5u8][..])]);
        // The second attribute claims more than is there.
        b[8] = 200;
        assert_eq!(attributes(&b).len(), 1);
        // A length below the attribute header would loop forever.
        b[8] = 2;
        assert_eq!(attributes(&b).len(), 1);
        assert!(attributes(&b[..3]).is_empty());
    }

    #[test]
    fn the_kernels_controller_resolves_itself_and_refuses_an_unknown_family() {
        // Any user may ask the controller; it is family GENL_ID_CTRL. (A
        // name over 15 bytes would be EINVAL, not ENOENT.)
        let mut nl = Netlink::generic(crate::ocf::Deadline::after(std::time::Duration::from_secs(5))).unwrap();
        assert_eq!(nl.genl_family("nlctrl").unwrap(), GENL_ID_CTRL);
        let e = nl.genl_family("havennofamily").unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENOENT), "{e}");
        // The socket stays usable after an error answer.
        assert_eq!(nl.genl_family("nlctrl").unwrap(), GENL_ID_CTRL);
    }
}
