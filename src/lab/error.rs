//! The one error type of `haven lab`: each variant names the failed step
//! and the object it was working on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecError),
    #[error(transparent)]
    Io(#[from] crate::error::IoError),
    #[error("no lab is up (no {})", .0.display())]
    NotUp(PathBuf),
    #[error("a lab is already up ({}): run `haven lab down` first", .0.display())]
    AlreadyUp(PathBuf),
    #[error("malformed lab state {}: {reason}", path.display())]
    State { path: PathBuf, reason: String },
    #[error(transparent)]
    Generate(#[from] crate::generate::GenerateError),
    #[error("unknown lab node {name:?} (nodes: {known})")]
    UnknownNode { name: String, known: String },
    #[error("{what} did not happen within {secs} s{detail}")]
    Timeout { what: String, secs: u64, detail: String },
    #[error("failed to start {program} on {node}: {source}")]
    Spawn { program: String, node: String, source: std::io::Error },
    #[error("{0}")]
    Refused(String),
}

impl LabError {
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LabError {
        let path = path.into();
        move |source| LabError::Io(crate::error::IoError::new(what, path.display(), source))
    }
}
