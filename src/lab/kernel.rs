//! The kernel the lab runs on: with IPVS and a kernel NFS server (the QEMU
//! guest of `script/vm`, or a full Debian kernel) the lab keeps a
//! description's LVS director on IPVS and its NFS server and exports under
//! Pacemaker; without them (this CI host) it uses the stand-ins of
//! `standin.rs`. Detected at `lab up` (`--kernel auto`) or chosen.

use super::error::LabError;
use crate::ocf::Deadline;
use std::time::Duration;

/// What `lab up --kernel` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Choice {
    /// Real when the kernel has IPVS and nfsd, stand-ins otherwise.
    #[default]
    Auto,
    /// Real, or refuse to start.
    Real,
    /// Stand-ins even where the kernel could do it.
    Standins,
}

/// What the lab does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kernel {
    #[default]
    Standins,
    /// IPVS for directors, kernel nfsd + resource-agents' nfsserver and
    /// exportfs for NFS.
    Real,
}

/// The ports a namespaced NFS server listens on. The guest's kernel nfsd of
/// a non-initial network namespace is not registered with rpcbind (its
/// kernel threads resolve rpcbind's socket in another root), so clients
/// name the ports instead of asking the portmapper.
pub const NFS_PORT: u16 = 2049;
pub const MOUNTD_PORT: u16 = 20048;

/// The options an NFSv3 client adds in the lab on a real kernel: the ports
/// above, over TCP, and no NLM locking (rpc.statd would need the portmapper
/// registration the kernel cannot make here).
pub fn nfs3_client_options() -> String {
    format!("proto=tcp,port={NFS_PORT},mountport={MOUNTD_PORT},mountproto=tcp,nolock")
}

/// The nodes' /etc/nfs.conf: the mountd port fixed (see MOUNTD_PORT).
pub fn nfs_conf() -> String {
    format!(
        "# Written by haven lab: nfs-utils' configuration of the lab's nodes.\n[general]\n\
         pipefs-directory=/run/rpc_pipefs\n[mountd]\nmanage-gids=y\nport={MOUNTD_PORT}\n[nfsd]\nthreads=4\n"
    )
}

/// The nodes' nfs-utils files, under the lab directory.
pub const FILES_SUBDIR: &str = "kernel";

/// Where every node has an exportable placeholder directory.
pub const PLACEHOLDER: &str = "/run/haven-lab/nfs-placeholder";

/// The nodes' /etc/exports. Debian's nfs-kernel-server init script (what
/// ocf:heartbeat:nfsserver runs without systemd) starts nfsd only when
/// /etc/exports lists a directory; with Pacemaker's exportfs owning the
/// real exports, a read-only placeholder for localhost is that directory.
pub fn exports_file() -> String {
    format!(
        "# Written by haven lab: the real exports come from ocf:heartbeat:exportfs.\n\
         {PLACEHOLDER} 127.0.0.1(ro,fsid=4242,no_subtree_check)\n"
    )
}

/// A node's address on the description's private network (the one the
/// lab has no link of its own for): same link, second subnet.
pub fn private_addr(index: u32) -> String {
    format!("203.0.113.{}", 10 + index)
}

fn try_modprobe(module: &str) {
    // A kernel without the module, or no modprobe: the check below says so.
    let _ = crate::exec::run_ok(&["modprobe", module], &Deadline::after(Duration::from_secs(20)));
}

fn has_ipvs() -> bool {
    std::path::Path::new("/proc/net/ip_vs").exists()
}

fn has_nfsd() -> bool {
    std::fs::read_to_string("/proc/filesystems").is_ok_and(|f| f.lines().any(|l| l.trim_end().ends_with("\tnfsd")))
}

/// Tools the real path runs (inside the nodes).
const TOOLS: &[&str] = &["rpcbind", "rpc.nfsd", "rpc.mountd", "exportfs", "mount.nfs"];

/// Decide (and prepare: load ip_vs, nfsd and the NFS client) for `choice`.
pub fn detect(choice: Choice) -> Result<Kernel, LabError> {
    if choice == Choice::Standins {
        return Ok(Kernel::Standins);
    }
    // loop: the lab's volumes (a guest kernel has it as a module).
    for m in ["ip_vs", "nfsd", "nfs", "nfsv3", "loop"] {
        try_modprobe(m);
    }
    let missing: Vec<&str> = [("IPVS (/proc/net/ip_vs)", has_ipvs()), ("nfsd (/proc/filesystems)", has_nfsd())]
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(what, _)| what)
        .chain(TOOLS.iter().copied().filter(|t| crate::exec::which(t).is_none()))
        .collect();
    match (choice, missing.is_empty()) {
        (_, true) => Ok(Kernel::Real),
        (Choice::Real, false) => {
            Err(LabError::Refused(format!("--kernel real: this machine lacks {}", missing.join(", "))))
        }
        _ => Ok(Kernel::Standins),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standins_need_no_probe() {
        assert_eq!(detect(Choice::Standins).expect("standins"), Kernel::Standins);
    }

    #[test]
    fn the_lab_files_name_the_fixed_ports() {
        assert!(nfs_conf().contains("port=20048"));
        assert!(nfs3_client_options().contains("mountport=20048") && nfs3_client_options().contains("nolock"));
        assert!(exports_file().lines().any(|l| l.starts_with(PLACEHOLDER)));
        assert_eq!(private_addr(2), "203.0.113.12");
    }
}
