//! The names and values every output can carry: one name rule (an XML
//! NCName, which is also what crm and pcs take unquoted), one value rule
//! (no control characters: crm and pcs files are line-based and XML 1.0
//! cannot hold most of them), the stricter rule for location-rule values
//! (crmsh and pcs parse rules themselves), and Pacemaker's own option
//! lists: cluster properties from the daemons' meta-data on this machine
//! (a built-in copy of Pacemaker 2.1.5's when they are absent), resource
//! and operation meta attributes for rsc_defaults and op_defaults.

use std::sync::OnceLock;
use std::time::Duration;

/// Names of properties, attributes and parameters: an XML NCName.
pub fn valid_name(name: &str) -> bool {
    crate::xml::is_ncname(name)
}

/// Why a value cannot be written, if it cannot.
pub fn value_problem(v: &str) -> Option<&'static str> {
    if v.contains(['\n', '\r']) {
        Some("holds a line break, which crm and pcs files (one statement per line) cannot carry")
    } else if v.contains('\t') {
        Some("holds a tab, which crm reads as a separator and XML turns into a space; write a space")
    } else if v.chars().any(char::is_control) || !crate::xml::representable(v) {
        Some("holds a control character, which no configuration format can carry")
    } else {
        None
    }
}

/// Values a location rule can compare with: crmsh 4.4 fails on a quoted
/// rule value with a space, pcs parses parentheses and quotes in rules as
/// its own syntax.
pub fn valid_rule_value(v: &str) -> bool {
    !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || "._-:/@+".contains(c))
}

/// Attributes Pacemaker defines for every node.
pub const BUILT_IN_NODE_ATTRIBUTES: &[&str] =
    &["#uname", "#id", "#kind", "#is_dc", "#cluster-name", "#site-name", "#role", "#ra-version"];

/// A name a rule may test: a node attribute, or one of Pacemaker's own.
pub fn valid_rule_attribute(a: &str) -> bool {
    BUILT_IN_NODE_ATTRIBUTES.contains(&a) || valid_name(a)
}

/// Pacemaker 2.1.5's cluster options (pacemaker-schedulerd, -controld and
/// -based meta-data), for machines without Pacemaker.
const CLUSTER_OPTIONS: &[&str] = &[
    "no-quorum-policy",
    "symmetric-cluster",
    "maintenance-mode",
    "start-failure-is-fatal",
    "enable-startup-probes",
    "shutdown-lock",
    "shutdown-lock-limit",
    "stonith-enabled",
    "stonith-action",
    "stonith-timeout",
    "have-watchdog",
    "concurrent-fencing",
    "startup-fencing",
    "priority-fencing-delay",
    "cluster-delay",
    "batch-limit",
    "migration-limit",
    "stop-all-resources",
    "stop-orphan-resources",
    "stop-orphan-actions",
    "remove-after-stop",
    "pe-error-series-max",
    "pe-warn-series-max",
    "pe-input-series-max",
    "node-health-strategy",
    "node-health-base",
    "node-health-green",
    "node-health-yellow",
    "node-health-red",
    "placement-strategy",
    "dc-version",
    "cluster-infrastructure",
    "cluster-name",
    "dc-deadtime",
    "cluster-recheck-interval",
    "load-threshold",
    "node-action-limit",
    "fence-reaction",
    "election-timeout",
    "shutdown-escalation",
    "join-integration-timeout",
    "join-finalization-timeout",
    "transition-delay",
    "stonith-watchdog-timeout",
    "stonith-max-attempts",
    "enable-acl",
    "cluster-ipc-limit",
];

/// Resource meta attributes (Pacemaker Explained, 2.1): what rsc_defaults
/// may set.
pub const RESOURCE_META: &[&str] = &[
    "priority",
    "critical",
    "target-role",
    "is-managed",
    "maintenance",
    "resource-stickiness",
    "requires",
    "migration-threshold",
    "failure-timeout",
    "multiple-active",
    "allow-migrate",
    "allow-unhealthy-nodes",
    "container-attribute-target",
    "remote-node",
    "remote-port",
    "remote-addr",
    "remote-connect-timeout",
    "globally-unique",
    "interleave",
    "ordered",
    "notify",
    "clone-max",
    "clone-node-max",
    "clone-min",
    "promotable",
    "promoted-max",
    "promoted-node-max",
    "description",
];

/// Operation attributes: what op_defaults may set.
pub const OPERATION_META: &[&str] = &[
    "timeout",
    "interval",
    "on-fail",
    "record-pending",
    "enabled",
    "role",
    "requires",
    "start-delay",
    "interval-origin",
    "description",
];

/// A list of option names and where it came from (for messages).
pub struct Known {
    pub names: Vec<String>,
    pub source: String,
}

impl Known {
    pub fn knows(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// The known name `name` is most likely a typo of.
    pub fn did_you_mean(&self, name: &str) -> Option<&str> {
        self.names.iter().map(String::as_str).find(|n| n.eq_ignore_ascii_case(name) || similar(n, name))
    }
}

fn built_in(names: &[&str], source: &str) -> Known {
    Known { names: names.iter().map(|n| n.to_string()).collect(), source: source.to_string() }
}

/// Where Pacemaker's daemons are installed (Debian, then RHEL/SUSE).
const DAEMON_DIRS: &[&str] = &["/usr/lib/pacemaker", "/usr/libexec/pacemaker"];
const DAEMONS: &[&str] = &["pacemaker-schedulerd", "pacemaker-controld", "pacemaker-based"];

/// The cluster options the installed Pacemaker declares, if it is here.
fn installed_cluster_options() -> Option<Known> {
    let dir = DAEMON_DIRS.iter().find(|d| std::path::Path::new(d).join(DAEMONS[0]).is_file())?;
    let mut names = Vec::new();
    for daemon in DAEMONS {
        let program = format!("{dir}/{daemon}");
        let deadline = crate::ocf::Deadline::after(Duration::from_secs(10));
        let out = crate::exec::run_ok(&[&program, "metadata"], &deadline).ok()?;
        names.extend(super::agents::read_metadata(daemon, &out.stdout).ok()?.names);
    }
    names.sort();
    names.dedup();
    Some(Known { names, source: format!("the meta-data of {} in {dir}", DAEMONS.join(", ")) })
}

/// Cluster properties: from this machine's Pacemaker when `installed` and
/// it is there (read once per process), else the built-in list.
pub fn cluster_options(installed: bool) -> &'static Known {
    static INSTALLED: OnceLock<Known> = OnceLock::new();
    static BUILT_IN: OnceLock<Known> = OnceLock::new();
    let copy = || built_in(CLUSTER_OPTIONS, "Pacemaker 2.1.5's cluster options");
    if !installed {
        return BUILT_IN.get_or_init(copy);
    }
    INSTALLED.get_or_init(|| installed_cluster_options().unwrap_or_else(copy))
}

pub fn resource_meta() -> Known {
    built_in(RESOURCE_META, "Pacemaker's resource meta attributes")
}

pub fn operation_meta() -> Known {
    built_in(OPERATION_META, "Pacemaker's operation attributes")
}

/// Two names one edit apart (a typo), for "did you mean".
pub fn similar(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()] <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_values_and_typos() {
        assert!(valid_name("no-quorum-policy") && !valid_name("no quorum policy") && !valid_name("bad name"));
        assert!(
            value_problem("a\nb").is_some() && value_problem("a\tb").is_some() && value_problem("a\u{7}").is_some()
        );
        assert!(value_problem("still alive, \"quoted\" & <x>").is_none());
        assert!(valid_rule_value("web-1.example") && !valid_rule_value("a b") && !valid_rule_value("a(b)"));
        assert!(valid_rule_attribute("#uname") && !valid_rule_attribute("#nope"));
        let k = cluster_options(false);
        assert_eq!(k.did_you_mean("no-quorum-polcy"), Some("no-quorum-policy"));
        assert!(similar("cidr_netmask", "cidr_netmsk") && !similar("ip", "device"));
    }

    #[test]
    fn the_built_in_list_matches_the_installed_pacemaker() {
        // Where Pacemaker is installed, its own list must hold everything
        // the built-in copy names (else the copy is stale).
        let Some(installed) = installed_cluster_options() else { return };
        for n in CLUSTER_OPTIONS {
            assert!(installed.knows(n), "{n} is not a cluster option of the installed Pacemaker");
        }
    }
}
