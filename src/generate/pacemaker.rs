//! The Pacemaker configuration a description stands for, in one neutral
//! form that the CIB, crm and pcs emitters all render: RHCS services and
//! failover domains translated into groups and constraints, derived ids,
//! default monitors. Deciding it once keeps the three outputs identical.

use super::agents;
use super::model::*;
use std::collections::BTreeSet;

#[derive(Clone, Debug)]
pub struct Config {
    pub name: String,
    /// crm_config: stonith-enabled first, then the description's
    /// properties.
    pub properties: Vec<(String, String)>,
    pub nodes: Vec<NodeConf>,
    /// Top-level resources in declaration order, fence devices first.
    pub resources: Vec<Item>,
    pub constraints: Vec<Constraint>,
    pub rsc_defaults: Vec<(String, String)>,
    pub op_defaults: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct NodeConf {
    pub id: u32,
    pub uname: String,
    pub attributes: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct PrimitiveConf {
    pub id: String,
    pub agent: AgentRef,
    pub params: Vec<(String, String)>,
    pub meta: Vec<(String, String)>,
    pub ops: Vec<OpConf>,
    pub comment: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpConf {
    pub name: String,
    pub interval: String,
    pub timeout: Option<String>,
    pub role: Option<Role>,
    pub on_fail: Option<String>,
    /// Not among the agent's actions: pcs needs --force to write it.
    pub force: bool,
}

impl OpConf {
    /// The op id Pacemaker tools derive: `<rsc>-<name>-<interval>`.
    pub fn id(&self, rsc: &str) -> String {
        format!("{rsc}-{}-{}", self.name, self.interval)
    }
}

#[derive(Clone, Debug)]
pub struct GroupConf {
    pub id: String,
    pub members: Vec<PrimitiveConf>,
    pub meta: Vec<(String, String)>,
    pub comment: Option<String>,
}

#[derive(Clone, Debug)]
pub struct CloneConf {
    pub id: String,
    pub child: Box<Item>,
    pub meta: Vec<(String, String)>,
    pub comment: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Item {
    Primitive(PrimitiveConf),
    Group(GroupConf),
    Clone(CloneConf),
}

impl Item {
    pub fn id(&self) -> &str {
        match self {
            Item::Primitive(p) => &p.id,
            Item::Group(g) => &g.id,
            Item::Clone(c) => &c.id,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Constraint {
    Location { id: String, rsc: String, node: String, score: Score, comment: Option<String> },
    Rule { id: String, rsc: String, rule: Rule, comment: Option<String> },
    Colocation { id: String, rsc: String, with: String, score: Score, role: Option<Role>, with_role: Option<Role> },
    Order(OrderConf),
}

#[derive(Clone, Debug)]
pub struct OrderConf {
    pub id: String,
    pub first: String,
    pub then: String,
    pub first_action: Option<String>,
    pub then_action: Option<String>,
    pub kind: Option<String>,
    pub symmetrical: Option<bool>,
}

/// Ids handed out so far: explicit ones first, derived ones get a numeric
/// suffix when they would collide.
struct Ids {
    used: BTreeSet<String>,
}

impl Ids {
    fn new(d: &Description) -> Ids {
        let mut used = BTreeSet::new();
        used.extend(d.resources.iter().map(|r| r.id.clone()));
        used.extend(d.fencing.devices.iter().map(|r| r.id.clone()));
        used.extend(d.groups.iter().map(|r| r.id.clone()));
        used.extend(d.clones.iter().map(|r| r.id.clone()));
        used.extend(d.services.iter().map(|r| r.name.clone()));
        used.extend(d.locations.iter().filter_map(|c| c.id.clone()));
        used.extend(d.colocations.iter().filter_map(|c| c.id.clone()));
        used.extend(d.orders.iter().filter_map(|c| c.id.clone()));
        Ids { used }
    }

    fn derive(&mut self, base: String) -> String {
        let mut id = base.clone();
        let mut n = 2;
        while self.used.contains(&id) {
            id = format!("{base}-{n}");
            n += 1;
        }
        self.used.insert(id.clone());
        id
    }

    fn given_or(&mut self, given: &Option<String>, base: String) -> String {
        match given {
            Some(id) => id.clone(),
            None => self.derive(base),
        }
    }
}

fn kv(pairs: &[Pair]) -> Vec<(String, String)> {
    pairs.iter().map(|p| (p.name.clone(), p.value.clone())).collect()
}

fn flag(name: &str, v: Option<bool>) -> Option<(String, String)> {
    v.map(|b| (name.to_string(), b.to_string()))
}

/// The location score of a member of an ordered failover domain: priority 1
/// gets 100, each later priority one point less (rgmanager allows 1-100).
pub fn domain_score(priority: u32) -> Score {
    Score::Value(101 - i64::from(priority.min(100)))
}

/// rgmanager's restart policy as Pacemaker meta attributes: restart in
/// place up to max_restarts times (then move), or move at once.
pub fn recovery_meta(s: &Service) -> Vec<(String, String)> {
    let mut meta = Vec::new();
    match s.recovery {
        Recovery::Relocate => meta.push(("migration-threshold".into(), "1".into())),
        Recovery::Restart if s.max_restarts > 0 => {
            meta.push(("migration-threshold".into(), (s.max_restarts + 1).to_string()));
        }
        _ => {}
    }
    if s.restart_expire_time > 0 {
        meta.push(("failure-timeout".into(), format!("{}s", s.restart_expire_time)));
    }
    meta
}

/// Translate a (lint-clean) description. Unknown references are skipped
/// rather than invented; lint reports them.
pub fn build(d: &Description) -> Config {
    let mut ids = Ids::new(d);
    // cluster-name is not written: Pacemaker takes it from corosync.
    let mut properties = vec![("stonith-enabled".to_string(), d.fencing.enabled.to_string())];
    properties.extend(kv(&d.properties));
    let nodes =
        d.nodes.iter().map(|n| NodeConf { id: n.id, uname: n.name.clone(), attributes: kv(&n.attributes) }).collect();

    let mut resources: Vec<Item> = d.fencing.devices.iter().map(|f| Item::Primitive(fence_device(d, f))).collect();
    let mut constraints = Vec::new();
    // Everything placed at top level, ordered by the line it was declared on.
    let mut top: Vec<(usize, Item)> = Vec::new();
    // Contained and cloned ids, once: descriptions have thousands of resources.
    let inside: BTreeSet<&str> = d
        .groups
        .iter()
        .flat_map(|g| g.resources.iter())
        .chain(d.services.iter().flat_map(|s| s.resources.iter()))
        .chain(d.clones.iter().map(|c| &c.resource))
        .map(|r| r.id.as_str())
        .collect();
    for r in &d.resources {
        if !inside.contains(r.id.as_str()) {
            top.push((r.line, Item::Primitive(prim(d, r))));
        }
    }
    for g in &d.groups {
        if d.clone_of(&g.id).is_none() {
            top.push((g.line, Item::Group(group(d, g))));
        }
    }
    for c in &d.clones {
        if let Some(item) = clone_set(d, c) {
            top.push((c.line, Item::Clone(item)));
        }
    }
    for s in &d.services {
        let (item, mut cons) = service(d, s, &mut ids);
        top.push((s.line, Item::Group(item)));
        constraints.append(&mut cons);
    }
    top.sort_by_key(|(line, _)| *line);
    resources.extend(top.into_iter().map(|(_, i)| i));
    constraints.extend(d.locations.iter().map(|l| location(l, &mut ids)));
    constraints.extend(d.colocations.iter().map(|c| colocation(c, &mut ids)));
    constraints.extend(d.orders.iter().map(|o| order(o, &mut ids)));

    Config {
        name: d.cluster.name.clone(),
        properties,
        nodes,
        resources,
        constraints,
        rsc_defaults: kv(&d.resource_defaults),
        op_defaults: kv(&d.op_defaults),
    }
}

/// A fence device as a stonith primitive: the nodes it fences as
/// pcmk_host_list, their ports (when the device names nodes its own way)
/// as pcmk_host_map.
fn fence_device(d: &Description, f: &FenceDevice) -> PrimitiveConf {
    let mut params = kv(&f.params);
    if !f.hosts.is_empty() {
        params.push(("pcmk_host_list".into(), f.hosts.join(",")));
    }
    if !f.ports.is_empty() {
        let nodes: Vec<&str> = if f.hosts.is_empty() {
            d.nodes.iter().map(|n| n.name.as_str()).collect()
        } else {
            f.hosts.iter().map(String::as_str).collect()
        };
        let map: Vec<String> = nodes.iter().filter_map(|n| f.port_of(n).map(|p| format!("{n}:{p}"))).collect();
        params.push(("pcmk_host_map".into(), map.join(";")));
    }
    let agent = AgentRef { class: "stonith".into(), provider: None, kind: f.agent.clone() };
    let ops = default_ops(&agent, false);
    PrimitiveConf { id: f.id.clone(), agent, params, meta: Vec::new(), ops, comment: None }
}

fn clone_set(d: &Description, c: &CloneResource) -> Option<CloneConf> {
    let child = if let Some(p) = d.primitive(&c.resource.id) {
        Item::Primitive(prim(d, p))
    } else {
        Item::Group(group(d, d.group(&c.resource.id)?))
    };
    let mut meta: Vec<(String, String)> = [
        flag("interleave", c.interleave),
        flag("ordered", c.ordered),
        flag("notify", c.notify),
        c.max.map(|n| ("clone-max".into(), n.to_string())),
        c.node_max.map(|n| ("clone-node-max".into(), n.to_string())),
        c.promotable.then(|| ("promotable".into(), "true".into())),
        c.promoted_max.map(|n| ("promoted-max".into(), n.to_string())),
        c.promoted_node_max.map(|n| ("promoted-node-max".into(), n.to_string())),
    ]
    .into_iter()
    .flatten()
    .collect();
    meta.extend(kv(&c.meta));
    Some(CloneConf { id: c.id.clone(), child: Box::new(child), meta, comment: None })
}

fn location(l: &Location, ids: &mut Ids) -> Constraint {
    let rsc = l.resource.id.clone();
    match &l.placement {
        Placement::Node { node, score } => {
            let id = ids.given_or(&l.id, format!("location-{rsc}-{}", node.id));
            Constraint::Location { id, rsc, node: node.id.clone(), score: *score, comment: None }
        }
        Placement::Rule(rule) => {
            let id = ids.given_or(&l.id, format!("location-{rsc}-rule"));
            Constraint::Rule { id, rsc, rule: rule.clone(), comment: None }
        }
    }
}

fn colocation(c: &Colocation, ids: &mut Ids) -> Constraint {
    let id = ids.given_or(&c.id, format!("colocation-{}-{}", c.resource.id, c.with.id));
    Constraint::Colocation {
        id,
        rsc: c.resource.id.clone(),
        with: c.with.id.clone(),
        score: c.score,
        role: c.role,
        with_role: c.with_role,
    }
}

fn order(o: &Order, ids: &mut Ids) -> Constraint {
    let id = ids.given_or(&o.id, format!("order-{}-{}", o.first.id, o.then.id));
    Constraint::Order(OrderConf {
        id,
        first: o.first.id.clone(),
        then: o.then.id.clone(),
        first_action: o.first_action.clone(),
        then_action: o.then_action.clone(),
        kind: o.kind.clone(),
        symmetrical: o.symmetrical,
    })
}

/// The monitor(s) a resource gets when the description names none: one
/// per role for a promotable clone's child (Pacemaker needs distinct
/// intervals), one otherwise.
fn default_ops(agent: &AgentRef, promotable: bool) -> Vec<OpConf> {
    let (interval, timeout) = agents::default_monitor(agent);
    let op = |interval: u32, role| OpConf {
        name: "monitor".into(),
        interval: format!("{interval}s"),
        timeout: Some(format!("{timeout}s")),
        role,
        on_fail: None,
        force: false,
    };
    if promotable {
        vec![op(interval, Some(Role::Promoted)), op(interval + 1, Some(Role::Unpromoted))]
    } else {
        vec![op(interval, None)]
    }
}

fn prim(d: &Description, r: &Primitive) -> PrimitiveConf {
    let mut ops: Vec<OpConf> = r
        .ops
        .iter()
        .map(|o| OpConf {
            name: o.name.clone(),
            interval: o.interval.clone(),
            timeout: o.timeout.clone(),
            role: o.role,
            on_fail: o.on_fail.clone(),
            force: o.force,
        })
        .collect();
    if r.default_monitor && !ops.iter().any(|o| o.name == "monitor") {
        let promotable = d.enclosing_clone(&r.id).is_some_and(|c| c.promotable);
        ops.extend(default_ops(&r.agent, promotable));
    }
    PrimitiveConf {
        id: r.id.clone(),
        agent: r.agent.clone(),
        params: kv(&r.params),
        meta: kv(&r.meta),
        ops,
        comment: None,
    }
}

fn group(d: &Description, g: &Group) -> GroupConf {
    GroupConf {
        id: g.id.clone(),
        members: g.resources.iter().filter_map(|r| d.primitive(&r.id)).map(|p| prim(d, p)).collect(),
        meta: kv(&g.meta),
        comment: None,
    }
}

/// An RHCS service as a Pacemaker group: its policy becomes meta
/// attributes, its failover domain location constraints, `exclusive`
/// anti-colocations with every other service.
fn service(d: &Description, s: &Service, ids: &mut Ids) -> (GroupConf, Vec<Constraint>) {
    let mut members: Vec<PrimitiveConf> =
        s.resources.iter().filter_map(|r| d.primitive(&r.id)).map(|p| prim(d, p)).collect();
    if s.recovery == Recovery::Disable {
        // rgmanager stops a failed service and leaves it stopped.
        for m in &mut members {
            for op in m.ops.iter_mut().filter(|o| o.name == "monitor") {
                op.on_fail = Some("stop".into());
            }
        }
    }
    let mut meta = Vec::new();
    if !s.autostart {
        meta.push(("target-role".to_string(), "Stopped".to_string()));
    }
    meta.extend(recovery_meta(s));
    let domain = s.domain.as_ref().and_then(|r| d.domain(&r.id));
    let mut constraints = Vec::new();
    let mut what = format!("RHCS service {}: recovery {}", s.name, s.recovery.as_str());
    if let Some(fd) = domain {
        what.push_str(&format!(", failover domain {}", fd.name));
        if fd.nofailback {
            meta.push(("resource-stickiness".into(), "INFINITY".into()));
        } else if fd.ordered && d.resource_defaults.iter().any(|p| p.name == "resource-stickiness") {
            // Fail back to the preferred node even when rsc_defaults
            // make resources sticky (without them stickiness is 0 already).
            meta.push(("resource-stickiness".into(), "0".into()));
        }
        if fd.ordered {
            for m in &fd.nodes {
                let id = ids.derive(format!("location-{}-{}", s.name, m.node.id));
                constraints.push(Constraint::Location {
                    id,
                    rsc: s.name.clone(),
                    node: m.node.id.clone(),
                    score: domain_score(m.priority),
                    // The service's comment names the domain; one per
                    // location would be most of a large CIB.
                    comment: None,
                });
            }
        }
        if fd.restricted && d.nodes.iter().any(|n| !fd.nodes.iter().any(|m| m.node.id == n.name)) {
            constraints.push(restricted(s, fd, ids));
        }
    }
    if s.exclusive {
        for other in d.services.iter().filter(|o| o.name != s.name) {
            let id = ids.derive(format!("colocation-{}-apart-{}", s.name, other.name));
            constraints.push(Constraint::Colocation {
                id,
                rsc: s.name.clone(),
                with: other.name.clone(),
                score: Score::NegInfinity,
                role: None,
                with_role: None,
            });
        }
    }
    (GroupConf { id: s.name.clone(), members, meta, comment: Some(what) }, constraints)
}

/// A restricted failover domain as one rule: never on a node that is not
/// a member. One constraint per service whatever the cluster's size (one
/// -INFINITY location per outside node would be nodes x services).
fn restricted(s: &Service, fd: &FailoverDomain, ids: &mut Ids) -> Constraint {
    let expressions = fd
        .nodes
        .iter()
        .map(|m| Expression {
            attribute: "#uname".into(),
            operation: "ne".into(),
            value: Some(m.node.id.clone()),
            line: 0,
        })
        .collect();
    Constraint::Rule {
        id: ids.derive(format!("location-{}-domain", s.name)),
        rsc: s.name.clone(),
        rule: Rule { score: Score::NegInfinity, role: None, boolean: "and".into(), expressions },
        // The service's comment names the domain.
        comment: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::parse::parse;

    const MAIL: &str = r#"
[cluster]
name = "m"
[[node]]
name = "a"
[[node]]
name = "b"
[[node]]
name = "c"
[[resource]]
id = "ip"
agent = "ocf:haven:vip"
params = { ip = "198.51.100.7" }
[[resource]]
id = "app"
agent = "lsb:app"
[[resource]]
id = "other"
agent = "lsb:other"
[[failover_domain]]
name = "d"
ordered = true
restricted = true
nodes = [{ name = "a", priority = 1 }, { name = "b", priority = 2 }]
[[service]]
name = "s"
domain = "d"
exclusive = true
recovery = "disable"
autostart = false
resources = ["ip", "app"]
[[service]]
name = "t"
max_restarts = 2
restart_expire_time = 300
resources = ["other"]
"#;

    fn meta(item: &Item) -> Vec<(String, String)> {
        match item {
            Item::Group(g) => g.meta.clone(),
            _ => panic!("not a group"),
        }
    }

    #[test]
    fn services_become_groups_with_their_policy() {
        let cfg = build(&parse("t.toml", MAIL).unwrap());
        let ids: Vec<&str> = cfg.resources.iter().map(|i| i.id()).collect();
        assert_eq!(ids, vec!["s", "t"]);
        let m = meta(&cfg.resources[0]);
        assert!(m.contains(&("target-role".into(), "Stopped".into())), "{m:?}");
        assert!(!m.iter().any(|(k, _)| k == "resource-stickiness"), "not sticky without rsc_defaults: {m:?}");
        let sticky =
            MAIL.replace("[[failover_domain]]", "[resource_defaults]\nresource-stickiness = 100\n[[failover_domain]]");
        let m = meta(&build(&parse("t.toml", &sticky).unwrap()).resources[0]);
        assert!(m.contains(&("resource-stickiness".into(), "0".into())), "ordered domain fails back: {m:?}");
        let Item::Group(g) = &cfg.resources[0] else { panic!() };
        assert!(g.members.iter().all(|p| p.ops.iter().all(|o| o.on_fail.as_deref() == Some("stop"))));
        let m = meta(&cfg.resources[1]);
        assert!(m.contains(&("migration-threshold".into(), "3".into())), "{m:?}");
        assert!(m.contains(&("failure-timeout".into(), "300s".into())), "{m:?}");
        let placed: Vec<String> = cfg
            .constraints
            .iter()
            .map(|c| match c {
                Constraint::Location { id, score, .. } => format!("{id}={score}"),
                Constraint::Colocation { id, score, .. } => format!("{id}={score}"),
                Constraint::Rule { id, rule, .. } => format!("{id}={}", rule.score),
                _ => String::new(),
            })
            .collect();
        assert_eq!(
            placed,
            vec![
                "location-s-a=100",
                "location-s-b=99",
                "location-s-domain=-INFINITY",
                "colocation-s-apart-t=-INFINITY"
            ]
        );
    }

    #[test]
    fn derived_ids_never_collide() {
        let text = "[cluster]\nname = \"c\"\n[[node]]\nname = \"n\"\n[[resource]]\nid = \"location-r-n\"\n\
                    agent = \"systemd:x\"\n[[resource]]\nid = \"r\"\nagent = \"systemd:y\"\n\
                    [[location]]\nresource = \"r\"\nprefer = \"n\"\n";
        let cfg = build(&parse("t.toml", text).unwrap());
        assert!(matches!(&cfg.constraints[0], Constraint::Location { id, .. } if id == "location-r-n-2"));
    }

    #[test]
    fn promotable_children_get_a_monitor_per_role() {
        let text = "[cluster]\nname = \"c\"\n[[resource]]\nid = \"db\"\nagent = \"ocf:pacemaker:Stateful\"\n\
                    [[clone]]\nid = \"db-clone\"\nresource = \"db\"\npromotable = true\n";
        let cfg = build(&parse("t.toml", text).unwrap());
        let Item::Clone(c) = &cfg.resources[0] else { panic!() };
        let Item::Primitive(p) = c.child.as_ref() else { panic!() };
        let roles: Vec<_> = p.ops.iter().map(|o| (o.role, o.interval.as_str())).collect();
        assert_eq!(roles, vec![(Some(Role::Promoted), "30s"), (Some(Role::Unpromoted), "31s")]);
        assert!(c.meta.contains(&("promotable".into(), "true".into())));
    }
}
