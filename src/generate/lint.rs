//! Lint: descriptions that would not load, would lose data, or would never
//! fail over are refused here, each finding with file, line and the rule
//! that caught it. Generation runs lint first and stops on any finding.

use super::agents::{self, Catalog};
use super::model::*;
use super::options::{self, Known};
use super::{cluster_conf, constraints};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The rules, by the name a finding shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LintRule {
    /// An id that Pacemaker or cluster.conf cannot take.
    InvalidId,
    /// Two objects with one id (or two operations with one name and interval).
    DuplicateId,
    /// A name that refers to nothing (or to the wrong kind of object).
    UnknownReference,
    /// A resource in two containers, or a container of the wrong thing.
    Membership,
    /// A haven agent that does not exist.
    UnknownAgent,
    /// A parameter the agent does not declare.
    UnknownParameter,
    /// A parameter the agent requires but the description does not set.
    MissingParameter,
    /// A constraint naming what is inside a clone instead of the clone.
    CloneChild,
    /// A clone that destroys data (a local filesystem on several nodes) or
    /// that Pacemaker refuses (a promotable clone of a non-OCF agent).
    LocalFsClone,
    /// Shared storage or promotable resources without fencing.
    NoFencing,
    /// A virtual IP that is not tied to the service it serves.
    VipWithoutService,
    /// An OCFS2/GFS2 clone without DLM ordered before it, or without
    /// interleave.
    DlmDependency,
    /// A construct the targeted stack cannot express, or RHCS and
    /// Pacemaker placement mixed on one object.
    StackMix,
    /// A setting with a dedicated place in the description.
    ReservedSetting,
    /// A property, attribute or parameter name no output can carry.
    InvalidName,
    /// A value no output can carry (or that crm/pcs would misread).
    InvalidValue,
    /// A cluster property, resource or operation default Pacemaker does not know.
    UnknownOption,
    /// An operation the agent does not declare.
    UnknownOperation,
    /// Orders that form a cycle (or order a resource after itself).
    OrderCycle,
    /// Colocations that form a cycle (or place a resource with itself).
    ColocationCycle,
    /// Constraints that leave a resource no node to run on.
    NowhereToRun,
    /// A fence device for several nodes without each node's port.
    FencePort,
    /// A promotable clone of an agent that cannot be promoted.
    PromotableAgent,
}

impl LintRule {
    pub fn name(self) -> &'static str {
        match self {
            LintRule::InvalidId => "invalid-id",
            LintRule::DuplicateId => "duplicate-id",
            LintRule::UnknownReference => "unknown-reference",
            LintRule::Membership => "membership",
            LintRule::UnknownAgent => "unknown-agent",
            LintRule::UnknownParameter => "unknown-parameter",
            LintRule::MissingParameter => "missing-parameter",
            LintRule::CloneChild => "clone-child",
            LintRule::LocalFsClone => "local-fs-clone",
            LintRule::NoFencing => "no-fencing",
            LintRule::VipWithoutService => "vip-without-service",
            LintRule::DlmDependency => "dlm-dependency",
            LintRule::StackMix => "stack-mix",
            LintRule::ReservedSetting => "reserved-setting",
            LintRule::InvalidName => "invalid-name",
            LintRule::InvalidValue => "invalid-value",
            LintRule::UnknownOption => "unknown-option",
            LintRule::UnknownOperation => "unknown-operation",
            LintRule::OrderCycle => "order-cycle",
            LintRule::ColocationCycle => "colocation-cycle",
            LintRule::NowhereToRun => "nowhere-to-run",
            LintRule::FencePort => "fence-port",
            LintRule::PromotableAgent => "promotable-agent",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub rule: LintRule,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {} [{}]", self.file, self.line, self.message, self.rule.name())
    }
}

/// What lint found, and what it could not check.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Sorted by line.
    pub findings: Vec<Finding>,
    /// Agents whose parameters could not be checked (not installed here).
    pub unchecked: BTreeSet<String>,
}

/// Run every rule. `installed` reads Pacemaker's option lists from this
/// machine when it has Pacemaker.
pub fn check(d: &Description, catalog: &dyn Catalog, installed: bool) -> Report {
    let mut l = Lint { d, out: Vec::new(), unchecked: BTreeSet::new() };
    l.ids();
    l.names_and_values();
    l.options(installed);
    l.constraint_graph();
    l.fence_ports();
    l.references();
    l.membership();
    l.agents(catalog);
    l.clone_children();
    l.local_fs_clones();
    l.promotable_agents();
    l.fencing();
    l.vips();
    l.dlm();
    l.stacks();
    l.reserved();
    let mut findings = l.out;
    findings.sort();
    findings.dedup();
    Report { findings, unchecked: l.unchecked }
}

struct Lint<'a> {
    d: &'a Description,
    out: Vec<Finding>,
    unchecked: BTreeSet<String>,
}

/// Pacemaker ids (XML IDs restricted to what crmsh and pcs accept too).
pub fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Node names are host names.
fn valid_node_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl<'a> Lint<'a> {
    fn add(&mut self, line: usize, rule: LintRule, message: String) {
        self.out.push(Finding { file: self.d.file.clone(), line, rule, message });
    }

    fn ids(&mut self) {
        let d = self.d;
        let mut seen: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
        let mut objects: Vec<(&str, usize, &str)> = Vec::new();
        objects.extend(d.resources.iter().map(|r| (r.id.as_str(), r.line, "resource")));
        objects.extend(d.fencing.devices.iter().map(|r| (r.id.as_str(), r.line, "fence device")));
        objects.extend(d.groups.iter().map(|r| (r.id.as_str(), r.line, "group")));
        objects.extend(d.clones.iter().map(|r| (r.id.as_str(), r.line, "clone")));
        objects.extend(d.services.iter().map(|r| (r.name.as_str(), r.line, "service")));
        objects.extend(d.locations.iter().filter_map(|c| c.id.as_deref().map(|id| (id, c.line, "location"))));
        objects.extend(d.colocations.iter().filter_map(|c| c.id.as_deref().map(|id| (id, c.line, "colocation"))));
        objects.extend(d.orders.iter().filter_map(|c| c.id.as_deref().map(|id| (id, c.line, "order"))));
        objects.extend(d.domains.iter().map(|r| (r.name.as_str(), r.line, "failover domain")));
        // The later declaration is the one reported as the duplicate.
        objects.sort_by_key(|(_, line, _)| *line);
        if !valid_id(&d.cluster.name) {
            self.add(
                d.cluster.line,
                LintRule::InvalidId,
                format!("cluster name {:?} is not a valid name", d.cluster.name),
            );
        }
        for (id, line, what) in objects {
            if !valid_id(id) {
                self.add(
                    line,
                    LintRule::InvalidId,
                    format!("{what} id {id:?} is invalid: it must start with a letter or '_' and contain only letters, digits, '_', '-' and '.'"),
                );
            }
            match seen.get(id) {
                Some((first, other)) => {
                    let msg = format!("{what} id '{id}' is already used by the {other} on line {first}");
                    self.add(line, LintRule::DuplicateId, msg);
                }
                None => {
                    seen.insert(id, (line, what));
                }
            }
        }
        let mut names = BTreeMap::new();
        let mut node_ids = BTreeMap::new();
        for n in &d.nodes {
            if !valid_node_name(&n.name) {
                self.add(n.line, LintRule::InvalidId, format!("node name {:?} is not a host name", n.name));
            }
            if let Some(first) = names.insert(n.name.as_str(), n.line) {
                self.add(
                    n.line,
                    LintRule::DuplicateId,
                    format!("node '{}' is already declared on line {first}", n.name),
                );
            }
            if let Some(first) = node_ids.insert(n.id, n.line) {
                self.add(n.line, LintRule::DuplicateId, format!("node id {} is already used on line {first}", n.id));
            }
        }
        for r in &d.resources {
            let mut ops = BTreeSet::new();
            for o in &r.ops {
                let interval =
                    super::parse::duration_ms(&o.interval).map_or_else(|| o.interval.clone(), |ms| ms.to_string());
                if !ops.insert((o.name.as_str(), interval)) {
                    let msg = format!(
                        "resource {}: two '{}' operations with interval {} (Pacemaker tells operations apart by name and interval)",
                        r.id, o.name, o.interval
                    );
                    self.add(o.line, LintRule::DuplicateId, msg);
                }
            }
        }
    }

    fn is_node(&self, name: &str) -> bool {
        self.d.nodes.iter().any(|n| n.name == name)
    }

    fn placeable(&mut self, r: &Ref, what: &str) -> bool {
        if self.d.kind_of(&r.id).is_some() {
            return true;
        }
        self.add(r.line, LintRule::UnknownReference, format!("{what} names '{}', which is not declared", r.id));
        false
    }

    fn node_ref(&mut self, r: &Ref, what: &str) {
        if !self.is_node(&r.id) {
            self.add(
                r.line,
                LintRule::UnknownReference,
                format!("{what} names node '{}', which is not a [[node]]", r.id),
            );
        }
    }

    fn references(&mut self) {
        let d = self.d;
        for l in &d.locations {
            self.placeable(&l.resource, "location");
            if let Placement::Node { node, .. } = &l.placement {
                self.node_ref(node, "location");
            }
        }
        for c in &d.colocations {
            self.placeable(&c.resource, "colocation");
            self.placeable(&c.with, "colocation");
        }
        for o in &d.orders {
            self.placeable(&o.first, "order");
            self.placeable(&o.then, "order");
        }
        for fd in &d.domains {
            for m in &fd.nodes {
                self.node_ref(&m.node, &format!("failover domain {}", fd.name));
            }
        }
        for s in &d.services {
            if let Some(dom) = &s.domain {
                if d.domain(&dom.id).is_none() {
                    let msg = format!("service {} names failover domain '{}', which is not declared", s.name, dom.id);
                    self.add(dom.line, LintRule::UnknownReference, msg);
                }
            }
        }
        for f in &d.fencing.devices {
            for h in &f.hosts {
                if !self.is_node(h) {
                    let msg = format!("fence device {} fences '{h}', which is not a [[node]]", f.id);
                    self.add(f.line, LintRule::UnknownReference, msg);
                }
            }
        }
    }

    fn membership(&mut self) {
        let d = self.d;
        let mut owner: BTreeMap<&str, String> = BTreeMap::new();
        let members =
            d.groups.iter().flat_map(|g| g.resources.iter().map(move |r| (r, format!("group {}", g.id)))).chain(
                d.services.iter().flat_map(|s| s.resources.iter().map(move |r| (r, format!("service {}", s.name)))),
            );
        for (r, container) in members {
            if d.primitive(&r.id).is_none() {
                let msg = match d.kind_of(&r.id) {
                    None => format!("{container} names '{}', which is not a declared [[resource]]", r.id),
                    Some(_) => format!("{container} can only hold [[resource]] primitives, and '{}' is not one", r.id),
                };
                self.add(r.line, LintRule::UnknownReference, msg);
                continue;
            }
            match owner.get(r.id.as_str()) {
                Some(first) => {
                    let msg = format!("resource {} is in {first} already; {container} cannot hold it too", r.id);
                    self.add(r.line, LintRule::Membership, msg);
                }
                None => {
                    owner.insert(&r.id, container);
                }
            }
        }
        let mut cloned: BTreeMap<&str, &str> = BTreeMap::new();
        for c in &d.clones {
            match d.kind_of(&c.resource.id) {
                None => {
                    let msg = format!("clone {} clones '{}', which is not declared", c.id, c.resource.id);
                    self.add(c.resource.line, LintRule::UnknownReference, msg);
                }
                Some(Kind::Primitive) => {
                    if let Some(container) = owner.get(c.resource.id.as_str()) {
                        let msg = format!(
                            "clone {} clones resource {}, which is in {container}: clone the whole group",
                            c.id, c.resource.id
                        );
                        self.add(c.resource.line, LintRule::Membership, msg);
                    }
                }
                Some(Kind::Group) => {}
                Some(Kind::Service) => {
                    let msg = format!(
                        "clone {} clones service {}: an RHCS service runs on one node; clone a group instead",
                        c.id, c.resource.id
                    );
                    self.add(c.resource.line, LintRule::StackMix, msg);
                }
                Some(_) => {
                    let msg = format!("clone {} can only clone a resource or a group, not '{}'", c.id, c.resource.id);
                    self.add(c.resource.line, LintRule::Membership, msg);
                }
            }
            if let Some(first) = cloned.insert(&c.resource.id, &c.id) {
                let msg = format!("'{}' is cloned by clone {first} already", c.resource.id);
                self.add(c.line, LintRule::Membership, msg);
            }
        }
    }

    fn agents(&mut self, catalog: &dyn Catalog) {
        let d = self.d;
        let mut all: Vec<AgentRef> = d.resources.iter().map(|r| r.agent.clone()).collect();
        all.extend(d.fencing.devices.iter().map(|f| AgentRef {
            class: "stonith".into(),
            provider: None,
            kind: f.agent.clone(),
        }));
        catalog.prefetch(&all);
        for r in &d.resources {
            let known = catalog.params(&r.agent);
            if r.agent.is_haven() && known.is_none() {
                let names = agents::haven_agent_names().join(", ");
                let msg = format!("resource {}: haven has no agent '{}' (known: {names})", r.id, r.agent.kind);
                self.add(r.agent_line, LintRule::UnknownAgent, msg);
                continue;
            }
            match known {
                Some(info) => {
                    self.params(&format!("resource {}", r.id), &r.agent.to_string(), r.line, &r.params, &info);
                    self.operations(r, &info);
                }
                None => {
                    self.unchecked.insert(r.agent.to_string());
                }
            }
        }
        for f in &d.fencing.devices {
            let agent = AgentRef { class: "stonith".into(), provider: None, kind: f.agent.clone() };
            match catalog.params(&agent) {
                Some(info) => {
                    self.params(&format!("fence device {}", f.id), &agent.to_string(), f.line, &f.params, &info)
                }
                None => {
                    self.unchecked.insert(agent.to_string());
                }
            }
        }
    }

    fn params(&mut self, what: &str, agent: &str, line: usize, params: &[Pair], info: &agents::ParamInfo) {
        let stonith = agent.starts_with("stonith:");
        for p in params {
            // The fencer's own pcmk_* options apply to every fence agent.
            if info.knows(&p.name) || (stonith && p.name.starts_with("pcmk_")) {
                continue;
            }
            let hint = info
                .names
                .iter()
                .find(|n| n.eq_ignore_ascii_case(&p.name) || options::similar(n, &p.name))
                .map(|n| format!(" (did you mean '{n}'?)"))
                .unwrap_or_default();
            let msg = format!("{what}: {agent} has no parameter '{}'{hint}; checked against {}", p.name, info.source);
            self.add(p.line, LintRule::UnknownParameter, msg);
        }
        for req in &info.required {
            if !params.iter().any(|p| &p.name == req) {
                let msg = format!("{what}: {agent} requires parameter '{req}' ({})", info.source);
                self.add(line, LintRule::MissingParameter, msg);
            }
        }
    }

    /// Operations the agent does not declare: pcs refuses them (and
    /// Pacemaker would run an action the agent does not have) unless the
    /// operator forces them.
    fn operations(&mut self, r: &Primitive, info: &agents::ParamInfo) {
        if info.actions.is_empty() {
            return;
        }
        for o in r.ops.iter().filter(|o| !o.force && !info.actions.contains(&o.name)) {
            let msg = format!(
                "resource {}: {} declares no '{}' action (it has {}; pcs accepts only those); set force = true on the operation to write it anyway (pcs then needs --pcs-force){}",
                r.id,
                r.agent,
                o.name,
                info.actions.join(", "),
                if o.name == "status" && info.actions.iter().any(|a| a == "monitor") {
                    "; to check with 'status' instead of 'monitor', set monitor = false on the resource"
                } else {
                    ""
                }
            );
            self.add(o.line, LintRule::UnknownOperation, msg);
        }
    }

    /// The clone that holds `id` from inside (so a constraint should name
    /// the clone), if any.
    fn inside_clone(&self, id: &str) -> Option<&str> {
        if self.d.clones.iter().any(|c| c.id == id) {
            return None;
        }
        self.d.enclosing_clone(id).map(|c| c.id.as_str())
    }

    fn clone_children(&mut self) {
        let d = self.d;
        let mut refs: Vec<(&Ref, &str)> = Vec::new();
        refs.extend(d.locations.iter().map(|l| (&l.resource, "location")));
        refs.extend(d.colocations.iter().flat_map(|c| [(&c.resource, "colocation"), (&c.with, "colocation")]));
        refs.extend(d.orders.iter().flat_map(|o| [(&o.first, "order"), (&o.then, "order")]));
        for (r, what) in refs {
            if let Some(clone) = self.inside_clone(&r.id) {
                let msg = format!(
                    "{what} names '{}', which is inside clone {clone}: constraints on a clone's child are ignored or break placement; name {clone}",
                    r.id
                );
                self.add(r.line, LintRule::CloneChild, msg);
            } else if let Some(service) = d.services.iter().find(|s| s.resources.iter().any(|m| m.id == r.id)) {
                let msg = format!(
                    "{what} names '{}', a member of RHCS service {}: the service fails over as a unit; constrain the service",
                    r.id, service.name
                );
                self.add(r.line, LintRule::StackMix, msg);
            }
        }
    }

    /// Only OCF agents have promote and demote.
    fn promotable_agents(&mut self) {
        let d = self.d;
        for c in d.clones.iter().filter(|c| c.promotable) {
            for p in d.primitives_of(&c.id).into_iter().filter(|p| p.agent.class != "ocf") {
                let msg = format!(
                    "promotable clone {} holds {} ({}): only OCF agents can be promoted (Pacemaker refuses the configuration)",
                    c.id, p.id, p.agent
                );
                self.add(c.line, LintRule::PromotableAgent, msg);
            }
        }
    }

    fn local_fs_clones(&mut self) {
        let d = self.d;
        for c in &d.clones {
            for p in d.primitives_of(&c.id) {
                if !agents::is_filesystem(&p.agent) {
                    continue;
                }
                let read_only = p.param("options").is_some_and(|o| o.split(',').any(|x| x.trim() == "ro"));
                let forced = p.param("force_clones").and_then(crate::ocf::params::parse_bool).unwrap_or(false);
                let fstype = p.param("fstype").unwrap_or("");
                if agents::cloneable_fstype(fstype) || read_only || forced {
                    continue;
                }
                let what =
                    if fstype.is_empty() { "a filesystem without fstype".to_string() } else { fstype.to_string() };
                let msg = format!(
                    "clone {} mounts {} ({what}) on several nodes at once: a filesystem that is not cluster-aware is destroyed that way; use ocfs2/gfs2 or nfs, mount it read-only (options=ro), or do not clone it",
                    c.id, p.id
                );
                self.add(c.line, LintRule::LocalFsClone, msg);
            }
        }
    }

    fn fencing(&mut self) {
        let d = self.d;
        let stonith_resources = d.resources.iter().any(|r| r.agent.class == "stonith");
        let has_devices = !d.fencing.devices.is_empty() || stonith_resources;
        if d.fencing.enabled && !has_devices && !d.resources.is_empty() && d.cluster.targets(Stack::Pacemaker) {
            let msg = "fencing is enabled but no fence device is declared: Pacemaker starts no resource without one; add [fencing] sbd or [[fencing.device]]".to_string();
            self.add(d.fencing.line.max(d.cluster.line), LintRule::NoFencing, msg);
        }
        if d.fencing.enabled {
            return;
        }
        for r in &d.resources {
            if agents::is_storage(&r.agent) {
                let msg = format!(
                    "resource {} is shared storage and fencing is disabled: a node that stops responding keeps it mounted while another node mounts it too; enable fencing",
                    r.id
                );
                self.add(r.line, LintRule::NoFencing, msg);
            }
        }
        for c in d.clones.iter().filter(|c| c.promotable) {
            let msg = format!(
                "clone {} is promotable and fencing is disabled: a lost node may still act as the promoted instance while another is promoted; enable fencing",
                c.id
            );
            self.add(c.line, LintRule::NoFencing, msg);
        }
    }

    /// A VIP counts as tied to a service when a service primitive (any
    /// agent that is not an address, storage or fencing) is in the same
    /// group, service or cloned group, or is linked to it by colocations of
    /// score INFINITY (in either direction, transitively).
    fn vips(&mut self) {
        let d = self.d;
        let mut graph = UnionFind::new(d.resources.iter().map(|r| r.id.clone()));
        for g in &d.groups {
            graph.join_all(g.resources.iter().map(|r| r.id.as_str()));
        }
        for s in &d.services {
            graph.join_all(s.resources.iter().map(|r| r.id.as_str()));
        }
        for c in d.colocations.iter().filter(|c| c.score == Score::Infinity) {
            let a: Vec<&str> = d.primitives_of(&c.resource.id).iter().map(|p| p.id.as_str()).collect();
            let b: Vec<&str> = d.primitives_of(&c.with.id).iter().map(|p| p.id.as_str()).collect();
            graph.join_all(a.iter().chain(b.iter()).copied());
        }
        let served_roots: BTreeSet<usize> =
            d.resources.iter().filter(|s| agents::is_service(&s.agent)).filter_map(|s| graph.root_of(&s.id)).collect();
        for r in d.resources.iter().filter(|r| agents::is_address(&r.agent)) {
            let served = graph.root_of(&r.id).is_some_and(|root| served_roots.contains(&root));
            if !served {
                let msg = format!(
                    "virtual IP {} is not tied to a service: put it in a group (or service) with the service that answers on it, or colocate it with that service (score INFINITY); otherwise the address can fail over to a node where nothing listens",
                    r.id
                );
                self.add(r.line, LintRule::VipWithoutService, msg);
            }
        }
    }

    /// OCFS2/GFS2 need the DLM running first on the same node: a DLM
    /// (ocf:pacemaker:controld) either earlier in the same cloned group, or
    /// in its own clone that is ordered before and colocated with the
    /// filesystem's clone; every clone involved needs interleave=true so
    /// one node's restart does not restart the others.
    fn dlm(&mut self) {
        let d = self.d;
        for c in &d.clones {
            for fs in d.primitives_of(&c.id) {
                let fstype = fs.param("fstype").unwrap_or("");
                if !agents::is_filesystem(&fs.agent) || !agents::cluster_fstype(fstype) {
                    continue;
                }
                let mut missing = Vec::new();
                let siblings = d.primitives_of(&c.id);
                let pos = siblings.iter().position(|p| p.id == fs.id).unwrap_or(0);
                let in_group = siblings[..pos].iter().any(|p| agents::is_dlm(&p.agent));
                let mut clones = vec![c];
                if !in_group {
                    let dlm_clones: Vec<&CloneResource> = d
                        .clones
                        .iter()
                        .filter(|o| o.id != c.id && d.primitives_of(&o.id).iter().any(|p| agents::is_dlm(&p.agent)))
                        .collect();
                    let ordered = dlm_clones.iter().find(|dc| {
                        d.orders.iter().any(|o| {
                            o.first.id == dc.id
                                && o.then.id == c.id
                                && o.kind.as_deref().is_none_or(|k| k == "Mandatory")
                                && o.first_action.as_deref().is_none_or(|a| a == "start")
                        })
                    });
                    match ordered {
                        None => missing.push(
                            "a DLM (ocf:pacemaker:controld) ordered before it, in the same cloned group or in a clone with an order constraint (DLM clone first)"
                                .to_string(),
                        ),
                        Some(dc) => {
                            let colocated = d.colocations.iter().any(|col| {
                                col.score == Score::Infinity && col.resource.id == c.id && col.with.id == dc.id
                            });
                            if !colocated {
                                missing.push(format!("a colocation of {} with {} (score INFINITY)", c.id, dc.id));
                            }
                            clones.push(dc);
                        }
                    }
                }
                for cl in clones {
                    if cl.interleave != Some(true) {
                        missing.push(format!("interleave = true on clone {}", cl.id));
                    }
                }
                if !missing.is_empty() {
                    let msg =
                        format!("clone {} mounts {} ({fstype}), which needs {}", c.id, fs.id, missing.join(", and "));
                    self.add(c.line, LintRule::DlmDependency, msg);
                }
            }
        }
    }

    fn stacks(&mut self) {
        let d = self.d;
        // Placement is the failover domain's job for a service.
        for l in &d.locations {
            if let Some(s) = d.service(&l.resource.id) {
                if let Some(dom) = &s.domain {
                    let msg = format!(
                        "location on RHCS service {} mixes two placement models: its failover domain {} decides where it runs; change the domain",
                        s.name, dom.id
                    );
                    self.add(l.line, LintRule::StackMix, msg);
                }
            }
        }
        if !d.cluster.targets(Stack::Rhcs) {
            return;
        }
        let why = "rgmanager (cluster.conf) cannot express it; drop \"rhcs\" from [cluster] stacks or remove it";
        let mut pacemaker_only = self.pacemaker_constructs();
        pacemaker_only.extend(self.pacemaker_resources());
        for (line, what) in pacemaker_only {
            self.add(line, LintRule::StackMix, format!("{what}, and this description targets rhcs: {why}"));
        }
        for r in &d.resources {
            let extras = cluster_conf::rgmanager_extras(r);
            for a in r.rgmanager.iter().filter(|a| !extras.contains(&a.name.as_str())) {
                let msg = format!(
                    "resource {}: rgmanager attribute '{}' is not one its cluster.conf element takes ({})",
                    r.id,
                    a.name,
                    extras.join(", ")
                );
                self.add(a.line, LintRule::StackMix, msg);
            }
        }
    }

    /// Groups, clones, constraints and options: Pacemaker's alone.
    fn pacemaker_constructs(&self) -> Vec<(usize, String)> {
        let d = self.d;
        let mut out: Vec<(usize, String)> = Vec::new();
        out.extend(
            d.groups.iter().map(|g| {
                (g.line, format!("group {}: rgmanager runs resources in services; make it a [[service]]", g.id))
            }),
        );
        out.extend(d.clones.iter().map(|c| {
            let what = if c.promotable { "promotable clone" } else { "clone" };
            (c.line, format!("{what} {}: rgmanager runs each resource on one node at a time", c.id))
        }));
        out.extend(d.locations.iter().map(|l| {
            (l.line, format!("location on {}: rgmanager places services through failover domains", l.resource.id))
        }));
        out.extend(d.colocations.iter().map(|c| {
            let what =
                format!("colocation of {} with {}: rgmanager has no colocation constraints", c.resource.id, c.with.id);
            (c.line, what)
        }));
        out.extend(d.orders.iter().map(|o| {
            let what = format!(
                "order {} then {}: rgmanager orders only the resources inside a service",
                o.first.id, o.then.id
            );
            (o.line, what)
        }));
        for (what, pairs) in [
            ("[properties]", &d.properties),
            ("[resource_defaults]", &d.resource_defaults),
            ("[op_defaults]", &d.op_defaults),
        ] {
            if let Some(p) = pairs.first() {
                out.push((p.line, format!("{what}: Pacemaker cluster options have no cluster.conf equivalent")));
            }
        }
        for n in d.nodes.iter().filter(|n| !n.attributes.is_empty()) {
            out.push((n.line, format!("node {}: node attributes are Pacemaker's", n.name)));
        }
        out
    }

    /// Resources rgmanager cannot run as written.
    fn pacemaker_resources(&self) -> Vec<(usize, String)> {
        let d = self.d;
        let mut out: Vec<(usize, String)> = Vec::new();
        let in_service: BTreeSet<&str> =
            d.services.iter().flat_map(|s| s.resources.iter().map(|m| m.id.as_str())).collect();
        for r in &d.resources {
            if let Some(m) = r.meta.first() {
                out.push((m.line, format!("resource {}: meta attributes are Pacemaker's", r.id)));
            }
            if let Some(o) = r.ops.iter().find(|o| o.role.is_some() || o.on_fail.is_some()) {
                out.push((o.line, format!("resource {}: operation roles and on-fail are Pacemaker's", r.id)));
            }
            if r.agent.class == "stonith" {
                let what =
                    format!("resource {}: declare fence devices under [[fencing.device]] for cluster.conf", r.id);
                out.push((r.line, what));
            } else if let Some(why) = cluster_conf::element_problem(r) {
                out.push((r.agent_line, format!("resource {}: {why}", r.id)));
            } else if !in_service.contains(r.id.as_str()) {
                out.push((r.line, format!("resource {}: rgmanager runs resources only inside a [[service]]", r.id)));
            }
        }
        out
    }

    /// Every name/value pair the description declares, with what it is.
    fn pairs(&self) -> Vec<(String, &'a Pair)> {
        let d = self.d;
        let mut all: Vec<(String, &Pair)> = Vec::new();
        let mut add = |what: String, pairs: &'a [Pair]| all.extend(pairs.iter().map(|p| (what.clone(), p)));
        add("property".into(), &d.properties);
        add("resource default".into(), &d.resource_defaults);
        add("operation default".into(), &d.op_defaults);
        for n in &d.nodes {
            add(format!("node {} attribute", n.name), &n.attributes);
        }
        for f in &d.fencing.devices {
            add(format!("fence device {} parameter", f.id), &f.params);
        }
        for r in &d.resources {
            add(format!("resource {} parameter", r.id), &r.params);
            add(format!("resource {} meta attribute", r.id), &r.meta);
            add(format!("resource {} rgmanager attribute", r.id), &r.rgmanager);
        }
        for g in &d.groups {
            add(format!("group {} meta attribute", g.id), &g.meta);
        }
        for c in &d.clones {
            add(format!("clone {} meta attribute", c.id), &c.meta);
        }
        all
    }

    /// One name rule and one value rule for every output.
    fn names_and_values(&mut self) {
        for (what, p) in self.pairs() {
            if !options::valid_name(&p.name) {
                let msg = format!(
                    "{what} name {:?} is invalid: it must start with a letter or '_' and contain only letters, digits, '_', '-' and '.' (the CIB, crm, pcs and cluster.conf all need that)",
                    p.name
                );
                self.add(p.line, LintRule::InvalidName, msg);
            }
            if let Some(why) = options::value_problem(&p.value) {
                self.add(p.line, LintRule::InvalidValue, format!("{what} {}: the value {why}", p.name));
            }
        }
        for l in &self.d.locations {
            let Placement::Rule(rule) = &l.placement else { continue };
            for e in &rule.expressions {
                if !options::valid_rule_attribute(&e.attribute) {
                    let msg = format!(
                        "rule attribute {:?} is not a node attribute name (or one of {})",
                        e.attribute,
                        options::BUILT_IN_NODE_ATTRIBUTES.join(" ")
                    );
                    self.add(e.line, LintRule::InvalidName, msg);
                }
                if let Some(v) = e.value.as_deref().filter(|v| !options::valid_rule_value(v)) {
                    let msg = format!(
                        "rule value {v:?} cannot be written: crmsh and pcs parse rules themselves; use letters, digits and . _ - : / @ + only"
                    );
                    self.add(e.line, LintRule::InvalidValue, msg);
                }
            }
        }
    }

    fn known(&mut self, what: &str, pairs: &[Pair], known: &Known) {
        for p in pairs.iter().filter(|p| options::value_problem(&p.value).is_none()) {
            if let Some(want) = known.value_problem(&p.name, &p.value) {
                let msg = format!(
                    "{what} {} = {:?}: Pacemaker wants {want} (checked against {})",
                    p.name, p.value, known.source
                );
                self.add(p.line, LintRule::InvalidValue, msg);
            }
        }
        for p in pairs.iter().filter(|p| options::valid_name(&p.name) && !known.knows(&p.name)) {
            let hint = known.did_you_mean(&p.name).map(|n| format!(" (did you mean '{n}'?)")).unwrap_or_default();
            let msg = format!("{what} '{}' is not one Pacemaker knows{hint}; checked against {}", p.name, known.source);
            self.add(p.line, LintRule::UnknownOption, msg);
        }
    }

    /// Cluster properties and defaults against Pacemaker's own lists: a
    /// misspelt option is silently ignored by the cluster.
    fn options(&mut self, installed: bool) {
        let d = self.d;
        self.known("property", &d.properties, options::cluster_options(installed));
        self.known("resource default", &d.resource_defaults, &options::resource_meta());
        self.known("operation default", &d.op_defaults, &options::operation_meta());
        // Meta attributes may be anything (tools keep their own), but the
        // ones Pacemaker reads must have values it accepts.
        let meta = options::resource_meta();
        let mut sets: Vec<(String, &[Pair])> = Vec::new();
        sets.extend(d.resources.iter().map(|r| (format!("resource {} meta attribute", r.id), r.meta.as_slice())));
        sets.extend(d.groups.iter().map(|g| (format!("group {} meta attribute", g.id), g.meta.as_slice())));
        sets.extend(d.clones.iter().map(|c| (format!("clone {} meta attribute", c.id), c.meta.as_slice())));
        for (what, pairs) in sets {
            for p in pairs.iter().filter(|p| options::value_problem(&p.value).is_none()) {
                if let Some(want) = meta.value_problem(&p.name, &p.value) {
                    self.add(
                        p.line,
                        LintRule::InvalidValue,
                        format!("{what} {} = {:?}: Pacemaker wants {want}", p.name, p.value),
                    );
                }
            }
        }
    }

    fn constraint_graph(&mut self) {
        let d = self.d;
        for (rule, problems) in [
            (LintRule::OrderCycle, constraints::order_cycles(d)),
            (LintRule::ColocationCycle, constraints::colocation_cycles(d)),
            (LintRule::NowhereToRun, constraints::nowhere_to_run(d)),
        ] {
            for p in problems {
                self.add(p.line, rule, p.message);
            }
        }
    }

    /// A fence device for several nodes must be told which port (outlet,
    /// VM name) fences each one; only fence_sbd addresses nodes by name.
    fn fence_ports(&mut self) {
        let d = self.d;
        for f in &d.fencing.devices {
            let fenced: Vec<&str> = if f.hosts.is_empty() {
                d.nodes.iter().map(|n| n.name.as_str()).collect()
            } else {
                f.hosts.iter().map(String::as_str).collect()
            };
            for p in f.ports.iter().filter(|p| !fenced.contains(&p.name.as_str())) {
                let msg = format!("fence device {} has a port for '{}', which it does not fence", f.id, p.name);
                self.add(p.line, LintRule::FencePort, msg);
            }
            if fenced.len() < 2 && f.hosts.len() == 1 {
                continue;
            }
            let missing: Vec<&str> = fenced.iter().copied().filter(|n| f.port_of(n).is_none()).collect();
            if !missing.is_empty() && (d.cluster.targets(Stack::Rhcs) || !f.ports.is_empty()) {
                let msg = format!(
                    "fence device {} ({}) fences several nodes but names no port for {}: give ports = {{ {} = \"...\" }} (the outlet or VM name that fences each node)",
                    f.id,
                    f.agent,
                    missing.join(", "),
                    missing[0]
                );
                self.add(f.line, LintRule::FencePort, msg);
            }
        }
    }

    fn reserved(&mut self) {
        for p in &self.d.properties {
            let place = match p.name.as_str() {
                "stonith-enabled" => "[fencing] enabled",
                "cluster-name" => "[cluster] name (Pacemaker takes it from corosync)",
                _ => continue,
            };
            let msg = format!("property {} is set from {place}; set it there", p.name);
            self.add(p.line, LintRule::ReservedSetting, msg);
        }
    }
}

/// Connected components over resource ids.
struct UnionFind {
    index: BTreeMap<String, usize>,
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(ids: impl Iterator<Item = String>) -> UnionFind {
        let index: BTreeMap<String, usize> = ids.enumerate().map(|(i, id)| (id, i)).collect();
        let parent = (0..index.len()).collect();
        UnionFind { index, parent }
    }
    fn root(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }
    fn join_all<'a>(&mut self, ids: impl Iterator<Item = &'a str>) {
        let idx: Vec<usize> = ids.filter_map(|id| self.index.get(id).copied()).collect();
        for w in idx.windows(2) {
            let (a, b) = (self.root(w[0]), self.root(w[1]));
            self.parent[a] = b;
        }
    }
    fn root_of(&mut self, id: &str) -> Option<usize> {
        let i = self.index.get(id).copied()?;
        Some(self.root(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        assert!(valid_id("base-services") && valid_id("_x.1"));
        assert!(!valid_id("1abc") && !valid_id("a b") && !valid_id(""));
        assert!(valid_node_name("nodea.example.com") && !valid_node_name("-a") && !valid_node_name("a..b"));
    }
}
