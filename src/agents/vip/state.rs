//! What vip remembers between actions, under /run/haven/vip/net-<inode>/:
//! one directory per network namespace, because several namespaces (and so
//! several independent "hosts") can share one /run.

use super::VipError;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub const RUN_DIR: &str = "/run/haven/vip";

fn state_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> VipError + 'a {
    move |source| VipError::State(crate::error::IoError::new(op, path.display().to_string(), source))
}

/// This process's state directory (created on demand).
pub fn dir() -> Result<PathBuf, VipError> {
    let ns = Path::new("/proc/self/ns/net");
    let inode = fs::metadata(ns).map_err(state_err("stat", ns))?.ino();
    let d = PathBuf::from(format!("{RUN_DIR}/net-{inode}"));
    fs::create_dir_all(&d).map_err(state_err("create", &d))?;
    Ok(d)
}

/// A file name for a key (IP address or resource id) that is safe on disk.
pub fn file_key(key: &str) -> String {
    key.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect()
}

pub fn write(path: &Path, content: &str) -> Result<(), VipError> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(state_err("create", &tmp))?;
    f.write_all(content.as_bytes()).map_err(state_err("write", &tmp))?;
    fs::rename(&tmp, path).map_err(state_err("rename", path))
}

pub fn read(path: &Path) -> Result<Option<String>, VipError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(state_err("read", path)(e)),
    }
}

pub fn remove(path: &Path) -> Result<(), VipError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(state_err("remove", path)(e)),
    }
}

/// An exclusive lock on a file, held until dropped (serialises actions of
/// different resources that share state, e.g. the real-server sysctls).
pub struct Lock {
    _held: nix::fcntl::Flock<fs::File>,
}

impl Lock {
    pub fn take(path: &Path) -> Result<Lock, VipError> {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(state_err("open", path))?;
        let held = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| state_err("lock", path)(std::io::Error::from(e)))?;
        Ok(Lock { _held: held })
    }
}

/// The background announcer of `ip`, if one is recorded and still is the
/// process haven started (checked by its command line, never by name).
pub fn announcer_pid(dir: &Path, ip: &str) -> Result<Option<i32>, VipError> {
    let pidfile = dir.join(format!("announce-{}.pid", file_key(ip)));
    let Some(text) = read(&pidfile)? else { return Ok(None) };
    let Ok(pid) = text.trim().parse::<i32>() else {
        remove(&pidfile)?;
        return Ok(None);
    };
    if crate::host::runs_with(pid, &["announce", ip]) {
        Ok(Some(pid))
    } else {
        remove(&pidfile)?;
        Ok(None)
    }
}

pub fn announcer_pidfile(dir: &Path, ip: &str) -> PathBuf {
    dir.join(format!("announce-{}.pid", file_key(ip)))
}
