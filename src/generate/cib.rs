//! CIB XML for Pacemaker 2.1.5 (schema pacemaker-3.9, feature set 3.16.1,
//! Debian 12's): what `cibadmin --replace` or `crm_verify --xml-file`
//! takes. Promotable clones are clones with promotable=true; the
//! deprecated master element is never written.

use super::model::Rule;
use super::pacemaker::{CloneConf, Config, Constraint, GroupConf, Item, NodeConf, OrderConf, PrimitiveConf};
use crate::xml::Xml;

/// The schema the CIB declares (pacemaker-3.9 ships with Pacemaker 2.1.5).
pub const VALIDATE_WITH: &str = "pacemaker-3.9";
/// Pacemaker 2.1.5's feature set: a CIB must not claim a newer one than
/// the cluster that loads it.
pub const CRM_FEATURE_SET: &str = "3.16.1";

struct Out {
    x: Xml,
}

/// An optional attribute.
fn opt<'a>(attrs: &mut Vec<(&'static str, &'a str)>, name: &'static str, v: Option<&'a str>) {
    if let Some(v) = v {
        attrs.push((name, v));
    }
}

impl Out {
    fn nvset(&mut self, tag: &str, id: &str, pairs: &[(String, String)]) {
        if pairs.is_empty() {
            return;
        }
        self.x.open(tag, &[("id", id)]);
        for (k, v) in pairs {
            self.x.empty("nvpair", &[("id", &format!("{id}-{k}")), ("name", k), ("value", v)]);
        }
        self.x.close(tag);
    }

    fn comment(&mut self, text: &Option<String>) {
        if let Some(c) = text {
            self.x.comment(c);
        }
    }

    fn primitive(&mut self, p: &PrimitiveConf) {
        self.comment(&p.comment);
        let mut attrs = vec![("id", p.id.as_str()), ("class", p.agent.class.as_str())];
        opt(&mut attrs, "provider", p.agent.provider.as_deref());
        attrs.push(("type", &p.agent.kind));
        self.x.open("primitive", &attrs);
        self.nvset("instance_attributes", &format!("{}-instance_attributes", p.id), &p.params);
        self.nvset("meta_attributes", &format!("{}-meta_attributes", p.id), &p.meta);
        if !p.ops.is_empty() {
            self.x.open("operations", &[]);
            for op in &p.ops {
                let id = op.id(&p.id);
                let mut attrs = vec![("id", id.as_str()), ("name", &op.name), ("interval", &op.interval)];
                opt(&mut attrs, "timeout", op.timeout.as_deref());
                opt(&mut attrs, "role", op.role.map(|r| r.as_str()));
                opt(&mut attrs, "on-fail", op.on_fail.as_deref());
                self.x.empty("op", &attrs);
            }
            self.x.close("operations");
        }
        self.x.close("primitive");
    }

    fn group(&mut self, g: &GroupConf) {
        self.comment(&g.comment);
        self.x.open("group", &[("id", &g.id)]);
        self.nvset("meta_attributes", &format!("{}-meta_attributes", g.id), &g.meta);
        for m in &g.members {
            self.primitive(m);
        }
        self.x.close("group");
    }

    fn clone_set(&mut self, c: &CloneConf) {
        self.comment(&c.comment);
        self.x.open("clone", &[("id", &c.id)]);
        self.nvset("meta_attributes", &format!("{}-meta_attributes", c.id), &c.meta);
        self.item(&c.child);
        self.x.close("clone");
    }

    fn item(&mut self, i: &Item) {
        match i {
            Item::Primitive(p) => self.primitive(p),
            Item::Group(g) => self.group(g),
            Item::Clone(c) => self.clone_set(c),
        }
    }

    fn rule(&mut self, id: &str, rsc: &str, rule: &Rule) {
        self.x.open("rsc_location", &[("id", id), ("rsc", rsc)]);
        let (rule_id, score) = (format!("{id}-rule"), rule.score.to_string());
        let mut attrs = vec![("id", rule_id.as_str()), ("score", &score), ("boolean-op", &rule.boolean)];
        opt(&mut attrs, "role", rule.role.map(|r| r.as_str()));
        self.x.open("rule", &attrs);
        for (n, e) in rule.expressions.iter().enumerate() {
            let expr_id = format!("{id}-rule-expr-{}", n + 1);
            let mut attrs = vec![("id", expr_id.as_str()), ("attribute", &e.attribute), ("operation", &e.operation)];
            opt(&mut attrs, "value", e.value.as_deref());
            self.x.empty("expression", &attrs);
        }
        self.x.close("rule");
        self.x.close("rsc_location");
    }

    fn order(&mut self, o: &OrderConf) {
        let mut attrs = vec![("id", o.id.as_str()), ("first", &o.first)];
        opt(&mut attrs, "first-action", o.first_action.as_deref());
        attrs.push(("then", &o.then));
        opt(&mut attrs, "then-action", o.then_action.as_deref());
        opt(&mut attrs, "kind", o.kind.as_deref());
        let sym = o.symmetrical.map(|s| s.to_string());
        opt(&mut attrs, "symmetrical", sym.as_deref());
        self.x.empty("rsc_order", &attrs);
    }

    fn constraint(&mut self, c: &Constraint) {
        match c {
            Constraint::Location { id, rsc, node, score, comment } => {
                self.comment(comment);
                let score = score.to_string();
                self.x.empty("rsc_location", &[("id", id), ("rsc", rsc), ("node", node), ("score", &score)]);
            }
            Constraint::Rule { id, rsc, rule, comment } => {
                self.comment(comment);
                self.rule(id, rsc, rule);
            }
            Constraint::Colocation { id, rsc, with, score, role, with_role } => {
                let score = score.to_string();
                let mut attrs = vec![("id", id.as_str()), ("rsc", rsc), ("with-rsc", with), ("score", &score)];
                opt(&mut attrs, "rsc-role", role.map(|r| r.as_str()));
                opt(&mut attrs, "with-rsc-role", with_role.map(|r| r.as_str()));
                self.x.empty("rsc_colocation", &attrs);
            }
            Constraint::Order(o) => self.order(o),
        }
    }

    fn nodes(&mut self, nodes: &[NodeConf]) {
        // Only nodes that carry attributes are written: Pacemaker adds every
        // node (with corosync's id) when it joins, and a node listed here
        // that has not joined yet counts as unclean.
        let attributed: Vec<_> = nodes.iter().filter(|n| !n.attributes.is_empty()).collect();
        if attributed.is_empty() {
            self.x.empty("nodes", &[]);
            return;
        }
        self.x.open("nodes", &[]);
        for n in attributed {
            let id = n.id.to_string();
            self.x.open("node", &[("id", &id), ("uname", &n.uname)]);
            self.nvset("instance_attributes", &format!("nodes-{id}"), &n.attributes);
            self.x.close("node");
        }
        self.x.close("nodes");
    }

    fn defaults(&mut self, tag: &str, id: &str, pairs: &[(String, String)]) {
        if !pairs.is_empty() {
            self.x.open(tag, &[]);
            self.nvset("meta_attributes", id, pairs);
            self.x.close(tag);
        }
    }
}

/// Render the whole CIB. `source` names the description in a comment.
pub fn render(cfg: &Config, source: &str) -> String {
    let mut o = Out { x: Xml::new(2) };
    o.x.comment(&format!("Generated by haven generate from {source}; edit the description, not this file."));
    let root = [
        ("crm_feature_set", CRM_FEATURE_SET),
        ("validate-with", VALIDATE_WITH),
        ("epoch", "1"),
        ("num_updates", "0"),
        ("admin_epoch", "0"),
    ];
    o.x.open("cib", &root);
    o.x.open("configuration", &[]);
    o.x.open("crm_config", &[]);
    o.nvset("cluster_property_set", "cib-bootstrap-options", &cfg.properties);
    o.x.close("crm_config");
    o.nodes(&cfg.nodes);
    o.x.open("resources", &[]);
    for i in &cfg.resources {
        o.item(i);
    }
    o.x.close("resources");
    o.x.open("constraints", &[]);
    for c in &cfg.constraints {
        o.constraint(c);
    }
    o.x.close("constraints");
    o.defaults("rsc_defaults", "rsc-options", &cfg.rsc_defaults);
    o.defaults("op_defaults", "op-options", &cfg.op_defaults);
    o.x.close("configuration");
    o.x.empty("status", &[]);
    o.x.close("cib");
    o.x.finish()
}
