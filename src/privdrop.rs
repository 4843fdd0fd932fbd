//! What a process haven starts may do: the user it runs as (passwd lookup
//! through nix), no_new_privs, and a capability set reduced to what its
//! configuration names (bounding, permitted, effective, inheritable and,
//! for an unprivileged user, ambient sets), applied between fork and exec.
//! The instance agent's services and the director's external commands
//! share this one pre_exec hook.

use crate::exec::{ExecError, Finished};
use crate::ocf::Deadline;
use nix::unistd::{Gid, Uid};
use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The user a process runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub groups: Vec<u32>,
}

impl User {
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// Look a user up in the passwd database (no fork); None when unknown.
pub fn lookup_user(name: &str) -> Option<User> {
    let pw = nix::unistd::User::from_name(name).ok().flatten()?;
    let cname = CString::new(name).ok()?;
    let groups = nix::unistd::getgrouplist(&cname, pw.gid)
        .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
        .unwrap_or_else(|_| vec![pw.gid.as_raw()]);
    Some(User {
        name: name.to_string(),
        uid: pw.uid.as_raw(),
        gid: pw.gid.as_raw(),
        home: pw.dir.display().to_string(),
        groups,
    })
}

/// Linux capability names (capabilities(7), without "cap_"), by number.
const CAPS: &[&str] = &[
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// A set of capabilities, one bit per capability number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps(pub u64);

impl Caps {
    /// Parse one name ("net_bind_service", "CAP_NET_BIND_SERVICE").
    pub fn number(name: &str) -> Option<u32> {
        let n = name.trim().to_ascii_lowercase();
        let n = n.strip_prefix("cap_").unwrap_or(&n);
        CAPS.iter().position(|c| *c == n).and_then(|i| u32::try_from(i).ok())
    }

    pub fn with(self, number: u32) -> Caps {
        Caps(self.0 | (1u64 << number))
    }

    pub fn has(self, number: u32) -> bool {
        number < 64 && self.0 & (1u64 << number) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// "net_bind_service,setuid" for messages.
    pub fn names(self) -> String {
        let v: Vec<&str> = CAPS.iter().enumerate().filter(|(i, _)| self.has(*i as u32)).map(|(_, n)| *n).collect();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(",")
        }
    }
}

/// What the child does between fork and exec, prepared before the fork
/// (nothing in the hook allocates).
#[derive(Clone, Debug, Default)]
pub struct Launch {
    /// Join this cgroup (its cgroup.procs path) first, while still root.
    pub cgroup_procs: Option<std::path::PathBuf>,
    /// A session of its own (a daemon: no controlling terminal, out of the
    /// agent's process group).
    pub new_session: bool,
    /// Run as this user; None keeps the agent's (root).
    pub user: Option<User>,
    /// The capabilities it keeps; everything else leaves every set,
    /// bounding set included.
    pub caps: Caps,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;
/// close_range(2) flag: mark close-on-exec instead of closing.
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

impl Launch {
    /// Install the hook on `cmd`.
    pub fn install(self, cmd: &mut Command) -> std::io::Result<()> {
        let Plan { procs, new_session, privileged, ids, caps, data } = self.plan()?;
        // SAFETY: the closure runs in the child between fork and exec. It
        // only makes async-signal-safe system calls (open, write, close,
        // setsid, signal, close_range, umask, prctl, setgroups, setgid,
        // setuid, capset) on memory prepared before the fork (procs, ids,
        // data), and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(procs) = &procs {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    let wrote = if fd < 0 { -1 } else { libc::write(fd, b"0".as_ptr().cast(), 1) };
                    if fd >= 0 {
                        libc::close(fd);
                    }
                    if wrote != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if new_session {
                    nix::unistd::setsid()?;
                }
                for sig in 1..32 {
                    if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                        libc::signal(sig, libc::SIG_DFL);
                    }
                }
                // Descriptors the agent inherited from Pacemaker must not
                // reach the program.
                if libc::syscall(libc::SYS_close_range, 3 as libc::c_uint, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC) != 0
                {
                    for fd in 3..4096 {
                        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                    }
                }
                nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
                nix::sys::prctl::set_no_new_privs()?;
                if !privileged {
                    return Ok(());
                }
                // The bounding set first (needs CAP_SETPCAP, still held):
                // nothing exec'd later can regain what leaves it.
                for cap in 0..64u32 {
                    if !caps.has(cap) && libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0 {
                        // EINVAL: past the kernel's last capability.
                        if nix::errno::Errno::last() == nix::errno::Errno::EINVAL {
                            break;
                        }
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some((uid, gid, groups)) = &ids {
                    become_user(*uid, *gid, groups)?;
                }
                let mut head = CapHeader { version: CAP_VERSION_3, pid: 0 };
                if libc::syscall(libc::SYS_capset, &mut head as *mut CapHeader, data.as_ptr()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for cap in (0..64u32).filter(|c| ids.is_some() && caps.has(*c)) {
                    if libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE, cap as libc::c_ulong, 0, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        Ok(())
    }

    /// Everything the hook needs, prepared before the fork.
    fn plan(&self) -> std::io::Result<Plan> {
        let procs = match &self.cgroup_procs {
            Some(p) => Some(cstring(p)?),
            None => None,
        };
        let ids = self.user.as_ref().filter(|u| !u.is_root()).map(|u| {
            let groups = u.groups.iter().map(|g| Gid::from_raw(*g)).collect();
            (Uid::from_raw(u.uid), Gid::from_raw(u.gid), groups)
        });
        // A capability the agent itself lacks (a container's bounding set)
        // cannot be handed on: asking capset for it fails the start.
        let caps = Caps(self.caps.0 & held().0);
        let (low, high) = (caps.0 as u32, (caps.0 >> 32) as u32);
        let data = [
            CapData { effective: low, permitted: low, inheritable: low },
            CapData { effective: high, permitted: high, inheritable: high },
        ];
        // Not root (a unit test, `haven` run by a user): nothing to drop
        // but what no_new_privs takes.
        let privileged = nix::unistd::geteuid().is_root();
        Ok(Plan { procs, new_session: self.new_session, privileged, ids, caps, data })
    }
}

/// What [`Launch::install`]'s hook works from.
struct Plan {
    procs: Option<CString>,
    new_session: bool,
    privileged: bool,
    ids: Option<(Uid, Gid, Vec<Gid>)>,
    caps: Caps,
    data: [CapData; 2],
}

/// Switch to the user, keeping the permitted set across setuid so the
/// named capabilities can be handed on as ambient ones. (In the child:
/// nix's wrappers here allocate nothing.)
fn become_user(uid: Uid, gid: Gid, groups: &[Gid]) -> nix::Result<()> {
    nix::sys::prctl::set_keepcaps(true)?;
    nix::unistd::setgroups(groups)?;
    nix::unistd::setgid(gid)?;
    nix::unistd::setuid(uid)
}

/// The agent's own permitted set (CapPrm in /proc/self/status).
pub fn held() -> Caps {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapPrm:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .map_or(Caps(0), Caps)
}

fn cstring(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
}

/// The minimal environment for a program run on the configuration's
/// behalf: a fixed PATH, the user's identity and C locale, nothing of the
/// agent's own environment.
pub fn minimal_env(cmd: &mut Command, user: Option<&User>) {
    cmd.env_clear();
    cmd.env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let (name, home) = match user {
        Some(u) => (u.name.clone(), u.home.clone()),
        None => ("root".to_string(), "/root".to_string()),
    };
    cmd.env("HOME", home).env("USER", &name).env("LOGNAME", &name).env("LC_ALL", "C");
}

/// What a configuration's command may print that is kept (stdout and
/// stderr each); the rest is read and dropped, so a chatty command can
/// neither fill memory nor block on a full pipe.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// Run a command a configuration names (a director's external check,
/// callback or fallbackcommand) as `user`, looked up now: no_new_privs,
/// no capabilities, a minimal environment, its own session (the deadline
/// kills everything it started), output bounded by [`OUTPUT_LIMIT`].
pub fn run_command(argv: &[&str], user: &str, deadline: &Deadline) -> Result<Finished, ExecError> {
    let (program, args) = argv.split_first().ok_or_else(|| ExecError::NotFound { program: String::new() })?;
    let path = crate::exec::which(program).ok_or_else(|| ExecError::NotFound { program: program.to_string() })?;
    let spawn_err = |source: std::io::Error| ExecError::Spawn { program: program.to_string(), source };
    let who = lookup_user(user)
        .ok_or_else(|| spawn_err(std::io::Error::other(format!("user {user} does not exist on this node"))))?;
    let mut cmd = Command::new(&path);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).current_dir("/");
    minimal_env(&mut cmd, Some(&who));
    Launch { cgroup_procs: None, new_session: true, user: Some(who), caps: Caps::default() }
        .install(&mut cmd)
        .map_err(spawn_err)?;
    let mut child = cmd.spawn().map_err(spawn_err)?;
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let command = argv.join(" ");
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(source) => return Err(spawn_err(source)),
        }
        if deadline.expired() {
            // The whole session: what the command forked dies with it.
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
            let _ = child.kill();
            let until = Deadline::after(Duration::from_millis(500));
            while !until.expired() && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(10));
            }
            return Err(ExecError::Timeout { command, ms: deadline.budget().as_millis() });
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // A daemon the command left behind may hold the pipes open: wait for
    // the output only briefly.
    let take = |rx: mpsc::Receiver<String>| rx.recv_timeout(Duration::from_millis(200)).unwrap_or_default();
    let (stdout, stderr) = (take(out), take(err));
    use std::os::unix::process::ExitStatusExt;
    match status.code() {
        Some(0) => Ok(Finished { code: 0, stdout, stderr }),
        Some(code) => Err(ExecError::Failed { command, code, stderr: crate::exec::one_line(&stderr) }),
        None => Err(ExecError::Signalled { command, signal: status.signal().unwrap_or(0) }),
    }
}

/// Read a pipe to its end on a thread, keeping the first OUTPUT_LIMIT bytes.
fn drain(r: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(mut r) = r {
            let mut buf = [0u8; 8192];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
        let _ = tx.send(String::from_utf8_lossy(&kept).into_owned());
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_round_trip() {
        assert_eq!(Caps::number("net_bind_service"), Some(10));
        assert_eq!(Caps::number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(Caps::number("cap_checkpoint_restore"), Some(40));
        assert_eq!(Caps::number("all"), None);
        let c = Caps::default().with(10).with(7);
        assert_eq!(c.names(), "setuid,net_bind_service");
        assert_eq!(Caps::default().names(), "none");
    }

    #[test]
    fn users_resolve() {
        let root = lookup_user("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.is_root());
        assert!(lookup_user("no-such-user-haven").is_none());
    }
}
