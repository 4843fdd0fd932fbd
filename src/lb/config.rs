//! ldirectord.cf, parsed: global settings and virtual/virtual6 blocks with
//! their real servers, the defaults ldirectord itself uses, and every error
//! with its line number.

use super::keys;
use crate::probe::{Expect, Negotiate, Probe, Service};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    Gate,
    Masq,
    Ipip,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Gate => "Route",
            Method::Masq => "Masq",
            Method::Ipip => "Tunnel",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    Fwmark(u32),
}

/// How a real server is checked.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckType {
    Connect,
    Negotiate,
    /// Negotiate every n-th check, connect otherwise (ldirectord's numeric
    /// checktype).
    Every(u32),
    Ping,
    External,
    On,
    Off,
}

#[derive(Clone, Debug)]
pub struct Real {
    pub addr: SocketAddr,
    pub method: Method,
    pub weight: u32,
    /// Per-real request/receive overrides.
    pub request: Option<String>,
    pub receive: Option<String>,
    pub line: usize,
}

#[derive(Clone, Debug)]
pub struct Virtual {
    /// Address and port (port 0 for fwmark services).
    pub addr: SocketAddr,
    pub protocol: Protocol,
    pub reals: Vec<Real>,
    pub scheduler: String,
    pub persistent: Option<Duration>,
    pub netmask: Option<String>,
    pub checktype: CheckType,
    pub service: String,
    pub checkport: Option<u16>,
    pub request: String,
    pub receive: String,
    pub httpmethod: String,
    pub virtualhost: Option<String>,
    pub checkcommand: Option<String>,
    /// https checks: verify the certificate (haven extension, default no).
    pub verify_tls: bool,
    pub checkinterval: Duration,
    pub checktimeout: Duration,
    pub negotiatetimeout: Duration,
    pub failurecount: u32,
    pub quiescent: bool,
    pub fallback: Option<Real>,
    pub fallbackcommand: Option<String>,
    /// The user external checks run as (the global commanduser).
    pub commanduser: String,
    /// Credentials and database of negotiate checks (mysql, pgsql, ldap,
    /// ftp, sip) and the RADIUS shared secret.
    pub login: Option<String>,
    pub passwd: Option<String>,
    pub database: Option<String>,
    pub secret: Option<String>,
    /// IPVS-only settings, kept for the IPVS backend.
    pub schedflags: Option<String>,
    pub ops: bool,
    pub line: usize,
}

impl Virtual {
    /// "TCP 198.51.100.10:80" / "FWM 7", as ipvsadm shows services.
    pub fn label(&self) -> String {
        match self.protocol {
            Protocol::Tcp => format!("TCP  {}", self.addr),
            Protocol::Udp => format!("UDP  {}", self.addr),
            Protocol::Fwmark(m) => format!("FWM  {m}"),
        }
    }

    /// The probe for one real server at one check (`n` counts checks, for
    /// numeric checktypes). None: no network check (on/off).
    pub fn probe_for(&self, real: &Real, n: u64) -> Option<Probe> {
        let negotiate = match &self.checktype {
            CheckType::On | CheckType::Off => return None,
            CheckType::Connect => false,
            CheckType::Negotiate => true,
            CheckType::Every(k) => n % u64::from((*k).max(1)) == 0,
            CheckType::Ping => return Some(Probe::Ping),
            CheckType::External => {
                let cmd = self.checkcommand.clone().unwrap_or_default();
                return Some(Probe::External { argv: vec![cmd], user: self.commanduser.clone() });
            }
        };
        if !negotiate {
            return Some(Probe::Connect);
        }
        let request = real.request.clone().unwrap_or_else(|| self.request.clone());
        let receive = real.receive.clone().unwrap_or_else(|| self.receive.clone());
        let expect = Expect::from_receive(&receive);
        let path = if request.starts_with('/') { request.clone() } else { format!("/{request}") };
        let (method, host) = (self.httpmethod.clone(), self.virtualhost.clone());
        let negotiate = |service, tls| {
            Some(Probe::Negotiate(Box::new(Negotiate {
                service,
                tls,
                udp: self.protocol == Protocol::Udp || service == Service::Radius,
                request: request.strip_prefix('/').unwrap_or(&request).to_string(),
                expect: expect.clone(),
                login: self.login.clone(),
                passwd: self.passwd.clone(),
                database: self.database.clone(),
                secret: self.secret.clone(),
            })))
        };
        match self.service.as_str() {
            "http" => Some(Probe::Http { method, path, host, expect }),
            "https" => Some(Probe::Https { method, path, host, expect, verify: self.verify_tls }),
            // Through the proxy: an absolute URL (request, or the
            // virtualhost's path).
            "http_proxy" => {
                let url = if request.contains("://") {
                    request.clone()
                } else {
                    format!("http://{}{path}", host.clone().unwrap_or_else(|| real.addr.ip().to_string()))
                };
                Some(Probe::Http { method, path: url, host, expect })
            }
            "smtp" | "submission" => negotiate(Service::Smtp, false),
            "pop" => negotiate(Service::Pop, false),
            "pops" => negotiate(Service::Pop, true),
            "imap" => negotiate(Service::Imap, false),
            "imaps" => negotiate(Service::Imap, true),
            "nntp" => negotiate(Service::Nntp, false),
            "ftp" => negotiate(Service::Ftp, false),
            "ldap" => negotiate(Service::Ldap, false),
            "ldaps" => negotiate(Service::Ldap, true),
            "mysql" => negotiate(Service::Mysql, false),
            "pgsql" => negotiate(Service::Pgsql, false),
            "dns" => negotiate(Service::Dns, false),
            "radius" => negotiate(Service::Radius, false),
            "sip" => negotiate(Service::Sip, false),
            "simpletcp" => Some(Probe::Exchange {
                request: unescape(request.strip_prefix('/').unwrap_or(&request)).into_bytes(),
                expect,
            }),
            // ldirectord's check_none: a connect check is all "none" means.
            _ => Some(Probe::Connect),
        }
    }

    /// Why a negotiate check of this service cannot run as configured
    /// (refused at `check`, never degraded to a connect check).
    pub fn negotiate_refusal(&self) -> Option<String> {
        let negotiates = matches!(self.checktype, CheckType::Negotiate | CheckType::Every(_));
        if !negotiates {
            return None;
        }
        let has = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.is_empty());
        let request_set = self.request != "/" || self.reals.iter().any(|r| r.request.is_some());
        match self.service.as_str() {
            "oracle" => Some(
                "service oracle cannot be negotiated: Oracle's protocol needs Oracle's proprietary client; \
                 use checktype = connect, or external with a check command"
                    .into(),
            ),
            "mysql" | "pgsql" if !has(&self.login) || !request_set => Some(format!(
                "service {} with checktype negotiate needs login and request (a query that returns rows)",
                self.service
            )),
            "radius" if !has(&self.secret) || !has(&self.login) => {
                Some("service radius with checktype negotiate needs secret, login and passwd".into())
            }
            "dns" if !request_set || self.receive.is_empty() => Some(
                "service dns with checktype negotiate needs request (a name) and receive (an address it resolves to)"
                    .into(),
            ),
            _ => None,
        }
    }

    /// Where checks go for a real server (checkport overrides its port).
    pub fn check_addr(&self, real: &Real) -> SocketAddr {
        SocketAddr::new(real.addr.ip(), self.checkport.unwrap_or(real.addr.port()))
    }

    pub fn timeout_for(&self, probe: &Probe) -> Duration {
        match probe {
            Probe::Connect | Probe::Ping | Probe::External { .. } => self.checktimeout,
            _ => self.negotiatetimeout,
        }
    }
}

/// Which kernel engine programs the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    Auto,
    Nftables,
    Ipvs,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub virtuals: Vec<Virtual>,
    pub autoreload: bool,
    pub callback: Option<String>,
    pub backend: BackendChoice,
    /// ldirectord's logfile: a path, or a syslog facility name.
    pub logfile: Option<String>,
    /// ldirectord's maintenancedir: a file named after a real server
    /// (ip, ip:port) there takes it out of service.
    pub maintenancedir: Option<std::path::PathBuf>,
    /// The user external checks, callback and fallbackcommand run as (haven
    /// extension `commanduser`, default nobody: never root unless named).
    pub commanduser: String,
    pub warnings: Vec<String>,
}

/// The user configuration commands run as unless `commanduser` says.
pub const DEFAULT_COMMAND_USER: &str = "nobody";

impl Config {
    /// The commands this file makes haven run: external checks, callback,
    /// fallbackcommand.
    pub fn commands(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.callback.iter().map(String::as_str).collect();
        for vs in &self.virtuals {
            if vs.checktype == CheckType::External {
                v.extend(vs.checkcommand.as_deref());
            }
            v.extend(vs.fallbackcommand.as_deref());
        }
        v
    }
}

/// A file that makes haven run commands must be root's alone (sshd's
/// StrictModes, crate::trust); a file without commands is only data.
pub fn check_trust(cfg: &Config, path: &Path) -> Result<(), crate::trust::Untrusted> {
    if cfg.commands().is_empty() {
        return Ok(());
    }
    crate::trust::require_root(path)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}:{line}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Settings that may appear globally and be overridden per virtual.
#[derive(Clone, Debug, Default)]
pub struct Shared {
    pub checkinterval: Option<u64>,
    pub checktimeout: Option<u64>,
    pub negotiatetimeout: Option<u64>,
    pub failurecount: Option<u32>,
    /// Deprecated in ldirectord in favour of failurecount.
    pub checkcount: Option<u32>,
    pub quiescent: Option<bool>,
    pub checktype: Option<CheckType>,
    pub fallback: Option<Real>,
    pub fallbackcommand: Option<String>,
}

fn port_by_name(s: &str) -> Option<u16> {
    Some(match s {
        "http" | "www" => 80,
        "https" => 443,
        "ftp" => 21,
        "smtp" => 25,
        "submission" => 587,
        "pop3" | "pop" => 110,
        "imap" | "imap2" => 143,
        "imaps" => 993,
        "pop3s" => 995,
        "mysql" => 3306,
        "postgresql" | "pgsql" => 5432,
        "domain" | "dns" => 53,
        "ldap" => 389,
        "ldaps" => 636,
        "nntp" => 119,
        "sip" => 5060,
        "radius" => 1812,
        "squid" | "http_proxy" => 3128,
        _ => return s.parse().ok(),
    })
}

/// Undo the \n, \r, \t escapes simpletcp requests use.
fn unescape(s: &str) -> String {
    s.replace("\\r", "\r").replace("\\n", "\n").replace("\\t", "\t")
}

pub(super) fn unquote(s: &str) -> &str {
    let t = s.trim();
    if t.len() >= 2 && (t.starts_with('"') && t.ends_with('"') || t.starts_with('\'') && t.ends_with('\'')) {
        &t[1..t.len() - 1]
    } else {
        t
    }
}

/// "ip", "ip:port", "[v6]:port", "[v6]" with a default port.
fn parse_hostport(s: &str, default_port: u16) -> Option<SocketAddr> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip: IpAddr = ip.parse().ok()?;
        let port = match after.strip_prefix(':') {
            Some(p) => port_by_name(p)?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some(SocketAddr::new(ip, port));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, default_port));
    }
    let (ip, port) = s.rsplit_once(':')?;
    Some(SocketAddr::new(ip.parse().ok()?, port_by_name(port)?))
}

/// `ip[:port] [gate|masq|ipip] [weight] ["request", "receive"]`: a real
/// server or a fallback; `default_port` is the virtual's.
pub(super) fn parse_real(value: &str, default_port: u16, line: usize) -> Result<Real, String> {
    let mut rest = value.trim();
    let (addr_text, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    rest = after.trim();
    if addr_text.contains("->") {
        return Err("real server ranges (a->b) are not supported; list each real server".into());
    }
    let addr = parse_hostport(addr_text, default_port)
        .ok_or_else(|| format!("{addr_text:?} is not ip[:port] or [ipv6]:port"))?;
    let mut method = Method::Gate;
    let mut weight = 1;
    let mut request = None;
    let mut receive = None;
    // Quoted request/receive pair at the end.
    if let Some(q) = rest.find('"') {
        let parts: Vec<&str> = rest[q..].split('"').collect();
        // "a", "b" -> ["", a, ", ", b, ""]
        match (parts.get(1), parts.get(3)) {
            (Some(a), Some(b)) => {
                request = Some((*a).to_string());
                receive = Some((*b).to_string());
            }
            _ => return Err("a real server's request and receive are given as \"request\", \"receive\"".into()),
        }
        rest = rest[..q].trim();
    }
    for word in rest.split_whitespace() {
        match word {
            "gate" => method = Method::Gate,
            "masq" => method = Method::Masq,
            "ipip" => method = Method::Ipip,
            w => {
                weight = w
                    .parse()
                    .map_err(|_| format!("{w:?} is neither a forwarding method (gate, masq, ipip) nor a weight"))?
            }
        }
    }
    Ok(Real { addr, method, weight, request, receive, line })
}

struct Parser<'a> {
    file: &'a str,
    cfg: Config,
    global: Shared,
    current: Option<(Virtual, Shared)>,
    /// Keys already warned about: one warning per key.
    warned: Vec<&'static str>,
}

impl<'a> Parser<'a> {
    fn err(&self, line: usize, message: impl Into<String>) -> ConfigError {
        ConfigError { file: self.file.to_string(), line, message: message.into() }
    }

    fn start_virtual(&mut self, key: &str, value: &str, line: usize) -> Result<(), ConfigError> {
        self.finish_virtual()?;
        let v6 = key == "virtual6";
        let (addr, protocol) = if let Ok(mark) = value.parse::<u32>() {
            let unspecified = if v6 { IpAddr::from([0u16; 8]) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
            (SocketAddr::new(unspecified, 0), Protocol::Fwmark(mark))
        } else {
            let a = parse_hostport(value, 0).filter(|a| a.port() != 0).ok_or_else(|| {
                self.err(line, format!("virtual {value:?} is not ip:port, [ipv6]:port or a firewall mark"))
            })?;
            if a.is_ipv6() != v6 {
                let want = if v6 { "virtual6 takes an IPv6 [address]:port" } else { "use virtual6 for IPv6 addresses" };
                return Err(self.err(line, want));
            }
            // ldirectord: port 53 (domain) services are UDP unless told.
            (a, if a.port() == 53 { Protocol::Udp } else { Protocol::Tcp })
        };
        let v = Virtual {
            addr,
            protocol,
            reals: Vec::new(),
            scheduler: "wrr".into(),
            persistent: None,
            netmask: None,
            checktype: CheckType::Negotiate,
            service: String::new(),
            checkport: None,
            request: "/".into(),
            receive: String::new(),
            httpmethod: "GET".into(),
            virtualhost: None,
            checkcommand: None,
            verify_tls: false,
            checkinterval: Duration::ZERO,
            checktimeout: Duration::ZERO,
            negotiatetimeout: Duration::ZERO,
            failurecount: 1,
            quiescent: true,
            fallback: None,
            fallbackcommand: None,
            commanduser: String::new(),
            login: None,
            passwd: None,
            database: None,
            secret: None,
            schedflags: None,
            ops: false,
            line,
        };
        self.current = Some((v, Shared::default()));
        Ok(())
    }

    /// One `key = value` line, through the key table.
    fn key(&mut self, key: &str, value: &str, line: usize, in_virtual: bool) -> Result<(), ConfigError> {
        let Some(row) = keys::find(key) else {
            let hint = match key {
                "timeout" => ": deprecated in favour of checktimeout and negotiatetimeout",
                _ if in_virtual => " in a virtual block",
                _ => "",
            };
            return Err(self.err(line, format!("unknown key {key:?}{hint}")));
        };
        if !row.allowed(in_virtual) {
            let where_ =
                if in_virtual { "in the global section, not in a virtual block" } else { "inside a virtual block" };
            return Err(self.err(line, format!("{key} is only allowed {where_}")));
        }
        let (mut v, mut sh) = match self.current.take() {
            Some((v, sh)) if in_virtual => (Some(v), sh),
            other => {
                self.current = other;
                (None, std::mem::take(&mut self.global))
            }
        };
        let result = {
            let mut ctx = keys::Ctx { cfg: &mut self.cfg, sh: &mut sh, v: v.as_mut(), line };
            (row.apply)(&mut ctx, value)
        };
        match v {
            Some(v) => self.current = Some((v, sh)),
            None => self.global = sh,
        }
        result.map_err(|m| self.err(line, format!("{key}: {m}")))?;
        let note = match row.effect {
            keys::Effect::Deprecated(why) => Some(format!("{key} is {why}")),
            keys::Effect::Ignored(why) => Some(format!("{key} is accepted and has no effect: {why}")),
            _ => None,
        };
        if let Some(note) = note {
            if !self.warned.contains(&row.name) {
                self.warned.push(row.name);
                self.cfg.warnings.push(format!("{}:{line}: {note}", self.file));
            }
        }
        Ok(())
    }

    fn finish_virtual(&mut self) -> Result<(), ConfigError> {
        let Some((mut v, sh)) = self.current.take() else { return Ok(()) };
        let g = &self.global;
        v.checktype = sh.checktype.or(g.checktype.clone()).unwrap_or(CheckType::Negotiate);
        v.checkinterval = Duration::from_secs(sh.checkinterval.or(g.checkinterval).unwrap_or(10));
        // ldirectord: each timeout falls back on the other, then 5 / 30 s.
        let ct = sh.checktimeout.or(g.checktimeout);
        let nt = sh.negotiatetimeout.or(g.negotiatetimeout);
        v.checktimeout = Duration::from_secs(ct.or(nt).unwrap_or(5));
        v.negotiatetimeout = Duration::from_secs(nt.or(ct).unwrap_or(30));
        v.failurecount = sh.failurecount.or(g.failurecount).or(sh.checkcount).or(g.checkcount).unwrap_or(1);
        v.quiescent = sh.quiescent.or(g.quiescent).unwrap_or(true);
        v.fallback = sh.fallback.or(g.fallback.clone());
        v.fallbackcommand = sh.fallbackcommand.or(g.fallbackcommand.clone());
        if v.service.is_empty() {
            v.service = match v.protocol {
                Protocol::Fwmark(_) => "none",
                _ => keys::service_for_port(v.checkport.unwrap_or(v.addr.port())),
            }
            .to_string();
        }
        // ldirectord's defaults for ftp and sip logins.
        if v.service == "ftp" {
            v.login.get_or_insert_with(|| "anonymous".into());
            v.passwd.get_or_insert_with(|| "haven@localhost".into());
        }
        if let Some(why) = v.negotiate_refusal() {
            return Err(self.err(v.line, why));
        }
        if v.service == "none" && v.checktype == CheckType::Negotiate {
            self.cfg.warnings.push(format!(
                "{}:{}: virtual {}: service none with checktype negotiate: ldirectord checks nothing there; \
                 haven runs a connect check (set service, or checktype = connect to say so)",
                self.file, v.line, v.addr
            ));
        }
        if v.checktype == CheckType::External && v.checkcommand.is_none() {
            return Err(self.err(v.line, "checktype = external needs checkcommand"));
        }
        if v.reals.is_empty() && v.fallback.is_none() {
            self.cfg.warnings.push(format!("{}:{}: virtual {} has no real servers", self.file, v.line, v.addr));
        }
        self.cfg.virtuals.push(v);
        Ok(())
    }
}

/// Parse ldirectord.cf text. `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    let mut p = Parser {
        file,
        cfg: Config {
            virtuals: Vec::new(),
            autoreload: false,
            callback: None,
            backend: BackendChoice::Auto,
            logfile: None,
            maintenancedir: None,
            commanduser: DEFAULT_COMMAND_USER.into(),
            warnings: Vec::new(),
        },
        global: Shared::default(),
        current: None,
        warned: Vec::new(),
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split_once('#').map_or(raw, |(a, _)| a);
        if content.trim().is_empty() {
            continue;
        }
        let indented = content.starts_with([' ', '\t']);
        // ldirectord takes a bare `supervised` as `supervised = yes`.
        let content = if content.trim() == "supervised" { "supervised = yes" } else { content };
        let Some((key, value)) = content.split_once('=') else {
            return Err(p.err(line, format!("expected key = value, got {:?}", content.trim())));
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        if key == "virtual" || key == "virtual6" {
            if indented {
                return Err(p.err(line, "virtual must start at the beginning of the line"));
            }
            p.start_virtual(&key, value, line)?;
        } else if indented {
            if p.current.is_none() {
                return Err(p.err(line, format!("{key} outside a virtual block (indented lines belong to one)")));
            }
            p.key(&key, value, line, true)?;
        } else {
            p.finish_virtual()?;
            p.key(&key, value, line, false)?;
        }
    }
    p.finish_virtual()?;
    let mut cfg = p.cfg;
    for v in &mut cfg.virtuals {
        v.commanduser.clone_from(&cfg.commanduser);
    }
    Ok(cfg)
}

pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, &file)
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMT: &str = "\
# The LVS director of a three-node SMT mirror (SLES HAE guide).
autoreload = yes
checkinterval = 20
checktimeout = 5
failurecount = 2
quiescent = no
virtual = 198.51.100.10:443
\tchecktype = negotiate
\tfallback = 127.0.0.1:443
\tprotocol = tcp
\treal = 203.0.113.11:443 gate
\treal = 203.0.113.12:443 gate
\treceive = \"still alive\"
\trequest = \"test.html\"
\tscheduler = wlc
\tservice = https
virtual = 198.51.100.10:80
\tchecktype = negotiate
\tfallback = 127.0.0.1:80
\tprotocol = tcp
\treal = 203.0.113.11:80 gate
\treal = 203.0.113.12:80 gate 3 \"alive.html\", \"ok\"
\treceive = \"still alive\"
\trequest = \"test.html\"
\tscheduler = wlc
\tservice = http
";

    #[test]
    fn parses_the_smt_example() {
        let c = parse(SMT, "ldirectord.cf").unwrap();
        assert!(c.autoreload);
        assert_eq!(c.virtuals.len(), 2);
        let v = &c.virtuals[1];
        assert_eq!(v.addr, "198.51.100.10:80".parse().unwrap());
        assert_eq!(v.checkinterval, Duration::from_secs(20));
        assert_eq!(v.checktimeout, Duration::from_secs(5));
        assert_eq!(v.negotiatetimeout, Duration::from_secs(5), "falls back on checktimeout");
        assert_eq!(v.failurecount, 2);
        assert!(!v.quiescent);
        assert_eq!(v.scheduler, "wlc");
        assert_eq!(v.reals.len(), 2);
        assert_eq!(v.reals[1].weight, 3);
        assert_eq!(v.reals[1].request.as_deref(), Some("alive.html"));
        assert_eq!(v.reals[1].receive.as_deref(), Some("ok"));
        assert_eq!(v.fallback.as_ref().map(|f| f.addr), Some("127.0.0.1:80".parse().unwrap()));
        match v.probe_for(&v.reals[0], 0) {
            Some(Probe::Http { path, .. }) => assert_eq!(path.as_str(), "/test.html"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            c.virtuals[0].probe_for(&c.virtuals[0].reals[0], 0),
            Some(Probe::Https { verify: false, .. })
        ));
    }

    #[test]
    fn ldirectord_defaults() {
        let c = parse("virtual = 198.51.100.10:25\n\treal = 203.0.113.11\n", "f").unwrap();
        let v = &c.virtuals[0];
        assert_eq!(v.checkinterval, Duration::from_secs(10));
        assert_eq!(v.checktimeout, Duration::from_secs(5));
        assert_eq!(v.negotiatetimeout, Duration::from_secs(30));
        assert_eq!(v.failurecount, 1);
        assert!(v.quiescent);
        assert_eq!(v.scheduler, "wrr");
        assert_eq!(v.checktype, CheckType::Negotiate);
        assert_eq!(v.service, "smtp", "from the port");
        assert_eq!(v.reals[0].addr.port(), 25, "the virtual's port");
        assert_eq!(v.reals[0].method, Method::Gate);
        assert!(matches!(v.probe_for(&v.reals[0], 0), Some(Probe::Negotiate(n)) if n.service == Service::Smtp));
    }

    #[test]
    fn errors_have_line_numbers() {
        let e =
            parse("checkinterval = 5\nvirtual = 198.51.100.10:80\n\treal = 203.0.113.1:80 gaet\n", "x.cf").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.to_string().starts_with("x.cf:3: "), "{e}");
        assert_eq!(parse("bogus = 1\n", "f").unwrap_err().line, 1);
        assert_eq!(parse("virtual = 198.51.100.10\n", "f").unwrap_err().line, 1, "a virtual needs a port");
        assert_eq!(parse("\treal = 203.0.113.1\n", "f").unwrap_err().line, 1);
        assert_eq!(parse("virtual = 198.51.100.10:80\n\treceive = \"(\"\n", "f").unwrap_err().line, 2);
        assert_eq!(parse("virtual = 198.51.100.10:80\n\tchecktype = sometimes\n", "f").unwrap_err().line, 2);
        assert_eq!(parse("virtual6 = 198.51.100.10:80\n", "f").unwrap_err().line, 1);
    }

    #[test]
    fn ipv6_fwmark_and_checktypes() {
        let c = parse(
            "virtual6 = [2001:db8::10]:80\n\treal = [2001:db8::11]:8080 masq\n\tchecktype = 3\n\
             virtual = 7\n\tprotocol = fwm\n\treal = 203.0.113.1:80\n\tchecktype = connect\n",
            "f",
        )
        .unwrap();
        assert_eq!(c.virtuals[0].reals[0].addr, "[2001:db8::11]:8080".parse().unwrap());
        assert_eq!(c.virtuals[0].checktype, CheckType::Every(3));
        assert!(matches!(c.virtuals[0].probe_for(&c.virtuals[0].reals[0], 1), Some(Probe::Connect)));
        assert!(matches!(c.virtuals[0].probe_for(&c.virtuals[0].reals[0], 3), Some(Probe::Http { .. })));
        assert_eq!(c.virtuals[1].protocol, Protocol::Fwmark(7));
    }
}
