//! Direct routing (`gate`) and IP-in-IP tunnelling (`ipip`) on nftables,
//! for kernels without IPVS: a netdev table whose ingress chains, on the
//! interfaces that receive a virtual service's packets, choose a real
//! server per flow (numgen or jhash, as the DNAT path does), remember the
//! choice in a per-service dynamic map keyed by the client's address and
//! port, and forward the packet with its destination address unchanged.
//! gate rewrites the Ethernet addresses (the real server's MAC from the
//! neighbour table) and sends the frame out on the real server's link
//! (`fwd to`); ipip hands the IP packet to an ipip tunnel device made for
//! that real server with `ip link` (`fwd ip to ... device`), which
//! encapsulates it. The real servers answer clients directly.

use super::config::{Method, Protocol};
use super::table::{Service, Table};
use super::LbError;
use crate::exec;
use crate::net::Netlink;
use crate::ocf::Deadline;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, UdpSocket};
use std::time::Duration;

/// How long a flow keeps its real server after its last packet (IPVS's
/// TCP established timeout; UDP's is shorter).
const TCP_FLOW_SECS: u32 = 900;
const UDP_FLOW_SECS: u32 = 300;
/// Flows remembered per service at most.
const FLOW_MAP_SIZE: u32 = 65536;

/// How a real server is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// Same link: rewrite the Ethernet addresses, send out on `dev`.
    Ether { dev: String, src: [u8; 6], dst: [u8; 6] },
    /// Into the ipip tunnel device `dev` (remote = the real server).
    Tunnel { dev: String, remote: IpAddr },
}

/// What the kernel's view gave: the ingress interfaces and how each real
/// server (by id) is reached. Compared between rounds: a change (a MAC
/// moved, the VIP moved to another interface) re-programs the table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    pub ingress: Vec<(u32, String)>,
    pub vias: BTreeMap<u32, Via>,
}

/// Whether a service is forwarded by the netdev table (gate/ipip real
/// servers only, on TCP or UDP) rather than DNAT'ed. A fwmark service is
/// not: its mark is set after the ingress hook. A service on its local
/// fallback is DNAT'ed (redirected) too.
pub fn is_dr(s: &Service) -> bool {
    !s.on_fallback
        && matches!(s.protocol, Protocol::Tcp | Protocol::Udp)
        && !s.dests.is_empty()
        && s.dests.iter().all(|d| matches!(d.method, Method::Gate | Method::Ipip) && !d.addr.ip().is_loopback())
}

fn is_v4(ip: IpAddr) -> bool {
    ip.is_ipv4()
}

fn mac(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// A stable name part for a service: its flow map outlives reloads.
fn service_key(s: &Service) -> String {
    let proto = if s.protocol == Protocol::Tcp { "tcp" } else { "udp" };
    let ip: String = s.vip.ip().to_string().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("{proto}_{ip}_{}", s.vip.port())
}

/// Interface names go into nft's text syntax quoted: only names of
/// ordinary characters are used.
fn plain_ifname(n: &str) -> bool {
    !n.is_empty() && n.len() < 16 && n.chars().all(|c| c.is_ascii_alphanumeric() || "_.-@".contains(c))
}

/// The rules of one DR service's chain, given the ids of its real servers.
fn service_rules(s: &Service, ids: &BTreeMap<(IpAddr, Method), u32>, env: &Env) -> Vec<String> {
    let key = service_key(s);
    let saddr = if is_v4(s.vip.ip()) { "ip saddr" } else { "ip6 saddr" };
    let flow = format!("{saddr} . th sport");
    let mut slots = Vec::new();
    for (addr, n) in super::nft::weighted(s) {
        if let Some(id) = ids.get(&(addr.ip(), method_of(s, addr.ip()))).filter(|id| env.vias.contains_key(id)) {
            slots.extend(std::iter::repeat_n(*id, n));
        }
    }
    let mut out = vec!["meta mark set 0".to_string(), format!("meta mark set {flow} map @f_{key}")];
    if !slots.is_empty() {
        let pick = if s.persistent || matches!(s.scheduler.as_str(), "sh" | "dh" | "mh" | "lblc" | "lblcr") {
            format!("jhash {saddr} mod {}", slots.len())
        } else {
            format!("numgen inc mod {}", slots.len())
        };
        let map: Vec<String> = slots.iter().enumerate().map(|(i, id)| format!("{i} : {id}")).collect();
        out.push(format!("meta mark 0 meta mark set {pick} map {{ {} }}", map.join(", ")));
    }
    out.push(format!("meta mark != 0 update @f_{key} {{ {flow} : meta mark }}"));
    // Every real server of the service ever seen stays reachable for the
    // flows it holds (quiescent or removed: only new flows go elsewhere).
    let all: BTreeSet<u32> = s
        .dests
        .iter()
        .filter_map(|d| ids.get(&(d.addr.ip(), d.method)))
        .chain(ids.iter().filter(|((ip, _), _)| is_v4(*ip) == is_v4(s.vip.ip())).map(|(_, id)| id))
        .filter(|id| env.vias.contains_key(id))
        .copied()
        .collect();
    if !all.is_empty() {
        let v: Vec<String> = all.iter().map(|id| format!("{id} : goto rs_{id}")).collect();
        out.push(format!("meta mark vmap {{ {} }}", v.join(", ")));
    }
    out
}

fn method_of(s: &Service, ip: IpAddr) -> Method {
    s.dests.iter().find(|d| d.addr.ip() == ip).map_or(Method::Gate, |d| d.method)
}

/// The netdev table as one nft transaction (text syntax: dynamic maps and
/// `fwd` are not all expressible in nft 1.0's JSON). Flushing the table
/// keeps the flow maps' elements, so established flows survive.
pub fn ruleset(t: &Table, table: &str, ids: &BTreeMap<(IpAddr, Method), u32>, env: &Env) -> String {
    let mut o = String::new();
    let tb = format!("netdev {table}");
    let _ = writeln!(o, "add table {tb}\nflush table {tb}");
    for (index, dev) in &env.ingress {
        let _ = writeln!(
            o,
            "add chain {tb} in_{index} {{ type filter hook ingress device \"{dev}\" priority -100; policy accept; }}"
        );
    }
    for (id, via) in &env.vias {
        let _ = writeln!(o, "add chain {tb} rs_{id}");
        let action = match via {
            Via::Ether { dev, src, dst } => {
                format!("ether saddr set {} ether daddr set {} fwd to \"{dev}\"", mac(src), mac(dst))
            }
            Via::Tunnel { dev, remote } => {
                let fam = if is_v4(*remote) { "ip" } else { "ip6" };
                format!("fwd {fam} to {remote} device \"{dev}\"")
            }
        };
        let _ = writeln!(o, "add rule {tb} rs_{id} counter {action}");
    }
    for s in t.services.iter().filter(|s| is_dr(s)) {
        let key = service_key(s);
        let v4 = is_v4(s.vip.ip());
        let secs = if s.protocol == Protocol::Tcp { TCP_FLOW_SECS } else { UDP_FLOW_SECS }.max(s.persistent_secs);
        let _ = writeln!(
            o,
            "add map {tb} f_{key} {{ typeof {} saddr . th sport : meta mark; flags dynamic,timeout; timeout {secs}s; size {FLOW_MAP_SIZE}; }}",
            if v4 { "ip" } else { "ip6" }
        );
        let _ = writeln!(o, "add chain {tb} s_{key}");
        for r in service_rules(s, ids, env) {
            let _ = writeln!(o, "add rule {tb} s_{key} {r}");
        }
        let (fam, l4) = (if v4 { "ip" } else { "ip6" }, if s.protocol == Protocol::Tcp { "tcp" } else { "udp" });
        for (index, _) in &env.ingress {
            let _ = writeln!(
                o,
                "add rule {tb} in_{index} {fam} daddr {} {l4} dport {} counter jump s_{key}",
                s.vip.ip(),
                s.vip.port()
            );
        }
    }
    o
}

/// The netdev side of the nftables backend.
pub struct Dr {
    table: String,
    /// Stable ids (marks, chain names) of every real server seen.
    ids: BTreeMap<(IpAddr, Method), u32>,
    /// How each was last reached: kept when a neighbour entry lapses.
    env: Env,
    /// ipip devices this director made (removed on clear).
    tunnels: BTreeSet<String>,
    applied: Option<String>,
    /// Whether the table holds any DR service (else it is not made).
    active: bool,
}

fn nft(args: &[&str], input: Option<&str>, d: &Deadline) -> Result<String, LbError> {
    let mut argv = vec!["nft"];
    argv.extend_from_slice(args);
    match input {
        None => Ok(exec::run_ok(&argv, d)?.stdout),
        Some(text) => Ok(exec::run_with_input(&argv, text.as_bytes(), d)?.stdout),
    }
}

/// Make the kernel resolve `ip` (an ARP request or neighbour solicitation)
/// by sending one empty datagram to its discard port.
fn poke(ip: IpAddr) {
    let bind: IpAddr = if ip.is_ipv4() { [0u8; 4].into() } else { [0u16; 8].into() };
    if let Ok(sock) = UdpSocket::bind((bind, 0)) {
        let _ = sock.send_to(&[], (ip, 9));
    }
}

impl Dr {
    pub fn new(table: &str) -> Dr {
        Dr {
            table: table.to_string(),
            ids: BTreeMap::new(),
            env: Env::default(),
            tunnels: BTreeSet::new(),
            applied: None,
            active: false,
        }
    }

    /// The ipip device of real server `id`: short (IFNAMSIZ) and distinct
    /// per table.
    fn tunnel_name(&self, id: u32) -> String {
        let h = self.table.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) & 0xffff;
        format!("hv{h:04x}t{id}")
    }

    fn ensure_tunnel(&mut self, rt: &mut Netlink, id: u32, remote: IpAddr, d: &Deadline) -> Result<String, LbError> {
        let name = self.tunnel_name(id);
        if rt.link_by_name(&name)?.is_none() {
            let kind = if remote.is_ipv4() { "ipip" } else { "ip6tnl" };
            let r = remote.to_string();
            let mut argv = vec!["ip", "link", "add", name.as_str(), "type", kind, "remote", r.as_str()];
            if !remote.is_ipv4() {
                argv.extend(["mode", "ipip6"]);
            }
            exec::run_ok(&argv, d)?;
            self.tunnels.insert(name.clone());
        }
        exec::run_ok(&["ip", "link", "set", name.as_str(), "up"], d)?;
        Ok(name)
    }

    /// Read the kernel's view: ingress interfaces (those holding a DR
    /// VIP, and the gate real servers' links) and how to reach each real
    /// server. Unresolved neighbours are poked and read again, briefly.
    fn resolve(&mut self, t: &Table, d: &Deadline) -> Result<Env, LbError> {
        let mut rt = Netlink::route(Deadline::after(d.remaining().min(Duration::from_secs(5))))?;
        let dr: Vec<&Service> = t.services.iter().filter(|s| is_dr(s)).collect();
        for s in &dr {
            for dst in &s.dests {
                let next = self.ids.len() as u32 + 1;
                self.ids.entry((dst.addr.ip(), dst.method)).or_insert(next);
            }
        }
        let gate: BTreeSet<IpAddr> =
            dr.iter().flat_map(|s| &s.dests).filter(|x| x.method == Method::Gate).map(|x| x.addr.ip()).collect();
        let mut neigh = rt.neighbours()?;
        let missing: Vec<IpAddr> = gate.iter().filter(|ip| !neigh.iter().any(|n| n.ip == **ip)).copied().collect();
        if !missing.is_empty() {
            missing.iter().for_each(|ip| poke(*ip));
            for _ in 0..10 {
                std::thread::sleep(Duration::from_millis(50));
                neigh = rt.neighbours()?;
                if missing.iter().all(|ip| neigh.iter().any(|n| n.ip == *ip)) {
                    break;
                }
            }
        }
        let links = rt.links()?;
        let mut env = Env { ingress: Vec::new(), vias: self.env.vias.clone() };
        let mut ingress = BTreeSet::new();
        for (&(ip, method), &id) in &self.ids.clone() {
            if method == Method::Ipip {
                let dev = self.ensure_tunnel(&mut rt, id, ip, d)?;
                env.vias.insert(id, Via::Tunnel { dev, remote: ip });
                continue;
            }
            let Some(n) = neigh.iter().find(|n| n.ip == ip) else { continue };
            let Some(l) = links.iter().find(|l| l.index == n.ifindex && plain_ifname(&l.name)) else { continue };
            if let Some(src) = l.ether() {
                env.vias.insert(id, Via::Ether { dev: l.name.clone(), src, dst: n.mac });
                if gate.contains(&ip) {
                    ingress.insert((l.index, l.name.clone()));
                }
            }
        }
        let vips: BTreeSet<IpAddr> = dr.iter().map(|s| s.vip.ip()).collect();
        for a in rt.addresses()?.iter().filter(|a| vips.contains(&a.ip)) {
            if let Some(l) = links.iter().find(|l| l.index == a.index && !l.loopback && plain_ifname(&l.name)) {
                ingress.insert((l.index, l.name.clone()));
            }
        }
        env.ingress = ingress.into_iter().collect();
        Ok(env)
    }

    fn listing(&self, d: &Deadline) -> Result<Option<String>, LbError> {
        let argv = ["nft", "-s", "-t", "list", "table", "netdev", self.table.as_str()];
        super::nft::list_table(&argv, "list netdev table", d)
    }

    /// Program the DR services of `t` (none: the netdev table is removed).
    pub fn apply(&mut self, t: &Table, d: &Deadline) -> Result<(), LbError> {
        if !t.services.iter().any(is_dr) {
            if self.active {
                self.clear_table(d)?;
            }
            return Ok(());
        }
        self.env = self.resolve(t, d)?;
        let text = ruleset(t, &self.table, &self.ids, &self.env);
        nft(&["-f", "-"], Some(&text), d)?;
        self.active = true;
        self.applied = self.listing(d)?;
        Ok(())
    }

    /// The kernel still holds what was applied, and the neighbours and
    /// interfaces are as they were (else the next round re-programs).
    pub fn verify(&mut self, t: &Table, d: &Deadline) -> Result<bool, LbError> {
        if !self.active {
            return Ok(true);
        }
        let env = self.resolve(t, d)?;
        Ok(env == self.env && self.applied.is_some() && self.listing(d)? == self.applied)
    }

    fn clear_table(&mut self, d: &Deadline) -> Result<(), LbError> {
        if self.listing(d)?.is_some() {
            nft(&["delete", "table", "netdev", &self.table], None, d)?;
        }
        self.active = false;
        self.applied = None;
        Ok(())
    }

    /// Remove the netdev table and the tunnel devices made for it.
    pub fn clear(&mut self, d: &Deadline) -> Result<(), LbError> {
        self.clear_table(d)?;
        for dev in std::mem::take(&mut self.tunnels) {
            let _ = exec::run(&["ip", "link", "del", dev.as_str()], d);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::Dest;
    use super::*;

    fn svc(method: Method, weights: &[u32]) -> Service {
        Service {
            vip: "198.51.100.10:80".parse().unwrap(),
            protocol: Protocol::Tcp,
            scheduler: "wrr".into(),
            persistent: false,
            persistent_secs: 0,
            dests: weights
                .iter()
                .enumerate()
                .map(|(i, w)| Dest { addr: format!("198.51.100.{}:80", i + 11).parse().unwrap(), weight: *w, method })
                .collect(),
            on_fallback: false,
        }
    }

    fn env_for(s: &Service) -> (BTreeMap<(IpAddr, Method), u32>, Env) {
        let mut ids = BTreeMap::new();
        let mut env = Env { ingress: vec![(2, "e0".into())], vias: BTreeMap::new() };
        for (i, d) in s.dests.iter().enumerate() {
            let id = i as u32 + 1;
            ids.insert((d.addr.ip(), d.method), id);
            env.vias
                .insert(id, Via::Ether { dev: "e0".into(), src: [2, 0, 0, 0, 0, 1], dst: [2, 0, 0, 0, 0, id as u8] });
        }
        (ids, env)
    }

    #[test]
    fn which_services_are_direct_routed() {
        assert!(is_dr(&svc(Method::Gate, &[1, 1])));
        assert!(is_dr(&svc(Method::Ipip, &[1])));
        assert!(!is_dr(&svc(Method::Masq, &[1])));
        let mut fb = svc(Method::Gate, &[1]);
        fb.on_fallback = true;
        assert!(!is_dr(&fb), "the local fallback is redirected");
        let mut mark = svc(Method::Gate, &[1]);
        mark.protocol = Protocol::Fwmark(3);
        assert!(!is_dr(&mark));
    }

    #[test]
    fn gate_rules_pin_flows_and_keep_quiescent_servers_reachable() {
        let s = svc(Method::Gate, &[1, 0, 2]);
        let (ids, env) = env_for(&s);
        let text = ruleset(&Table { services: vec![s] }, "t", &ids, &env);
        assert!(text.contains("hook ingress device \"e0\""), "{text}");
        assert!(text.contains("ether daddr set 02:00:00:00:00:02 fwd to \"e0\""), "{text}");
        assert!(text.contains("map @f_tcp_198_51_100_10_80"), "{text}");
        // Weights 1:0:2 -> slots for ids 1, 3, 3; id 2 (quiescent) only in
        // the dispatch, so its flows continue.
        assert!(text.contains("numgen inc mod 3 map { 0 : 1, 1 : 3, 2 : 3 }"), "{text}");
        assert!(text.contains("meta mark vmap { 1 : goto rs_1, 2 : goto rs_2, 3 : goto rs_3 }"), "{text}");
        assert!(text.contains("ip daddr 198.51.100.10 tcp dport 80 counter jump s_tcp_198_51_100_10_80"), "{text}");
    }

    #[test]
    fn ipip_rules_forward_into_the_tunnel() {
        let mut s = svc(Method::Ipip, &[1]);
        s.persistent = true;
        let (ids, mut env) = env_for(&s);
        env.vias.insert(1, Via::Tunnel { dev: "hv0001t1".into(), remote: "198.51.100.11".parse().unwrap() });
        let text = ruleset(&Table { services: vec![s] }, "t", &ids, &env);
        assert!(text.contains("fwd ip to 198.51.100.11 device \"hv0001t1\""), "{text}");
        assert!(text.contains("jhash ip saddr mod 1"), "{text}");
    }

    #[test]
    fn odd_interface_names_are_not_quoted_into_rules() {
        assert!(plain_ifname("eth0") && plain_ifname("br-lan.10"));
        assert!(!plain_ifname("a\"b") && !plain_ifname("") && !plain_ifname("0123456789abcdefg"));
    }
}
