//! Debian's ocf-tester against every agent `haven agents` lists, with
//! parameters that suit a throwaway namespace.

use crate::common::*;
use std::process::Command;

/// ocf-tester -o options per agent (inside the node namespace of a Pair).
fn params_for(agent: &str) -> Vec<(&'static str, &'static str)> {
    match agent {
        "vip" => vec![("ip", "198.51.100.77"), ("nic", "v0"), ("cidr_netmask", "24"), ("arp_bg", "false")],
        other => panic!("no ocf-tester parameters for agent {other}: add them here"),
    }
}

#[test]
fn ocf_tester_passes_for_every_agent() {
    if !need_root() || !need_tool("ocf-tester") {
        return;
    }
    let out = Command::new(HAVEN).arg("agents").output().unwrap();
    for agent in String::from_utf8_lossy(&out.stdout).lines() {
        let pair = Pair::new();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &pair.node.name, "ocf-tester", "-n", &format!("conf_{agent}")]);
        for (k, v) in params_for(agent) {
            cmd.arg("-o").arg(format!("{k}={v}"));
        }
        cmd.arg(agent_path(agent));
        let o = cmd.output().expect("run ocf-tester");
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "ocf-tester failed for {agent}:\n{text}");
        assert!(text.contains("passed all tests"), "ocf-tester output for {agent}:\n{text}");
    }
}
