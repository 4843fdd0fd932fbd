//! What can go wrong running a hosting instance: its instance file, its
//! data directory, its cgroup, and each of its services.

use crate::exec::ExecError;
use crate::mount::guard::Hung;
use crate::probe::ProbeError;

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// A malformed instance file, with the place of the mistake.
    #[error("{file}:{line}: {message}")]
    File { file: String, line: usize, message: String },
    #[error("failed to read instance file {file}: {source}")]
    ReadFile { file: String, source: std::io::Error },
    #[error(
        "datadir {datadir} is not a mounted filesystem (it is on {mount}, the same filesystem as its parent \
         directory): the shared volume is not mounted there; refusing to start and write to the wrong disk"
    )]
    NotMounted { datadir: String, mount: String },
    #[error("datadir {datadir} does not exist on this node (is its volume mounted?)")]
    NoDatadir { datadir: String },
    #[error("ip {ip} is not an address of this node: start the vip resource before the instance")]
    NoAddress { ip: std::net::IpAddr },
    #[error("cgroup v2 is not available on this node: {why}")]
    NoCgroup { why: String },
    #[error("failed to {op} cgroup {path}: {source}")]
    Cgroup { op: &'static str, path: String, source: std::io::Error },
    #[error("user {user} (for {what}) does not exist on this node")]
    NoUser { user: String, what: String },
    #[error("program {program} of service {service} is not installed on this node")]
    NoProgram { service: String, program: String },
    #[error("failed to start service {service} ({program}): {source}")]
    Spawn { service: String, program: String, source: std::io::Error },
    #[error("service {service} exited during start ({status}); last lines of {log}: {tail}")]
    Exited { service: String, status: String, log: String, tail: String },
    #[error("service {service} did not become ready before the deadline: {why}")]
    NotReady { service: String, why: String },
    #[error("service {service} is not running (pid {pid} is gone); see {log}")]
    ServiceDown { service: String, pid: i32, log: String },
    #[error("service {service} fails its probe: {source}")]
    ProbeFailed { service: String, source: Box<ProbeError> },
    #[error("processes of instance {name} are still running after stop: {pids}")]
    Survivors { name: String, pids: String },
    #[error("processes of instance {name} run in {cgroup} although the instance was not started by this node's agent")]
    Stray { name: String, cgroup: String },
    #[error("instance {name} is not started: {action} needs a started instance")]
    NotStarted { name: String, action: &'static str },
    #[error(transparent)]
    Io(#[from] crate::error::IoError),
    #[error("datadir check file {path} read back {got:?} instead of what was written")]
    Mismatch { path: String, got: String },
    #[error(transparent)]
    Hung(#[from] Hung),
    #[error(transparent)]
    Unsafe(#[from] crate::safe_file::SafeFileError),
    #[error(transparent)]
    Untrusted(#[from] crate::trust::Untrusted),
    /// A file only its owner (not root) can change asks for more than that
    /// owner's rights.
    #[error("refusing {file}: it is owned by uid {uid} (not root), so it may only run services as that user; {why}")]
    Delegated { file: String, uid: u32, why: String },
    #[error(transparent)]
    Exec(#[from] ExecError),
}

impl crate::error::OcfError for InstanceError {
    fn status(&self) -> crate::ocf::Status {
        use crate::ocf::Status;
        match self {
            InstanceError::File { .. } => Status::ErrConfigured,
            InstanceError::ReadFile { .. }
            | InstanceError::NoCgroup { .. }
            | InstanceError::NoUser { .. }
            | InstanceError::NoProgram { .. } => Status::ErrInstalled,
            InstanceError::Exec(e) => crate::error::OcfError::status(e),
            InstanceError::Unsafe(e) => crate::error::OcfError::status(e),
            InstanceError::Untrusted(_) | InstanceError::Delegated { .. } => Status::ErrPerm,
            _ => Status::ErrGeneric,
        }
    }
}
