//! crm shell (crmsh) configuration: the text `crm configure load update
//! FILE` takes, one object per statement, long ones continued with `\`.

use super::model::Score;
use super::pacemaker::{Config, Constraint, Item, PrimitiveConf};
use std::fmt::Write;

/// A value as crmsh's tokenizer reads it back: bare when it is one plain
/// word, double-quoted (with `\` and `"` escaped) otherwise.
pub fn quote(v: &str) -> String {
    let plain = !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || "_./:@,+%-#".contains(c));
    if plain {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn score(s: Score) -> String {
    match s {
        Score::Infinity => "inf".into(),
        Score::NegInfinity => "-inf".into(),
        Score::Value(v) => v.to_string(),
    }
}

fn pairs(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", quote(v))).collect::<Vec<_>>().join(" ")
}

fn comment(out: &mut String, text: &Option<String>) {
    if let Some(t) = text {
        let _ = writeln!(out, "# {}", t.replace('\n', " "));
    }
}

/// Join the parts of one statement, continuing lines with a backslash.
fn statement(out: &mut String, head: String, tail: Vec<String>) {
    out.push_str(&head);
    for t in tail {
        out.push_str(" \\\n    ");
        out.push_str(&t);
    }
    out.push('\n');
}

fn primitive(out: &mut String, p: &PrimitiveConf) {
    comment(out, &p.comment);
    let mut tail = Vec::new();
    if !p.params.is_empty() {
        tail.push(format!("params {}", pairs(&p.params)));
    }
    if !p.meta.is_empty() {
        tail.push(format!("meta {}", pairs(&p.meta)));
    }
    for op in &p.ops {
        let mut s = format!("op {} interval={}", op.name, quote(&op.interval));
        if let Some(t) = &op.timeout {
            let _ = write!(s, " timeout={}", quote(t));
        }
        if let Some(r) = op.role {
            let _ = write!(s, " role={}", r.as_str());
        }
        if let Some(f) = &op.on_fail {
            let _ = write!(s, " on-fail={}", quote(f));
        }
        tail.push(s);
    }
    statement(out, format!("primitive {} {}", p.id, p.agent), tail);
}

fn item(out: &mut String, i: &Item) {
    match i {
        Item::Primitive(p) => primitive(out, p),
        Item::Group(g) => {
            for m in &g.members {
                primitive(out, m);
            }
            comment(out, &g.comment);
            let members: Vec<&str> = g.members.iter().map(|m| m.id.as_str()).collect();
            let tail = if g.meta.is_empty() { Vec::new() } else { vec![format!("meta {}", pairs(&g.meta))] };
            statement(out, format!("group {} {}", g.id, members.join(" ")), tail);
        }
        Item::Clone(c) => {
            item(out, &c.child);
            comment(out, &c.comment);
            let tail = if c.meta.is_empty() { Vec::new() } else { vec![format!("meta {}", pairs(&c.meta))] };
            statement(out, format!("clone {} {}", c.id, c.child.id()), tail);
        }
    }
}

fn with_role(id: &str, role: Option<super::model::Role>) -> String {
    match role {
        Some(r) => format!("{id}:{}", r.as_str()),
        None => id.to_string(),
    }
}

fn constraint(out: &mut String, c: &Constraint) {
    match c {
        Constraint::Location { id, rsc, node, score: s, comment: note } => {
            comment(out, note);
            let _ = writeln!(out, "location {id} {rsc} {}: {node}", score(*s));
        }
        Constraint::Rule { id, rsc, rule, comment: note } => {
            comment(out, note);
            let role = rule.role.map(|r| format!("role={} ", r.as_str())).unwrap_or_default();
            let exprs: Vec<String> = rule
                .expressions
                .iter()
                .map(|e| match &e.value {
                    Some(v) => format!("{} {} {}", quote(&e.attribute), e.operation, quote(v)),
                    None => format!("{} {}", e.operation, quote(&e.attribute)),
                })
                .collect();
            let joined = exprs.join(&format!(" {} ", rule.boolean));
            let _ = writeln!(out, "location {id} {rsc} rule {role}{}: {joined}", score(rule.score));
        }
        Constraint::Colocation { id, rsc, with, score: s, role, with_role: wr } => {
            let _ = writeln!(out, "colocation {id} {}: {} {}", score(*s), with_role(rsc, *role), with_role(with, *wr));
        }
        Constraint::Order(o) => {
            let kind = o.kind.as_ref().map(|k| format!("{k}: ")).unwrap_or_default();
            let side = |rsc: &str, a: &Option<String>| match a {
                Some(a) => format!("{rsc}:{a}"),
                None => rsc.to_string(),
            };
            let sym = o.symmetrical.map(|s| format!(" symmetrical={s}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "order {} {kind}{} {}{sym}",
                o.id,
                side(&o.first, &o.first_action),
                side(&o.then, &o.then_action)
            );
        }
    }
}

/// Render the crm shell configuration. `source` names the description.
pub fn render(cfg: &Config, source: &str) -> String {
    let mut out = String::with_capacity(8192);
    let _ = writeln!(out, "# Generated by haven generate from {source}; edit the description, not this file.");
    out.push_str("# Load into the cluster with: crm configure load update THIS-FILE\n\n");
    // As in the CIB: only nodes with attributes; the others appear when
    // they join.
    for n in cfg.nodes.iter().filter(|n| !n.attributes.is_empty()) {
        let _ = writeln!(out, "node {}: {} attributes {}", n.id, n.uname, pairs(&n.attributes));
    }
    let _ = writeln!(out, "property cib-bootstrap-options: {}", pairs(&cfg.properties));
    if !cfg.rsc_defaults.is_empty() {
        let _ = writeln!(out, "rsc_defaults rsc-options: {}", pairs(&cfg.rsc_defaults));
    }
    if !cfg.op_defaults.is_empty() {
        let _ = writeln!(out, "op_defaults op-options: {}", pairs(&cfg.op_defaults));
    }
    out.push('\n');
    for i in &cfg.resources {
        item(&mut out, i);
    }
    if !cfg.constraints.is_empty() {
        out.push('\n');
    }
    for c in &cfg.constraints {
        constraint(&mut out, c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoting() {
        assert_eq!(quote("198.51.100.7"), "198.51.100.7");
        assert_eq!(quote("/dev/sdb1"), "/dev/sdb1");
        assert_eq!(quote("rw,nfsvers=3"), "\"rw,nfsvers=3\"");
        assert_eq!(quote("still alive"), "\"still alive\"");
        assert_eq!(quote("a\"b\\"), "\"a\\\"b\\\\\"");
        assert_eq!(quote(""), "\"\"");
    }
}
