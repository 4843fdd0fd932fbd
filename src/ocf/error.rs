//! Errors that know their OCF exit code (coreutils' `UError::code()`): each
//! module's error implements [`OcfError`], and the action runner turns any of
//! them into an exit code without knowing which agent raised it.

use super::{Action, Status};
use std::fmt;

/// An error that reports the OCF status an action failing with it exits with.
/// Pacemaker treats the statuses differently: GENERIC is recovered in place,
/// INSTALLED/PERM ban the node, CONFIGURED stops the resource everywhere.
pub trait OcfError: std::error::Error + Send + Sync + 'static {
    fn status(&self) -> Status {
        Status::ErrGeneric
    }
}

/// The error every agent action returns: any [`OcfError`], boxed.
pub struct AgentError(Box<dyn OcfError>);

impl AgentError {
    /// The OCF exit code for this error.
    pub fn status(&self) -> Status {
        self.0.status()
    }
}

impl<E: OcfError> From<E> for AgentError {
    fn from(e: E) -> Self {
        AgentError(Box::new(e))
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::error::Error for AgentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// An action the agent does not implement.
#[derive(Debug, thiserror::Error)]
#[error("action '{0}' is not implemented by this agent")]
pub struct Unimplemented(pub Action);

impl OcfError for Unimplemented {
    fn status(&self) -> Status {
        Status::ErrUnimplemented
    }
}

impl OcfError for super::params::ParamError {
    fn status(&self) -> Status {
        Status::ErrConfigured
    }
}

impl OcfError for super::deadline::DeadlineExceeded {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_reports_its_own_status_and_message() {
        let e: AgentError = Unimplemented(Action::Promote).into();
        assert_eq!(e.status(), Status::ErrUnimplemented);
        assert_eq!(e.to_string(), "action 'promote' is not implemented by this agent");
    }
}
