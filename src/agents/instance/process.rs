//! Starting a service's process, detached from the agent, and telling
//! later whether it is still the same process. A service runs in the
//! foreground in its own session, in its cgroup, as its user, with stdin
//! from /dev/null and stdout/stderr appended to its log in the run
//! directory, so nothing ties it to Pacemaker's pipes once the agent exits.

use super::cgroup::Group;
use super::config::Vars;
use super::error::InstanceError;
use super::file::Service;
use crate::privdrop::{Caps, Launch};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A log that grew past this is moved to <log>.1 when the service starts.
const LOG_ROTATE_BYTES: u64 = 4 << 20;

/// A process as identified by pid and start time (clock ticks after boot),
/// so that a reused pid is never mistaken for the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ident {
    pub pid: i32,
    pub start: u64,
}

pub use crate::host::stat;

impl Ident {
    pub fn of(pid: i32) -> Option<Ident> {
        stat(pid).map(|(start, _)| Ident { pid, start })
    }

    /// The same process, and not a zombie.
    pub fn alive(&self) -> bool {
        matches!(stat(self.pid), Some((start, state)) if start == self.start && state != 'Z' && state != 'X')
    }
}

pub use crate::privdrop::{lookup_user, User};

/// The program to exec: an absolute path as given, a bare name from the
/// agents' search path.
pub fn program(svc: &Service) -> Result<PathBuf, InstanceError> {
    let p = &svc.argv[0];
    let missing = || InstanceError::NoProgram { service: svc.name.clone(), program: p.clone() };
    if p.contains('/') {
        let path = PathBuf::from(p);
        if !path.is_absolute() || !path.is_file() {
            return Err(missing());
        }
        return Ok(path);
    }
    crate::exec::which(p).ok_or_else(missing)
}

pub fn log_path(run_dir: &Path, service: &str) -> PathBuf {
    run_dir.join(format!("{service}.log"))
}

fn open_log(path: &Path) -> Result<std::fs::File, InstanceError> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        let _ = std::fs::rename(path, old);
    }
    // The agent's own directory, but a service running as root could
    // still plant a link there: never follow one, never block on a FIFO.
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(crate::error::IoError::at("open", path.display()))?;
    let meta = f.metadata().map_err(crate::error::IoError::at("stat", path.display()))?;
    if !meta.is_file() || std::os::unix::fs::MetadataExt::nlink(&meta) != 1 {
        return Err(crate::safe_file::SafeFileError::Refused {
            path: path.display().to_string(),
            why: "the service log must be a regular file with one name".into(),
        }
        .into());
    }
    Ok(f)
}

/// The last lines of a log, on one line, for an exit reason.
pub fn log_tail(path: &Path) -> String {
    // The last 2 KiB only (a log may be megabytes), never through a link.
    let text = crate::safe_file::open_regular(path)
        .ok()
        .and_then(|(fd, st)| {
            use std::io::{Read, Seek, SeekFrom};
            let mut f = std::fs::File::from(fd);
            f.seek(SeekFrom::Start(u64::try_from(st.st_size).unwrap_or(0).saturating_sub(2048))).ok()?;
            let mut buf = Vec::new();
            f.take(2048).read_to_end(&mut buf).ok()?;
            Some(buf)
        })
        .unwrap_or_default();
    let tail = String::from_utf8_lossy(&text).into_owned();
    let lines: Vec<&str> = tail.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let last = &lines[lines.len().saturating_sub(3)..];
    if last.is_empty() {
        "(empty)".into()
    } else {
        last.join(" | ")
    }
}

/// Start `svc` in cgroup `cg` as `user` with capabilities `caps`. The
/// returned child is only used to learn an early exit status while the
/// agent still runs; dropping it neither kills nor waits for the service.
pub fn spawn(
    svc: &Service,
    user: &User,
    caps: Caps,
    cg: &Group,
    vars: &Vars,
    run_dir: &Path,
) -> Result<(Child, Ident), InstanceError> {
    let program = program(svc)?;
    let spawn_err = |source: std::io::Error| InstanceError::Spawn {
        service: svc.name.clone(),
        program: program.display().to_string(),
        source,
    };
    let mut cmd = command(svc, &program, user, vars, run_dir)?;
    let launch = Launch { cgroup_procs: Some(cg.procs_file()), new_session: true, user: Some(user.clone()), caps };
    launch.install(&mut cmd).map_err(spawn_err)?;
    let child = cmd.spawn().map_err(spawn_err)?;
    let pid = i32::try_from(child.id()).unwrap_or(0);
    let ident = Ident::of(pid).unwrap_or(Ident { pid, start: 0 });
    Ok((child, ident))
}

/// The command line, working directory, environment and log of a service.
fn command(svc: &Service, program: &Path, user: &User, vars: &Vars, run_dir: &Path) -> Result<Command, InstanceError> {
    let log = open_log(&log_path(run_dir, &svc.name))?;
    let log2 = log.try_clone().map_err(|source| {
        InstanceError::Io(crate::error::IoError::new(
            "duplicate",
            log_path(run_dir, &svc.name).display().to_string(),
            source,
        ))
    })?;
    let mut cmd = Command::new(program);
    cmd.arg0(&svc.argv[0]).args(&svc.argv[1..]).current_dir(&svc.dir);
    crate::privdrop::minimal_env(&mut cmd, Some(user));
    cmd.env_remove("LC_ALL");
    for (k, v) in &svc.env {
        cmd.env(k, v);
    }
    cmd.env("HAVEN_INSTANCE", &vars.name)
        .env("HAVEN_HOSTNAME", &vars.hostname)
        .env("HAVEN_IP", vars.ip.to_string())
        .env("HAVEN_DATADIR", &vars.datadir)
        .env("HAVEN_RUNDIR", &vars.rundir)
        .env("HAVEN_SERVICE", &svc.name);
    cmd.stdin(Stdio::null()).stdout(Stdio::from(log)).stderr(Stdio::from(log2));
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_identified() {
        let me = std::process::id() as i32;
        let id = Ident::of(me).unwrap();
        assert!(id.alive());
        assert!(!Ident { pid: me, start: id.start + 1 }.alive(), "another start time is another process");
        assert!(!Ident { pid: 0, start: 0 }.alive());
    }
}
