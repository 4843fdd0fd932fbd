//! Interface addresses (rtnetlink RTM_*ADDR): list, add and delete.

use super::{NetError, Netlink};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope, CacheInfo,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::{IpAddr, Ipv4Addr};

/// One address on one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addr {
    pub index: u32,
    pub ip: IpAddr,
    pub prefix: u8,
    /// IPv4 label ("eth0:web"); for IPv6 the kernel keeps none.
    pub label: Option<String>,
    pub broadcast: Option<Ipv4Addr>,
    pub tentative: bool,
    pub dadfailed: bool,
    pub nodad: bool,
    pub noprefixroute: bool,
}

/// What to add.
#[derive(Clone, Debug)]
pub struct NewAddr {
    pub index: u32,
    pub ip: IpAddr,
    pub prefix: u8,
    pub label: Option<String>,
    pub broadcast: Option<Ipv4Addr>,
    pub nodad: bool,
    pub noprefixroute: bool,
    /// IPv6 preferred lifetime in seconds (None = forever).
    pub preferred_lft: Option<u32>,
    /// Scope host (for addresses on lo in LVS real-server mode).
    pub host_scope: bool,
}

fn family(ip: &IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

impl Addr {
    fn from_message(m: AddressMessage) -> Option<Addr> {
        let mut local = None;
        let mut address = None;
        let mut label = None;
        let mut broadcast = None;
        let mut flags = AddressFlags::from_bits_retain(u32::from(m.header.flags.bits()));
        for a in m.attributes {
            match a {
                AddressAttribute::Local(ip) => local = Some(ip),
                AddressAttribute::Address(ip) => address = Some(ip),
                AddressAttribute::Label(l) => label = Some(l),
                AddressAttribute::Broadcast(b) => broadcast = Some(b),
                // The 32-bit attribute supersedes the 8-bit header field.
                AddressAttribute::Flags(f) => flags = f,
                _ => {}
            }
        }
        // IFA_LOCAL is the interface's own address (differs from IFA_ADDRESS
        // only on point-to-point links, where IFA_ADDRESS is the peer).
        let ip = local.or(address)?;
        Some(Addr {
            index: m.header.index,
            ip,
            prefix: m.header.prefix_len,
            label,
            broadcast,
            tentative: flags.contains(AddressFlags::Tentative),
            dadfailed: flags.contains(AddressFlags::Dadfailed),
            nodad: flags.contains(AddressFlags::Nodad),
            noprefixroute: flags.contains(AddressFlags::Noprefixroute),
        })
    }
}

impl Netlink {
    /// All addresses of both families.
    pub fn addresses(&mut self) -> Result<Vec<Addr>, NetError> {
        let replies = self.dump("list addresses", RouteNetlinkMessage::GetAddress(AddressMessage::default()))?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => Addr::from_message(a),
                _ => None,
            })
            .collect())
    }

    /// Every interface address equal to `ip`.
    pub fn find_address(&mut self, ip: IpAddr) -> Result<Vec<Addr>, NetError> {
        Ok(self.addresses()?.into_iter().filter(|a| a.ip == ip).collect())
    }

    pub fn add_address(&mut self, what: &str, a: &NewAddr) -> Result<(), NetError> {
        let mut m = AddressMessage::default();
        m.header.family = family(&a.ip);
        m.header.prefix_len = a.prefix;
        m.header.index = a.index;
        m.header.scope = if a.host_scope { AddressScope::Host } else { AddressScope::Universe };
        let mut flags = AddressFlags::empty();
        if a.nodad {
            flags |= AddressFlags::Nodad;
        }
        if a.noprefixroute {
            flags |= AddressFlags::Noprefixroute;
        }
        m.header.flags = AddressHeaderFlags::from_bits_truncate(flags.bits() as u8);
        m.attributes.push(AddressAttribute::Local(a.ip));
        m.attributes.push(AddressAttribute::Address(a.ip));
        if let Some(label) = &a.label {
            m.attributes.push(AddressAttribute::Label(label.clone()));
        }
        if let Some(b) = a.broadcast {
            m.attributes.push(AddressAttribute::Broadcast(b));
        }
        if !flags.is_empty() {
            m.attributes.push(AddressAttribute::Flags(flags));
        }
        if let Some(pref) = a.preferred_lft {
            let mut ci = CacheInfo::default();
            ci.ifa_preferred = pref;
            ci.ifa_valid = u32::MAX; // valid forever
            m.attributes.push(AddressAttribute::CacheInfo(ci));
        }
        self.change(what, RouteNetlinkMessage::NewAddress(m), true)
    }

    pub fn del_address(&mut self, what: &str, index: u32, ip: IpAddr, prefix: u8) -> Result<(), NetError> {
        let mut m = AddressMessage::default();
        m.header.family = family(&ip);
        m.header.prefix_len = prefix;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(ip));
        if ip.is_ipv6() {
            m.attributes.push(AddressAttribute::Address(ip));
        }
        self.change(what, RouteNetlinkMessage::DelAddress(m), false)
    }
}
