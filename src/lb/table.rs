//! The table the kernel should hold: for each virtual service, the real
//! servers that take new connections and their weights, computed from the
//! configuration and the health of each real server.

use super::config::{Config, Method, Protocol};
use std::net::SocketAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dest {
    pub addr: SocketAddr,
    pub weight: u32,
    pub method: Method,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub vip: SocketAddr,
    pub protocol: Protocol,
    pub scheduler: String,
    pub persistent: bool,
    /// Persistence timeout in seconds (IPVS; 0 when not persistent).
    pub persistent_secs: u32,
    /// Real servers in the service (weight 0: quiescent, no new connections).
    pub dests: Vec<Dest>,
    /// True when every real server is down and the fallback serves.
    pub on_fallback: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub services: Vec<Service>,
}

/// Health of real server `r` of virtual `v`.
pub trait Health {
    fn is_up(&self, v: usize, r: usize) -> bool;
}

impl Table {
    pub fn compute(cfg: &Config, health: &dyn Health) -> Table {
        let mut services = Vec::new();
        for (vi, v) in cfg.virtuals.iter().enumerate() {
            let mut dests = Vec::new();
            for (ri, r) in v.reals.iter().enumerate() {
                if health.is_up(vi, ri) {
                    dests.push(Dest { addr: r.addr, weight: r.weight, method: r.method });
                } else if v.quiescent {
                    // Stays in the table with weight 0: established
                    // connections continue, new ones go elsewhere.
                    dests.push(Dest { addr: r.addr, weight: 0, method: r.method });
                }
            }
            let serving = dests.iter().any(|d| d.weight > 0);
            let mut on_fallback = false;
            if !serving {
                if let Some(f) = &v.fallback {
                    dests.push(Dest { addr: f.addr, weight: 1, method: f.method });
                    on_fallback = true;
                }
            }
            services.push(Service {
                vip: v.addr,
                protocol: v.protocol,
                scheduler: v.scheduler.clone(),
                persistent: v.persistent.is_some(),
                persistent_secs: v.persistent.map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX)),
                dests,
                on_fallback,
            });
        }
        Table { services }
    }
}

/// One step from the table the kernel holds to the one it should hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    AddService {
        vip: SocketAddr,
        protocol: Protocol,
    },
    /// Scheduler or persistence differ.
    EditService {
        vip: SocketAddr,
        protocol: Protocol,
    },
    RemoveService {
        vip: SocketAddr,
        protocol: Protocol,
    },
    AddDest {
        vip: SocketAddr,
        dest: Dest,
    },
    /// Weight or forwarding method differ (weight 0: quiescent).
    EditDest {
        vip: SocketAddr,
        dest: Dest,
    },
    RemoveDest {
        vip: SocketAddr,
        addr: SocketAddr,
    },
}

/// What to add, change and remove to turn `current` into `desired`:
/// services first added, then their real servers, removals last, so a
/// service never goes without the servers it keeps.
pub fn diff(current: &Table, desired: &Table) -> Vec<Change> {
    let key = |s: &Service| (s.vip, s.protocol);
    let find = |t: &'_ Table, k: (SocketAddr, Protocol)| t.services.iter().find(|s| key(s) == k).cloned();
    let mut out = Vec::new();
    let mut removals = Vec::new();
    for want in &desired.services {
        let (vip, protocol) = key(want);
        let have = find(current, key(want));
        match &have {
            None => out.push(Change::AddService { vip, protocol }),
            Some(h) if h.scheduler != want.scheduler || h.persistent_secs != want.persistent_secs => {
                out.push(Change::EditService { vip, protocol })
            }
            Some(_) => {}
        }
        let old = have.map(|h| h.dests).unwrap_or_default();
        for d in &want.dests {
            match old.iter().find(|o| o.addr == d.addr) {
                None => out.push(Change::AddDest { vip, dest: d.clone() }),
                Some(o) if o != d => out.push(Change::EditDest { vip, dest: d.clone() }),
                Some(_) => {}
            }
        }
        for o in old.iter().filter(|o| !want.dests.iter().any(|d| d.addr == o.addr)) {
            removals.push(Change::RemoveDest { vip, addr: o.addr });
        }
    }
    for have in &current.services {
        if find(desired, key(have)).is_none() {
            removals.push(Change::RemoveService { vip: have.vip, protocol: have.protocol });
        }
    }
    out.extend(removals);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(vip: &str, dests: &[(&str, u32)]) -> Service {
        Service {
            vip: vip.parse().unwrap(),
            protocol: Protocol::Tcp,
            scheduler: "wrr".into(),
            persistent: false,
            persistent_secs: 0,
            dests: dests
                .iter()
                .map(|(a, w)| Dest { addr: a.parse().unwrap(), weight: *w, method: Method::Gate })
                .collect(),
            on_fallback: false,
        }
    }

    #[test]
    fn diff_adds_changes_and_removes_in_order() {
        let web = "198.51.100.10:80";
        let current = Table {
            services: vec![
                svc(web, &[("203.0.113.1:80", 1), ("203.0.113.2:80", 1), ("203.0.113.3:80", 1)]),
                svc("198.51.100.10:25", &[("203.0.113.1:25", 1)]),
            ],
        };
        let mut web_next = svc(web, &[("203.0.113.1:80", 1), ("203.0.113.2:80", 0), ("203.0.113.4:80", 2)]);
        web_next.scheduler = "sh".into();
        let desired = Table { services: vec![web_next, svc("198.51.100.11:443", &[("203.0.113.5:443", 1)])] };
        let v: SocketAddr = web.parse().unwrap();
        let changes = diff(&current, &desired);
        assert_eq!(
            changes,
            vec![
                Change::EditService { vip: v, protocol: Protocol::Tcp },
                Change::EditDest {
                    vip: v,
                    dest: Dest { addr: "203.0.113.2:80".parse().unwrap(), weight: 0, method: Method::Gate }
                },
                Change::AddDest {
                    vip: v,
                    dest: Dest { addr: "203.0.113.4:80".parse().unwrap(), weight: 2, method: Method::Gate }
                },
                Change::AddService { vip: "198.51.100.11:443".parse().unwrap(), protocol: Protocol::Tcp },
                Change::AddDest {
                    vip: "198.51.100.11:443".parse().unwrap(),
                    dest: Dest { addr: "203.0.113.5:443".parse().unwrap(), weight: 1, method: Method::Gate }
                },
                Change::RemoveDest { vip: v, addr: "203.0.113.3:80".parse().unwrap() },
                Change::RemoveService { vip: "198.51.100.10:25".parse().unwrap(), protocol: Protocol::Tcp },
            ]
        );
        assert!(diff(&desired, &desired).is_empty(), "no change, no step");
        assert_eq!(diff(&Table::default(), &desired).len(), 6, "two services and their four servers");
        assert_eq!(diff(&desired, &Table::default()).len(), 2, "removing services removes their servers");
    }
}
