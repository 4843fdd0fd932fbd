//! ocf:haven:instance — a named hosting instance (its own host name, IP and
//! data directory) whose services run in the foreground in one cgroup and
//! fail over as a unit; as a promotable clone, the promoted node also runs
//! the services marked role = "promoted".

mod cgroup;
mod config;
mod error;
mod file;
mod process;
#[cfg(test)]
mod props;
pub mod registry;
mod score;
pub mod spec;
mod state;
mod stop;
mod sys;

pub use config::Config;
pub use error::InstanceError;

use crate::error::AgentError;
use crate::error::IoError;
use crate::mount::guard::bounded;
use crate::mount::MountTable;
use crate::ocf::agent::ActionResult;
use crate::ocf::{Agent, AgentSpec, Ctx, Deadline, Status};
use crate::safe_file::{SafeDir, SafeFileError};
use crate::trust::Trust;
use crate::{debug, info, warn};
use cgroup::Group;
use file::{InstanceFile, Role, Service};
use process::User;
use state::{ServiceState, State};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use sys::Real;

pub struct Instance;

/// How long a service without a probe must stay up after exec to count as
/// started (catches daemons that exit at once on a bad configuration).
const SETTLE: Duration = Duration::from_millis(200);
/// Kept back per service still to stop, for its SIGKILL, so one slow service
/// cannot eat the time of the others.
pub(crate) const KILL_RESERVE: Duration = Duration::from_millis(300);

impl Agent for Instance {
    fn spec(&self) -> &'static AgentSpec {
        &spec::SPEC
    }

    fn validate(&self, ctx: &Ctx) -> ActionResult {
        let cfg = Config::from_params(&ctx.params)?;
        cgroup::mount_point()?;
        if let Some(u) = &cfg.user {
            process::lookup_user(u)
                .ok_or_else(|| InstanceError::NoUser { user: u.clone(), what: "parameter user".into() })?;
        }
        // An instance file on the shared volume can only be checked where
        // the volume is mounted.
        let on_volume = cfg.config.starts_with(&cfg.datadir);
        if !on_volume || check_datadir(&cfg, &ctx.deadline).is_ok() {
            let f = load(&cfg, &ctx.deadline)?;
            check_node(&cfg, &f)?;
            register(ctx, &cfg, Some(&f));
        } else {
            warn!(
                "instance file {} not checked: datadir {} is not mounted on this node",
                cfg.config.display(),
                cfg.datadir
            );
            register(ctx, &cfg, None);
        }
        Ok(Status::Success)
    }

    fn start(&self, ctx: &Ctx) -> ActionResult {
        let cfg = Config::from_params(&ctx.params)?;
        let dl = &ctx.deadline;
        // Before anything is written anywhere: the shared volume must be
        // mounted on datadir.
        check_datadir(&cfg, dl)?;
        let f = load(&cfg, &ctx.deadline)?;
        let users = check_node(&cfg, &f)?;
        check_ip(&cfg)?;
        let cg = Group::of_instance(&cfg.name)?;
        let run_dir = cfg.run_dir();
        if let Some(st) = state::read(&run_dir)?.filter(|s| s.running) {
            if st.expected().all(ServiceState::alive) {
                info!("instance {} is already running", cfg.name);
                score::publish(ctx, Some(cfg.promotion_score));
                return Ok(Status::Success);
            }
            warn!("instance {} is partly running: stopping what is left before starting", cfg.name);
            stop::all(&mut Real, &st, &Group::at(&st.cgroup), dl)?;
        }
        if cg.populated() {
            warn!("processes were left in {} without a started instance: killing them", cg.path.display());
            cg.destroy(dl).map_err(|pids| survivors(&cfg.name, &pids))?;
        }
        cg.create()?;
        render_files(&f, &self::run_dir(&cfg)?)?;
        let mut st = State::new(&cfg, &ctx.env.instance, Some(&f), &cg.path);
        st.running = true;
        st.started = state::now_secs();
        state::write(&run_dir, &st)?;
        let first = start_order(&f);
        if let Err(e) = start_services(&cfg, &first, &users, &cg, &mut st, dl) {
            let _ = stop::all(&mut Real, &st, &cg, &dl.within(Duration::from_secs(30)).max_of(Duration::from_secs(2)));
            st.running = false;
            clear(&mut st, |_| true);
            let _ = state::write(&run_dir, &st);
            return Err(e.into());
        }
        score::publish(ctx, Some(cfg.promotion_score));
        info!("instance {} started ({} services)", cfg.name, first.len());
        Ok(Status::Success)
    }

    fn stop(&self, ctx: &Ctx) -> ActionResult {
        let cfg = Config::from_params(&ctx.params)?;
        let dl = &ctx.deadline;
        let run_dir = cfg.run_dir();
        let st = state::read(&run_dir)?;
        let cg = match &st {
            Some(s) if !s.cgroup.is_empty() => Group::at(&s.cgroup),
            _ => match Group::of_instance(&cfg.name) {
                Ok(g) => g,
                // No cgroup2 and no record: nothing of ours can run here.
                Err(_) if st.is_none() => return Ok(Status::Success),
                Err(e) => return Err(e.into()),
            },
        };
        let started = Instant::now();
        let mut st = st.unwrap_or_else(|| State::new(&cfg, &ctx.env.instance, None, &cg.path));
        stop::all(&mut Real, &st, &cg, dl)?;
        score::publish(ctx, None);
        let was_running = st.running;
        st.running = false;
        st.promoted = false;
        clear(&mut st, |_| true);
        state::write(&run_dir, &st)?;
        if was_running {
            info!("instance {} stopped in {} ms", cfg.name, started.elapsed().as_millis());
        }
        Ok(Status::Success)
    }

    fn monitor(&self, ctx: &Ctx) -> ActionResult {
        let cfg = Config::from_params(&ctx.params)?;
        let run_dir = cfg.run_dir();
        let Some(st) = state::read(&run_dir)?.filter(|s| s.running) else {
            if ctx.is_probe() {
                register(ctx, &cfg, None);
            }
            // Processes without a start (an agent killed mid-start, or
            // started by hand): not "stopped", so Pacemaker cleans up.
            if let Ok(cg) = Group::of_instance(&cfg.name) {
                if cg.populated() {
                    return Err(InstanceError::Stray { name: cfg.name, cgroup: cg.path.display().to_string() }.into());
                }
            }
            return Ok(Status::NotRunning);
        };
        let promoted = st.promoted;
        let fail = |e: InstanceError| -> ActionResult {
            if promoted {
                crate::ocf::log::exit_reason(&e.to_string());
                Ok(Status::FailedPromoted)
            } else {
                Err(e.into())
            }
        };
        let mut degraded: Vec<String> = Vec::new();
        for s in st.expected() {
            if !s.alive() {
                let log = process::log_path(&run_dir, &s.name).display().to_string();
                let e = InstanceError::ServiceDown { service: s.name.clone(), pid: s.ident.map_or(0, |i| i.pid), log };
                if s.optional {
                    degraded.push(e.to_string());
                } else {
                    return fail(e);
                }
            }
        }
        if ctx.depth >= 10 {
            if let Err(e) = check_datadir(&cfg, &ctx.deadline) {
                return fail(e);
            }
            match load(&cfg, &ctx.deadline) {
                Ok(f) => {
                    for svc in &f.services {
                        let Some(s) = st.services.iter().find(|s| s.name == svc.name) else { continue };
                        let Some(check) = &svc.probe else { continue };
                        if !st.expected().any(|e| e.name == s.name) || !s.alive() {
                            continue;
                        }
                        if let Err(source) = check.run(ctx.deadline.remaining()) {
                            let e = InstanceError::ProbeFailed { service: s.name.clone(), source: Box::new(source) };
                            if s.optional {
                                degraded.push(e.to_string());
                            } else {
                                return fail(e);
                            }
                        }
                    }
                }
                Err(e) => return fail(e),
            }
        }
        if ctx.depth >= 20 {
            if let Err(e) = datadir_round_trip(&cfg, &ctx.deadline) {
                return fail(e);
            }
        }
        if !degraded.is_empty() {
            warn!("instance {} is degraded: {}", cfg.name, degraded.join("; "));
            return Ok(if promoted { Status::DegradedPromoted } else { Status::Degraded });
        }
        Ok(if promoted { Status::RunningPromoted } else { Status::Success })
    }

    fn promote(&self, ctx: &Ctx) -> ActionResult {
        let cfg = Config::from_params(&ctx.params)?;
        let dl = &ctx.deadline;
        let run_dir = cfg.run_dir();
        let Some(mut st) = state::read(&run_dir)?.filter(|s| s.running) else {
            return Err(InstanceError::NotStarted { name: cfg.name, action: "promote" }.into());
        };
        let f = load(&cfg, &ctx.deadline)?;
        let users = check_node(&cfg, &f)?;
        let cg = Group::at(&st.cgroup);
        // Services added to the file since start join the record.
        for svc in &f.services {
            if st.service_mut(&svc.name).is_none() {
                st.services.push(ServiceState::of(svc));
            }
        }
        let todo = promote_order(&f, |name| st.services.iter().any(|x| x.name == name && x.alive()));
        if st.promoted && todo.is_empty() {
            info!("instance {} is already promoted", cfg.name);
            return Ok(Status::Success);
        }
        st.promoted = true;
        if let Err(e) = start_services(&cfg, &todo, &users, &cg, &mut st, dl) {
            let order: Vec<ServiceState> = st.stop_order().into_iter().filter(|s| s.role == Role::Promoted).collect();
            let _ = stop::services(&mut Real, &order, &cg, &dl.max_of(Duration::from_secs(2)));
            st.promoted = false;
            clear(&mut st, |s| s.role == Role::Promoted);
            let _ = state::write(&run_dir, &st);
            return Err(e.into());
        }
        state::write(&run_dir, &st)?;
        info!("instance {} promoted ({} services started)", cfg.name, todo.len());
        Ok(Status::Success)
    }

    fn demote(&self, ctx: &Ctx) -> ActionResult {
        let cfg = Config::from_params(&ctx.params)?;
        let run_dir = cfg.run_dir();
        let Some(mut st) = state::read(&run_dir)?.filter(|s| s.running) else {
            return Err(InstanceError::NotStarted { name: cfg.name, action: "demote" }.into());
        };
        let cg = Group::at(&st.cgroup);
        let order: Vec<ServiceState> = st.stop_order().into_iter().filter(|s| s.role == Role::Promoted).collect();
        stop::services(&mut Real, &order, &cg, &ctx.deadline)?;
        let was = st.promoted;
        st.promoted = false;
        clear(&mut st, |s| s.role == Role::Promoted);
        state::write(&run_dir, &st)?;
        if was {
            info!("instance {} demoted ({} services stopped)", cfg.name, order.len());
        }
        Ok(Status::Success)
    }

    fn notify(&self, ctx: &Ctx) -> ActionResult {
        debug!(
            "notify {} {} accepted",
            ctx.env.meta.notify_type.as_deref().unwrap_or("-"),
            ctx.env.meta.notify_operation.as_deref().unwrap_or("-")
        );
        Ok(Status::Success)
    }
}

pub(crate) trait MaxOf {
    fn max_of(self, d: Duration) -> Deadline;
}

impl MaxOf for Deadline {
    /// This deadline, or `d` from now when less than that is left (cleanup
    /// after a failed start needs time even when the start used it all).
    fn max_of(self, d: Duration) -> Deadline {
        if self.remaining() < d {
            Deadline::after(d)
        } else {
            self
        }
    }
}

fn survivors(name: &str, pids: &[i32]) -> AgentError {
    let list: Vec<String> = pids.iter().map(i32::to_string).collect();
    InstanceError::Survivors { name: name.to_string(), pids: list.join(" ") }.into()
}

/// What start runs, in this order: the services for every node, in file
/// order (promoted-only ones wait for promote).
fn start_order(f: &InstanceFile) -> Vec<&Service> {
    f.services.iter().filter(|s| s.role == Role::Any).collect()
}

/// What promote starts, in file order: promoted-only services not already
/// running (`running` says which are).
fn promote_order(f: &InstanceFile, running: impl Fn(&str) -> bool) -> Vec<&Service> {
    f.services.iter().filter(|s| s.role == Role::Promoted && !running(&s.name)).collect()
}

/// Forget the processes of the services `which` selects.
fn clear(st: &mut State, which: impl Fn(&ServiceState) -> bool) {
    for s in st.services.iter_mut().filter(|s| which(s)) {
        s.ident = None;
    }
}

/// Write the record for `haven instance list` when it is missing or says
/// something else (best effort: a registry problem never fails an action).
fn register(ctx: &Ctx, cfg: &Config, f: Option<&InstanceFile>) {
    let run_dir = cfg.run_dir();
    let current = state::read(&run_dir).ok().flatten();
    if current.as_ref().is_some_and(|s| s.running) {
        return;
    }
    let cg = Group::of_instance(&cfg.name).map(|g| g.path).unwrap_or_default();
    let mut fresh = State::new(cfg, &ctx.env.instance, f, &cg);
    if f.is_none() {
        if let Some(old) = &current {
            fresh.services.clone_from(&old.services);
        }
    }
    if current.as_ref() != Some(&fresh) {
        if let Err(e) = state::write(&run_dir, &fresh) {
            debug!("registry: {e}");
        }
    }
}

/// Read the instance file on a helper thread: it usually lives on the
/// shared volume, and a dead NFS server must fail the action in time, not
/// hang it.
fn load(cfg: &Config, dl: &Deadline) -> Result<InstanceFile, InstanceError> {
    let (path, vars) = (cfg.config.clone(), cfg.vars());
    bounded(format!("reading {}", cfg.config.display()), dl, move || file::load(&path, &vars))?
}

/// Refuse unless a filesystem other than its parent directory's is mounted
/// on datadir: a shared volume that is not mounted leaves an empty
/// directory on the node's own disk, and an instance started there writes
/// its data to the wrong place. Reads mountinfo; the path is resolved on a
/// helper thread (a dead NFS server cannot hang the action).
fn check_datadir(cfg: &Config, dl: &Deadline) -> Result<(), InstanceError> {
    let dir = cfg.datadir.clone();
    let short = dl.within(Duration::from_secs(5));
    let canonical = bounded(format!("resolving datadir {}", cfg.datadir), &short, move || std::fs::canonicalize(dir))?
        .map_err(|_| InstanceError::NoDatadir { datadir: cfg.datadir.clone() })?;
    let table = MountTable::read()
        .map_err(|source| InstanceError::Io(crate::error::IoError::new("read", "/proc/self/mountinfo", source)))?;
    let path = canonical.to_string_lossy().into_owned();
    let parent = canonical.parent().map_or("/".to_string(), |p| p.to_string_lossy().into_owned());
    let here = table.mount_of(&path);
    let above = table.mount_of(&parent);
    match (here, above) {
        (Some(h), Some(a)) if h.id == a.id => Err(InstanceError::NotMounted {
            datadir: cfg.datadir.clone(),
            mount: format!("{} ({} {})", h.mount_point, h.fstype, h.source),
        }),
        _ => Ok(()),
    }
}

/// The ip must be an address of this node, or every service binding to it
/// fails: binding a socket to it says so without forking or netlink.
fn check_ip(cfg: &Config) -> Result<(), InstanceError> {
    match std::net::UdpSocket::bind((cfg.ip, 0)) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Err(InstanceError::NoAddress { ip: cfg.ip }),
        Err(e) => {
            debug!("bind test for {}: {e}", cfg.ip);
            Ok(())
        }
    }
}

/// The user a service runs as when neither its file nor the resource's
/// `user` parameter names one: unprivileged. Root must be named.
pub const DEFAULT_USER: &str = "nobody";

/// What this node must have for the file: every program and user; and a
/// file someone besides root can change (crate::trust) runs nothing with
/// more rights than that someone.
fn check_node(cfg: &Config, f: &InstanceFile) -> Result<BTreeMap<String, User>, InstanceError> {
    let mut users = BTreeMap::new();
    for svc in &f.services {
        process::program(svc)?;
        let name = svc.user.as_deref().or(cfg.user.as_deref()).unwrap_or(DEFAULT_USER);
        let user = process::lookup_user(name)
            .ok_or_else(|| InstanceError::NoUser { user: name.to_string(), what: format!("service {}", svc.name) })?;
        if let Trust::User(uid) = f.trust {
            check_delegated(f, svc, &user, uid)?;
        }
        users.insert(svc.name.clone(), user);
    }
    Ok(users)
}

fn lookup_uid(name: &str) -> Option<u32> {
    process::lookup_user(name).map(|u| u.uid)
}

/// A delegated file (owned by `uid`, not root) may run its services only as
/// that user, without capabilities, and its external probe as that user (or
/// nobody).
fn check_delegated(f: &InstanceFile, svc: &Service, user: &User, uid: u32) -> Result<(), InstanceError> {
    let why = if user.uid != uid {
        format!("service {} would run as {} (uid {})", svc.name, user.name, user.uid)
    } else if !svc.caps.is_empty() {
        format!("service {} asks for capabilities ({})", svc.name, svc.caps.names())
    } else if let Some(crate::probe::Probe::External { user: probe_user, .. }) = svc.probe.as_ref().map(|c| &c.probe) {
        if lookup_uid(probe_user) == Some(uid) || probe_user == DEFAULT_USER {
            return Ok(());
        }
        format!("service {}'s external probe would run as {probe_user}", svc.name)
    } else {
        return Ok(());
    };
    Err(InstanceError::Delegated { file: f.path.clone(), uid, why })
}

/// The run directory, /run/haven/instance/<name>: root's, 0755, refused
/// when it is a symlink or someone else can write it (the agent writes its
/// record, the logs and the rendered files there as root).
fn run_dir(cfg: &Config) -> Result<SafeDir, InstanceError> {
    let root = Path::new(config::RUN_ROOT);
    std::fs::create_dir_all(root).map_err(IoError::at("create", root.display()))?;
    Ok(SafeDir::open(root)?.private_dir(&cfg.name, 0o755)?)
}

/// Write the instance file's [[file]] entries into the run directory,
/// replacing what is there without following links.
fn render_files(f: &InstanceFile, run_dir: &SafeDir) -> Result<(), InstanceError> {
    for r in &f.files {
        let parts: Vec<&str> = r.path.split('/').collect();
        let Some((last, dirs)) = parts.split_last() else { continue };
        let mut dir = None;
        for d in dirs {
            let next = dir.as_ref().unwrap_or(run_dir).subdir(d, 0o755)?;
            dir = Some(next);
        }
        dir.as_ref().unwrap_or(run_dir).write_new(last, r.text.as_bytes(), 0o644)?;
    }
    Ok(())
}

/// Start `services` in order, each in its own cgroup below `cg`, waiting
/// for each to be ready before the next; the record is written after each
/// so a failure midway leaves a record stop can work from.
fn start_services(
    cfg: &Config,
    services: &[&Service],
    users: &BTreeMap<String, User>,
    cg: &Group,
    st: &mut State,
    dl: &Deadline,
) -> Result<(), InstanceError> {
    let run_dir = cfg.run_dir();
    let vars = cfg.vars();
    for svc in services {
        let scg = cg.child(&svc.name);
        if scg.populated() {
            warn!("service {}: killing processes left in {}", svc.name, scg.path.display());
            scg.destroy(&dl.within(Duration::from_secs(5)))
                .map_err(|pids| InstanceError::Survivors { name: cfg.name.clone(), pids: format!("{pids:?}") })?;
        }
        // std reports a failed chdir in the child as a bare errno; say
        // which directory it was.
        if let Err(source) = std::fs::read_dir(&svc.dir) {
            return Err(InstanceError::Io(crate::error::IoError::new(
                "enter the working directory",
                svc.dir.clone(),
                source,
            )));
        }
        scg.create()?;
        scg.limit(&svc.limits)?;
        let Some(user) = users.get(&svc.name) else { continue };
        let t0 = Instant::now();
        let (mut child, ident) = process::spawn(svc, user, svc.caps, &scg, &vars, &run_dir)?;
        if let Some(s) = st.service_mut(&svc.name) {
            s.ident = Some(ident);
        }
        state::write(&run_dir, st)?;
        wait_ready(svc, &mut child, &run_dir, dl)?;
        info!("service {} started (pid {}, ready in {} ms)", svc.name, ident.pid, t0.elapsed().as_millis());
    }
    Ok(())
}

/// Wait until the service's probe passes (or, without a probe, until it
/// has stayed up a moment), failing early when the process exits.
fn wait_ready(
    svc: &Service,
    child: &mut std::process::Child,
    run_dir: &Path,
    dl: &Deadline,
) -> Result<(), InstanceError> {
    let limit = svc.start_timeout.map_or(*dl, |t| dl.within(t));
    let exited = |status: std::process::ExitStatus| {
        let log = process::log_path(run_dir, &svc.name);
        InstanceError::Exited {
            service: svc.name.clone(),
            status: status.to_string(),
            tail: process::log_tail(&log),
            log: log.display().to_string(),
        }
    };
    let settle = Deadline::after(SETTLE);
    let t0 = Instant::now();
    let mut last = String::from("no answer yet");
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(exited(status));
        }
        match &svc.probe {
            None if settle.expired() => break,
            None => {}
            Some(check) => match check.run(limit.remaining()) {
                Ok(()) => break,
                Err(e) => last = format!("{}: {e}", check.describe),
            },
        }
        if limit.expired() {
            return Err(InstanceError::NotReady { service: svc.name.clone(), why: last });
        }
        limit.sleep(if svc.probe.is_some() { probe_pause(t0.elapsed()) } else { Duration::from_millis(20) });
    }
    // Ready, but is it ours that answered? A daemon that failed to bind
    // exits while another process answers on the port.
    if let Ok(Some(status)) = child.try_wait() {
        return Err(exited(status));
    }
    Ok(())
}

/// The pause between two readiness probes, `waited` into the wait: 2 ms
/// at first, then a twentieth of the wait so far, at most 100 ms. The
/// agent then answers within 5% (and 2 ms) of the moment the service got
/// ready, with about 20 probes per tenfold of waiting; a probe of a
/// service not yet listening is refused at once, so it costs next to
/// nothing.
fn probe_pause(waited: Duration) -> Duration {
    (waited / 20).clamp(Duration::from_millis(2), Duration::from_millis(100))
}

/// The agent's directory in datadir for its depth-20 check file.
pub const STATUS_DIR: &str = ".haven-status";

/// Monitor depth 20: write a file in datadir and read it back, on a helper
/// thread so a hung volume fails the monitor in time. The site's users can
/// write datadir: the file lives in the agent's own directory there (root,
/// 0700) and is replaced, never written through (crate::safe_file).
fn datadir_round_trip(cfg: &Config, dl: &Deadline) -> Result<(), InstanceError> {
    let name = format!("check-{}", registry::node_name());
    let path = Path::new(&cfg.datadir).join(STATUS_DIR).join(&name);
    let token = format!("{} {} {}\n", cfg.name, std::process::id(), state::now_secs());
    let (datadir, t) = (cfg.datadir.clone(), token.clone());
    let back = bounded(format!("writing and reading {}", path.display()), dl, move || {
        let dir = SafeDir::open(Path::new(&datadir))?.private_dir(STATUS_DIR, 0o700)?;
        dir.write_new(&name, t.as_bytes(), 0o600)?;
        let back = dir.read_bounded(&name, 4096)?;
        dir.remove(&name)?;
        Ok::<Vec<u8>, SafeFileError>(back)
    })??;
    let back = String::from_utf8_lossy(&back).into_owned();
    if back != token {
        return Err(InstanceError::Mismatch { path: path.display().to_string(), got: back });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_probes_start_fine_and_back_off_to_a_tenth_of_a_second() {
        let ms = |m| Duration::from_millis(m);
        assert_eq!(probe_pause(ms(0)), ms(2));
        assert_eq!(probe_pause(ms(39)), ms(2));
        assert_eq!(probe_pause(ms(150)), Duration::from_micros(7500), "5% of the wait so far");
        assert_eq!(probe_pause(ms(1000)), ms(50));
        assert_eq!(probe_pause(ms(60_000)), ms(100));
    }

    fn cfg() -> Config {
        Config {
            name: "web1".into(),
            hostname: "web1.example.org".into(),
            ip: "198.51.100.80".parse().unwrap(),
            datadir: "/srv/web1".into(),
            config: "/srv/web1/instance.toml".into(),
            user: None,
            promotion_score: 10,
        }
    }

    fn file() -> InstanceFile {
        let vars = cfg().vars();
        let text = "[[service]]\nname = \"db\"\nargv = [\"/bin/true\"]\n\
                    [[service]]\nname = \"sync\"\nrole = \"promoted\"\nargv = [\"/bin/true\"]\n\
                    [[service]]\nname = \"web\"\nargv = [\"/bin/true\"]\n\
                    [[service]]\nname = \"panel\"\nrole = \"promoted\"\nargv = [\"/bin/true\"]\n";
        file::parse("/srv/web1/instance.toml", text, &vars).unwrap()
    }

    fn names(v: &[&Service]) -> Vec<String> {
        v.iter().map(|s| s.name.clone()).collect()
    }

    #[test]
    fn start_runs_the_common_services_in_file_order_and_promote_the_rest() {
        let f = file();
        assert_eq!(names(&start_order(&f)), ["db", "web"]);
        assert_eq!(names(&promote_order(&f, |_| false)), ["sync", "panel"]);
        // A second promote starts only what is not running.
        assert_eq!(names(&promote_order(&f, |n| n == "sync")), ["panel"]);
        // Stop goes the other way: promoted-only first, each in reverse.
        let mut st = State::new(&cfg(), "web1", Some(&f), Path::new("/cg"));
        st.promoted = true;
        let order: Vec<String> = st.stop_order().into_iter().map(|s| s.name).collect();
        assert_eq!(order, ["panel", "sync", "web", "db"]);
    }

    #[test]
    fn a_delegated_file_may_run_only_as_its_owner() {
        let mut f = file();
        f.trust = Trust::User(33);
        let svc = f.services[0].clone();
        let owner = User { name: "www-data".into(), uid: 33, gid: 33, home: "/var/www".into(), groups: vec![33] };
        let root = User { name: "root".into(), uid: 0, gid: 0, home: "/root".into(), groups: vec![0] };
        assert!(check_delegated(&f, &svc, &owner, 33).is_ok());
        let e = check_delegated(&f, &svc, &root, 33).unwrap_err();
        assert!(e.to_string().contains("would run as root") && e.to_string().contains("uid 33"), "{e}");
        let mut capped = svc.clone();
        capped.caps = crate::privdrop::Caps::default().with(10);
        assert!(check_delegated(&f, &capped, &owner, 33).unwrap_err().to_string().contains("net_bind_service"));
    }
}
