//! The agent interface and the action runner: what every agent declares
//! (its [`AgentSpec`]) and implements ([`Agent`]), and the one function that
//! turns an action into an OCF exit code.

use super::deadline::Deadline;
use super::env::OcfEnv;
use super::error::{AgentError, Unimplemented};
use super::params::{ParamSpec, Params};
use super::{log, metadata, Action, Status};
use std::time::Duration;

/// One action as advertised in meta-data (timeouts are the defaults
/// Pacemaker tools offer when an operator adds the resource).
#[derive(Clone, Copy, Debug)]
pub struct ActionSpec {
    pub action: Action,
    pub timeout_secs: u32,
    pub interval_secs: Option<u32>,
    pub depth: Option<u32>,
    pub role: Option<&'static str>,
}

impl ActionSpec {
    pub const fn new(action: Action, timeout_secs: u32) -> Self {
        ActionSpec { action, timeout_secs, interval_secs: None, depth: None, role: None }
    }
    pub const fn every(mut self, interval_secs: u32) -> Self {
        self.interval_secs = Some(interval_secs);
        self
    }
    pub const fn depth(mut self, depth: u32) -> Self {
        self.depth = Some(depth);
        self
    }
    pub const fn role(mut self, role: &'static str) -> Self {
        self.role = Some(role);
        self
    }
}

/// Everything static about an agent.
#[derive(Debug)]
pub struct AgentSpec {
    pub name: &'static str,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
    pub params: &'static [ParamSpec],
    pub actions: &'static [ActionSpec],
    /// Monitor depths (OCF_CHECK_LEVEL) the agent implements, ascending.
    pub depths: &'static [u32],
    /// The parameter that identifies an instance (rgmanager's "primary"
    /// attribute, the key of the resource element in cluster.conf).
    pub primary: &'static str,
}

impl AgentSpec {
    /// The default timeout the meta-data advertises for an action, used when
    /// Pacemaker passes none (manual runs, ocf-tester without it).
    pub fn default_timeout(&self, action: Action) -> Duration {
        let wanted = if action == Action::Status { Action::Monitor } else { action };
        let secs = self.actions.iter().find(|a| a.action == wanted).map_or(20, |a| a.timeout_secs);
        Duration::from_secs(u64::from(secs))
    }

    /// The depth to run for a requested OCF_CHECK_LEVEL: the deepest level
    /// implemented that is not deeper than asked (so an unimplemented level
    /// runs the next lower one).
    pub fn effective_depth(&self, requested: u32) -> u32 {
        self.depths.iter().copied().filter(|d| *d <= requested).max().unwrap_or(0)
    }
}

/// What an action gets to work with.
pub struct Ctx {
    pub action: Action,
    pub env: OcfEnv,
    pub params: Params,
    pub deadline: Deadline,
    /// The monitor depth to run (after [`AgentSpec::effective_depth`]).
    pub depth: u32,
}

impl Ctx {
    pub fn is_probe(&self) -> bool {
        self.env.is_probe(self.action)
    }
}

pub type ActionResult = Result<Status, AgentError>;

/// An OCF resource agent. Only start, stop, monitor and validate are
/// mandatory; the others default to what OCF says an agent without them
/// does.
pub trait Agent: Sync {
    fn spec(&self) -> &'static AgentSpec;
    fn start(&self, ctx: &Ctx) -> ActionResult;
    fn stop(&self, ctx: &Ctx) -> ActionResult;
    fn monitor(&self, ctx: &Ctx) -> ActionResult;
    /// Check the configuration beyond parameter syntax (the node's side:
    /// interfaces, binaries, kernel support).
    fn validate(&self, ctx: &Ctx) -> ActionResult;
    fn promote(&self, _ctx: &Ctx) -> ActionResult {
        Err(Unimplemented(Action::Promote).into())
    }
    fn demote(&self, _ctx: &Ctx) -> ActionResult {
        Err(Unimplemented(Action::Demote).into())
    }
    /// Agents that do not act on notifications accept them.
    fn notify(&self, _ctx: &Ctx) -> ActionResult {
        Ok(Status::Success)
    }
    fn reload(&self, _ctx: &Ctx) -> ActionResult {
        Err(Unimplemented(Action::Reload).into())
    }
}

fn usage(spec: &AgentSpec) -> String {
    let actions: Vec<&str> = spec.actions.iter().map(|a| a.action.as_str()).collect();
    format!(
        "usage: {} {{{}}}\nExpects the OCF environment (OCF_RESKEY_*) that Pacemaker sets.",
        spec.name,
        actions.join("|")
    )
}

/// Who is calling: Pacemaker (OCF) or rgmanager, whose meta-data carries
/// extras (primary attribute, `<special tag="rgmanager">`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    Ocf,
    Rgmanager,
}

/// Run one action of `agent` the way `caller` invokes it and return the
/// exit code. All results and errors become exit codes here.
pub fn run_for(agent: &dyn Agent, action_arg: Option<&str>, caller: Caller) -> u8 {
    let spec = agent.spec();
    let Some(arg) = action_arg else {
        eprintln!("{}", usage(spec));
        log::exit_reason("no action given");
        return Status::ErrArgs.code();
    };
    let Some(action) = Action::parse(arg) else {
        eprintln!("{}", usage(spec));
        log::exit_reason(&format!("unknown action '{arg}'"));
        return Status::ErrUnimplemented.code();
    };
    match action {
        // meta-data needs no environment, no root, and forks nothing.
        Action::MetaData => {
            match caller {
                Caller::Ocf => print!("{}", metadata::render(spec)),
                Caller::Rgmanager => print!("{}", metadata::render_rgmanager(spec)),
            }
            return Status::Success.code();
        }
        Action::Usage => {
            println!("{}", usage(spec));
            return Status::Success.code();
        }
        Action::Methods => {
            for a in spec.actions {
                println!("{}", a.action);
            }
            return Status::Success.code();
        }
        _ => {}
    }

    let env = OcfEnv::from_process();
    log::init(spec.name, &env.instance);
    for w in &env.warnings {
        crate::warn!("{w}");
    }
    let is_probe = env.is_probe(action);
    let params = match Params::parse(spec.params, &env.params) {
        Ok(p) => p,
        Err(e) => return invalid_params(action, is_probe, &e),
    };
    if !params.unknown.is_empty() && matches!(action, Action::Start | Action::ValidateAll) {
        crate::warn!("ignoring parameters {} does not have: {}", spec.name, params.unknown.join(", "));
    }
    let timeout = env.meta.timeout.unwrap_or_else(|| spec.default_timeout(action));
    let depth = spec.effective_depth(env.check_level);
    let ctx = Ctx { action, deadline: Deadline::from_timeout(timeout), env, params, depth };
    let result = match action {
        Action::Start => agent.start(&ctx),
        Action::Stop => agent.stop(&ctx),
        Action::Monitor | Action::Status => agent.monitor(&ctx),
        Action::ValidateAll => agent.validate(&ctx),
        Action::Promote => agent.promote(&ctx),
        Action::Demote => agent.demote(&ctx),
        Action::Notify => agent.notify(&ctx),
        Action::Reload => agent.reload(&ctx),
        Action::MigrateTo | Action::MigrateFrom | Action::Recover => Err(Unimplemented(action).into()),
        Action::MetaData | Action::Usage | Action::Methods => Ok(Status::Success),
    };
    finish(action, result)
}

/// Invalid parameters: an error for start, validate-all and recurring
/// monitors. A stop or a probe with them reports "not running" instead: the
/// resource cannot have been started with parameters that start refuses, and
/// a failed stop would get the node fenced over a typo.
fn invalid_params(action: Action, is_probe: bool, e: &crate::ocf::params::ParamError) -> u8 {
    if action == Action::Stop {
        crate::warn!("{e}; a resource with these parameters cannot be running, so stop succeeds");
        return Status::Success.code();
    }
    if is_probe {
        crate::warn!("{e}; probe reports not running");
        return Status::NotRunning.code();
    }
    log::exit_reason(&e.to_string());
    Status::ErrConfigured.code()
}

fn finish(action: Action, result: ActionResult) -> u8 {
    match result {
        Ok(status) => status.code(),
        Err(e) => {
            let status = e.status();
            if status == Status::ErrUnimplemented {
                crate::debug!("{action}: {e}");
            } else {
                log::exit_reason(&e.to_string());
            }
            status.code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocf::params::Kind;

    static SPEC: AgentSpec = AgentSpec {
        name: "t",
        shortdesc: "s",
        longdesc: "l",
        params: &[ParamSpec::new("a", Kind::String, "a", "a")],
        actions: &[ActionSpec::new(Action::Start, 30), ActionSpec::new(Action::Monitor, 15).every(10)],
        depths: &[0, 10, 20],
        primary: "a",
    };

    #[test]
    fn depth_falls_back_to_next_lower() {
        assert_eq!(SPEC.effective_depth(0), 0);
        assert_eq!(SPEC.effective_depth(15), 10);
        assert_eq!(SPEC.effective_depth(30), 20);
    }

    #[test]
    fn default_timeouts_come_from_the_spec() {
        assert_eq!(SPEC.default_timeout(Action::Start), Duration::from_secs(30));
        assert_eq!(SPEC.default_timeout(Action::Status), Duration::from_secs(15));
        assert_eq!(SPEC.default_timeout(Action::Stop), Duration::from_secs(20));
    }
}
