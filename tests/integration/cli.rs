//! The multicall binary and the OCF contract seen from outside: dispatch,
//! meta-data (golden files, DTD and RelaxNG), bad input and exit codes.

use crate::common::*;
use std::process::Command;

const DTD: &str = "/usr/share/resource-agents/ra-api-1.dtd";
const RNG: &str = "/usr/share/resource-agents/metadata.rng";

fn agents() -> Vec<String> {
    let out = Command::new(HAVEN).arg("agents").output().expect("haven agents");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
fn lists_agents_and_has_help_and_version() {
    assert!(agents().contains(&"vip".to_string()));
    let v = Command::new(HAVEN).arg("--version").output().unwrap();
    assert!(v.status.success());
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("haven "));
    let h = Command::new(HAVEN).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&h.stdout);
    assert!(text.contains("agent") && text.contains("agents"), "{text}");
    let bad = Command::new(HAVEN).args(["agent", "nosuch", "start"]).output().unwrap();
    assert_ne!(bad.status.code(), Some(0));
}

#[test]
fn link_and_subcommand_behave_the_same() {
    for agent in agents() {
        let via_link = Command::new(agent_path(&agent)).arg("meta-data").output().unwrap();
        let via_cmd = Command::new(HAVEN).args(["agent", &agent, "meta-data"]).output().unwrap();
        assert_eq!(via_link.status.code(), Some(0));
        assert_eq!(via_link.stdout, via_cmd.stdout, "{agent}: link and `haven agent` differ");
        // Both paths run the same validation.
        let a = Run::new(&agent).action("validate-all");
        let b = Command::new(HAVEN).args(["agent", &agent, "validate-all"]).env_clear().output().unwrap();
        assert_eq!(Some(a.code), b.status.code());
    }
}

/// ocf-metadata/<agent>.xml is exactly what the agent prints; set
/// UPDATE_GOLDEN=1 to rewrite after an intended change.
#[test]
fn metadata_matches_golden_files() {
    let root = env!("CARGO_MANIFEST_DIR");
    for agent in agents() {
        let out = Command::new(agent_path(&agent)).arg("meta-data").output().unwrap();
        let printed = String::from_utf8(out.stdout).expect("utf-8 meta-data");
        let golden = format!("{root}/ocf-metadata/{agent}.xml");
        if std::env::var("UPDATE_GOLDEN").is_ok() {
            std::fs::write(&golden, &printed).unwrap();
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_else(|e| panic!("{golden}: {e}"));
        assert!(
            printed == expected,
            "meta-data of {agent} drifted from {golden}; rerun with UPDATE_GOLDEN=1 if intended"
        );
    }
}

#[test]
fn metadata_is_valid_against_dtd_and_rng() {
    if !(need_tool("xmllint") && need_file(DTD) && need_file(RNG)) {
        return;
    }
    for agent in agents() {
        let out = Command::new(agent_path(&agent)).arg("meta-data").output().unwrap();
        let file = std::env::temp_dir().join(format!("haven-md-{}-{agent}.xml", std::process::id()));
        std::fs::write(&file, &out.stdout).unwrap();
        let f = file.to_str().unwrap();
        let dtd = Command::new("xmllint").args(["--noout", "--dtdvalid", DTD, f]).output().unwrap();
        assert!(dtd.status.success(), "{agent} vs ra-api-1.dtd: {}", String::from_utf8_lossy(&dtd.stderr));
        let rng = Command::new("xmllint").args(["--noout", "--relaxng", RNG, f]).output().unwrap();
        assert!(rng.status.success(), "{agent} vs metadata.rng: {}", String::from_utf8_lossy(&rng.stderr));
        let _ = std::fs::remove_file(&file);
    }
}

#[test]
fn metadata_needs_no_environment_and_forks_nothing_visible() {
    // meta-data as nobody would run it: empty environment.
    let out = Command::new(agent_path("vip")).arg("meta-data").env_clear().output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for p in [
        "ip",
        "nic",
        "cidr_netmask",
        "broadcast",
        "iflabel",
        "lvs_support",
        "arp_count",
        "arp_interval",
        "arp_bg",
        "arp_count_refresh",
        "nodad",
        "noprefixroute",
        "preferred_lft",
        "flush_routes",
        "network_namespace",
    ] {
        assert!(text.contains(&format!("<parameter name=\"{p}\"")), "IPaddr2 parameter {p} missing");
    }
}

#[test]
fn unknown_action_is_3() {
    let o = Run::new("vip").param("ip", "198.51.100.7").action("frobnicate");
    assert_eq!(o.code, 3);
    assert!(o.reason().is_some_and(|r| r.contains("frobnicate")), "{}", o.stderr);
    let usage = Run::new("vip").action("usage");
    assert_eq!(usage.code, 0);
    assert!(usage.stdout.contains("start|stop"), "{}", usage.stdout);
    let none = Command::new(agent_path("vip")).env_clear().output().unwrap();
    assert_eq!(none.status.code(), Some(2), "no action at all is an argument error");
}

#[test]
fn missing_required_parameter_is_6() {
    for action in ["start", "validate-all", "monitor"] {
        let o = Run::new("vip").action(action);
        assert_eq!(o.code, 6, "{action}: {}", o.stderr);
        let reason = o.reason().expect("exit reason");
        assert!(reason.contains("'ip'") && reason.contains("required"), "{reason}");
        assert_eq!(o.stderr.lines().filter(|l| l.starts_with("ocf-exit-reason:")).count(), 1);
    }
}

#[test]
fn malformed_values_are_6_naming_the_parameter() {
    let cases = [
        ("ip", "198.51.100.300", "ip"),
        ("ip", "not-an-address", "ip"),
        ("cidr_netmask", "33", "cidr_netmask"),
        ("cidr_netmask", "twentyfour", "cidr_netmask"),
        ("arp_count", "-1", "arp_count"),
        ("arp_bg", "perhaps", "arp_bg"),
        ("iflabel", "web label", "iflabel"),
        ("broadcast", "everyone", "broadcast"),
    ];
    for (param, value, named) in cases {
        let mut run = Run::new("vip").param("ip", "198.51.100.7");
        run = run.param(param, value);
        let o = run.action("validate-all");
        assert_eq!(o.code, 6, "{param}={value}: {}", o.stderr);
        let reason = o.reason().unwrap_or_default();
        assert!(reason.contains(&format!("'{named}'")), "{param}={value}: reason does not name it: {reason}");
    }
}

#[test]
fn shell_metacharacters_are_never_interpreted() {
    let marker = std::env::temp_dir().join(format!("haven-pwned-{}", std::process::id()));
    let m = marker.display().to_string();
    let payloads = [
        format!("198.51.100.7; touch {m}"),
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("198.51.100.7 && touch {m}"),
        format!("198.51.100.7|touch {m}"),
    ];
    for p in &payloads {
        for param in ["ip", "nic", "iflabel", "network_namespace", "preferred_lft"] {
            let run = Run::new("vip").param("ip", "198.51.100.7").param(param, p);
            let o = run.action("validate-all");
            assert_eq!(o.code, 6, "{param}={p:?}: {}", o.stderr);
            assert!(o.reason().unwrap_or_default().contains(&format!("'{param}'")), "{param}: {}", o.stderr);
            assert!(!marker.exists(), "{param}={p:?} was executed by a shell");
        }
    }
}

#[test]
fn unsupported_ipaddr2_parameters_refused_only_when_set() {
    let ok = Run::new("vip").param("ip", "198.51.100.7").param("unique_clone_address", "false").action("validate-all");
    assert_ne!(ok.code, 6, "default value of an unsupported parameter must be accepted: {}", ok.stderr);
    let o = Run::new("vip").param("ip", "198.51.100.7").param("clusterip_hash", "sourceip").action("validate-all");
    assert_eq!(o.code, 6);
    assert!(o.reason().unwrap_or_default().contains("CLUSTERIP"), "{}", o.stderr);
}

#[test]
fn invalid_parameters_on_stop_and_probe_do_not_fail_the_node() {
    // A stop failure gets a node fenced; a probe must say "not running".
    let stop = Run::new("vip").param("ip", "garbage").action("stop");
    assert_eq!(stop.code, 0, "{}", stop.stderr);
    let probe = Run::new("vip").param("ip", "garbage").probe();
    assert_eq!(probe.code, 7, "{}", probe.stderr);
}

#[test]
fn agents_directory_is_the_install_layout() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut installed: Vec<String> = std::fs::read_dir(format!("{root}/agents/haven"))
        .expect("agents/haven")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    installed.sort();
    let mut listed = agents();
    listed.sort();
    assert_eq!(installed, listed, "agents/haven must hold one link per agent");
    for a in &listed {
        let target = std::fs::read_link(format!("{root}/agents/haven/{a}")).expect("a symlink");
        assert_eq!(target.to_str(), Some("/usr/sbin/haven"));
    }
}

#[test]
fn rgmanager_metadata_has_its_extras() {
    for agent in agents() {
        let out = Command::new(HAVEN).args(["agent", "--rgmanager", &agent, "meta-data"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!("<resource-agent name=\"haven-{agent}\"")), "{text}");
        assert_eq!(text.matches("primary=\"1\"").count(), 1, "exactly one primary attribute");
        assert!(text.contains("<special tag=\"rgmanager\">"));
        assert!(text.contains("<action name=\"status\""), "rgmanager calls status");
        // rgmanager runs /usr/share/cluster/haven-<agent>.sh: same answer.
        let dir = std::env::temp_dir().join(format!("haven-rgm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join(format!("haven-{agent}.sh"));
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(HAVEN, &link).unwrap();
        let via_link = Command::new(&link).arg("meta-data").output().unwrap();
        assert_eq!(via_link.stdout, out.stdout);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
