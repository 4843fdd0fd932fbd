//! Promotion scores: a promotable clone tells Pacemaker which nodes may be
//! promoted through a node attribute set with crm_attribute --promotion
//! (Pacemaker 2.1; it replaces crm_master). Only when Pacemaker runs the
//! agent and the resource is promotable; a failure is logged, not fatal
//! (the score is a preference, the instance itself is fine).

use crate::ocf::{Ctx, Deadline};
use crate::{info, warn};
use std::time::Duration;

/// Is Pacemaker running this action (it always passes meta attributes)?
fn under_pacemaker() -> bool {
    std::env::vars_os().any(|(k, _)| k.to_string_lossy().starts_with("OCF_RESKEY_CRM_meta_"))
}

/// Is the resource a promotable clone?
pub fn promotable(ctx: &Ctx) -> bool {
    let flag = |k: &str| {
        std::env::var(format!("OCF_RESKEY_CRM_meta_{k}"))
            .ok()
            .and_then(|v| crate::ocf::params::parse_bool(&v))
            .unwrap_or(false)
    };
    ctx.env.meta.promoted_max.is_some() || flag("promotable") || flag("master")
}

/// The resource id without a clone instance number ("web1:0" -> "web1"):
/// the score belongs to the clone, not to one instance of it.
pub fn resource_id(instance: &str) -> &str {
    match instance.rsplit_once(':') {
        Some((id, n)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => id,
        _ => instance,
    }
}

/// The crm_attribute argv that sets (Some) or deletes (None) the score.
pub fn command(resource: &str, score: Option<i64>) -> Vec<String> {
    let mut argv = vec!["crm_attribute".to_string(), format!("--promotion={resource}")];
    match score {
        Some(n) => argv.extend(["-v".to_string(), n.to_string()]),
        None => argv.push("-D".to_string()),
    }
    argv
}

/// Set or delete this node's promotion score, when it applies.
pub fn publish(ctx: &Ctx, score: Option<i64>) {
    if !promotable(ctx) || !under_pacemaker() || ctx.env.instance.is_empty() {
        return;
    }
    let argv = command(resource_id(&ctx.env.instance), score);
    info!("promotion score: {}", argv.join(" "));
    if crate::exec::which("crm_attribute").is_none() {
        warn!("crm_attribute is not installed: the promotion score is not published");
        return;
    }
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let d = ctx.deadline.within(Duration::from_secs(5));
    let d = if d.expired() { Deadline::after(Duration::from_millis(500)) } else { d };
    if let Err(e) = crate::exec::run_ok(&args, &d) {
        warn!("could not publish the promotion score: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(resource_id("web1:0"), "web1");
        assert_eq!(resource_id("web1"), "web1");
        assert_eq!(resource_id("a:b"), "a:b");
        assert_eq!(command("web1", Some(10)).join(" "), "crm_attribute --promotion=web1 -v 10");
        assert_eq!(command("web1", None).join(" "), "crm_attribute --promotion=web1 -D");
    }
}
