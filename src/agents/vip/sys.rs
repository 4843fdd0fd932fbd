//! vip's system effects behind one seam (youki's Syscall pattern): rtnetlink
//! (links, routes, addresses), the ARP collision probe and announcements on
//! the wire, the state directory and the background announcer's signal.
//! `Real` does them; tests use a recording double, so start/monitor/stop
//! decisions are checked without root. The namespace tests cover the kernel.

use super::state;
use super::VipError;
use crate::net::addr::{Addr, NewAddr};
use crate::net::announce::{self, Announcement};
use crate::net::arp::{self, Conflict};
use crate::net::link::Link;
use crate::net::route::Route;
use crate::net::{NetError, Netlink};
use crate::ocf::Deadline;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

/// A collision probe on the wire, sent at once in the agent's own thread
/// (a thread of its own waited for a CPU for up to 16 ms on a busy node);
/// its answers queue in the socket while start does its other work, and
/// `Sys::verdict` listens out the rest of the window.
pub enum Probe {
    Sent(arp::Probe),
    Done(std::io::Result<Option<Conflict>>),
}

/// Where a collision probe is sent from, and for which address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeAt {
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub wait: Duration,
}

pub trait Sys {
    fn links(&mut self) -> Result<Vec<Link>, NetError>;
    fn routes(&mut self, like: IpAddr) -> Result<Vec<Route>, NetError>;
    /// Every copy of `ip` on this node's interfaces.
    fn find_address(&mut self, ip: IpAddr) -> Result<Vec<Addr>, NetError>;
    fn add_address(&mut self, what: &str, new: &NewAddr) -> Result<(), NetError>;
    fn del_address(&mut self, what: &str, index: u32, ip: IpAddr, prefix: u8) -> Result<(), NetError>;
    /// Send the collision probe now; the answer comes from `verdict`.
    fn probe(&mut self, at: ProbeAt, deadline: &Deadline) -> Probe;
    /// Wait for the probe's answer: Some(conflict) when another host has
    /// the address.
    fn verdict(&mut self, probe: Probe) -> std::io::Result<Option<Conflict>>;
    /// Start `haven announce ...` detached (own process group, no stdio), so
    /// start returns while the announcements go out; its pid.
    fn announce_in_background(&mut self, a: &Announcement) -> std::io::Result<u32>;
    /// Announce in the foreground; the number of rounds sent.
    fn announce(&mut self, a: &Announcement, deadline: &Deadline) -> Result<u32, NetError>;
    /// The directory for state kept between actions (created on demand).
    fn state_dir(&mut self) -> Result<PathBuf, VipError>;
    /// End the background announcer recorded with `pid` (checked by the caller).
    fn terminate(&mut self, pid: i32);
}

/// The real system: one rtnetlink socket for the action.
pub struct Real {
    nl: Netlink,
    /// The probe's packet socket, kept open: its last close waits for an
    /// RCU grace period (5-30 ms on a busy node), so it is handed to the
    /// background announcer, which closes it after start has returned.
    linger: Vec<OwnedFd>,
}

impl Real {
    pub fn open(deadline: Deadline) -> Result<Real, NetError> {
        Ok(Real { nl: Netlink::route(deadline)?, linger: Vec::new() })
    }
}

impl Sys for Real {
    fn links(&mut self) -> Result<Vec<Link>, NetError> {
        self.nl.links()
    }
    fn routes(&mut self, like: IpAddr) -> Result<Vec<Route>, NetError> {
        self.nl.routes(like)
    }
    fn find_address(&mut self, ip: IpAddr) -> Result<Vec<Addr>, NetError> {
        self.nl.find_address(ip)
    }
    fn add_address(&mut self, what: &str, new: &NewAddr) -> Result<(), NetError> {
        self.nl.add_address(what, new)
    }
    fn del_address(&mut self, what: &str, index: u32, ip: IpAddr, prefix: u8) -> Result<(), NetError> {
        self.nl.del_address(what, index, ip, prefix)
    }
    fn probe(&mut self, at: ProbeAt, deadline: &Deadline) -> Probe {
        // Two probes (RFC 5227 sends several; a lost first frame is covered).
        match arp::Probe::send(at.ifindex, at.mac, at.ip, 2, at.wait, deadline) {
            Ok(p) => Probe::Sent(p),
            Err(e) => Probe::Done(Err(e)),
        }
    }
    fn verdict(&mut self, probe: Probe) -> std::io::Result<Option<Conflict>> {
        match probe {
            Probe::Sent(p) => {
                let (verdict, sock) = p.finish()?;
                self.linger.push(sock.into_lingering());
                Ok(verdict)
            }
            Probe::Done(r) => r,
        }
    }
    fn announce_in_background(&mut self, a: &Announcement) -> std::io::Result<u32> {
        use std::os::unix::process::CommandExt;
        // The child inherits the lingering probe socket (same descriptor
        // number, never used there): the socket's last close, and its RCU
        // wait, happen when the announcer exits, off start's critical path.
        for fd in &self.linger {
            let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()));
        }
        let child = std::process::Command::new(std::env::current_exe()?)
            .arg0("haven")
            .arg("announce")
            .arg(a.ifindex.to_string())
            .arg(&a.ifname)
            .arg(arp::format_mac(&a.mac))
            .arg(a.ip.to_string())
            .arg(a.count.to_string())
            .arg(a.interval.as_millis().to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()?;
        Ok(child.id())
    }
    fn announce(&mut self, a: &Announcement, deadline: &Deadline) -> Result<u32, NetError> {
        announce::send(a, deadline)
    }
    fn state_dir(&mut self) -> Result<PathBuf, VipError> {
        state::dir()
    }
    fn terminate(&mut self, pid: i32) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
    }
}

#[cfg(test)]
pub mod fake {
    //! A recording double: a node's links, routes and addresses in memory,
    //! a scripted probe answer, and the list of effects asked for.
    use super::*;

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Effect {
        Add { index: u32, ip: IpAddr, prefix: u8, label: Option<String>, broadcast: Option<Ipv4Addr> },
        Del { index: u32, ip: IpAddr, prefix: u8 },
        Probe(ProbeAt),
        Announce { ifindex: u32, ip: IpAddr, count: u32 },
        AnnounceInBackground { ifindex: u32, ip: IpAddr, count: u32 },
        Terminate(i32),
    }

    #[derive(Default)]
    pub struct Fake {
        pub links: Vec<Link>,
        pub routes: Vec<Route>,
        pub addrs: Vec<Addr>,
        pub conflict: Option<[u8; 6]>,
        pub effects: Vec<Effect>,
        pub dir: Option<PathBuf>,
    }

    pub fn ether(index: u32, name: &str) -> Link {
        Link {
            index,
            name: name.into(),
            mac: vec![2, 0, 0, 0, 0, index as u8],
            admin_up: true,
            carrier: true,
            loopback: false,
            noarp: false,
        }
    }

    pub fn lo() -> Link {
        Link { index: 1, name: "lo".into(), mac: vec![], admin_up: true, carrier: true, loopback: true, noarp: true }
    }

    pub fn onlink(dst: &str, prefix: u8, oif: u32) -> Route {
        Route {
            dst: dst.parse().unwrap(),
            prefix,
            oif: Some(oif),
            gateway: None,
            link_scope: true,
            metric: 0,
            table: 254,
            unicast: true,
        }
    }

    pub fn addr(index: u32, ip: &str, prefix: u8) -> Addr {
        Addr {
            index,
            ip: ip.parse().unwrap(),
            prefix,
            label: None,
            broadcast: None,
            tentative: false,
            dadfailed: false,
            nodad: false,
            noprefixroute: false,
        }
    }

    impl Fake {
        /// A node with lo and eth0 (index 2) holding 198.51.100.1/24.
        pub fn node() -> Fake {
            Fake {
                links: vec![lo(), ether(2, "eth0")],
                routes: vec![onlink("198.51.100.0", 24, 2)],
                addrs: vec![addr(2, "198.51.100.1", 24)],
                ..Fake::default()
            }
        }

        pub fn changes(&self) -> Vec<&Effect> {
            self.effects.iter().filter(|e| matches!(e, Effect::Add { .. } | Effect::Del { .. })).collect()
        }
    }

    impl Sys for Fake {
        fn links(&mut self) -> Result<Vec<Link>, NetError> {
            Ok(self.links.clone())
        }
        fn routes(&mut self, like: IpAddr) -> Result<Vec<Route>, NetError> {
            Ok(self.routes.iter().filter(|r| r.dst.is_ipv4() == like.is_ipv4()).cloned().collect())
        }
        fn find_address(&mut self, ip: IpAddr) -> Result<Vec<Addr>, NetError> {
            Ok(self.addrs.iter().filter(|a| a.ip == ip).cloned().collect())
        }
        fn add_address(&mut self, _what: &str, n: &NewAddr) -> Result<(), NetError> {
            self.effects.push(Effect::Add {
                index: n.index,
                ip: n.ip,
                prefix: n.prefix,
                label: n.label.clone(),
                broadcast: n.broadcast,
            });
            let mut a = addr(n.index, &n.ip.to_string(), n.prefix);
            a.label = n.label.clone();
            a.broadcast = n.broadcast;
            self.addrs.push(a);
            Ok(())
        }
        fn del_address(&mut self, _what: &str, index: u32, ip: IpAddr, prefix: u8) -> Result<(), NetError> {
            self.effects.push(Effect::Del { index, ip, prefix });
            self.addrs.retain(|a| !(a.index == index && a.ip == ip));
            Ok(())
        }
        fn probe(&mut self, at: ProbeAt, _deadline: &Deadline) -> Probe {
            self.effects.push(Effect::Probe(at));
            Probe::Done(Ok(self.conflict.map(|mac| Conflict { mac })))
        }
        fn verdict(&mut self, probe: Probe) -> std::io::Result<Option<Conflict>> {
            match probe {
                Probe::Sent(p) => p.finish().map(|(verdict, _)| verdict),
                Probe::Done(r) => r,
            }
        }
        fn announce_in_background(&mut self, a: &Announcement) -> std::io::Result<u32> {
            self.effects.push(Effect::AnnounceInBackground { ifindex: a.ifindex, ip: a.ip, count: a.count });
            // A pid that is not an announcer: stop must not signal it.
            Ok(std::process::id())
        }
        fn announce(&mut self, a: &Announcement, _deadline: &Deadline) -> Result<u32, NetError> {
            self.effects.push(Effect::Announce { ifindex: a.ifindex, ip: a.ip, count: a.count });
            Ok(a.count)
        }
        fn state_dir(&mut self) -> Result<PathBuf, VipError> {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let d = self.dir.get_or_insert_with(|| {
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                std::env::temp_dir().join(format!("haven-vip-fake-{}-{n}", std::process::id()))
            });
            std::fs::create_dir_all(&*d)
                .map_err(|source| VipError::State(crate::error::IoError::new("create", d.display(), source)))?;
            Ok(d.clone())
        }
        fn terminate(&mut self, pid: i32) {
            self.effects.push(Effect::Terminate(pid));
        }
    }
}
