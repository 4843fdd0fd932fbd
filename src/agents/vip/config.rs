//! The vip configuration, typed and checked as a whole (checks that need
//! more than one parameter: prefix range per family, link-local needs nic).

use crate::ocf::params::{ParamError, Params};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broadcast {
    /// Host bits set (the default, and '+').
    Computed,
    /// Host bits cleared ('-').
    Cleared,
    Given(Ipv4Addr),
}

#[derive(Clone, Debug)]
pub struct Config {
    pub ip: IpAddr,
    pub nic: Option<String>,
    pub iflabel: Option<String>,
    pub prefix: Option<u8>,
    pub broadcast: Broadcast,
    pub lvs_support: bool,
    pub realserver: bool,
    pub arp_count: u32,
    pub arp_interval: Duration,
    pub arp_count_refresh: u32,
    pub arp_bg: bool,
    pub run_arping: bool,
    pub arp_probe_timeout: Duration,
    pub flush_routes: bool,
    pub nodad: bool,
    pub noprefixroute: bool,
    /// IPv6 preferred lifetime in seconds; None = forever.
    pub preferred_lft: Option<u32>,
    pub netns: Option<String>,
    pub ignored: Vec<&'static str>,
}

fn malformed(name: &'static str, value: impl ToString, why: impl ToString) -> ParamError {
    ParamError::Malformed { name, value: value.to_string(), why: why.to_string() }
}

impl Config {
    pub fn from_params(p: &Params) -> Result<Config, ParamError> {
        let ip = p.ip("ip")?.ok_or(ParamError::Missing { name: "ip" })?;
        let (nic, iflabel) = nic_and_label(p, ip)?;
        let (lvs_support, realserver) = lvs_modes(p, ip)?;
        if let IpAddr::V6(v6) = ip {
            if v6.is_unicast_link_local() && nic.is_none() && !realserver {
                return Err(malformed("ip", ip, "a link-local address (fe80::/10) needs the nic parameter"));
            }
        }
        let ms = |name: &'static str| -> Result<Duration, ParamError> {
            Ok(Duration::from_millis(p.int(name)?.unwrap_or(0).max(0) as u64))
        };
        let count = |name: &'static str| -> Result<u32, ParamError> {
            Ok(u32::try_from(p.int(name)?.unwrap_or(0)).unwrap_or(0))
        };
        let preferred_lft = match p.str("preferred_lft")? {
            None | Some("forever") => None,
            Some(s) => Some(s.parse::<u32>().map_err(|_| malformed("preferred_lft", s, "not a number of seconds"))?),
        };
        Ok(Config {
            ip,
            nic,
            iflabel,
            prefix: prefix(p, ip)?,
            broadcast: broadcast(p, ip)?,
            lvs_support,
            realserver,
            arp_count: count("arp_count")?,
            arp_interval: ms("arp_interval")?,
            arp_count_refresh: count("arp_count_refresh")?,
            // IPaddr2's family-dependent default.
            arp_bg: p.bool("arp_bg")?.unwrap_or(ip.is_ipv4()),
            run_arping: p.flag("run_arping")?,
            arp_probe_timeout: ms("arp_probe_timeout")?,
            flush_routes: p.flag("flush_routes")?,
            nodad: p.flag("nodad")?,
            noprefixroute: p.flag("noprefixroute")?,
            preferred_lft,
            netns: p.str("network_namespace")?.map(str::to_string),
            ignored: ["arp_sender", "send_arp_opts"].into_iter().filter(|n| p.is_set(n)).collect(),
        })
    }

    pub fn host_prefix(&self) -> u8 {
        if self.ip.is_ipv4() {
            32
        } else {
            128
        }
    }
}

/// nic, possibly in IPaddr2's `nic:label` form (that label wins over iflabel).
fn nic_and_label(p: &Params, ip: IpAddr) -> Result<(Option<String>, Option<String>), ParamError> {
    let (nic, mut iflabel) = match p.str("nic")? {
        Some(n) => match n.split_once(':') {
            Some((name, label)) => (Some(name.to_string()), Some(label.to_string())),
            None => (Some(n.to_string()), None),
        },
        None => (None, None),
    };
    if iflabel.is_none() {
        iflabel = p.str("iflabel")?.map(str::to_string);
    }
    if iflabel.is_some() && !ip.is_ipv4() {
        return Err(malformed("iflabel", iflabel.unwrap_or_default(), "IPv6 addresses carry no label"));
    }
    Ok((nic, iflabel))
}

/// cidr_netmask, within the address family's range.
fn prefix(p: &Params, ip: IpAddr) -> Result<Option<u8>, ParamError> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match p.int("cidr_netmask")? {
        Some(n) if (0..=max).contains(&n) => Ok(Some(n as u8)),
        Some(n) => Err(malformed("cidr_netmask", n, format!("{ip} takes a prefix length of 0 to {max}"))),
        None => Ok(None),
    }
}

fn broadcast(p: &Params, ip: IpAddr) -> Result<Broadcast, ParamError> {
    Ok(match p.str("broadcast")? {
        None | Some("+") => Broadcast::Computed,
        Some("-") => Broadcast::Cleared,
        Some(b) if !ip.is_ipv4() => return Err(malformed("broadcast", b, "IPv6 has no broadcast address")),
        Some(b) => Broadcast::Given(b.parse().map_err(|_| malformed("broadcast", b, "not an IPv4 address"))?),
    })
}

/// lvs_support (director side, IPv4) and lvs_realserver, which exclude each other.
fn lvs_modes(p: &Params, ip: IpAddr) -> Result<(bool, bool), ParamError> {
    let lvs_support = p.flag("lvs_support")?;
    let realserver = p.flag("lvs_realserver")?;
    if lvs_support && !ip.is_ipv4() {
        return Err(malformed("lvs_support", "true", "IPv6 does not need it; use lvs_realserver on the real servers"));
    }
    if lvs_support && realserver {
        return Err(ParamError::Conflict {
            first: "lvs_support",
            second: "lvs_realserver",
            why: "lvs_support is for the director, lvs_realserver for the real servers".into(),
        });
    }
    Ok((lvs_support, realserver))
}

/// The IPv4 broadcast address for ip/prefix; none for /31 and /32.
pub fn broadcast_for(ip: Ipv4Addr, prefix: u8, how: Broadcast) -> Option<Ipv4Addr> {
    if prefix >= 31 {
        return None;
    }
    let host_bits = u32::MAX >> prefix;
    let ip = u32::from(ip);
    Some(match how {
        Broadcast::Given(b) => b,
        Broadcast::Computed => Ipv4Addr::from(ip | host_bits),
        Broadcast::Cleared => Ipv4Addr::from(ip & !host_bits),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::vip::spec::PARAMS;
    use std::collections::BTreeMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ParamError> {
        let raw: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_params(&Params::parse(PARAMS, &raw)?)
    }

    #[test]
    fn defaults_follow_ipaddr2() {
        let c = cfg(&[("ip", "198.51.100.7")]).unwrap();
        assert_eq!(c.arp_count, 5);
        assert_eq!(c.arp_interval, Duration::from_millis(200));
        assert!(c.arp_bg, "IPv4 announces in the background by default");
        assert!(c.run_arping);
        let c6 = cfg(&[("ip", "2001:db8::7")]).unwrap();
        assert!(!c6.arp_bg, "IPv6 announces in the foreground by default");
    }

    #[test]
    fn family_dependent_checks_name_the_parameter() {
        let e = cfg(&[("ip", "198.51.100.7"), ("cidr_netmask", "33")]).unwrap_err();
        assert!(e.to_string().contains("'cidr_netmask'"), "{e}");
        assert!(cfg(&[("ip", "2001:db8::7"), ("cidr_netmask", "64")]).is_ok());
        let e = cfg(&[("ip", "fe80::7")]).unwrap_err();
        assert!(e.to_string().contains("nic"), "{e}");
        let e = cfg(&[("ip", "2001:db8::7"), ("iflabel", "web")]).unwrap_err();
        assert!(e.to_string().contains("'iflabel'"), "{e}");
        let e = cfg(&[("ip", "198.51.100.7"), ("lvs_support", "true"), ("lvs_realserver", "true")]).unwrap_err();
        assert!(matches!(e, ParamError::Conflict { .. }));
        let e = cfg(&[("ip", "198.51.100.7"), ("mac", "01:00:5e:00:00:01")]).unwrap_err();
        assert!(matches!(e, ParamError::Unsupported { name: "mac", .. }));
    }

    #[test]
    fn nic_label_form() {
        let c = cfg(&[("ip", "198.51.100.7"), ("nic", "eth0:web"), ("iflabel", "other")]).unwrap();
        assert_eq!(c.nic.as_deref(), Some("eth0"));
        assert_eq!(c.iflabel.as_deref(), Some("web"));
    }

    #[test]
    fn broadcast_is_computed() {
        let ip = Ipv4Addr::new(198, 51, 100, 7);
        assert_eq!(broadcast_for(ip, 24, Broadcast::Computed), Some(Ipv4Addr::new(198, 51, 100, 255)));
        assert_eq!(broadcast_for(ip, 26, Broadcast::Computed), Some(Ipv4Addr::new(198, 51, 100, 63)));
        assert_eq!(broadcast_for(ip, 24, Broadcast::Cleared), Some(Ipv4Addr::new(198, 51, 100, 0)));
        assert_eq!(broadcast_for(ip, 31, Broadcast::Computed), None);
        assert_eq!(broadcast_for(ip, 32, Broadcast::Computed), None);
    }
}
