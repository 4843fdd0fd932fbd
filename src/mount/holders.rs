//! The processes that keep a mount busy, found by scanning /proc: open files
//! (by the mount id in /proc/PID/fdinfo, which tells a bind mount from the
//! mount it was made of), cwd, root, exe and memory maps (by path, resolved
//! against the mount table). Never by process name, never through the
//! device, never by touching the filesystem itself (no stat of the files).

use super::MountTable;
use std::collections::BTreeSet;
use std::fs;

/// Why a process holds a mount, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: i32,
    pub comm: String,
    pub how: &'static str,
}

fn read_link(path: &str) -> Option<String> {
    fs::read_link(path).ok().map(|p| {
        let s = p.to_string_lossy().into_owned();
        s.strip_suffix(" (deleted)").map(str::to_string).unwrap_or(s)
    })
}

/// Processes holding any of the mounts `ids`, in this process's mount
/// namespace (processes in other namespaces hold their own copies of a
/// mount, which never keep ours busy). This process and PID 1 are never
/// reported.
pub fn find(ids: &BTreeSet<u32>, table: &MountTable) -> Vec<Holder> {
    let me = std::process::id() as i32;
    let my_ns = read_link("/proc/self/ns/mnt");
    let on_ours = |path: &str| path.starts_with('/') && table.mount_of(path).is_some_and(|m| ids.contains(&m.id));
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if pid == me || pid == 1 {
            continue;
        }
        let base = format!("/proc/{pid}");
        // Kernel threads and processes in other mount namespaces.
        if read_link(&format!("{base}/ns/mnt")) != my_ns || my_ns.is_none() {
            continue;
        }
        let how = holds(&base, ids, &on_ours);
        if let Some(how) = how {
            let comm = fs::read_to_string(format!("{base}/comm")).unwrap_or_default().trim().to_string();
            out.push(Holder { pid, comm, how });
        }
    }
    out
}

fn holds(base: &str, ids: &BTreeSet<u32>, on_ours: &dyn Fn(&str) -> bool) -> Option<&'static str> {
    for (link, how) in [("cwd", "working directory"), ("root", "root directory"), ("exe", "executable")] {
        if read_link(&format!("{base}/{link}")).is_some_and(|p| on_ours(&p)) {
            return Some(how);
        }
    }
    if let Ok(fds) = fs::read_dir(format!("{base}/fdinfo")) {
        for fd in fds.flatten() {
            let Ok(info) = fs::read_to_string(fd.path()) else { continue };
            let mnt = info.lines().find_map(|l| l.strip_prefix("mnt_id:")).and_then(|v| v.trim().parse::<u32>().ok());
            if mnt.is_some_and(|m| ids.contains(&m)) {
                return Some("open file");
            }
        }
    }
    if let Ok(maps) = fs::read_to_string(format!("{base}/maps")) {
        for line in maps.lines() {
            // address perms offset dev inode pathname
            let path = line.splitn(6, char::is_whitespace).nth(5).map(str::trim_start);
            if let Some(p) = path {
                let p = p.strip_suffix(" (deleted)").unwrap_or(p);
                if on_ours(p) {
                    return Some("memory map");
                }
            }
        }
    }
    None
}

/// Send `signal` to each holder; returns how many signals were delivered.
pub fn signal(holders: &[Holder], signal: i32) -> usize {
    holders
        .iter()
        // A pid that exited meanwhile gives ESRCH, which is harmless.
        .filter(|h| crate::host::kill(h.pid, signal))
        .count()
}

/// Signal names and numbers accepted in term_signals/kill_signals.
pub fn signal_number(name: &str) -> Option<i32> {
    let n = name.trim().trim_start_matches("SIG").to_ascii_uppercase();
    if let Ok(num) = n.parse::<i32>() {
        // The standard signals (what nix's kill can send), not realtime ones.
        return nix::sys::signal::Signal::try_from(num).is_ok().then_some(num);
    }
    Some(match n.as_str() {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        _ => return None,
    })
}

/// "TERM" for 15, for log lines.
pub fn signal_name(n: i32) -> String {
    let known = [
        (libc::SIGHUP, "HUP"),
        (libc::SIGINT, "INT"),
        (libc::SIGQUIT, "QUIT"),
        (libc::SIGKILL, "KILL"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGUSR2, "USR2"),
        (libc::SIGTERM, "TERM"),
        (libc::SIGCONT, "CONT"),
        (libc::SIGSTOP, "STOP"),
    ];
    known.iter().find(|(k, _)| *k == n).map_or_else(|| n.to_string(), |(_, name)| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(signal_number("TERM"), Some(15));
        assert_eq!(signal_number("SIGKILL"), Some(9));
        assert_eq!(signal_number("hup"), Some(1));
        assert_eq!(signal_number("9"), Some(9));
        assert_eq!(signal_number("65"), None);
        assert_eq!(signal_number("40"), None);
        assert_eq!(signal_number("TERM;reboot"), None);
    }

    #[test]
    fn finds_this_test_processs_cwd_holder_only_when_ours() {
        // The test process itself is skipped, so nothing of ours is found
        // on an id that no mount has.
        let table = MountTable::read().unwrap();
        let ids: BTreeSet<u32> = [u32::MAX].into_iter().collect();
        assert!(find(&ids, &table).is_empty());
    }
}
