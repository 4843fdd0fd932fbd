//! What can go wrong mounting, checking and unmounting shared storage.

use crate::exec::ExecError;
use crate::mount::guard::Hung;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error(
        "{fstype} is not a cluster or network filesystem: mounting it on several nodes at once destroys it; \
         refusing to run as a clone (set force_clones=true only if every node has its own device, or mount read-only)"
    )]
    Clone { fstype: String },
    #[error("filesystem type {fstype} is not supported by this node's kernel (not in /proc/filesystems, modprobe did not help)")]
    NotSupported { fstype: String },
    #[error("{fstype} needs the mount helper {helper}, which is not installed on this node")]
    HelperMissing { helper: &'static str, fstype: String },
    #[error("device {device} does not exist on this node")]
    DeviceMissing { device: String },
    #[error("{dir} already has {found} mounted on it, not {device}; refusing to mount over it")]
    OtherDevice { dir: String, found: String, device: String },
    #[error("something is already mounted below {dir} ({below}); refusing to hide it under a new mount")]
    Submounts { dir: String, below: String },
    #[error("{dir} is mounted from {found}, not from {device}")]
    Mismatch { dir: String, found: String, device: String },
    #[error("failed to mount {device} on {dir}: {source}")]
    Mount { device: String, dir: String, source: ExecError },
    #[error("{device} was mounted but {dir} does not show it afterwards")]
    NotMounted { device: String, dir: String },
    #[error("fsck of {device} found errors it could not fix (exit code {code}): {stderr}")]
    Fsck { device: String, code: i32, stderr: String },
    #[error("{dir} is still busy after signalling its users: {holders}")]
    Busy { dir: String, holders: String },
    #[error("{dir} could not be unmounted: {why}")]
    Unmount { dir: String, why: String },
    #[error(transparent)]
    Io(#[from] crate::error::IoError),
    #[error("status file {path} read back {got:?} instead of what was written")]
    StatusMismatch { path: String, got: String },
    #[error("quotas are asked for in options ({opts}) but {tool} is not installed")]
    QuotaTool { opts: String, tool: &'static str },
    #[error(transparent)]
    Hung(#[from] Hung),
    #[error(transparent)]
    Exec(#[from] ExecError),
}

impl crate::error::OcfError for FsError {
    fn status(&self) -> crate::ocf::Status {
        use crate::ocf::Status;
        match self {
            FsError::Clone { .. } => Status::ErrConfigured,
            FsError::NotSupported { .. }
            | FsError::HelperMissing { .. }
            | FsError::DeviceMissing { .. }
            | FsError::QuotaTool { .. } => Status::ErrInstalled,
            FsError::Exec(e) | FsError::Mount { source: e, .. } => crate::error::OcfError::status(e),
            _ => Status::ErrGeneric,
        }
    }
}
