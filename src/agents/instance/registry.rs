//! The registry of instances known on this node: one state record per
//! instance under /run/haven/instance/, written by the agent whenever
//! Pacemaker probes, validates, starts or stops an instance here. Pacemaker
//! probes every resource on every node when the cluster starts, so every
//! node learns every instance, running here or not (what the Scalix guide
//! had operators merge into instance.cfg by hand). `haven instance list`
//! prints it.

use super::config::RUN_ROOT;
use super::file::Role;
use super::state::{self, State};
use crate::ocf::Deadline;
use std::path::Path;
use std::time::Duration;

/// One line of `haven instance list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub hostname: String,
    pub ip: String,
    pub state: String,
    pub services: String,
    pub location: String,
}

/// What monitor at depth 0 would say, in words.
pub fn state_word(st: &State) -> &'static str {
    if !st.running {
        return "stopped";
    }
    let mut failed = false;
    let mut degraded = false;
    for s in st.expected() {
        if !s.alive() {
            if s.optional {
                degraded = true;
            } else {
                failed = true;
            }
        }
    }
    match (failed, degraded, st.promoted) {
        (true, _, _) => "failed",
        (false, true, _) => "degraded",
        (false, false, true) => "promoted",
        (false, false, false) => "running",
    }
}

fn services_word(st: &State) -> String {
    if st.services.is_empty() {
        return "-".into();
    }
    st.services
        .iter()
        .map(|s| {
            let mut w = s.name.clone();
            if s.role == Role::Promoted {
                w.push_str("(promoted)");
            }
            if st.running && s.ident.is_some() && !s.alive() {
                w.push_str("(down)");
            }
            w
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub use crate::host::node_name;

/// Where the cluster runs a resource that is not here: crm_resource
/// --locate, bounded; "-" when the cluster cannot say.
fn locate(resource: &str) -> String {
    let id = super::score::resource_id(resource);
    if id.is_empty() || crate::exec::which("crm_resource").is_none() {
        return "-".into();
    }
    let d = Deadline::after(Duration::from_secs(2));
    match crate::exec::run(&["crm_resource", "--locate", "--resource", id], &d) {
        Ok(f) if f.code == 0 => {
            // "resource web1 is running on: node1 Promoted"
            let nodes: Vec<String> = f
                .stdout
                .lines()
                .filter_map(|l| l.split_once("is running on:").map(|(_, n)| n.trim().to_string()))
                .filter(|n| !n.is_empty())
                .collect();
            if nodes.is_empty() {
                "-".into()
            } else {
                nodes.join(", ")
            }
        }
        _ => "-".into(),
    }
}

/// Every instance recorded under `root`, sorted by name.
pub fn entries_in(root: &Path, ask_cluster: bool) -> Vec<Entry> {
    let Ok(rd) = std::fs::read_dir(root) else { return Vec::new() };
    let me = node_name();
    let mut out: Vec<Entry> = rd
        .flatten()
        .filter_map(|e| state::read(&e.path()).ok().flatten())
        .map(|st| {
            let word = state_word(&st);
            let location = if st.running {
                me.clone()
            } else if ask_cluster {
                locate(&st.resource)
            } else {
                "-".into()
            };
            Entry {
                name: st.name.clone(),
                hostname: st.hostname.clone(),
                ip: st.ip.clone(),
                state: word.to_string(),
                services: services_word(&st),
                location,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The table `haven instance list` prints.
pub fn render(entries: &[Entry]) -> String {
    let head = ["NAME", "HOSTNAME", "IP", "STATE", "SERVICES", "WHERE"];
    let rows: Vec<[&str; 6]> =
        entries.iter().map(|e| [&*e.name, &*e.hostname, &*e.ip, &*e.state, &*e.services, &*e.location]).collect();
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(head).chain(rows) {
        let cells: Vec<String> = r.iter().zip(width).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `haven instance list`: the registry of this node.
pub fn list() -> String {
    render(&entries_in(Path::new(RUN_ROOT), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lines_up() {
        let e = Entry {
            name: "mail1".into(),
            hostname: "mail1.example.com".into(),
            ip: "198.51.100.21".into(),
            state: "running".into(),
            services: "smtp,imap".into(),
            location: "nodea".into(),
        };
        let t = render(&[e]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("NAME   HOSTNAME           IP"), "{t}");
        assert!(lines[1].starts_with("mail1  mail1.example.com  198.51.100.21  running  smtp,imap"), "{t}");
        assert_eq!(lines[0].find("WHERE"), lines[1].find("nodea"));
    }
}
