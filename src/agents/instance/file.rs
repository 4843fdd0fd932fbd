//! The instance file (TOML): the services of an instance in start order,
//! with argv, working directory, environment, user, role, probe, stop
//! signal and timeouts, plus files rendered into the run directory. Every
//! mistake is reported with the file and line; `{{...}}` placeholders are
//! expanded here, as plain text (never by a shell).

use super::config::Vars;
use super::error::InstanceError;
use crate::mount::holders::signal_number;
use crate::ocf::params::{parse_duration, TimeUnit};
use crate::privdrop::Caps;
use crate::probe::{Expect, Greeting, Probe};
use crate::safe_file;
use crate::trust::{self, Trust};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// When a service runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Whenever the instance runs.
    Any,
    /// Only while the instance is promoted (master of a promotable clone).
    Promoted,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Any => "any",
            Role::Promoted => "promoted",
        }
    }
}

/// A service's health check: a shared probe against the instance's ip.
#[derive(Clone, Debug)]
pub struct Check {
    pub probe: Probe,
    pub target: SocketAddr,
    pub timeout: Duration,
    /// "http 198.51.100.80:80/" for messages.
    pub describe: String,
}

impl Check {
    pub fn run(&self, timeout: Duration) -> Result<(), crate::probe::ProbeError> {
        self.probe.run(self.target, self.timeout.min(timeout).max(Duration::from_millis(50)))
    }
}

#[derive(Clone, Debug)]
pub struct Service {
    pub name: String,
    pub argv: Vec<String>,
    pub dir: String,
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
    pub role: Role,
    pub optional: bool,
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    pub start_timeout: Option<Duration>,
    pub probe: Option<Check>,
    /// The capabilities it keeps (none unless the file names them).
    pub caps: Caps,
    /// cgroup limits of its own cgroup.
    pub limits: Limits,
    pub line: usize,
}

/// cgroup v2 limits a service asks for; None leaves the kernel's default
/// ("max", weight 100).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// memory.max in bytes.
    pub memory_max: Option<u64>,
    /// pids.max.
    pub pids_max: Option<u64>,
    /// cpu.weight, 1 to 10000.
    pub cpu_weight: Option<u64>,
}

impl Limits {
    /// (controller, file, value) for each limit set.
    pub fn files(&self) -> Vec<(&'static str, &'static str, String)> {
        let mut v = Vec::new();
        if let Some(m) = self.memory_max {
            v.push(("memory", "memory.max", m.to_string()));
        }
        if let Some(p) = self.pids_max {
            v.push(("pids", "pids.max", p.to_string()));
        }
        if let Some(w) = self.cpu_weight {
            v.push(("cpu", "cpu.weight", w.to_string()));
        }
        v
    }
}

/// A file the agent writes into the run directory before starting services
/// (a daemon configuration with the instance's address in it).
#[derive(Clone, Debug)]
pub struct Rendered {
    /// Relative to the run directory.
    pub path: String,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct InstanceFile {
    pub path: String,
    /// Who besides root can change the file (crate::trust); Root when the
    /// text did not come from a checked file.
    pub trust: Trust,
    pub services: Vec<Service>,
    pub files: Vec<Rendered>,
}

pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    service: Vec<Spanned<RawService>>,
    #[serde(default)]
    file: Vec<Spanned<RawTemplate>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: Spanned<String>,
    argv: Spanned<Vec<Spanned<String>>>,
    dir: Option<Spanned<String>>,
    #[serde(default)]
    env: BTreeMap<String, Spanned<String>>,
    user: Option<Spanned<String>>,
    role: Option<Spanned<String>>,
    #[serde(default)]
    optional: bool,
    stop_signal: Option<Spanned<toml::Value>>,
    stop_timeout: Option<Spanned<toml::Value>>,
    start_timeout: Option<Spanned<toml::Value>>,
    probe: Option<Spanned<RawProbe>>,
    capabilities: Option<Spanned<Vec<Spanned<String>>>>,
    memory_max: Option<Spanned<toml::Value>>,
    pids_max: Option<Spanned<i64>>,
    cpu_weight: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    port: Option<Spanned<i64>>,
    path: Option<Spanned<String>>,
    method: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    expect: Option<Spanned<String>>,
    expect_regex: Option<Spanned<String>>,
    send: Option<Spanned<String>>,
    argv: Option<Spanned<Vec<Spanned<String>>>>,
    verify: Option<Spanned<bool>>,
    timeout: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    path: Spanned<String>,
    text: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
}

/// The largest instance file or template read (a planted huge file is
/// refused, not read).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Read and parse the instance file at `path`, after checking who can
/// change it (crate::trust): root only, or one unprivileged user whose
/// file may then run only as that user (checked by the agent).
pub fn load(path: &Path, vars: &Vars) -> Result<InstanceFile, InstanceError> {
    let file = path.display().to_string();
    // Missing is "not installed here", not a trust problem.
    let real = std::fs::canonicalize(path).map_err(|source| InstanceError::ReadFile { file: file.clone(), source })?;
    let trust = trust::check(path)?;
    let bytes = safe_file::read_regular(&real, MAX_FILE_BYTES)?;
    let text = String::from_utf8(bytes).map_err(|_| InstanceError::File {
        file: file.clone(),
        line: 1,
        message: "not UTF-8 text".into(),
    })?;
    parse_trusted(&file, &text, vars, trust, true)
}

/// Parse instance file text; `file` names it in messages and locates
/// `source =` templates.
#[cfg(test)]
pub fn parse(file: &str, text: &str, vars: &Vars) -> Result<InstanceFile, InstanceError> {
    parse_trusted(file, text, vars, Trust::Root, false)
}

/// [`parse`] for text whose file was checked: `source =` templates must be
/// trusted as much as the file (root's, or the same user's).
fn parse_trusted(
    file: &str,
    text: &str,
    vars: &Vars,
    trust: Trust,
    check_sources: bool,
) -> Result<InstanceFile, InstanceError> {
    let p = Parser { file, text, starts: line_starts(text), vars, trust, check_sources };
    let raw: RawFile = toml::from_str(text).map_err(|e| InstanceError::File {
        file: file.to_string(),
        line: e.span().map_or(1, |s| p.line(s.start)),
        message: e.message().trim().to_string(),
    })?;
    if raw.service.is_empty() {
        return Err(p.err(0, "no [[service]]: an instance needs at least one service".into()));
    }
    let mut services: Vec<Service> = Vec::new();
    for s in raw.service {
        let line = p.line(s.span().start);
        let svc = p.service(s.into_inner(), line)?;
        if services.iter().any(|o| o.name == svc.name) {
            return Err(p.err_line(svc.line, format!("service {} is listed twice", svc.name)));
        }
        services.push(svc);
    }
    let mut files: Vec<Rendered> = Vec::new();
    for f in raw.file {
        let r = p.template(f.into_inner())?;
        if files.iter().any(|o| o.path == r.path) {
            return Err(p.err(0, format!("file {} is listed twice", r.path)));
        }
        files.push(r);
    }
    Ok(InstanceFile { path: file.to_string(), trust, services, files })
}

/// "512M", "2G", "1048576" (bytes; K, M, G, T are powers of 1024).
fn parse_size(t: &str) -> Option<u64> {
    let t = t.trim();
    let (num, mult) = match t.char_indices().last()? {
        (i, 'K' | 'k') => (&t[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&t[..i], 1 << 20),
        (i, 'G' | 'g') => (&t[..i], 1 << 30),
        (i, 'T' | 't') => (&t[..i], 1 << 40),
        _ => (t, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    starts
}

struct Parser<'a> {
    file: &'a str,
    text: &'a str,
    starts: Vec<usize>,
    vars: &'a Vars,
    trust: Trust,
    check_sources: bool,
}

impl Parser<'_> {
    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|s| *s <= offset).max(1)
    }

    fn err(&self, offset: usize, message: String) -> InstanceError {
        self.err_line(self.line(offset), message)
    }

    fn err_line(&self, line: usize, message: String) -> InstanceError {
        InstanceError::File { file: self.file.to_string(), line, message }
    }

    /// Expand placeholders in a spanned string; an error points at the line
    /// of the placeholder inside multi-line strings.
    fn expand(&self, s: &Spanned<String>) -> Result<String, InstanceError> {
        self.vars.expand(s.get_ref()).map_err(|(at, why)| {
            let value = s.get_ref();
            let inner = value[..at.min(value.len())].matches('\n').count();
            // A multi-line string's first newline (right after the quotes)
            // is not part of the value.
            let src = self.text.get(s.span().start..).unwrap_or_default();
            let skipped = usize::from(src.starts_with("\"\"\"\n") || src.starts_with("'''\n"));
            self.err_line(self.line(s.span().start) + inner + skipped, why)
        })
    }

    fn service(&self, s: RawService, line: usize) -> Result<Service, InstanceError> {
        let name = s.name.get_ref().trim().to_string();
        if !super::spec::is_name(&name) {
            return Err(self.err(
                s.name.span().start,
                format!("service name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-'"),
            ));
        }
        let what = |m: &str| format!("service {name}: {m}");
        let argv = self.argv(&s.argv, &what)?;
        let dir = match &s.dir {
            Some(d) => {
                let v = self.expand(d)?;
                if !v.starts_with('/') {
                    return Err(self.err(d.span().start, what("dir must be an absolute path")));
                }
                v
            }
            None => self.vars.datadir.clone(),
        };
        let env = self.env(&s.env, &what)?;
        let user = match &s.user {
            Some(u) => Some(self.user(u, &what)?),
            None => None,
        };
        let role = match &s.role {
            None => Role::Any,
            Some(r) => match r.get_ref().as_str() {
                "any" => Role::Any,
                "promoted" => Role::Promoted,
                other => {
                    return Err(self
                        .err(r.span().start, what(&format!("role {other:?}: use \"any\" (default) or \"promoted\""))))
                }
            },
        };
        let stop_signal = self.stop_signal(&s.stop_signal, &what)?;
        let stop_timeout = self.duration(&s.stop_timeout, &what("stop_timeout"))?.unwrap_or(DEFAULT_STOP_TIMEOUT);
        let start_timeout = self.duration(&s.start_timeout, &what("start_timeout"))?;
        let probe = match &s.probe {
            Some(p) => Some(self.probe(p, &name, user.as_deref())?),
            None => None,
        };
        let caps = self.caps(&s.capabilities, &what)?;
        let limits = self.limits(&s, &what)?;
        Ok(Service {
            name,
            argv,
            dir,
            env,
            user,
            role,
            optional: s.optional,
            stop_signal,
            stop_timeout,
            start_timeout,
            probe,
            caps,
            limits,
            line,
        })
    }

    fn argv(
        &self,
        raw: &Spanned<Vec<Spanned<String>>>,
        what: &dyn Fn(&str) -> String,
    ) -> Result<Vec<String>, InstanceError> {
        if raw.get_ref().is_empty() || raw.get_ref()[0].get_ref().trim().is_empty() {
            return Err(self.err(raw.span().start, what("argv is empty: it needs at least the program")));
        }
        let mut argv = Vec::with_capacity(raw.get_ref().len());
        for a in raw.get_ref() {
            let v = self.expand(a)?;
            if v.contains('\0') {
                return Err(self.err(a.span().start, what("argv may not contain NUL")));
            }
            argv.push(v);
        }
        Ok(argv)
    }

    fn env(
        &self,
        raw: &BTreeMap<String, Spanned<String>>,
        what: &dyn Fn(&str) -> String,
    ) -> Result<Vec<(String, String)>, InstanceError> {
        let mut env = Vec::new();
        for (k, v) in raw {
            let ok = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(self.err(v.span().start, what(&format!("{k:?} is not an environment variable name"))));
            }
            if k.starts_with("HAVEN_") {
                return Err(self.err(v.span().start, what(&format!("{k} is set by the agent (HAVEN_* are reserved)"))));
            }
            let value = self.expand(v)?;
            if value.contains('\0') {
                return Err(self.err(v.span().start, what(&format!("{k} may not contain NUL"))));
            }
            env.push((k.clone(), value));
        }
        Ok(env)
    }

    fn user(&self, u: &Spanned<String>, what: &dyn Fn(&str) -> String) -> Result<String, InstanceError> {
        let t = u.get_ref().trim();
        if super::spec::is_name(t) || t.contains('$') && super::spec::is_name(&t.replace('$', "")) {
            Ok(t.to_string())
        } else {
            Err(self.err(u.span().start, what(&format!("user {t:?} is not a user name"))))
        }
    }

    fn stop_signal(
        &self,
        v: &Option<Spanned<toml::Value>>,
        what: &dyn Fn(&str) -> String,
    ) -> Result<i32, InstanceError> {
        let Some(v) = v else { return Ok(libc::SIGTERM) };
        let text = match v.get_ref() {
            toml::Value::String(t) => t.clone(),
            toml::Value::Integer(n) => n.to_string(),
            _ => String::new(),
        };
        match signal_number(&text) {
            Some(n) if n != libc::SIGKILL && n != libc::SIGSTOP => Ok(n),
            _ => Err(self.err(
                v.span().start,
                what(&format!("stop_signal {text:?}: a signal name (TERM, INT, QUIT, HUP, USR1...)")),
            )),
        }
    }

    /// `capabilities = ["net_bind_service", ...]`: what the service keeps.
    fn caps(
        &self,
        raw: &Option<Spanned<Vec<Spanned<String>>>>,
        what: &dyn Fn(&str) -> String,
    ) -> Result<Caps, InstanceError> {
        let mut caps = Caps::default();
        for c in raw.iter().flat_map(|v| v.get_ref()) {
            match Caps::number(c.get_ref()) {
                Some(n) => caps = caps.with(n),
                None => {
                    return Err(self.err(
                        c.span().start,
                        what(&format!(
                            "capability {:?} is not one (see capabilities(7), e.g. net_bind_service)",
                            c.get_ref()
                        )),
                    ))
                }
            }
        }
        Ok(caps)
    }

    /// memory_max ("512M", bytes), pids_max and cpu_weight (1 to 10000).
    fn limits(&self, s: &RawService, what: &dyn Fn(&str) -> String) -> Result<Limits, InstanceError> {
        let memory_max = match &s.memory_max {
            None => None,
            Some(v) => {
                let n = match v.get_ref() {
                    toml::Value::Integer(n) => u64::try_from(*n).ok(),
                    toml::Value::String(t) => parse_size(t),
                    _ => None,
                };
                match n {
                    Some(n) if n >= 1 << 20 => Some(n),
                    _ => {
                        return Err(self.err(
                            v.span().start,
                            what("memory_max: a size of at least 1M, such as \"512M\" or \"2G\""),
                        ))
                    }
                }
            }
        };
        let count = |v: &Option<Spanned<i64>>, key: &str, min: i64, max: i64| match v {
            None => Ok(None),
            Some(n) if (min..=max).contains(n.get_ref()) => Ok(u64::try_from(*n.get_ref()).ok()),
            Some(n) => Err(self.err(n.span().start, what(&format!("{key}: {min} to {max}")))),
        };
        Ok(Limits {
            memory_max,
            pids_max: count(&s.pids_max, "pids_max", 1, 4_194_304)?,
            cpu_weight: count(&s.cpu_weight, "cpu_weight", 1, 10_000)?,
        })
    }

    /// A duration: an integer (seconds) or text such as "500ms", "10s", "2m".
    fn duration(&self, v: &Option<Spanned<toml::Value>>, what: &str) -> Result<Option<Duration>, InstanceError> {
        let Some(v) = v else { return Ok(None) };
        let d = match v.get_ref() {
            toml::Value::Integer(n) if *n >= 0 => Some(Duration::from_secs(*n as u64)),
            toml::Value::String(t) => parse_duration(t, TimeUnit::Seconds),
            _ => None,
        };
        match d {
            Some(d) if !d.is_zero() => Ok(Some(d)),
            _ => Err(self.err(v.span().start, format!("{what}: a positive duration such as 10, \"10s\" or \"500ms\""))),
        }
    }

    fn probe(&self, sp: &Spanned<RawProbe>, service: &str, user: Option<&str>) -> Result<Check, InstanceError> {
        let p = sp.get_ref();
        let kind = p.kind.get_ref().as_str();
        let at = p.kind.span().start;
        let bad = |m: String| self.err(at, format!("service {service}: probe: {m}"));
        self.probe_fields(p, kind, service)?;
        let port = self.probe_port(p, kind, service)?;
        if p.expect.is_some() && p.expect_regex.is_some() {
            return Err(bad("give expect or expect_regex, not both".into()));
        }
        let expect = self.probe_expect(p, service)?;
        let timeout =
            self.duration(&p.timeout, &format!("service {service}: probe: timeout"))?.unwrap_or(DEFAULT_PROBE_TIMEOUT);
        let target = SocketAddr::new(self.vars.ip, port);
        let (probe, describe) = match kind {
            "connect" => (Probe::Connect, format!("connect {target}")),
            "http" | "https" => self.http_probe(p, kind, target, expect, &bad)?,
            "smtp" | "pop" | "imap" | "ftp" => {
                let g = match kind {
                    "smtp" => Greeting::Smtp,
                    "pop" => Greeting::Pop,
                    "imap" => Greeting::Imap,
                    _ => Greeting::Ftp,
                };
                (Probe::Greeting { kind: g }, format!("{kind} greeting from {target}"))
            }
            "exchange" => {
                let send = match &p.send {
                    Some(s) => self.expand(s)?,
                    None => String::new(),
                };
                (Probe::Exchange { request: send.into_bytes(), expect }, format!("exchange with {target}"))
            }
            _ => self.external_probe(p, service, user, &bad)?,
        };
        Ok(Check { probe, target, timeout, describe })
    }

    /// Refuse an unknown type, and fields the type does not take.
    fn probe_fields(&self, p: &RawProbe, kind: &str, service: &str) -> Result<(), InstanceError> {
        let allowed: &[&str] = match kind {
            "connect" => &["port", "timeout"],
            "http" => &["port", "path", "method", "host", "expect", "expect_regex", "timeout"],
            "https" => &["port", "path", "method", "host", "expect", "expect_regex", "verify", "timeout"],
            "smtp" | "pop" | "imap" | "ftp" => &["port", "timeout"],
            "exchange" => &["port", "send", "expect", "expect_regex", "timeout"],
            "external" => &["port", "argv", "timeout"],
            other => {
                return Err(self.err(
                    p.kind.span().start,
                    format!(
                        "service {service}: probe: unknown type {other:?} (connect, http, https, smtp, pop, imap, \
                         ftp, exchange, external)"
                    ),
                ))
            }
        };
        let present = [
            ("port", p.port.as_ref().map(|s| s.span().start)),
            ("path", p.path.as_ref().map(|s| s.span().start)),
            ("method", p.method.as_ref().map(|s| s.span().start)),
            ("host", p.host.as_ref().map(|s| s.span().start)),
            ("expect", p.expect.as_ref().map(|s| s.span().start)),
            ("expect_regex", p.expect_regex.as_ref().map(|s| s.span().start)),
            ("send", p.send.as_ref().map(|s| s.span().start)),
            ("argv", p.argv.as_ref().map(|s| s.span().start)),
            ("verify", p.verify.as_ref().map(|s| s.span().start)),
            ("timeout", p.timeout.as_ref().map(|s| s.span().start)),
        ];
        for (field, pos) in present {
            if let Some(pos) = pos.filter(|_| !allowed.contains(&field)) {
                return Err(
                    self.err(pos, format!("service {service}: probe: {field} does not apply to a {kind} probe"))
                );
            }
        }
        Ok(())
    }

    /// The port: given (1 to 65535) or the type's default.
    fn probe_port(&self, p: &RawProbe, kind: &str, service: &str) -> Result<u16, InstanceError> {
        let default_port = match kind {
            "http" => Some(80),
            "https" => Some(443),
            "smtp" => Some(25),
            "pop" => Some(110),
            "imap" => Some(143),
            "ftp" => Some(21),
            "external" => Some(0),
            _ => None,
        };
        match &p.port {
            Some(v) => match u16::try_from(*v.get_ref()) {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(self.err(v.span().start, format!("service {service}: probe: port must be 1 to 65535"))),
            },
            None => default_port.ok_or_else(|| {
                self.err(p.kind.span().start, format!("service {service}: probe: a {kind} probe needs a port"))
            }),
        }
    }

    fn probe_expect(&self, p: &RawProbe, service: &str) -> Result<Expect, InstanceError> {
        Ok(match (&p.expect, &p.expect_regex) {
            (Some(t), _) => Expect::Text(self.expand(t)?),
            (_, Some(r)) => match regex::Regex::new(r.get_ref()) {
                Ok(re) => Expect::Pattern(re),
                Err(e) => {
                    let first = e.to_string().lines().last().unwrap_or_default().trim().to_string();
                    return Err(self.err(r.span().start, format!("service {service}: probe: expect_regex: {first}")));
                }
            },
            _ => Expect::Any,
        })
    }

    fn http_probe(
        &self,
        p: &RawProbe,
        kind: &str,
        target: SocketAddr,
        expect: Expect,
        bad: &dyn Fn(String) -> InstanceError,
    ) -> Result<(Probe, String), InstanceError> {
        let path = match &p.path {
            Some(v) => self.expand(v)?,
            None => "/".into(),
        };
        if !path.starts_with('/') || path.contains(char::is_whitespace) {
            return Err(bad(format!("path {path:?} must start with / and have no spaces")));
        }
        let method = p.method.as_ref().map_or("GET".to_string(), |m| m.get_ref().clone());
        if !matches!(method.as_str(), "GET" | "HEAD") {
            return Err(bad(format!("method {method:?}: GET or HEAD")));
        }
        let host = match &p.host {
            Some(h) => self.expand(h)?,
            None => self.vars.hostname.clone(),
        };
        if host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(bad(format!("host {host:?} has spaces or control characters")));
        }
        let describe = format!("{kind} {target}{path} (Host: {host})");
        let host = Some(host);
        if kind == "https" {
            // Certificates are checked only when asked: an instance's
            // certificate names its host name, not the address probed.
            let verify = p.verify.as_ref().is_some_and(|v| *v.get_ref());
            Ok((Probe::Https { method, path, host, expect, verify }, describe))
        } else {
            Ok((Probe::Http { method, path, host, expect }, describe))
        }
    }

    fn external_probe(
        &self,
        p: &RawProbe,
        service: &str,
        user: Option<&str>,
        bad: &dyn Fn(String) -> InstanceError,
    ) -> Result<(Probe, String), InstanceError> {
        let Some(argv) = &p.argv else {
            return Err(bad("an external probe needs argv (the command; ip and port are appended)".into()));
        };
        if argv.get_ref().is_empty() {
            return Err(self.err(argv.span().start, format!("service {service}: probe: argv is empty")));
        }
        let mut v = Vec::new();
        for a in argv.get_ref() {
            v.push(self.expand(a)?);
        }
        let describe = format!("external {}", v.join(" "));
        // As the service's user (nobody when the file names none), never
        // as the agent's root.
        let user = user.unwrap_or(super::DEFAULT_USER).to_string();
        Ok((Probe::External { argv: v, user }, describe))
    }

    /// A `source =` template: as trusted as the instance file, bounded.
    fn read_source(&self, full: &Path) -> Result<String, String> {
        if self.check_sources {
            let t = trust::check(full).map_err(|e| e.to_string())?;
            if t != Trust::Root && t != self.trust {
                return Err(format!("it is owned by another user than the instance file ({t:?})"));
            }
        }
        let bytes = safe_file::read_regular(full, MAX_FILE_BYTES).map_err(|e| e.to_string())?;
        String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
    }

    fn template(&self, t: RawTemplate) -> Result<Rendered, InstanceError> {
        let path = t.path.get_ref().trim().to_string();
        let at = t.path.span().start;
        if path.is_empty() || path.starts_with('/') || path.split('/').any(|c| c == ".." || c == "." || c.is_empty()) {
            return Err(
                self.err(at, format!("file path {path:?}: a relative path inside the run directory, without '..'"))
            );
        }
        if matches!(path.split('/').next(), Some("state" | "registry")) || path.ends_with(".log") {
            return Err(self.err(at, format!("file path {path:?} is reserved for the agent's own files")));
        }
        let text = match (&t.text, &t.source) {
            (Some(text), None) => self.expand(text)?,
            (None, Some(src)) => {
                let base = Path::new(self.file).parent().unwrap_or(Path::new("/"));
                let full: PathBuf = base.join(src.get_ref());
                let raw = self.read_source(&full).map_err(|e| {
                    self.err(src.span().start, format!("file {path}: cannot read source {}: {e}", full.display()))
                })?;
                self.vars.expand(&raw).map_err(|(off, why)| InstanceError::File {
                    file: full.display().to_string(),
                    line: raw[..off.min(raw.len())].matches('\n').count() + 1,
                    message: why,
                })?
            }
            _ => return Err(self.err(at, format!("file {path}: give exactly one of text or source"))),
        };
        Ok(Rendered { path, text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            name: "web1".into(),
            hostname: "web1.example.org".into(),
            ip: "198.51.100.80".parse().unwrap(),
            datadir: "/srv/web1".into(),
            rundir: "/run/haven/instance/web1".into(),
        }
    }

    fn err(text: &str) -> (usize, String) {
        match parse("/srv/web1/instance.toml", text, &vars()) {
            Err(InstanceError::File { line, message, file }) => {
                assert_eq!(file, "/srv/web1/instance.toml");
                (line, message)
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("accepted:\n{text}"),
        }
    }

    const GOOD: &str = r#"
description = "a web instance"

[[file]]
path = "nginx.conf"
text = """
server { listen {{ip_literal}}:80; root {{datadir}}/htdocs; }
"""

[[service]]
name = "web"
argv = ["/usr/sbin/nginx", "-c", "{{rundir}}/nginx.conf", "-g", "daemon off;"]
probe = { type = "http", path = "/index.html", expect = "hello" }

[[service]]
name = "panel"
argv = ["/usr/bin/python3", "-m", "http.server", "--bind", "{{ip}}", "8080"]
role = "promoted"
optional = true
stop_signal = "INT"
stop_timeout = "2s"
env = { TZ = "UTC" }
probe = { type = "connect", port = 8080, timeout = "500ms" }
"#;

    #[test]
    fn parses_services_in_order() {
        let f = parse("/srv/web1/instance.toml", GOOD, &vars()).unwrap();
        assert_eq!(f.services.len(), 2);
        let web = &f.services[0];
        assert_eq!(web.name, "web");
        assert_eq!(web.argv[2], "/run/haven/instance/web1/nginx.conf");
        assert_eq!(web.argv[4], "daemon off;");
        assert_eq!(web.dir, "/srv/web1");
        assert_eq!(web.role, Role::Any);
        assert_eq!(web.stop_signal, libc::SIGTERM);
        assert_eq!(web.stop_timeout, DEFAULT_STOP_TIMEOUT);
        let check = web.probe.as_ref().unwrap();
        assert_eq!(check.target, "198.51.100.80:80".parse().unwrap());
        assert!(check.describe.contains("web1.example.org"));
        let panel = &f.services[1];
        assert_eq!((panel.role, panel.optional, panel.stop_signal), (Role::Promoted, true, libc::SIGINT));
        assert_eq!(panel.stop_timeout, Duration::from_secs(2));
        assert_eq!(panel.env, vec![("TZ".to_string(), "UTC".to_string())]);
        assert_eq!(panel.probe.as_ref().unwrap().timeout, Duration::from_millis(500));
        assert_eq!(f.files[0].text.trim(), "server { listen 198.51.100.80:80; root /srv/web1/htdocs; }");
    }

    #[test]
    fn every_probe_type_parses() {
        let svc = |probe: &str| format!("[[service]]\nname = \"a\"\nargv = [\"/bin/true\"]\nprobe = {probe}\n");
        let probe = |p: &str| parse("f", &svc(p), &vars()).map(|f| f.services[0].probe.clone().unwrap());
        let https = probe(r#"{ type = "https", path = "/login", verify = true }"#).unwrap();
        assert!(matches!(https.probe, Probe::Https { verify: true, .. }), "{https:?}");
        assert_eq!(https.target.port(), 443);
        let smtp = probe(r#"{ type = "smtp" }"#).unwrap();
        assert!(matches!(smtp.probe, Probe::Greeting { kind: Greeting::Smtp }));
        assert_eq!(smtp.target.port(), 25);
        assert_eq!(probe(r#"{ type = "imap" }"#).unwrap().target.port(), 143);
        assert_eq!(probe(r#"{ type = "pop" }"#).unwrap().target.port(), 110);
        let ext = probe(r#"{ type = "external", argv = ["/usr/lib/check", "{{hostname}}"], port = 25 }"#).unwrap();
        assert!(
            matches!(&ext.probe, Probe::External { argv, user } if argv[1] == "web1.example.org" && user == "nobody")
        );
        let ex = probe(r#"{ type = "exchange", port = 6379, send = "PING\r\n", expect_regex = "^\\+PONG" }"#).unwrap();
        assert!(matches!(&ex.probe, Probe::Exchange { request, .. } if request == b"PING\r\n"));
        assert!(probe(r#"{ type = "http", verify = true }"#).is_err(), "verify is for https only");
        assert!(probe(r#"{ type = "exchange" }"#).is_err(), "exchange needs a port");
        assert!(probe(r#"{ type = "external" }"#).is_err(), "external needs argv");
    }

    #[test]
    fn shell_metacharacters_stay_verbatim() {
        let f = parse(
            "f",
            "[[service]]\nname = \"x\"\nargv = [\"/bin/echo\", \"$(id); `id` | rm -rf / && $HOME\"]\n",
            &vars(),
        )
        .unwrap();
        assert_eq!(f.services[0].argv[1], "$(id); `id` | rm -rf / && $HOME");
    }

    #[test]
    fn mistakes_name_file_and_line() {
        let (line, m) = err("[[service]]\nname = \"a\"\nargv = [\"/bin/true\"]\nrestart = \"always\"\n");
        assert_eq!(line, 4, "{m}");
        assert!(m.contains("restart"), "{m}");
        let (line, m) = err("[[service]]\nname = \"a\"\n\n[[service]]\nname = \"b\"\n");
        assert!(m.contains("argv"), "{m}");
        assert!((1..=5).contains(&line), "{line}");
        let (line, m) = err("[[service]]\nname = \"a\"\nargv = []\n");
        assert_eq!(line, 3);
        assert!(m.contains("argv is empty"), "{m}");
        let (line, m) = err("[[service]]\nname = \"a\"\nargv = [\"/bin/true\"]\nprobe = { type = \"gopher\" }\n");
        assert_eq!(line, 4);
        assert!(m.contains("gopher"), "{m}");
        let (line, m) =
            err("[[service]]\nname = \"a\"\nargv = [\"/bin/true\"]\n\n[service.probe]\ntype = \"connect\"\n");
        assert_eq!(line, 6);
        assert!(m.contains("needs a port"), "{m}");
        let (_, m) =
            err("[[service]]\nname = \"a\"\nargv = [\"/bin/true\"]\nprobe = { type = \"connect\", port = 70000 }\n");
        assert!(m.contains("port"), "{m}");
        let (_, m) = err("[[service]]\nname = \"a\"\nargv = [\"/bin/true\"]\nprobe = { type = \"connect\", port = 1, path = \"/\" }\n");
        assert!(m.contains("path does not apply"), "{m}");
        let (_, m) = err(
            "[[service]]\nname = \"a\"\nargv = [\"/bin/true\"]\nprobe = { type = \"http\", expect_regex = \"(\" }\n",
        );
        assert!(m.contains("expect_regex"), "{m}");
        let (line, m) = err("[[service]]\nname = \"a\"\nargv = [\"/bin/true\", \"{{ipaddr}}\"]\n");
        assert_eq!(line, 3);
        assert!(m.contains("ipaddr"), "{m}");
        let (line, m) = err("[[file]]\npath = \"x.conf\"\ntext = \"\"\"\nok\n{{bad}}\n\"\"\"\n[[service]]\nname = \"a\"\nargv = [\"/bin/true\"]\n");
        assert_eq!(line, 5, "{m}");
        let (_, m) = err("[[service]]\nname = \"a\"\nargv = [\"/bin/true\"]\nstop_signal = \"KILL\"\n");
        assert!(m.contains("stop_signal"), "{m}");
        let (_, m) = err("[[service]]\nname = \"a\"\nargv = [\"/bin/true\"]\nrole = \"master\"\n");
        assert!(m.contains("role"), "{m}");
        let (_, m) = err("[[service]]\nname = \"a\"\nargv = [\"/bin/true\"]\nenv = { HAVEN_IP = \"x\" }\n");
        assert!(m.contains("reserved"), "{m}");
        let (_, m) = err(
            "[[service]]\nname = \"a\"\nargv = [\"/bin/true\"]\n[[service]]\nname = \"a\"\nargv = [\"/bin/true\"]\n",
        );
        assert!(m.contains("twice"), "{m}");
        let (_, m) = err("description = \"nothing\"\n");
        assert!(m.contains("at least one service"), "{m}");
        let (_, m) = err(
            "[[file]]\npath = \"../etc/passwd\"\ntext = \"x\"\n[[service]]\nname = \"a\"\nargv = [\"/bin/true\"]\n",
        );
        assert!(m.contains("relative"), "{m}");
        let (line, _) = err("[[service]]\nname = \"a\"\nargv = \"/bin/true\"\n");
        assert_eq!(line, 3);
    }
}
