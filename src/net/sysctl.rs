//! Per-interface network sysctls under /proc/sys/net (of the current network
//! namespace), read and written as files: no `sysctl` process.

use super::NetError;
use std::path::PathBuf;

fn path(family: &str, iface: &str, key: &str) -> PathBuf {
    PathBuf::from(format!("/proc/sys/net/{family}/conf/{iface}/{key}"))
}

pub fn read_ipv4_conf(iface: &str, key: &str) -> Result<String, NetError> {
    let p = path("ipv4", iface, key);
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(|e| NetError::io("read", p.display().to_string(), e))
}

pub fn write_ipv4_conf(iface: &str, key: &str, value: &str) -> Result<(), NetError> {
    let p = path("ipv4", iface, key);
    std::fs::write(&p, value).map_err(|e| NetError::io("write", p.display().to_string(), e))
}

/// Drop cached routes (what `ip route flush cache` does for both families).
pub fn flush_route_cache() -> Result<(), NetError> {
    for (p, v) in [("/proc/sys/net/ipv4/route/flush", "-1"), ("/proc/sys/net/ipv6/route/flush", "-1")] {
        match std::fs::write(p, v) {
            Ok(()) => {}
            // IPv6 may be disabled in this kernel or namespace.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(NetError::io("write", p, e)),
        }
    }
    Ok(())
}
