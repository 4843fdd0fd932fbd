//! What the generator knows about resource agents: their parameter names
//! (haven's own specs, a table for haven agents that are not released yet,
//! and installed agents' meta-data read through crm_resource), their
//! default monitor, their rgmanager element, and the part they play in a
//! cluster (address, storage, fencing, service) for lint.

use super::model::AgentRef;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("failed to run crm_resource --show-metadata {agent}: {source}")]
    Spawn { agent: String, source: std::io::Error },
    #[error("crm_resource --show-metadata {agent} did not finish within {secs} s")]
    Timeout { agent: String, secs: u64 },
    #[error("crm_resource --show-metadata {agent} failed: {stderr}")]
    Failed { agent: String, stderr: String },
    #[error("failed to parse the meta-data of {agent}: {why}")]
    Xml { agent: String, why: String },
}

/// The parameters an agent declares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParamInfo {
    pub names: Vec<String>,
    pub required: Vec<String>,
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
}

/// haven's own agents, plus the agents installed on this machine (through
/// `crm_resource --show-metadata`) when `installed` is true. Results are
/// cached per agent.
pub struct SystemCatalog {
    installed: bool,
    cache: RefCell<BTreeMap<String, Option<ParamInfo>>>,
}

impl SystemCatalog {
    pub fn new(installed: bool) -> SystemCatalog {
        SystemCatalog { installed, cache: RefCell::new(BTreeMap::new()) }
    }
}

impl Catalog for SystemCatalog {
    fn params(&self, agent: &AgentRef) -> Option<ParamInfo> {
        if agent.is_haven() {
            return haven_params(&agent.kind);
        }
        if !self.installed || which("crm_resource").is_none() {
            return None;
        }
        let key = agent.to_string();
        if let Some(hit) = self.cache.borrow().get(&key) {
            return hit.clone();
        }
        // An agent that is not installed here, or whose meta-data is
        // broken, is simply not checked: lint says what it could check.
        let found = installed_params(&key).ok();
        self.cache.borrow_mut().insert(key, found.clone());
        found
    }
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file())
}

const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

/// Run `crm_resource --show-metadata AGENT` (argv, bounded in time) and
/// read the parameter names.
pub fn installed_params(agent: &str) -> Result<ParamInfo, MetadataError> {
    let xml = run_metadata(agent)?;
    parse_params(agent, &xml)
}

fn run_metadata(agent: &str) -> Result<String, MetadataError> {
    let tool = which("crm_resource").unwrap_or_else(|| "crm_resource".into());
    let mut child = Command::new(tool)
        .args(["--show-metadata", agent])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| MetadataError::Spawn { agent: agent.to_string(), source })?;
    // Readers on their own threads, so a large document cannot block the
    // child on a full pipe while we wait for it.
    let reader = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = reader(child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let err = reader(child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < METADATA_TIMEOUT => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(MetadataError::Timeout { agent: agent.to_string(), secs: METADATA_TIMEOUT.as_secs() });
            }
            Err(source) => return Err(MetadataError::Spawn { agent: agent.to_string(), source }),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        return Err(MetadataError::Failed { agent: agent.to_string(), stderr: stderr.trim().to_string() });
    }
    Ok(stdout)
}

/// The `<parameter name=.. required=..>` entries of a meta-data document.
pub fn parse_params(agent: &str, xml: &str) -> Result<ParamInfo, MetadataError> {
    // Agents' meta-data starts with a DOCTYPE (ra-api-1.dtd).
    let options = roxmltree::ParsingOptions { allow_dtd: true, ..roxmltree::ParsingOptions::default() };
    let doc = roxmltree::Document::parse_with_options(xml, options)
        .map_err(|e| MetadataError::Xml { agent: agent.to_string(), why: e.to_string() })?;
    let mut info = ParamInfo { source: format!("the installed {agent} meta-data"), ..ParamInfo::default() };
    for p in doc.descendants().filter(|n| n.has_tag_name("parameter")) {
        let Some(name) = p.attribute("name") else { continue };
        info.names.push(name.to_string());
        if matches!(p.attribute("required"), Some("1" | "true")) {
            info.required.push(name.to_string());
        }
    }
    if info.names.is_empty() && !doc.descendants().any(|n| n.has_tag_name("parameters")) {
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
            <parameter name="b"/></parameters></resource-agent>"#;
        let p = parse_params("ocf:t:x", xml).unwrap();
        assert_eq!(p.names, vec!["a", "b"]);
        assert_eq!(p.required, vec!["a"]);
        assert!(parse_params("ocf:t:x", "<nope").is_err());
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
