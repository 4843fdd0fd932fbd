//! Whether a file may tell haven (running as root) what to run: sshd's
//! StrictModes for instance files, their `source` templates and
//! ldirectord.cf with commands in it. A file is trusted when it and every
//! directory above it, along the path as given and along the path its
//! symlinks resolve to, are owned by root and writable by nobody else. A
//! file that only one unprivileged user (and root) can change is
//! "delegated" to that user: the caller may accept it as long as it runs
//! nothing with more rights than that user has.

use crate::ocf::Status;
use nix::sys::stat::{lstat, FileStat, SFlag};
use std::path::{Component, Path, PathBuf};

/// Who besides root can change a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Nobody: root owns the file and every directory above it.
    Root,
    /// The user with this uid owns the file (and maybe directories above
    /// it); nobody else can write any of them.
    User(u32),
}

#[derive(Debug, thiserror::Error)]
#[error(
    "refusing {file}: {path} is {owner_mode}, so someone other than root can change what haven runs \
     (the file and every directory above it must be owned by root and not writable by group or others)"
)]
pub struct Untrusted {
    /// The file asked about.
    pub file: String,
    /// The path that fails the check (the file or a directory above it).
    pub path: String,
    /// "owned by uid 1000, mode 0777" or what else is wrong.
    pub owner_mode: String,
}

impl crate::error::OcfError for Untrusted {
    fn status(&self) -> Status {
        Status::ErrPerm
    }
}

/// The file and every directory above it along `path` as written, with
/// `..` and `.` left to the kernel (each prefix is looked up as is).
fn prefixes(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut cur = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir => cur.push("/"),
            other => cur.push(other.as_os_str()),
        }
        out.push(cur.clone());
    }
    out
}

fn owner_mode(st: &FileStat) -> String {
    crate::safe_file::describe(st)
}

fn is_symlink(st: &FileStat) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits()
}

/// Check `file` (an absolute path). Symlinks along the way are followed,
/// and both the directories holding them and their targets are checked.
pub fn check(file: &Path) -> Result<Trust, Untrusted> {
    let name = file.display().to_string();
    let refuse =
        |path: &Path, why: String| Untrusted { file: name.clone(), path: path.display().to_string(), owner_mode: why };
    if !file.is_absolute() {
        return Err(refuse(file, "a relative path".into()));
    }
    let real = std::fs::canonicalize(file).map_err(|e| refuse(file, format!("not resolvable ({e})")))?;
    let mut paths = prefixes(file);
    paths.extend(prefixes(&real));
    let mut others: Vec<(PathBuf, FileStat)> = Vec::new();
    for p in &paths {
        let st = lstat(p.as_path()).map_err(|e| refuse(p, format!("not readable ({e})")))?;
        // A symlink's own owner and mode mean nothing; the directory it is
        // in and what it points to are checked.
        if is_symlink(&st) {
            continue;
        }
        if st.st_uid != 0 || st.st_mode & 0o022 != 0 {
            others.push((p.clone(), st));
        }
    }
    let final_st = lstat(real.as_path()).map_err(|e| refuse(&real, format!("not readable ({e})")))?;
    if final_st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
        return Err(refuse(&real, "not a regular file".into()));
    }
    if others.is_empty() {
        return Ok(Trust::Root);
    }
    // Delegation: one unprivileged user owns the file itself and whatever
    // else is not root's, and nothing is writable by group or others.
    let owner = final_st.st_uid;
    let breaks = |st: &FileStat| st.st_mode & 0o022 != 0 || st.st_uid != owner || owner == 0;
    match others.iter().find(|(_, st)| breaks(st)) {
        None => Ok(Trust::User(owner)),
        Some((path, st)) => Err(refuse(path, owner_mode(st))),
    }
}

/// [`check`] for a file that must be root's: a delegated file is refused
/// too, naming its owner.
pub fn require_root(file: &Path) -> Result<(), Untrusted> {
    match check(file)? {
        Trust::Root => Ok(()),
        Trust::User(uid) => Err(Untrusted {
            file: file.display().to_string(),
            path: file.display().to_string(),
            owner_mode: format!("owned by uid {uid}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_files_are_roots_and_tmp_is_nobodys() {
        assert_eq!(check(Path::new("/etc/passwd")).unwrap(), Trust::Root);
        let dir = std::env::temp_dir().join(format!("haven-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("instance.toml");
        let _ = std::fs::remove_file(&link);
        // A symlink to a root-owned file, planted in a directory others can
        // write: the directory holding the link is what fails.
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        let e = check(&link).unwrap_err();
        assert_eq!(e.file, link.display().to_string());
        assert!(e.path == "/tmp" || e.path.starts_with(&dir.display().to_string()), "{e}");
        assert!(e.to_string().contains("mode"), "{e}");
        assert!(check(Path::new("relative/file")).is_err());
        assert!(check(Path::new("/etc")).unwrap_err().to_string().contains("not a regular file"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
