//! The neighbour table (rtnetlink RTM_GETNEIGH): which link-layer address
//! and interface an on-link IP address answers at, for direct routing.

use super::{NetError, Netlink};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbour {
    pub ip: IpAddr,
    pub ifindex: u32,
    pub mac: [u8; 6],
}

/// States whose link-layer address is usable (STALE included: the address
/// is known, only its freshness is not).
fn usable(s: NeighbourState) -> bool {
    matches!(
        s,
        NeighbourState::Reachable
            | NeighbourState::Stale
            | NeighbourState::Delay
            | NeighbourState::Probe
            | NeighbourState::Permanent
    )
}

fn from_message(m: NeighbourMessage) -> Option<Neighbour> {
    if !usable(m.header.state) {
        return None;
    }
    let mut ip = None;
    let mut mac = None;
    for a in m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => ip = Some(IpAddr::V4(v4)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => ip = Some(IpAddr::V6(v6)),
            NeighbourAttribute::LinkLayerAddress(l) => mac = <[u8; 6]>::try_from(l.as_slice()).ok(),
            _ => {}
        }
    }
    Some(Neighbour { ip: ip?, ifindex: m.header.ifindex, mac: mac? })
}

impl Netlink {
    /// Every resolved IPv4 and IPv6 neighbour with an Ethernet address.
    pub fn neighbours(&mut self) -> Result<Vec<Neighbour>, NetError> {
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut req = NeighbourMessage::default();
            req.header.family = family;
            let replies = self.dump("list neighbours", RouteNetlinkMessage::GetNeighbour(req))?;
            out.extend(replies.into_iter().filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => from_message(n),
                _ => None,
            }));
        }
        Ok(out)
    }
}
