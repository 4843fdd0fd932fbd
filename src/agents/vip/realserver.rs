//! LVS-DR real-server ARP suppression: arp_ignore=1 and arp_announce=2 on
//! 'all' and the uplink while at least one real-server VIP is up, and the
//! values found before the first one restored after the last one stops.

use super::state::{self, Lock};
use super::VipError;
use crate::net::sysctl;
use std::path::Path;

pub const SETTINGS: [(&str, &str); 2] = [("arp_ignore", "1"), ("arp_announce", "2")];

fn interfaces(uplink: Option<&str>) -> Vec<&str> {
    let mut v = vec!["all"];
    if let Some(u) = uplink.filter(|u| *u != "all" && *u != "lo") {
        v.push(u);
    }
    v
}

/// Record `holder` and apply the settings, saving the current values first
/// when no other holder did.
pub fn acquire(dir: &Path, holder: &str, uplink: Option<&str>) -> Result<(), VipError> {
    let _lock = Lock::take(&dir.join("realserver.lock"))?;
    let saved_path = dir.join("realserver.saved");
    let mut saved = state::read(&saved_path)?.unwrap_or_default();
    for iface in interfaces(uplink) {
        for (key, value) in SETTINGS {
            let tag = format!("{iface} {key} ");
            if !saved.lines().any(|l| l.starts_with(&tag)) {
                let old = sysctl::read_ipv4_conf(iface, key)?;
                saved.push_str(&format!("{tag}{old}\n"));
            }
            sysctl::write_ipv4_conf(iface, key, value)?;
        }
    }
    state::write(&saved_path, &saved)?;
    let holders = dir.join("realserver.holders");
    std::fs::create_dir_all(&holders).map_err(|source| {
        VipError::State(crate::error::IoError::new("create", holders.display().to_string(), source))
    })?;
    state::write(&holders.join(state::file_key(holder)), "")
}

/// Drop `holder`; restore the saved values when it was the last one.
pub fn release(dir: &Path, holder: &str) -> Result<bool, VipError> {
    let _lock = Lock::take(&dir.join("realserver.lock"))?;
    let holders = dir.join("realserver.holders");
    state::remove(&holders.join(state::file_key(holder)))?;
    let others = std::fs::read_dir(&holders).map(|d| d.count()).unwrap_or(0);
    if others > 0 {
        return Ok(false);
    }
    let saved_path = dir.join("realserver.saved");
    if let Some(saved) = state::read(&saved_path)? {
        for line in saved.lines() {
            let mut f = line.split_whitespace();
            if let (Some(iface), Some(key), Some(value)) = (f.next(), f.next(), f.next()) {
                if SETTINGS.iter().any(|(k, _)| *k == key) {
                    match sysctl::write_ipv4_conf(iface, key, value) {
                        Ok(()) => {}
                        // The uplink may be gone; nothing left to restore there.
                        Err(e) if e.errno() == Some(libc::ENOENT) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        state::remove(&saved_path)?;
    }
    Ok(true)
}

/// Which settings are not in force, as "all.arp_ignore=0" items.
pub fn missing(uplink: Option<&str>) -> Result<Vec<String>, VipError> {
    let mut out = Vec::new();
    for iface in interfaces(uplink) {
        for (key, want) in SETTINGS {
            let have = sysctl::read_ipv4_conf(iface, key)?;
            if have != want {
                out.push(format!("{iface}.{key}={have}"));
            }
        }
    }
    Ok(out)
}
