//! What the generator knows about resource agents: their parameter names
//! (haven's own specs, a table for haven agents that are not released yet,
//! and installed agents' meta-data read through crm_resource), their
//! default monitor, their rgmanager element, and the part they play in a
//! cluster (address, storage, fencing, service) for lint.

use super::model::AgentRef;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("failed to read the meta-data of {agent}: {source}")]
    Run { agent: String, source: crate::exec::ExecError },
    #[error("failed to parse the meta-data of {agent}: {why}")]
    Xml { agent: String, why: String },
}

/// The parameters an agent declares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParamInfo {
    pub names: Vec<String>,
    pub required: Vec<String>,
    /// The actions (operation names) the agent declares.
    pub actions: Vec<String>,
    /// Where the names came from, for messages.
    pub source: String,
}

impl ParamInfo {
    pub fn knows(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

/// Every haven agent lint knows.
pub fn haven_agent_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = crate::agents::names().collect();
    names.sort_unstable();
    names
}

/// A haven agent's rgmanager element in cluster.conf and its primary
/// attribute: from the agent's spec (the same names its rgmanager
/// meta-data gives).
pub fn rgmanager_element(kind: &str) -> Option<(String, &'static str)> {
    let spec = crate::agents::find(kind)?.spec();
    Some((crate::ocf::metadata::rgmanager_name(spec), spec.primary))
}

/// Parameters of a haven agent, from its spec.
pub fn haven_params(kind: &str) -> Option<ParamInfo> {
    let spec = crate::agents::find(kind)?.spec();
    Some(ParamInfo {
        names: spec.params.iter().map(|p| p.name.to_string()).collect(),
        required: spec.params.iter().filter(|p| p.required).map(|p| p.name.to_string()).collect(),
        actions: spec.actions.iter().map(|a| a.action.as_str().to_string()).collect(),
        source: format!("haven's {kind} meta-data"),
    })
}

/// The default monitor (interval, timeout) in seconds for an agent that
/// the description gives none for: haven's spec where it has one, else
/// values that suit the kind of agent.
pub fn default_monitor(agent: &AgentRef) -> (u32, u32) {
    if agent.is_haven() {
        if let Some(a) = crate::agents::find(&agent.kind) {
            let m = a.spec().actions.iter().find(|a| a.action == crate::ocf::Action::Monitor);
            if let Some(m) = m {
                return (m.interval_secs.unwrap_or(10), m.timeout_secs);
            }
        }
    }
    match agent.class.as_str() {
        // The fencer checks devices rarely; pcs uses 60 s too.
        "stonith" => (60, 20),
        _ if is_storage(agent) => (20, 40),
        _ => (30, 30),
    }
}

/// Addresses that move with a service.
pub fn is_address(a: &AgentRef) -> bool {
    a.is("ocf", Some("haven"), "vip")
        || a.is("ocf", Some("heartbeat"), "IPaddr2")
        || a.is("ocf", Some("heartbeat"), "IPaddr")
        || a.is("ocf", Some("heartbeat"), "IPv6addr")
}

pub fn is_filesystem(a: &AgentRef) -> bool {
    a.is("ocf", Some("haven"), "filesystem") || a.is("ocf", Some("heartbeat"), "Filesystem")
}

/// The DLM control daemon cluster filesystems need.
pub fn is_dlm(a: &AgentRef) -> bool {
    a.is("ocf", Some("pacemaker"), "controld")
}

/// Shared storage and the plumbing it needs: filesystems, volume managers,
/// DLM and o2cb.
pub fn is_storage(a: &AgentRef) -> bool {
    is_filesystem(a)
        || is_dlm(a)
        || a.is("ocf", Some("pacemaker"), "o2cb")
        || a.is("ocf", Some("ocfs2"), "o2cb")
        || a.is("ocf", Some("heartbeat"), "LVM")
        || a.is("ocf", Some("heartbeat"), "LVM-activate")
        || a.is("ocf", Some("heartbeat"), "lvmlockd")
        || a.is("ocf", Some("heartbeat"), "clvm")
}

/// A service: anything that is not an address, storage or a fence device.
/// This is what a VIP must be colocated with.
pub fn is_service(a: &AgentRef) -> bool {
    a.class != "stonith" && !is_address(a) && !is_storage(a)
}

/// Filesystems that several nodes may mount at once: cluster filesystems
/// (which need DLM), network filesystems, and per-node memory.
pub fn cluster_fstype(fstype: &str) -> bool {
    matches!(fstype, "ocfs2" | "gfs2")
}

pub fn cloneable_fstype(fstype: &str) -> bool {
    cluster_fstype(fstype)
        || matches!(fstype, "nfs" | "nfs4" | "cifs" | "smb3" | "glusterfs" | "ceph" | "cephfs" | "tmpfs" | "9p")
}

/// Where lint looks up parameter names.
pub trait Catalog {
    fn params(&self, agent: &AgentRef) -> Option<ParamInfo>;
    /// Look up many agents at once (ahead of `params` for each).
    fn prefetch(&self, _agents: &[AgentRef]) {}
}

/// What LSB init scripts, systemd units and `service:` resources declare:
/// no parameters, and the actions Pacemaker runs them with.
fn script_info(agent: &AgentRef) -> ParamInfo {
    ParamInfo {
        names: Vec::new(),
        required: Vec::new(),
        actions: ["start", "stop", "monitor", "status", "meta-data"].iter().map(|a| a.to_string()).collect(),
        source: format!("the {} class (its resources take no parameters)", agent.class),
    }
}

/// Installed agents' meta-data, looked up once per agent per process.
fn cache() -> &'static Mutex<BTreeMap<String, Option<ParamInfo>>> {
    static CACHE: OnceLock<Mutex<BTreeMap<String, Option<ParamInfo>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// How many `crm_resource` run at once: each is a short-lived process
/// mostly waiting on the agent's shell script.
const PARALLEL_LOOKUPS: usize = 8;

/// haven's own agents, plus the agents installed on this machine (through
/// `crm_resource --show-metadata`) when `installed` is true.
pub struct SystemCatalog {
    installed: bool,
}

impl SystemCatalog {
    pub fn new(installed: bool) -> SystemCatalog {
        SystemCatalog { installed: installed && crate::exec::which("crm_resource").is_some() }
    }
}

impl Catalog for SystemCatalog {
    fn params(&self, agent: &AgentRef) -> Option<ParamInfo> {
        if agent.is_haven() {
            return haven_params(&agent.kind);
        }
        if matches!(agent.class.as_str(), "lsb" | "systemd" | "service") {
            return Some(script_info(agent));
        }
        if !self.installed {
            return None;
        }
        let key = agent.to_string();
        if let Some(hit) = cache().lock().ok()?.get(&key) {
            return hit.clone();
        }
        // An agent that is not installed here, or whose meta-data is
        // broken, is simply not checked: lint says what it could check.
        let found = installed_params(&key).ok();
        cache().lock().ok()?.insert(key, found.clone());
        found
    }

    fn prefetch(&self, agents: &[AgentRef]) {
        if !self.installed {
            return;
        }
        let mut todo: Vec<String> = agents
            .iter()
            .filter(|a| a.class == "ocf" || a.class == "stonith")
            .filter(|a| !a.is_haven())
            .map(|a| a.to_string())
            .collect();
        todo.sort();
        todo.dedup();
        if let Ok(c) = cache().lock() {
            todo.retain(|k| !c.contains_key(k));
        }
        let chunk = todo.len().div_ceil(PARALLEL_LOOKUPS).max(1);
        std::thread::scope(|scope| {
            for part in todo.chunks(chunk) {
                scope.spawn(move || {
                    for key in part {
                        let found = installed_params(key).ok();
                        if let Ok(mut c) = cache().lock() {
                            c.insert(key.clone(), found);
                        }
                    }
                });
            }
        });
    }
}

const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

/// Run `crm_resource --show-metadata AGENT` (through [`crate::exec`]:
/// argv, bounded in time) and read the parameter names.
pub fn installed_params(agent: &str) -> Result<ParamInfo, MetadataError> {
    let deadline = crate::ocf::Deadline::after(METADATA_TIMEOUT);
    let out = crate::exec::run_ok(&["crm_resource", "--show-metadata", agent], &deadline)
        .map_err(|source| MetadataError::Run { agent: agent.to_string(), source })?;
    read_metadata(agent, &out.stdout)
}

/// The value of attribute `name` of an element, unescaped.
fn attribute(e: &BytesStart<'_>, name: &str) -> Option<String> {
    let a = e.try_get_attribute(name).ok()??;
    a.unescape_value().ok().map(|v| v.into_owned())
}

/// The `<parameter name=.. required=..>` and `<action name=..>` entries of
/// a meta-data document (an OCF agent's or a Pacemaker daemon's), read
/// with quick-xml's pull parser.
pub fn read_metadata(agent: &str, xml: &str) -> Result<ParamInfo, MetadataError> {
    let mut info = ParamInfo { source: format!("the installed {agent} meta-data"), ..ParamInfo::default() };
    let mut reader = Reader::from_str(xml);
    let mut parameters = false;
    let mut depth = 0usize;
    loop {
        let event = reader.read_event().map_err(|e| MetadataError::Xml {
            agent: agent.to_string(),
            why: format!("at byte {}: {e}", reader.buffer_position()),
        })?;
        let (e, empty) = match &event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        if !empty {
            depth += 1;
        }
        match e.local_name().as_ref() {
            b"parameters" => parameters = true,
            b"parameter" => {
                let Some(name) = attribute(e, "name") else { continue };
                if matches!(attribute(e, "required").as_deref(), Some("1" | "true")) {
                    info.required.push(name.clone());
                }
                info.names.push(name);
            }
            b"action" => info.actions.extend(attribute(e, "name")),
            _ => {}
        }
    }
    if depth != 0 {
        return Err(MetadataError::Xml { agent: agent.to_string(), why: "the document ends inside an element".into() });
    }
    if info.names.is_empty() && !parameters {
        return Err(MetadataError::Xml { agent: agent.to_string(), why: "no <parameters> element".into() });
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haven_agents_known_built_in_or_pending() {
        let vip = haven_params("vip").unwrap();
        assert!(vip.knows("ip") && vip.knows("lvs_support") && vip.required == vec!["ip"]);
        for kind in ["filesystem", "director", "instance"] {
            assert!(haven_params(kind).is_some(), "{kind}");
        }
        assert!(haven_params("nonesuch").is_none());
    }

    #[test]
    fn metadata_parameters_are_read() {
        let xml = r#"<?xml version="1.0"?><!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
            <resource-agent name="x"><parameters>
            <parameter name="a" required="1"><content type="string"/></parameter>
            <parameter name="b"/></parameters><actions><action name="start" timeout="20s"/></actions></resource-agent>"#;
        let p = read_metadata("ocf:t:x", xml).unwrap();
        assert_eq!(p.names, vec!["a", "b"]);
        assert_eq!(p.required, vec!["a"]);
        assert_eq!(p.actions, vec!["start"]);
        assert!(read_metadata("ocf:t:x", "<nope").is_err());
        assert!(read_metadata("ocf:t:x", "<a><parameters>").is_err());
    }

    #[test]
    fn roles() {
        let a = |c: &str, p: Option<&str>, k: &str| AgentRef {
            class: c.into(),
            provider: p.map(str::to_string),
            kind: k.into(),
        };
        assert!(is_address(&a("ocf", Some("heartbeat"), "IPaddr2")));
        assert!(is_service(&a("ocf", Some("haven"), "director")));
        assert!(is_service(&a("systemd", None, "apache2")));
        assert!(!is_service(&a("ocf", Some("haven"), "filesystem")));
        assert!(!is_service(&a("stonith", None, "fence_sbd")));
        assert!(cloneable_fstype("nfs") && !cloneable_fstype("ext4"));
    }
}
