//! The vip agent's parameters and actions: IPaddr2's names and meanings,
//! plus haven's additions (lvs_realserver, arp_probe_timeout).

use crate::ocf::agent::{ActionSpec, AgentSpec};
use crate::ocf::params::{check_interface, Kind, ParamSpec, Value};
use crate::ocf::Action;
use std::net::{IpAddr, Ipv4Addr};

fn check_ip(s: &str) -> Result<Value, String> {
    let t = s.trim();
    if t.contains('/') {
        return Err("give the address alone and the prefix length in cidr_netmask".into());
    }
    let ip: IpAddr = t.parse().map_err(|_| "not an IPv4 or IPv6 address".to_string())?;
    if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
        return Err("not a unicast address".into());
    }
    Ok(Value::Ip(ip))
}

/// "24" or the dotted quad "255.255.255.0" (accepted, as IPaddr2 does).
/// The family-dependent range is checked once the ip is known.
fn check_netmask(s: &str) -> Result<Value, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u8>() {
        return Ok(Value::Int(i64::from(n)));
    }
    if let Ok(mask) = t.parse::<Ipv4Addr>() {
        let m = u32::from(mask);
        if m.leading_ones() + m.trailing_zeros() == 32 {
            return Ok(Value::Int(i64::from(m.leading_ones())));
        }
        return Err("not a contiguous netmask".into());
    }
    Err("a prefix length such as 24 (or a netmask such as 255.255.255.0)".into())
}

fn check_broadcast(s: &str) -> Result<Value, String> {
    let t = s.trim();
    if t == "+" || t == "-" || t.parse::<Ipv4Addr>().is_ok() {
        Ok(Value::Str(t.to_string()))
    } else {
        Err("an IPv4 address, '+' or '-'".into())
    }
}

/// "eth0", or the deprecated "eth0:label" form IPaddr2 still accepts.
fn check_nic(s: &str) -> Result<Value, String> {
    let t = s.trim();
    let (name, label) = match t.split_once(':') {
        Some((n, l)) => (n, Some(l)),
        None => (t, None),
    };
    check_interface(name)?;
    if let Some(l) = label {
        check_label(l)?;
    }
    Ok(Value::Str(t.to_string()))
}

fn check_label(s: &str) -> Result<Value, String> {
    if s.is_empty() || s.len() > 14 {
        return Err("a label has 1 to 14 characters".into());
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        return Err(format!("a label cannot contain {c:?} (letters, digits, '_', '-', '.')"));
    }
    Ok(Value::Str(s.to_string()))
}

fn check_lifetime(s: &str) -> Result<Value, String> {
    let t = s.trim();
    if t == "forever" || t.parse::<u32>().is_ok_and(|n| n < u32::MAX) {
        Ok(Value::Str(t.to_string()))
    } else {
        Err("'forever' or a number of seconds".into())
    }
}

fn check_netns(s: &str) -> Result<Value, String> {
    let t = s.trim();
    if t.starts_with('/') {
        if t.contains(['\0', '\n']) {
            return Err("control characters are not allowed".into());
        }
        return Ok(Value::Str(t.to_string()));
    }
    let ok = !t.is_empty()
        && !t.starts_with('.')
        && t.len() <= 255
        && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(Value::Str(t.to_string()))
    } else {
        Err("a namespace name as `ip netns` shows it (letters, digits, '_', '-', '.') or an absolute path".into())
    }
}

const CLUSTERIP_GONE: &str =
    "CLUSTERIP (load sharing by cloning the address) was removed from Linux; use the director agent instead";

pub static PARAMS: &[ParamSpec] = &[
    ParamSpec::new(
        "ip",
        Kind::Custom { check: check_ip, hint: "An IPv4 or IPv6 unicast address." },
        "IPv4 or IPv6 address",
        "The virtual address to bring up, e.g. 198.51.100.10 or 2001:db8::10. Clients reach the service \
         on it, so it must be unique in the cluster.",
    )
    .required()
    .unique(),
    ParamSpec::new(
        "nic",
        Kind::Custom { check: check_nic, hint: "An interface name such as eth0." },
        "Network interface",
        "The interface to put the address on. When empty, the interface is taken from the routing table: \
         the most specific on-link route that covers the address (link scope for IPv4), then the lowest \
         metric. A link-local IPv6 address (fe80::/10) needs nic. In lvs_realserver mode this is the uplink \
         whose ARP behaviour is changed (the address itself goes on lo). Give the base interface; for a \
         label use iflabel (the old 'eth0:label' form is still accepted).",
    ),
    ParamSpec::new(
        "cidr_netmask",
        Kind::Custom { check: check_netmask, hint: "A prefix length: 0-32 for IPv4, 0-128 for IPv6." },
        "CIDR netmask",
        "The prefix length of the address, e.g. 24 (not 255.255.255.0, although that is converted). When \
         empty, it is taken from the route that selected the interface.",
    ),
    ParamSpec::new(
        "broadcast",
        Kind::Custom { check: check_broadcast, hint: "An IPv4 address, '+' or '-'." },
        "Broadcast address",
        "The IPv4 broadcast address. When empty (or '+') it is computed from the address and prefix by \
         setting the host bits; '-' clears them instead. Prefixes /31 and /32 get none.",
    ),
    ParamSpec::new(
        "iflabel",
        Kind::Custom { check: check_label, hint: "Letters, digits, '_', '-', '.'." },
        "Interface label",
        "A label for the IPv4 address, appended to the interface name (eth0:web). The kernel allows 15 \
         characters for interface name, colon and label together. IPv6 addresses carry no label.",
    ),
    ParamSpec::new(
        "lvs_support",
        Kind::Boolean,
        "Enable support for LVS DR",
        "For a director that is also a real server in an LVS direct-routing setup: on start, a copy of the \
         address on lo is moved out of the way; on stop, the address goes back to lo so this node keeps \
         accepting traffic for it without announcing it. IPv4 only.",
    )
    .default("false"),
    ParamSpec::new(
        "lvs_realserver",
        Kind::Boolean,
        "LVS-DR real-server mode",
        "Real-server side of LVS direct routing: put the address on lo as a host address (/32 or /128) and \
         set arp_ignore=1 and arp_announce=2 on 'all' and on the uplink (nic, or the interface of the route \
         covering the address), so this server accepts traffic for the address without answering ARP for \
         it. The previous sysctl values are restored when the last such address stops. This mode may be \
         cloned (every real server holds the address).",
    )
    .default("false"),
    ParamSpec::new(
        "arp_interval",
        Kind::Integer { min: 0, max: 60_000 },
        "ARP/NA packet interval in ms",
        "Milliseconds between two rounds of gratuitous ARP (or unsolicited neighbour advertisements).",
    )
    .default("200"),
    ParamSpec::new(
        "arp_count",
        Kind::Integer { min: 0, max: 1000 },
        "ARP/NA packet count sent during initialization",
        "How many rounds of announcements to send after start. For IPv4 a round is a gratuitous ARP \
         request and a gratuitous ARP reply; for IPv6 one unsolicited neighbour advertisement.",
    )
    .default("5"),
    ParamSpec::new(
        "arp_count_refresh",
        Kind::Integer { min: 0, max: 100 },
        "ARP packet count sent during monitoring",
        "For IPv4, gratuitous ARP rounds to send on every monitor, to repair stale ARP caches left by a \
         split brain.",
    )
    .default("0"),
    ParamSpec::new(
        "arp_bg",
        Kind::Boolean,
        "ARP/NA from background",
        "Send the announcements from a background process so start returns at once. The default is true \
         for IPv4 and false for IPv6. The background sender is ended by stop.",
    ),
    ParamSpec::new(
        "arp_sender",
        Kind::String,
        "ARP sender",
        "Accepted for compatibility with IPaddr2 and ignored: haven sends ARP itself from a packet socket.",
    ),
    ParamSpec::new(
        "send_arp_opts",
        Kind::String,
        "Options for ARP sender",
        "Accepted for compatibility with IPaddr2 and ignored (see arp_sender).",
    ),
    ParamSpec::new(
        "run_arping",
        Kind::Boolean,
        "Check for an address collision before start",
        "For IPv4, probe the link (RFC 5227 ARP probes) before adding the address and refuse to start when \
         another host answers for it: a duplicate virtual IP splits the service in two. Unlike IPaddr2, \
         this is on by default; set false to skip it.",
    )
    .default("true"),
    ParamSpec::new(
        "arp_probe_timeout",
        Kind::Integer { min: 1, max: 10_000 },
        "Collision probe time in ms",
        "How long the collision check (run_arping) listens for an answer, in milliseconds; two probes are \
         sent in that time, the first as start begins, and an answer ends the wait at once. A live Linux \
         host on the link answers in well under a millisecond; raise this for links with slow hosts.",
    )
    .default("10"),
    ParamSpec::new(
        "flush_routes",
        Kind::Boolean,
        "Flush kernel routing table on stop",
        "Flush the route cache on stop, so local applications stop using the address at once.",
    )
    .default("false"),
    ParamSpec::new(
        "nodad",
        Kind::Boolean,
        "Use nodad flag",
        "For IPv6, skip Duplicate Address Detection. Without it, start waits for DAD to finish and fails \
         when another host has the address.",
    )
    .default("false"),
    ParamSpec::new(
        "noprefixroute",
        Kind::Boolean,
        "Use noprefixroute flag",
        "Do not create the prefix route for the address (see 'man ip-address').",
    )
    .default("false"),
    ParamSpec::new(
        "preferred_lft",
        Kind::Custom { check: check_lifetime, hint: "'forever' or seconds." },
        "IPv6 preferred lifetime",
        "For IPv6, the preferred lifetime of the address (RFC 4862 5.5.4). 0 keeps the address from being \
         chosen as a source address.",
    )
    .default("forever"),
    ParamSpec::new(
        "network_namespace",
        Kind::Custom { check: check_netns, hint: "A name under /run/netns or an absolute path." },
        "Network namespace to use",
        "Manage the address inside this existing network namespace (as created by `ip netns add`); the \
         interface must be in it.",
    ),
    ParamSpec::new(
        "lvs_ipv6_addrlabel",
        Kind::Boolean,
        "Enable adding IPv6 address label.",
        "IPaddr2's IPv6 address label for LVS-DR.",
    )
    .default("false")
    .unsupported("IPv6 address labels are not implemented; use lvs_realserver on the real servers"),
    ParamSpec::new(
        "lvs_ipv6_addrlabel_value",
        Kind::Integer { min: 0, max: i64::MAX },
        "IPv6 address label value.",
        "IPaddr2's IPv6 address label value.",
    )
    .default("99")
    .unsupported("IPv6 address labels are not implemented"),
    ParamSpec::new("mac", Kind::String, "Cluster IP MAC address", "IPaddr2's CLUSTERIP multicast MAC.")
        .default("")
        .unsupported(CLUSTERIP_GONE),
    ParamSpec::new("clusterip_hash", Kind::String, "Cluster IP hashing function", "IPaddr2's CLUSTERIP hash.")
        .default("sourceip-sourceport")
        .unsupported(CLUSTERIP_GONE),
    ParamSpec::new(
        "unique_clone_address",
        Kind::Boolean,
        "Create a unique address for cloned instances",
        "IPaddr2's per-clone addresses.",
    )
    .default("false")
    .unsupported(CLUSTERIP_GONE),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "vip",
    shortdesc: "Virtual IPv4/IPv6 address (drop-in for IPaddr2, and the LVS-DR real-server side)",
    longdesc: "Brings a virtual IPv4 or IPv6 address up on an interface, announces it with gratuitous ARP \
or unsolicited neighbour advertisements, and takes it down again. It accepts the parameters of \
ocf:heartbeat:IPaddr2 with the same meanings, so a resource migrates by changing only the agent name. \
Everything is done through rtnetlink and sockets: no ip or arping process runs, and the only process \
ever started is the background announcer of start with arp_bg. Before an IPv4 address is added, the link is probed and start refuses when another host already answers for it. \
With lvs_realserver=true the address is held on lo with ARP replies suppressed, as real servers behind \
an LVS direct-routing director need. monitor returns 7 when the address is absent or its link has no \
carrier, 1 when it is half set up (wrong interface, prefix or label, DAD failed), and 190 (degraded) while \
IPv6 duplicate address detection is still running.",
    params: PARAMS,
    actions: &[
        ActionSpec::new(Action::Start, 20),
        ActionSpec::new(Action::Stop, 20),
        ActionSpec::new(Action::Status, 20).depth(0).every(10),
        ActionSpec::new(Action::Monitor, 20).depth(0).every(10),
        ActionSpec::new(Action::MetaData, 5),
        ActionSpec::new(Action::ValidateAll, 20),
    ],
    primary: "ip",
    depths: &[0],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_checks() {
        assert!(check_ip("198.51.100.7").is_ok());
        assert!(check_ip("2001:db8::7").is_ok());
        assert!(check_ip("198.51.100.7/24").is_err());
        assert!(check_ip("198.51.100.7; reboot").is_err());
        assert!(check_ip("224.0.0.1").is_err());
        assert_eq!(check_netmask("255.255.255.0"), Ok(Value::Int(24)));
        assert_eq!(check_netmask("24"), Ok(Value::Int(24)));
        assert!(check_netmask("255.0.255.0").is_err());
        assert!(check_netmask("$(reboot)").is_err());
        assert!(check_nic("eth0:web").is_ok());
        assert!(check_nic("eth0:we b").is_err());
        assert!(check_broadcast("+").is_ok());
        assert!(check_broadcast("x").is_err());
        assert!(check_lifetime("forever").is_ok() && check_lifetime("0").is_ok());
        assert!(check_lifetime("-1").is_err());
        assert!(check_netns("blue").is_ok() && check_netns("/proc/1/ns/net").is_ok());
        assert!(check_netns("../x").is_err() && check_netns("a;b").is_err());
    }
}
