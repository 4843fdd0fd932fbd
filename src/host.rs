//! This host as every agent sees it (resource-agents' `ocf_pidfile_status`
//! and `uname -n`): whether a recorded pid still is the process that was
//! started, and the node's name, read from /proc and uname(2) without a fork.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// Start time (clock ticks since boot) and state letter of a process, from
/// /proc/<pid>/stat; None when there is no such process.
pub fn stat(pid: i32) -> Option<(u64, char)> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<(u64, char)> {
    // The command name may contain spaces and ')': fields resume after the
    // last ')'; they start at field 3 (state), starttime is field 22.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state))
}

/// Running and not a zombie (a zombie counts as gone: its parent, maybe
/// PID 1 of a namespace, may reap it late).
pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|(_, state)| state != 'Z' && state != 'X')
}

/// `pid` is alive and its command line holds every one of `args` (a pid
/// file's process is checked by what it runs, never by name alone: the pid
/// may have been reused).
pub fn runs_with(pid: i32, args: &[&str]) -> bool {
    if !alive(pid) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let have: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    // A zombie has an empty command line and does not count either.
    args.iter().all(|a| have.contains(&a.as_bytes()))
}

/// Send signal number `signal` to `pid`; true if it was delivered. Callers
/// check first that the pid is theirs ([`runs_with`]); an unknown signal
/// number or a pid that is gone is not delivered.
pub fn kill(pid: i32, signal: i32) -> bool {
    let Ok(sig) = nix::sys::signal::Signal::try_from(signal) else { return false };
    pid > 0 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).is_ok()
}

/// This node's name as the cluster knows it (`uname -n`, without a fork);
/// "localhost" if uname fails, which it does not on Linux.
pub fn node_name() -> String {
    match nix::sys::utsname::uname() {
        Ok(u) => lossy(u.nodename()),
        Err(_) => "localhost".into(),
    }
}

fn lossy(s: &OsStr) -> String {
    String::from_utf8_lossy(s.as_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_runs_its_own_command_line() {
        let me = std::process::id() as i32;
        assert!(alive(me));
        let arg0 = std::env::args().next().unwrap();
        assert!(runs_with(me, &[&arg0]));
        assert!(!runs_with(me, &[&arg0, "no-such-argument-haven"]));
        assert!(!alive(0) && !alive(-1) && !alive(i32::MAX));
        assert!(stat(me).is_some_and(|(start, _)| start > 0));
    }

    #[test]
    fn a_command_name_with_parentheses_and_spaces_parses() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 1000 10";
        assert_eq!(parse_stat(line), Some((12345, 'S')));
        assert_eq!(parse_stat("42 (x"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn the_node_name_is_the_kernel_hostname() {
        let want = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(node_name(), want.trim_end());
    }
}
