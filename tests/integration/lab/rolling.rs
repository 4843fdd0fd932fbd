//! Scenario 6 of the lab (issue 16): a rolling upgrade. Every node's haven
//! binary is replaced, node by node, with `haven lab upgrade` (standby,
//! replace, unstandby) under a running cluster, while a client asks through
//! the service address ten times a second and the invariant watcher
//! samples every 25 ms. Each turn may cost one failover (one burst of
//! failed requests), nothing more; afterwards every agent and daemon of
//! every node runs the new binary, and the director runs again.

use super::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Failed requests closer together than this belong to one failover (a
/// director's round robin interleaves failures with answers until its
/// next check drops the stopped real server).
const SAME_OUTAGE: Duration = Duration::from_secs(3);
/// Answers in a row that end a turn.
const STEADY: usize = 6;
/// The client: one request every 100 ms, each bounded by 1 s, at most
/// this many in all and for at most this long.
const CLIENT_PERIOD: Duration = Duration::from_millis(100);
const CLIENT_MAX_REQUESTS: usize = 20_000;
const CLIENT_MAX_TIME: Duration = Duration::from_secs(900);

/// The "new release": a copy of the haven binary in a file of its own, so
/// that /proc/PID/exe tells which release every process runs. Removed when
/// the test ends.
struct Release {
    dir: PathBuf,
    path: PathBuf,
}

impl Release {
    fn copy() -> Release {
        // /var/tmp: the nodes see the host's tree there (not their own tmpfs).
        let dir = PathBuf::from(format!("/var/tmp/haven-rolling-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("release directory");
        let path = dir.join("haven");
        std::fs::copy(HAVEN, &path).expect("copy the haven binary");
        Release { dir, path }
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// (device, inode) of a file, following links.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Pids of every process of `node` (its network namespace) running the
/// binary `exe`.
fn running(node: &str, exe: &Path) -> Vec<i32> {
    let want = identity(exe).expect("binary");
    let Some(ns) = identity(Path::new(&format!("/run/netns/haven-lab-{node}"))) else { return Vec::new() };
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|p| identity(Path::new(&format!("/proc/{p}/ns/net"))) == Some(ns))
        .filter(|p| identity(Path::new(&format!("/proc/{p}/exe"))) == Some(want))
        .collect()
}

/// The binary `node`'s agents are exec'd as, resolved inside the node.
fn agent_binary(node: &str) -> String {
    let out = lab_ok(&["exec", node, "--", "readlink", "-f", "/usr/lib/ocf/resource.d/haven/director"]);
    out.trim().to_string()
}

/// One request's outcome, at its time since the client began.
struct Sample {
    at: Duration,
    ok: bool,
    error: String,
}

/// The client loop through the service address, until stopped (bounded).
struct ClientLoop {
    stop: Arc<AtomicBool>,
    began: Instant,
    thread: std::thread::JoinHandle<Vec<Sample>>,
}

impl ClientLoop {
    fn start(target: SocketAddr) -> ClientLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let began = Instant::now();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut out = Vec::new();
            while !flag.load(Ordering::SeqCst) && out.len() < CLIENT_MAX_REQUESTS && began.elapsed() < CLIENT_MAX_TIME {
                let at = began.elapsed();
                // No client namespace: the lab is gone (the test failed).
                let Ok(r) = haven::lab::client::request(target, Duration::from_secs(1)) else { break };
                let (ok, error) = match r {
                    Ok(line) if line.contains(" 200") => (true, String::new()),
                    Ok(line) => (false, line),
                    Err(e) => (false, e),
                };
                out.push(Sample { at, ok, error });
                if let Some(rest) = CLIENT_PERIOD.checked_sub(began.elapsed() - at) {
                    std::thread::sleep(rest);
                }
            }
            out
        });
        ClientLoop { stop, began, thread }
    }

    fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("client thread")
    }
}

/// A burst of failed requests: first and last failure, how many, and the
/// next answer after it.
#[derive(Debug)]
struct Outage {
    first: Duration,
    last: Duration,
    failed: usize,
    answered: Option<Duration>,
}

impl Outage {
    /// From the first failed request to the next answer.
    fn secs(&self) -> f64 {
        self.answered.unwrap_or(self.last).saturating_sub(self.first).as_secs_f64()
    }
}

/// The failed requests that began within `from..=to`, grouped into
/// outages (failures within SAME_OUTAGE of each other).
fn outages(samples: &[Sample], from: Duration, to: Duration) -> Vec<Outage> {
    let mut out: Vec<Outage> = Vec::new();
    for s in samples.iter().filter(|s| !s.ok && s.at >= from && s.at <= to) {
        match out.last_mut() {
            Some(o) if s.at - o.last < SAME_OUTAGE => {
                o.last = s.at;
                o.failed += 1;
            }
            _ => out.push(Outage { first: s.at, last: s.at, failed: 1, answered: None }),
        }
    }
    for o in &mut out {
        o.answered = samples.iter().find(|s| s.ok && s.at > o.last).map(|s| s.at);
    }
    out
}

/// One node's turn, as the test timed it (since the client began).
struct TurnTime {
    node: String,
    from: Duration,
    to: Duration,
}

/// Upgrade every node in turn under the client loop and the watcher; check
/// each turn cost at most one outage and every node runs the new release
/// afterwards. `director` is the node of the director daemon, if the
/// example has one: its turn comes last (the description keeps the
/// director there, so the turn restarts it in place); otherwise the node
/// holding the service comes last, so only one turn moves it (what an
/// operator does).
fn rolling_upgrade(example: &str, svc: &Service, director: Option<&str>) {
    let name = Path::new(example).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let release = Release::copy();
    let lab = Lab::up_with(example, &[]);
    // After `lab up` (which prints its own time; the lab lock may have
    // waited for another test's lab before it).
    let total = Instant::now();
    let watch = watch_over(svc.nodes, (svc.invariants)());
    assert!(wait_for(Duration::from_secs(30), || svc.answers()), "{} answers after lab up", svc.ip);
    let last = director.map(String::from).unwrap_or_else(|| svc.home());
    let mut order = svc.others(&[&last]);
    order.push(&last);
    for n in svc.nodes {
        assert_eq!(agent_binary(n), HAVEN, "{n} starts with the lab's binary");
    }
    let old_director = director.map(|d| {
        let pids = running(d, Path::new(HAVEN));
        let daemon = pids_in(d, "director run");
        assert_eq!(daemon.len(), 1, "one director on {d}: {daemon:?}");
        assert!(pids.contains(&daemon[0]), "the director on {d} runs the old release");
        daemon
    });
    let client = ClientLoop::start(svc.target().parse().expect("addr"));
    std::thread::sleep(Duration::from_secs(2));
    let mut turns = Vec::new();
    for node in &order {
        let from = client.began.elapsed();
        let out = lab_ok(&["upgrade", node, &release.path.to_string_lossy()]);
        eprint!("SCENARIO {name}: upgrade {node}:\n{out}");
        // `lab upgrade` returns when Pacemaker says every resource runs
        // again; the turn ends when the service is steady too: answers in
        // a row, more than a director has real servers to go round.
        let steady = wait_for(Duration::from_secs(30), || (0..STEADY).all(|_| svc.answers()));
        assert!(steady, "{} does not answer {STEADY} times in a row after {node}'s turn", svc.ip);
        turns.push(TurnTime { node: node.to_string(), from, to: client.began.elapsed() });
        assert_eq!(agent_binary(node), release.path.to_string_lossy(), "{node}'s agents run the new release");
        let status = lab_ok(&["status"]);
        let line = status.lines().find(|l| l.trim_start().starts_with(&format!("{node} "))).unwrap_or_default();
        assert!(line.ends_with(&format!("haven {}", release.path.display())), "lab status shows it: {status}");
        // Until its own node's turn the director keeps running, untouched:
        // the same process, the old release (the cluster runs both).
        if let (Some(d), Some(old)) = (director, &old_director) {
            if d != *node {
                assert_eq!(&pids_in(d, "director run"), old, "the director on {d} kept running through {node}'s turn");
                assert!(running(d, Path::new(HAVEN)).contains(&old[0]), "and still runs the old release");
            }
        }
        // Quiet between turns: a failure here is not a turn's failover.
        std::thread::sleep(Duration::from_secs(2));
    }
    let samples = client.finish();
    judge(watch);
    check_director(director, old_director, &release);
    for n in svc.nodes {
        assert_eq!(running(n, Path::new(HAVEN)), Vec::<i32>::new(), "{n} still runs the old release");
    }
    drop(lab);
    report(&name, &samples, &turns, total.elapsed());
    assert_eq!(leftovers(), Vec::<String>::new());
}

/// The director runs again, on its node, as the new release.
fn check_director(director: Option<&str>, old: Option<Vec<i32>>, release: &Release) {
    let (Some(d), Some(old)) = (director, old) else { return };
    let now = pids_in(d, "director run");
    assert_eq!(now.len(), 1, "one director runs on {d} after the upgrade: {now:?}");
    assert!(!old.contains(&now[0]), "the director was restarted on {d}'s turn");
    assert_eq!(running(d, &release.path), now, "the director on {d} runs the new release");
}

/// Print the time per turn and the failed requests; each turn may cost one
/// outage, and no failure may fall outside a turn.
fn report(name: &str, samples: &[Sample], turns: &[TurnTime], total: Duration) {
    let failed: Vec<&Sample> = samples.iter().filter(|s| !s.ok).collect();
    eprintln!(
        "SCENARIO {name}: rolling upgrade of {} nodes: {} requests, {} failed, {:.1} s after lab up, with lab down",
        turns.len(),
        samples.len(),
        failed.len(),
        total.as_secs_f64()
    );
    for s in &failed {
        eprintln!("  failed request at {:.2} s: {}", s.at.as_secs_f64(), s.error);
    }
    for t in turns {
        let mine = outages(samples, t.from, t.to);
        let lost: usize = mine.iter().map(|o| o.failed).sum();
        let span = mine.iter().fold(0.0, |a, o| a + o.secs());
        eprintln!(
            "  turn {:<6} {:6.2} s ({:.2}-{:.2} s), {lost} failed requests in {} outage(s), {span:.2} s until answered \
             again",
            t.node,
            (t.to - t.from).as_secs_f64(),
            t.from.as_secs_f64(),
            t.to.as_secs_f64(),
            mine.len()
        );
        assert!(mine.len() <= 1, "the turn of {} cost more than one failover: {mine:?}", t.node);
    }
    let stray: Vec<String> = failed
        .iter()
        .filter(|s| !turns.iter().any(|t| s.at >= t.from && s.at <= t.to))
        .map(|s| format!("{:.2} s {}", s.at.as_secs_f64(), s.error))
        .collect();
    assert!(stray.is_empty(), "failed requests outside any turn:\n{}", stray.join("\n"));
    assert!(samples.len() > 50, "the client loop ran: {} requests", samples.len());
}

#[test]
fn lab_web_rolling_upgrade_costs_one_failover_per_turn() {
    if !lab_prereqs() {
        return;
    }
    let svc = Service { nodes: &NODES, ip: VIP, invariants: web_invariants, movable: None };
    rolling_upgrade(EXAMPLE, &svc, None);
}

#[test]
fn smt_mirror_rolling_upgrade_keeps_its_director() {
    if !deployment_prereqs() {
        return;
    }
    fn invariants() -> Vec<Held> {
        vec![addr("198.51.100.10", Some("eth0")), process("director run")]
    }
    let svc = Service { nodes: &["node1", "node2", "node3"], ip: "198.51.100.10", invariants, movable: None };
    rolling_upgrade(&example("smt-mirror.toml"), &svc, Some("node3"));
}
