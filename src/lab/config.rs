//! The files a lab node boots from: corosync.conf, /etc/hosts, and the CIB
//! generated from the description with the lab's own settings (its fence
//! agent, short timings, volumes on loop devices).

use super::error::LabError;
use super::state::{NodeState, FENCE_AGENT};
use crate::generate::model::{Description, FenceDevice, Node, Pair};
use std::fmt::Write;

/// The nodes of a lab of `count` nodes: the description's first ones, then
/// `node<N>` for any extra.
pub fn lab_nodes(d: &Description, count: Option<usize>) -> Result<Vec<Node>, LabError> {
    let count = count.unwrap_or(d.nodes.len());
    if !(2..=16).contains(&count) {
        return Err(LabError::Refused(format!("a lab has 2 to 16 nodes, not {count}")));
    }
    let mut nodes: Vec<Node> = d.nodes.iter().take(count).cloned().collect();
    let mut next_id = nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1;
    while nodes.len() < count {
        let name = format!("node{next_id}");
        nodes.push(Node { name, id: next_id, attributes: Vec::new(), line: 0 });
        next_id += 1;
    }
    Ok(nodes)
}

/// The node's address on the lab network.
pub fn node_addr(index: u32) -> String {
    format!("198.51.100.{}", 10 + index)
}

fn pair(name: &str, value: &str) -> Pair {
    Pair { name: name.into(), value: value.into(), line: 0 }
}

/// The description as the lab runs it: every fence device replaced by the
/// lab's (real ones cannot reach a namespace), fencing on, short timings,
/// and `LABEL=` devices of the lab's volumes replaced by their loop device.
pub fn for_lab(d: &Description, nodes: &[Node], volumes: &[super::state::Volume]) -> Description {
    let mut d = d.clone();
    d.nodes = nodes.to_vec();
    d.fencing.enabled = true;
    d.fencing.devices = vec![FenceDevice {
        id: "lab-fence".into(),
        agent: FENCE_AGENT.into(),
        params: Vec::new(),
        hosts: nodes.iter().map(|n| n.name.clone()).collect(),
        ports: Vec::new(),
        line: 0,
    }];
    // A lab starts every node at once: waiting 20 s for a DC that will
    // never answer only slows the demo.
    for (name, value) in [("dc-deadtime", "2s"), ("stonith-timeout", "30s")] {
        d.properties.retain(|p| p.name != name);
        d.properties.push(pair(name, value));
    }
    for r in &mut d.resources {
        for p in &mut r.params {
            if p.name == "device" {
                if let Some(v) = p.value.strip_prefix("LABEL=").and_then(|l| volumes.iter().find(|v| v.label == l)) {
                    p.value = v.device.clone();
                }
            }
        }
    }
    d
}

/// Labels of the ext4/xfs volumes the description mounts by `LABEL=`:
/// the lab makes a loop device for each.
pub fn wanted_volumes(d: &Description) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for r in &d.resources {
        let fstype = r.param("fstype").unwrap_or("ext4");
        if let Some(label) = r.param("device").and_then(|v| v.strip_prefix("LABEL=")) {
            if matches!(fstype, "ext4" | "ext3" | "ext2" | "xfs") && !out.iter().any(|(l, _)| l == label) {
                out.push((label.to_string(), fstype.to_string()));
            }
        }
    }
    out
}

/// The CIB to pre-load: the generated XML without its leading comment.
pub fn cib_xml(rendered: &str) -> &str {
    rendered.find("<cib").map_or(rendered, |i| &rendered[i..])
}

pub fn corosync_conf(cluster: &str, nodes: &[NodeState]) -> String {
    let mut s = String::new();
    // token 1000 and token_coefficient 0: a dead node is noticed in a
    // second whatever the node count (corosync adds 650 ms per node past
    // two by default: 1650 ms with three), and consensus (1.2 x token) takes
    // 1.2 s more. bench/failover.py measured these two phases as over half
    // of a failover with the defaults; shorter tokens start to flap on a
    // loaded CI machine. hires: millisecond stamps for the bench's phases.
    let _ = write!(
        s,
        "# Written by haven lab.\ntotem {{\n\tversion: 2\n\tcluster_name: {cluster}\n\ttransport: knet\n\ttoken: 1000\n\
         \ttoken_coefficient: 0\n\tcrypto_cipher: none\n\tcrypto_hash: none\n}}\n\nnodelist {{\n"
    );
    for n in nodes {
        let _ = write!(s, "\tnode {{\n\t\tname: {}\n\t\tnodeid: {}\n\t\tring0_addr: {}\n\t}}\n", n.name, n.id, n.addr);
    }
    s.push_str("}\n\nquorum {\n\tprovider: corosync_votequorum\n");
    if nodes.len() == 2 {
        s.push_str("\ttwo_node: 1\n");
    }
    s.push_str(
        "}\n\nlogging {\n\tto_logfile: yes\n\tlogfile: /var/log/corosync/corosync.log\n\tto_stderr: no\n\
         \tto_syslog: no\n\ttimestamp: hires\n}\n",
    );
    s
}

pub fn hosts(nodes: &[NodeState]) -> String {
    let mut s = String::from("# Written by haven lab.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n");
    for n in nodes {
        let _ = writeln!(s, "{}\t{}", n.addr, n.name);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, id: u32, index: u32) -> NodeState {
        NodeState { name: name.into(), id, index, addr: node_addr(index), daemons: Vec::new() }
    }

    #[test]
    fn corosync_conf_lists_nodes_and_two_node_only_for_two() {
        let two = corosync_conf("c", &[node("a", 1, 1), node("b", 2, 2)]);
        assert!(two.contains("ring0_addr: 198.51.100.11") && two.contains("ring0_addr: 198.51.100.12"));
        assert!(two.contains("two_node: 1") && two.contains("token: 1000") && two.contains("transport: knet"));
        let three = corosync_conf("c", &[node("a", 1, 1), node("b", 2, 2), node("c", 3, 3)]);
        assert!(!three.contains("two_node"));
    }

    #[test]
    fn cib_loses_its_comment() {
        assert_eq!(cib_xml("<!-- x -->\n<cib a=\"1\"/>"), "<cib a=\"1\"/>");
    }
}
