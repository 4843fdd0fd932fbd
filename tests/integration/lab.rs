//! `haven lab`: a real three-node Pacemaker cluster in namespaces running
//! examples/lab-web.toml. The VIP and its service run where the description
//! says, a killed service is restarted in place, a powered-off node's
//! resources come up elsewhere within a printed bound (the address never on
//! two nodes, the client answered before and after), the cloned filesystem
//! stays mounted on the survivors, and `lab down` leaves nothing behind,
//! also after a failed test. One lab at a time.

mod rolling;

use crate::common::*;
use haven::lab::cluster::Snapshot;
use haven::lab::watch::{self, Held};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/lab-web.toml");
const VIP: &str = "198.51.100.100";
const NODES: [&str; 3] = ["lab1", "lab2", "lab3"];

/// One lab at a time, in this process and across processes.
static ONE_LAB: Mutex<()> = Mutex::new(());

fn lab_prereqs() -> bool {
    need_root()
        && [
            "corosync",
            "pacemakerd",
            "crm_mon",
            "corosync-cfgtool",
            "nsenter",
            "unshare",
            "losetup",
            "mkfs.ext4",
            "python3",
        ]
        .iter()
        .all(|t| need_tool(t))
}

fn lab(args: &[&str]) -> std::process::Output {
    Command::new(HAVEN).arg("lab").args(args).output().expect("run haven lab")
}

fn lab_ok(args: &[&str]) -> String {
    let o = lab(args);
    assert!(
        o.status.success(),
        "haven lab {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A lab that is torn down when the test ends, passes or fails.
struct Lab {
    _serial: std::sync::MutexGuard<'static, ()>,
    _flock: nix::fcntl::Flock<std::fs::File>,
}

impl Lab {
    fn up(extra: &[&str]) -> Lab {
        Lab::up_with(EXAMPLE, extra)
    }

    fn up_with(example: &str, extra: &[&str]) -> Lab {
        let serial = ONE_LAB.lock().unwrap_or_else(|p| p.into_inner());
        let flock = std::fs::File::create("/tmp/haven-lab-tests.lock").expect("lock file");
        // Blocks until the other lab is gone.
        let flock = nix::fcntl::Flock::lock(flock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .expect("lab test lock");
        // A previous run that was killed may have left its lab.
        lab_ok(&["down"]);
        let lab = Lab { _serial: serial, _flock: flock };
        let mut args = vec!["up"];
        args.extend_from_slice(extra);
        args.push(example);
        let started = Instant::now();
        let out = lab_ok(&args);
        eprintln!("lab up took {:.1} s:\n{out}", started.elapsed().as_secs_f64());
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let o = lab(&["down"]);
        if !o.status.success() {
            eprintln!("haven lab down failed: {}", String::from_utf8_lossy(&o.stderr));
        }
    }
}

fn snapshot(from: &str) -> Option<Snapshot> {
    let o = lab(&["exec", from, "--", "crm_mon", "--output-as=xml"]);
    Snapshot::parse(&String::from_utf8_lossy(&o.stdout)).ok()
}

/// crm_mon from any node that answers.
fn any_snapshot() -> Option<Snapshot> {
    NODES.iter().find_map(|n| snapshot(n))
}

/// The nodes whose network namespace holds the VIP right now.
fn vip_holders() -> Vec<String> {
    holders(&NODES, VIP, None)
}

/// The nodes of `nodes` holding `ip` (on `dev` only, when given).
fn holders(nodes: &[&str], ip: &str, dev: Option<&str>) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| {
            let ns = format!("haven-lab-{n}");
            let mut args = vec!["-n", &ns, "-o", "-4", "addr", "show"];
            if let Some(d) = dev {
                args.extend(["dev", d]);
            }
            let o = Command::new("ip").args(&args).output();
            o.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!(" {ip}/")))
        })
        .map(|n| n.to_string())
        .collect()
}

/// The invariant watcher of a scenario: from the host, every 25 ms, none of
/// `what` is held by two of `nodes` at once.
fn watch_over(nodes: &[&str], what: Vec<Held>) -> watch::Watch {
    watch::Watch::start(nodes, what)
}

/// Stop the watcher; a violation fails the test with the timeline.
fn judge(w: watch::Watch) {
    let v = w.finish();
    eprintln!("invariant watcher: {}", v.summary());
    if let Err(e) = v.check() {
        panic!("invariant broken:\n{e}");
    }
}

fn addr(ip: &str, dev: Option<&str>) -> Held {
    Held::Addr { ip: ip.parse().expect("ip"), dev: dev.map(String::from) }
}

fn mount(dir: &str) -> Held {
    Held::Mount { dir: dir.into() }
}

fn process(pattern: &str) -> Held {
    Held::Process { pattern: pattern.into() }
}

/// lab-web: the VIP, the site's ext4 volume and its web server.
fn web_invariants() -> Vec<Held> {
    vec![addr(VIP, None), mount("/srv/web"), process(&format!("http.server --bind {VIP}"))]
}

fn client_get() -> Result<String, String> {
    let addr: SocketAddr = format!("{VIP}:80").parse().expect("addr");
    haven::lab::client::request(addr, Duration::from_secs(2)).expect("client namespace")
}

fn mounted(node: &str, dir: &str) -> bool {
    lab(&["exec", node, "--", "findmnt", "-rn", dir]).status.success()
}

/// What a lab leaves behind if `down` missed something.
fn leftovers() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(d) = std::fs::read_dir("/run/netns") {
        out.extend(
            d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("haven-lab-")),
        );
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    out.extend(mounts.lines().filter(|l| l.contains("/var/lib/haven-lab")).map(str::to_string));
    if std::path::Path::new("/var/lib/haven-lab").exists() {
        out.push("/var/lib/haven-lab".into());
    }
    let losetup = Command::new("losetup").arg("-a").output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    out.extend(losetup.unwrap_or_default().lines().filter(|l| l.contains("haven-lab")).map(str::to_string));
    out
}

fn pids_of_lab() -> Vec<i32> {
    let text = std::fs::read_to_string("/var/lib/haven-lab/state.json").unwrap_or_default();
    let st: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let mut pids: Vec<i32> = st["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|n| n["daemons"].as_array().into_iter().flatten().filter_map(|d| d["pid"].as_i64()))
        .map(|p| p as i32)
        .collect();
    pids.extend(st["holder"].as_i64().map(|p| p as i32));
    pids
}

fn alive(pid: i32) -> bool {
    haven::lab::process::alive(pid)
}

#[test]
fn lab_runs_the_web_example_and_fails_over() {
    if !lab_prereqs() {
        return;
    }
    let lab = Lab::up(&[]);
    let watch = watch_over(&NODES, web_invariants());

    // Where the description says: the site group prefers lab1.
    let s = any_snapshot().expect("crm_mon answers");
    runs_on(&s, &["web-fs", "web-ip", "web"], &["lab1"]);
    assert_eq!(s.where_is("shared-fs"), NODES.map(String::from).to_vec(), "the clone runs everywhere");
    assert_eq!(vip_holders(), vec!["lab1".to_string()]);
    let answer = client_get().expect("the client reaches the VIP before any failure");
    assert!(answer.contains("200"), "{answer}");
    let status = lab_ok(&["status"]);
    assert!(status.contains("Online: [ lab1 lab2 lab3 ]"), "{status}");

    // A killed service is restarted in place.
    let pg = Command::new("pgrep").args(["-f", &format!("http.server --bind {VIP}")]).output().expect("pgrep");
    let pids: Vec<i32> = String::from_utf8_lossy(&pg.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert_eq!(pids.len(), 1, "one web server runs: {pids:?}");
    let killed_at = Instant::now();
    signal(pids[0], nix::sys::signal::Signal::SIGKILL);
    let restarted = wait_for(Duration::from_secs(40), || {
        let pg = Command::new("pgrep").args(["-f", &format!("http.server --bind {VIP}")]).output();
        let again = pg.is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
                .any(|p| p != pids[0])
        });
        again && client_get().is_ok()
    });
    assert!(restarted, "the web server was not restarted within 40 s");
    eprintln!("killed web server restarted in {:.1} s", killed_at.elapsed().as_secs_f64());
    let s = any_snapshot().expect("crm_mon answers");
    assert_eq!(s.where_is("web"), vec!["lab1".to_string()], "restarted in place:\n{}", s.placement_text());

    // Power off the node with the service.
    let bound = Duration::from_secs(30);
    let out = lab_ok(&["fail", "lab1", "poweroff", "--measure", &format!("{VIP}:80")]);
    let secs: f64 = out
        .split(" s after")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no measurement in {out:?}"));
    eprintln!(
        "FAILOVER: the client got an answer through the VIP {secs:.2} s after poweroff of lab1 (bound {} s)",
        bound.as_secs()
    );
    assert!(secs < bound.as_secs_f64());
    let answer = client_get().expect("the client reaches the VIP after the failover");
    assert!(answer.contains("200"), "{answer}");
    let mut now = None;
    assert!(
        wait_for(Duration::from_secs(20), || {
            now = ["lab2", "lab3"].iter().find_map(|n| snapshot(n));
            now.as_ref().is_some_and(|s| s.where_is("web").len() == 1 && s.where_is("web") != ["lab1"])
        }),
        "the site did not move off lab1"
    );
    let s = now.expect("snapshot");
    let new_home = s.where_is("web")[0].clone();
    assert_eq!(s.where_is("web-fs"), vec![new_home.clone()], "the volume moves with the service");
    assert!(mounted(&new_home, "/srv/web"), "the failover volume is mounted on {new_home}");
    for survivor in ["lab2", "lab3"] {
        assert!(mounted(survivor, "/srv/shared"), "the cloned filesystem stays mounted on {survivor}");
    }

    // Fencing reboots lab1 after a delay; it rejoins and the site stays.
    let rejoined = wait_for(Duration::from_secs(60), || {
        snapshot("lab2").is_some_and(|s| s.formed(&NODES.map(String::from)) && s.settled())
    });
    assert!(rejoined, "lab1 did not rejoin after fencing rebooted it");
    assert_eq!(vip_holders(), vec![new_home.clone()]);
    assert!(client_get().is_ok());
    judge(watch);

    // Down removes everything, and says so again when run twice.
    let pids = pids_of_lab();
    assert!(!pids.is_empty());
    drop(lab);
    assert_eq!(leftovers(), Vec::<String>::new());
    assert!(pids.iter().all(|&p| !alive(p)), "lab processes left: {pids:?}");
    assert!(lab_ok(&["down"]).contains("no lab"));
}

#[test]
fn lab_down_after_a_failed_test_leaves_nothing() {
    if !lab_prereqs() {
        return;
    }
    let mut pids = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _lab = Lab::up(&["--nodes", "2"]);
        pids = pids_of_lab();
        let s = any_snapshot().expect("crm_mon answers");
        assert!(s.formed(&["lab1".into(), "lab2".into()]), "two nodes online");
        panic!("a failing lab test");
    }));
    assert!(result.is_err());
    assert!(pids.len() >= 5, "two nodes' daemons and the holder: {pids:?}");
    assert_eq!(leftovers(), Vec::<String>::new());
    assert!(pids.iter().all(|&p| !alive(p)), "lab processes left: {pids:?}");
}

// --- the deployment examples, with the lab's stand-ins ---------------------

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn deployment_prereqs() -> bool {
    lab_prereqs() && ["curl", "mkfs.ext3", "nft"].iter().all(|t| need_tool(t))
}

/// crm_mon from the first of `nodes` that answers.
/// Each of `resources` runs on exactly `nodes` (sorted), as crm_mon sees it.
fn runs_on(s: &Snapshot, resources: &[&str], nodes: &[&str]) {
    for r in resources {
        assert_eq!(s.where_is(r), nodes, "{r} should run on {nodes:?}:\n{}", s.placement_text());
    }
}

fn snapshot_of(nodes: &[&str]) -> Option<Snapshot> {
    nodes.iter().find_map(|n| snapshot(n))
}

/// The body the client gets from `url` (curl in the client namespace).
fn client_body(url: &str) -> Option<String> {
    let o = lab(&["exec", "client", "--", "curl", "-sf", "-m", "2", url]);
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Pids of processes whose command line contains `pattern` and that run in
/// `node`'s network namespace.
fn pids_in(node: &str, pattern: &str) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(ns) = std::fs::metadata(format!("/run/netns/haven-lab-{node}")) else { return Vec::new() };
    let pg = Command::new("pgrep").args(["-f", pattern]).output().expect("pgrep");
    String::from_utf8_lossy(&pg.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|p| std::fs::metadata(format!("/proc/{p}/ns/net")).is_ok_and(|m| m.ino() == ns.ino()))
        .collect()
}

/// SIGKILL the one process matching `pattern` on `node`, and wait until a
/// new one runs there and `answers()` holds; the time it took.
fn kill_and_wait_restart(node: &str, pattern: &str, mut answers: impl FnMut() -> bool) -> Duration {
    let pids = pids_in(node, pattern);
    assert_eq!(pids.len(), 1, "one {pattern:?} on {node}: {pids:?}");
    let killed_at = Instant::now();
    signal(pids[0], nix::sys::signal::Signal::SIGKILL);
    let restarted =
        wait_for(Duration::from_secs(40), || pids_in(node, pattern).iter().any(|p| *p != pids[0]) && answers());
    assert!(restarted, "{pattern:?} was not restarted on {node} within 40 s");
    killed_at.elapsed()
}

#[test]
fn lab_runs_mail_active_active_and_fails_an_instance_over() {
    if !deployment_prereqs() {
        return;
    }
    const NODES2: [&str; 2] = ["nodea", "nodeb"];
    let (ip1, ip2) = ("198.51.100.21", "198.51.100.22");
    let lab = Lab::up_with(&example("mail-active-active.toml"), &[]);
    let watch = watch_over(
        &NODES2,
        vec![
            addr(ip1, None),
            addr(ip2, None),
            mount("/var/opt/scalix/m1"),
            mount("/var/opt/scalix/m2"),
            process(&format!("http.server --bind {ip1}")),
            process(&format!("http.server --bind {ip2}")),
        ],
    );

    // Where the description says: mail1 on nodea, mail2 on nodeb (their
    // failover domains' first node), each with its address and volume.
    let s = snapshot_of(&NODES2).expect("crm_mon answers");
    for (inst, home) in [("mail1", "nodea"), ("mail2", "nodeb")] {
        for part in ["fs", "ip", "instance"] {
            let r = format!("{inst}-{part}");
            assert_eq!(s.where_is(&r), vec![home.to_string()], "{r} should run on {home}:\n{}", s.placement_text());
        }
    }
    assert_eq!(holders(&NODES2, ip1, None), vec!["nodea".to_string()]);
    assert_eq!(holders(&NODES2, ip2, None), vec!["nodeb".to_string()]);
    assert!(mounted("nodea", "/var/opt/scalix/m1") && mounted("nodeb", "/var/opt/scalix/m2"));
    // Each instance answers as itself, from its own volume.
    let url1 = format!("http://{ip1}/");
    let url2 = format!("http://{ip2}/");
    assert_eq!(client_body(&url1).as_deref(), Some("mail1.example.com\n"));
    assert_eq!(client_body(&url2).as_deref(), Some("mail2.example.com\n"));

    // Power off nodea: mail1 (address, volume, instance) comes up on nodeb,
    // which then runs both.
    let bound = Duration::from_secs(30);
    let out = lab_ok(&["fail", "nodea", "poweroff", "--measure", &format!("{ip1}:80")]);
    let secs: f64 = out
        .split(" s after")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no measurement in {out:?}"));
    eprintln!(
        "FAILOVER mail-active-active: the client got an answer through {ip1} {secs:.2} s after poweroff of nodea \
         (bound {} s)",
        bound.as_secs()
    );
    assert!(secs < bound.as_secs_f64());
    assert_eq!(client_body(&url1).as_deref(), Some("mail1.example.com\n"), "mail1's own data after failover");
    assert_eq!(client_body(&url2).as_deref(), Some("mail2.example.com\n"), "mail2 kept answering");
    let mut now = None;
    assert!(
        wait_for(Duration::from_secs(20), || {
            now = snapshot("nodeb");
            now.as_ref().is_some_and(|s| s.where_is("mail1-instance") == ["nodeb"])
        }),
        "mail1 did not move to nodeb"
    );
    let s = now.expect("snapshot");
    runs_on(&s, &["mail1-fs", "mail1-ip", "mail2-fs", "mail2-ip", "mail2-instance"], &["nodeb"]);
    assert!(mounted("nodeb", "/var/opt/scalix/m1"), "mail1's volume is mounted on nodeb");

    // Fencing reboots nodea; it rejoins and mail1 stays on nodeb (nofailback).
    let rejoined =
        wait_for(Duration::from_secs(60), || snapshot("nodeb").is_some_and(|s| s.formed(&NODES2.map(String::from))));
    assert!(rejoined, "nodea did not rejoin after fencing rebooted it");
    std::thread::sleep(Duration::from_secs(2));
    let s = snapshot("nodeb").expect("crm_mon answers");
    assert_eq!(s.where_is("mail1-instance"), vec!["nodeb".to_string()], "no failback:\n{}", s.placement_text());
    assert_eq!(holders(&NODES2, ip1, None), vec!["nodeb".to_string()]);

    // A killed service: the description's recovery is relocate
    // (migration-threshold=1), so mail1 moves back to nodea, whole.
    let pattern = format!("http.server --bind {ip1}");
    let pids = pids_in("nodeb", &pattern);
    assert_eq!(pids.len(), 1, "one mail1 web server on nodeb: {pids:?}");
    let killed_at = Instant::now();
    signal(pids[0], nix::sys::signal::Signal::SIGKILL);
    let relocated = wait_for(Duration::from_secs(45), || {
        !pids_in("nodea", &pattern).is_empty() && client_body(&url1).is_some_and(|b| b == "mail1.example.com\n")
    });
    assert!(relocated, "the killed mail1 service was not relocated to nodea within 45 s");
    eprintln!(
        "killed mail1 service relocated to nodea (recovery = relocate) in {:.1} s",
        killed_at.elapsed().as_secs_f64()
    );
    let s = snapshot("nodea").expect("crm_mon answers");
    runs_on(&s, &["mail1-fs", "mail1-ip", "mail1-instance"], &["nodea"]);
    assert_eq!(s.where_is("mail2-instance"), vec!["nodeb".to_string()], "mail2 untouched");
    assert_eq!(client_body(&url2).as_deref(), Some("mail2.example.com\n"));
    judge(watch);
    drop(lab);
    assert_eq!(leftovers(), Vec::<String>::new());
    assert!(!std::path::Path::new("/var/opt/scalix").exists(), "the lab's mount points are gone");
}

#[test]
fn lab_runs_the_smt_mirror_with_its_director_and_loses_a_mirror() {
    if !deployment_prereqs() {
        return;
    }
    const NODES3: [&str; 3] = ["node1", "node2", "node3"];
    const SVC: &str = "198.51.100.10";
    let lab = Lab::up_with(&example("smt-mirror.toml"), &[]);
    // The director's address on eth0: only ever on one node (the real
    // servers hold it on lo, without ARP, as LVS-DR has them).
    let watch = watch_over(&NODES3, vec![addr(SVC, Some("eth0")), process("director run")]);

    // Where the description says: the mirror group on node1 and node2, never
    // node3; the address and the director on node3 only.
    let s = snapshot_of(&NODES3).expect("crm_mon answers");
    runs_on(&s, &["dlm", "o2cb", "smt-fs", "smt-web", "smt-realserver"], &["node1", "node2"]);
    runs_on(&s, &["lvs-vip", "director"], &["node3"]);
    assert_eq!(holders(&NODES3, SVC, Some("eth0")), vec!["node3".to_string()]);
    assert_eq!(holders(&NODES3, SVC, Some("lo")), vec!["node1".to_string(), "node2".into()], "real servers on lo");
    for n in ["node1", "node2"] {
        assert!(mounted(n, "/smt"), "the cluster filesystem stand-in is mounted on {n}");
    }
    // The client reaches the mirror through the director's address.
    let url = format!("http://{SVC}/test.html");
    let all_answer = |n: usize| (0..n).all(|_| client_body(&url).is_some_and(|b| b.contains("still alive")));
    // (The director's first checks of the real servers take a second.)
    assert!(wait_for(Duration::from_secs(15), || all_answer(4)), "the client reaches the mirror through {SVC}");

    // A killed web server is restarted in place.
    let pattern = "http.server --bind 0.0.0.0 --directory /smt";
    let took = kill_and_wait_restart("node2", pattern, || all_answer(2));
    eprintln!("killed mirror web server restarted in place on node2 in {:.1} s", took.as_secs_f64());
    let s = snapshot_of(&NODES3).expect("crm_mon answers");
    assert_eq!(s.where_is("smt-web"), vec!["node1".to_string(), "node2".into()], "restarted in place");

    // Power off node1: the director drops it, the client keeps getting
    // answers through the address, the cluster filesystem stays mounted on
    // node2, and the mirror never moves to node3.
    let bound = Duration::from_secs(30);
    let off = Instant::now();
    lab_ok(&["fail", "node1", "poweroff"]);
    let steady = wait_for(bound, || all_answer(6));
    let secs = off.elapsed().as_secs_f64();
    eprintln!(
        "FAILOVER smt-mirror: six answers in a row through {SVC} {secs:.2} s after poweroff of mirror node1 \
         (bound {} s)",
        bound.as_secs()
    );
    assert!(steady, "the client did not get steady answers through {SVC} within {} s", bound.as_secs());
    let mut now = None;
    assert!(
        wait_for(Duration::from_secs(20), || {
            now = snapshot_of(&["node2", "node3"]);
            now.as_ref().is_some_and(|s| s.where_is("smt-fs") == ["node2"] && s.where_is("smt-web") == ["node2"])
        }),
        "the mirror did not settle on node2 alone"
    );
    let s = now.expect("snapshot");
    assert_eq!(s.where_is("director"), vec!["node3".to_string()]);
    assert!(mounted("node2", "/smt"), "the cloned filesystem stays mounted on the surviving mirror node");
    assert!(!mounted("node3", "/smt"), "and never on the director's node");
    judge(watch);
    drop(lab);
    assert_eq!(leftovers(), Vec::<String>::new());
    assert!(!std::path::Path::new("/smt").exists(), "the lab's mount point is gone");
}

#[test]
fn lab_runs_hsphere_web_and_promotes_a_new_master() {
    if !deployment_prereqs() {
        return;
    }
    const WEBS: [&str; 3] = ["web1", "web2", "web3"];
    const MASTER_IP: &str = "198.51.100.40";
    let lab = Lab::up_with(&example("hsphere-web.toml"), &[]);
    let watch = watch_over(&WEBS, vec![addr(MASTER_IP, None)]);

    // Where the description says: content and instance everywhere, the
    // master (promoted) on web1 with the master's address.
    let s = snapshot_of(&WEBS).expect("crm_mon answers");
    let all: Vec<String> = WEBS.map(String::from).to_vec();
    assert_eq!(s.where_is("hsphere-fs"), all, "the shared content is mounted everywhere");
    assert_eq!(s.where_is("web"), all, "the instance runs everywhere");
    let promoted = |s: &Snapshot| -> Vec<String> {
        s.resources.iter().filter(|r| r.id == "web" && r.role == "Promoted").flat_map(|r| r.nodes.clone()).collect()
    };
    assert_eq!(promoted(&s), vec!["web1".to_string()], "web1 is the master:\n{}", s.placement_text());
    assert_eq!(s.where_is("master-ip"), vec!["web1".to_string()]);
    assert_eq!(holders(&WEBS, MASTER_IP, None), vec!["web1".to_string()]);
    let url = format!("http://{MASTER_IP}/");
    assert_eq!(client_body(&url).as_deref(), Some("web.example.com\n"));

    // The master's killed web server is restarted in place.
    let pattern = "http.server --bind 0.0.0.0 --directory /hsphere";
    let took = kill_and_wait_restart("web1", pattern, || client_body(&url).is_some());
    eprintln!("killed master web server restarted in place on web1 in {:.1} s", took.as_secs_f64());

    // Power off the master: web2 is promoted, the address follows.
    let bound = Duration::from_secs(30);
    let out = lab_ok(&["fail", "web1", "poweroff", "--measure", &format!("{MASTER_IP}:80")]);
    let secs: f64 = out
        .split(" s after")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no measurement in {out:?}"));
    eprintln!(
        "FAILOVER hsphere-web: the client got an answer through {MASTER_IP} {secs:.2} s after poweroff of the \
         master web1 (bound {} s)",
        bound.as_secs()
    );
    assert!(secs < bound.as_secs_f64());
    assert_eq!(client_body(&url).as_deref(), Some("web.example.com\n"));
    let mut now = None;
    assert!(
        wait_for(Duration::from_secs(20), || {
            now = snapshot_of(&["web2", "web3"]);
            now.as_ref().is_some_and(|s| promoted(s) == ["web2"] && s.where_is("master-ip") == ["web2"])
        }),
        "web2 was not promoted with the master's address"
    );
    for survivor in ["web2", "web3"] {
        assert!(mounted(survivor, "/hsphere"), "the shared content stays mounted on {survivor}");
    }
    judge(watch);
    drop(lab);
    assert_eq!(leftovers(), Vec::<String>::new());
}

#[test]
fn lab_runs_interworx_and_loses_a_web_node() {
    if !deployment_prereqs() {
        return;
    }
    const IW: [&str; 3] = ["cm", "node1", "node2"];
    const PUBLIC: &str = "198.51.100.60";
    let lab = Lab::up_with(&example("interworx.toml"), &[]);
    let watch = watch_over(&IW, vec![addr(PUBLIC, Some("eth0")), process("director run")]);

    // The manager's group on cm, the node stack on node1 and node2.
    let s = snapshot_of(&IW).expect("crm_mon answers");
    runs_on(&s, &["nfs-server", "home-export", "quorum-ip", "public-ip", "director"], &["cm"]);
    runs_on(&s, &["home", "httpd", "realserver-ip"], &["node1", "node2"]);
    assert_eq!(holders(&IW, PUBLIC, Some("eth0")), vec!["cm".to_string()]);
    let url = format!("http://{PUBLIC}/test.html");
    let all_answer = |n: usize| (0..n).all(|_| client_body(&url).is_some_and(|b| b.contains("still alive")));
    assert!(wait_for(Duration::from_secs(15), || all_answer(4)), "the client reaches the nodes through {PUBLIC}");

    // A killed web server is restarted in place.
    let took = kill_and_wait_restart("node1", "http.server --bind 0.0.0.0 --directory /home", || all_answer(2));
    eprintln!("killed web server restarted in place on node1 in {:.1} s", took.as_secs_f64());

    // Power off node2: the director drops it, answers keep coming, /home
    // stays mounted on node1.
    let bound = Duration::from_secs(30);
    let off = Instant::now();
    lab_ok(&["fail", "node2", "poweroff"]);
    let steady = wait_for(bound, || all_answer(6));
    let secs = off.elapsed().as_secs_f64();
    eprintln!(
        "FAILOVER interworx: six answers in a row through {PUBLIC} {secs:.2} s after poweroff of node2 (bound {} s)",
        bound.as_secs()
    );
    assert!(steady, "no steady answers through {PUBLIC} within {} s", bound.as_secs());
    assert!(mounted("node1", "/home"), "/home stays mounted on the surviving node");
    let s = snapshot_of(&["cm", "node1"]).expect("crm_mon answers");
    assert_eq!(s.where_is("director"), vec!["cm".to_string()]);
    judge(watch);
    drop(lab);
    assert_eq!(leftovers(), Vec::<String>::new());
}

// --- failure scenarios: several in one lab, healed between them ------------

/// One example's service as the scenarios see it: its nodes, the address
/// clients use, and what may never be on two nodes.
struct Service {
    nodes: &'static [&'static str],
    ip: &'static str,
    invariants: fn() -> Vec<Held>,
    /// The group or resource a manual move moves (none: standby only).
    movable: Option<&'static str>,
}

impl Service {
    fn target(&self) -> String {
        format!("{}:80", self.ip)
    }

    /// The node holding the service address (waits for exactly one).
    fn home(&self) -> String {
        let mut h = Vec::new();
        let found = wait_for(Duration::from_secs(30), || {
            h = holders(self.nodes, self.ip, Some("eth0"));
            h.len() == 1
        });
        assert!(found, "{} is not on exactly one node: {h:?}", self.ip);
        h.remove(0)
    }

    fn others(&self, but: &[&str]) -> Vec<&'static str> {
        self.nodes.iter().copied().filter(|n| !but.contains(n)).collect()
    }

    fn answers(&self) -> bool {
        let addr: SocketAddr = self.target().parse().expect("addr");
        haven::lab::client::request(addr, Duration::from_secs(2)).is_ok_and(|r| r.is_ok())
    }

    /// Every node online, nothing pending, and the service answering.
    fn wait_whole(&self, what: &str) {
        let all: Vec<String> = self.nodes.iter().map(|n| n.to_string()).collect();
        let whole = wait_for(Duration::from_secs(90), || {
            snapshot_of(self.nodes).is_some_and(|s| s.formed(&all) && s.settled()) && self.answers()
        });
        let state = lab(&["status"]);
        assert!(whole, "the cluster did not return whole after {what}:\n{}", String::from_utf8_lossy(&state.stdout));
    }
}

/// The time from `since` until the client gets an answer through the service.
fn until_answer(svc: &Service, since: Instant, limit: Duration) -> f64 {
    let addr: SocketAddr = svc.target().parse().expect("addr");
    match haven::lab::client::first_answer(addr, since, limit).expect("client namespace") {
        Some(t) => t.as_secs_f64(),
        None => panic!("{} did not answer within {} s", svc.target(), limit.as_secs()),
    }
}

/// The pids of a node's corosync and pacemakerd (they change when it is
/// fenced: powered off and booted again).
fn daemons_of(node: &str) -> Vec<i64> {
    let text = std::fs::read_to_string("/var/lib/haven-lab/state.json").unwrap_or_default();
    let st: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    st["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["name"] == node)
        .flat_map(|n| n["daemons"].as_array().into_iter().flatten().filter_map(|d| d["pid"].as_i64()))
        .collect()
}

fn crm_mon_text(nodes: &[&str]) -> String {
    nodes
        .iter()
        .map(|n| lab(&["exec", n, "--", "crm_mon", "-1"]))
        .find(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// A partition or corosync crash of the service's node: the others fence it
/// and take over; it comes back (fence_haven's reboot) and the cluster is
/// whole again. Returns the seconds to the client's first answer.
fn node_lost(svc: &Service, how: &str) -> f64 {
    let home = svc.home();
    let before = daemons_of(&home);
    let others = svc.others(&[&home]);
    let failed = Instant::now();
    lab_ok(&["fail", &home, how]);
    // A node whose corosync died keeps its resources until it is fenced:
    // the time is until the service answers from another node.
    let taken =
        wait_for(Duration::from_secs(90), || holders(&others, svc.ip, Some("eth0")).len() == 1 && svc.answers());
    let secs = failed.elapsed().as_secs_f64();
    assert!(taken, "not taken over by one of {others:?} after {how} of {home}");
    // Fenced: powered off and booted again (new daemons), never serving
    // after it (the watcher checks the address, volume and service).
    let fenced = wait_for(Duration::from_secs(60), || {
        let now = daemons_of(&home);
        !now.is_empty() && now.iter().all(|p| !before.contains(p))
    });
    assert!(fenced, "{home} was not fenced (rebooted) after {how}");
    svc.wait_whole(&format!("{how} of {home}"));
    secs
}

/// The fence device of the service's node fails, then the node is cut off:
/// nothing starts elsewhere while its fate is unknown, crm_mon says why;
/// once the device works again the node is fenced and the service starts
/// elsewhere. Returns the seconds from the repair to the first answer.
fn fence_fails(svc: &Service) -> f64 {
    let home = svc.home();
    let others = svc.others(&[&home]);
    lab_ok(&["fail", &home, "fencing"]);
    lab_ok(&["fail", &home, "cut"]);
    let unknown = Instant::now();
    let mut said = String::new();
    while unknown.elapsed() < Duration::from_secs(12) {
        let h = holders(&others, svc.ip, Some("eth0"));
        assert!(h.is_empty(), "{} started on {h:?} while {home}'s fate was unknown", svc.ip);
        if said.is_empty() {
            let text = crm_mon_text(&others);
            if text.contains("UNCLEAN") {
                said = text;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if said.is_empty() {
        said = crm_mon_text(&others);
    }
    let why: Vec<&str> = said.lines().filter(|l| l.contains("UNCLEAN") || l.contains("fenc")).collect();
    eprintln!("crm_mon while fencing {home} fails:\n{}", why.join("\n"));
    assert!(said.contains(&format!("{home}: UNCLEAN")), "crm_mon says why nothing moves:\n{said}");
    let repaired = Instant::now();
    assert!(haven::lab::fence::repair(&home), "the fence device of {home} was broken");
    let secs = until_answer(svc, repaired, Duration::from_secs(90));
    assert_eq!(holders(&others, svc.ip, Some("eth0")).len(), 1, "started on one of {others:?}");
    svc.wait_whole(&format!("the fence failure of {home}"));
    secs
}

/// The service's node powered off, and another right after (recovery under
/// way): the last node has no quorum and runs nothing; both return and the
/// service with them. Returns the seconds from the heal to the first answer.
fn second_node_lost(svc: &Service) -> f64 {
    let home = svc.home();
    let second = svc.others(&[&home])[0];
    let last = svc.others(&[&home, second]);
    lab_ok(&["fail", &home, "poweroff"]);
    std::thread::sleep(Duration::from_millis(300));
    lab_ok(&["fail", second, "poweroff"]);
    let stopped = wait_for(Duration::from_secs(30), || {
        holders(&last, svc.ip, Some("eth0")).is_empty() && crm_mon_text(&last).contains("WITHOUT quorum")
    });
    assert!(stopped, "{last:?} without quorum still serve or do not say so:\n{}", crm_mon_text(&last));
    std::thread::sleep(Duration::from_secs(3));
    assert!(holders(&last, svc.ip, Some("eth0")).is_empty(), "an inquorate node started the service");
    let healed = Instant::now();
    lab_ok(&["heal", &home]);
    lab_ok(&["heal", second]);
    let secs = until_answer(svc, healed, Duration::from_secs(90));
    svc.wait_whole("the loss of two nodes");
    secs
}

/// Standby of the service's node, then back; the seconds until the client
/// is answered from the new node.
fn standby(svc: &Service) -> f64 {
    let home = svc.home();
    let admin = svc.others(&[&home])[0];
    let asked = Instant::now();
    lab_ok(&["exec", admin, "--", "crm_attribute", "--node", &home, "--name", "standby", "--update", "on"]);
    let moved = wait_for(Duration::from_secs(60), || {
        let h = holders(svc.nodes, svc.ip, Some("eth0"));
        h.len() == 1 && h[0] != home && svc.answers()
    });
    assert!(moved, "the service did not leave {home} in standby");
    let secs = asked.elapsed().as_secs_f64();
    lab_ok(&["exec", admin, "--", "crm_attribute", "--node", &home, "--name", "standby", "--delete"]);
    svc.wait_whole(&format!("unstandby of {home}"));
    secs
}

/// A manual move to another node and the constraint cleared again.
fn manual_move(svc: &Service, rsc: &str) -> f64 {
    let home = svc.home();
    let to = svc.others(&[&home])[0];
    let asked = Instant::now();
    lab_ok(&["exec", to, "--", "crm_resource", "--move", "--resource", rsc, "--node", to]);
    let moved = wait_for(Duration::from_secs(60), || {
        holders(svc.nodes, svc.ip, Some("eth0")) == [to.to_string()] && svc.answers()
    });
    assert!(moved, "{rsc} did not move to {to}");
    let secs = asked.elapsed().as_secs_f64();
    lab_ok(&["exec", to, "--", "crm_resource", "--clear", "--resource", rsc]);
    svc.wait_whole(&format!("the move of {rsc}"));
    secs
}

/// Every scenario in sequence in one lab of `example`, under one watcher.
fn run_scenarios(example: &str, svc: &Service) {
    let total = Instant::now();
    let lab = Lab::up_with(example, &[]);
    let name = std::path::Path::new(example).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let watch = watch_over(svc.nodes, (svc.invariants)());
    assert!(svc.answers(), "the service answers before any failure");
    let mut times: Vec<(&str, f64)> = Vec::new();
    let mut step = |what: &'static str, f: &dyn Fn() -> f64| {
        let t = Instant::now();
        let secs = f();
        eprintln!("SCENARIO {name}: {what}: {secs:.2} s (step {:.1} s)", t.elapsed().as_secs_f64());
        times.push((what, secs));
    };
    step("cut of the service node -> fenced, answered elsewhere", &|| node_lost(svc, "cut"));
    step("killcoro on the service node -> fenced, answered elsewhere", &|| node_lost(svc, "killcoro"));
    step("fence device fails, then works -> answered after the repair", &|| fence_fails(svc));
    step("second node lost during recovery -> quorum lost, answered after the heal", &|| second_node_lost(svc));
    step("standby of the service node -> answered elsewhere", &|| standby(svc));
    if let Some(rsc) = svc.movable {
        step("manual move -> answered on the new node", &|| manual_move(svc, rsc));
    }
    judge(watch);
    drop(lab);
    eprintln!("SCENARIOS {name}: {} in {:.1} s with lab up and down", times.len(), total.elapsed().as_secs_f64());
    for (what, secs) in &times {
        eprintln!("  {secs:6.2} s  {what}");
    }
    assert_eq!(leftovers(), Vec::<String>::new());
}

#[test]
fn lab_web_survives_partitions_fence_failures_and_moves() {
    if !lab_prereqs() {
        return;
    }
    let svc = Service { nodes: &NODES, ip: VIP, invariants: web_invariants, movable: Some("site") };
    run_scenarios(EXAMPLE, &svc);
}

#[test]
fn hsphere_web_survives_partitions_fence_failures_and_standby() {
    if !deployment_prereqs() {
        return;
    }
    fn master() -> Vec<Held> {
        vec![addr("198.51.100.40", None)]
    }
    let svc = Service { nodes: &["web1", "web2", "web3"], ip: "198.51.100.40", invariants: master, movable: None };
    run_scenarios(&example("hsphere-web.toml"), &svc);
}
