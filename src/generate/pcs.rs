//! pcs commands: one command per line, words quoted for a POSIX shell, to
//! be run against a CIB file (`pcs -f FILE ...`) and pushed in one step.

use super::model::Score;
use super::pacemaker::{CloneConf, Config, Constraint, GroupConf, Item, PrimitiveConf};
use std::fmt::Write;

/// How the commands are written.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Add `--force` to the commands that read agents' meta-data (resource
    /// and stonith create, clone, promotable): pcs then accepts agents that
    /// are not installed where it runs (building a CIB offline, on a machine
    /// without haven or the fence agents). haven's lint has checked the
    /// parameter names already.
    pub force: bool,
}

/// A word as a POSIX shell reads it back: bare when plain, else single
/// quotes (a quote inside becomes '\'').
pub fn quote(v: &str) -> String {
    let plain = !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || "_./:@,+%=-".contains(c));
    if plain {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}

/// `clone` or `promotable`, and the clone's meta attributes without the
/// promotable=true that `promotable` sets itself.
fn clone_meta(c: &CloneConf) -> (&'static str, Vec<(String, String)>) {
    let promotable = c.meta.iter().any(|(k, v)| k == "promotable" && v == "true");
    let meta = c.meta.iter().filter(|(k, _)| !(promotable && k == "promotable")).cloned().collect();
    (if promotable { "promotable" } else { "clone" }, meta)
}

/// A score as a positional argument: a negative one follows `--`, or pcs
/// would read it as an option.
fn score_arg(score: Score) -> String {
    if score.is_negative() {
        format!("-- {score}")
    } else {
        quote(&score.to_string())
    }
}

fn pairs(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| quote(&format!("{k}={v}"))).collect::<Vec<_>>().join(" ")
}

struct Out {
    x: String,
    opts: Options,
}

impl Out {
    fn cmd(&mut self, words: &str) {
        self.x.push_str("pcs ");
        self.x.push_str(words);
        self.x.push('\n');
    }

    fn comment(&mut self, text: &Option<String>) {
        if let Some(t) = text {
            let _ = writeln!(self.x, "# {}", t.replace('\n', " "));
        }
    }

    fn primitive(&mut self, p: &PrimitiveConf) {
        self.primitive_in(p, None);
    }

    /// `resource create`, with the clone it goes into when it is a clone's
    /// child: pcs 0.11 cannot clone a primitive whose agent is not installed
    /// afterwards (`resource clone` ignores --force for primitives), but
    /// creates it cloned.
    fn primitive_in(&mut self, p: &PrimitiveConf, clone: Option<&CloneConf>) {
        self.comment(&p.comment);
        let stonith = p.agent.class == "stonith";
        let mut s = if stonith {
            format!("stonith create {} {}", quote(&p.id), quote(&p.agent.kind))
        } else {
            format!("resource create {} {}", quote(&p.id), quote(&p.agent.to_string()))
        };
        if !p.params.is_empty() {
            let _ = write!(s, " {}", pairs(&p.params));
        }
        if !p.meta.is_empty() {
            let _ = write!(s, " meta {}", pairs(&p.meta));
        }
        for op in &p.ops {
            let mut o = vec![("interval".to_string(), op.interval.clone())];
            if let Some(t) = &op.timeout {
                o.push(("timeout".into(), t.clone()));
            }
            if let Some(r) = op.role {
                o.push(("role".into(), r.as_str().into()));
            }
            if let Some(f) = &op.on_fail {
                o.push(("on-fail".into(), f.clone()));
            }
            let _ = write!(s, " op {} {}", quote(&op.name), pairs(&o));
        }
        if let Some(c) = clone {
            let (verb, meta) = clone_meta(c);
            let _ = write!(s, " {verb} {}", quote(&c.id));
            if !meta.is_empty() {
                let _ = write!(s, " {}", pairs(&meta));
            }
        }
        // pcs adds its own default operations unless told not to; the
        // description's are complete.
        s.push_str(" --no-default-ops");
        // An operation the agent does not declare (forced in the
        // description) is written only with --force.
        if self.opts.force || p.ops.iter().any(|o| o.force) {
            s.push_str(" --force");
        }
        self.cmd(&s);
        // pcs adds a monitor to every resource created without one, even
        // with --no-default-ops: remove it when the description has none
        // (monitor = false).
        if !p.ops.iter().any(|o| o.name == "monitor") {
            self.cmd(&format!("resource op remove {} monitor", quote(&p.id)));
        }
    }

    fn group(&mut self, g: &GroupConf) {
        for m in &g.members {
            self.primitive(m);
        }
        self.comment(&g.comment);
        let members: Vec<String> = g.members.iter().map(|m| quote(&m.id)).collect();
        self.cmd(&format!("resource group add {} {}", quote(&g.id), members.join(" ")));
        if !g.meta.is_empty() {
            self.cmd(&format!("resource meta {} {}", quote(&g.id), pairs(&g.meta)));
        }
    }

    fn clone(&mut self, c: &CloneConf) {
        if let Item::Primitive(p) = c.child.as_ref() {
            self.comment(&c.comment);
            self.primitive_in(p, Some(c));
            return;
        }
        self.item(&c.child);
        self.comment(&c.comment);
        let (verb, meta) = clone_meta(c);
        let mut s = format!("resource {verb} {} {}", quote(c.child.id()), quote(&c.id));
        if !meta.is_empty() {
            let _ = write!(s, " meta {}", pairs(&meta));
        }
        // pcs reads the agents' meta-data to decide whether they can be
        // cloned or promoted.
        if self.opts.force {
            s.push_str(" --force");
        }
        self.cmd(&s);
    }

    fn item(&mut self, i: &Item) {
        match i {
            Item::Primitive(p) => self.primitive(p),
            Item::Group(g) => self.group(g),
            Item::Clone(c) => self.clone(c),
        }
    }

    fn constraint(&mut self, c: &Constraint) {
        match c {
            Constraint::Location { id, rsc, node, score, comment } => {
                self.comment(comment);
                self.cmd(&format!(
                    "constraint location add {} {} {} {}",
                    quote(id),
                    quote(rsc),
                    quote(node),
                    score_arg(*score)
                ));
            }
            Constraint::Rule { id, rsc, rule, comment } => {
                self.comment(comment);
                let mut s = format!("constraint location {} rule constraint-id={}", quote(rsc), quote(id));
                if let Some(r) = rule.role {
                    let _ = write!(s, " role={}", r.as_str());
                }
                let _ = write!(s, " score={}", rule.score);
                for (n, e) in rule.expressions.iter().enumerate() {
                    if n > 0 {
                        let _ = write!(s, " {}", rule.boolean);
                    }
                    match &e.value {
                        Some(v) => {
                            let _ = write!(s, " {} {} {}", quote(&e.attribute), e.operation, quote(v));
                        }
                        None => {
                            let _ = write!(s, " {} {}", e.operation, quote(&e.attribute));
                        }
                    }
                }
                self.cmd(&s);
            }
            Constraint::Colocation { id, rsc, with, score, role, with_role } => {
                let r = role.map(|r| format!("{} ", r.as_str())).unwrap_or_default();
                let w = with_role.map(|r| format!("{} ", r.as_str())).unwrap_or_default();
                self.cmd(&format!(
                    "constraint colocation add {r}{} with {w}{} {} id={}",
                    quote(rsc),
                    quote(with),
                    score_arg(*score),
                    quote(id)
                ));
            }
            Constraint::Order(o) => {
                let side = |a: &Option<String>| a.as_ref().map(|a| format!("{a} ")).unwrap_or_default();
                let mut s = format!(
                    "constraint order {}{} then {}{}",
                    side(&o.first_action),
                    quote(&o.first),
                    side(&o.then_action),
                    quote(&o.then)
                );
                if let Some(k) = &o.kind {
                    let _ = write!(s, " kind={k}");
                }
                if let Some(sym) = o.symmetrical {
                    let _ = write!(s, " symmetrical={sym}");
                }
                let _ = write!(s, " id={}", quote(&o.id));
                self.cmd(&s);
            }
        }
    }
}

/// Render the pcs commands. `source` names the description.
pub fn render(cfg: &Config, source: &str, opts: Options) -> String {
    let mut o = Out { x: String::with_capacity(8192), opts };
    let nodes: Vec<String> = cfg.nodes.iter().map(|n| quote(&n.uname)).collect();
    let _ = writeln!(o.x, "# Generated by haven generate from {source}; edit the description, not this file.");
    let _ = writeln!(o.x, "# The cluster itself: pcs cluster setup {} {}", quote(&cfg.name), nodes.join(" "));
    o.x.push_str(
        "# Then on one node: pcs cluster cib F; run each command below as `pcs -f F ...`;\n\
         # pcs cluster cib-push F --config\n",
    );
    o.cmd(&format!("property set {}", pairs(&cfg.properties)));
    for n in cfg.nodes.iter().filter(|n| !n.attributes.is_empty()) {
        o.cmd(&format!("node attribute {} {}", quote(&n.uname), pairs(&n.attributes)));
    }
    if !cfg.rsc_defaults.is_empty() {
        o.cmd(&format!("resource defaults update {}", pairs(&cfg.rsc_defaults)));
    }
    if !cfg.op_defaults.is_empty() {
        o.cmd(&format!("resource op defaults update {}", pairs(&cfg.op_defaults)));
    }
    for i in &cfg.resources {
        o.item(i);
    }
    for c in &cfg.constraints {
        o.constraint(c);
    }
    o.x
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoting() {
        assert_eq!(quote("ip=198.51.100.7"), "ip=198.51.100.7");
        assert_eq!(quote("receive=still alive"), "'receive=still alive'");
        assert_eq!(quote("a'b"), "'a'\\''b'");
        assert_eq!(quote("$(reboot)"), "'$(reboot)'");
    }
}
