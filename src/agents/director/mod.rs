//! ocf:haven:director — starts, watches and stops the director daemon
//! (`haven director run`) for one configuration.

pub mod spec;

use crate::error::AgentError;
use crate::lb::config::{self, BackendChoice};
use crate::lb::daemon::choose_backend;
use crate::lb::status::{self, Status as DaemonStatus};
use crate::ocf::agent::ActionResult;
use crate::ocf::params::ParamError;
use crate::ocf::{Agent, AgentSpec, Ctx, Status};
use crate::{exec, info, warn};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Director;

#[derive(Debug, thiserror::Error)]
pub enum DirectorError {
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    #[error("{0}")]
    Backend(#[from] crate::lb::LbError),
    #[error("give either configfile or virtual and real")]
    NoService,
    #[error(transparent)]
    Io(#[from] crate::error::IoError),
    #[error("the director daemon exited during start: {log}")]
    Died { log: String },
    #[error("the director daemon did not program the table before the deadline: {log}")]
    Slow { log: String },
    #[error("the director daemon (pid {pid}) has not updated its status for {secs} s")]
    Stale { pid: i32, secs: u64 },
    #[error("the kernel table {table} differs from what the director programmed")]
    KernelDiffers { table: String },
    #[error("nftables table {table} is still there after stop")]
    TableLeft { table: String },
}

impl crate::error::OcfError for DirectorError {
    fn status(&self) -> Status {
        match self {
            DirectorError::Config(_) | DirectorError::NoService => Status::ErrConfigured,
            DirectorError::Backend(e) => crate::error::OcfError::status(e),
            _ => Status::ErrGeneric,
        }
    }
}

struct Setup {
    config: PathBuf,
    table: String,
    backend: Option<BackendChoice>,
    dir: PathBuf,
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect::<String>().chars().take(26).collect()
}

fn setup(ctx: &Ctx, write_generated: bool) -> Result<Setup, AgentError> {
    let p = &ctx.params;
    let table = match p.str("table")? {
        Some(t) => t.to_string(),
        None if ctx.env.instance.is_empty() => "haven_director".to_string(),
        None => format!("haven_{}", sanitize(&ctx.env.instance)),
    };
    let dir = status::state_dir(&table);
    let backend = match p.str("backend")? {
        Some("nftables") => Some(BackendChoice::Nftables),
        Some("ipvs") => Some(BackendChoice::Ipvs),
        Some("auto") => Some(BackendChoice::Auto),
        _ => None,
    };
    let config = match p.path("configfile")? {
        Some(f) => f.to_path_buf(),
        None => {
            let text = generated_config(ctx)?;
            let path = dir.join("generated.cf");
            // Validate what was generated before writing it.
            config::parse(&text, "parameters").map_err(DirectorError::from)?;
            if write_generated {
                std::fs::create_dir_all(&dir).map_err(|source| {
                    DirectorError::Io(crate::error::IoError::new("create", dir.display().to_string(), source))
                })?;
                std::fs::write(&path, text).map_err(|source| {
                    DirectorError::Io(crate::error::IoError::new("write", path.display().to_string(), source))
                })?;
            }
            path
        }
    };
    Ok(Setup { config, table, backend, dir })
}

/// ldirectord.cf text for the single-service parameters.
fn generated_config(ctx: &Ctx) -> Result<String, AgentError> {
    let p = &ctx.params;
    let (Some(virt), Some(reals)) = (p.str("virtual")?, p.str("real")?) else {
        return Err(DirectorError::NoService.into());
    };
    let method = p.str("method")?.unwrap_or("masq");
    let mut t = String::new();
    let int = |n: &'static str| -> Result<i64, ParamError> { Ok(p.int(n)?.unwrap_or(0)) };
    t.push_str(&format!("checkinterval = {}\n", int("checkinterval")?));
    t.push_str(&format!("checktimeout = {}\n", int("checktimeout")?));
    t.push_str(&format!("failurecount = {}\n", int("failurecount")?));
    t.push_str(&format!("quiescent = {}\n", if p.flag("quiescent")? { "yes" } else { "no" }));
    let key = if virt.starts_with('[') { "virtual6" } else { "virtual" };
    t.push_str(&format!("{key} = {virt}\n"));
    for r in reals.split_whitespace() {
        let (addr, weight) = r.split_once(',').unwrap_or((r, "1"));
        t.push_str(&format!("\treal = {addr} {method} {weight}\n"));
    }
    for k in ["service", "checktype", "scheduler"] {
        if let Some(v) = p.str(k)? {
            t.push_str(&format!("\t{k} = {v}\n"));
        }
    }
    for k in ["request", "receive"] {
        if let Some(v) = p.str(k)? {
            t.push_str(&format!("\t{k} = \"{v}\"\n"));
        }
    }
    if let Some(f) = p.str("fallback")? {
        t.push_str(&format!("\tfallback = {f} {method}\n"));
    }
    Ok(t)
}

/// The daemon of this table, if it runs (its pid checked by command line).
fn daemon_pid(dir: &Path, table: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(dir.join("pid")).ok()?.trim().parse().ok()?;
    crate::host::runs_with(pid, &["director", "run", table]).then_some(pid)
}

fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

fn table_exists(table: &str, ctx: &Ctx) -> Result<bool, AgentError> {
    let f = exec::run(&["nft", "list", "table", "inet", table], &ctx.deadline.within(Duration::from_secs(15)))?;
    Ok(f.code == 0)
}

impl Agent for Director {
    fn spec(&self) -> &'static AgentSpec {
        &spec::SPEC
    }

    fn validate(&self, ctx: &Ctx) -> ActionResult {
        let s = setup(ctx, false)?;
        if s.config.exists() || ctx.params.path("configfile")?.is_some() {
            let cfg = config::load(&s.config).map_err(DirectorError::from)?;
            config::check_trust(&cfg, &s.config)?;
            choose_backend(s.backend.unwrap_or(cfg.backend)).map_err(DirectorError::from)?;
        }
        if exec::which("nft").is_none() {
            return Err(exec::ExecError::NotFound { program: "nft".into() }.into());
        }
        Ok(Status::Success)
    }

    fn start(&self, ctx: &Ctx) -> ActionResult {
        let s = setup(ctx, true)?;
        let cfg = config::load(&s.config).map_err(DirectorError::from)?;
        config::check_trust(&cfg, &s.config)?;
        choose_backend(s.backend.unwrap_or(cfg.backend)).map_err(DirectorError::from)?;
        if exec::which("nft").is_none() {
            return Err(exec::ExecError::NotFound { program: "nft".into() }.into());
        }
        if daemon_pid(&s.dir, &s.table).is_some() {
            info!("the director of table {} is already running", s.table);
            return Ok(Status::Success);
        }
        std::fs::create_dir_all(&s.dir).map_err(|source| {
            DirectorError::Io(crate::error::IoError::new("create", s.dir.display().to_string(), source))
        })?;
        let log_path = s.dir.join("daemon.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(|source| {
            DirectorError::Io(crate::error::IoError::new("open", log_path.display().to_string(), source))
        })?;
        let log2 = log.try_clone().map_err(|source| {
            DirectorError::Io(crate::error::IoError::new("open", log_path.display().to_string(), source))
        })?;
        let exe = std::env::current_exe()
            .map_err(|source| DirectorError::Io(crate::error::IoError::new("locate", "the haven binary", source)))?;
        let mut cmd = std::process::Command::new(exe);
        use std::os::unix::process::CommandExt;
        cmd.arg0("haven").args(["director", "run", "--config"]).arg(&s.config).args(["--table", &s.table]);
        if let Some(b) = ctx.params.str("backend")? {
            cmd.args(["--backend", b]);
        }
        let _ = std::fs::remove_file(s.dir.join("status"));
        let mut child =
            cmd.stdin(std::process::Stdio::null()).stdout(log).stderr(log2).process_group(0).spawn().map_err(
                |source| DirectorError::Io(crate::error::IoError::new("start", "haven director run", source)),
            )?;
        let pid = child.id() as i32;
        std::fs::write(s.dir.join("pid"), format!("{pid}\n")).map_err(|source| {
            DirectorError::Io(crate::error::IoError::new("write", s.dir.join("pid").display().to_string(), source))
        })?;
        // Wait for the first programmed table.
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return Err(DirectorError::Died { log: log_tail(&s.dir) }.into());
            }
            if let Some(st) = DaemonStatus::read(&s.dir) {
                if st.get("pid") == Some(&pid.to_string()) && st.get("programmed").is_some_and(|p| p != "0") {
                    info!("director running (pid {pid}, table {}, {} services)", s.table, st.services.len());
                    return Ok(Status::Success);
                }
            }
            if !ctx.deadline.sleep(Duration::from_millis(50)) {
                crate::host::kill(pid, libc::SIGTERM);
                return Err(DirectorError::Slow { log: log_tail(&s.dir) }.into());
            }
        }
    }

    fn stop(&self, ctx: &Ctx) -> ActionResult {
        let s = setup(ctx, false)?;
        if let Some(pid) = daemon_pid(&s.dir, &s.table) {
            crate::host::kill(pid, libc::SIGTERM);
            let grace = ctx.deadline.remaining().saturating_sub(Duration::from_secs(2));
            let until = ctx.deadline.within(grace);
            while daemon_pid(&s.dir, &s.table).is_some() && until.sleep(Duration::from_millis(50)) {}
            if daemon_pid(&s.dir, &s.table).is_some() {
                warn!("the director daemon (pid {pid}) ignored SIGTERM; killing it");
                crate::host::kill(pid, libc::SIGKILL);
            }
        }
        // Whatever happened to the daemon, the table must go.
        if exec::which("nft").is_some() && table_exists(&s.table, ctx)? {
            exec::run_ok(&["nft", "delete", "table", "inet", &s.table], &ctx.deadline)?;
            if table_exists(&s.table, ctx)? {
                return Err(DirectorError::TableLeft { table: s.table }.into());
            }
        }
        let _ = std::fs::remove_file(s.dir.join("pid"));
        let _ = std::fs::remove_file(s.dir.join("status"));
        Ok(Status::Success)
    }

    fn monitor(&self, ctx: &Ctx) -> ActionResult {
        let s = setup(ctx, false)?;
        let Some(pid) = daemon_pid(&s.dir, &s.table) else {
            return Ok(Status::NotRunning);
        };
        let Some(st) = DaemonStatus::read(&s.dir) else {
            return Ok(Status::NotRunning);
        };
        let updated: u64 = st.get("updated").and_then(|u| u.parse().ok()).unwrap_or(0);
        let age = status::now().saturating_sub(updated);
        if age > 30 {
            return Err(DirectorError::Stale { pid, secs: age }.into());
        }
        if st.get("kernel_match") == Some("no") {
            return Err(DirectorError::KernelDiffers { table: s.table }.into());
        }
        if ctx.depth >= 10 {
            if let Err(e) = config::load(&s.config) {
                warn!("the configuration no longer parses ({e}); the running table stays as it was");
                return Ok(Status::Degraded);
            }
        }
        // A virtual service with nobody to take new connections is the real
        // servers' failure, not the director's: said in the log, not in the
        // exit code (Pacemaker would record a failed action while real
        // servers are still starting, e.g. right after the director).
        let dead: Vec<&str> = st
            .services
            .iter()
            .filter(|svc| {
                let vip = svc.label.split_whitespace().last().unwrap_or_default();
                !svc.on_fallback && !st.reals.iter().any(|r| r.vip == vip && r.active_weight > 0)
            })
            .map(|svc| svc.label.as_str())
            .collect();
        if !dead.is_empty() {
            warn!("no real server takes connections for {}", dead.join(", "));
        }
        Ok(Status::Success)
    }
}
