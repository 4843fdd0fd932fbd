//! The parameters and actions of ocf:haven:instance.

use crate::ocf::agent::{ActionSpec, AgentSpec};
use crate::ocf::params::{Kind, ParamSpec, Value};
use crate::ocf::Action;

/// A name used in paths and cgroup names: letters, digits, '.', '_', '-',
/// starting with a letter or digit, at most 64 characters.
pub fn check_name(s: &str) -> Result<Value, String> {
    let t = s.trim();
    if is_name(t) {
        Ok(Value::Str(t.to_string()))
    } else {
        Err("1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit".into())
    }
}

pub fn is_name(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.starts_with(|c: char| c.is_ascii_alphanumeric())
        && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn check_hostname(s: &str) -> Result<Value, String> {
    let t = s.trim().trim_end_matches('.');
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if t.is_empty() || t.len() > 253 || !t.split('.').all(label_ok) {
        return Err("a host name such as mail1.example.com (letters, digits, '-', dot-separated)".into());
    }
    Ok(Value::Str(t.to_ascii_lowercase()))
}

/// An absolute directory other than "/", without "." or ".." components,
/// normalised (no doubled or trailing slashes).
fn check_datadir(s: &str) -> Result<Value, String> {
    let t = s.trim();
    if t.contains(['\0', '\n', '\r', '\t']) {
        return Err("control characters are not allowed".into());
    }
    if !t.starts_with('/') {
        return Err("must be an absolute path".into());
    }
    let parts: Vec<&str> = t.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err("the data directory cannot be /".into());
    }
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err("'.' and '..' are not allowed".into());
    }
    Ok(Value::Str(format!("/{}", parts.join("/"))))
}

fn check_user(s: &str) -> Result<Value, String> {
    let t = s.trim();
    let ok = !t.is_empty()
        && t.len() <= 32
        && !t.starts_with('-')
        && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '$'));
    if ok && (t == "root" || t == "0") {
        Err("not root: services run as root only when their instance file says user = \"root\"".into())
    } else if ok {
        Ok(Value::Str(t.to_string()))
    } else {
        Err("a user name (letters, digits, '.', '_', '-')".into())
    }
}

pub static PARAMS: &[ParamSpec] = &[
    ParamSpec::new(
        "name",
        Kind::Custom { check: check_name, hint: "Letters, digits, '.', '_', '-'; at most 64." },
        "instance name",
        "The instance's name (mail1, web1), unique in the cluster. Its processes live in the cgroup \
         haven/instance/<name> and its runtime state (logs, rendered files) in /run/haven/instance/<name>/. \
         Services see it as HAVEN_INSTANCE.",
    )
    .required()
    .unique(),
    ParamSpec::new(
        "hostname",
        Kind::Custom { check: check_hostname, hint: "A fully qualified host name." },
        "virtual host name",
        "The instance's own host name (mail1.example.com), which moves with it. Services see it as \
         HAVEN_HOSTNAME; HTTP probes send it as Host. Defaults to the instance name.",
    ),
    ParamSpec::new(
        "ip",
        Kind::IpAddr,
        "instance address",
        "The address the instance's services bind to and are probed on (the address of the vip resource \
         started before it). start refuses when it is not an address of this node. Services see it as HAVEN_IP.",
    )
    .default("127.0.0.1"),
    ParamSpec::new(
        "datadir",
        Kind::Custom { check: check_datadir, hint: "An absolute directory other than /." },
        "data directory",
        "The instance's data directory on shared storage. start refuses unless a filesystem other than its parent \
         directory's is mounted there, so that an unmounted volume never gets written to the node's own disk. \
         Monitor depth 20 writes and reads back a file in it. Services see it as HAVEN_DATADIR and run in it \
         unless their instance file says otherwise.",
    )
    .required(),
    ParamSpec::new(
        "config",
        Kind::Path,
        "instance file",
        "The instance file (TOML): the services in start order, each with its argv, working directory, \
         environment, user, probe, stop signal and timeout, role and whether it is optional. Defaults to \
         <datadir>/instance.toml, so the file moves with the data. See examples/instances/.",
    ),
    ParamSpec::new(
        "user",
        Kind::Custom { check: check_user, hint: "A user name." },
        "default user",
        "The user services run as when their instance file does not name one (not root: a service runs as root \
         only when its instance file says user = \"root\"). Defaults to nobody.",
    ),
    ParamSpec::new(
        "promotion_score",
        Kind::Integer { min: 0, max: 1_000_000 },
        "promotion preference",
        "In a promotable clone: the promotion score this node publishes (crm_attribute --promotion) when the \
         instance starts here; the node with the highest score is promoted. 0 means never promote here.",
    )
    .default("10"),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "instance",
    shortdesc: "A hosting instance: its services, their processes in one cgroup, moving as a unit",
    longdesc: "Runs one named instance of a web or mail stack: the services its instance file lists, in order, \
each in the foreground in a cgroup (v2) of the instance, detached from Pacemaker (own session, output to \
/run/haven/instance/<name>/<service>.log). start refuses unless the data directory is a mounted filesystem, waits \
for each service's probe before starting the next, and needs the instance's ip on this node. stop goes through the \
services in reverse order, sends each its stop signal, and after its stop timeout kills every process left in its \
cgroup, including children that left their session or ignore signals, all within the action's timeout. Monitor \
depth 0 checks that every service's process is alive (reading /proc, forking nothing), depth 10 runs every \
service's probe (TCP connect, HTTP, SMTP/POP3/IMAP/FTP greeting, request/answer, or an external command) against \
the instance's ip and hostname, depth 20 also writes and reads back a file in the data directory. A stopped \
optional service makes the instance degraded (190) instead of failed. As a promotable clone, promote starts the \
services marked role = \"promoted\" and demote stops them; monitor says 8 while promoted, and start publishes \
promotion_score with crm_attribute. `haven instance list` shows the instances known on this node.",
    params: PARAMS,
    actions: &[
        ActionSpec::new(Action::Start, 60),
        ActionSpec::new(Action::Stop, 60),
        ActionSpec::new(Action::Monitor, 30).depth(0).every(10),
        ActionSpec::new(Action::Monitor, 30).depth(10).every(31),
        ActionSpec::new(Action::Monitor, 60).depth(20).every(121),
        ActionSpec::new(Action::Monitor, 30).depth(0).every(9).role("Promoted"),
        ActionSpec::new(Action::Promote, 60),
        ActionSpec::new(Action::Demote, 60),
        ActionSpec::new(Action::Notify, 10),
        ActionSpec::new(Action::ValidateAll, 20),
        ActionSpec::new(Action::MetaData, 5),
    ],
    depths: &[0, 10, 20],
    primary: "name",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("mail1").is_ok() && check_name("web-1.a_b").is_ok());
        assert!(check_name("../x").is_err() && check_name("-x").is_err() && check_name("a b").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn hostnames_and_dirs() {
        assert_eq!(check_hostname("Mail1.Example.COM."), Ok(Value::Str("mail1.example.com".into())));
        assert!(check_hostname("mail1;reboot").is_err() && check_hostname("-x.example").is_err());
        assert_eq!(check_datadir("//srv//mail1/"), Ok(Value::Str("/srv/mail1".into())));
        assert!(check_datadir("/").is_err() && check_datadir("srv").is_err() && check_datadir("/srv/../etc").is_err());
        assert!(check_user("www-data").is_ok() && check_user("root;id").is_err());
    }
}
