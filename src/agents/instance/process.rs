//! Starting a service's process, detached from the agent, and telling
//! later whether it is still the same process. A service runs in the
//! foreground in its own session, in its cgroup, as its user, with stdin
//! from /dev/null and stdout/stderr appended to its log in the run
//! directory, so nothing ties it to Pacemaker's pipes once the agent exits.

use super::cgroup::Group;
use super::config::Vars;
use super::error::InstanceError;
use super::file::Service;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
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

/// Start time and state letter of a process, from /proc/<pid>/stat.
pub fn stat(pid: i32) -> Option<(u64, char)> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and ')': fields resume after the
    // last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); starttime is field 22.
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state))
}

impl Ident {
    pub fn of(pid: i32) -> Option<Ident> {
        stat(pid).map(|(start, _)| Ident { pid, start })
    }

    /// The same process, and not a zombie.
    pub fn alive(&self) -> bool {
        matches!(stat(self.pid), Some((start, state)) if start == self.start && state != 'Z' && state != 'X')
    }
}

/// A user to run a service as.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub groups: Vec<libc::gid_t>,
}

/// Look a user up in the passwd database (getpwnam_r, no fork).
pub fn lookup_user(name: &str) -> Option<User> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: zeroed passwd is a valid out-parameter.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    loop {
        // SAFETY: all pointers are valid for the sizes given.
        let rc = unsafe { libc::getpwnam_r(cname.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || result.is_null() {
            return None;
        }
        break;
    }
    // SAFETY: on success pw_dir points into buf (or is null).
    let home = if pw.pw_dir.is_null() {
        "/".to_string()
    } else {
        unsafe { CStr::from_ptr(pw.pw_dir) }.to_string_lossy().into_owned()
    };
    let (uid, gid) = (pw.pw_uid, pw.pw_gid);
    let mut n: libc::c_int = 64;
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut count = n;
        // SAFETY: groups has room for `count` entries.
        let rc = unsafe { libc::getgrouplist(cname.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            groups.truncate(usize::try_from(count).unwrap_or(0));
            break;
        }
        if count <= n || count > 65_536 {
            groups = vec![gid];
            break;
        }
        n = count;
        groups.resize(usize::try_from(n).unwrap_or(64), 0);
    }
    Some(User { name: name.to_string(), uid, gid, home, groups })
}

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
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| InstanceError::Io(crate::error::IoError::new("open", path.display().to_string(), source)))
}

/// The last lines of a log, on one line, for an exit reason.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let from = text.len().saturating_sub(2048);
    let tail = String::from_utf8_lossy(&text[from..]).into_owned();
    let lines: Vec<&str> = tail.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let last = &lines[lines.len().saturating_sub(3)..];
    if last.is_empty() {
        "(empty)".into()
    } else {
        last.join(" | ")
    }
}

/// Start `svc` in cgroup `cg`. The returned child is only used to learn an
/// early exit status while the agent still runs; dropping it neither kills
/// nor waits for the service.
pub fn spawn(
    svc: &Service,
    user: Option<&User>,
    cg: &Group,
    vars: &Vars,
    run_dir: &Path,
) -> Result<(Child, Ident), InstanceError> {
    let program = program(svc)?;
    let log = open_log(&log_path(run_dir, &svc.name))?;
    let log2 = log.try_clone().map_err(|source| {
        InstanceError::Io(crate::error::IoError::new(
            "duplicate",
            log_path(run_dir, &svc.name).display().to_string(),
            source,
        ))
    })?;
    let spawn_err = |source: std::io::Error| InstanceError::Spawn {
        service: svc.name.clone(),
        program: program.display().to_string(),
        source,
    };
    let procs = CString::new(cg.procs_file().as_os_str().as_bytes())
        .map_err(|_| spawn_err(std::io::Error::from(std::io::ErrorKind::InvalidInput)))?;
    let ids = user.map(|u| (u.uid, u.gid, u.groups.clone()));

    let mut cmd = Command::new(&program);
    cmd.arg0(&svc.argv[0]).args(&svc.argv[1..]).current_dir(&svc.dir);
    cmd.env_clear();
    cmd.env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let (uname, home) = match user {
        Some(u) => (u.name.clone(), u.home.clone()),
        None => ("root".to_string(), "/root".to_string()),
    };
    cmd.env("HOME", home).env("USER", &uname).env("LOGNAME", &uname);
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
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe system calls on memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            // Join the service's cgroup first, while still root: from here
            // on every process it forks is accounted there.
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let wrote = libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
            if wrote != 1 {
                return Err(std::io::Error::last_os_error());
            }
            // Own session: no controlling terminal, not in the agent's
            // process group (which Pacemaker may signal).
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for sig in 1..32 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
            // Descriptors the agent inherited from Pacemaker must not reach
            // the daemon: mark everything above stderr close-on-exec.
            const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
            if libc::syscall(libc::SYS_close_range, 3 as libc::c_uint, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC) != 0 {
                for fd in 3..4096 {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            libc::umask(0o022);
            if let Some((uid, gid, groups)) = &ids {
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setgid(*gid) != 0
                    || libc::setuid(*uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(spawn_err)?;
    let pid = i32::try_from(child.id()).unwrap_or(0);
    let ident = Ident::of(pid).unwrap_or(Ident { pid, start: 0 });
    Ok((child, ident))
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

    #[test]
    fn users_resolve() {
        let root = lookup_user("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(lookup_user("no-such-user-haven").is_none());
    }
}
