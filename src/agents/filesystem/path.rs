//! Mount point paths as the kernel's mount table spells them (symlinks in
//! the configured directory resolved, even before the directory exists),
//! and whether resolving a path stays on filesystems that cannot hang.

use crate::mount::MountTable;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

/// More symlinks than the kernel follows (MAXSYMLINKS) in one resolution.
const MAX_LINKS: usize = 40;

/// `path` with its longest existing ancestor canonicalized and the missing
/// rest appended as given (realpath -m for paths without `.`/`..`): the
/// mount table will show the directory start creates under that name.
pub fn canonical(path: &Path) -> io::Result<PathBuf> {
    let mut missing = Vec::new();
    let mut at = path;
    loop {
        match std::fs::canonicalize(at) {
            Ok(real) => return Ok(missing.iter().rev().fold(real, |p, name| p.join(name))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (at.parent(), at.file_name()) else { return Err(e) };
                missing.push(name.to_os_string());
                at = parent;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Does resolving `path` (and stat of what it names) touch only mounts
/// whose type `local` accepts? Walks the path as the kernel would, one
/// component at a time, following symlinks; each step is looked up in the
/// mount table before it is made (lstat, readlink), so the walk itself never
/// calls into a filesystem that could hang. A name missing on a local
/// filesystem is local too (the stat fails at once). Relative or
/// non-UTF-8 paths, and symlink loops, are not.
pub fn resolves_locally(path: &str, table: &MountTable, local: impl Fn(&str) -> bool) -> bool {
    let on_local = |p: &Path| p.to_str().and_then(|s| table.mount_of(s)).is_some_and(|m| local(&m.fstype));
    let mut at = PathBuf::from("/");
    if !path.starts_with('/') || !on_local(&at) {
        return false;
    }
    // Components still to resolve, the next one last.
    let mut todo: Vec<OsString> = Vec::new();
    push_components(&mut todo, Path::new(path));
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == ".." {
            at.pop(); // `at` holds no symlink: its lexical parent is its parent
            continue;
        }
        let next = at.join(&name);
        // Both the directory searched (`at`) and the mount that `next` may
        // be the root of must answer locally.
        if !on_local(&next) {
            return false;
        }
        let Ok(meta) = std::fs::symlink_metadata(&next) else { return true };
        if !meta.file_type().is_symlink() {
            at = next;
            continue;
        }
        links += 1;
        let Ok(target) = std::fs::read_link(&next) else { return false };
        if links > MAX_LINKS {
            return false;
        }
        if target.is_absolute() {
            at = PathBuf::from("/");
        }
        push_components(&mut todo, &target);
    }
    true
}

/// Push `p`'s names (and `..`) so that the first one is popped first.
fn push_components(todo: &mut Vec<OsString>, p: &Path) {
    let names = p.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        _ => None,
    });
    let names: Vec<OsString> = names.collect();
    todo.extend(names.into_iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlinked_parent_is_resolved_for_existing_and_missing_directories() {
        let base = std::env::temp_dir().join(format!("haven-canonical-{}", std::process::id()));
        let real = base.join("real");
        std::fs::create_dir_all(real.join("there")).unwrap();
        std::os::unix::fs::symlink(&real, base.join("link")).unwrap();
        let real = std::fs::canonicalize(&real).unwrap();
        assert_eq!(canonical(&base.join("link/there")).unwrap(), real.join("there"));
        assert_eq!(canonical(&base.join("link/not/yet")).unwrap(), real.join("not/yet"));
        assert_eq!(canonical(&base.join("link/")).unwrap(), real);
        assert_eq!(canonical(&real.join("plain")).unwrap(), real.join("plain"));
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// A mount table (mountinfo lines) with the given (mount point, type).
    fn table(mounts: &[(&str, &str)]) -> MountTable {
        let lines: Vec<String> = mounts
            .iter()
            .enumerate()
            .map(|(i, (mp, t))| format!("{} 1 0:{} / {mp} rw shared:1 - {t} src rw", i + 10, i + 10))
            .collect();
        MountTable::parse(&lines.join("\n"))
    }

    fn local(fstype: &str) -> bool {
        crate::agents::filesystem::kinds::answers_locally(fstype)
    }

    #[test]
    fn a_device_on_local_mounts_is_local_and_a_network_mount_on_the_way_is_not() {
        let t = table(&[("/", "ext4"), ("/dev", "devtmpfs")]);
        assert!(resolves_locally("/dev/null", &t, local));
        assert!(resolves_locally("/dev/haven-no-such-device", &t, local), "missing on a local fs: fails at once");
        assert!(resolves_locally("/dev/../dev/./null", &t, local));
        // The device path crosses an NFS mount, or is one.
        let t = table(&[("/", "ext4"), ("/dev", "nfs4")]);
        assert!(!resolves_locally("/dev/null", &t, local));
        assert!(!resolves_locally("/dev", &t, local));
        // FUSE, cluster and unknown filesystems may hang too; so may the root.
        for fstype in ["fuse.sshfs", "ocfs2", "gfs2", "autofs", "haven-unknown"] {
            assert!(!resolves_locally("/dev/null", &table(&[("/", "ext4"), ("/dev", fstype)]), local), "{fstype}");
        }
        assert!(!resolves_locally("/dev/null", &table(&[("/", "nfs"), ("/dev", "devtmpfs")]), local));
        assert!(!resolves_locally("dev/null", &table(&[("/", "ext4")]), local), "relative");
    }

    #[test]
    fn symlinks_are_followed_into_the_mount_they_point_to() {
        let base = std::env::temp_dir().join(format!("haven-resolves-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("nfs")).unwrap();
        std::fs::create_dir_all(base.join("local")).unwrap();
        std::os::unix::fs::symlink(base.join("nfs/disk.img"), base.join("local/abs")).unwrap();
        std::os::unix::fs::symlink("../nfs/disk.img", base.join("local/rel")).unwrap();
        std::os::unix::fs::symlink("../local/plain", base.join("local/to-local")).unwrap();
        std::os::unix::fs::symlink("loop", base.join("local/loop")).unwrap();
        let b = base.to_str().unwrap();
        // The test's directory pretends to hold an NFS mount.
        let nfs = format!("{b}/nfs");
        let t = table(&[("/", "ext4"), (&nfs, "nfs")]);
        assert!(!resolves_locally(&format!("{b}/local/abs"), &t, local), "absolute link into NFS");
        assert!(!resolves_locally(&format!("{b}/local/rel"), &t, local), "relative link into NFS");
        assert!(resolves_locally(&format!("{b}/local/to-local"), &t, local));
        assert!(!resolves_locally(&format!("{b}/local/loop"), &t, local), "a loop");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
