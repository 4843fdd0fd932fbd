//! ocf:haven:vip — a virtual IP address (IPaddr2's job) and the LVS-DR
//! real-server loopback address, through rtnetlink only.

mod config;
mod error;
mod realserver;
pub mod spec;
mod state;
mod sys;

pub use config::Config;
pub use error::VipError;

use crate::error::AgentError;
use crate::net::addr::{Addr, NewAddr};
use crate::net::announce::Announcement;
use crate::net::link::Link;
use crate::net::{arp, netns, route};
use crate::ocf::agent::ActionResult;
use crate::ocf::{Agent, AgentSpec, Ctx, Deadline, Status};
use crate::{info, warn};
use config::broadcast_for;
use std::net::IpAddr;
use std::time::Duration;
use sys::{Probe, ProbeAt, Real, Sys};

pub struct Vip;

/// Where the address goes, resolved against this node's interfaces.
struct Placement {
    link: Link,
    prefix: u8,
    label: Option<String>,
    broadcast: Option<std::net::Ipv4Addr>,
    /// Real-server mode: the interface whose ARP behaviour is changed.
    uplink: Option<String>,
}

/// The state of the address as monitor sees it.
enum Observed {
    Absent,
    Up(Addr),
}

impl Agent for Vip {
    fn spec(&self) -> &'static AgentSpec {
        &spec::SPEC
    }

    fn validate(&self, ctx: &Ctx) -> ActionResult {
        let cfg = prepare(ctx)?;
        let mut sys = Real::open(ctx.deadline)?;
        let links = sys.links()?;
        place(&cfg, &mut sys, &links)?;
        Ok(Status::Success)
    }

    fn start(&self, ctx: &Ctx) -> ActionResult {
        let cfg = prepare(ctx)?;
        for p in &cfg.ignored {
            warn!("parameter {p} is ignored: haven sends ARP itself");
        }
        let mut sys = Real::open(ctx.deadline)?;
        if cfg.realserver {
            let links = sys.links()?;
            let at = place(&cfg, &mut sys, &links)?;
            return start_realserver(ctx, &cfg, &mut sys, &at);
        }
        start_with(&cfg, &mut sys, &ctx.deadline)
    }

    fn stop(&self, ctx: &Ctx) -> ActionResult {
        let cfg = Config::from_params(&ctx.params)?;
        if let Some(ns) = &cfg.netns {
            if !netns::exists(ns) {
                info!("network namespace {ns} does not exist: {} cannot be up in it", cfg.ip);
                return Ok(Status::Success);
            }
            netns::enter(ns)?;
        }
        let mut sys = Real::open(ctx.deadline)?;
        if cfg.realserver {
            let dir = sys.state_dir()?;
            stop_announcer(&cfg, &mut sys, &dir)?;
            let links = sys.links()?;
            return stop_realserver(ctx, &cfg, &mut sys, &links, &dir);
        }
        stop_with(&cfg, &mut sys)
    }

    fn monitor(&self, ctx: &Ctx) -> ActionResult {
        let cfg = Config::from_params(&ctx.params)?;
        if let Some(ns) = &cfg.netns {
            if !netns::exists(ns) {
                return Ok(Status::NotRunning);
            }
            netns::enter(ns)?;
        }
        let mut sys = Real::open(ctx.deadline)?;
        if cfg.realserver {
            let links = sys.links()?;
            return monitor_realserver(&cfg, &mut sys, &links);
        }
        monitor_with(&cfg, &mut sys, &ctx.deadline)
    }
}

/// Start's decisions for a (non real-server) VIP. The collision probe goes
/// out first and runs while the rest of start looks at the node; its
/// verdict is read just before the address is added.
fn start_with(cfg: &Config, sys: &mut impl Sys, deadline: &Deadline) -> ActionResult {
    let links = sys.links()?;
    let at = place(cfg, sys, &links)?;
    let probe = send_probe(cfg, sys, &at, deadline);
    match observe(cfg, sys, &links, Some(&at.link))? {
        Observed::Up(a) => {
            check_shape(cfg, &at.link, &a)?;
            if at.link.is_up() && !a.dadfailed {
                info!("{} is already up on {}", cfg.ip, at.link.name);
                return Ok(Status::Success);
            }
        }
        Observed::Absent => {}
    }
    if !at.link.is_up() {
        return Err(VipError::LinkDown { ip: cfg.ip, nic: at.link.name.clone() }.into());
    }
    if cfg.lvs_support {
        let dir = sys.state_dir()?;
        park_loopback_copy(cfg, sys, &links, &dir)?;
    }
    if let Some(p) = probe {
        let conflict = sys
            .verdict(p)
            .map_err(|e| crate::net::NetError::io("probe for", format!("{} on {}", cfg.ip, at.link.name), e))?;
        if let Some(c) = conflict {
            if cfg.lvs_support {
                let dir = sys.state_dir()?;
                restore_loopback_copy(cfg, sys, &links, &dir)?;
            }
            return Err(
                VipError::Duplicate { ip: cfg.ip, nic: at.link.name.clone(), mac: arp::format_mac(&c.mac) }.into()
            );
        }
    }
    add(cfg, sys, &at, false)?;
    if cfg.ip.is_ipv6() && !cfg.nodad {
        wait_for_dad(cfg, sys, &at, deadline)?;
    }
    announce_after_start(cfg, sys, &at, deadline)?;
    info!("{} is up on {}/{}", cfg.ip, at.link.name, at.prefix);
    Ok(Status::Success)
}

/// The IPv4 collision probe (run_arping), sent now; None when not asked for
/// or the link does no ARP.
fn send_probe(cfg: &Config, sys: &mut impl Sys, at: &Placement, deadline: &Deadline) -> Option<Probe> {
    let (IpAddr::V4(ip), Some(mac)) = (cfg.ip, at.link.ether()) else { return None };
    if !cfg.run_arping || at.link.noarp || !at.link.is_up() {
        return None;
    }
    Some(sys.probe(ProbeAt { ifindex: at.link.index, mac, ip, wait: cfg.arp_probe_timeout }, deadline))
}

fn stop_with(cfg: &Config, sys: &mut impl Sys) -> ActionResult {
    let links = sys.links()?;
    let nic_index = match &cfg.nic {
        Some(n) => match links.iter().find(|l| &l.name == n) {
            Some(l) => Some(l.index),
            None => {
                info!("interface {n} does not exist: {} cannot be up on it", cfg.ip);
                return Ok(Status::Success);
            }
        },
        None => None,
    };
    // Ours: the address on the configured nic, or (nic auto-detected) on
    // any interface but lo, whatever its prefix or label.
    let ours: Vec<Addr> = sys
        .find_address(cfg.ip)?
        .into_iter()
        .filter(|a| match nic_index {
            Some(i) => a.index == i,
            None => !is_loopback(&links, a.index),
        })
        .collect();
    let dir = sys.state_dir()?;
    stop_announcer(cfg, sys, &dir)?;
    for a in &ours {
        let name = link_name(&links, a.index);
        match sys.del_address(&format!("remove {}/{} from {name}", a.ip, a.prefix), a.index, a.ip, a.prefix) {
            Ok(()) => info!("removed {}/{} from {name}", a.ip, a.prefix),
            Err(e) if e.errno() == Some(libc::EADDRNOTAVAIL) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if cfg.flush_routes {
        crate::net::sysctl::flush_route_cache()?;
    }
    if let Some(left) = sys.find_address(cfg.ip)?.into_iter().find(|a| ours.iter().any(|o| o.index == a.index)) {
        return Err(VipError::StillPresent { ip: cfg.ip, nic: link_name(&links, left.index) }.into());
    }
    if cfg.lvs_support {
        restore_loopback_copy(cfg, sys, &links, &dir)?;
    }
    Ok(Status::Success)
}

fn monitor_with(cfg: &Config, sys: &mut impl Sys, deadline: &Deadline) -> ActionResult {
    let links = sys.links()?;
    let nic = match &cfg.nic {
        Some(n) => match links.iter().find(|l| &l.name == n) {
            Some(l) => Some(l),
            // A probe on a node without that interface: not running here.
            None => return Ok(Status::NotRunning),
        },
        None => None,
    };
    let Observed::Up(a) = observe(cfg, sys, &links, nic)? else {
        return Ok(Status::NotRunning);
    };
    let Some(link) = links.iter().find(|l| l.index == a.index) else {
        return Ok(Status::NotRunning);
    };
    check_shape(cfg, link, &a)?;
    if a.dadfailed {
        return Err(VipError::DadFailed { ip: cfg.ip, nic: link.name.clone() }.into());
    }
    if !link.is_up() {
        warn!("{} is on {} but the link is down or has no carrier", cfg.ip, link.name);
        return Ok(Status::NotRunning);
    }
    if a.tentative {
        warn!("{} on {} is still tentative (duplicate address detection running)", cfg.ip, link.name);
        return Ok(Status::Degraded);
    }
    if cfg.arp_count_refresh > 0 && cfg.ip.is_ipv4() {
        if let Some(mac) = link.ether().filter(|_| !link.noarp) {
            let refresh = Announcement {
                ifindex: link.index,
                ifname: link.name.clone(),
                mac,
                ip: cfg.ip,
                count: cfg.arp_count_refresh,
                interval: cfg.arp_interval,
            };
            sys.announce(&refresh, deadline)?;
        }
    }
    Ok(Status::Success)
}

/// Parse the configuration, refuse clones, and enter the namespace.
fn prepare(ctx: &Ctx) -> Result<Config, AgentError> {
    let cfg = Config::from_params(&ctx.params)?;
    if ctx.env.meta.is_clone() && !cfg.realserver {
        return Err(VipError::Clone.into());
    }
    if let Some(ns) = &cfg.netns {
        if !netns::exists(ns) {
            return Err(VipError::NoNamespace { name: ns.clone() }.into());
        }
        netns::enter(ns)?;
    }
    Ok(cfg)
}

fn link_name(links: &[Link], index: u32) -> String {
    links.iter().find(|l| l.index == index).map_or_else(|| format!("interface #{index}"), |l| l.name.clone())
}

fn is_loopback(links: &[Link], index: u32) -> bool {
    links.iter().any(|l| l.index == index && l.loopback)
}

/// Resolve interface, prefix, label and broadcast on this node.
fn place(cfg: &Config, sys: &mut impl Sys, links: &[Link]) -> Result<Placement, AgentError> {
    let named = match &cfg.nic {
        Some(n) => Some(links.iter().find(|l| &l.name == n).ok_or_else(|| VipError::NoInterface { nic: n.clone() })?),
        None => None,
    };
    if cfg.realserver {
        let lo = links.iter().find(|l| l.loopback).ok_or_else(|| VipError::NoInterface { nic: "lo".into() })?;
        let uplink = match named {
            Some(l) => Some(l.name.clone()),
            None => {
                let routes = sys.routes(cfg.ip)?;
                route::best_onlink(&routes, cfg.ip, None, None).and_then(|r| r.oif).map(|i| link_name(links, i))
            }
        };
        let label = cfg.iflabel.as_ref().map(|l| format!("{}:{l}", lo.name));
        return Ok(Placement { link: lo.clone(), prefix: cfg.host_prefix(), label, broadcast: None, uplink });
    }
    if named.is_some_and(|l| l.loopback) {
        return Err(VipError::LoopbackNic.into());
    }
    let (link, prefix) = match (named, cfg.prefix) {
        (Some(l), Some(p)) => (l, p),
        (named, given) => {
            let routes = sys.routes(cfg.ip)?;
            let oif = named.map(|l| l.index);
            // findif: a netmask given without nic must fit the network found.
            let r = route::best_onlink(&routes, cfg.ip, oif, given)
                .ok_or_else(|| no_route(cfg, &routes, oif, given, links))?;
            let link = match named {
                Some(l) => l,
                None => links
                    .iter()
                    .find(|l| Some(l.index) == r.oif)
                    .ok_or_else(|| no_route(cfg, &[], None, given, links))?,
            };
            (link, given.unwrap_or(r.prefix))
        }
    };
    let label = match &cfg.iflabel {
        Some(l) => {
            let full = format!("{}:{l}", link.name);
            if full.len() > 15 {
                return Err(VipError::LabelTooLong { len: full.len(), label: full }.into());
            }
            Some(full)
        }
        None => None,
    };
    let broadcast = match cfg.ip {
        IpAddr::V4(v4) => broadcast_for(v4, prefix, cfg.broadcast),
        IpAddr::V6(_) => None,
    };
    Ok(Placement { link: link.clone(), prefix, label, broadcast, uplink: None })
}

/// Why findif found nothing: with a netmask wider than the network the
/// address falls in, say so (IPaddr2 refuses that start as ambiguous too).
fn no_route(cfg: &Config, routes: &[route::Route], oif: Option<u32>, given: Option<u8>, links: &[Link]) -> VipError {
    let net = given.map_or_else(|| cfg.ip.to_string(), |p| format!("{}/{p}", cfg.ip));
    let narrower = given.and_then(|p| route::best_onlink(routes, cfg.ip, oif, None).map(|r| (p, r)));
    let why = match narrower {
        Some((p, r)) => format!(
            "cidr_netmask={p} is wider than the network {}/{} on {} that {} falls in (ambiguous, as IPaddr2 says \
             too): set nic to add the /{p} there anyway, or a cidr_netmask of {} or more",
            r.dst,
            r.prefix,
            link_name(links, r.oif.unwrap_or(0)),
            cfg.ip,
            r.prefix
        ),
        None => "set nic and cidr_netmask, or add the network's route".into(),
    };
    VipError::NoRoute { net, why }
}

/// Find the address: on `nic` when given, else on any interface but lo.
/// Present on another interface than the configured one is an error (it
/// would be a second copy after start).
fn observe(cfg: &Config, sys: &mut impl Sys, links: &[Link], nic: Option<&Link>) -> Result<Observed, AgentError> {
    let found: Vec<Addr> = sys.find_address(cfg.ip)?.into_iter().filter(|a| !is_loopback(links, a.index)).collect();
    match nic {
        Some(l) => {
            if let Some(a) = found.iter().find(|a| a.index == l.index) {
                return Ok(Observed::Up(a.clone()));
            }
            if let Some(other) = found.first() {
                return Err(VipError::Elsewhere {
                    ip: cfg.ip,
                    found: link_name(links, other.index),
                    nic: l.name.clone(),
                }
                .into());
            }
            Ok(Observed::Absent)
        }
        None => Ok(found.into_iter().next().map_or(Observed::Absent, Observed::Up)),
    }
}

/// The address exists: does it have the configured prefix and label?
fn check_shape(cfg: &Config, link: &Link, a: &Addr) -> Result<(), AgentError> {
    let mismatch =
        |what: String| -> AgentError { VipError::Mismatch { ip: cfg.ip, nic: link.name.clone(), what }.into() };
    if let Some(p) = cfg.prefix {
        if a.prefix != p {
            return Err(mismatch(format!("prefix /{} instead of /{p}", a.prefix)));
        }
    }
    if let Some(l) = &cfg.iflabel {
        let want = format!("{}:{l}", link.name);
        if a.label.as_deref() != Some(want.as_str()) {
            return Err(mismatch(format!("label {} instead of {want}", a.label.as_deref().unwrap_or("(none)"))));
        }
    }
    Ok(())
}

fn add(cfg: &Config, sys: &mut impl Sys, at: &Placement, host_scope: bool) -> Result<(), AgentError> {
    let new = NewAddr {
        index: at.link.index,
        ip: cfg.ip,
        prefix: at.prefix,
        label: at.label.clone(),
        broadcast: at.broadcast,
        nodad: cfg.nodad && cfg.ip.is_ipv6(),
        noprefixroute: cfg.noprefixroute,
        preferred_lft: if cfg.ip.is_ipv6() { cfg.preferred_lft } else { None },
        host_scope,
    };
    match sys.add_address(&format!("add {}/{} to {}", cfg.ip, at.prefix, at.link.name), &new) {
        Ok(()) => Ok(()),
        // Another start won the race; monitor decides whether it is right.
        Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Wait for IPv6 DAD; on failure remove the address again (a dadfailed
/// address is useless and would block the next start).
fn wait_for_dad(cfg: &Config, sys: &mut impl Sys, at: &Placement, deadline: &Deadline) -> Result<(), AgentError> {
    loop {
        let a = sys.find_address(cfg.ip)?.into_iter().find(|a| a.index == at.link.index);
        match a {
            Some(a) if a.dadfailed => {
                let _ = sys.del_address("remove the dadfailed address", at.link.index, cfg.ip, at.prefix);
                return Err(VipError::DadFailed { ip: cfg.ip, nic: at.link.name.clone() }.into());
            }
            Some(a) if !a.tentative => return Ok(()),
            Some(_) => {}
            None => return Err(VipError::StillPresent { ip: cfg.ip, nic: at.link.name.clone() }.into()),
        }
        if !deadline.sleep(Duration::from_millis(50)) {
            let _ = sys.del_address("remove the tentative address", at.link.index, cfg.ip, at.prefix);
            return Err(VipError::DadTimeout { ip: cfg.ip, nic: at.link.name.clone() }.into());
        }
    }
}

fn announce_after_start(
    cfg: &Config,
    sys: &mut impl Sys,
    at: &Placement,
    deadline: &Deadline,
) -> Result<(), AgentError> {
    let Some(mac) = at.link.ether().filter(|_| !at.link.noarp && cfg.arp_count > 0) else {
        return Ok(());
    };
    let a = Announcement {
        ifindex: at.link.index,
        ifname: at.link.name.clone(),
        mac,
        ip: cfg.ip,
        count: cfg.arp_count,
        interval: cfg.arp_interval,
    };
    if cfg.arp_bg {
        let dir = sys.state_dir()?;
        stop_announcer(cfg, sys, &dir)?;
        match sys.announce_in_background(&a) {
            Ok(pid) => {
                state::write(&state::announcer_pidfile(&dir, &a.ip.to_string()), &format!("{pid}\n"))?;
                return Ok(());
            }
            Err(e) => warn!("could not start the background announcer ({e}); announcing in the foreground"),
        }
    }
    let rounds = sys.announce(&a, deadline)?;
    if rounds < a.count {
        warn!("sent {rounds} of {} announcements for {} before the deadline", a.count, cfg.ip);
    }
    Ok(())
}

fn stop_announcer(cfg: &Config, sys: &mut impl Sys, dir: &std::path::Path) -> Result<(), AgentError> {
    let ip = cfg.ip.to_string();
    if let Some(pid) = state::announcer_pid(dir, &ip)? {
        sys.terminate(pid);
        info!("stopped the background announcer of {ip} (pid {pid})");
    }
    state::remove(&state::announcer_pidfile(dir, &ip))?;
    Ok(())
}

/// lvs_support: a host copy of the VIP on lo (left by a previous stop) would
/// make the kernel treat the address as local twice; move it aside.
fn park_loopback_copy(
    cfg: &Config,
    sys: &mut impl Sys,
    links: &[Link],
    dir: &std::path::Path,
) -> Result<(), AgentError> {
    for a in sys.find_address(cfg.ip)?.into_iter().filter(|a| is_loopback(links, a.index)) {
        let path = dir.join(format!("lo-{}", state::file_key(&cfg.ip.to_string())));
        state::write(&path, &format!("{}\n", a.prefix))?;
        sys.del_address(&format!("remove {}/{} from lo", a.ip, a.prefix), a.index, a.ip, a.prefix)?;
        info!("moved {}/{} off lo (lvs_support)", a.ip, a.prefix);
    }
    Ok(())
}

/// lvs_support: after stop the address goes (back) on lo, so this node keeps
/// serving it as a real server without announcing it.
fn restore_loopback_copy(
    cfg: &Config,
    sys: &mut impl Sys,
    links: &[Link],
    dir: &std::path::Path,
) -> Result<(), AgentError> {
    let path = dir.join(format!("lo-{}", state::file_key(&cfg.ip.to_string())));
    let Some(text) = state::read(&path)? else { return Ok(()) };
    let prefix = text.trim().parse().unwrap_or(cfg.host_prefix());
    if let Some(lo) = links.iter().find(|l| l.loopback) {
        let at = Placement { link: lo.clone(), prefix, label: None, broadcast: None, uplink: None };
        add(cfg, sys, &at, true)?;
        info!("restored {}/{prefix} on lo (lvs_support)", cfg.ip);
    }
    Ok(state::remove(&path)?)
}

fn holder(ctx: &Ctx, cfg: &Config) -> String {
    if ctx.env.instance.is_empty() {
        cfg.ip.to_string()
    } else {
        ctx.env.instance.clone()
    }
}

fn start_realserver(ctx: &Ctx, cfg: &Config, sys: &mut impl Sys, at: &Placement) -> ActionResult {
    let dir = state::dir()?;
    // Suppress ARP before the address exists, so it is never answered for.
    realserver::acquire(&dir, &holder(ctx, cfg), at.uplink.as_deref())?;
    let present = sys.find_address(cfg.ip)?.into_iter().any(|a| a.index == at.link.index);
    if !present {
        add(cfg, sys, at, true)?;
    }
    info!(
        "{} is on {} with ARP suppressed on all{}",
        cfg.ip,
        at.link.name,
        at.uplink.as_deref().map(|u| format!(" and {u}")).unwrap_or_default()
    );
    Ok(Status::Success)
}

fn stop_realserver(ctx: &Ctx, cfg: &Config, sys: &mut impl Sys, links: &[Link], dir: &std::path::Path) -> ActionResult {
    for a in sys.find_address(cfg.ip)?.into_iter().filter(|a| is_loopback(links, a.index)) {
        match sys.del_address(&format!("remove {}/{} from lo", a.ip, a.prefix), a.index, a.ip, a.prefix) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(libc::EADDRNOTAVAIL) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if realserver::release(dir, &holder(ctx, cfg))? {
        info!("restored the ARP sysctls (last real-server address stopped)");
    }
    Ok(Status::Success)
}

fn monitor_realserver(cfg: &Config, sys: &mut impl Sys, links: &[Link]) -> ActionResult {
    let on_lo = sys.find_address(cfg.ip)?.into_iter().any(|a| is_loopback(links, a.index));
    if !on_lo {
        return Ok(Status::NotRunning);
    }
    let uplink = match &cfg.nic {
        Some(n) if links.iter().any(|l| &l.name == n) => Some(n.as_str()),
        _ => None,
    };
    let missing = realserver::missing(uplink)?;
    if !missing.is_empty() {
        return Err(VipError::NotSuppressed { ip: cfg.ip, what: missing.join(", ") }.into());
    }
    Ok(Status::Success)
}

#[cfg(test)]
mod tests;
