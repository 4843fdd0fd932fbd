//! Entering a named network namespace (as created by `ip netns add`), so
//! that every later socket and /proc/sys/net access happens inside it.

use super::NetError;
use std::path::PathBuf;

/// Where `ip netns` keeps its namespace handles.
pub const NETNS_DIR: &str = "/run/netns";

/// A namespace parameter: a name under /run/netns or an absolute path
/// (e.g. /proc/PID/ns/net).
pub fn handle_path(spec: &str) -> PathBuf {
    if spec.starts_with('/') {
        PathBuf::from(spec)
    } else {
        PathBuf::from(NETNS_DIR).join(spec)
    }
}

pub fn exists(spec: &str) -> bool {
    handle_path(spec).exists()
}

/// Move this (single-threaded) process into the namespace.
pub fn enter(spec: &str) -> Result<(), NetError> {
    let p = handle_path(spec);
    let f = std::fs::File::open(&p).map_err(|e| NetError::io("open network namespace", p.display().to_string(), e))?;
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetError::io("enter network namespace", p.display().to_string(), e.into()))
}
