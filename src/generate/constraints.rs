//! The constraint graph lint: order cycles (a resource with itself, and
//! through the implicit order of a group's members), colocation cycles and
//! self-colocation, and resources that locations and mandatory
//! colocations together leave nowhere to run. Pacemaker's scheduler
//! aborts or produces an invalid transition on the first two; the third
//! loads and silently never starts the resource.

use super::model::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One problem: the line it is reported on, and the message (which names
/// file:line of every constraint involved).
pub struct Problem {
    pub line: usize,
    pub message: String,
}

/// An edge of a graph over primitives: the constraint that made it (its
/// line), or the group whose members are implicitly ordered/colocated.
#[derive(Clone, Debug)]
enum Why {
    Constraint(usize),
    Group(String),
}

/// A directed graph over (primitive, action) or primitives.
struct Graph<N: Ord + Clone> {
    edges: BTreeMap<N, Vec<(N, Why)>>,
}

impl<N: Ord + Clone> Graph<N> {
    fn new() -> Self {
        Graph { edges: BTreeMap::new() }
    }

    fn add(&mut self, from: N, to: N, why: Why) {
        self.edges.entry(from).or_default().push((to, why));
    }

    /// A path from `from` to `to` (the edges taken), breadth first.
    fn path(&self, from: &N, to: &N) -> Option<Vec<(N, Why)>> {
        let mut prev: BTreeMap<N, (N, Why)> = BTreeMap::new();
        let mut queue = VecDeque::from([from.clone()]);
        let mut seen = BTreeSet::from([from.clone()]);
        while let Some(n) = queue.pop_front() {
            if &n == to {
                let mut out = Vec::new();
                let mut cur = n;
                while &cur != from {
                    let (p, why) = prev.remove(&cur)?;
                    out.push((cur, why));
                    cur = p;
                }
                out.reverse();
                return Some(out);
            }
            for (next, why) in self.edges.get(&n).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    prev.insert(next.clone(), (n.clone(), why.clone()));
                    queue.push_back(next.clone());
                }
            }
        }
        None
    }

    /// Every cycle that goes through an edge made by a constraint, once per
    /// set of constraints: (the nodes around it, the edges' reasons).
    fn cycles(&self) -> Vec<(Vec<N>, Vec<Why>)> {
        let mut found = Vec::new();
        let mut reported: BTreeSet<Vec<usize>> = BTreeSet::new();
        for (from, out) in &self.edges {
            for (to, why) in out {
                let Why::Constraint(_) = why else { continue };
                let Some(back) = self.path(to, from) else { continue };
                let mut nodes = vec![from.clone(), to.clone()];
                let mut whys = vec![why.clone()];
                for (n, w) in back {
                    nodes.push(n);
                    whys.push(w);
                }
                nodes.pop();
                let mut key: Vec<usize> =
                    whys.iter().filter_map(|w| if let Why::Constraint(l) = w { Some(*l) } else { None }).collect();
                key.sort_unstable();
                key.dedup();
                if reported.insert(key) {
                    found.push((nodes, whys));
                }
            }
        }
        found
    }
}

fn reasons(file: &str, whys: &[Why], what: &str) -> String {
    let mut lines: Vec<usize> =
        whys.iter().filter_map(|w| if let Why::Constraint(l) = w { Some(*l) } else { None }).collect();
    lines.sort_unstable();
    lines.dedup();
    let mut parts: Vec<String> = lines.iter().map(|l| format!("{file}:{l}")).collect();
    let groups: BTreeSet<&str> =
        whys.iter().filter_map(|w| if let Why::Group(g) = w { Some(g.as_str()) } else { None }).collect();
    parts.extend(groups.iter().map(|g| format!("the member order of group {g}")));
    format!("{what} {}", parts.join(", "))
}

/// Members of groups and services, in order: each starts after and runs
/// with the one before it.
fn containers(d: &Description) -> impl Iterator<Item = (&str, &[Ref])> {
    d.groups
        .iter()
        .map(|g| (g.id.as_str(), g.resources.as_slice()))
        .chain(d.services.iter().map(|s| (s.name.as_str(), s.resources.as_slice())))
}

/// The primitives each placeable id stands for (see
/// [`Description::primitives_of`]), computed once: lint runs on
/// descriptions with thousands of resources.
struct Members<'a> {
    of: BTreeMap<&'a str, Vec<&'a str>>,
}

impl<'a> Members<'a> {
    fn new(d: &'a Description) -> Members<'a> {
        let declared: BTreeSet<&str> = d.resources.iter().map(|p| p.id.as_str()).collect();
        let mut of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for p in &d.resources {
            of.insert(p.id.as_str(), vec![p.id.as_str()]);
        }
        for (id, members) in containers(d) {
            let m = members.iter().map(|r| r.id.as_str()).filter(|m| declared.contains(m)).collect();
            of.entry(id).or_insert(m);
        }
        for c in &d.clones {
            if c.resource.id != c.id {
                let child = of.get(c.resource.id.as_str()).cloned().unwrap_or_default();
                of.entry(c.id.as_str()).or_insert(child);
            }
        }
        Members { of }
    }

    fn get(&self, id: &str) -> Vec<&'a str> {
        self.of.get(id).cloned().unwrap_or_default()
    }
}

/// Order cycles, over (primitive, action): a constraint `first then then`
/// is an edge from every primitive of `first` to every primitive of `then`.
pub fn order_cycles(d: &Description) -> Vec<Problem> {
    let members = Members::new(d);
    let prims = |_: &Description, id: &str| members.get(id);
    let mut g: Graph<(&str, &str)> = Graph::new();
    for (id, members) in containers(d) {
        for w in members.windows(2) {
            g.add((w[0].id.as_str(), "start"), (w[1].id.as_str(), "start"), Why::Group(id.to_string()));
        }
    }
    let mut out = Vec::new();
    for o in d.orders.iter().filter(|o| o.kind.as_deref() != Some("Serialize")) {
        let (fa, ta) = (o.first_action.as_deref().unwrap_or("start"), o.then_action.as_deref().unwrap_or("start"));
        let (first, then) = (prims(d, &o.first.id), prims(d, &o.then.id));
        if first.iter().any(|p| then.contains(p)) {
            let what = if o.first.id == o.then.id {
                format!("order {} then {} orders a resource after itself", o.first.id, o.then.id)
            } else {
                format!(
                    "order {} then {}: one contains the other, so it orders resources after themselves",
                    o.first.id, o.then.id
                )
            };
            let message = format!("{what} (Pacemaker's scheduler aborts on it) [{}:{}]", d.file, o.line);
            out.push(Problem { line: o.line, message });
            continue;
        }
        for f in &first {
            for t in &then {
                g.add((f, fa), (t, ta), Why::Constraint(o.line));
            }
        }
    }
    for (nodes, whys) in g.cycles() {
        let Some(line) = whys.iter().find_map(|w| if let Why::Constraint(l) = w { Some(*l) } else { None }) else {
            continue;
        };
        let path: Vec<String> = nodes.iter().chain(nodes.first()).map(|(p, a)| format!("{p}:{a}")).collect();
        let message = format!(
            "order cycle {}: nothing in it can start first (crm_simulate: an invalid transition); {}",
            path.join(" -> "),
            reasons(&d.file, &whys, "made by")
        );
        out.push(Problem { line, message });
    }
    out
}

/// Colocation cycles (positive scores) and a resource colocated with
/// itself or with the group that holds it.
pub fn colocation_cycles(d: &Description) -> Vec<Problem> {
    let members = Members::new(d);
    let prims = |_: &Description, id: &str| members.get(id);
    let mut g: Graph<&str> = Graph::new();
    for (id, members) in containers(d) {
        for w in members.windows(2) {
            g.add(w[1].id.as_str(), w[0].id.as_str(), Why::Group(id.to_string()));
        }
    }
    let mut out = Vec::new();
    for c in &d.colocations {
        let (rsc, with) = (prims(d, &c.resource.id), prims(d, &c.with.id));
        if rsc.iter().any(|p| with.contains(p)) {
            let message = format!(
                "colocation of {} with {} places a resource relative to itself [{}:{}]",
                c.resource.id, c.with.id, d.file, c.line
            );
            out.push(Problem { line: c.line, message });
            continue;
        }
        if !c.score.is_positive() {
            continue;
        }
        for r in &rsc {
            for w in &with {
                g.add(r, w, Why::Constraint(c.line));
            }
        }
    }
    for (nodes, whys) in g.cycles() {
        let Some(line) = whys.iter().find_map(|w| if let Why::Constraint(l) = w { Some(*l) } else { None }) else {
            continue;
        };
        let path: Vec<&str> = nodes.iter().chain(nodes.first()).copied().collect();
        let message = format!(
            "colocation cycle {}: each is placed relative to the next, so none can be placed first; {}",
            path.join(" with "),
            reasons(&d.file, &whys, "made by")
        );
        out.push(Problem { line, message });
    }
    out
}

/// Where each primitive may run, from -INFINITY locations (and positive
/// ones when the cluster is opt-in), restricted failover domains and
/// INFINITY colocations; a primitive left with no node is reported with
/// every constraint that narrowed it.
/// Where each primitive may run, as one flag per node, and the lines of
/// the constraints that narrowed it.
type Allowed<'a> = BTreeMap<&'a str, (Vec<bool>, BTreeSet<usize>)>;

/// Locations and restricted failover domains, each primitive on its own.
fn placed<'a>(d: &'a Description, members: &Members<'a>, index: &BTreeMap<&str, usize>, opt_in: bool) -> Allowed<'a> {
    let prims = |_: &Description, id: &str| members.get(id);
    let mut allowed: Allowed =
        d.resources.iter().map(|p| (p.id.as_str(), (vec![!opt_in; d.nodes.len()], BTreeSet::new()))).collect();
    for l in &d.locations {
        let Placement::Node { node, score } = &l.placement else { continue };
        let Some(&n) = index.get(node.id.as_str()) else { continue };
        for p in prims(d, &l.resource.id) {
            let Some((nodes, why)) = allowed.get_mut(p) else { continue };
            if *score == Score::NegInfinity {
                nodes[n] = false;
                why.insert(l.line);
            } else if opt_in && score.is_positive() {
                nodes[n] = true;
                why.insert(l.line);
            }
        }
    }
    for s in &d.services {
        let Some(fd) = s.domain.as_ref().and_then(|r| d.domain(&r.id)).filter(|fd| fd.restricted) else { continue };
        let mut inside = vec![false; d.nodes.len()];
        for m in &fd.nodes {
            if let Some(&n) = index.get(m.node.id.as_str()) {
                inside[n] = true;
            }
        }
        for p in prims(d, &s.name) {
            if let Some((nodes, why)) = allowed.get_mut(p) {
                for (a, m) in nodes.iter_mut().zip(&inside) {
                    *a = if opt_in { *m } else { *a && *m };
                }
                why.insert(fd.line);
            }
        }
    }
    allowed
}

/// Group members and INFINITY colocations: a primitive is allowed only
/// where what it runs with is.
fn tied<'a>(d: &'a Description, members: &Members<'a>, allowed: &mut Allowed<'a>) {
    let prims = |_: &Description, id: &str| members.get(id);
    // Group members run together: each is allowed where all of them are.
    let mut ties: Vec<(Vec<&str>, Vec<&str>, Option<usize>)> = Vec::new();
    for (_, group) in containers(d) {
        let ids: Vec<&str> = group.iter().map(|r| r.id.as_str()).collect();
        ties.push((ids.clone(), ids, None));
    }
    for c in d.colocations.iter().filter(|c| c.score == Score::Infinity && c.role.is_none() && c.with_role.is_none()) {
        ties.push((prims(d, &c.resource.id), prims(d, &c.with.id), Some(c.line)));
    }
    // A fixpoint: each pass can only shrink a set, so it ends.
    for _ in 0..=ties.len() {
        let mut changed = false;
        for (dependent, with, line) in &ties {
            let (mut common, mut why) = (vec![true; d.nodes.len()], BTreeSet::new());
            for w in with {
                if let Some((nodes, reasons)) = allowed.get(w) {
                    for (c, n) in common.iter_mut().zip(nodes) {
                        *c &= *n;
                    }
                    why.extend(reasons.iter().copied());
                }
            }
            why.extend(*line);
            for p in dependent {
                if let Some((nodes, reasons)) = allowed.get_mut(p) {
                    let mut narrowed = false;
                    for (n, c) in nodes.iter_mut().zip(&common) {
                        if *n && !*c {
                            *n = false;
                            narrowed = true;
                        }
                    }
                    if narrowed {
                        reasons.extend(why.iter().copied());
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
}

pub fn nowhere_to_run(d: &Description) -> Vec<Problem> {
    if d.nodes.is_empty() {
        return Vec::new();
    }
    let members = Members::new(d);
    let index: BTreeMap<&str, usize> = d.nodes.iter().enumerate().map(|(i, n)| (n.name.as_str(), i)).collect();
    let opt_in = d.properties.iter().any(|p| p.name == "symmetric-cluster" && p.value == "false");
    let mut allowed = placed(d, &members, &index, opt_in);
    tied(d, &members, &mut allowed);
    let mut out = Vec::new();
    for p in &d.resources {
        let Some((nodes, why)) = allowed.get(p.id.as_str()) else { continue };
        if nodes.iter().any(|n| *n) {
            continue;
        }
        let lines: Vec<String> = why.iter().map(|l| format!("{}:{l}", d.file)).collect();
        let message = if lines.is_empty() {
            format!(
                "resource {} can run on no node: symmetric-cluster = false and no location lets it run anywhere",
                p.id
            )
        } else {
            format!(
                "resource {} can run on no node: the locations, failover domains and mandatory colocations at {} together exclude every node",
                p.id,
                lines.join(", ")
            )
        };
        out.push(Problem { line: p.line, message });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::parse::parse;

    const BASE: &str = "[cluster]\nname = \"c\"\n[[node]]\nname = \"n1\"\n[[node]]\nname = \"n2\"\n\
                        [[resource]]\nid = \"a\"\nagent = \"systemd:a\"\n[[resource]]\nid = \"b\"\nagent = \"systemd:b\"\n\
                        [[resource]]\nid = \"c\"\nagent = \"systemd:c\"\n";

    fn d(extra: &str) -> Description {
        parse("t.toml", &format!("{BASE}{extra}")).unwrap()
    }

    #[test]
    fn self_and_three_way_order_cycles() {
        let p = order_cycles(&d("[[order]]\nfirst = \"a\"\nthen = \"a\"\n"));
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("after itself") && p[0].message.contains("t.toml:17"), "{}", p[0].message);
        let text = "[[order]]\nfirst = \"a\"\nthen = \"b\"\n[[order]]\nfirst = \"b\"\nthen = \"c\"\n\
                    [[order]]\nfirst = \"c\"\nthen = \"a\"\n";
        let p = order_cycles(&d(text));
        assert_eq!(p.len(), 1, "one cycle, reported once");
        for l in ["t.toml:17", "t.toml:20", "t.toml:23"] {
            assert!(p[0].message.contains(l), "{}", p[0].message);
        }
        // Through a group: b runs after a inside g, so "b then a" is a cycle.
        let p = order_cycles(&d(
            "[[group]]\nid = \"g\"\nresources = [\"a\", \"b\"]\n[[order]]\nfirst = \"b\"\nthen = \"a\"\n",
        ));
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("member order of group g"), "{}", p[0].message);
        assert!(order_cycles(&d("[[order]]\nfirst = \"a\"\nthen = \"b\"\n")).is_empty());
    }

    #[test]
    fn colocation_cycles_and_self() {
        assert_eq!(colocation_cycles(&d("[[colocation]]\nresource = \"a\"\nwith = \"a\"\n")).len(), 1);
        let text = "[[colocation]]\nresource = \"a\"\nwith = \"b\"\n[[colocation]]\nresource = \"b\"\nwith = \"a\"\n";
        assert_eq!(colocation_cycles(&d(text)).len(), 1);
        // Mutual anti-colocation (exclusive services) is no cycle.
        let text = "[[colocation]]\nresource = \"a\"\nwith = \"b\"\nscore = \"-INFINITY\"\n\
                    [[colocation]]\nresource = \"b\"\nwith = \"a\"\nscore = \"-INFINITY\"\n";
        assert!(colocation_cycles(&d(text)).is_empty());
    }

    #[test]
    fn nowhere_to_run_through_a_colocation() {
        let text = "[[location]]\nresource = \"b\"\navoid = \"n1\"\n[[location]]\nresource = \"a\"\navoid = \"n2\"\n\
                    [[colocation]]\nresource = \"a\"\nwith = \"b\"\n";
        let p = nowhere_to_run(&d(text));
        assert_eq!(p.len(), 1);
        assert!(p[0].message.starts_with("resource a can run on no node"), "{}", p[0].message);
        for l in ["t.toml:17", "t.toml:20", "t.toml:23"] {
            assert!(p[0].message.contains(l), "{}", p[0].message);
        }
        assert!(nowhere_to_run(&d("[[location]]\nresource = \"a\"\navoid = \"n2\"\n")).is_empty());
    }
}
