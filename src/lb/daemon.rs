//! `haven director run`: the long-running engine. Checks real servers,
//! keeps the kernel table in line with their health, reloads the
//! configuration on SIGHUP or (autoreload) when the file changes, writes
//! its status file, and on SIGTERM removes exactly the table it made.

use super::config::{self, BackendChoice, Config};
use super::health::Checker;
use super::ipvs::Ipvs;
use super::nft::Nftables;
use super::status::{self, RealLine, ServiceLine, Status};
use super::table::Table;
use super::LbError;
use crate::exec;
use crate::ocf::Deadline;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub struct Options {
    pub config: PathBuf,
    pub table: String,
    pub backend: Option<BackendChoice>,
}

/// ldirectord's `logfile = /path`: log lines are appended there as well.
static LOGFILE: std::sync::Mutex<Option<std::fs::File>> = std::sync::Mutex::new(None);

fn set_logfile(path: Option<&str>) {
    let file = path.and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
    if let Ok(mut guard) = LOGFILE.lock() {
        *guard = file;
    }
}

fn log(msg: &str) {
    let line = format!("{} haven-director[{}]: {msg}", status::now(), std::process::id());
    eprintln!("{line}");
    if let Ok(mut guard) = LOGFILE.lock() {
        if let Some(f) = guard.as_mut() {
            use std::io::Write;
            let _ = writeln!(f, "{line}");
        }
    }
}

fn log_transition(t: &super::health::Transition) {
    let state = if t.up { "up" } else { "down" };
    log(&format!("real server {} of {}: {state} ({})", t.real, t.virtual_addr, t.why));
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Which engine to use: IPVS where the kernel has it (auto), nftables
/// where it does not or when asked.
pub fn choose_backend(choice: BackendChoice) -> Result<&'static str, LbError> {
    let has_ipvs = Path::new("/proc/net/ip_vs").exists();
    match choice {
        BackendChoice::Ipvs if !has_ipvs => Err(LbError::NoIpvs),
        BackendChoice::Ipvs => Ok("ipvs"),
        BackendChoice::Auto if has_ipvs => Ok("ipvs"),
        BackendChoice::Auto | BackendChoice::Nftables => Ok("nftables"),
    }
}

/// The kernel engine in use.
enum DataPlane {
    Nft(Nftables),
    Ipvs(Ipvs),
}

impl DataPlane {
    fn apply(&mut self, t: &Table) -> Result<(), LbError> {
        match self {
            DataPlane::Nft(n) => n.apply(t),
            DataPlane::Ipvs(i) => i.apply(t),
        }
    }
    /// Whether the kernel holds what was programmed, read back from it.
    fn verify(&mut self) -> Option<bool> {
        match self {
            DataPlane::Nft(n) => Some(n.verify().unwrap_or(false)),
            DataPlane::Ipvs(i) => Some(i.verify().unwrap_or(false)),
        }
    }
    fn clear(&mut self) -> Result<(), LbError> {
        match self {
            DataPlane::Nft(n) => n.clear(),
            DataPlane::Ipvs(i) => i.clear(),
        }
    }
}

/// Forwarding must be on for DNAT to reach real servers elsewhere.
fn forwarding_ok(cfg: &Config) -> bool {
    // Direct-routed (gate/ipip) real servers are forwarded at the ingress
    // hook, which needs no forwarding.
    let needs = |v6: bool| {
        cfg.virtuals
            .iter()
            .flat_map(|v| &v.reals)
            .any(|r| r.addr.is_ipv6() == v6 && !r.addr.ip().is_loopback() && r.method == config::Method::Masq)
    };
    let on = |p: &str| std::fs::read_to_string(p).map(|s| s.trim() == "1").unwrap_or(false);
    (!needs(false) || on("/proc/sys/net/ipv4/ip_forward"))
        && (!needs(true) || on("/proc/sys/net/ipv6/conf/all/forwarding"))
}

/// Run a command from the configuration (fallbackcommand, callback) in the
/// background, bounded, so the check loop never waits for it.
fn run_hook(cmd: &str, args: Vec<String>, user: &str) {
    let mut argv: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
    argv.extend(args);
    let user = user.to_string();
    std::thread::spawn(move || {
        let a: Vec<&str> = argv.iter().map(String::as_str).collect();
        if let Err(e) = crate::privdrop::run_command(&a, &user, &Deadline::after(Duration::from_secs(30))) {
            log(&format!("hook failed: {e}"));
        }
    });
}

struct Engine {
    opts: Options,
    cfg: Config,
    checker: Checker,
    plane: DataPlane,
    backend: &'static str,
    table: Table,
    programmed: u64,
    kernel_match: Option<bool>,
    last_verify: Instant,
    mtime: Option<SystemTime>,
    dir: PathBuf,
}

impl Engine {
    fn status(&self) -> Status {
        let mut st = Status::default();
        st.set("pid", std::process::id());
        st.set("config", self.opts.config.display());
        st.set("backend", self.backend);
        st.set("table", &self.opts.table);
        st.set("updated", status::now());
        st.set("programmed", self.programmed);
        st.set(
            "kernel_match",
            match self.kernel_match {
                Some(true) => "yes",
                Some(false) => "no",
                None => "unknown",
            },
        );
        st.set("forwarding", if forwarding_ok(&self.cfg) { "ok" } else { "off" });
        st.set("checked", if self.checker.all_checked() { "all" } else { "partial" });
        for (vi, v) in self.cfg.virtuals.iter().enumerate() {
            let svc = self.table.services.get(vi);
            st.services.push(ServiceLine {
                label: v.label(),
                scheduler: v.scheduler.clone(),
                persistent: v.persistent.is_some(),
                on_fallback: svc.is_some_and(|s| s.on_fallback),
            });
            for (ri, r) in v.reals.iter().enumerate() {
                let s = self.checker.states.get(&(vi, ri));
                let active = svc.and_then(|s| s.dests.iter().find(|d| d.addr == r.addr)).map_or(0, |d| d.weight);
                st.reals.push(RealLine {
                    vip: v.addr.to_string(),
                    real: r.addr.to_string(),
                    method: r.method.as_str().to_string(),
                    weight: r.weight,
                    active_weight: active,
                    up: s.is_some_and(|s| s.up),
                    failures: s.map_or(0, |s| s.failures),
                    last_check: s
                        .and_then(|s| s.last_check)
                        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_secs()),
                    last_error: s.and_then(|s| s.last_error.clone()).unwrap_or_default(),
                });
            }
        }
        st
    }

    fn write_status(&self) {
        if let Err(e) = self.status().write(&self.dir) {
            log(&format!("cannot write the status file in {}: {e}", self.dir.display()));
        }
    }

    /// Program the kernel when the table changed (or was never programmed).
    fn program(&mut self) -> Result<(), LbError> {
        let next = Table::compute(&self.cfg, &self.checker);
        if next == self.table && self.programmed != 0 {
            return Ok(());
        }
        for (old, new) in self.table.services.iter().zip(&next.services) {
            if old.on_fallback != new.on_fallback {
                if let Some(cmd) =
                    self.cfg.virtuals.iter().find(|v| v.addr == new.vip).and_then(|v| v.fallbackcommand.clone())
                {
                    let arg = if new.on_fallback { "start" } else { "stop" };
                    run_hook(&cmd, vec![arg.into()], &self.cfg.commanduser);
                }
                log(&format!(
                    "{}: {}",
                    new.vip,
                    if new.on_fallback {
                        "all real servers down, fallback serves"
                    } else {
                        "real servers back, fallback off"
                    }
                ));
            }
        }
        self.plane.apply(&next)?;
        self.table = next;
        self.programmed = status::now();
        // Read back: an IPVS service deleted behind the director's back is
        // not restored by a diff against what was applied, so it stays a
        // mismatch (monitor fails, Pacemaker recovers the resource).
        self.kernel_match = self.plane.verify();
        self.last_verify = Instant::now();
        Ok(())
    }

    fn reload(&mut self, why: &str) {
        // A file that now names commands but is no longer root's alone is
        // refused like a malformed one: the running table stays.
        let loaded = config::load(&self.opts.config).map_err(LbError::from).and_then(|c| {
            config::check_trust(&c, &self.opts.config)?;
            Ok(c)
        });
        match loaded {
            Ok(new) => {
                set_logfile(new.logfile.as_deref());
                for w in &new.warnings {
                    log(w);
                }
                log(&format!("configuration reloaded ({why})"));
                let old = std::mem::replace(&mut self.cfg, new);
                self.checker.reset(&self.cfg, Some(&old));
                // Re-program even if health did not change: the services may have.
                self.programmed = 0;
                if let Some(cb) = self.cfg.callback.clone() {
                    run_hook(&cb, vec![self.opts.config.display().to_string()], &self.cfg.commanduser);
                }
            }
            Err(e) => log(&format!("configuration NOT reloaded, keeping the running table: {e}")),
        }
        self.mtime = mtime(&self.opts.config);
    }
}

/// The kernel engine the configuration (or the command line) asks for.
fn open_plane(opts: &Options, cfg: &Config) -> Result<(DataPlane, &'static str), LbError> {
    let backend = choose_backend(opts.backend.unwrap_or(cfg.backend))?;
    if backend == "nftables" && exec::which("nft").is_none() {
        return Err(LbError::Exec(exec::ExecError::NotFound { program: "nft".into() }));
    }
    let plane =
        if backend == "ipvs" { DataPlane::Ipvs(Ipvs::open()?) } else { DataPlane::Nft(Nftables::new(&opts.table)) };
    Ok((plane, backend))
}

/// SIGTERM/SIGINT and SIGHUP as flags the loop polls.
fn signal_flags() -> Result<(Arc<AtomicBool>, Arc<AtomicBool>), LbError> {
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (signal_hook::consts::SIGTERM, &term),
        (signal_hook::consts::SIGINT, &term),
        (signal_hook::consts::SIGHUP, &hup),
    ] {
        signal_hook::flag::register(sig, flag.clone()).map_err(|source| {
            LbError::Io(crate::error::IoError::new("install a signal handler for", format!("signal {sig}"), source))
        })?;
    }
    Ok((term, hup))
}

impl Engine {
    /// The first round: every real server checked once (bounded), then
    /// the first table.
    fn first_round(&mut self, term: &AtomicBool) -> Result<(), LbError> {
        let started = Instant::now();
        self.checker.dispatch(&self.cfg);
        while !self.checker.all_checked()
            && started.elapsed() < Duration::from_secs(120)
            && !term.load(Ordering::SeqCst)
        {
            for t in self.checker.collect(&self.cfg, Duration::from_millis(50)) {
                log_transition(&t);
            }
        }
        self.program()?;
        self.write_status();
        Ok(())
    }

    /// One turn of the loop: reload if asked, checks, the table, the
    /// kernel comparison. Returns whether health changed.
    fn tick(&mut self, hup: &AtomicBool) -> bool {
        if hup.swap(false, Ordering::SeqCst) {
            self.reload("SIGHUP");
        } else if self.cfg.autoreload && mtime(&self.opts.config) != self.mtime {
            self.reload("the file changed");
        }
        self.checker.dispatch(&self.cfg);
        let transitions = self.checker.collect(&self.cfg, Duration::from_millis(100));
        for t in &transitions {
            log_transition(t);
        }
        if let Err(err) = self.program() {
            log(&format!("programming the kernel failed (will retry): {err}"));
            self.kernel_match = Some(false);
        }
        // Compare the kernel with what was programmed every few seconds:
        // someone flushing the table must show in status and monitor.
        if self.last_verify.elapsed() >= Duration::from_secs(5) {
            self.kernel_match = self.plane.verify();
            if self.kernel_match == Some(false) {
                log("the kernel table differs from what was programmed; programming it again");
                self.programmed = 0;
            }
            self.last_verify = Instant::now();
        }
        !transitions.is_empty()
    }
}

/// Run until SIGTERM/SIGINT. Errors before the first table is programmed
/// are returned; later ones are logged and retried.
pub fn run(opts: Options) -> Result<(), LbError> {
    let cfg = config::load(&opts.config)?;
    config::check_trust(&cfg, &opts.config)?;
    set_logfile(cfg.logfile.as_deref());
    for w in &cfg.warnings {
        log(w);
    }
    let (plane, backend) = open_plane(&opts, &cfg)?;
    let (term, hup) = signal_flags()?;
    let dir = status::state_dir(&opts.table);
    std::fs::create_dir_all(&dir)
        .map_err(|source| LbError::Io(crate::error::IoError::new("create", dir.display().to_string(), source)))?;
    let checker = Checker::new(&cfg);
    let mut e = Engine {
        plane,
        mtime: mtime(&opts.config),
        cfg,
        checker,
        backend,
        table: Table::default(),
        programmed: 0,
        kernel_match: None,
        last_verify: Instant::now(),
        dir,
        opts,
    };
    if !forwarding_ok(&e.cfg) {
        log("WARNING: IP forwarding is off on this node; DNAT'ed connections cannot reach the real servers");
    }
    log(&format!("started: {} virtual services, backend {}, table {}", e.cfg.virtuals.len(), e.backend, e.opts.table));
    e.first_round(&term)?;
    let mut last_status = Instant::now();
    while !term.load(Ordering::SeqCst) {
        let changed = e.tick(&hup);
        if changed || last_status.elapsed() >= Duration::from_secs(1) {
            e.write_status();
            last_status = Instant::now();
        }
    }
    log("stopping: removing the table");
    let cleared = e.plane.clear();
    let _ = std::fs::remove_file(e.dir.join("status"));
    cleared
}

/// One round of checks of every real server, without touching the kernel:
/// how long it took and how many real servers passed (`haven director
/// round`, for benchmarks and for trying a configuration out).
pub fn one_round(path: &Path) -> Result<(Duration, usize, usize), LbError> {
    let cfg = config::load(path)?;
    let started = Instant::now();
    let mut checker = Checker::new(&cfg);
    checker.dispatch(&cfg);
    while !checker.all_checked() {
        checker.collect(&cfg, Duration::from_millis(50));
    }
    let up = checker.states.values().filter(|s| s.up).count();
    Ok((started.elapsed(), up, checker.states.len()))
}

/// How a virtual service's gate/ipip real servers are reached on
/// nftables (None: all masq).
fn dr_note(v: &config::Virtual) -> Option<String> {
    use config::Method;
    let has = |m: Method| v.reals.iter().any(|r| r.method == m);
    if !has(Method::Gate) && !has(Method::Ipip) {
        return None;
    }
    if has(Method::Masq) || !matches!(v.protocol, config::Protocol::Tcp | config::Protocol::Udp) {
        return Some(
            "gate/ipip real servers mixed with masq ones, or on a fwmark service, are reached by DNAT on nftables: \
             replies must route back through the director"
                .into(),
        );
    }
    let mut how = Vec::new();
    if has(Method::Gate) {
        how.push(
            "gate on nftables is direct routing: the netdev ingress hook of the interface holding the VIP rewrites \
             the destination MAC to the real server's (neighbour table) and forwards on its link (fwd to), \
             the real servers answer clients directly",
        );
    }
    if has(Method::Ipip) {
        how.push(
            "ipip on nftables: one ipip tunnel device per real server (made with `ip link`, kernel module ipip), \
             packets forwarded into it (fwd ip to ... device) and encapsulated towards the real server",
        );
    }
    how.push("flows keep their real server through a per-service flow map (client address and port)");
    Some(how.join("; "))
}

/// `haven director check`: parse and report, without touching the kernel.
/// On nftables (no IPVS here, or asked for), the warnings also say where
/// the data plane differs from IPVS.
pub fn check(path: &Path) -> Result<Config, LbError> {
    let mut cfg = config::load(path)?;
    config::check_trust(&cfg, path)?;
    if choose_backend(cfg.backend).ok() == Some("nftables") {
        let mut notes = Vec::new();
        for v in &cfg.virtuals {
            if let Some(gap) = super::nft::scheduler_gap(&v.scheduler) {
                notes.push(format!(
                    "virtual {} (line {}): scheduler {} on nftables: {gap}",
                    v.addr, v.line, v.scheduler
                ));
            }
            if let Some(note) = dr_note(v) {
                notes.push(format!("virtual {} (line {}): {note}", v.addr, v.line));
            }
        }
        cfg.warnings.extend(notes);
    }
    Ok(cfg)
}
