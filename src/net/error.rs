//! Errors of kernel network operations; each names the operation and the
//! object it failed on.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("failed to open a netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("netlink: {op} failed: {source}")]
    Request { op: String, source: io::Error },
    #[error("netlink: {op} got a reply haven cannot read: {why}")]
    Decode { op: String, why: String },
    #[error("netlink: {op} got no answer before the action deadline")]
    Timeout { op: String },
    #[error(transparent)]
    Io(#[from] crate::error::IoError),
}

impl NetError {
    pub fn io(op: &'static str, object: impl Into<String>, source: io::Error) -> NetError {
        NetError::Io(crate::error::IoError::new(op, object.into(), source))
    }

    /// The errno behind the failure, if any (EPERM, EEXIST, ...).
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Socket(e) | NetError::Request { source: e, .. } => e.raw_os_error(),
            NetError::Io(e) => e.raw_os_error(),
            _ => None,
        }
    }
}

impl crate::error::OcfError for NetError {
    fn status(&self) -> crate::ocf::Status {
        match self.errno() {
            Some(libc::EPERM) | Some(libc::EACCES) => crate::ocf::Status::ErrPerm,
            _ => crate::ocf::Status::ErrGeneric,
        }
    }
}
