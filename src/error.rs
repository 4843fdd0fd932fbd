//! The error every agent action returns (see [`crate::ocf::error`]), and the
//! one path-annotated I/O error the modules share (youki's
//! `WrappedIoError`) instead of an `Io { op, path, source }` variant each.

pub use crate::ocf::error::{AgentError, OcfError};
use std::fmt::Display;

/// An I/O operation that failed on a named object (a path, a socket, a
/// process): "failed to create /run/haven/x: Permission denied".
#[derive(Debug, thiserror::Error)]
#[error("failed to {op} {object}: {source}")]
pub struct IoError {
    pub op: &'static str,
    pub object: String,
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    pub fn new(op: &'static str, object: impl Display, source: std::io::Error) -> IoError {
        IoError { op, object: object.to_string(), source }
    }

    /// For `map_err`: `fs::read(&p).map_err(IoError::at("read", p.display()))?`.
    pub fn at(op: &'static str, object: impl Display) -> impl FnOnce(std::io::Error) -> IoError {
        let object = object.to_string();
        move |source| IoError { op, object, source }
    }

    /// The errno behind the failure, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

impl OcfError for IoError {}
