//! Processes of the lab: whether one is alive (a zombie counts as gone:
//! PID 1 may reap late), and every process living in given namespaces.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

pub use crate::host::alive;

/// SIGKILL to a lab process (one found in the lab's namespaces or recorded
/// by the lab); gone already is fine.
fn sigkill(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
}

/// The namespace inode a handle (bind-mounted nsfs file, /run/netns/X)
/// stands for.
pub fn ns_inode(handle: &Path) -> Option<u64> {
    std::fs::metadata(handle).ok().map(|m| m.ino())
}

fn proc_ns_inode(pid: &str, kind: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/{kind}")).ok().map(|m| m.ino())
}

/// Live processes whose network or mount namespace is one of `inodes`.
pub fn in_namespaces(inodes: &HashSet<u64>) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let me = std::process::id() as i32;
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            let p = pid.to_string();
            ["net", "mnt", "uts"].iter().any(|k| proc_ns_inode(&p, k).is_some_and(|i| inodes.contains(&i)))
        })
        .filter(|&pid| alive(pid))
        .collect()
}

/// SIGKILL every process in the namespaces until none is left (new ones
/// may be forked while we kill). Returns how many were left at the end.
pub fn kill_all_in(inodes: &HashSet<u64>, limit: Duration) -> usize {
    let deadline = crate::ocf::Deadline::after(limit);
    loop {
        let pids = in_namespaces(inodes);
        if pids.is_empty() || deadline.expired() {
            return pids.len();
        }
        for pid in pids {
            sigkill(pid);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` still runs `program` (its comm: the basename, at most
/// 15 bytes). A recorded pid may have been reused since (the state file
/// outlives reboots): a process running something else is not ours.
fn runs(pid: i32, program: &str) -> bool {
    let base = program.rsplit('/').next().unwrap_or(program);
    let want: String = base.chars().take(15).collect();
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == want)
}

/// SIGKILL one process we started (`program`, checked by its comm) and
/// wait (bounded) until it is gone. A pid now running something else is
/// left alone and counts as gone.
pub fn kill_pid(pid: i32, program: &str, limit: Duration) -> bool {
    if !alive(pid) || !runs(pid, program) {
        return true;
    }
    sigkill(pid);
    let deadline = crate::ocf::Deadline::after(limit);
    while alive(pid) && !deadline.expired() {
        std::thread::sleep(Duration::from_millis(10));
    }
    !alive(pid)
}
