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
    } else if !v.is_ascii() {
        Some("holds non-ASCII text, which crmsh 4.4 stores as literal character references (&#252;)")
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
/// -based meta-data) with their types, for machines without Pacemaker:
/// name, type, and the choices of a `select`.
const CLUSTER_OPTIONS: &[(&str, &str, &[&str])] = &[
    ("no-quorum-policy", "select", &["stop", "freeze", "ignore", "demote", "suicide"]),
    ("symmetric-cluster", "boolean", &[]),
    ("maintenance-mode", "boolean", &[]),
    ("start-failure-is-fatal", "boolean", &[]),
    ("enable-startup-probes", "boolean", &[]),
    ("shutdown-lock", "boolean", &[]),
    ("shutdown-lock-limit", "time", &[]),
    ("stonith-enabled", "boolean", &[]),
    ("stonith-action", "select", &["reboot", "off", "poweroff"]),
    ("stonith-timeout", "time", &[]),
    ("have-watchdog", "boolean", &[]),
    ("concurrent-fencing", "boolean", &[]),
    ("startup-fencing", "boolean", &[]),
    ("priority-fencing-delay", "time", &[]),
    ("cluster-delay", "time", &[]),
    ("batch-limit", "integer", &[]),
    ("migration-limit", "integer", &[]),
    ("stop-all-resources", "boolean", &[]),
    ("stop-orphan-resources", "boolean", &[]),
    ("stop-orphan-actions", "boolean", &[]),
    ("remove-after-stop", "boolean", &[]),
    ("pe-error-series-max", "integer", &[]),
    ("pe-warn-series-max", "integer", &[]),
    ("pe-input-series-max", "integer", &[]),
    ("node-health-strategy", "select", &["none", "migrate-on-red", "only-green", "progressive", "custom"]),
    ("node-health-base", "integer", &[]),
    ("node-health-green", "integer", &[]),
    ("node-health-yellow", "integer", &[]),
    ("node-health-red", "integer", &[]),
    ("placement-strategy", "select", &["default", "utilization", "minimal", "balanced"]),
    ("dc-version", "string", &[]),
    ("cluster-infrastructure", "string", &[]),
    ("cluster-name", "string", &[]),
    ("dc-deadtime", "time", &[]),
    ("cluster-recheck-interval", "time", &[]),
    ("load-threshold", "percentage", &[]),
    ("node-action-limit", "integer", &[]),
    ("fence-reaction", "string", &[]),
    ("election-timeout", "time", &[]),
    ("shutdown-escalation", "time", &[]),
    ("join-integration-timeout", "time", &[]),
    ("join-finalization-timeout", "time", &[]),
    ("transition-delay", "time", &[]),
    ("stonith-watchdog-timeout", "time", &[]),
    ("stonith-max-attempts", "integer", &[]),
    ("enable-acl", "boolean", &[]),
    ("cluster-ipc-limit", "integer", &[]),
];

/// Why `value` is not of Pacemaker's option type `kind`, if it is not.
pub fn type_problem(kind: &str, choices: &[String], value: &str) -> Option<String> {
    let ok = match kind {
        "boolean" => {
            crate::ocf::params::parse_bool(value).is_some()
                || matches!(value.to_ascii_lowercase().as_str(), "y" | "n" | "on" | "off")
        }
        "integer" => {
            let v = value.strip_prefix(['-', '+']).unwrap_or(value);
            (!v.is_empty() && v.chars().all(|c| c.is_ascii_digit())) || v.eq_ignore_ascii_case("INFINITY")
        }
        "time" => super::parse::valid_duration(value),
        "count" => {
            let v = value.strip_prefix('+').unwrap_or(value);
            (!v.is_empty() && v.chars().all(|c| c.is_ascii_digit())) || v.eq_ignore_ascii_case("INFINITY")
        }
        "percentage" => {
            let v = value.strip_suffix('%').unwrap_or(value);
            !v.is_empty() && v.chars().all(|c| c.is_ascii_digit())
        }
        "select" => choices.iter().any(|c| c == value),
        _ => true,
    };
    if ok {
        return None;
    }
    Some(match kind {
        "select" => format!("one of {}", choices.join(", ")),
        "boolean" => "true or false".to_string(),
        "time" => "a time (30s, 5min, 1h, or seconds)".to_string(),
        "count" => "a count (0 or more, or INFINITY)".to_string(),
        other => format!("an {other}"),
    })
}

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
    /// name -> (type, choices), where the type is known.
    pub types: std::collections::BTreeMap<String, (String, Vec<String>)>,
    pub source: String,
}

impl Known {
    pub fn knows(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// Why `value` does not suit option `name`, if it does not.
    pub fn value_problem(&self, name: &str, value: &str) -> Option<String> {
        let (kind, choices) = self.types.get(name)?;
        type_problem(kind, choices, value)
    }

    /// The known name `name` is most likely a typo of.
    pub fn did_you_mean(&self, name: &str) -> Option<&str> {
        self.names.iter().map(String::as_str).find(|n| n.eq_ignore_ascii_case(name) || similar(n, name))
    }
}

fn built_in(names: &[&str], source: &str) -> Known {
    Known {
        names: names.iter().map(|n| n.to_string()).collect(),
        types: Default::default(),
        source: source.to_string(),
    }
}

fn built_in_cluster() -> Known {
    Known {
        names: CLUSTER_OPTIONS.iter().map(|(n, _, _)| n.to_string()).collect(),
        types: CLUSTER_OPTIONS
            .iter()
            .map(|(n, t, c)| (n.to_string(), (t.to_string(), c.iter().map(|c| c.to_string()).collect())))
            .collect(),
        source: "Pacemaker 2.1.5's cluster options".to_string(),
    }
}

/// Each `<parameter>`'s content type and `<option>` choices in a daemon's
/// meta-data.
fn option_types(xml: &str) -> std::collections::BTreeMap<String, (String, Vec<String>)> {
    use quick_xml::events::Event;
    let mut out = std::collections::BTreeMap::new();
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut current: Option<String> = None;
    let attr = |e: &quick_xml::events::BytesStart<'_>, n: &str| {
        e.try_get_attribute(n).ok().flatten().and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
    };
    while let Ok(event) = reader.read_event() {
        let e = match &event {
            Event::Start(e) | Event::Empty(e) => e,
            Event::Eof => break,
            _ => continue,
        };
        match e.local_name().as_ref() {
            b"parameter" => current = attr(e, "name"),
            b"content" => {
                if let (Some(name), Some(kind)) = (current.clone(), attr(e, "type")) {
                    out.insert(name, (kind, Vec::new()));
                }
            }
            b"option" => {
                let entry = current.as_ref().and_then(|n| out.get_mut(n));
                if let (Some((_, choices)), Some(v)) = (entry, attr(e, "value")) {
                    choices.push(v);
                }
            }
            _ => {}
        }
    }
    out
}

/// Where Pacemaker's daemons are installed (Debian, then RHEL/SUSE).
const DAEMON_DIRS: &[&str] = &["/usr/lib/pacemaker", "/usr/libexec/pacemaker"];
const DAEMONS: &[&str] = &["pacemaker-schedulerd", "pacemaker-controld", "pacemaker-based"];

/// The cluster options the installed Pacemaker declares, if it is here.
fn installed_cluster_options() -> Option<Known> {
    let dir = DAEMON_DIRS.iter().find(|d| std::path::Path::new(d).join(DAEMONS[0]).is_file())?;
    let mut names = Vec::new();
    let mut types = std::collections::BTreeMap::new();
    for daemon in DAEMONS {
        let program = format!("{dir}/{daemon}");
        let deadline = crate::ocf::Deadline::after(Duration::from_secs(10));
        let out = crate::exec::run_ok(&[&program, "metadata"], &deadline).ok()?;
        names.extend(super::agents::read_metadata(daemon, &out.stdout).ok()?.names);
        types.extend(option_types(&out.stdout));
    }
    names.sort();
    names.dedup();
    Some(Known { names, types, source: format!("the meta-data of {} in {dir}", DAEMONS.join(", ")) })
}

/// Cluster properties: from this machine's Pacemaker when `installed` and
/// it is there (read once per process), else the built-in list.
pub fn cluster_options(installed: bool) -> &'static Known {
    static INSTALLED: OnceLock<Known> = OnceLock::new();
    static BUILT_IN: OnceLock<Known> = OnceLock::new();
    let copy = built_in_cluster;
    if !installed {
        return BUILT_IN.get_or_init(copy);
    }
    INSTALLED.get_or_init(|| installed_cluster_options().unwrap_or_else(copy))
}

/// Types of the resource and operation meta attributes whose values
/// Pacemaker checks (it ignores or replaces a bad one with a warning).
const META_TYPES: &[(&str, &str, &[&str])] = &[
    ("priority", "integer", &[]),
    ("critical", "boolean", &[]),
    ("target-role", "select", &["Started", "Stopped", "Promoted", "Unpromoted", "Master", "Slave"]),
    ("is-managed", "boolean", &[]),
    ("maintenance", "boolean", &[]),
    ("resource-stickiness", "integer", &[]),
    ("requires", "select", &["nothing", "quorum", "fencing", "unfencing"]),
    ("migration-threshold", "count", &[]),
    ("failure-timeout", "time", &[]),
    ("multiple-active", "select", &["block", "stop_only", "stop_start", "stop_unexpected"]),
    ("allow-migrate", "boolean", &[]),
    ("globally-unique", "boolean", &[]),
    ("interleave", "boolean", &[]),
    ("ordered", "boolean", &[]),
    ("notify", "boolean", &[]),
    ("promotable", "boolean", &[]),
    ("clone-max", "count", &[]),
    ("clone-node-max", "count", &[]),
    ("clone-min", "count", &[]),
    ("promoted-max", "count", &[]),
    ("promoted-node-max", "count", &[]),
    ("timeout", "time", &[]),
    ("interval", "time", &[]),
    ("start-delay", "time", &[]),
    ("on-fail", "select", &["ignore", "block", "stop", "restart", "fence", "standby", "demote"]),
    ("record-pending", "boolean", &[]),
    ("enabled", "boolean", &[]),
];

fn with_types(mut k: Known) -> Known {
    let typed: Vec<_> = META_TYPES.iter().filter(|(n, _, _)| k.knows(n)).collect();
    for (n, t, c) in typed {
        k.types.insert(n.to_string(), (t.to_string(), c.iter().map(|c| c.to_string()).collect()));
    }
    k
}

pub fn resource_meta() -> Known {
    with_types(built_in(RESOURCE_META, "Pacemaker's resource meta attributes"))
}

pub fn operation_meta() -> Known {
    with_types(built_in(OPERATION_META, "Pacemaker's operation attributes"))
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
        assert!(k.value_problem("stop-all-resources", "freeze").is_some());
        assert!(k.value_problem("no-quorum-policy", "freeze").is_none());
        assert!(k.value_problem("no-quorum-policy", "stopp").unwrap().contains("demote"));
        assert!(k.value_problem("stonith-timeout", "60s").is_none() && k.value_problem("batch-limit", "x").is_some());
        assert!(similar("cidr_netmask", "cidr_netmsk") && !similar("ip", "device"));
    }

    #[test]
    fn the_built_in_list_matches_the_installed_pacemaker() {
        // Where Pacemaker is installed, its own list must hold everything
        // the built-in copy names (else the copy is stale).
        let Some(installed) = installed_cluster_options() else { return };
        for (n, kind, _) in CLUSTER_OPTIONS {
            assert!(installed.knows(n), "{n} is not a cluster option of the installed Pacemaker");
            assert_eq!(installed.types.get(*n).map(|t| t.0.as_str()), Some(*kind), "{n}");
        }
    }
}
