//! The IPVS data plane through generic netlink (family "IPVS"), as
//! ipvsadm speaks it: services (address, port, protocol or firewall mark,
//! scheduler, persistence) and their destinations (forwarding method,
//! weight). The attributes are built here byte by byte; the constants are
//! the kernel's (include/uapi/linux/ip_vs.h) and unit tests pin the layout.
//! The socket, its receive loop and the family lookup are the shared ones
//! of net/netlink.rs and net/genl.rs.
//! IPVS has no transactions: changes are made service by service, and only
//! the services this director created are ever touched.

use super::config::{Method, Protocol};
use super::table::{Dest, Service, Table};
use super::LbError;
use crate::net::genl::{attributes, nested, nla, u16_of, u32_of, GenlMessage, NLA_F_NESTED};
use crate::net::{NetError, Netlink};
use crate::ocf::Deadline;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

pub const IPVS_GENL_NAME: &str = "IPVS";
pub const IPVS_GENL_VERSION: u8 = 1;

// enum { IPVS_CMD_UNSPEC = 0, IPVS_CMD_NEW_SERVICE, ... }
pub const IPVS_CMD_NEW_SERVICE: u8 = 1;
pub const IPVS_CMD_SET_SERVICE: u8 = 2;
pub const IPVS_CMD_DEL_SERVICE: u8 = 3;
pub const IPVS_CMD_GET_SERVICE: u8 = 4;
pub const IPVS_CMD_NEW_DEST: u8 = 5;
pub const IPVS_CMD_SET_DEST: u8 = 6;
pub const IPVS_CMD_DEL_DEST: u8 = 7;
pub const IPVS_CMD_GET_DEST: u8 = 8;

pub const IPVS_CMD_ATTR_SERVICE: u16 = 1;
pub const IPVS_CMD_ATTR_DEST: u16 = 2;

pub const IPVS_SVC_ATTR_AF: u16 = 1;
pub const IPVS_SVC_ATTR_PROTOCOL: u16 = 2;
pub const IPVS_SVC_ATTR_ADDR: u16 = 3;
pub const IPVS_SVC_ATTR_PORT: u16 = 4;
pub const IPVS_SVC_ATTR_FWMARK: u16 = 5;
pub const IPVS_SVC_ATTR_SCHED_NAME: u16 = 6;
pub const IPVS_SVC_ATTR_FLAGS: u16 = 7;
pub const IPVS_SVC_ATTR_TIMEOUT: u16 = 8;
pub const IPVS_SVC_ATTR_NETMASK: u16 = 9;

pub const IPVS_DEST_ATTR_ADDR: u16 = 1;
pub const IPVS_DEST_ATTR_PORT: u16 = 2;
pub const IPVS_DEST_ATTR_FWD_METHOD: u16 = 3;
pub const IPVS_DEST_ATTR_WEIGHT: u16 = 4;
pub const IPVS_DEST_ATTR_U_THRESH: u16 = 5;
pub const IPVS_DEST_ATTR_L_THRESH: u16 = 6;
pub const IPVS_DEST_ATTR_ADDR_FAMILY: u16 = 11;

// Forwarding methods (IP_VS_CONN_F_FWD_MASK values).
pub const IP_VS_CONN_F_MASQ: u32 = 0x0000;
pub const IP_VS_CONN_F_TUNNEL: u32 = 0x0002;
pub const IP_VS_CONN_F_DROUTE: u32 = 0x0003;
pub const IP_VS_SVC_F_PERSISTENT: u32 = 0x0001;

/// Each request's replies must arrive within this (the daemon has no
/// action deadline; a kernel that stops answering must not stop it).
const REPLY_WITHIN: Duration = Duration::from_secs(5);

fn af(ip: IpAddr) -> u16 {
    if ip.is_ipv4() {
        libc::AF_INET as u16
    } else {
        libc::AF_INET6 as u16
    }
}

/// union nf_inet_addr: 16 bytes, IPv4 in the first four.
fn inet_addr(ip: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => b[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b.copy_from_slice(&v6.octets()),
    }
    b
}

/// The attributes that identify a service (and, `full`, its settings).
pub fn service_attr(s: &Service, full: bool) -> Vec<u8> {
    let ip = match s.protocol {
        Protocol::Fwmark(_) => s.dests.first().map_or(s.vip.ip(), |d| d.addr.ip()),
        _ => s.vip.ip(),
    };
    let mut a = vec![nla(IPVS_SVC_ATTR_AF, &af(ip).to_ne_bytes())];
    match s.protocol {
        Protocol::Fwmark(mark) => a.push(nla(IPVS_SVC_ATTR_FWMARK, &mark.to_ne_bytes())),
        Protocol::Tcp | Protocol::Udp => {
            let proto = if s.protocol == Protocol::Tcp { libc::IPPROTO_TCP } else { libc::IPPROTO_UDP } as u16;
            a.push(nla(IPVS_SVC_ATTR_PROTOCOL, &proto.to_ne_bytes()));
            a.push(nla(IPVS_SVC_ATTR_ADDR, &inet_addr(s.vip.ip())));
            // Ports travel in network byte order.
            a.push(nla(IPVS_SVC_ATTR_PORT, &s.vip.port().to_be_bytes()));
        }
    }
    if full {
        let mut sched = s.scheduler.as_bytes().to_vec();
        sched.push(0);
        a.push(nla(IPVS_SVC_ATTR_SCHED_NAME, &sched));
        let flags = if s.persistent { IP_VS_SVC_F_PERSISTENT } else { 0 };
        let mut f = flags.to_ne_bytes().to_vec();
        f.extend_from_slice(&u32::MAX.to_ne_bytes()); // struct ip_vs_flags { flags, mask }
        a.push(nla(IPVS_SVC_ATTR_FLAGS, &f));
        a.push(nla(IPVS_SVC_ATTR_TIMEOUT, &s.persistent_secs.to_ne_bytes()));
        let mask: u32 = if ip.is_ipv4() { u32::MAX } else { 128 };
        a.push(nla(IPVS_SVC_ATTR_NETMASK, &mask.to_ne_bytes()));
    }
    nested(IPVS_CMD_ATTR_SERVICE, &a)
}

pub fn fwd_method(m: Method) -> u32 {
    match m {
        Method::Gate => IP_VS_CONN_F_DROUTE,
        Method::Masq => IP_VS_CONN_F_MASQ,
        Method::Ipip => IP_VS_CONN_F_TUNNEL,
    }
}

pub fn dest_attr(d: &Dest, full: bool) -> Vec<u8> {
    let mut a =
        vec![nla(IPVS_DEST_ATTR_ADDR, &inet_addr(d.addr.ip())), nla(IPVS_DEST_ATTR_PORT, &d.addr.port().to_be_bytes())];
    if full {
        a.push(nla(IPVS_DEST_ATTR_FWD_METHOD, &fwd_method(d.method).to_ne_bytes()));
        a.push(nla(IPVS_DEST_ATTR_WEIGHT, &d.weight.to_ne_bytes()));
        a.push(nla(IPVS_DEST_ATTR_U_THRESH, &0u32.to_ne_bytes()));
        a.push(nla(IPVS_DEST_ATTR_L_THRESH, &0u32.to_ne_bytes()));
        a.push(nla(IPVS_DEST_ATTR_ADDR_FAMILY, &af(d.addr.ip()).to_ne_bytes()));
    }
    nested(IPVS_CMD_ATTR_DEST, &a)
}

/// A connected generic netlink socket with the IPVS family resolved.
pub struct Ipvs {
    nl: Netlink,
    family: u16,
    /// What this director programmed: the only services it may change.
    applied: Table,
}

impl Ipvs {
    pub fn open() -> Result<Ipvs, LbError> {
        let mut nl = Netlink::generic(Deadline::after(REPLY_WITHIN))?;
        let family = nl.genl_family(IPVS_GENL_NAME)?;
        Ok(Ipvs { nl, family, applied: Table::default() })
    }

    /// An IPVS message of command `cmd`.
    fn message(&self, cmd: u8, attrs: &[Vec<u8>]) -> GenlMessage {
        GenlMessage { family: self.family, cmd, version: IPVS_GENL_VERSION, attrs: attrs.concat() }
    }

    /// One change, acknowledged within REPLY_WITHIN.
    fn send(&mut self, cmd: u8, attrs: &[Vec<u8>]) -> Result<(), LbError> {
        let msg = self.message(cmd, attrs);
        self.nl.set_deadline(Deadline::after(REPLY_WITHIN));
        Ok(self.nl.change(&format!("IPVS command {cmd}"), msg, false)?)
    }

    /// One dump, complete within REPLY_WITHIN: the replies' attributes.
    fn dump_of(&mut self, cmd: u8, attrs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, LbError> {
        let msg = self.message(cmd, attrs);
        self.nl.set_deadline(Deadline::after(REPLY_WITHIN));
        let replies = self.nl.dump(&format!("IPVS dump (command {cmd})"), msg)?;
        Ok(replies.into_iter().map(|m| m.attrs).collect())
    }

    /// Bring the kernel from what was applied to `t`.
    pub fn apply(&mut self, t: &Table) -> Result<(), LbError> {
        let old = std::mem::take(&mut self.applied);
        let key = |s: &Service| (s.vip, s.protocol);
        for s in &old.services {
            if !t.services.iter().any(|n| key(n) == key(s)) {
                self.send(IPVS_CMD_DEL_SERVICE, &[service_attr(s, false)])?;
            }
        }
        for s in &t.services {
            let before = old.services.iter().find(|o| key(o) == key(s));
            match before {
                None => self.send(IPVS_CMD_NEW_SERVICE, &[service_attr(s, true)])?,
                Some(b) if b.scheduler != s.scheduler || b.persistent != s.persistent => {
                    self.send(IPVS_CMD_SET_SERVICE, &[service_attr(s, true)])?
                }
                Some(_) => {}
            }
            let old_dests: &[Dest] = before.map_or(&[], |b| &b.dests);
            for d in old_dests {
                if !s.dests.iter().any(|n| n.addr == d.addr) {
                    self.send(IPVS_CMD_DEL_DEST, &[service_attr(s, false), dest_attr(d, false)])?;
                }
            }
            for d in &s.dests {
                match old_dests.iter().find(|o| o.addr == d.addr) {
                    None => self.send(IPVS_CMD_NEW_DEST, &[service_attr(s, false), dest_attr(d, true)])?,
                    Some(o) if o != d => self.send(IPVS_CMD_SET_DEST, &[service_attr(s, false), dest_attr(d, true)])?,
                    Some(_) => {}
                }
            }
        }
        self.applied = t.clone();
        Ok(())
    }

    /// Remove exactly the services this director created.
    pub fn clear(&mut self) -> Result<(), LbError> {
        let old = std::mem::take(&mut self.applied);
        for s in &old.services {
            match self.send(IPVS_CMD_DEL_SERVICE, &[service_attr(s, false)]) {
                // Already gone (deleted behind the director's back): done.
                Err(LbError::Net(e)) if is_gone(&e) => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// The kernel's services and their destinations (ipvsadm -Ln).
    pub fn dump(&mut self) -> Result<Vec<KernelService>, LbError> {
        let replies = self.dump_of(IPVS_CMD_GET_SERVICE, &[])?;
        let mut services: Vec<KernelService> = replies.iter().filter_map(|r| parse_service(r)).collect();
        for svc in &mut services {
            let ident = nla(IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED, &svc.ident);
            let dests = self.dump_of(IPVS_CMD_GET_DEST, &[ident])?;
            svc.dests = dests.iter().filter_map(|r| parse_dest(r)).collect();
            svc.dests.sort();
        }
        Ok(services)
    }

    /// Does the kernel still hold exactly what this director applied (its
    /// own services; others' are not its business)?
    pub fn verify(&mut self) -> Result<bool, LbError> {
        let kernel = self.dump()?;
        Ok(self.applied.services.iter().all(|s| {
            kernel.iter().any(|k| {
                let mut want: Vec<(std::net::SocketAddr, u32, u32)> =
                    s.dests.iter().map(|d| (d.addr, d.weight, fwd_method(d.method))).collect();
                want.sort();
                k.is(s) && k.scheduler == s.scheduler && k.dests == want
            })
        }))
    }
}

fn is_gone(e: &NetError) -> bool {
    matches!(e.errno(), Some(libc::ESRCH) | Some(libc::ENOENT))
}

/// One service as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelService {
    /// The identifying attributes, sent back to ask for the destinations.
    ident: Vec<u8>,
    pub protocol: u16,
    pub fwmark: u32,
    pub addr: Option<std::net::SocketAddr>,
    pub scheduler: String,
    /// (address, weight, forwarding method), sorted.
    pub dests: Vec<(std::net::SocketAddr, u32, u32)>,
}

impl KernelService {
    /// Is this the kernel's copy of `s`?
    pub fn is(&self, s: &Service) -> bool {
        match s.protocol {
            Protocol::Fwmark(m) => self.fwmark == m,
            Protocol::Tcp => self.protocol == libc::IPPROTO_TCP as u16 && self.addr == Some(s.vip),
            Protocol::Udp => self.protocol == libc::IPPROTO_UDP as u16 && self.addr == Some(s.vip),
        }
    }
}

fn addr_of(af: u16, b: &[u8], port_be: Option<&[u8]>) -> Option<std::net::SocketAddr> {
    let port = u16::from_be_bytes(port_be?.get(..2)?.try_into().ok()?);
    let ip = if af == libc::AF_INET as u16 {
        let o: [u8; 4] = b.get(..4)?.try_into().ok()?;
        IpAddr::V4(Ipv4Addr::from(o))
    } else {
        let o: [u8; 16] = b.get(..16)?.try_into().ok()?;
        IpAddr::V6(Ipv6Addr::from(o))
    };
    Some(std::net::SocketAddr::new(ip, port))
}

/// The attributes of a NEW_SERVICE message of a service dump
/// (IPVS_CMD_ATTR_SERVICE).
fn parse_service(attrs: &[u8]) -> Option<KernelService> {
    let (_, svc) = attributes(attrs).into_iter().find(|(k, _)| *k == IPVS_CMD_ATTR_SERVICE)?;
    let a = attributes(svc);
    let get = |k: u16| a.iter().find(|(kind, _)| *kind == k).map(|(_, v)| *v);
    let af = get(IPVS_SVC_ATTR_AF).and_then(u16_of)?;
    let protocol = get(IPVS_SVC_ATTR_PROTOCOL).and_then(u16_of).unwrap_or(0);
    let fwmark = get(IPVS_SVC_ATTR_FWMARK).and_then(u32_of).unwrap_or(0);
    let addr = get(IPVS_SVC_ATTR_ADDR).and_then(|b| addr_of(af, b, get(IPVS_SVC_ATTR_PORT)));
    let scheduler = get(IPVS_SVC_ATTR_SCHED_NAME)
        .map(|b| String::from_utf8_lossy(b.split(|c| *c == 0).next().unwrap_or_default()).into_owned())
        .unwrap_or_default();
    // The identity the kernel accepts back: AF and either the mark or
    // protocol, address and port.
    let mut ident = vec![nla(IPVS_SVC_ATTR_AF, &af.to_ne_bytes())];
    if fwmark != 0 {
        ident.push(nla(IPVS_SVC_ATTR_FWMARK, &fwmark.to_ne_bytes()));
    } else {
        for k in [IPVS_SVC_ATTR_PROTOCOL, IPVS_SVC_ATTR_ADDR, IPVS_SVC_ATTR_PORT] {
            ident.push(nla(k, get(k)?));
        }
    }
    Some(KernelService { ident: ident.concat(), protocol, fwmark, addr, scheduler, dests: Vec::new() })
}

/// The attributes of a NEW_DEST message of a destination dump.
fn parse_dest(attrs: &[u8]) -> Option<(std::net::SocketAddr, u32, u32)> {
    let (_, d) = attributes(attrs).into_iter().find(|(k, _)| *k == IPVS_CMD_ATTR_DEST)?;
    let a = attributes(d);
    let get = |k: u16| a.iter().find(|(kind, _)| *kind == k).map(|(_, v)| *v);
    let raw = get(IPVS_DEST_ATTR_ADDR)?;
    // Older kernels send no address family: an IPv4 address leaves the
    // last twelve bytes zero.
    let af = get(IPVS_DEST_ATTR_ADDR_FAMILY).and_then(u16_of).unwrap_or_else(|| {
        if raw.get(4..16).is_some_and(|r| r.iter().all(|b| *b == 0)) {
            libc::AF_INET as u16
        } else {
            libc::AF_INET6 as u16
        }
    });
    let addr = addr_of(af, raw, get(IPVS_DEST_ATTR_PORT))?;
    let weight = get(IPVS_DEST_ATTR_WEIGHT).and_then(u32_of)?;
    let fwd = get(IPVS_DEST_ATTR_FWD_METHOD).and_then(u32_of)? & 0x7;
    Some((addr, weight, fwd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::genl::pad4;

    fn svc() -> Service {
        Service {
            vip: "198.51.100.10:80".parse().unwrap(),
            protocol: Protocol::Tcp,
            scheduler: "wrr".into(),
            persistent: false,
            persistent_secs: 0,
            dests: vec![Dest { addr: "203.0.113.11:8080".parse().unwrap(), weight: 3, method: Method::Gate }],
            on_fallback: false,
        }
    }

    /// Walk a nested attribute: (type, payload) pairs.
    fn attrs(b: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        let mut off = 0;
        while off + 4 <= b.len() {
            let len = u16::from_ne_bytes([b[off], b[off + 1]]) as usize;
            let kind = u16::from_ne_bytes([b[off + 2], b[off + 3]]);
            out.push((kind, b[off + 4..off + len].to_vec()));
            off += pad4(len);
        }
        out
    }

    #[test]
    fn attribute_numbers_are_the_kernels() {
        // include/uapi/linux/ip_vs.h enumerations, in order.
        assert_eq!((IPVS_CMD_NEW_SERVICE, IPVS_CMD_DEL_SERVICE, IPVS_CMD_NEW_DEST, IPVS_CMD_DEL_DEST), (1, 3, 5, 7));
        assert_eq!((IPVS_SVC_ATTR_AF, IPVS_SVC_ATTR_SCHED_NAME, IPVS_SVC_ATTR_NETMASK), (1, 6, 9));
        assert_eq!((IPVS_DEST_ATTR_FWD_METHOD, IPVS_DEST_ATTR_WEIGHT, IPVS_DEST_ATTR_ADDR_FAMILY), (3, 4, 11));
        assert_eq!((IP_VS_CONN_F_MASQ, IP_VS_CONN_F_TUNNEL, IP_VS_CONN_F_DROUTE), (0, 2, 3));
    }

    #[test]
    fn new_service_layout() {
        let a = service_attr(&svc(), true);
        let outer = attrs(&a);
        assert_eq!(outer.len(), 1);
        assert_eq!(outer[0].0, IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED);
        let inner = attrs(&outer[0].1);
        let kinds: Vec<u16> = inner.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, vec![1, 2, 3, 4, 6, 7, 8, 9]);
        assert_eq!(inner[0].1, (libc::AF_INET as u16).to_ne_bytes());
        assert_eq!(inner[1].1, (libc::IPPROTO_TCP as u16).to_ne_bytes());
        assert_eq!(inner[2].1.len(), 16, "union nf_inet_addr");
        assert_eq!(&inner[2].1[..4], &[198, 51, 100, 10]);
        assert_eq!(inner[3].1, vec![0, 80], "port in network byte order");
        assert_eq!(inner[4].1, b"wrr\0");
        assert_eq!(inner[5].1.len(), 8, "struct ip_vs_flags");
    }

    #[test]
    fn new_dest_layout() {
        let s = svc();
        let a = dest_attr(&s.dests[0], true);
        let outer = attrs(&a);
        assert_eq!(outer[0].0, IPVS_CMD_ATTR_DEST | NLA_F_NESTED);
        let inner = attrs(&outer[0].1);
        assert_eq!(inner[1].1, 8080u16.to_be_bytes().to_vec());
        assert_eq!(inner[2], (IPVS_DEST_ATTR_FWD_METHOD, IP_VS_CONN_F_DROUTE.to_ne_bytes().to_vec()));
        assert_eq!(inner[3], (IPVS_DEST_ATTR_WEIGHT, 3u32.to_ne_bytes().to_vec()));
    }

    /// An IPVS message as the kernel would send it in a dump (sequence 9).
    fn wire(cmd: u8, attrs: Vec<u8>) -> Vec<u8> {
        crate::net::netlink::encode(GenlMessage { family: 0x1a, cmd, version: IPVS_GENL_VERSION, attrs }, 2, 9)
    }

    #[test]
    fn genl_header() {
        let m = wire(IPVS_CMD_NEW_SERVICE, service_attr(&svc(), true));
        assert_eq!(u32::from_ne_bytes([m[0], m[1], m[2], m[3]]) as usize, m.len());
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), 0x1a);
        assert_eq!(&m[16..18], &[IPVS_CMD_NEW_SERVICE, 1]);
        assert_eq!(m.len() % 4, 0);
    }

    #[test]
    fn dumped_service_and_dest_parse_back() {
        let s = svc();
        // A dump reply through the shared receive path: the message's
        // attributes after the genl header.
        let mut reply = wire(IPVS_CMD_NEW_SERVICE, service_attr(&s, true));
        reply.extend(wire(IPVS_CMD_NEW_DEST, dest_attr(&s.dests[0], true)));
        let mut out: Vec<GenlMessage> = Vec::new();
        crate::net::reply::take("dump", &reply, 9, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        let k = parse_service(&out[0].attrs).expect("service parses");
        assert!(k.is(&s) && k.scheduler == "wrr", "{k:?}");
        assert_eq!(parse_dest(&out[1].attrs), Some(("203.0.113.11:8080".parse().unwrap(), 3, IP_VS_CONN_F_DROUTE)));
    }

    /// The messages of `b` that the receive path accepts, each parsed as
    /// a service and as a destination.
    fn parse_all(b: &[u8]) -> usize {
        let mut out: Vec<GenlMessage> = Vec::new();
        let _ = crate::net::reply::take("dump", b, 9, &mut out);
        for m in &out {
            let _ = (parse_service(&m.attrs), parse_dest(&m.attrs));
        }
        out.len()
    }

    #[test]
    fn any_bytes_parse_without_panic() {
        let s = svc();
        let mut reply = wire(IPVS_CMD_NEW_SERVICE, service_attr(&s, true));
        reply.extend(wire(IPVS_CMD_NEW_DEST, dest_attr(&s.dests[0], true)));
        for cut in 0..reply.len() {
            parse_all(&reply[..cut]);
        }
        let mut garbled = reply.clone();
        for i in 0..garbled.len() {
            garbled[i] ^= 0xff;
            parse_all(&garbled);
            // The attribute parsers alone, on bytes the header checks
            // would have refused.
            let _ = (parse_service(&garbled[20..]), parse_dest(&garbled[20..]));
            garbled[i] ^= 0xff;
        }
        assert_eq!(parse_all(&reply), 2);
    }
}
