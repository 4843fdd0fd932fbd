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
