//! What haven knows about filesystem types: which are network or cluster
//! filesystems (safe to mount on several nodes), which sit on a block
//! device, which need a mount helper, which get fsck'd automatically.

/// Network filesystems: many clients by design; unmounted with -f.
pub const NETWORK: &[&str] = &["nfs", "nfs4", "cifs", "smb3", "smbfs", "glusterfs", "ceph", "9p", "afs"];
/// Shared-disk cluster filesystems: many nodes on one device, with a DLM.
pub const CLUSTER: &[&str] = &["gfs2", "ocfs2"];
/// Filesystems on a block device that only one node may mount.
pub const LOCAL_BLOCK: &[&str] = &[
    "ext2", "ext3", "ext4", "ext4dev", "xfs", "btrfs", "jfs", "reiserfs", "vfat", "msdos", "exfat", "f2fs", "ntfs",
    "ntfs3", "udf", "iso9660", "squashfs", "nilfs2", "hfsplus", "minix",
];
/// Filesystems without a device (each node has its own instance).
pub const VIRTUAL: &[&str] = &["tmpfs", "ramfs", "overlay", "none", "devtmpfs", "proc", "sysfs"];

/// Mount helpers without which mount(8) cannot mount the type.
pub fn helper(fstype: &str) -> Option<&'static str> {
    Some(match fstype {
        "nfs" | "nfs4" => "mount.nfs",
        "cifs" | "smb3" | "smbfs" => "mount.cifs",
        "ocfs2" => "mount.ocfs2",
        "glusterfs" => "mount.glusterfs",
        _ => return None,
    })
}

pub fn is_fuse(fstype: &str) -> bool {
    fstype == "fuse" || fstype == "fuseblk" || fstype.starts_with("fuse.")
}

pub fn is_network(fstype: &str) -> bool {
    NETWORK.contains(&fstype) || fstype == "fuse.glusterfs" || fstype == "fuse.sshfs"
}

/// Does every call on this filesystem get its answer from this node (no
/// server, daemon or lock manager that could stop answering)? Unknown types
/// are assumed not to.
pub fn answers_locally(fstype: &str) -> bool {
    LOCAL_BLOCK.contains(&fstype)
        || VIRTUAL.contains(&fstype)
        || matches!(fstype, "devpts" | "cgroup2" | "cgroup" | "mqueue" | "securityfs" | "nsfs")
}

pub fn has_block_device(fstype: &str) -> bool {
    LOCAL_BLOCK.contains(&fstype) || CLUSTER.contains(&fstype) || fstype == "fuseblk"
}

/// May several nodes mount it at once? (Virtual filesystems: each node
/// mounts its own, so a clone is harmless.)
pub fn clone_safe(fstype: &str) -> bool {
    is_network(fstype)
        || CLUSTER.contains(&fstype)
        || VIRTUAL.contains(&fstype)
        || is_fuse(fstype) && !has_block_device(fstype)
}

/// Types run_fsck=auto checks: journalling and network filesystems never
/// need it at mount time (the same list Filesystem uses, plus btrfs/f2fs
/// whose fsck must not run unattended).
pub fn fsck_by_default(fstype: &str) -> bool {
    has_block_device(fstype)
        && !matches!(
            fstype,
            "ext3"
                | "ext4"
                | "ext4dev"
                | "xfs"
                | "btrfs"
                | "jfs"
                | "reiserfs"
                | "ocfs2"
                | "gfs2"
                | "vfat"
                | "f2fs"
                | "nilfs2"
        )
}

/// The name /proc/filesystems uses for a type.
pub fn kernel_name(fstype: &str) -> &str {
    if is_fuse(fstype) {
        if fstype == "fuseblk" {
            "fuseblk"
        } else {
            "fuse"
        }
    } else {
        fstype
    }
}

/// Every type the kernel knows right now.
pub fn kernel_types() -> Vec<String> {
    std::fs::read_to_string("/proc/filesystems")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect()
}

/// A name haven recognises as a filesystem type at all.
pub fn is_known(fstype: &str, kernel: &[String]) -> bool {
    NETWORK.contains(&fstype)
        || CLUSTER.contains(&fstype)
        || LOCAL_BLOCK.contains(&fstype)
        || VIRTUAL.contains(&fstype)
        || is_fuse(fstype)
        || kernel.iter().any(|k| k == fstype)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_safety() {
        for t in ["nfs", "nfs4", "cifs", "gfs2", "ocfs2", "glusterfs", "tmpfs", "none", "fuse.bindfs"] {
            assert!(clone_safe(t), "{t}");
        }
        for t in ["ext4", "xfs", "btrfs", "ext3", "vfat"] {
            assert!(!clone_safe(t), "{t}");
        }
    }

    #[test]
    fn fsck_defaults() {
        assert!(fsck_by_default("ext2"));
        assert!(!fsck_by_default("ext4"));
        assert!(!fsck_by_default("nfs"));
        assert!(!fsck_by_default("tmpfs"));
    }
}
