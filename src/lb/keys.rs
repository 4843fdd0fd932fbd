//! ldirectord.cf's keys, one row each: where ldirectord's parser accepts
//! the key (global section, virtual block or both), the check its value
//! must pass, and what haven does with it. A key ldirectord gains is one
//! row here.

use super::config::{self, CheckType, Config, Protocol, Shared, Virtual};
use std::time::Duration;

/// The state a key's value is applied to.
pub struct Ctx<'a> {
    pub cfg: &'a mut Config,
    /// Settings of this scope that finish_virtual resolves (global ones, or
    /// the virtual block's overrides).
    pub sh: &'a mut Shared,
    /// The virtual block being read (None in the global section).
    pub v: Option<&'a mut Virtual>,
    pub line: usize,
}

type Apply = fn(&mut Ctx<'_>, &str) -> Result<(), String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Global,
    Virtual,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// haven does what ldirectord does with it.
    Honoured,
    /// Only describes the service (no behaviour in ldirectord either).
    Descriptive,
    /// Honoured, but ldirectord warns about it (or refuses it): the warning
    /// says what haven makes of it.
    Deprecated(&'static str),
    /// Value checked as ldirectord checks it; haven has no equivalent, and
    /// `haven director check` says so once per key.
    Ignored(&'static str),
    /// Not an ldirectord key: a haven extension.
    Extension,
}

pub struct Key {
    pub name: &'static str,
    pub scope: Scope,
    pub apply: Apply,
    pub effect: Effect,
}

impl Key {
    pub fn allowed(&self, in_virtual: bool) -> bool {
        match self.scope {
            Scope::Both => true,
            Scope::Global => !in_virtual,
            Scope::Virtual => in_virtual,
        }
    }
}

const fn row(name: &'static str, scope: Scope, apply: Apply, effect: Effect) -> Key {
    Key { name, scope, apply, effect }
}

use Effect::{Deprecated, Descriptive, Extension, Honoured, Ignored};
use Scope::{Both, Global, Virtual as Virt};

/// Every key ldirectord's read_config accepts (resource-agents 4.12), plus
/// haven's extensions, marked as such.
pub const KEYS: &[Key] = &[
    // Both scopes.
    row("checktimeout", Both, |c, v| seconds(v).map(|n| c.sh.checktimeout = Some(n)), Honoured),
    row(
        "connecttimeout",
        Both,
        |c, v| seconds(v).map(|n| c.sh.checktimeout = Some(n)),
        Deprecated("ldirectord refuses it in favour of negotiatetimeout; haven uses it as checktimeout"),
    ),
    row("negotiatetimeout", Both, |c, v| seconds(v).map(|n| c.sh.negotiatetimeout = Some(n)), Honoured),
    row("checkinterval", Both, |c, v| seconds(v).map(|n| c.sh.checkinterval = Some(n)), Honoured),
    row(
        "checkcount",
        Both,
        |c, v| count(v).map(|n| c.sh.checkcount = Some(n)),
        Deprecated("deprecated in favour of failurecount; haven uses it as failurecount when that is not set"),
    ),
    row("failurecount", Both, |c, v| count(v).map(|n| c.sh.failurecount = Some(n)), Honoured),
    row("fallback", Both, |c, v| fallback(c, v, false), Honoured),
    row("fallback6", Both, |c, v| fallback(c, v, true), Honoured),
    row(
        "fallbackcommand",
        Both,
        |c, v| nonempty(v, "fallback command").map(|s| c.sh.fallbackcommand = Some(s)),
        Honoured,
    ),
    row("quiescent", Both, |c, v| yes_no(v, "quiescent").map(|b| c.sh.quiescent = Some(b)), Honoured),
    row(
        "emailalert",
        Both,
        |_, v| nonempty(v, "e-mail address").map(drop),
        Ignored("haven sends no e-mail: use callback or Pacemaker alerts"),
    ),
    row("emailalertfreq", Both, |_, v| digits(v, "e-mail alert frequency").map(drop), Ignored("haven sends no e-mail")),
    row("emailalertstatus", Both, |_, v| alert_status(v), Ignored("haven sends no e-mail")),
    row(
        "cleanstop",
        Both,
        |_, v| yes_no(v, "cleanstop").map(drop),
        Ignored("haven always removes the table it made when it stops"),
    ),
    row("smtp", Both, |_, v| smtp_host(v), Ignored("haven sends no e-mail")),
    // Global section only.
    row("autoreload", Global, |c, v| yes_no(v, "autoreload").map(|b| c.cfg.autoreload = b), Honoured),
    row("callback", Global, |c, v| nonempty(v, "callback").map(|s| c.cfg.callback = Some(s)), Honoured),
    row("commanduser", Global, command_user, Extension),
    row("logfile", Global, logfile, Honoured),
    row(
        "execute",
        Global,
        |_, v| nonempty(v, "execute").map(drop),
        Ignored("one haven director runs per configuration file: give each file its own resource"),
    ),
    row("fork", Global, |_, v| yes_no(v, "fork").map(drop), Ignored("haven always checks real servers concurrently")),
    row(
        "supervised",
        Global,
        |_, v| yes_no(v, "supervised").map(drop),
        Ignored("haven's daemon always runs in the foreground under its agent"),
    ),
    row(
        "readdquiescent",
        Global,
        |_, v| yes_no(v, "readdquiescent").map(drop),
        Ignored("haven rebuilds its whole table at start"),
    ),
    row(
        "emailalertfrom",
        Global,
        |_, v| nonempty(v, "e-mail from address").map(drop),
        Ignored("haven sends no e-mail"),
    ),
    row(
        "maintenancedir",
        Global,
        |c, v| nonempty(v, "maintenance directory").map(|s| c.cfg.maintenancedir = Some(s.into())),
        Honoured,
    ),
    row("backend", Global, backend, Extension),
    // Virtual blocks only.
    row("real", Virt, |c, v| real(c, v, false), Honoured),
    row("real6", Virt, |c, v| real(c, v, true), Honoured),
    row(
        "request",
        Virt,
        |c, v| {
            virt(c)?.request = nonempty(v, "request string")?;
            Ok(())
        },
        Honoured,
    ),
    row("receive", Virt, receive, Honoured),
    row("checktype", Both, |c, v| checktype(v).map(|t| c.sh.checktype = Some(t)), Honoured),
    row(
        "checkcommand",
        Virt,
        |c, v| {
            virt(c)?.checkcommand = Some(nonempty(v, "check command")?);
            Ok(())
        },
        Honoured,
    ),
    row("checkport", Virt, checkport, Honoured),
    row(
        "login",
        Virt,
        |c, v| {
            virt(c)?.login = Some(nonempty(v, "login string")?);
            Ok(())
        },
        Honoured,
    ),
    row(
        "passwd",
        Virt,
        |c, v| {
            virt(c)?.passwd = Some(nonempty(v, "password")?);
            Ok(())
        },
        Honoured,
    ),
    row(
        "database",
        Virt,
        |c, v| {
            virt(c)?.database = Some(nonempty(v, "database")?);
            Ok(())
        },
        Honoured,
    ),
    row(
        "secret",
        Virt,
        |c, v| {
            virt(c)?.secret = Some(nonempty(v, "secret")?);
            Ok(())
        },
        Honoured,
    ),
    row(
        "load",
        Virt,
        |_, v| word(v, "string for load testing").map(drop),
        Ignored("ldirectord stores it and never uses it"),
    ),
    row("scheduler", Virt, scheduler, Honoured),
    row(
        "persistent",
        Virt,
        |c, v| {
            virt(c)?.persistent = Some(Duration::from_secs(digits(v, "persistent timeout")?));
            Ok(())
        },
        Honoured,
    ),
    row(
        "schedflags",
        Virt,
        |c, v| {
            virt(c)?.schedflags = Some(word(v, "sched-flags")?);
            Ok(())
        },
        Ignored("IPVS scheduler flags: the nftables backend has none"),
    ),
    row("netmask", Virt, netmask, Honoured),
    row("protocol", Virt, protocol, Honoured),
    row(
        "ops",
        Virt,
        |c, v| {
            virt(c)?.ops = yes_no(v, "ops")?;
            Ok(())
        },
        Ignored("one-packet scheduling is an IPVS mode; nftables schedules per flow"),
    ),
    row("service", Virt, service, Honoured),
    row("httpmethod", Virt, httpmethod, Honoured),
    row(
        "virtualhost",
        Virt,
        |c, v| {
            virt(c)?.virtualhost = Some(config::unquote(v).to_string());
            Ok(())
        },
        Honoured,
    ),
    row(
        "monitorfile",
        Virt,
        |_, v| nonempty(v, "monitorfile").map(drop),
        Ignored("haven writes its state to `haven director status`"),
    ),
    row("servicename", Virt, |_, _| Ok(()), Descriptive),
    row("comment", Virt, |_, _| Ok(()), Descriptive),
    row(
        "verifycert",
        Virt,
        |c, v| {
            virt(c)?.verify_tls = yes_no(v, "verifycert")?;
            Ok(())
        },
        Extension,
    ),
];

/// The row of `name`, wherever it is allowed.
pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Every service ldirectord knows, with its default port (ld_service_to_port).
pub const SERVICES: &[(&str, u16)] = &[
    ("ftp", 21),
    ("smtp", 25),
    ("dns", 53),
    ("http", 80),
    ("pop", 110),
    ("nntp", 119),
    ("imap", 143),
    ("ldap", 389),
    ("https", 443),
    ("submission", 587),
    ("ldaps", 636),
    ("imaps", 993),
    ("pops", 995),
    ("oracle", 1521),
    ("radius", 1812),
    ("http_proxy", 3128),
    ("mysql", 3306),
    ("sip", 5060),
    ("pgsql", 5432),
    ("simpletcp", 0),
    ("none", 0),
];

/// ldirectord's service for a port it knows (ld_port_to_service).
pub fn service_for_port(port: u16) -> &'static str {
    SERVICES.iter().find(|(_, p)| *p == port && port != 0).map_or("none", |(s, _)| s)
}

fn virt<'b>(c: &'b mut Ctx<'_>) -> Result<&'b mut Virtual, String> {
    c.v.as_deref_mut().ok_or_else(|| "only allowed inside a virtual block".to_string())
}

/// ldirectord takes the first run of digits of a value (`/(\d+)/`).
fn first_digits(v: &str) -> Option<u64> {
    let start = v.find(|c: char| c.is_ascii_digit())?;
    let run: String = v[start..].chars().take_while(char::is_ascii_digit).collect();
    run.parse().ok()
}

fn digits(v: &str, what: &str) -> Result<u64, String> {
    first_digits(v).ok_or_else(|| format!("invalid {what} {v:?}: a number is required"))
}

/// A positive number of seconds (ldirectord refuses 0).
fn seconds(v: &str) -> Result<u64, String> {
    match first_digits(v) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(format!("{v:?} is not a positive number of seconds")),
    }
}

fn count(v: &str) -> Result<u32, String> {
    match first_digits(v).and_then(|n| u32::try_from(n).ok()) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(format!("{v:?} is not a positive count")),
    }
}

fn nonempty(v: &str, what: &str) -> Result<String, String> {
    let s = config::unquote(v);
    if s.is_empty() {
        Err(format!("no {what} specified"))
    } else {
        Ok(s.to_string())
    }
}

/// A word (`/(\w+)/` or `/(\S+)/` in ldirectord).
fn word(v: &str, what: &str) -> Result<String, String> {
    let s = config::unquote(v);
    let w: String = s.chars().take_while(|c| !c.is_whitespace()).collect();
    if w.is_empty() {
        Err(format!("invalid {what}"))
    } else {
        Ok(w)
    }
}

fn yes_no(v: &str, key: &str) -> Result<bool, String> {
    match config::unquote(v).to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("{key} must be 'yes' or 'no', not {v:?}")),
    }
}

fn alert_status(v: &str) -> Result<(), String> {
    for s in v.split(',').map(str::trim) {
        if !matches!(s, "all" | "none" | "starting" | "running" | "stopping" | "reloading") {
            return Err(format!(
                "emailalertstatus {s:?}: use all, none, or a list of starting, running, stopping, reloading"
            ));
        }
    }
    Ok(())
}

fn smtp_host(v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.split(':')
            .next()
            .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c)));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid SMTP server address {v:?}"))
    }
}

fn fallback(c: &mut Ctx<'_>, v: &str, v6: bool) -> Result<(), String> {
    if let Some(virt) = c.v.as_deref() {
        if virt.addr.is_ipv6() != v6 {
            let want = if v6 { "fallback" } else { "fallback6" };
            return Err(format!("use {want} in this virtual block"));
        }
    }
    let port = c.v.as_deref().map_or(0, |x| x.addr.port());
    c.sh.fallback = Some(config::parse_real(v, port, c.line)?);
    Ok(())
}

fn real(c: &mut Ctx<'_>, v: &str, v6: bool) -> Result<(), String> {
    let line = c.line;
    let virt = virt(c)?;
    let fwmark = matches!(virt.protocol, Protocol::Fwmark(_));
    if v6 && !virt.addr.is_ipv6() {
        return Err("use real in this virtual block (real6 belongs in virtual6)".into());
    }
    let r = config::parse_real(v, virt.addr.port(), line)?;
    // haven also takes `real = [ipv6]:port` in a virtual6 block.
    if !fwmark && r.addr.is_ipv6() != virt.addr.is_ipv6() {
        return Err(format!("{} is not of the virtual service's address family", r.addr.ip()));
    }
    virt.reals.push(r);
    Ok(())
}

/// A path: the daemon appends its log there too. A syslog facility
/// (local0...): haven logs to stderr, which Pacemaker sends to syslog.
fn logfile(c: &mut Ctx<'_>, v: &str) -> Result<(), String> {
    let s = nonempty(v, "logfile")?;
    if s.starts_with('/') {
        c.cfg.logfile = Some(s);
    } else {
        c.cfg.warnings.push(format!(
            "line {}: logfile {s:?} is a syslog facility: haven logs to stderr, which Pacemaker passes to syslog",
            c.line
        ));
    }
    Ok(())
}

fn receive(c: &mut Ctx<'_>, v: &str) -> Result<(), String> {
    let r = nonempty(v, "receive string")?;
    regex::Regex::new(&r).map_err(|e| format!("receive is not a valid regular expression: {e}"))?;
    virt(c)?.receive = r;
    Ok(())
}

fn checktype(v: &str) -> Result<CheckType, String> {
    Ok(match config::unquote(v).to_ascii_lowercase().as_str() {
        "connect" => CheckType::Connect,
        "negotiate" => CheckType::Negotiate,
        "ping" => CheckType::Ping,
        "external" => CheckType::External,
        "external-perl" => CheckType::External,
        "on" => CheckType::On,
        "off" => CheckType::Off,
        n => match n.parse::<u32>() {
            Ok(k) => CheckType::Every(k.max(1)),
            _ => {
                return Err(format!(
                    "checktype {v:?}: use connect, negotiate, on, off, ping, external, external-perl or a number"
                ))
            }
        },
    })
}

fn checkport(c: &mut Ctx<'_>, v: &str) -> Result<(), String> {
    match first_digits(v) {
        Some(p @ 1..=65535) => {
            virt(c)?.checkport = Some(p as u16);
            Ok(())
        }
        Some(_) => Err("checkport must be in range 1..65535".into()),
        None => Err(format!("invalid port {v:?}")),
    }
}

/// ldirectord accepts any lowercase word (ipvsadm would refuse unknown ones).
fn scheduler(c: &mut Ctx<'_>, v: &str) -> Result<(), String> {
    let w: String = v.chars().take_while(char::is_ascii_lowercase).collect();
    if w.is_empty() {
        return Err("invalid scheduler, should be only lowercase letters (a-z)".into());
    }
    const KNOWN: &[&str] =
        &["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"];
    if !KNOWN.contains(&w.as_str()) {
        return Err(format!("unknown scheduler {w:?} (the kernel has {})", KNOWN.join(", ")));
    }
    virt(c)?.scheduler = w;
    Ok(())
}

fn netmask(c: &mut Ctx<'_>, v: &str) -> Result<(), String> {
    let virt = virt(c)?;
    if virt.addr.is_ipv6() {
        match v.parse::<u8>() {
            Ok(1..=128) => {}
            _ => return Err("invalid netmask: a prefix length between 1 and 128 is required".into()),
        }
    } else if v.parse::<std::net::Ipv4Addr>().is_err() {
        return Err("invalid netmask: dotted quad notation is required".into());
    }
    virt.netmask = Some(v.to_string());
    Ok(())
}

fn protocol(c: &mut Ctx<'_>, v: &str) -> Result<(), String> {
    let virt = virt(c)?;
    virt.protocol = match (v, virt.protocol) {
        ("fwm", Protocol::Fwmark(m)) => Protocol::Fwmark(m),
        (_, Protocol::Fwmark(_)) => {
            return Err("protocol must be fwm if the virtual service is a fwmark (a number)".into())
        }
        ("tcp", _) => Protocol::Tcp,
        ("udp", _) => Protocol::Udp,
        _ => return Err("protocol must be tcp or udp if the virtual service is an address and port".into()),
    };
    Ok(())
}

fn service(c: &mut Ctx<'_>, v: &str) -> Result<(), String> {
    let s = v.to_ascii_lowercase();
    if !SERVICES.iter().any(|(n, _)| *n == s) {
        let names: Vec<&str> = SERVICES.iter().map(|(n, _)| *n).collect();
        return Err(format!("unknown service {v:?}: service must be one of {}", names.join(", ")));
    }
    virt(c)?.service = s;
    Ok(())
}

fn httpmethod(c: &mut Ctx<'_>, v: &str) -> Result<(), String> {
    let m = v.to_ascii_uppercase();
    if m != "GET" && m != "HEAD" {
        return Err("httpmethod must be GET or HEAD".into());
    }
    virt(c)?.httpmethod = m;
    Ok(())
}

fn backend(c: &mut Ctx<'_>, v: &str) -> Result<(), String> {
    use super::config::BackendChoice;
    c.cfg.backend = match v {
        "auto" => BackendChoice::Auto,
        "nftables" | "nft" => BackendChoice::Nftables,
        "ipvs" => BackendChoice::Ipvs,
        _ => return Err("backend must be auto, nftables or ipvs".into()),
    };
    Ok(())
}

/// `commanduser = name`: who runs external checks, callback and
/// fallbackcommand (default nobody).
fn command_user(c: &mut Ctx<'_>, v: &str) -> Result<(), String> {
    let name = nonempty(v, "commanduser")?;
    let ok = name.len() <= 32 && name.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'));
    if !ok {
        return Err(format!("commanduser {name:?} is not a user name"));
    }
    c.cfg.commanduser = name;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::config::parse;
    use super::*;

    /// ldirectord's read_config (resource-agents 4.12): the keys of its
    /// global section and of its virtual blocks, as two separate lists.
    const LDIRECTORD_GLOBAL: &[&str] = &[
        "checktimeout",
        "connecttimeout",
        "negotiatetimeout",
        "checkinterval",
        "checkcount",
        "failurecount",
        "fallback",
        "fallback6",
        "fallbackcommand",
        "autoreload",
        "callback",
        "logfile",
        "execute",
        "fork",
        "supervised",
        "quiescent",
        "readdquiescent",
        "emailalert",
        "emailalertfreq",
        "emailalertstatus",
        "emailalertfrom",
        "cleanstop",
        "smtp",
        "maintenancedir",
    ];
    const LDIRECTORD_VIRTUAL: &[&str] = &[
        "real",
        "real6",
        "request",
        "receive",
        "checktype",
        "checkcommand",
        "checktimeout",
        "connecttimeout",
        "negotiatetimeout",
        "checkcount",
        "failurecount",
        "checkinterval",
        "checkport",
        "login",
        "passwd",
        "database",
        "secret",
        "load",
        "scheduler",
        "persistent",
        "schedflags",
        "netmask",
        "protocol",
        "ops",
        "service",
        "httpmethod",
        "virtualhost",
        "fallback",
        "fallback6",
        "fallbackcommand",
        "quiescent",
        "emailalert",
        "emailalertfreq",
        "emailalertstatus",
        "monitorfile",
        "cleanstop",
        "smtp",
        "servicename",
        "comment",
    ];

    /// A value ldirectord accepts for each key.
    fn sample(key: &str) -> &'static str {
        match key {
            "fallback" | "real" => "203.0.113.9:80 gate",
            "fallback6" | "real6" => "[2001:db8::9]:80 gate",
            "fallbackcommand" | "checkcommand" | "callback" => "\"/bin/true\"",
            "autoreload" | "fork" | "supervised" | "quiescent" | "readdquiescent" | "cleanstop" | "ops"
            | "verifycert" => "no",
            "logfile" => "\"local0\"",
            "execute" => "other.cf",
            "emailalert" => "\"root@example.org\"",
            "emailalertstatus" => "starting, stopping",
            "emailalertfrom" => "ldirectord@example.org",
            "smtp" => "mail.example.org",
            "maintenancedir" => "/run/haven-maint",
            "backend" => "nftables",
            "commanduser" => "nobody",
            "request" | "receive" | "login" | "passwd" | "database" | "secret" | "load" => "\"ok\"",
            "checktype" => "negotiate",
            "scheduler" => "wlc",
            "schedflags" => "sh-port",
            "netmask" => "255.255.255.255",
            "protocol" => "tcp",
            "service" => "http",
            "httpmethod" => "HEAD",
            "virtualhost" => "www.example.org",
            "monitorfile" => "/tmp/monitor",
            "servicename" | "comment" => "Web service",
            _ => "7",
        }
    }

    #[test]
    fn every_ldirectord_key_is_a_row_where_ldirectord_allows_it() {
        for k in LDIRECTORD_GLOBAL {
            assert!(find(k).is_some_and(|r| r.allowed(false)), "global {k}");
        }
        for k in LDIRECTORD_VIRTUAL {
            assert!(find(k).is_some_and(|r| r.allowed(true)), "virtual {k}");
        }
        for row in KEYS {
            let listed = LDIRECTORD_GLOBAL.contains(&row.name) || LDIRECTORD_VIRTUAL.contains(&row.name);
            assert_eq!(listed, row.effect != Effect::Extension, "{}", row.name);
        }
    }

    #[test]
    fn every_row_parses_where_allowed_and_fails_elsewhere() {
        for row in KEYS {
            let (v6, key) = (row.name.ends_with('6'), row.name);
            let head = if v6 { "virtual6 = [2001:db8::10]:80\n" } else { "virtual = 198.51.100.10:80\n" };
            let inside = format!(
                "{head}\treal{} = {}\n\t{key} = {}\n",
                if v6 { "6" } else { "" },
                sample(if v6 { "real6" } else { "real" }),
                sample(key)
            );
            let global = format!("{key} = {}\n{head}", sample(key));
            for (text, allowed) in [(inside, row.allowed(true)), (global, row.allowed(false))] {
                match parse(&text, "t.cf") {
                    Ok(c) => {
                        assert!(allowed, "{key} accepted where ldirectord refuses it:\n{text}");
                        let warned = c.warnings.iter().filter(|w| w.contains(&format!(" {key} is "))).count();
                        let expect = usize::from(matches!(row.effect, Effect::Ignored(_) | Effect::Deprecated(_)));
                        assert_eq!(warned, expect, "{key}: {:?}", c.warnings);
                    }
                    Err(e) => {
                        assert!(!allowed, "{key} refused: {e}\n{text}");
                        assert!(e.line >= 1, "{e}");
                    }
                }
            }
        }
    }

    #[test]
    fn one_warning_per_key_and_misspelt_keys_fail_with_their_line() {
        let c = parse(
            "fork = no\nvirtual = 198.51.100.10:80\n\treal = 203.0.113.1\n\tops = no\n\
             virtual = 198.51.100.11:80\n\treal = 203.0.113.1\n\tops = no\n",
            "t.cf",
        )
        .unwrap();
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        let e = parse("virtual = 198.51.100.10:80\n\treal = 203.0.113.1\n\tchecktimeuot = 5\n", "t.cf").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.to_string().contains("checktimeuot"), "{e}");
        assert_eq!(parse("checkintervall = 5\n", "t.cf").unwrap_err().line, 1);
        assert!(parse("timeout = 5\n", "t.cf").unwrap_err().message.contains("checktimeout"));
        assert_eq!(parse("fork = maybe\n", "t.cf").unwrap_err().line, 1, "values are checked too");
        assert_eq!(parse("checktimeout = 0\n", "t.cf").unwrap_err().line, 1);
    }

    #[test]
    fn every_service_parses_and_ports_imply_services() {
        use crate::probe::Probe;
        let full = "\trequest = \"example.org\"\n\treceive = \"203\"\n\tlogin = \"u\"\n\tpasswd = \"p\"\n\
                    \tsecret = \"s\"\n\tdatabase = \"d\"\n";
        for (name, port) in SERVICES {
            let text = format!("virtual = 198.51.100.10:80\n\treal = 203.0.113.1\n\tservice = {name}\n{full}");
            if *name == "oracle" {
                let e = parse(&text, "t.cf").unwrap_err();
                assert!(e.message.contains("proprietary"), "{e}");
                let connect = format!("{text}\tchecktype = connect\n");
                assert!(parse(&connect, "t.cf").is_ok(), "oracle with a connect check");
                continue;
            }
            let c = parse(&text, "t.cf").unwrap_or_else(|e| panic!("{name}: {e}"));
            let v = &c.virtuals[0];
            assert_eq!(v.service, *name);
            let probe = v.probe_for(&v.reals[0], 0);
            // negotiate never quietly becomes a connect check.
            assert_eq!(matches!(probe, Some(Probe::Connect)), *name == "none", "{name}: {probe:?}");
            if *name == "none" {
                assert!(c.warnings.iter().any(|w| w.contains("service none")), "{:?}", c.warnings);
            }
            if *port != 0 {
                assert_eq!(service_for_port(*port), *name);
            }
        }
        for (service, missing) in [("mysql", "login"), ("pgsql", "request"), ("radius", "secret"), ("dns", "receive")] {
            let text = format!("virtual = 198.51.100.10:80\n\treal = 203.0.113.1\n\tservice = {service}\n{full}")
                .lines()
                .filter(|l| !l.contains(missing))
                .map(|l| format!("{l}\n"))
                .collect::<String>();
            let e = parse(&text, "t.cf").unwrap_err();
            assert!(e.message.contains(missing), "{service} without {missing}: {e}");
        }
        assert!(parse("virtual = 198.51.100.10:80\n\treal = 203.0.113.1\n\tservice = htp\n", "t.cf").is_err());
        let dns = parse("virtual = 198.51.100.10:53\n\treal = 203.0.113.1\n\tchecktype = connect\n", "t.cf").unwrap();
        assert_eq!(dns.virtuals[0].protocol, Protocol::Udp, "ldirectord: port 53 is UDP");
        assert_eq!(dns.virtuals[0].service, "dns");
    }
}
