//! `haven lab`: a real three-node Pacemaker cluster in namespaces running
//! examples/lab-web.toml. The VIP and its service run where the description
//! says, a killed service is restarted in place, a powered-off node's
//! resources come up elsewhere within a printed bound (the address never on
//! two nodes, the client answered before and after), the cloned filesystem
//! stays mounted on the survivors, and `lab down` leaves nothing behind,
//! also after a failed test. One lab at a time.

use crate::common::*;
use haven::lab::cluster::Snapshot;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
    _flock: std::fs::File,
}

impl Lab {
    fn up(extra: &[&str]) -> Lab {
        let serial = ONE_LAB.lock().unwrap_or_else(|p| p.into_inner());
        let flock = std::fs::File::create("/tmp/haven-lab-tests.lock").expect("lock file");
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file we own; blocks until the other lab is gone.
        assert_eq!(unsafe { libc::flock(flock.as_raw_fd(), libc::LOCK_EX) }, 0, "lab test lock");
        // A previous run that was killed may have left its lab.
        lab_ok(&["down"]);
        let lab = Lab { _serial: serial, _flock: flock };
        let mut args = vec!["up"];
        args.extend_from_slice(extra);
        args.push(EXAMPLE);
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
    NODES
        .iter()
        .filter(|n| {
            let o = Command::new("ip").args(["-n", &format!("haven-lab-{n}"), "-o", "-4", "addr", "show"]).output();
            o.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!(" {VIP}/")))
        })
        .map(|n| n.to_string())
        .collect()
}

/// Samples the VIP's holders every 100 ms until dropped; the most it ever
/// saw at once.
struct Watch {
    stop: Arc<AtomicBool>,
    most: Arc<AtomicUsize>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    fn start() -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let most = Arc::new(AtomicUsize::new(0));
        let (s, m) = (stop.clone(), most.clone());
        let handle = std::thread::spawn(move || {
            let started = Instant::now();
            while !s.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(240) {
                let h = vip_holders();
                if h.len() > 1 {
                    eprintln!("VIP on several nodes at once: {h:?}");
                }
                m.fetch_max(h.len(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Watch { stop, most, handle: Some(handle) }
    }

    fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
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
    let watch = Watch::start();

    // Where the description says: the site group prefers lab1.
    let s = any_snapshot().expect("crm_mon answers");
    for r in ["web-fs", "web-ip", "web"] {
        assert_eq!(s.where_is(r), vec!["lab1".to_string()], "{r} should run on lab1:\n{}", s.placement_text());
    }
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
    // SAFETY: SIGKILL to the lab's web server, found above.
    unsafe { libc::kill(pids[0], libc::SIGKILL) };
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
    assert_eq!(watch.most(), 1, "the VIP was on several nodes at once");
    drop(watch);

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
