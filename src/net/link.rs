//! Network interfaces (rtnetlink links): name, index, MAC, up and carrier.

use super::{NetError, Netlink};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// Hardware address (6 bytes for Ethernet, empty for lo/tun).
    pub mac: Vec<u8>,
    pub admin_up: bool,
    /// IFF_LOWER_UP: the link has carrier.
    pub carrier: bool,
    pub loopback: bool,
    /// IFF_NOARP: the interface does not do ARP (tun, some tunnels).
    pub noarp: bool,
}

impl Link {
    fn from_message(m: LinkMessage) -> Link {
        let mut link = Link {
            index: m.header.index,
            name: String::new(),
            mac: Vec::new(),
            admin_up: m.header.flags.contains(LinkFlags::Up),
            carrier: m.header.flags.contains(LinkFlags::LowerUp),
            loopback: m.header.flags.contains(LinkFlags::Loopback),
            noarp: m.header.flags.contains(LinkFlags::Noarp),
        };
        for a in m.attributes {
            match a {
                LinkAttribute::IfName(n) => link.name = n,
                LinkAttribute::Address(mac) => link.mac = mac,
                _ => {}
            }
        }
        link
    }

    /// Usable for traffic: administratively up with carrier.
    pub fn is_up(&self) -> bool {
        self.admin_up && (self.carrier || self.loopback)
    }

    /// The Ethernet address, when the link has one.
    pub fn ether(&self) -> Option<[u8; 6]> {
        <[u8; 6]>::try_from(self.mac.as_slice()).ok()
    }
}

impl Netlink {
    pub fn links(&mut self) -> Result<Vec<Link>, NetError> {
        let replies = self.dump("list interfaces", RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(Link::from_message(l)),
                _ => None,
            })
            .collect())
    }

    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, NetError> {
        Ok(self.links()?.into_iter().find(|l| l.name == name))
    }
}
