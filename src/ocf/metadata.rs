//! OCF 1.1 meta-data XML, generated from an agent's [`AgentSpec`]. The
//! output must satisfy both ra-api-1.dtd (what ocf-tester checks) and
//! metadata.rng, so it uses only what the two have in common. Written
//! through [`crate::xml`], which escapes.

use super::agent::{ActionSpec, AgentSpec};
use super::params::ParamSpec;
use crate::xml::Xml;

/// The OCF API version the agents implement.
pub const OCF_VERSION: &str = "1.1";

pub fn render(spec: &AgentSpec) -> String {
    document(spec, false)
}

/// The element name rgmanager gives the agent in cluster.conf (from the
/// resource-agent name): prefixed, so it never collides with stock agents.
pub fn rgmanager_name(spec: &AgentSpec) -> String {
    format!("haven-{}", spec.name)
}

/// The meta-data rgmanager reads from /usr/share/cluster: the same content
/// plus its extras (the primary attribute, plain-second action times, the
/// `special` element). It is not meant for ra-api-1.dtd.
pub fn render_rgmanager(spec: &AgentSpec) -> String {
    document(spec, true)
}

fn document(spec: &AgentSpec, rgmanager: bool) -> String {
    let mut x = Xml::new(0);
    let name = if rgmanager { rgmanager_name(spec) } else { spec.name.to_string() };
    x.declaration();
    if !rgmanager {
        x.doctype("resource-agent SYSTEM \"ra-api-1.dtd\"");
    }
    x.open("resource-agent", &[("name", &name), ("version", env!("CARGO_PKG_VERSION"))]);
    x.text("version", &[], OCF_VERSION);
    descriptions(&mut x, spec.longdesc.trim(), spec.shortdesc);
    x.open("parameters", &[]);
    for p in spec.params {
        parameter(&mut x, spec, p, rgmanager);
    }
    x.close("parameters");
    x.open("actions", &[]);
    let has_status = spec.actions.iter().any(|a| a.action == crate::ocf::Action::Status);
    for a in spec.actions {
        // rgmanager checks with "status": mirror every monitor for it.
        if rgmanager && !has_status && a.action == crate::ocf::Action::Monitor {
            action(&mut x, &ActionSpec { action: crate::ocf::Action::Status, ..*a }, rgmanager);
        }
        action(&mut x, a, rgmanager);
    }
    x.close("actions");
    if rgmanager {
        x.text("special", &[("tag", "rgmanager")], "\n");
    }
    x.close("resource-agent");
    x.finish()
}

/// `<longdesc>` (on lines of its own inside the element) and `<shortdesc>`.
fn descriptions(x: &mut Xml, long: &str, short: &str) {
    x.text("longdesc", &[("lang", "en")], &format!("\n{long}\n"));
    x.text("shortdesc", &[("lang", "en")], short);
}

fn parameter(x: &mut Xml, spec: &AgentSpec, p: &ParamSpec, rgmanager: bool) {
    let (unique, required) = (u8::from(p.unique).to_string(), u8::from(p.required).to_string());
    let mut attrs = vec![("name", p.name), ("unique", unique.as_str()), ("required", required.as_str())];
    if rgmanager && p.name == spec.primary {
        attrs.push(("primary", "1"));
    }
    x.open("parameter", &attrs);
    let mut long = p.longdesc.trim().to_string();
    if let Some(hint) = p.kind.syntax_hint() {
        long.push('\n');
        long.push_str(&hint);
    }
    if let Some(why) = p.unsupported {
        long.push_str("\nAccepted for compatibility; refused when set: ");
        long.push_str(why);
    }
    descriptions(x, &long, p.shortdesc);
    let kind = p.kind.content_type();
    match p.default {
        Some(d) => x.empty("content", &[("type", kind), ("default", d)]),
        None => x.empty("content", &[("type", kind)]),
    }
    x.close("parameter");
}

fn action(x: &mut Xml, a: &ActionSpec, rgmanager: bool) {
    // rgmanager reads plain seconds; OCF tools expect a unit.
    let unit = if rgmanager { "" } else { "s" };
    let depth = a.depth.map(|d| d.to_string());
    let timeout = format!("{}{unit}", a.timeout_secs);
    let interval = a.interval_secs.map(|i| format!("{i}{unit}"));
    let role = a.role.map(|r| r.to_string());
    let mut attrs = vec![("name", a.action.as_str())];
    attrs.extend(depth.as_deref().map(|d| ("depth", d)));
    attrs.push(("timeout", &timeout));
    attrs.extend(interval.as_deref().map(|i| ("interval", i)));
    attrs.extend(role.as_deref().map(|r| ("role", r)));
    x.empty("action", &attrs);
}
