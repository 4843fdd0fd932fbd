//! Files an agent (running as root) writes or reads on a volume that other
//! users can write: the filesystem agent's status file, the instance
//! agent's check file, rendered configuration. Nothing here follows a
//! symlink below the directory the configuration named, trusts a directory
//! someone else owns, opens anything but a regular file, blocks on a FIFO
//! or reads without a size bound. Every operation works on directory file
//! descriptors (openat/mkdirat/unlinkat via nix), so a name swapped after a
//! check cannot redirect a write.

use crate::error::{IoError, OcfError};
use crate::ocf::Status;
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// How many times a write retries when a name reappears between its unlink
/// and its exclusive create (someone racing the agent).
const CREATE_TRIES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum SafeFileError {
    /// The path is not what the agent may use: a symlink, a FIFO, a
    /// directory owned by someone else, a file past its size bound.
    #[error("refusing {path}: {why}")]
    Refused { path: String, why: String },
    #[error(transparent)]
    Io(#[from] IoError),
}

impl OcfError for SafeFileError {
    /// A refusal is a permission problem (OCF_ERR_PERM): retrying the
    /// action will not change who wrote the volume.
    fn status(&self) -> Status {
        match self {
            SafeFileError::Refused { .. } => Status::ErrPerm,
            SafeFileError::Io(_) => Status::ErrGeneric,
        }
    }
}

impl SafeFileError {
    fn io(op: &'static str, path: &Path, e: impl Into<std::io::Error>) -> SafeFileError {
        SafeFileError::Io(IoError::new(op, path.display(), e.into()))
    }

    fn refused(path: &Path, why: impl Into<String>) -> SafeFileError {
        SafeFileError::Refused { path: path.display().to_string(), why: why.into() }
    }
}

/// "owned by uid 65534, mode 0777" for messages.
pub fn describe(st: &FileStat) -> String {
    format!("owned by uid {}, mode {:04o}", st.st_uid, st.st_mode & 0o7777)
}

fn kind(st: &FileStat) -> &'static str {
    match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFLNK => "a symlink",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFCHR | SFlag::S_IFBLK => "a device node",
        _ => "not a regular file",
    }
}

fn is(st: &FileStat, t: SFlag) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == t.bits()
}

/// One path component: no separators, not "." or "..", not empty.
fn component_ok(c: &str) -> bool {
    !c.is_empty() && c != "." && c != ".." && !c.contains('/') && !c.contains('\0')
}

/// An open directory the agent may write into.
#[derive(Debug)]
pub struct SafeDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl SafeDir {
    /// Open `base`, a directory the root-owned configuration names (a mount
    /// point, a datadir, the run directory); symlinks in its own path are
    /// the configuration's and are followed.
    pub fn open(base: &Path) -> Result<SafeDir, SafeFileError> {
        let fd = nix::fcntl::open(base, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| SafeFileError::io("open the directory", base, e))?;
        Ok(SafeDir { fd, path: base.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Walk `rel` ("a/b/status") below this directory without following
    /// any symlink, creating missing directories with `mode`. The last
    /// directory is the agent's own: it must be owned by root and writable
    /// by nobody else, or it is refused (so nothing can be planted in it).
    pub fn private_dir(&self, rel: &str, mode: u32) -> Result<SafeDir, SafeFileError> {
        let parts: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
        if parts.is_empty() {
            return Err(SafeFileError::refused(&self.path, "no directory name given"));
        }
        let mut dir = self.dir_walk(&parts, mode)?;
        dir.require_private()?;
        // Created with the umask applied: make sure of the mode asked for.
        if fstat(dir.fd.as_fd()).map(|st| st.st_mode & 0o7777).ok() != Some(mode) {
            nix::sys::stat::fchmod(dir.fd.as_fd(), Mode::from_bits_truncate(mode))
                .map_err(|e| SafeFileError::io("chmod", &dir.path, e))?;
        }
        dir.path = self.path.join(rel.trim_end_matches('/'));
        Ok(dir)
    }

    /// Walk `parts` (each one name), creating what is missing.
    fn dir_walk(&self, parts: &[&str], mode: u32) -> Result<SafeDir, SafeFileError> {
        let mut cur = SafeDir {
            fd: self.fd.try_clone().map_err(|e| SafeFileError::io("dup", &self.path, e))?,
            path: self.path.clone(),
        };
        for c in parts {
            if !component_ok(c) {
                return Err(SafeFileError::refused(&cur.path.join(c), "not a plain directory name"));
            }
            cur = cur.subdir(c, mode)?;
        }
        Ok(cur)
    }

    /// The directory `name` in this one (created with `mode` when
    /// missing); a symlink or anything else in its place is refused.
    pub fn subdir(&self, name: &str, mode: u32) -> Result<SafeDir, SafeFileError> {
        let path = self.path.join(name);
        match mkdirat(self.fd.as_fd(), name, Mode::from_bits_truncate(mode)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(SafeFileError::io("create the directory", &path, e)),
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(self.fd.as_fd(), name, flags, Mode::empty()) {
            Ok(fd) => Ok(SafeDir { fd, path }),
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                let what = fstatat(self.fd.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_or("not a directory", |st| kind(&st));
                Err(SafeFileError::refused(&path, format!("{what} where a directory belongs")))
            }
            Err(e) => Err(SafeFileError::io("open the directory", &path, e)),
        }
    }

    /// Owned by the agent's user (root) and writable by nobody else.
    pub fn require_private(&self) -> Result<(), SafeFileError> {
        let st = fstat(self.fd.as_fd()).map_err(|e| SafeFileError::io("stat", &self.path, e))?;
        let me = nix::unistd::geteuid().as_raw();
        if st.st_uid != me || st.st_mode & 0o022 != 0 {
            return Err(SafeFileError::refused(
                &self.path,
                format!(
                    "the agent's directory is {} (it must be owned by uid {me} and writable by it only)",
                    describe(&st)
                ),
            ));
        }
        Ok(())
    }

    /// Replace `name` with a new regular file holding `data`: whatever is
    /// there (a symlink, a hard link to another file, a FIFO) is unlinked,
    /// never written through, and the file is created exclusively, without
    /// following symlinks and without blocking.
    pub fn write_new(&self, name: &str, data: &[u8], mode: u32) -> Result<(), SafeFileError> {
        let path = self.path.join(name);
        if !component_ok(name) {
            return Err(SafeFileError::refused(&path, "not a plain file name"));
        }
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let mut fd = None;
        for _ in 0..CREATE_TRIES {
            match unlinkat(self.fd.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(Errno::EISDIR | Errno::EPERM) => {
                    return Err(SafeFileError::refused(&path, "a directory is where the file belongs"))
                }
                Err(e) => return Err(SafeFileError::io("remove", &path, e)),
            }
            match openat(self.fd.as_fd(), name, flags, Mode::from_bits_truncate(mode)) {
                Ok(f) => {
                    fd = Some(f);
                    break;
                }
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(SafeFileError::io("create", &path, e)),
            }
        }
        let Some(fd) = fd else {
            return Err(SafeFileError::refused(&path, "it keeps reappearing while the agent replaces it"));
        };
        let mut f = File::from(fd);
        f.write_all(data).map_err(|e| SafeFileError::io("write", &path, e))?;
        f.sync_all().map_err(|e| SafeFileError::io("sync", &path, e))
    }

    /// Read `name`, a regular file of at most `limit` bytes, without
    /// following a symlink and without blocking on a FIFO.
    pub fn read_bounded(&self, name: &str, limit: u64) -> Result<Vec<u8>, SafeFileError> {
        let path = self.path.join(name);
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = openat(self.fd.as_fd(), name, flags, Mode::empty()).map_err(|e| match e {
            Errno::ELOOP => SafeFileError::refused(&path, "a symlink where a file belongs"),
            e => SafeFileError::io("open", &path, e),
        })?;
        read_fd(fd, &path, limit)
    }

    /// Remove `name` (never what a symlink there points to); a missing
    /// file is fine.
    pub fn remove(&self, name: &str) -> Result<(), SafeFileError> {
        match unlinkat(self.fd.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(SafeFileError::io("remove", &self.path.join(name), e)),
        }
    }
}

/// Read an open file: regular files only, at most `limit` bytes.
fn read_fd(fd: OwnedFd, path: &Path, limit: u64) -> Result<Vec<u8>, SafeFileError> {
    let st = fstat(fd.as_fd()).map_err(|e| SafeFileError::io("stat", path, e))?;
    if !is(&st, SFlag::S_IFREG) {
        return Err(SafeFileError::refused(path, format!("{} where a regular file belongs", kind(&st))));
    }
    if u64::try_from(st.st_size).unwrap_or(u64::MAX) > limit {
        return Err(SafeFileError::refused(path, format!("{} bytes, more than the {limit} allowed", st.st_size)));
    }
    let mut buf = Vec::new();
    File::from(fd).take(limit + 1).read_to_end(&mut buf).map_err(|e| SafeFileError::io("read", path, e))?;
    if buf.len() as u64 > limit {
        return Err(SafeFileError::refused(path, format!("grew past the {limit} bytes allowed while read")));
    }
    Ok(buf)
}

/// Open `path` for reading without following a symlink in its last
/// component and without blocking; returns the open file's status too, so
/// the caller checks the very file it reads.
pub fn open_regular(path: &Path) -> Result<(OwnedFd, FileStat), SafeFileError> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::open(path, flags, Mode::empty()).map_err(|e| match e {
        Errno::ELOOP => SafeFileError::refused(path, "a symlink where a file belongs"),
        e => SafeFileError::io("open", path, e),
    })?;
    let st = fstat(fd.as_fd()).map_err(|e| SafeFileError::io("stat", path, e))?;
    if !is(&st, SFlag::S_IFREG) {
        return Err(SafeFileError::refused(path, format!("{} where a regular file belongs", kind(&st))));
    }
    Ok((fd, st))
}

/// Read an already opened regular file, bounded.
pub fn read_open(fd: OwnedFd, path: &Path, limit: u64) -> Result<Vec<u8>, SafeFileError> {
    read_fd(fd, path, limit)
}

/// Read `path` (no symlink in its last component, regular, non-blocking)
/// up to `limit` bytes.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, SafeFileError> {
    let (fd, _) = open_regular(path)?;
    read_fd(fd, path, limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("haven-safe-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn writes_never_follow_a_planted_symlink_or_hard_link() {
        let base = tmp("links");
        let victim = base.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let d = SafeDir::open(&base).unwrap().private_dir(".status", 0o700).unwrap();
        symlink(&victim, base.join(".status/f")).unwrap();
        d.write_new("f", b"new", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(d.read_bounded("f", 16).unwrap(), b"new");
        std::fs::remove_file(base.join(".status/f")).unwrap();
        std::fs::hard_link(&victim, base.join(".status/f")).unwrap();
        d.write_new("f", b"again", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn refuses_symlinked_or_foreign_directories_fifos_and_big_files() {
        let base = tmp("dirs");
        let elsewhere = tmp("elsewhere");
        symlink(&elsewhere, base.join(".status")).unwrap();
        let e = SafeDir::open(&base).unwrap().private_dir(".status", 0o700).unwrap_err();
        assert!(
            matches!(&e, SafeFileError::Refused { path, why } if path.ends_with(".status") && why.contains("symlink")),
            "{e}"
        );
        std::fs::remove_file(base.join(".status")).unwrap();
        std::fs::create_dir(base.join(".status")).unwrap();
        std::fs::set_permissions(base.join(".status"), std::fs::Permissions::from_mode(0o777)).unwrap();
        // Group/other-writable: refused even when the agent's user owns it.
        let e = SafeDir::open(&base).unwrap().private_dir(".status", 0o700).unwrap_err();
        assert!(e.to_string().contains("0777"), "{e}");
        std::fs::set_permissions(base.join(".status"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let d = SafeDir::open(&base).unwrap().private_dir(".status", 0o700).unwrap();
        nix::unistd::mkfifo(&base.join(".status/fifo"), Mode::from_bits_truncate(0o666)).unwrap();
        let e = d.read_bounded("fifo", 16).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        d.write_new("fifo", b"x", 0o600).unwrap();
        std::fs::write(base.join(".status/big"), vec![b'x'; 100]).unwrap();
        assert!(d.read_bounded("big", 10).unwrap_err().to_string().contains("100 bytes"));
        assert!(read_regular(&base.join(".status"), 10).unwrap_err().to_string().contains("a directory"));
        let _ = std::fs::remove_dir_all(&base);
        let _ = std::fs::remove_dir_all(&elsewhere);
    }
}
