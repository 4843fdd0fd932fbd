//! The OCF Resource Agent API 1.1 contract: exit codes, environment, typed
//! parameters, meta-data, deadlines, logging and the action runner. No agent
//! logic lives here; agents implement [`agent::Agent`].

pub mod action;
pub mod agent;
pub mod deadline;
pub mod env;
pub mod error;
pub mod log;
pub mod metadata;
pub mod params;
pub mod status;

pub use action::Action;
pub use agent::{Agent, AgentSpec, Ctx};
pub use deadline::Deadline;
pub use status::Status;
