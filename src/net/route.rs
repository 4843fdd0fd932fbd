//! Routes (rtnetlink RTM_GETROUTE dumps), and choosing the interface and
//! prefix for an address the way operators expect IPaddr2's findif to.

use super::{NetError, Netlink};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteScope, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::IpAddr;

/// RT_TABLE_MAIN: `ip route` shows this table.
const MAIN_TABLE: u32 = 254;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub dst: IpAddr,
    pub prefix: u8,
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    pub link_scope: bool,
    pub metric: u32,
    pub table: u32,
    pub unicast: bool,
}

fn ip_of(a: RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(v6)),
        _ => None,
    }
}

impl Route {
    fn from_message(m: RouteMessage) -> Option<Route> {
        let v4 = m.header.address_family == AddressFamily::Inet;
        let mut r = Route {
            dst: if v4 { IpAddr::from([0u8; 4]) } else { IpAddr::from([0u16; 8]) },
            prefix: m.header.destination_prefix_length,
            oif: None,
            gateway: None,
            link_scope: m.header.scope == RouteScope::Link,
            metric: 0,
            table: u32::from(m.header.table),
            unicast: m.header.kind == RouteType::Unicast,
        };
        for a in m.attributes {
            match a {
                RouteAttribute::Destination(d) => r.dst = ip_of(d)?,
                RouteAttribute::Gateway(g) => r.gateway = ip_of(g),
                RouteAttribute::Oif(i) => r.oif = Some(i),
                RouteAttribute::Priority(p) => r.metric = p,
                RouteAttribute::Table(t) => r.table = t,
                _ => {}
            }
        }
        Some(r)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        contains(self.dst, self.prefix, ip)
    }
}

/// Whether `ip` lies in `net/prefix`.
pub fn contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

impl Netlink {
    /// The main table's unicast routes of the address family of `like`.
    pub fn routes(&mut self, like: IpAddr) -> Result<Vec<Route>, NetError> {
        let mut m = RouteMessage::default();
        m.header.address_family = if like.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
        let replies = self.dump("list routes", RouteNetlinkMessage::GetRoute(m))?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Route::from_message(r),
                _ => None,
            })
            .filter(|r| r.table == MAIN_TABLE && r.unicast)
            .collect())
    }
}

/// The on-link route that best covers `ip`, following IPaddr2's findif
/// where it refuses: for IPv4 a link-scope route (`ip route list match ...
/// scope link`), for IPv6 a route without a gateway; the default route and
/// host routes (/32, /128: `ip route` prints them without a prefix, so findif
/// never picks them) never count. With `within` (a cidr_netmask given without
/// nic) the route must cover the whole `ip/within` (`match ip/within`): a
/// netmask wider than the network the address falls in is ambiguous. The
/// most specific prefix wins, then the lowest metric. `oif` restricts the
/// choice to one interface.
pub fn best_onlink(routes: &[Route], ip: IpAddr, oif: Option<u32>, within: Option<u8>) -> Option<&Route> {
    let host = if ip.is_ipv4() { 32 } else { 128 };
    routes
        .iter()
        .filter(|r| r.prefix > 0 && r.prefix < host && r.contains(ip) && r.oif.is_some())
        .filter(|r| within.is_none_or(|w| r.prefix <= w))
        .filter(|r| if ip.is_ipv4() { r.link_scope } else { r.gateway.is_none() })
        .filter(|r| oif.is_none() || r.oif == oif)
        .min_by_key(|r| (std::cmp::Reverse(r.prefix), r.metric))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(dst: &str, prefix: u8, oif: u32, metric: u32, link: bool, gw: Option<&str>) -> Route {
        Route {
            dst: dst.parse().unwrap(),
            prefix,
            oif: Some(oif),
            gateway: gw.map(|g| g.parse().unwrap()),
            link_scope: link,
            metric,
            table: MAIN_TABLE,
            unicast: true,
        }
    }

    #[test]
    fn most_specific_then_lowest_metric() {
        let routes = vec![
            r("0.0.0.0", 0, 1, 0, false, Some("198.51.100.1")),
            r("198.51.100.0", 24, 2, 100, true, None),
            r("198.51.100.0", 24, 3, 50, true, None),
            r("198.51.100.0", 25, 4, 500, true, None),
            r("198.51.100.0", 26, 5, 0, false, Some("198.51.100.1")),
        ];
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(best_onlink(&routes, ip, None, None).map(|r| r.oif), Some(Some(4)));
        assert_eq!(best_onlink(&routes, ip, Some(2), None).map(|r| r.oif), Some(Some(2)));
        let far: IpAddr = "198.51.100.200".parse().unwrap();
        assert_eq!(best_onlink(&routes, far, None, None).map(|r| r.oif), Some(Some(3)));
        assert_eq!(best_onlink(&routes, "203.0.113.5".parse().unwrap(), None, None), None);
    }

    #[test]
    fn ipv6_needs_no_gateway() {
        let routes = vec![r("2001:db8::", 64, 2, 256, false, None), r("2001:db8::", 48, 3, 1, false, Some("fe80::1"))];
        let ip: IpAddr = "2001:db8::7".parse().unwrap();
        assert_eq!(best_onlink(&routes, ip, None, None).map(|r| r.oif), Some(Some(2)));
        assert_eq!(best_onlink(&routes, ip, Some(3), None), None);
    }

    // findif's refusals, one test each.
    #[test]
    fn findif_refuses_a_netmask_wider_than_the_covering_route() {
        let routes = vec![r("198.51.100.0", 24, 2, 0, true, None)];
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(best_onlink(&routes, ip, None, Some(16)), None, "/16 over a /24 network is ambiguous");
        assert_eq!(best_onlink(&routes, ip, None, Some(23)), None);
        assert!(best_onlink(&routes, ip, None, Some(24)).is_some(), "the network's own prefix");
        assert!(best_onlink(&routes, ip, None, Some(27)).is_some(), "narrower is inside the network");
        assert!(best_onlink(&routes, ip, None, Some(32)).is_some());
        // A wider route on another interface covers the /16: that one is chosen.
        let both = vec![routes[0].clone(), r("198.51.0.0", 16, 3, 0, true, None)];
        assert_eq!(best_onlink(&both, ip, None, Some(16)).map(|r| r.oif), Some(Some(3)));
        assert_eq!(best_onlink(&both, ip, None, None).map(|r| r.oif), Some(Some(2)));
    }

    #[test]
    fn findif_never_picks_host_or_default_routes() {
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let host = vec![r("198.51.100.7", 32, 2, 0, true, None)];
        assert_eq!(best_onlink(&host, ip, None, None), None, "a /32 host route gives no netmask");
        let default = vec![r("0.0.0.0", 0, 2, 0, true, None)];
        assert_eq!(best_onlink(&default, ip, None, None), None, "the default route never counts");
        let ip6: IpAddr = "2001:db8::7".parse().unwrap();
        let host6 = vec![r("2001:db8::7", 128, 2, 0, false, None)];
        assert_eq!(best_onlink(&host6, ip6, None, None), None);
    }

    #[test]
    fn findif_needs_a_link_scope_route_for_ipv4() {
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let via = vec![r("198.51.100.0", 24, 2, 0, false, Some("203.0.113.1"))];
        assert_eq!(best_onlink(&via, ip, None, None), None, "a route through a gateway is not on-link");
    }

    #[test]
    fn findif_with_nic_needs_a_route_on_that_nic() {
        let routes = vec![r("198.51.100.0", 24, 2, 0, true, None)];
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(best_onlink(&routes, ip, Some(3), None), None);
        assert!(best_onlink(&routes, ip, Some(2), None).is_some());
    }

    #[test]
    fn containment() {
        assert!(contains("198.51.100.0".parse().unwrap(), 24, "198.51.100.255".parse().unwrap()));
        assert!(!contains("198.51.100.0".parse().unwrap(), 24, "198.51.101.0".parse().unwrap()));
        assert!(contains("0.0.0.0".parse().unwrap(), 0, "203.0.113.1".parse().unwrap()));
        assert!(!contains("2001:db8::".parse().unwrap(), 64, "198.51.100.1".parse().unwrap()));
    }
}
