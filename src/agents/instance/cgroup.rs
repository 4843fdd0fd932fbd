//! The instance's cgroups (v2): <cgroup2 mount>/haven/instance/<name>/ with
//! one child per service. The cgroup, not a pid, is what stop trusts: every
//! process a service forks stays in it, whatever session it escapes to, and
//! cgroup.kill ends them all at once. Reading cgroup files forks nothing.

use super::error::InstanceError;
use crate::mount::MountTable;
use crate::ocf::Deadline;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where haven's cgroups live, below the cgroup2 mount.
pub const PARENT: &str = "haven/instance";

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InstanceError {
    let path = path.display().to_string();
    move |source| InstanceError::Cgroup { op, path, source }
}

/// The cgroup2 mount point: /sys/fs/cgroup on unified systems,
/// /sys/fs/cgroup/unified on hybrid ones, else the first one mounted.
pub fn mount_point() -> Result<PathBuf, InstanceError> {
    let table = MountTable::read().map_err(|e| InstanceError::NoCgroup { why: format!("reading mountinfo: {e}") })?;
    let mounts: Vec<&str> =
        table.entries.iter().filter(|e| e.fstype == "cgroup2").map(|e| e.mount_point.as_str()).collect();
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .find(|p| mounts.contains(p))
        .copied()
        .or_else(|| mounts.first().copied())
        .map(PathBuf::from)
        .ok_or_else(|| InstanceError::NoCgroup { why: "no cgroup2 filesystem is mounted".into() })
}

/// `sig` to `pid` (pids read from our own cgroups, or a main process
/// verified by pid and start time), then SIGCONT: a stopped process cannot
/// act on the signal.
pub fn send(pid: i32, sig: i32) {
    use nix::sys::signal::{kill, Signal};
    let target = nix::unistd::Pid::from_raw(pid);
    if pid <= 0 {
        return;
    }
    if let Ok(s) = Signal::try_from(sig) {
        let _ = kill(target, s);
        if s != Signal::SIGKILL {
            let _ = kill(target, Signal::SIGCONT);
        }
    }
}

/// The cgroup of one instance (and its services below it).
#[derive(Clone, Debug)]
pub struct Group {
    pub path: PathBuf,
}

impl Group {
    /// The instance's cgroup, located but not created.
    pub fn of_instance(name: &str) -> Result<Group, InstanceError> {
        Ok(Group { path: mount_point()?.join(PARENT).join(name) })
    }

    pub fn at(path: impl Into<PathBuf>) -> Group {
        Group { path: path.into() }
    }

    pub fn child(&self, name: &str) -> Group {
        Group { path: self.path.join(name) }
    }

    pub fn exists(&self) -> bool {
        self.path.join("cgroup.procs").exists()
    }

    /// Create it and its parents; an unwritable cgroup tree says why.
    pub fn create(&self) -> Result<(), InstanceError> {
        std::fs::create_dir_all(&self.path).map_err(|e| match e.kind() {
            ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => InstanceError::NoCgroup {
                why: format!("cannot create {} ({e}): the cgroup tree is not writable here", self.path.display()),
            },
            _ => io("create", &self.path)(e),
        })
    }

    /// Apply a service's limits: enable each controller from the cgroup2
    /// root down to the parent, then write the limit. A limit the node's
    /// cgroup2 tree cannot enforce (controller not in cgroup.controllers)
    /// is refused, never silently dropped.
    pub fn limit(&self, limits: &super::file::Limits) -> Result<(), InstanceError> {
        let files = limits.files();
        if files.is_empty() {
            return Ok(());
        }
        let root = mount_point()?;
        for (controller, file, value) in files {
            let available = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            if !available.split_whitespace().any(|c| c == controller) {
                return Err(InstanceError::NoCgroup {
                    why: format!(
                        "{file} = {value} needs the {controller} controller, which the cgroup2 tree at {} does not have \
                         (cgroup.controllers: {})",
                        root.display(),
                        available.trim()
                    ),
                });
            }
            let Ok(rel) = self.path.strip_prefix(&root) else { continue };
            let mut cur = root.clone();
            for c in rel.parent().into_iter().flat_map(Path::components) {
                let ctl = cur.join("cgroup.subtree_control");
                let on = std::fs::read_to_string(&ctl).unwrap_or_default();
                if !on.split_whitespace().any(|c| c == controller) {
                    std::fs::write(&ctl, format!("+{controller}")).map_err(io("enable controllers in", &ctl))?;
                }
                cur.push(c);
            }
            let ctl = cur.join("cgroup.subtree_control");
            let on = std::fs::read_to_string(&ctl).unwrap_or_default();
            if !on.split_whitespace().any(|c| c == controller) {
                std::fs::write(&ctl, format!("+{controller}")).map_err(io("enable controllers in", &ctl))?;
            }
            let target = self.path.join(file);
            std::fs::write(&target, &value).map_err(io("set", &target))?;
        }
        Ok(())
    }

    /// The path a process writes "0" to in order to join this cgroup.
    pub fn procs_file(&self) -> PathBuf {
        self.path.join("cgroup.procs")
    }

    /// Processes in this cgroup only (not its children).
    pub fn procs(&self) -> Vec<i32> {
        std::fs::read_to_string(self.procs_file())
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Processes in this cgroup and every cgroup below it.
    pub fn all_procs(&self) -> Vec<i32> {
        let mut out = self.procs();
        for c in self.children() {
            out.extend(c.all_procs());
        }
        out
    }

    /// Whether any live process is in it or below it (cgroup.events).
    pub fn populated(&self) -> bool {
        match std::fs::read_to_string(self.path.join("cgroup.events")) {
            Ok(t) => t.lines().any(|l| l.trim() == "populated 1"),
            Err(_) => !self.all_procs().is_empty(),
        }
    }

    pub fn children(&self) -> Vec<Group> {
        let Ok(rd) = std::fs::read_dir(&self.path) else { return Vec::new() };
        let mut v: Vec<Group> = rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| Group { path: e.path() })
            .collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    }

    /// Send `sig` to every process in it and below it.
    pub fn signal_all(&self, sig: i32) -> usize {
        let pids = self.all_procs();
        for pid in &pids {
            send(*pid, sig);
        }
        pids.len()
    }

    /// SIGKILL everything in it and below it: cgroup.kill (Linux 5.14), or
    /// freeze, kill each process, thaw on older kernels, so a forking
    /// process cannot outrun the loop.
    pub fn kill(&self) {
        if std::fs::write(self.path.join("cgroup.kill"), "1").is_ok() {
            return;
        }
        let frozen = std::fs::write(self.path.join("cgroup.freeze"), "1").is_ok();
        self.signal_all(libc::SIGKILL);
        if frozen {
            let _ = std::fs::write(self.path.join("cgroup.freeze"), "0");
        }
    }

    /// Wait until no process is left, or the deadline.
    pub fn wait_empty(&self, deadline: &Deadline) -> bool {
        loop {
            if !self.populated() {
                return true;
            }
            if deadline.expired() {
                return false;
            }
            deadline.sleep(Duration::from_millis(10));
        }
    }

    /// Kill everything left and remove the cgroup and its children. Fails
    /// when processes survive until the deadline.
    pub fn destroy(&self, deadline: &Deadline) -> Result<(), Vec<i32>> {
        if !self.path.exists() {
            return Ok(());
        }
        if self.populated() {
            self.kill();
            if !self.wait_empty(deadline) {
                return Err(self.all_procs());
            }
        }
        self.remove_tree(deadline);
        Ok(())
    }

    /// rmdir children first, then itself (a cgroup only goes once empty;
    /// the kernel may need a moment after the last process exits).
    fn remove_tree(&self, deadline: &Deadline) {
        for c in self.children() {
            c.remove_tree(deadline);
        }
        loop {
            match std::fs::remove_dir(&self.path) {
                Ok(()) => return,
                Err(e) if e.kind() == ErrorKind::NotFound => return,
                Err(_) if !deadline.expired() => {
                    deadline.sleep(Duration::from_millis(10));
                }
                Err(_) => return,
            }
        }
    }
}
