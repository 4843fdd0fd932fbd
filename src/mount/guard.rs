//! Filesystem calls that can block forever (stat, read, write on a dead NFS
//! server or a frozen FUSE daemon) run on a helper thread; the action waits
//! for it only until the deadline and then abandons it. A thread stuck in
//! such a call dies with the process (NFS and FUSE waits are killable).
//! No process is forked.

use crate::ocf::Deadline;
use std::sync::mpsc;

#[derive(Debug, thiserror::Error)]
#[error("{what} did not return before the deadline (the filesystem is not responding)")]
pub struct Hung {
    pub what: String,
}

impl crate::error::OcfError for Hung {}

/// Run `f` on a thread and wait for it until `deadline`.
pub fn bounded<T: Send + 'static>(
    what: impl Into<String>,
    deadline: &Deadline,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Hung> {
    let what = what.into();
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new().name("haven-fs-call".into()).spawn(move || {
        let _ = tx.send(f());
    });
    if spawned.is_err() {
        return Err(Hung { what: format!("{what} (could not start a thread)") });
    }
    rx.recv_timeout(deadline.remaining()).map_err(|_| Hung { what })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn returns_the_value_or_gives_up_in_time() {
        let d = Deadline::after(Duration::from_secs(2));
        assert_eq!(bounded("add", &d, || 1 + 1).unwrap(), 2);
        let short = Deadline::after(Duration::from_millis(100));
        let start = Instant::now();
        let e = bounded("a stuck call", &short, || std::thread::sleep(Duration::from_secs(5))).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(e.to_string().contains("a stuck call"));
    }
}
