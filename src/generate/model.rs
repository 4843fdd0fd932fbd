//! The cluster description as the generator understands it: nodes, fencing,
//! resources, groups, clones, constraints and the RHCS service layer. Every
//! object remembers the line it was declared on, so lint can point at it.
//! References between objects are ids (strings); lint resolves them.

use std::fmt;

/// A description loaded from one file.
#[derive(Clone, Debug, Default)]
pub struct Description {
    /// The file name as given on the command line (for messages).
    pub file: String,
    pub cluster: Cluster,
    pub nodes: Vec<Node>,
    pub fencing: Fencing,
    /// Cluster options (crm_config), e.g. no-quorum-policy.
    pub properties: Vec<Pair>,
    pub resource_defaults: Vec<Pair>,
    pub op_defaults: Vec<Pair>,
    pub resources: Vec<Primitive>,
    pub groups: Vec<Group>,
    pub clones: Vec<CloneResource>,
    pub locations: Vec<Location>,
    pub colocations: Vec<Colocation>,
    pub orders: Vec<Order>,
    pub domains: Vec<FailoverDomain>,
    pub services: Vec<Service>,
}

/// Which cluster managers a description is written for; each one decides
/// which output formats make sense and which constructs are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stack {
    /// Pacemaker: CIB XML, crm shell, pcs.
    Pacemaker,
    /// Red Hat Cluster Suite (cman + rgmanager): cluster.conf.
    Rhcs,
}

impl Stack {
    pub fn as_str(self) -> &'static str {
        match self {
            Stack::Pacemaker => "pacemaker",
            Stack::Rhcs => "rhcs",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Cluster {
    pub name: String,
    pub stacks: Vec<Stack>,
    pub line: usize,
}

impl Cluster {
    pub fn targets(&self, stack: Stack) -> bool {
        self.stacks.contains(&stack)
    }
}

/// A name = value setting with the line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub name: String,
    pub value: String,
    pub line: usize,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    /// Corosync/cman node id: given, or the node's position (1-based).
    pub id: u32,
    /// Node attributes that location rules can test.
    pub attributes: Vec<Pair>,
    pub line: usize,
}

#[derive(Clone, Debug)]
pub struct Fencing {
    /// stonith-enabled. Turning it off is allowed, but lint refuses it with
    /// shared storage or promotable resources.
    pub enabled: bool,
    pub devices: Vec<FenceDevice>,
    pub line: usize,
}

impl Default for Fencing {
    fn default() -> Self {
        Fencing { enabled: true, devices: Vec::new(), line: 0 }
    }
}

/// A fence (STONITH) device: stonith:<agent> in Pacemaker, a fencedevice
/// plus one fence method entry per node it can fence in cluster.conf.
#[derive(Clone, Debug)]
pub struct FenceDevice {
    pub id: String,
    /// The fence agent's name, e.g. fence_sbd, fence_ipmilan.
    pub agent: String,
    pub params: Vec<Pair>,
    /// The nodes this device fences; empty means every node.
    pub hosts: Vec<String>,
    /// What the device calls each node it fences (an outlet of a power
    /// switch, a VM name): node name = port. cluster.conf writes it as the
    /// node's `port`, Pacemaker as pcmk_host_map.
    pub ports: Vec<Pair>,
    pub line: usize,
}

impl FenceDevice {
    /// The port that fences `node`: given, or the node's own name for
    /// agents that address nodes by name (fence_sbd).
    pub fn port_of(&self, node: &str) -> Option<String> {
        match self.ports.iter().find(|p| p.name == node) {
            Some(p) => Some(p.value.clone()),
            None if self.agent == "fence_sbd" => Some(node.to_string()),
            None => None,
        }
    }
}

/// A resource agent: `ocf:provider:type`, or `class:type` for the other
/// classes (stonith, systemd, lsb, service).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AgentRef {
    pub class: String,
    pub provider: Option<String>,
    pub kind: String,
}

impl AgentRef {
    pub fn is(&self, class: &str, provider: Option<&str>, kind: &str) -> bool {
        self.class == class && self.provider.as_deref() == provider && self.kind == kind
    }

    pub fn is_haven(&self) -> bool {
        self.class == "ocf" && self.provider.as_deref() == Some("haven")
    }
}

impl fmt::Display for AgentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.provider {
            Some(p) => write!(f, "{}:{}:{}", self.class, p, self.kind),
            None => write!(f, "{}:{}", self.class, self.kind),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Primitive {
    pub id: String,
    pub agent: AgentRef,
    pub agent_line: usize,
    pub params: Vec<Pair>,
    pub meta: Vec<Pair>,
    pub ops: Vec<Op>,
    /// `monitor = false`: no monitor unless the description lists one.
    pub default_monitor: bool,
    /// Attributes only rgmanager knows (self_fence, fsid, ...): written to
    /// cluster.conf only.
    pub rgmanager: Vec<Pair>,
    pub line: usize,
}

impl Primitive {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|p| p.name == name).map(|p| p.value.as_str())
    }
}

/// An operation: name and interval identify it (as in Pacemaker).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub name: String,
    pub interval: String,
    pub timeout: Option<String>,
    pub role: Option<Role>,
    pub on_fail: Option<String>,
    /// Written even when the agent does not declare the operation.
    pub force: bool,
    pub line: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Started,
    Promoted,
    Unpromoted,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Started => "Started",
            Role::Promoted => "Promoted",
            Role::Unpromoted => "Unpromoted",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Group {
    pub id: String,
    pub resources: Vec<Ref>,
    pub meta: Vec<Pair>,
    pub line: usize,
}

/// A reference to another object by id, with the line that names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ref {
    pub id: String,
    pub line: usize,
}

#[derive(Clone, Debug)]
pub struct CloneResource {
    pub id: String,
    /// The primitive or group that is cloned.
    pub resource: Ref,
    pub interleave: Option<bool>,
    pub ordered: Option<bool>,
    pub notify: Option<bool>,
    pub promotable: bool,
    pub max: Option<u32>,
    pub node_max: Option<u32>,
    pub promoted_max: Option<u32>,
    pub promoted_node_max: Option<u32>,
    pub meta: Vec<Pair>,
    pub line: usize,
}

/// A constraint score: an integer or (minus) infinity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Score {
    NegInfinity,
    Value(i64),
    Infinity,
}

impl Score {
    pub fn is_positive(self) -> bool {
        matches!(self, Score::Infinity) || matches!(self, Score::Value(v) if v > 0)
    }
    pub fn is_negative(self) -> bool {
        matches!(self, Score::NegInfinity) || matches!(self, Score::Value(v) if v < 0)
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Score::NegInfinity => f.write_str("-INFINITY"),
            Score::Infinity => f.write_str("INFINITY"),
            Score::Value(v) => write!(f, "{v}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Location {
    /// Given, or derived (see [`crate::generate::pacemaker`]).
    pub id: Option<String>,
    pub resource: Ref,
    pub placement: Placement,
    pub line: usize,
}

#[derive(Clone, Debug)]
pub enum Placement {
    /// `prefer = node` (positive score) or `avoid = node` (negative score).
    Node {
        node: Ref,
        score: Score,
    },
    Rule(Rule),
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub score: Score,
    pub role: Option<Role>,
    /// "and" or "or".
    pub boolean: String,
    pub expressions: Vec<Expression>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expression {
    pub attribute: String,
    /// lt gt lte gte eq ne defined not_defined
    pub operation: String,
    pub value: Option<String>,
    pub line: usize,
}

#[derive(Clone, Debug)]
pub struct Colocation {
    pub id: Option<String>,
    /// The dependent resource: placed relative to `with`.
    pub resource: Ref,
    pub with: Ref,
    pub score: Score,
    pub role: Option<Role>,
    pub with_role: Option<Role>,
    pub line: usize,
}

#[derive(Clone, Debug)]
pub struct Order {
    pub id: Option<String>,
    pub first: Ref,
    pub then: Ref,
    /// start, stop, promote, demote
    pub first_action: Option<String>,
    pub then_action: Option<String>,
    /// Mandatory, Optional, Serialize
    pub kind: Option<String>,
    pub symmetrical: Option<bool>,
    pub line: usize,
}

/// An RHCS failover domain: where a service may run and in what order of
/// preference.
#[derive(Clone, Debug)]
pub struct FailoverDomain {
    pub name: String,
    pub ordered: bool,
    pub restricted: bool,
    pub nofailback: bool,
    pub nodes: Vec<DomainNode>,
    pub line: usize,
}

#[derive(Clone, Debug)]
pub struct DomainNode {
    pub node: Ref,
    /// 1 is the most preferred (rgmanager's convention).
    pub priority: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    Restart,
    Relocate,
    Disable,
}

impl Recovery {
    pub fn as_str(self) -> &'static str {
        match self {
            Recovery::Restart => "restart",
            Recovery::Relocate => "relocate",
            Recovery::Disable => "disable",
        }
    }
}

/// An RHCS service: resources that start in order on one node and fail
/// over together. In Pacemaker it becomes a group plus constraints.
#[derive(Clone, Debug)]
pub struct Service {
    pub name: String,
    pub domain: Option<Ref>,
    pub autostart: bool,
    pub exclusive: bool,
    pub recovery: Recovery,
    pub max_restarts: u32,
    /// Seconds.
    pub restart_expire_time: u32,
    pub resources: Vec<Ref>,
    pub line: usize,
}

/// What kind of object an id names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Primitive,
    FenceDevice,
    Group,
    Clone,
    Service,
}

impl Description {
    pub fn primitive(&self, id: &str) -> Option<&Primitive> {
        self.resources.iter().find(|r| r.id == id)
    }
    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }
    pub fn clone_of(&self, id: &str) -> Option<&CloneResource> {
        self.clones.iter().find(|c| c.resource.id == id)
    }
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
    pub fn domain(&self, name: &str) -> Option<&FailoverDomain> {
        self.domains.iter().find(|d| d.name == name)
    }

    /// What `id` names among the placeable objects.
    pub fn kind_of(&self, id: &str) -> Option<Kind> {
        if self.primitive(id).is_some() {
            Some(Kind::Primitive)
        } else if self.fencing.devices.iter().any(|d| d.id == id) {
            Some(Kind::FenceDevice)
        } else if self.group(id).is_some() {
            Some(Kind::Group)
        } else if self.clones.iter().any(|c| c.id == id) {
            Some(Kind::Clone)
        } else if self.service(id).is_some() {
            Some(Kind::Service)
        } else {
            None
        }
    }

    /// The group or service a primitive belongs to, if any.
    pub fn container_of(&self, id: &str) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.resources.iter().any(|r| r.id == id))
            .map(|g| g.id.as_str())
            .or_else(|| self.services.iter().find(|s| s.resources.iter().any(|r| r.id == id)).map(|s| s.name.as_str()))
    }

    /// The clone that contains `id` (directly, or through its group).
    pub fn enclosing_clone(&self, id: &str) -> Option<&CloneResource> {
        self.clone_of(id).or_else(|| self.container_of(id).and_then(|g| self.clone_of(g)))
    }

    /// The primitives an id stands for: itself, a group's or service's
    /// members, or a clone's child expanded.
    pub fn primitives_of(&self, id: &str) -> Vec<&Primitive> {
        if let Some(p) = self.primitive(id) {
            return vec![p];
        }
        if let Some(g) = self.group(id) {
            return g.resources.iter().filter_map(|r| self.primitive(&r.id)).collect();
        }
        if let Some(s) = self.service(id) {
            return s.resources.iter().filter_map(|r| self.primitive(&r.id)).collect();
        }
        if let Some(c) = self.clones.iter().find(|c| c.id == id) {
            if c.resource.id != id {
                return self.primitives_of(&c.resource.id);
            }
        }
        Vec::new()
    }
}
