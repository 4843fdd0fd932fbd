//! The error every agent action returns, and the one place where errors
//! become OCF exit codes.

use crate::agents::director::DirectorError;
use crate::agents::filesystem::FsError;
use crate::agents::instance::InstanceError;
use crate::agents::vip::VipError;
use crate::exec::ExecError;
use crate::mount::guard::Hung;
use crate::net::NetError;
use crate::ocf::deadline::DeadlineExceeded;
use crate::ocf::params::ParamError;
use crate::ocf::{Action, Status};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Param(#[from] ParamError),
    #[error(transparent)]
    Deadline(#[from] DeadlineExceeded),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Vip(#[from] VipError),
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(transparent)]
    Director(#[from] DirectorError),
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Hung(#[from] Hung),
    #[error(transparent)]
    SafeFile(#[from] crate::safe_file::SafeFileError),
    #[error(transparent)]
    Untrusted(#[from] crate::trust::Untrusted),
    #[error("action '{0}' is not implemented by this agent")]
    Unimplemented(Action),
}

impl AgentError {
    /// The OCF exit code for this error. Pacemaker treats these differently:
    /// GENERIC is recovered in place, INSTALLED/PERM ban the node,
    /// CONFIGURED stops the resource everywhere.
    pub fn status(&self) -> Status {
        match self {
            AgentError::Param(_) => Status::ErrConfigured,
            AgentError::Deadline(_) => Status::ErrGeneric,
            AgentError::Net(e) => net_status(e),
            AgentError::Unimplemented(_) => Status::ErrUnimplemented,
            AgentError::Vip(e) => match e {
                VipError::NoInterface { .. }
                | VipError::Clone
                | VipError::LabelTooLong { .. }
                | VipError::LoopbackNic => Status::ErrConfigured,
                VipError::NoNamespace { .. } => Status::ErrInstalled,
                VipError::NoRoute { .. }
                | VipError::LinkDown { .. }
                | VipError::Duplicate { .. }
                | VipError::DadFailed { .. }
                | VipError::DadTimeout { .. }
                | VipError::Elsewhere { .. }
                | VipError::Mismatch { .. }
                | VipError::StillPresent { .. }
                | VipError::NotSuppressed { .. }
                | VipError::State { .. } => Status::ErrGeneric,
                VipError::Net(e) => net_status(e),
            },
            AgentError::Exec(e) => exec_status(e),
            AgentError::Instance(e) => match e {
                InstanceError::File { .. } => Status::ErrConfigured,
                InstanceError::ReadFile { .. }
                | InstanceError::NoCgroup { .. }
                | InstanceError::NoUser { .. }
                | InstanceError::NoProgram { .. } => Status::ErrInstalled,
                InstanceError::Exec(e) => exec_status(e),
                InstanceError::Unsafe(e) => e.status(),
                InstanceError::Untrusted(_) | InstanceError::Delegated { .. } => Status::ErrPerm,
                InstanceError::NotMounted { .. }
                | InstanceError::NoDatadir { .. }
                | InstanceError::NoAddress { .. }
                | InstanceError::Cgroup { .. }
                | InstanceError::Spawn { .. }
                | InstanceError::Exited { .. }
                | InstanceError::NotReady { .. }
                | InstanceError::ServiceDown { .. }
                | InstanceError::ProbeFailed { .. }
                | InstanceError::Survivors { .. }
                | InstanceError::Stray { .. }
                | InstanceError::NotStarted { .. }
                | InstanceError::Io { .. }
                | InstanceError::Mismatch { .. }
                | InstanceError::Hung(_) => Status::ErrGeneric,
            },
            AgentError::Director(e) => match e {
                DirectorError::Config(_) | DirectorError::NoService => Status::ErrConfigured,
                DirectorError::Backend(crate::lb::LbError::NoIpvs) => Status::ErrInstalled,
                DirectorError::Backend(crate::lb::LbError::Exec(e)) => exec_status(e),
                DirectorError::Backend(_)
                | DirectorError::Io { .. }
                | DirectorError::Died { .. }
                | DirectorError::Slow { .. }
                | DirectorError::Stale { .. }
                | DirectorError::KernelDiffers { .. }
                | DirectorError::TableLeft { .. } => Status::ErrGeneric,
            },
            AgentError::Hung(_) => Status::ErrGeneric,
            AgentError::SafeFile(e) => e.status(),
            AgentError::Untrusted(e) => e.status(),
            AgentError::Fs(e) => match e {
                FsError::Clone { .. } => Status::ErrConfigured,
                FsError::NotSupported { .. }
                | FsError::HelperMissing { .. }
                | FsError::DeviceMissing { .. }
                | FsError::QuotaTool { .. } => Status::ErrInstalled,
                FsError::Exec(e) | FsError::Mount { source: e, .. } => exec_status(e),
                FsError::OtherDevice { .. }
                | FsError::Submounts { .. }
                | FsError::Mismatch { .. }
                | FsError::NotMounted { .. }
                | FsError::Fsck { .. }
                | FsError::Busy { .. }
                | FsError::Unmount { .. }
                | FsError::Io { .. }
                | FsError::StatusMismatch { .. }
                | FsError::Hung(_) => Status::ErrGeneric,
            },
        }
    }
}

fn exec_status(e: &ExecError) -> Status {
    match e {
        ExecError::NotFound { .. } => Status::ErrInstalled,
        _ => Status::ErrGeneric,
    }
}

fn net_status(e: &NetError) -> Status {
    match e.errno() {
        Some(libc::EPERM) | Some(libc::EACCES) => Status::ErrPerm,
        _ => Status::ErrGeneric,
    }
}
