//! The environment Pacemaker hands an agent: OCF_RESKEY_* parameters,
//! OCF_RESKEY_CRM_meta_* meta attributes, OCF_CHECK_LEVEL and friends.

use std::collections::BTreeMap;
use std::time::Duration;

const RESKEY: &str = "OCF_RESKEY_";
const META: &str = "OCF_RESKEY_CRM_meta_";

/// Everything an action reads from its environment, parsed once.
#[derive(Clone, Debug, Default)]
pub struct OcfEnv {
    /// OCF_RESOURCE_INSTANCE (the resource id, with ":N" for clones).
    pub instance: String,
    /// Instance parameters without the OCF_RESKEY_ prefix.
    pub params: BTreeMap<String, String>,
    pub meta: Meta,
    /// OCF_CHECK_LEVEL: the requested monitor depth (0 when absent).
    pub check_level: u32,
    /// Environment problems noticed while parsing (malformed meta values);
    /// reported by the runner instead of silently ignored.
    pub warnings: Vec<String>,
}

/// OCF_RESKEY_CRM_meta_*: what Pacemaker says about the operation and the
/// resource's place in the cluster.
#[derive(Clone, Debug, Default)]
pub struct Meta {
    pub timeout: Option<Duration>,
    pub interval: Duration,
    /// Clone instance number (present only for clones).
    pub clone: Option<u32>,
    pub clone_max: Option<u32>,
    pub clone_node_max: Option<u32>,
    pub globally_unique: bool,
    pub notify: bool,
    pub promoted_max: Option<u32>,
    pub on_node: Option<String>,
    /// notify_type (pre/post) and notify_operation (start/stop/promote/demote).
    pub notify_type: Option<String>,
    pub notify_operation: Option<String>,
    /// The notify_*_resource and notify_*_uname lists, keyed without the
    /// `notify_` prefix ("start_resource", "active_uname", ...).
    pub notify_lists: BTreeMap<String, Vec<String>>,
}

impl Meta {
    /// True when the resource is a clone instance.
    pub fn is_clone(&self) -> bool {
        self.clone.is_some() || self.clone_max.is_some_and(|m| m > 1)
    }
}

impl OcfEnv {
    /// Read the process environment.
    pub fn from_process() -> OcfEnv {
        let vars = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        OcfEnv::from_vars(vars)
    }

    /// Parse from any list of variables (tests use this directly).
    pub fn from_vars<I: IntoIterator<Item = (String, String)>>(vars: I) -> OcfEnv {
        let mut env = OcfEnv::default();
        for (key, value) in vars {
            if let Some(name) = key.strip_prefix(META) {
                env.meta_var(name, value);
            } else if let Some(name) = key.strip_prefix(RESKEY) {
                env.params.insert(name.to_string(), value);
            } else if key == "OCF_RESOURCE_INSTANCE" {
                env.instance = value;
            } else if key == "OCF_CHECK_LEVEL" {
                match value.trim().parse() {
                    Ok(level) => env.check_level = level,
                    Err(_) if value.trim().is_empty() => {}
                    Err(_) => env.warnings.push(format!("ignoring OCF_CHECK_LEVEL={value:?}: not a number")),
                }
            }
        }
        env
    }

    fn meta_var(&mut self, name: &str, value: String) {
        let m = &mut self.meta;
        let warnings = &mut self.warnings;
        let mut num = |v: &str| number(warnings, name, v);
        match name {
            "timeout" => m.timeout = num(&value).map(Duration::from_millis),
            "interval" => m.interval = Duration::from_millis(num(&value).unwrap_or(0)),
            "clone" => m.clone = num(&value).and_then(|n| u32::try_from(n).ok()),
            "clone_max" => m.clone_max = num(&value).and_then(|n| u32::try_from(n).ok()),
            "clone_node_max" => m.clone_node_max = num(&value).and_then(|n| u32::try_from(n).ok()),
            // Pacemaker 2.1 passes both spellings depending on the CIB.
            "promoted_max" | "master_max" => m.promoted_max = num(&value).and_then(|n| u32::try_from(n).ok()),
            "globally_unique" => m.globally_unique = super::params::parse_bool(&value).unwrap_or(false),
            "notify" => m.notify = super::params::parse_bool(&value).unwrap_or(false),
            "on_node" => m.on_node = Some(value),
            "notify_type" => m.notify_type = Some(value),
            "notify_operation" => m.notify_operation = Some(value),
            other => {
                if let Some(list) = other.strip_prefix("notify_") {
                    let items = value.split_whitespace().map(str::to_string).collect();
                    m.notify_lists.insert(list.to_string(), items);
                }
            }
        }
    }

    /// A probe is a one-off monitor (interval 0) that Pacemaker runs to learn
    /// the state of a resource on a node, including nodes where it never ran.
    pub fn is_probe(&self, action: super::Action) -> bool {
        matches!(action, super::Action::Monitor | super::Action::Status) && self.meta.interval.is_zero()
    }
}

fn number(warnings: &mut Vec<String>, name: &str, value: &str) -> Option<u64> {
    match value.trim().parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) => {
            warnings.push(format!("ignoring OCF_RESKEY_CRM_meta_{name}={value:?}: not a number"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> OcfEnv {
        OcfEnv::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn splits_params_from_meta() {
        let e = env(&[
            ("OCF_RESKEY_ip", "198.51.100.7"),
            ("OCF_RESKEY_CRM_meta_timeout", "20000"),
            ("OCF_RESKEY_CRM_meta_interval", "10000"),
            ("OCF_RESKEY_CRM_meta_clone", "1"),
            ("OCF_RESKEY_CRM_meta_clone_max", "3"),
            ("OCF_RESKEY_CRM_meta_globally_unique", "false"),
            ("OCF_RESKEY_CRM_meta_notify", "yes"),
            ("OCF_RESKEY_CRM_meta_master_max", "1"),
            ("OCF_RESKEY_CRM_meta_notify_type", "pre"),
            ("OCF_RESKEY_CRM_meta_notify_start_uname", "node1 node2 "),
            ("OCF_RESOURCE_INSTANCE", "vip:1"),
            ("OCF_CHECK_LEVEL", "10"),
            ("PATH", "/bin"),
        ]);
        assert_eq!(e.params.len(), 1);
        assert_eq!(e.params["ip"], "198.51.100.7");
        assert_eq!(e.meta.timeout, Some(Duration::from_secs(20)));
        assert_eq!(e.meta.interval, Duration::from_secs(10));
        assert_eq!(e.meta.clone, Some(1));
        assert_eq!(e.meta.clone_max, Some(3));
        assert!(e.meta.is_clone());
        assert!(e.meta.notify);
        assert!(!e.meta.globally_unique);
        assert_eq!(e.meta.promoted_max, Some(1));
        assert_eq!(e.meta.notify_type.as_deref(), Some("pre"));
        assert_eq!(e.meta.notify_lists["start_uname"], vec!["node1", "node2"]);
        assert_eq!(e.instance, "vip:1");
        assert_eq!(e.check_level, 10);
        assert!(e.warnings.is_empty());
        assert!(!e.is_probe(crate::ocf::Action::Monitor));
    }

    #[test]
    fn probe_is_monitor_without_interval() {
        let e = env(&[("OCF_RESKEY_CRM_meta_interval", "0")]);
        assert!(e.is_probe(crate::ocf::Action::Monitor));
        assert!(!e.is_probe(crate::ocf::Action::Start));
        assert!(env(&[]).is_probe(crate::ocf::Action::Monitor));
    }

    #[test]
    fn malformed_meta_is_reported_not_fatal() {
        let e = env(&[("OCF_RESKEY_CRM_meta_timeout", "20s"), ("OCF_CHECK_LEVEL", "deep")]);
        assert_eq!(e.meta.timeout, None);
        assert_eq!(e.warnings.len(), 2);
    }
}
