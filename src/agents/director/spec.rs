//! The director agent's parameters: ocf:heartbeat:ldirectord's configfile,
//! the backend, and a few parameters for a single service without a file.

use crate::ocf::agent::{ActionSpec, AgentSpec};
use crate::ocf::params::{Kind, ParamSpec, Value};
use crate::ocf::Action;

fn check_table(s: &str) -> Result<Value, String> {
    let ok = !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(Value::Str(s.to_string()))
    } else {
        Err("letters, digits and '_' (at most 32)".into())
    }
}

/// A value that goes into the generated ldirectord.cf line: no newline, no
/// '#', no '=' surprises beyond what the syntax allows.
fn check_cf_value(s: &str) -> Result<Value, String> {
    if s.contains(['\n', '\r', '\0', '#']) {
        return Err("newlines and '#' are not allowed".into());
    }
    Ok(Value::Str(s.trim().to_string()))
}

pub static PARAMS: &[ParamSpec] = &[
    ParamSpec::new(
        "configfile",
        Kind::Path,
        "configuration file",
        "An ldirectord.cf-style file (virtual/virtual6 blocks with real servers, checks and schedulers), as \
         ocf:heartbeat:ldirectord takes it. When empty, the single service described by virtual and real is used.",
    ),
    ParamSpec::new(
        "backend",
        Kind::Enum(&["auto", "nftables", "ipvs"]),
        "kernel data plane",
        "Which kernel engine holds the table: nftables (a table of haven's own, DNAT), ipvs, or auto (the \
         configuration's choice, else nftables). Overrides the file's backend setting.",
    ),
    ParamSpec::new(
        "table",
        Kind::Custom { check: check_table, hint: "Letters, digits and '_'." },
        "table name",
        "The nftables table (and state directory under /run/haven/director) of this director; defaults to \
         haven_<resource id>.",
    ),
    ParamSpec::new(
        "virtual",
        Kind::Custom { check: check_cf_value, hint: "ip:port or [ipv6]:port." },
        "virtual service",
        "Without configfile: the virtual service, e.g. 198.51.100.10:80.",
    ),
    ParamSpec::new(
        "real",
        Kind::Custom { check: check_cf_value, hint: "Space-separated ip[:port][,weight]." },
        "real servers",
        "Without configfile: the real servers, e.g. '203.0.113.11:80 203.0.113.12:80,2'.",
    ),
    ParamSpec::new(
        "method",
        Kind::Enum(&["gate", "masq", "ipip"]),
        "forwarding method",
        "Without configfile: how packets reach the real servers (the nftables backend always rewrites the \
         destination, so real servers must route their answers through the director).",
    )
    .default("masq"),
    ParamSpec::new(
        "service",
        Kind::Enum(&["http", "https", "smtp", "pop", "imap", "ftp", "mysql", "simpletcp", "none"]),
        "service to check",
        "Without configfile: the protocol of negotiate checks (default from the port).",
    ),
    ParamSpec::new(
        "checktype",
        Kind::Enum(&["connect", "negotiate", "ping", "on", "off"]),
        "check type",
        "Without configfile: how real servers are checked.",
    )
    .default("negotiate"),
    ParamSpec::new("request", Kind::Custom { check: check_cf_value, hint: "A path for http." }, "check request", "Without configfile: what negotiate checks ask for (a path for http).")
        .default("/"),
    ParamSpec::new("receive", Kind::Custom { check: check_cf_value, hint: "A regular expression." }, "expected answer", "Without configfile: a regular expression the answer must match."),
    ParamSpec::new("scheduler", Kind::Enum(&["rr", "wrr", "lc", "wlc", "sh", "dh", "sed", "nq"]), "scheduler", "Without configfile: how connections are spread.")
        .default("wrr"),
    ParamSpec::new("checkinterval", Kind::Integer { min: 1, max: 3600 }, "check interval (s)", "Without configfile: seconds between checks of a real server.")
        .default("10"),
    ParamSpec::new("checktimeout", Kind::Integer { min: 1, max: 3600 }, "check timeout (s)", "Without configfile: seconds a check may take.")
        .default("5"),
    ParamSpec::new("failurecount", Kind::Integer { min: 1, max: 100 }, "failures before removal", "Without configfile: failed checks before a real server is taken out.")
        .default("1"),
    ParamSpec::new("quiescent", Kind::Boolean, "quiescent removal", "Without configfile: a failed real server keeps weight 0 (established connections continue) instead of being removed.")
        .default("yes"),
    ParamSpec::new("fallback", Kind::Custom { check: check_cf_value, hint: "ip:port." }, "fallback server", "Without configfile: where connections go when every real server is down."),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "director",
    shortdesc: "Load balancer: health-checked real servers on the kernel's data plane (ldirectord's job)",
    longdesc: "Runs haven's director daemon, which checks the real servers of each virtual service (connect, \
http/https requests, mail and ftp greetings, ping, external commands) concurrently and keeps a kernel table \
(nftables DNAT; IPVS where the kernel has it) in line with their health: a real server leaves after failurecount \
failed checks and returns after one good check, quiescent real servers keep their established connections, and \
a fallback server takes over when all are down. The configuration is ldirectord.cf, so an existing file works as \
it is; autoreload and SIGHUP apply a changed file, and a broken file keeps the running table. start returns when \
the table is programmed; monitor checks the daemon is alive and that the kernel still holds its table (depth 10: \
the file is still valid); stop ends the daemon and verifies the table is gone.",
    params: PARAMS,
    actions: &[
        ActionSpec::new(Action::Start, 30),
        ActionSpec::new(Action::Stop, 30),
        ActionSpec::new(Action::Monitor, 20).depth(0).every(20),
        ActionSpec::new(Action::Monitor, 20).depth(10).every(60),
        ActionSpec::new(Action::ValidateAll, 10),
        ActionSpec::new(Action::MetaData, 5),
    ],
    depths: &[0, 10],
    primary: "configfile",
};
