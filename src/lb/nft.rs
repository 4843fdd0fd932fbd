//! The nftables data plane: one table of haven's own, a DNAT rule per
//! virtual service choosing a real server with numgen (round robin,
//! weighted by repeating entries) or jhash of the client address (source
//! hashing, persistence). Every change is one atomic `nft -j -f -`
//! transaction. Established connections keep their real server through
//! conntrack, so a quiescent real server (weight 0) only stops taking new
//! ones. gate and ipip services are forwarded without DNAT by the netdev
//! table of dr.rs.

use super::config::Protocol;
use super::table::{Service, Table};
use super::LbError;
use crate::exec;
use crate::ocf::Deadline;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Map entries per rule at most: weights are scaled down to fit.
const MAX_SLOTS: u32 = 1024;

pub struct Nftables {
    pub table: String,
    /// `nft list table` output right after the last apply: what verify
    /// compares the kernel with.
    applied: Option<String>,
    /// The netdev table of the gate/ipip services.
    dr: super::dr::Dr,
    last: Table,
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Each real server taking new connections with its number of slots:
/// weights divided by their gcd, scaled down to fit MAX_SLOTS.
pub fn weighted(s: &Service) -> Vec<(SocketAddr, usize)> {
    let live: Vec<_> = s.dests.iter().filter(|d| d.weight > 0).collect();
    let g = live.iter().fold(0, |g, d| gcd(g, d.weight)).max(1);
    let total: u32 = live.iter().map(|d| d.weight / g).sum();
    let scale = if total > MAX_SLOTS { f64::from(MAX_SLOTS) / f64::from(total) } else { 1.0 };
    live.iter().map(|d| (d.addr, ((f64::from(d.weight / g) * scale).round() as u32).max(1) as usize)).collect()
}

/// Real servers repeated by weight (divided by their gcd, capped).
fn slots(s: &Service) -> Vec<SocketAddr> {
    weighted(s).into_iter().flat_map(|(a, n)| std::iter::repeat_n(a, n)).collect()
}

/// How far an IPVS scheduler is from what nftables does with it: None
/// when nftables does the same; otherwise the gap, for `haven director
/// check` and the README.
pub fn scheduler_gap(scheduler: &str) -> Option<&'static str> {
    match scheduler {
        "rr" | "wrr" => None,
        "sh" | "dh" | "mh" => None,
        "lc" | "wlc" | "sed" | "nq" | "twos" => Some(
            "nftables cannot count a real server's active connections: connections are spread by weight \
             (weighted round robin), not to the least loaded real server",
        ),
        "lblc" | "lblcr" => Some("nftables keeps no per-destination server sets: the client address is hashed instead"),
        "fo" | "ovf" => Some("nftables has no overflow/failover scheduling: connections are spread by weight"),
        _ => Some("unknown to nftables: connections are spread by weight"),
    }
}

fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback()
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

/// The match part of a service's rule.
fn matches(s: &Service) -> Vec<Value> {
    let mut m = Vec::new();
    match s.protocol {
        Protocol::Fwmark(mark) => {
            m.push(json!({"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": mark}}));
        }
        Protocol::Tcp | Protocol::Udp => {
            let l4 = if s.protocol == Protocol::Tcp { "tcp" } else { "udp" };
            let fam = family(s.vip.ip());
            m.push(json!({"match": {"op": "==", "left": {"payload": {"protocol": fam, "field": "daddr"}}, "right": s.vip.ip().to_string()}}));
            m.push(json!({"match": {"op": "==", "left": {"payload": {"protocol": l4, "field": "dport"}}, "right": s.vip.port()}}));
        }
    }
    m
}

/// The rule of one service, or None when nothing takes new connections.
pub fn rule(s: &Service, table: &str, chain: &str) -> Option<Value> {
    let targets = slots(s);
    let first = *targets.first()?;
    let mut expr = matches(s);
    if targets.len() == 1 && is_local(first.ip()) {
        // The fallback on the director itself (ldirectord's 127.0.0.1:80):
        // redirected to that port on the address the packet arrived at, so
        // the local server must listen there (e.g. on 0.0.0.0), not only
        // on 127.0.0.1, which routing would refuse for outside traffic.
        expr.push(json!({"redirect": {"port": first.port()}}));
    } else if targets.iter().all(|t| *t == first) {
        expr.push(
            json!({"dnat": {"family": family(first.ip()), "addr": first.ip().to_string(), "port": first.port()}}),
        );
    } else {
        let n = targets.len();
        let key = if s.persistent || matches!(s.scheduler.as_str(), "sh" | "dh" | "mh" | "lblc" | "lblcr") {
            json!({"jhash": {"mod": n, "expr": {"payload": {"protocol": family(s.vip.ip()), "field": "saddr"}}}})
        } else {
            json!({"numgen": {"mode": "inc", "mod": n}})
        };
        let set: Vec<Value> =
            targets.iter().enumerate().map(|(i, t)| json!([i, {"concat": [t.ip().to_string(), t.port()]}])).collect();
        expr.push(json!({"dnat": {"family": family(first.ip()), "addr": {"map": {"key": key, "data": {"set": set}}}}}));
    }
    Some(json!({"rule": {"family": "inet", "table": table, "chain": chain, "expr": expr}}))
}

/// The whole ruleset as one transaction: create the table if needed, flush
/// it, and add chains and rules again (atomic for the kernel).
pub fn ruleset(t: &Table, table: &str) -> Value {
    let mut cmds = vec![
        json!({"add": {"table": {"family": "inet", "name": table}}}),
        json!({"flush": {"table": {"family": "inet", "name": table}}}),
    ];
    // prerouting for clients elsewhere, output for clients on the director.
    for (chain, hook) in [("prerouting", "prerouting"), ("output", "output")] {
        cmds.push(json!({"add": {"chain": {"family": "inet", "table": table, "name": chain,
            "type": "nat", "hook": hook, "prio": -100, "policy": "accept"}}}));
    }
    // gate/ipip services are forwarded by the netdev table (dr.rs).
    for s in t.services.iter().filter(|s| !super::dr::is_dr(s)) {
        for chain in ["prerouting", "output"] {
            if let Some(r) = rule(s, table, chain) {
                cmds.push(json!({"add": r}));
            }
        }
    }
    json!({"nftables": cmds})
}

fn nft(args: &[&str], input: Option<&str>, d: &Deadline) -> Result<String, LbError> {
    let mut argv = vec!["nft"];
    argv.extend_from_slice(args);
    match input {
        None => Ok(exec::run_ok(&argv, d)?.stdout),
        Some(text) => Ok(exec::run_with_input(&argv, text.as_bytes(), d)?.stdout),
    }
}

impl Nftables {
    pub fn new(table: &str) -> Nftables {
        Nftables { table: table.to_string(), applied: None, dr: super::dr::Dr::new(table), last: Table::default() }
    }

    fn listing(&self, d: &Deadline) -> Result<Option<String>, LbError> {
        list_table(&["nft", "list", "table", "inet", self.table.as_str()], "list table", d)
    }

    pub fn apply(&mut self, t: &Table) -> Result<(), LbError> {
        let d = Deadline::after(Duration::from_secs(10));
        let text = ruleset(t, &self.table).to_string();
        nft(&["-j", "-f", "-"], Some(&text), &d)?;
        self.applied = self.listing(&d)?;
        self.dr.apply(t, &d)?;
        self.last = t.clone();
        Ok(())
    }

    /// Does the kernel still hold what was applied last (and are the real
    /// servers' links and MACs as they were)?
    pub fn verify(&mut self) -> Result<bool, LbError> {
        let d = Deadline::after(Duration::from_secs(10));
        let inet = self.applied.is_some() && self.listing(&d)? == self.applied;
        Ok(inet && self.dr.verify(&self.last, &d)?)
    }

    pub fn exists(&self) -> Result<bool, LbError> {
        Ok(self.listing(&Deadline::after(Duration::from_secs(10)))?.is_some())
    }

    /// Remove the table (and with it every rule haven made).
    pub fn clear(&mut self) -> Result<(), LbError> {
        let d = Deadline::after(Duration::from_secs(10));
        if self.listing(&d)?.is_some() {
            nft(&["delete", "table", "inet", &self.table], None, &d)?;
        }
        self.applied = None;
        self.dr.clear(&d)?;
        Ok(())
    }
}

/// `nft ... list table ...`: the listing, or None when the table does not
/// exist (the one answer that is not an error).
pub(super) fn list_table(argv: &[&str], op: &'static str, d: &Deadline) -> Result<Option<String>, LbError> {
    let f = exec::run(argv, d)?;
    if f.code == 0 {
        Ok(Some(f.stdout))
    } else if f.stderr.contains("No such file") || f.stderr.contains("does not exist") {
        Ok(None)
    } else {
        Err(LbError::Nft { op, why: exec::one_line(&f.stderr) })
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::Method;
    use super::super::table::Dest;
    use super::*;

    fn svc(weights: &[u32], scheduler: &str) -> Service {
        Service {
            vip: "198.51.100.10:80".parse().unwrap(),
            protocol: Protocol::Tcp,
            scheduler: scheduler.into(),
            persistent: false,
            persistent_secs: 0,
            dests: weights
                .iter()
                .enumerate()
                .map(|(i, w)| Dest {
                    addr: format!("203.0.113.{}:80", i + 1).parse().unwrap(),
                    weight: *w,
                    method: Method::Masq,
                })
                .collect(),
            on_fallback: false,
        }
    }

    #[test]
    fn weights_become_repeated_slots() {
        assert_eq!(slots(&svc(&[1, 1, 1], "rr")).len(), 3);
        let s = slots(&svc(&[2, 4, 0], "wrr"));
        assert_eq!(s.len(), 3, "2:4 reduces to 1:2, the quiescent one gets none");
        assert_eq!(s.iter().filter(|a| a.ip().to_string() == "203.0.113.2").count(), 2);
        assert!(slots(&svc(&[5000, 3], "wrr")).len() <= MAX_SLOTS as usize + 2);
    }

    #[test]
    fn scheduler_gaps_are_named() {
        assert!(scheduler_gap("wrr").is_none() && scheduler_gap("sh").is_none());
        assert!(scheduler_gap("wlc").is_some_and(|g| g.contains("active connections")));
        assert!(scheduler_gap("lc").is_some());
    }

    #[test]
    fn rules_by_scheduler() {
        let rr = rule(&svc(&[1, 1], "wlc"), "t", "prerouting").unwrap().to_string();
        assert!(rr.contains("numgen") && rr.contains("203.0.113.2"), "{rr}");
        let sh = rule(&svc(&[1, 1], "sh"), "t", "prerouting").unwrap().to_string();
        assert!(sh.contains("jhash") && sh.contains("saddr"), "{sh}");
        let one = rule(&svc(&[0, 3], "rr"), "t", "prerouting").unwrap().to_string();
        assert!(!one.contains("numgen") && one.contains("\"dnat\""), "{one}");
        assert!(rule(&svc(&[0, 0], "rr"), "t", "prerouting").is_none());
        let mut fb = svc(&[1], "rr");
        fb.dests[0].addr = "127.0.0.1:8080".parse().unwrap();
        let local = rule(&fb, "t", "prerouting").unwrap().to_string();
        assert!(local.contains("redirect") && local.contains("8080"), "{local}");
    }
}
