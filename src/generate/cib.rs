//! CIB XML for Pacemaker 2.1.5 (schema pacemaker-3.9, feature set 3.16.1,
//! Debian 12's): what `cibadmin --replace` or `crm_verify --xml-file`
//! takes. Promotable clones are clones with promotable=true; the
//! deprecated master element is never written.

use super::pacemaker::{Cln, Config, Constraint, Grp, Item, Prim};
use crate::ocf::xml::escape;
use std::fmt::Write;

/// The schema the CIB declares (pacemaker-3.9 ships with Pacemaker 2.1.5).
pub const VALIDATE_WITH: &str = "pacemaker-3.9";
/// Pacemaker 2.1.5's feature set: a CIB must not claim a newer one than
/// the cluster that loads it.
pub const CRM_FEATURE_SET: &str = "3.16.1";

/// A comment that cannot end the comment early.
pub fn comment(text: &str) -> String {
    format!("<!-- {} -->", text.replace("--", "- -"))
}

struct Out {
    x: String,
}

impl Out {
    fn line(&mut self, depth: usize, s: &str) {
        for _ in 0..depth {
            self.x.push_str("  ");
        }
        self.x.push_str(s);
        self.x.push('\n');
    }

    fn nvset(&mut self, depth: usize, tag: &str, id: &str, pairs: &[(String, String)]) {
        if pairs.is_empty() {
            return;
        }
        self.line(depth, &format!("<{tag} id=\"{}\">", escape(id)));
        for (k, v) in pairs {
            self.line(
                depth + 1,
                &format!(
                    "<nvpair id=\"{}\" name=\"{}\" value=\"{}\"/>",
                    escape(&format!("{id}-{k}")),
                    escape(k),
                    escape(v)
                ),
            );
        }
        self.line(depth, &format!("</{tag}>"));
    }

    fn primitive(&mut self, depth: usize, p: &Prim) {
        if let Some(c) = &p.comment {
            self.line(depth, &comment(c));
        }
        let provider = p.agent.provider.as_ref().map(|v| format!(" provider=\"{}\"", escape(v))).unwrap_or_default();
        let open = format!(
            "<primitive id=\"{}\" class=\"{}\"{provider} type=\"{}\">",
            escape(&p.id),
            escape(&p.agent.class),
            escape(&p.agent.kind)
        );
        self.line(depth, &open);
        self.nvset(depth + 1, "instance_attributes", &format!("{}-instance_attributes", p.id), &p.params);
        self.nvset(depth + 1, "meta_attributes", &format!("{}-meta_attributes", p.id), &p.meta);
        if !p.ops.is_empty() {
            self.line(depth + 1, "<operations>");
            for op in &p.ops {
                let mut s = format!(
                    "<op id=\"{}\" name=\"{}\" interval=\"{}\"",
                    escape(&op.id(&p.id)),
                    escape(&op.name),
                    escape(&op.interval)
                );
                if let Some(t) = &op.timeout {
                    let _ = write!(s, " timeout=\"{}\"", escape(t));
                }
                if let Some(r) = op.role {
                    let _ = write!(s, " role=\"{}\"", r.as_str());
                }
                if let Some(f) = &op.on_fail {
                    let _ = write!(s, " on-fail=\"{}\"", escape(f));
                }
                s.push_str("/>");
                self.line(depth + 2, &s);
            }
            self.line(depth + 1, "</operations>");
        }
        self.line(depth, "</primitive>");
    }

    fn group(&mut self, depth: usize, g: &Grp) {
        if let Some(c) = &g.comment {
            self.line(depth, &comment(c));
        }
        self.line(depth, &format!("<group id=\"{}\">", escape(&g.id)));
        self.nvset(depth + 1, "meta_attributes", &format!("{}-meta_attributes", g.id), &g.meta);
        for m in &g.members {
            self.primitive(depth + 1, m);
        }
        self.line(depth, "</group>");
    }

    fn clone(&mut self, depth: usize, c: &Cln) {
        if let Some(text) = &c.comment {
            self.line(depth, &comment(text));
        }
        self.line(depth, &format!("<clone id=\"{}\">", escape(&c.id)));
        self.nvset(depth + 1, "meta_attributes", &format!("{}-meta_attributes", c.id), &c.meta);
        self.item(depth + 1, &c.child);
        self.line(depth, "</clone>");
    }

    fn item(&mut self, depth: usize, i: &Item) {
        match i {
            Item::Primitive(p) => self.primitive(depth, p),
            Item::Group(g) => self.group(depth, g),
            Item::Clone(c) => self.clone(depth, c),
        }
    }

    fn constraint(&mut self, depth: usize, c: &Constraint) {
        match c {
            Constraint::Location { id, rsc, node, score, comment: note } => {
                if let Some(n) = note {
                    self.line(depth, &comment(n));
                }
                self.line(
                    depth,
                    &format!(
                        "<rsc_location id=\"{}\" rsc=\"{}\" node=\"{}\" score=\"{score}\"/>",
                        escape(id),
                        escape(rsc),
                        escape(node)
                    ),
                );
            }
            Constraint::Rule { id, rsc, rule, comment: note } => {
                if let Some(n) = note {
                    self.line(depth, &comment(n));
                }
                self.line(depth, &format!("<rsc_location id=\"{}\" rsc=\"{}\">", escape(id), escape(rsc)));
                let role = rule.role.map(|r| format!(" role=\"{}\"", r.as_str())).unwrap_or_default();
                self.line(
                    depth + 1,
                    &format!(
                        "<rule id=\"{}-rule\" score=\"{}\" boolean-op=\"{}\"{role}>",
                        escape(id),
                        rule.score,
                        escape(&rule.boolean)
                    ),
                );
                for (n, e) in rule.expressions.iter().enumerate() {
                    let value = e.value.as_ref().map(|v| format!(" value=\"{}\"", escape(v))).unwrap_or_default();
                    self.line(
                        depth + 2,
                        &format!(
                            "<expression id=\"{}-rule-expr-{}\" attribute=\"{}\" operation=\"{}\"{value}/>",
                            escape(id),
                            n + 1,
                            escape(&e.attribute),
                            escape(&e.operation)
                        ),
                    );
                }
                self.line(depth + 1, "</rule>");
                self.line(depth, "</rsc_location>");
            }
            Constraint::Colocation { id, rsc, with, score, role, with_role } => {
                let mut s = format!(
                    "<rsc_colocation id=\"{}\" rsc=\"{}\" with-rsc=\"{}\" score=\"{score}\"",
                    escape(id),
                    escape(rsc),
                    escape(with)
                );
                if let Some(r) = role {
                    let _ = write!(s, " rsc-role=\"{}\"", r.as_str());
                }
                if let Some(r) = with_role {
                    let _ = write!(s, " with-rsc-role=\"{}\"", r.as_str());
                }
                s.push_str("/>");
                self.line(depth, &s);
            }
            Constraint::Order(o) => {
                let mut s = format!("<rsc_order id=\"{}\" first=\"{}\"", escape(&o.id), escape(&o.first));
                if let Some(a) = &o.first_action {
                    let _ = write!(s, " first-action=\"{}\"", escape(a));
                }
                let _ = write!(s, " then=\"{}\"", escape(&o.then));
                if let Some(a) = &o.then_action {
                    let _ = write!(s, " then-action=\"{}\"", escape(a));
                }
                if let Some(k) = &o.kind {
                    let _ = write!(s, " kind=\"{}\"", escape(k));
                }
                if let Some(sym) = o.symmetrical {
                    let _ = write!(s, " symmetrical=\"{sym}\"");
                }
                s.push_str("/>");
                self.line(depth, &s);
            }
        }
    }
}

/// Render the whole CIB. `source` names the description in a comment.
pub fn render(cfg: &Config, source: &str) -> String {
    let mut o = Out { x: String::with_capacity(16384) };
    o.line(0, &comment(&format!("Generated by haven generate from {source}; edit the description, not this file.")));
    o.line(
        0,
        &format!(
            "<cib crm_feature_set=\"{CRM_FEATURE_SET}\" validate-with=\"{VALIDATE_WITH}\" epoch=\"1\" num_updates=\"0\" admin_epoch=\"0\">"
        ),
    );
    o.line(1, "<configuration>");
    o.line(2, "<crm_config>");
    o.nvset(3, "cluster_property_set", "cib-bootstrap-options", &cfg.properties);
    o.line(2, "</crm_config>");
    // Only nodes that carry attributes are written: Pacemaker adds every
    // node (with corosync's id) when it joins, and a node listed here that
    // has not joined yet counts as unclean.
    let attributed: Vec<_> = cfg.nodes.iter().filter(|n| !n.attributes.is_empty()).collect();
    if attributed.is_empty() {
        o.line(2, "<nodes/>");
    } else {
        o.line(2, "<nodes>");
        for n in attributed {
            o.line(3, &format!("<node id=\"{}\" uname=\"{}\">", n.id, escape(&n.uname)));
            o.nvset(4, "instance_attributes", &format!("nodes-{}", n.id), &n.attributes);
            o.line(3, "</node>");
        }
        o.line(2, "</nodes>");
    }
    o.line(2, "<resources>");
    for i in &cfg.resources {
        o.item(3, i);
    }
    o.line(2, "</resources>");
    o.line(2, "<constraints>");
    for c in &cfg.constraints {
        o.constraint(3, c);
    }
    o.line(2, "</constraints>");
    if !cfg.rsc_defaults.is_empty() {
        o.line(2, "<rsc_defaults>");
        o.nvset(3, "meta_attributes", "rsc-options", &cfg.rsc_defaults);
        o.line(2, "</rsc_defaults>");
    }
    if !cfg.op_defaults.is_empty() {
        o.line(2, "<op_defaults>");
        o.nvset(3, "meta_attributes", "op-options", &cfg.op_defaults);
        o.line(2, "</op_defaults>");
    }
    o.line(1, "</configuration>");
    o.line(1, "<status/>");
    o.line(0, "</cib>");
    o.x
}
