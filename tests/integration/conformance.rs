//! Debian's ocf-tester against every agent `haven agents` lists, with
//! parameters that suit a throwaway namespace.

use crate::common::*;
use std::process::Command;

/// What one agent needs for ocf-tester: the namespaces it runs in (kept
/// alive for the run) and its -o parameters. The packaging test reuses it
/// against the installed agents.
pub(crate) struct Setup {
    pub(crate) prefix: Vec<String>,
    pub(crate) params: Vec<(String, String)>,
    _keep: Vec<Box<dyn std::any::Any>>,
}

pub(crate) fn setup_for(agent: &str) -> Setup {
    match agent {
        "vip" => {
            let pair = Pair::new();
            Setup {
                prefix: vec!["ip".into(), "netns".into(), "exec".into(), pair.node.name.clone()],
                params: [("ip", "198.51.100.77"), ("nic", "v0"), ("cidr_netmask", "24"), ("arp_bg", "false")]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                _keep: vec![Box::new(pair)],
            }
        }
        "filesystem" => {
            let ns = MountNs::new();
            let img = LoopImage::new(32, &["mkfs.ext4", "-q"]);
            let params = vec![
                ("device".to_string(), img.device.clone()),
                ("directory".to_string(), ns.dir("conformance")),
                ("fstype".to_string(), "ext4".to_string()),
            ];
            Setup {
                prefix: vec!["nsenter".into(), ns.enter_arg(), "--".into()],
                params,
                _keep: vec![Box::new(img), Box::new(ns)],
            }
        }
        "director" => {
            let ns = Netns::new();
            let cfg = std::env::temp_dir().join(format!("haven-conf-{}.cf", ns.name));
            std::fs::write(
                &cfg,
                "checkinterval = 1\nvirtual = 198.51.100.77:80\n\treal = 203.0.113.11:80 masq\n\tchecktype = on\n",
            )
            .expect("write the director configuration");
            let table = format!("hvt_conf_{}", std::process::id());
            let params =
                vec![("configfile".to_string(), cfg.display().to_string()), ("table".to_string(), table.clone())];
            /// Removes a file, or a directory with its contents, on drop:
            /// the configuration, and the state directory the agent keeps
            /// (its last daemon.log) after stop.
            struct Remove(std::path::PathBuf);
            impl Drop for Remove {
                fn drop(&mut self) {
                    let _ = std::fs::remove_file(&self.0);
                    let _ = std::fs::remove_dir_all(&self.0);
                }
            }
            let state = std::path::Path::new("/run/haven/director").join(table);
            Setup {
                prefix: vec!["ip".into(), "netns".into(), "exec".into(), ns.name.clone()],
                params,
                _keep: vec![Box::new(ns), Box::new(Remove(cfg)), Box::new(Remove(state))],
            }
        }
        "instance" => {
            // A lab node (address in a network namespace, tmpfs datadir in
            // a mount namespace) running the web example with nginx.
            let (prefix, params, keep) = crate::instance::ocf_tester_setup();
            Setup { prefix, params, _keep: vec![keep] }
        }
        other => panic!("no ocf-tester setup for agent {other}: add one here"),
    }
}

#[test]
fn ocf_tester_passes_for_every_agent() {
    if !need_root() || !need_tool("ocf-tester") || !need_tool("nsenter") || !need_tool("mkfs.ext4") {
        return;
    }
    let out = Command::new(HAVEN).arg("agents").output().unwrap();
    for agent in String::from_utf8_lossy(&out.stdout).lines() {
        let setup = setup_for(agent);
        let mut cmd = Command::new(&setup.prefix[0]);
        cmd.args(&setup.prefix[1..]).args(["ocf-tester", "-n", &format!("conf_{agent}")]);
        for (k, v) in &setup.params {
            cmd.arg("-o").arg(format!("{k}={v}"));
        }
        cmd.arg(agent_path(agent));
        let o = cmd.output().expect("run ocf-tester");
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "ocf-tester failed for {agent}:\n{text}");
        assert!(text.contains("passed all tests"), "ocf-tester output for {agent}:\n{text}");
        eprintln!("ocf-tester: {agent} passed all tests");
    }
}
