//! The attacker in the data directory: an unprivileged user (www-data, the
//! site's own user in a hosting cluster) owns an instance's datadir and a
//! filesystem's mount point and tries to make the root-run agents act for
//! them: rewriting or replacing instance.toml, planting symlinks, hard
//! links, FIFOs and huge files where the agents write or read, a service
//! without `user`, an ldirectord.cf with commands in a directory they own.
//! Each refusal must name the path; no file outside the volume changes;
//! nothing runs as root that the root-owned configuration did not name; no
//! action hangs past its deadline.

use crate::common::*;
use crate::instance::{need_lab, Lab};
use std::path::Path;
use std::time::{Duration, Instant};

/// The attacker: the web server's user.
const ATTACKER: &str = "33";

/// A file outside the volume the attacker wants changed; root's.
struct Victim {
    path: String,
    text: &'static str,
}

impl Victim {
    fn new(lab_scratch: &Path, tag: &str) -> Victim {
        let path = lab_scratch.join(format!("victim-{tag}")).display().to_string();
        std::fs::write(&path, "root's precious data\n").expect("write victim");
        Victim { path, text: "root's precious data\n" }
    }

    fn untouched(&self) {
        let now = std::fs::read_to_string(&self.path).unwrap_or_default();
        assert_eq!(now, self.text, "{} outside the volume was changed", self.path);
    }
}

/// Run a command inside the lab's mount namespace, asserting success.
fn inside(lab: &Lab, args: &[&str]) {
    let o = lab.mnt.run(args);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// Give datadir to the attacker (owner, mode 0755).
fn hand_over(lab: &Lab) {
    inside(lab, &["chown", &format!("{ATTACKER}:{ATTACKER}"), &lab.datadir]);
}

/// As the attacker, inside the lab's namespace: `setpriv` drops to uid 33.
fn as_attacker(lab: &Lab, args: &[&str]) {
    let mut argv = vec!["setpriv", "--reuid", ATTACKER, "--regid", ATTACKER, "--clear-groups", "--inh-caps=-all", "--"];
    argv.extend_from_slice(args);
    inside(lab, &argv);
}

/// The uid, effective/bounding/ambient capabilities and NoNewPrivs of a
/// process, from /proc.
fn creds(pid: i32) -> (u32, u64, u64, u64, u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).unwrap_or_default().trim().to_string();
    let hex = |k: &str| u64::from_str_radix(&field(k), 16).unwrap_or(u64::MAX);
    let uid = field("Uid:").split_whitespace().nth(1).and_then(|u| u.parse().ok()).unwrap_or(u32::MAX);
    (uid, hex("CapEff:"), hex("CapBnd:"), hex("CapAmb:"), field("NoNewPrivs:").parse().unwrap_or(9))
}

/// Processes whose command line is `sleep <arg>`.
fn sleepers(arg: &str) -> Vec<String> {
    let want = format!("sleep\0{arg}\0");
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).ends_with(&want))
                })
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn reason(o: &Outcome) -> String {
    o.reason().unwrap_or_default().to_string()
}

const RUN_AS_ROOT: &str = r#"
[[service]]
name = "evil"
user = "root"
argv = ["/usr/bin/sleep", "600"]
"#;

#[test]
fn an_instance_file_in_a_datadir_others_own_is_refused_and_delegation_never_reaches_root() {
    if !need_lab() || !need_tool("setpriv") {
        return;
    }
    let lab = Lab::new(true);
    lab.populate(&[("instance.toml", RUN_AS_ROOT)]);
    hand_over(&lab);
    let a = lab.agent();
    // Root's file, but in the attacker's directory: they can swap it.
    let o = a.expect("start", 4);
    assert!(reason(&o).contains(&lab.datadir) && reason(&o).contains("owned by uid 33"), "{}", o.stderr);
    assert_eq!(a.action("validate-all").code, 4);
    assert!(!lab.cgroup.exists(), "nothing started");
    // The attacker rewrites it as their own, asking for root.
    let marker = lab.mnt.scratch.join("pwned");
    let evil = format!(
        "[[service]]\nname = \"evil\"\nuser = \"root\"\nargv = [\"/usr/bin/touch\", \"{}\"]\n",
        marker.display()
    );
    as_attacker(&lab, &["rm", "-f", &format!("{}/instance.toml", lab.datadir)]);
    let own = lab.mnt.scratch.join("evil.toml");
    std::fs::write(&own, &evil).expect("write");
    as_attacker(&lab, &["cp", &own.display().to_string(), &format!("{}/instance.toml", lab.datadir)]);
    let o = a.expect("start", 4);
    assert!(reason(&o).contains("instance.toml") && reason(&o).contains("uid 33"), "{}", o.stderr);
    assert!(reason(&o).contains("would run as root"), "{}", o.stderr);
    // Without a user the service would run as nobody: not the owner either.
    let no_user = "[[service]]\nname = \"svc\"\nargv = [\"/usr/bin/sleep\", \"600\"]\n";
    std::fs::write(&own, no_user).expect("write");
    as_attacker(&lab, &["cp", &own.display().to_string(), &format!("{}/instance.toml", lab.datadir)]);
    let o = a.expect("start", 4);
    assert!(reason(&o).contains("would run as nobody"), "{}", o.stderr);
    // Capabilities are refused too.
    let caps = format!("{no_user}user = \"www-data\"\ncapabilities = [\"net_bind_service\"]\n");
    std::fs::write(&own, caps).expect("write");
    as_attacker(&lab, &["cp", &own.display().to_string(), &format!("{}/instance.toml", lab.datadir)]);
    let o = a.expect("start", 4);
    assert!(reason(&o).contains("capabilities"), "{}", o.stderr);
    // The documented way: the file runs its services as its owner only.
    let mine = format!("{no_user}user = \"www-data\"\n");
    std::fs::write(&own, mine).expect("write");
    as_attacker(&lab, &["cp", &own.display().to_string(), &format!("{}/instance.toml", lab.datadir)]);
    a.expect("start", 0);
    let pid = lab.procs("svc")[0];
    let (uid, eff, bnd, amb, nnp) = creds(pid);
    assert_eq!((uid, eff, bnd, amb, nnp), (33, 0, 0, 0, 1), "delegated service credentials");
    a.expect("stop", 0);
    assert!(!marker.exists(), "the attacker's command ran");
}

#[test]
fn a_symlink_or_hard_link_to_a_root_file_of_the_attackers_choice_is_refused() {
    if !need_lab() {
        return;
    }
    let lab = Lab::new(true);
    // Root's own instance file elsewhere, running something as root.
    let roots = lab.mnt.scratch.join("root-instance.toml");
    std::fs::write(&roots, RUN_AS_ROOT).expect("write");
    let marker = lab.mnt.scratch.join("ran");
    hand_over(&lab);
    let link = format!("{}/instance.toml", lab.datadir);
    inside(&lab, &["ln", "-s", &roots.display().to_string(), &link]);
    let a = lab.agent();
    let o = a.expect("start", 4);
    assert!(reason(&o).contains(&link) && reason(&o).contains(&lab.datadir), "{}", o.stderr);
    // A hard link on the volume to a root-owned file (what a file the
    // attacker may not change looks like from inside their directory).
    inside(&lab, &["rm", "-f", &link]);
    let on_volume = format!("{}/root-owned.toml", lab.datadir);
    inside(&lab, &["cp", &roots.display().to_string(), &on_volume]);
    inside(&lab, &["ln", &on_volume, &link]);
    let o = a.expect("start", 4);
    assert!(reason(&o).contains("owned by uid 33"), "{}", o.stderr);
    assert!(!lab.cgroup.exists() && !marker.exists());
}

#[test]
fn planted_links_fifos_and_huge_files_never_redirect_a_write_or_hang_a_monitor() {
    if !need_lab() {
        return;
    }
    let lab = Lab::new(true);
    // The operator's file outside the volume (root's), the site in the
    // attacker's datadir.
    let conf = lab.mnt.scratch.join("web.toml");
    let svc = "[[service]]\nname = \"svc\"\nargv = [\"/usr/bin/sleep\", \"600\"]\n\n\
               [[file]]\npath = \"app.conf\"\ntext = \"listen {{ip}}\"\n";
    std::fs::write(&conf, svc).expect("write");
    hand_over(&lab);
    let a = lab.agent().param("config", &conf.display().to_string()).meta("timeout", "10000");
    let victim = Victim::new(&lab.mnt.scratch, "status");
    // A rendered file in the run directory that is a link to the victim.
    let run = lab.run_dir();
    std::fs::create_dir_all(&run).expect("run dir");
    std::os::unix::fs::symlink(&victim.path, run.join("app.conf")).expect("link");
    a.expect("start", 0);
    victim.untouched();
    assert!(std::fs::symlink_metadata(run.join("app.conf")).expect("app.conf").is_file());
    // The status directory: a symlink to a directory of root's, a FIFO,
    // a huge file, a directory the attacker owns.
    let status = format!("{}/.haven-status", lab.datadir);
    let victim_dir = lab.mnt.scratch.join("victim-dir");
    std::fs::create_dir_all(&victim_dir).expect("victim dir");
    let plants: [(&str, Vec<&str>); 4] = [
        ("symlink", vec!["ln", "-s", victim_dir.to_str().unwrap_or_default(), &status]),
        ("FIFO", vec!["mkfifo", &status]),
        ("huge file", vec!["truncate", "-s", "1G", &status]),
        ("directory", vec!["mkdir", "-m", "0777", &status]),
    ];
    for (what, plant) in &plants {
        as_attacker(&lab, plant);
        let t = Instant::now();
        let o = a.monitor_at(20);
        assert!(t.elapsed() < Duration::from_secs(10), "monitor with a planted {what} hung");
        assert_ne!(o.code, 0, "monitor accepted a planted {what}: {}", o.stderr);
        assert!(reason(&o).contains(&status), "planted {what}: {}", o.stderr);
        as_attacker(&lab, &["rm", "-rf", &status]);
    }
    assert_eq!(std::fs::read_dir(&victim_dir).map(|d| d.count()).unwrap_or(1), 0, "a file appeared in root's dir");
    // Left alone, the agent makes its own directory, which the attacker
    // cannot plant anything in.
    a.expect_monitor(20, 0);
    let o = lab.mnt.run(&[
        "setpriv",
        "--reuid",
        ATTACKER,
        "--regid",
        ATTACKER,
        "--clear-groups",
        "--",
        "ln",
        "-s",
        &victim.path,
        &format!("{status}/check-x"),
    ]);
    assert!(!o.status.success(), "the attacker wrote into the agent's status directory");
    a.expect("stop", 0);
    // A huge instance file is refused, not read.
    let huge = lab.mnt.scratch.join("huge.toml");
    std::fs::write(&huge, vec![b'#'; 2 << 20]).expect("huge");
    let o = lab.agent().param("config", &huge.display().to_string()).expect("validate-all", 4);
    assert!(reason(&o).contains("huge.toml") && reason(&o).contains("bytes"), "{}", o.stderr);
    victim.untouched();
}

#[test]
fn the_filesystem_status_file_cannot_be_turned_against_root() {
    if !need_root() || !need_tool("setpriv") {
        return;
    }
    let ns = MountNs::new();
    let dir = ns.dir("vol");
    let victim = Victim::new(&ns.scratch, "fs");
    let r = Run::new("filesystem")
        .in_mounts(&ns)
        .param("device", "hvt-trust")
        .param("directory", &dir)
        .param("fstype", "tmpfs")
        .param("options", "size=8m,mode=0755,uid=33,gid=33")
        .meta("timeout", "10000");
    r.expect("start", 0);
    let status = format!("{dir}/.Filesystem_status");
    let drop = |args: &[&str]| {
        let mut argv = vec!["setpriv", "--reuid", ATTACKER, "--regid", ATTACKER, "--clear-groups", "--"];
        argv.extend_from_slice(args);
        let o = ns.run(&argv);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    // The reported attack: a status directory others can write, with a
    // symlink at the status file's name.
    drop(&["mkdir", "-m", "0777", &status]);
    drop(&["ln", "-s", &victim.path, &format!("{status}/it_filesystem_x")]);
    let name = format!("{status}/it_filesystem_{}", sh(&["uname", "-n"]).trim());
    drop(&["ln", "-s", &victim.path, &name]);
    let o = r.monitor_at(20);
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert!(reason(&o).contains(&status) && reason(&o).contains("uid 33"), "{}", o.stderr);
    victim.untouched();
    drop(&["rm", "-rf", &status]);
    for plant in [vec!["ln", "-s", "/etc", &status], vec!["mkfifo", &status]] {
        drop(&plant);
        let t = Instant::now();
        let o = r.monitor_at(20);
        assert!(t.elapsed() < Duration::from_secs(10), "monitor hung on {plant:?}");
        assert_eq!(o.code, 4, "{plant:?}: {}", o.stderr);
        assert!(reason(&o).contains(&status), "{}", o.stderr);
        drop(&["rm", "-f", &status]);
    }
    r.expect_monitor(20, 0);
    let meta = std::fs::metadata(&status);
    let inside_meta = ns.run(&["stat", "-c", "%u %a", &status]);
    assert_eq!(String::from_utf8_lossy(&inside_meta.stdout).trim(), "0 700", "{meta:?}");
    r.expect("stop", 0);
    victim.untouched();
}

#[test]
fn services_get_only_the_user_and_capabilities_their_file_names() {
    if !need_lab() {
        return;
    }
    let lab = Lab::new(true);
    let file = r#"
[[service]]
name = "plain"
argv = ["/usr/bin/sleep", "600"]

[[service]]
name = "binder"
user = "www-data"
capabilities = ["net_bind_service"]
argv = ["/usr/bin/python3", "-m", "http.server", "--bind", "{{ip}}", "80"]
probe = { type = "connect", port = 80 }

[[service]]
name = "rootish"
user = "root"
capabilities = ["net_bind_service"]
argv = ["/usr/bin/sleep", "600"]
"#;
    lab.populate(&[("instance.toml", file)]);
    let a = lab.agent();
    a.expect("start", 0);
    let nb = 1u64 << 10;
    let (uid, eff, bnd, amb, nnp) = creds(lab.procs("plain")[0]);
    assert_eq!((uid, eff, bnd, amb, nnp), (65534, 0, 0, 0, 1), "a service without user runs as nobody");
    let (uid, eff, bnd, amb, nnp) = creds(lab.procs("binder")[0]);
    assert_eq!((uid, eff, bnd, amb, nnp), (33, nb, nb, nb, 1), "www-data with net_bind_service");
    let (uid, eff, bnd, _, nnp) = creds(lab.procs("rootish")[0]);
    assert_eq!((uid, eff, bnd, nnp), (0, nb, nb, 1), "root keeps only what it names");
    a.expect("stop", 0);
    // The resource parameter cannot make root the default.
    let o = lab.agent().param("user", "root").expect("validate-all", 6);
    assert!(reason(&o).contains("user"), "{}", o.stderr);
}

#[test]
fn cgroup_limits_are_applied_or_refused_by_name() {
    if !need_lab() {
        return;
    }
    let lab = Lab::new(true);
    let file = "[[service]]\nname = \"svc\"\nargv = [\"/usr/bin/sleep\", \"600\"]\npids_max = 64\n";
    lab.populate(&[("instance.toml", file)]);
    let a = lab.agent();
    let root = lab.cgroup.parent().and_then(Path::parent).and_then(Path::parent).expect("cgroup2 root").to_path_buf();
    let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    if controllers.split_whitespace().any(|c| c == "pids") {
        a.expect("start", 0);
        let max = std::fs::read_to_string(lab.cgroup.join("svc/pids.max")).unwrap_or_default();
        assert_eq!(max.trim(), "64");
        a.expect("stop", 0);
    } else {
        // This node's cgroup2 tree has no pids controller (a hybrid
        // hierarchy): the limit is refused, never silently dropped.
        let o = a.expect("start", 5);
        assert!(reason(&o).contains("pids.max") && reason(&o).contains("pids controller"), "{}", o.stderr);
        eprintln!("trust figures: pids controller missing in {}, limit refused", root.display());
    }
}

#[test]
fn director_commands_need_a_root_file_and_run_unprivileged_bounded() {
    if !need_root() {
        return;
    }
    let base = Path::new("/srv/haven-tests").join(format!("director-trust-{}", std::process::id()));
    std::fs::create_dir_all(base.join("out")).expect("dirs");
    sh(&["chmod", "0755", base.to_str().unwrap_or_default()]);
    sh(&["chmod", "0777", base.join("out").to_str().unwrap_or_default()]);
    let script = base.join("check.sh");
    let out = base.join("out");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nid -u > {o}/uid\nenv | sort > {o}/env\nhead -c 10000000 /dev/zero\nexec sleep 6017\n",
            o = out.display()
        ),
    )
    .expect("script");
    sh(&["chmod", "0755", script.to_str().unwrap_or_default()]);
    let cf = |dir: &Path, extra: &str| {
        let p = dir.join("ldirectord.cf");
        std::fs::write(
            &p,
            format!(
                "checktimeout = 2\n{extra}virtual = 198.51.100.78:80\n\treal = 203.0.113.60:80 masq\n\t\
                 checktype = external\n\tcheckcommand = {}\n",
                script.display()
            ),
        )
        .expect("cf");
        p
    };
    // Root's file: one round runs the check as nobody, killed at its
    // timeout with everything it started, its output bounded.
    let good = cf(&base, "");
    let ns = Netns::new();
    let t = Instant::now();
    let o = ns.exec(&[HAVEN, "director", "round", "--config", good.to_str().unwrap_or_default()]);
    let took = t.elapsed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(took < Duration::from_secs(15), "the round took {took:?}");
    assert_eq!(std::fs::read_to_string(out.join("uid")).unwrap_or_default().trim(), "65534");
    let env = std::fs::read_to_string(out.join("env")).unwrap_or_default();
    let names: Vec<&str> = env.lines().filter_map(|l| l.split_once('=').map(|(k, _)| k)).collect();
    for n in &names {
        assert!(["PATH", "HOME", "USER", "LOGNAME", "LC_ALL", "PWD", "SHLVL", "_"].contains(n), "env has {n}: {env}");
    }
    let left = sleepers("6017");
    assert!(left.is_empty(), "the check's processes survived: {left:?}");
    assert!(sh(&[HAVEN, "director", "check", "--config", good.to_str().unwrap_or_default()]).contains("virtual"));
    // The same file in a directory the attacker owns: refused with the path.
    let theirs = base.join("theirs");
    std::fs::create_dir_all(&theirs).expect("dir");
    sh(&["chown", "33:33", theirs.to_str().unwrap_or_default()]);
    let bad = cf(&theirs, "callback = /bin/true\n");
    let o = std::process::Command::new(HAVEN)
        .args(["director", "check", "--config", bad.to_str().unwrap_or_default()])
        .output()
        .expect("haven");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains(&theirs.display().to_string()) && err.contains("uid 33"), "{err}");
    let d = Run::new("director").param("configfile", bad.to_str().unwrap_or_default());
    let o = d.expect("validate-all", 4);
    assert!(reason(&o).contains("theirs"), "{}", o.stderr);
    let _ = std::fs::remove_dir_all(&base);
}
