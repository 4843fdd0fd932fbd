//! OCF 1.1 meta-data XML, generated from an agent's [`AgentSpec`]. The
//! output must satisfy both ra-api-1.dtd (what ocf-tester checks) and
//! metadata.rng, so it uses only what the two have in common.

use super::agent::{ActionSpec, AgentSpec};
use super::xml::escape;
use std::fmt::Write;

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
    let mut x = String::with_capacity(8192);
    let name = if rgmanager { rgmanager_name(spec) } else { spec.name.to_string() };
    if rgmanager {
        x.push_str("<?xml version=\"1.0\"?>\n");
    } else {
        x.push_str("<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n");
    }
    let _ = writeln!(x, "<resource-agent name=\"{}\" version=\"{}\">", escape(&name), env!("CARGO_PKG_VERSION"));
    let _ = writeln!(x, "<version>{OCF_VERSION}</version>");
    let _ = writeln!(x, "<longdesc lang=\"en\">\n{}\n</longdesc>", escape(spec.longdesc.trim()));
    let _ = writeln!(x, "<shortdesc lang=\"en\">{}</shortdesc>", escape(spec.shortdesc));
    x.push_str("<parameters>\n");
    for p in spec.params {
        let primary = if rgmanager && p.name == spec.primary { " primary=\"1\"" } else { "" };
        let _ = writeln!(
            x,
            "<parameter name=\"{}\" unique=\"{}\" required=\"{}\"{primary}>",
            escape(p.name),
            u8::from(p.unique),
            u8::from(p.required)
        );
        let mut long = p.longdesc.trim().to_string();
        if let Some(hint) = p.kind.syntax_hint() {
            long.push('\n');
            long.push_str(&hint);
        }
        if let Some(why) = p.unsupported {
            long.push_str("\nAccepted for compatibility; refused when set: ");
            long.push_str(why);
        }
        let _ = writeln!(x, "<longdesc lang=\"en\">\n{}\n</longdesc>", escape(&long));
        let _ = writeln!(x, "<shortdesc lang=\"en\">{}</shortdesc>", escape(p.shortdesc));
        match p.default {
            Some(d) => {
                let _ = writeln!(x, "<content type=\"{}\" default=\"{}\"/>", p.kind.content_type(), escape(d));
            }
            None => {
                let _ = writeln!(x, "<content type=\"{}\"/>", p.kind.content_type());
            }
        }
        x.push_str("</parameter>\n");
    }
    x.push_str("</parameters>\n<actions>\n");
    let has_status = spec.actions.iter().any(|a| a.action == crate::ocf::Action::Status);
    for a in spec.actions {
        // rgmanager checks with "status": mirror every monitor for it.
        if rgmanager && !has_status && a.action == crate::ocf::Action::Monitor {
            action(&mut x, &ActionSpec { action: crate::ocf::Action::Status, ..*a }, rgmanager);
        }
        action(&mut x, a, rgmanager);
    }
    x.push_str("</actions>\n");
    if rgmanager {
        x.push_str("<special tag=\"rgmanager\">\n</special>\n");
    }
    x.push_str("</resource-agent>\n");
    x
}

fn action(x: &mut String, a: &ActionSpec, rgmanager: bool) {
    // rgmanager reads plain seconds; OCF tools expect a unit.
    let unit = if rgmanager { "" } else { "s" };
    let _ = write!(x, "<action name=\"{}\"", a.action.as_str());
    if let Some(depth) = a.depth {
        let _ = write!(x, " depth=\"{depth}\"");
    }
    let _ = write!(x, " timeout=\"{}{unit}\"", a.timeout_secs);
    if let Some(interval) = a.interval_secs {
        let _ = write!(x, " interval=\"{interval}{unit}\"");
    }
    if let Some(role) = a.role {
        let _ = write!(x, " role=\"{role}\"");
    }
    x.push_str("/>\n");
}
