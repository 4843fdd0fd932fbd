//! The lab's fence agent, found by Pacemaker as /usr/sbin/fence_haven
//! inside the nodes (an overlay layer links it to the node's haven binary). It
//! speaks the fence-agents interface (key=value lines on stdin, or -o/-n
//! options) and powers nodes off and on through `haven lab` run in the
//! namespaces the lab was started from (the node cannot see the lab's
//! namespace handles from inside).

use super::state::{State, FENCE_AGENT};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long a rebooted node stays off: one back within about a second
/// rejoins before the fence result lands and its pacemakerd exits.
const REBOOT_DELAY_S: u64 = 4;

const METADATA: &str = r#"<?xml version="1.0" ?>
<resource-agent name="fence_haven" shortdesc="Fence agent for haven lab nodes">
<longdesc>Powers a node of a haven lab (namespaces on one machine) off by killing every process of its namespaces and taking its link down; on boots it again.</longdesc>
<vendor-url>https://github.com/haven</vendor-url>
<parameters>
	<parameter name="action" unique="0" required="0">
		<getopt mixed="-o, --action=[action]" />
		<content type="string" default="reboot" />
		<shortdesc lang="en">Fencing action</shortdesc>
	</parameter>
	<parameter name="plug" unique="0" required="0" obsoletes="port">
		<getopt mixed="-n, --plug=[name]" />
		<content type="string" />
		<shortdesc lang="en">The lab node to fence</shortdesc>
	</parameter>
	<parameter name="port" unique="0" required="0" deprecated="1">
		<getopt mixed="-n, --plug=[name]" />
		<content type="string" />
		<shortdesc lang="en">The lab node to fence</shortdesc>
	</parameter>
</parameters>
<actions>
	<action name="on" automatic="0"/>
	<action name="off" />
	<action name="reboot" />
	<action name="status" />
	<action name="list" />
	<action name="list-status" />
	<action name="monitor" />
	<action name="metadata" />
	<action name="validate-all" />
</actions>
</resource-agent>
"#;

/// Action and target from argv (-o ACTION -n NODE) and stdin (key=value).
fn request(args: &[String], stdin: &str) -> (String, Option<String>) {
    let mut action = None;
    let mut target = None;
    for line in stdin.lines() {
        if let Some((k, v)) = line.trim().split_once('=') {
            match k.trim() {
                "action" | "option" => action = Some(v.trim().to_string()),
                "plug" | "port" => target = Some(v.trim().to_string()),
                "nodename" if target.is_none() => target = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-o" => action = it.next().cloned(),
            "-n" => target = it.next().cloned(),
            s if s.starts_with("--action=") => action = Some(s["--action=".len()..].to_string()),
            s if s.starts_with("--plug=") => target = Some(s["--plug=".len()..].to_string()),
            _ => {}
        }
    }
    (action.unwrap_or_else(|| "reboot".into()), target)
}

/// `haven lab ARGS...` in the lab's own namespaces, bounded.
fn lab_command(st: &State, args: &[&str], wait: bool) -> Result<bool, String> {
    let mut c = Command::new("nsenter");
    c.args(["--target", &st.holder.to_string(), "--mount", "--uts", "--net", "--"])
        .arg(&st.binary)
        .arg("lab")
        .args(args);
    c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
    use std::os::unix::process::CommandExt;
    c.process_group(0);
    let mut child = c.spawn().map_err(|e| format!("cannot run nsenter: {e}"))?;
    if !wait {
        return Ok(true);
    }
    let deadline = crate::ocf::Deadline::after(Duration::from_secs(40));
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status.success()),
            Ok(None) if deadline.expired() => {
                let _ = child.kill();
                return Err(format!("haven lab {} did not finish in 40 s", args.join(" ")));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Where `haven lab fail NODE fencing` marks a node whose fence device
/// fails (on the host's disk, which the fence agent inside the nodes sees).
fn broken_mark(node: &str) -> std::path::PathBuf {
    super::state::lab_dir().join("fence-fails").join(node)
}

/// From now on, fencing `node` fails (a dead fence device, a wrong password).
pub fn break_for(node: &str) -> Result<(), super::LabError> {
    let mark = broken_mark(node);
    if let Some(dir) = mark.parent() {
        std::fs::create_dir_all(dir).map_err(super::LabError::io("create", dir))?;
    }
    std::fs::write(&mark, b"").map_err(super::LabError::io("write", &mark))
}

/// Fencing `node` works again; whether it had been broken.
pub fn repair(node: &str) -> bool {
    std::fs::remove_file(broken_mark(node)).is_ok()
}

fn broken(node: &str) -> bool {
    broken_mark(node).exists()
}

/// The agent: exit 0 on success, 1 on failure; status: 0 on, 2 off.
pub fn main(args: &[String]) -> u8 {
    let mut input = String::new();
    // Pacemaker writes the request and closes stdin; a terminal would not.
    let stdin_is_tty = std::io::IsTerminal::is_terminal(&std::io::stdin());
    if !stdin_is_tty {
        let _ = std::io::stdin().take(64 * 1024).read_to_string(&mut input);
    }
    let (action, target) = request(args, &input);
    if action == "metadata" {
        print!("{METADATA}");
        return 0;
    }
    let st = match State::load() {
        Ok(st) => st,
        Err(e) => {
            eprintln!("{FENCE_AGENT}: {e}");
            return 1;
        }
    };
    match action.as_str() {
        "monitor" | "validate-all" => 0,
        "list" | "list-status" => {
            for n in &st.nodes {
                if action == "list" {
                    println!("{},", n.name);
                } else {
                    println!("{},{},", n.name, if n.is_on() { "on" } else { "off" });
                }
            }
            0
        }
        "status" | "off" | "on" | "reboot" => {
            let Some(target) = target else {
                eprintln!("{FENCE_AGENT}: {action} needs a node (plug=NAME)");
                return 1;
            };
            let Ok(node) = st.node(&target) else {
                eprintln!("{FENCE_AGENT}: {target} is not a node of this lab");
                return 1;
            };
            if action != "status" && broken(&target) {
                eprintln!("{FENCE_AGENT}: {action} of {target} failed: the fence device does not answer (lab: fencing broken)");
                return 1;
            }
            let outcome = match action.as_str() {
                "status" => return if node.is_on() { 0 } else { 2 },
                "off" => lab_command(&st, &["fail", &target, "poweroff"], true),
                "on" => lab_command(&st, &["heal", &target], true),
                _ => lab_command(&st, &["fail", &target, "poweroff"], true).and_then(|ok| {
                    // Back on later, from outside the fencing node: it may be
                    // fenced itself meanwhile.
                    let delay = REBOOT_DELAY_S.to_string();
                    if ok {
                        lab_command(&st, &["heal", &target, "--delay", &delay], false)
                    } else {
                        Ok(false)
                    }
                }),
            };
            match outcome {
                Ok(true) => 0,
                Ok(false) => {
                    eprintln!("{FENCE_AGENT}: {action} of {target} failed");
                    1
                }
                Err(e) => {
                    eprintln!("{FENCE_AGENT}: {e}");
                    1
                }
            }
        }
        other => {
            eprintln!("{FENCE_AGENT}: unknown action {other:?}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stdin_and_options() {
        let (a, t) = request(&["fence_haven".into()], "action=off\nport=lab2\nnodename=lab2\n");
        assert_eq!((a.as_str(), t.as_deref()), ("off", Some("lab2")));
        let (a, t) = request(&["fence_haven".into(), "-o".into(), "metadata".into()], "");
        assert_eq!((a.as_str(), t), ("metadata", None));
        let (a, t) = request(&["fence_haven".into()], "nodename=lab3\n");
        assert_eq!((a.as_str(), t.as_deref()), ("reboot", Some("lab3")));
    }

    #[test]
    fn metadata_is_xml() {
        assert!(roxmltree::Document::parse(METADATA).is_ok());
    }
}
