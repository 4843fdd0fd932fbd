//! cluster.conf for Red Hat Cluster Suite (cman + rgmanager): cluster
//! nodes with their fence methods, fence devices, failover domains,
//! resources and services. A service's resources are nested in order, so
//! each starts after the one before it and stops before it, as a
//! Pacemaker group does.

use super::agents;
use super::model::{Description, FenceDevice, Node, Primitive, Service};
use crate::xml::Xml;

#[derive(Debug, thiserror::Error)]
pub enum ClusterConfError {
    #[error("cannot write resource {id} to cluster.conf: {why}")]
    NoElement { id: String, why: String },
    #[error("cannot write fence device {id} to cluster.conf: it fences several nodes and names no port for {node} (give ports = {{ {node} = \"...\" }})")]
    NoPort { id: String, node: String },
}

/// How a resource appears in cluster.conf: element name, primary attribute
/// (what a service's `ref=` names) and its attributes.
struct Element {
    tag: String,
    primary: String,
    attrs: Vec<(String, String)>,
}

/// rgmanager's own attributes each stock element takes besides the ones
/// translated from the agent's parameters (from the RHCS schema).
const FS_EXTRAS: &[&str] =
    &["self_fence", "fsid", "force_fsck", "quick_status", "nfslock", "nfsrestart", "use_findmnt"];
const LVM_EXTRAS: &[&str] = &["self_fence", "nfslock"];
/// What every rgmanager resource element takes.
const COMMON_EXTRAS: &[&str] = &[
    "__independent_subtree",
    "__enforce_timeouts",
    "__max_failures",
    "__failure_expire_time",
    "__max_restarts",
    "__restart_expire_time",
];

/// The rgmanager attributes a resource may set in its `rgmanager` table.
pub fn rgmanager_extras(p: &Primitive) -> Vec<&'static str> {
    let own: &[&str] = match element(p).map(|e| e.tag) {
        Ok(t) if t == "fs" => FS_EXTRAS,
        Ok(t) if t == "lvm" => LVM_EXTRAS,
        _ => &[],
    };
    own.iter().chain(COMMON_EXTRAS).copied().collect()
}

/// Parameters of an agent translated one by one to a stock element's
/// attributes (booleans as rgmanager's 0/1); a parameter without a
/// counterpart is refused rather than dropped.
fn translate(p: &Primitive, map: &[(&str, &str)]) -> Result<Vec<(String, String)>, ClusterConfError> {
    let mut attrs = vec![("name".to_string(), p.id.clone())];
    for x in &p.params {
        let Some((_, to)) = map.iter().find(|(from, _)| *from == x.name) else {
            let known: Vec<&str> = map.iter().map(|(f, _)| *f).collect();
            let why = format!(
                "rgmanager's element for {} has no counterpart of parameter '{}' (it takes {})",
                p.agent,
                x.name,
                known.join(", ")
            );
            return Err(ClusterConfError::NoElement { id: p.id.clone(), why });
        };
        // Pacemaker-side settings rgmanager has no use for (its HA-LVM
        // tagging or clvmd decide activation).
        if to.is_empty() {
            continue;
        }
        let value = match crate::ocf::params::parse_bool(&x.value) {
            Some(b) if *to == "force_unmount" || *to == "force_fsck" => u8::from(b).to_string(),
            _ => x.value.clone(),
        };
        attrs.push((to.to_string(), value));
    }
    Ok(attrs)
}

/// haven's agents become `haven-<agent>` elements (the name their
/// rgmanager meta-data gives); `lsb:NAME` becomes rgmanager's `script`,
/// ocf:heartbeat:Filesystem the stock `fs`, LVM/LVM-activate `lvm`, all
/// three named after the resource's id.
fn element(p: &Primitive) -> Result<Element, ClusterConfError> {
    let attrs: Vec<(String, String)> = p.params.iter().map(|x| (x.name.clone(), x.value.clone())).collect();
    let named = |tag: &str, attrs| Element { tag: tag.into(), primary: p.id.clone(), attrs };
    let element = if p.agent.is_haven() {
        let (tag, primary) = agents::rgmanager_element(&p.agent.kind).ok_or_else(|| ClusterConfError::NoElement {
            id: p.id.clone(),
            why: format!("haven has no agent {}", p.agent.kind),
        })?;
        Element { tag, primary: p.param(primary).unwrap_or_default().to_string(), attrs }
    } else if p.agent.class == "lsb" {
        named("script", vec![("name".into(), p.id.clone()), ("file".into(), format!("/etc/init.d/{}", p.agent.kind))])
    } else if p.agent.is("ocf", Some("heartbeat"), "Filesystem") {
        let map = [
            ("device", "device"),
            ("directory", "mountpoint"),
            ("fstype", "fstype"),
            ("options", "options"),
            ("force_unmount", "force_unmount"),
        ];
        named("fs", translate(p, &map)?)
    } else if p.agent.is("ocf", Some("heartbeat"), "LVM") {
        named("lvm", translate(p, &[("volgrpname", "vg_name"), ("exclusive", "")])?)
    } else if p.agent.is("ocf", Some("heartbeat"), "LVM-activate") {
        let map = [("vgname", "vg_name"), ("lvname", "lv_name"), ("vg_access_mode", ""), ("activation_mode", "")];
        named("lvm", translate(p, &map)?)
    } else {
        let why = format!(
            "rgmanager has no resource element for {} (haven's agents, lsb: scripts, ocf:heartbeat:Filesystem, LVM and LVM-activate have one)",
            p.agent
        );
        return Err(ClusterConfError::NoElement { id: p.id.clone(), why });
    };
    let mut element = element;
    element.attrs.extend(p.rgmanager.iter().map(|x| (x.name.clone(), x.value.clone())));
    Ok(element)
}

/// Why cluster.conf cannot hold this resource, if it cannot.
pub fn element_problem(p: &Primitive) -> Option<String> {
    element(p).err().map(|e| match e {
        ClusterConfError::NoElement { why, .. } => why,
        other => other.to_string(),
    })
}

fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The fence devices of one node, each with the port that fences it when
/// the device fences more than this node.
fn node_fencing<'a>(d: &'a Description, n: &Node) -> Result<Vec<(&'a FenceDevice, Option<String>)>, ClusterConfError> {
    let mut out = Vec::new();
    for f in d.fencing.devices.iter().filter(|f| f.hosts.is_empty() || f.hosts.contains(&n.name)) {
        let port = if f.hosts.len() == 1 && f.ports.is_empty() {
            None
        } else {
            let port = f.port_of(&n.name);
            Some(port.ok_or_else(|| ClusterConfError::NoPort { id: f.id.clone(), node: n.name.clone() })?)
        };
        out.push((f, port));
    }
    Ok(out)
}

fn clusternodes(x: &mut Xml, d: &Description) -> Result<(), ClusterConfError> {
    x.open("clusternodes", &[]);
    for n in &d.nodes {
        let id = n.id.to_string();
        x.open("clusternode", &[("name", &n.name), ("nodeid", &id)]);
        let devices = node_fencing(d, n)?;
        if !devices.is_empty() {
            x.open("fence", &[]);
            x.open("method", &[("name", "1")]);
            for (f, port) in devices {
                let mut attrs = vec![("name", f.id.as_str())];
                attrs.extend(port.as_deref().map(|p| ("port", p)));
                x.empty("device", &attrs);
            }
            x.close("method");
            x.close("fence");
        }
        x.close("clusternode");
    }
    x.close("clusternodes");
    if !d.fencing.devices.is_empty() {
        x.open("fencedevices", &[]);
        for f in &d.fencing.devices {
            let mut attrs = vec![("name", f.id.as_str()), ("agent", &f.agent)];
            attrs.extend(f.params.iter().map(|p| (p.name.as_str(), p.value.as_str())));
            x.empty("fencedevice", &attrs);
        }
        x.close("fencedevices");
    }
    Ok(())
}

fn domains(x: &mut Xml, d: &Description) {
    if d.domains.is_empty() {
        return;
    }
    x.open("failoverdomains", &[]);
    for fd in &d.domains {
        let attrs = [
            ("name", fd.name.as_str()),
            ("ordered", flag(fd.ordered)),
            ("restricted", flag(fd.restricted)),
            ("nofailback", flag(fd.nofailback)),
        ];
        x.open("failoverdomain", &attrs);
        for m in &fd.nodes {
            x.empty("failoverdomainnode", &[("name", &m.node.id), ("priority", &m.priority.to_string())]);
        }
        x.close("failoverdomain");
    }
    x.close("failoverdomains");
}

/// The `<resources>` section: every service member once, with its status
/// checks; returns the elements by resource id for the services' refs.
fn resources(x: &mut Xml, d: &Description) -> Result<Vec<(String, Element)>, ClusterConfError> {
    let members: Vec<&Primitive> =
        d.services.iter().flat_map(|s| s.resources.iter()).filter_map(|r| d.primitive(&r.id)).collect();
    let mut refs = Vec::new();
    if members.is_empty() {
        return Ok(refs);
    }
    x.open("resources", &[]);
    for p in &members {
        let e = element(p)?;
        x.comment(&format!("{} ({})", p.id, p.agent));
        let actions: Vec<_> = p.ops.iter().filter(|o| o.name == "monitor").collect();
        if actions.is_empty() {
            x.empty(&e.tag, &pairs(&e.attrs));
        } else {
            x.open(&e.tag, &pairs(&e.attrs));
            for o in actions {
                let mut attrs = vec![("name", "status"), ("depth", "*"), ("interval", o.interval.as_str())];
                attrs.extend(o.timeout.as_deref().map(|t| ("timeout", t)));
                x.empty("action", &attrs);
            }
            x.close(&e.tag);
        }
        refs.push((p.id.clone(), e));
    }
    x.close("resources");
    Ok(refs)
}

/// A service: its resources nested in order, each inside the one before.
fn service(x: &mut Xml, s: &Service, refs: &[(String, Element)]) {
    let (max_restarts, expire) = (s.max_restarts.to_string(), s.restart_expire_time.to_string());
    let mut a = vec![("name", s.name.as_str())];
    a.extend(s.domain.as_ref().map(|dom| ("domain", dom.id.as_str())));
    a.push(("autostart", flag(s.autostart)));
    a.push(("exclusive", flag(s.exclusive)));
    a.push(("recovery", s.recovery.as_str()));
    if s.max_restarts > 0 {
        a.push(("max_restarts", &max_restarts));
    }
    if s.restart_expire_time > 0 {
        a.push(("restart_expire_time", &expire));
    }
    x.open("service", &a);
    let chain: Vec<&Element> =
        s.resources.iter().filter_map(|r| refs.iter().find(|(id, _)| *id == r.id).map(|(_, e)| e)).collect();
    for (depth, e) in chain.iter().enumerate() {
        if depth + 1 == chain.len() {
            x.empty(&e.tag, &[("ref", &e.primary)]);
        } else {
            x.open(&e.tag, &[("ref", &e.primary)]);
        }
    }
    for e in chain.iter().rev().skip(1) {
        x.close(&e.tag);
    }
    x.close("service");
}

/// Render cluster.conf. `source` names the description in a comment.
pub fn render(d: &Description, source: &str) -> Result<String, ClusterConfError> {
    let mut x = Xml::new(2);
    x.declaration();
    x.comment(&format!("Generated by haven generate from {source}; edit the description, not this file."));
    x.open("cluster", &[("name", &d.cluster.name), ("config_version", "1")]);
    if d.nodes.len() == 2 {
        // Two nodes: either one alone keeps quorum; fencing settles a split.
        x.empty("cman", &[("two_node", "1"), ("expected_votes", "1")]);
    }
    clusternodes(&mut x, d)?;
    x.open("rm", &[]);
    domains(&mut x, d);
    let refs = resources(&mut x, d)?;
    for s in &d.services {
        service(&mut x, s, &refs);
    }
    x.close("rm");
    x.close("cluster");
    Ok(x.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::parse::parse;

    #[test]
    fn service_resources_nest_in_order() {
        let text = r#"
[cluster]
name = "c"
stacks = ["rhcs"]
[[node]]
name = "a"
[[node]]
name = "b"
[fencing]
sbd = { devices = ["/dev/sdb1"] }
[[resource]]
id = "ip"
agent = "ocf:haven:vip"
params = { ip = "198.51.100.7" }
[[resource.op]]
name = "monitor"
interval = "10s"
[[resource]]
id = "app"
agent = "lsb:app"
[[service]]
name = "s"
resources = ["ip", "app"]
"#;
        let x = render(&parse("t.toml", text).unwrap(), "t.toml").unwrap();
        assert!(x.contains("<cman two_node=\"1\" expected_votes=\"1\"/>"), "{x}");
        assert!(x.contains("<device name=\"fence-sbd\" port=\"a\"/>"), "{x}");
        assert!(x.contains("<action name=\"status\" depth=\"*\" interval=\"10s\"/>"), "{x}");
        let nested = "<haven-vip ref=\"198.51.100.7\">\n        <script ref=\"app\"/>\n      </haven-vip>";
        assert!(x.contains(nested), "{x}");
        assert!(x.contains("<script name=\"app\" file=\"/etc/init.d/app\"/>"), "{x}");
    }
}
