//! Running external programs (mount, umount, fsck, modprobe): argv vectors
//! only, found on a fixed PATH, bounded by a deadline, stderr carried into
//! the error. Never a shell.

use crate::ocf::Deadline;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Where agents look for programs: Pacemaker's environment may have a
/// minimal PATH, and mount helpers live in /sbin.
const SEARCH_PATH: &[&str] = &["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{program} is not installed (no executable of that name in {})", SEARCH_PATH.join(":"))]
    NotFound { program: String },
    #[error("failed to run {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("{command} did not finish within {ms} ms and was killed")]
    Timeout { command: String, ms: u128 },
    #[error("{command} failed with exit code {code}: {stderr}")]
    Failed { command: String, code: i32, stderr: String },
    #[error("{command} was killed by signal {signal}")]
    Signalled { command: String, signal: i32 },
}

impl crate::error::OcfError for ExecError {
    fn status(&self) -> crate::ocf::Status {
        match self {
            ExecError::NotFound { .. } => crate::ocf::Status::ErrInstalled,
            _ => crate::ocf::Status::ErrGeneric,
        }
    }
}

/// Find an executable program by name on the search path (or accept an
/// absolute path), through the `which` crate: a file without the execute bit
/// is not a program, so it is reported as not installed (OCF_ERR_INSTALLED)
/// instead of failing at spawn (OCF_ERR_GENERIC).
pub fn which(program: &str) -> Option<PathBuf> {
    which::which_in_global(program, Some(SEARCH_PATH.join(":"))).ok()?.next()
}

/// What a finished program printed.
#[derive(Debug)]
pub struct Finished {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run `argv` until it exits or the deadline passes (then it is killed).
/// Returns its exit code and output whatever the code; see [`run_ok`].
pub fn run(argv: &[&str], deadline: &Deadline) -> Result<Finished, ExecError> {
    run_inner(argv, None, deadline)
}

/// [`run`] with `input` written to the program's standard input.
pub fn run_with_input(argv: &[&str], input: &[u8], deadline: &Deadline) -> Result<Finished, ExecError> {
    let f = run_inner(argv, Some(input), deadline)?;
    if f.code == 0 {
        Ok(f)
    } else {
        Err(ExecError::Failed { command: argv.join(" "), code: f.code, stderr: one_line(&f.stderr) })
    }
}

fn run_inner(argv: &[&str], input: Option<&[u8]>, deadline: &Deadline) -> Result<Finished, ExecError> {
    let (program, args) = argv.split_first().ok_or_else(|| ExecError::NotFound { program: String::new() })?;
    let path = which(program).ok_or_else(|| ExecError::NotFound { program: program.to_string() })?;
    let command = argv.join(" ");
    let mut child = Command::new(&path)
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C")
        .spawn()
        .map_err(|source| spawn_error(program, source))?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        use std::io::Write;
        let data = data.to_vec();
        // A writer thread: the program may not read all of it before exiting.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    // Drain both pipes in threads so a chatty program cannot block on a
    // full pipe while we wait for it.
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let mut buf = Vec::new();
                let _ = r.read_to_end(&mut buf);
                s = String::from_utf8_lossy(&buf).into_owned();
            }
            s
        })
    };
    let out = drain(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    // Poll quickly at first (mount, umount and nft finish in a few ms),
    // then back off.
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(source) => return Err(ExecError::Spawn { program: program.to_string(), source }),
        }
        if deadline.expired() {
            let _ = child.kill();
            // The child may be stuck in the kernel (a dead NFS server); give
            // it a moment to die, but do not wait past that.
            let until = Deadline::after(Duration::from_millis(500));
            while !until.expired() && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(10));
            }
            return Err(ExecError::Timeout { command, ms: deadline.budget().as_millis() });
        }
        let pause = if started.elapsed() < Duration::from_millis(50) { 1 } else { 5 };
        std::thread::sleep(Duration::from_millis(pause));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    use std::os::unix::process::ExitStatusExt;
    match status.code() {
        Some(code) => Ok(Finished { code, stdout, stderr }),
        None => Err(ExecError::Signalled { command, signal: status.signal().unwrap_or(0) }),
    }
}

/// A program that vanished or lost its execute bit between lookup and spawn
/// is not installed either.
fn spawn_error(program: &str, source: std::io::Error) -> ExecError {
    match source.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            ExecError::NotFound { program: program.to_string() }
        }
        _ => ExecError::Spawn { program: program.to_string(), source },
    }
}

/// Run `argv` and require exit code 0.
pub fn run_ok(argv: &[&str], deadline: &Deadline) -> Result<Finished, ExecError> {
    let f = run(argv, deadline)?;
    if f.code == 0 {
        Ok(f)
    } else {
        Err(ExecError::Failed { command: argv.join(" "), code: f.code, stderr: one_line(&f.stderr) })
    }
}

/// Collapse a program's stderr into one line for an exit reason.
pub fn one_line(s: &str) -> String {
    let joined = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
    if joined.len() > 400 {
        format!("{}...", &joined[..joined.char_indices().nth(400).map_or(joined.len(), |(i, _)| i)])
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_argv_and_reports_failure() {
        let d = Deadline::after(Duration::from_secs(5));
        let ok = run_ok(&["true"], &d).unwrap();
        assert_eq!(ok.code, 0);
        let e = run_ok(&["ls", "/nonexistent-haven-path"], &d).unwrap_err();
        assert!(matches!(e, ExecError::Failed { .. }));
        assert!(e.to_string().contains("nonexistent-haven-path"), "{e}");
        assert!(matches!(run(&["no-such-program-haven"], &d), Err(ExecError::NotFound { .. })));
    }

    #[test]
    fn a_program_without_the_execute_bit_is_not_installed() {
        use crate::error::OcfError;
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("haven-exec-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let prog = dir.join("not-executable");
        std::fs::write(&prog, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o644)).unwrap();
        let p = prog.to_str().unwrap();
        assert_eq!(which(p), None);
        let e = run(&[p], &Deadline::after(Duration::from_secs(5))).unwrap_err();
        assert!(matches!(e, ExecError::NotFound { .. }), "{e}");
        assert_eq!(e.status(), crate::ocf::Status::ErrInstalled);
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(which(p).as_deref(), Some(prog.as_path()));
        assert!(which("sh").is_some_and(|p| p.is_absolute()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn kills_at_the_deadline() {
        let d = Deadline::after(Duration::from_millis(200));
        let start = std::time::Instant::now();
        let e = run(&["sleep", "10"], &d).unwrap_err();
        assert!(matches!(e, ExecError::Timeout { .. }));
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn arguments_are_not_interpreted() {
        let d = Deadline::after(Duration::from_secs(5));
        let f = run_ok(&["echo", "$(id)", ";", "`id`"], &d).unwrap();
        assert_eq!(f.stdout.trim(), "$(id) ; `id`");
    }
}
