//! ocf:haven:instance with real daemons (nginx, python3, rsync from
//! Debian): each test builds a network namespace holding the instance's
//! address, a private mount namespace with a tmpfs on datadir, and runs the
//! agent inside both, as Pacemaker would. The instance's cgroup lives under
//! <cgroup2>/haven/instance/<name>; every test removes it, its processes
//! and its run directory when it ends, even when it fails.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/instances/web.toml");

static SEQ: AtomicU32 = AtomicU32::new(0);

/// The cgroup2 mount point, as the agent finds it.
fn cgroup2_root() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mounts: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split(' ').next() == Some("cgroup2")).then(|| left.split(' ').nth(4).map(str::to_string))?
        })
        .collect();
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .find(|p| mounts.iter().any(|m| m == *p))
        .map(PathBuf::from)
        .or_else(|| mounts.first().map(PathBuf::from))
}

/// Root, namespaces, a writable cgroup2 tree and the daemons.
pub fn need_lab() -> bool {
    if !(need_root() && need_tool("nsenter") && need_tool("unshare") && need_tool("nginx") && need_tool("rsync")) {
        return false;
    }
    if !need_file("/usr/bin/python3") {
        return false;
    }
    let Some(root) = cgroup2_root() else { return missing("a mounted cgroup2 filesystem") };
    let probe = root.join("haven").join(format!("writable-{}", std::process::id()));
    let ok = std::fs::create_dir_all(&probe).is_ok() && probe.join("cgroup.procs").exists();
    let _ = std::fs::remove_dir(&probe);
    ok || missing(&format!("a writable cgroup2 tree at {}", root.display()))
}

/// One throwaway node for one instance: its address in a network
/// namespace, its datadir (tmpfs) in a mount namespace.
pub struct Lab {
    pub name: String,
    pub ip: String,
    pub datadir: String,
    pub mnt: MountNs,
    pub net: Netns,
    /// The cgroup the agent will use; removed on drop.
    pub cgroup: PathBuf,
}

impl Lab {
    /// `mounted`: a tmpfs on datadir (the shared volume is there) or not.
    pub fn new(mounted: bool) -> Lab {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let name = format!("hvt{}x{n}", std::process::id());
        let ip = format!("198.51.100.{}", 80 + n % 100);
        let net = Netns::new();
        net.ip(&["addr", "add", &format!("{ip}/32"), "dev", "lo"]);
        let mnt = MountNs::new();
        let datadir = mnt.dir("data");
        std::fs::create_dir_all(&datadir).expect("create datadir");
        if mounted {
            let o = mnt.run(&["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", &format!("hvt-{name}"), &datadir]);
            assert!(o.status.success(), "mount tmpfs: {}", String::from_utf8_lossy(&o.stderr));
        }
        let cgroup = cgroup2_root().expect("cgroup2").join("haven/instance").join(&name);
        Lab { name, ip, datadir, mnt, net, cgroup }
    }

    /// Copy a tree from the host into datadir (which only the mount
    /// namespace sees), keeping modes.
    pub fn populate(&self, files: &[(&str, &str)]) {
        let src = self.mnt.dir("src");
        for (rel, text) in files {
            let p = Path::new(&src).join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, text).expect("write");
        }
        sh(&["chmod", "-R", "a+rX", &src]);
        let o = self.mnt.run(&["cp", "-a", &format!("{src}/."), &self.datadir]);
        assert!(o.status.success(), "cp: {}", String::from_utf8_lossy(&o.stderr));
    }

    /// The web example with extra services appended.
    pub fn instance_file(&self, extra: &str) -> String {
        let example = std::fs::read_to_string(EXAMPLE).expect("examples/instances/web.toml");
        format!("{example}\n{extra}")
    }

    /// A standard site plus an instance file.
    pub fn setup_site(&self, instance_toml: &str) {
        self.populate(&[
            ("instance.toml", instance_toml),
            ("htdocs/index.html", &format!("<h1>{} served from datadir</h1>\n", self.name)),
        ]);
    }

    /// The agent run on this node (its network and mount namespaces) with
    /// Pacemaker's environment.
    pub fn agent(&self) -> Run<'static> {
        Run::new("instance")
            .entering(self.enter())
            .env("OCF_RESOURCE_INSTANCE", &format!("{}-rsc", self.name))
            .meta("timeout", "30000")
            .param("name", &self.name)
            .param("hostname", &format!("{}.example.org", self.name))
            .param("ip", &self.ip)
            .param("datadir", &self.datadir)
    }

    pub fn run_dir(&self) -> PathBuf {
        PathBuf::from("/run/haven/instance").join(&self.name)
    }

    pub fn log(&self, service: &str) -> String {
        std::fs::read_to_string(self.run_dir().join(format!("{service}.log"))).unwrap_or_default()
    }

    /// Processes in a service's cgroup (empty when the cgroup is gone).
    pub fn procs(&self, service: &str) -> Vec<i32> {
        std::fs::read_to_string(self.cgroup.join(service).join("cgroup.procs"))
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// The nsenter argv prefix that puts a command on this node.
    pub fn enter(&self) -> Vec<String> {
        vec!["nsenter".into(), self.mnt.enter_arg(), format!("--net=/run/netns/{}", self.net.name), "--".into()]
    }

    /// One HTTP GET to this node's address, from inside its namespace.
    pub fn http_get(&self, port: u16, path: &str, host: &str) -> String {
        self.exchange(port, format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n"))
    }

    /// Send `req` (may be empty) to a port of this node's address, from
    /// inside its namespace, and return what comes back until EOF or 3 s.
    pub fn exchange(&self, port: u16, req: String) -> String {
        let ns = format!("/run/netns/{}", self.net.name);
        let addr = format!("{}:{port}", self.ip);
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            enter_netns(&ns);
            let sa: std::net::SocketAddr = addr.parse().expect("addr");
            let mut s = std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(3)).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
            s.write_all(req.as_bytes()).expect("send");
            let mut out = Vec::new();
            if req.is_empty() {
                // A greeting: the first answer is enough.
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                out.extend_from_slice(&buf[..n]);
            } else {
                let _ = s.take(65536).read_to_end(&mut out);
            }
            String::from_utf8_lossy(&out).into_owned()
        })
        .join()
        .expect("http thread")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Every process of the instance, whatever the test did: the cgroup
        // is what knows them.
        if self.cgroup.exists() {
            let _ = std::fs::write(self.cgroup.join("cgroup.kill"), "1");
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                let ev = std::fs::read_to_string(self.cgroup.join("cgroup.events")).unwrap_or_default();
                if !ev.contains("populated 1") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Ok(rd) = std::fs::read_dir(&self.cgroup) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        let _ = std::fs::remove_dir(e.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(&self.cgroup);
        }
        // The shared parents go when no other test uses them.
        if let Some(parent) = self.cgroup.parent() {
            let _ = std::fs::remove_dir(parent);
            if let Some(top) = parent.parent() {
                let _ = std::fs::remove_dir(top);
            }
        }
        let _ = std::fs::remove_dir_all(self.run_dir());
    }
}

/// A service that double-forks a child which leaves for its own session and
/// ignores SIGTERM (what a badly written daemon or a cron-style helper
/// does); the service itself reports both pids on stdout (its log) and
/// then waits in the foreground.
const STRAGGLER: &str = r#"
[[service]]
name = "straggler"
argv = ["/usr/bin/python3", "-u", "-c", """
import os, signal, sys, time
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.write(w, str(os.getpid()).encode())
        os.close(w)
        while True:
            time.sleep(1)
    os._exit(0)
os.close(w)
print('grandchild', os.read(r, 64).decode(), flush=True)
print('main', os.getpid(), flush=True)
while True:
    time.sleep(1)
"""]
stop_timeout = "2s"
"#;

fn pid_alive(pid: i32) -> bool {
    // A zombie is gone for every purpose that matters here.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim_start().starts_with(['Z', 'X'])))
        .is_some_and(|zombie| !zombie)
}

fn logged_pid(log: &str, tag: &str) -> Option<i32> {
    log.lines().find_map(|l| l.strip_prefix(tag).and_then(|r| r.trim().parse().ok()))
}

#[test]
fn real_daemons_start_pass_every_depth_and_stop_without_leftovers() {
    if !need_lab() {
        return;
    }
    let lab = Lab::new(true);
    lab.setup_site(&lab.instance_file(STRAGGLER));
    let a = lab.agent();
    assert_eq!(a.probe().code, 7, "probe before start");
    let t0 = Instant::now();
    a.expect("start", 0);
    let start_ms = t0.elapsed().as_millis();
    // Pacemaker's pipes were released (output() returned) while the
    // daemons keep running, each in its cgroup.
    let web = lab.procs("web");
    assert!(web.len() >= 3, "nginx master and 2 workers in the web cgroup: {web:?}");
    assert!(!lab.procs("files").is_empty(), "the second service runs");
    assert!(lab.procs("sync").is_empty(), "promoted-only service does not run after start");
    let page = lab.http_get(80, "/", &format!("{}.example.org", lab.name));
    assert!(page.starts_with("HTTP/1.1 200") && page.contains("served from datadir"), "{page}");
    let files = lab.http_get(8080, "/index.html", "x");
    assert!(files.contains("served from datadir"), "{files}");
    // The files service runs as the user its instance file names.
    let pid = lab.procs("files")[0];
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap_or_default().to_string();
    assert!(uid.split_whitespace().nth(1) == Some("33"), "files runs as www-data: {uid}");
    // The services are detached: own session, stdio on the run dir's logs.
    let master = web.iter().copied().min().expect("nginx master");
    let stdout = std::fs::read_link(format!("/proc/{master}/fd/1")).expect("fd 1");
    assert_eq!(stdout, lab.run_dir().join("web.log"));
    let stdin = std::fs::read_link(format!("/proc/{master}/fd/0")).expect("fd 0");
    assert_eq!(stdin, Path::new("/dev/null"));
    let sid = nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(master))).expect("getsid");
    assert_eq!(sid.as_raw(), master, "nginx leads its own session");

    let ok = wait_for(Duration::from_secs(5), || logged_pid(&lab.log("straggler"), "grandchild").is_some());
    assert!(ok, "straggler log: {}", lab.log("straggler"));
    let grandchild = logged_pid(&lab.log("straggler"), "grandchild").expect("grandchild pid");
    assert!(pid_alive(grandchild));
    let cg = std::fs::read_to_string(format!("/proc/{grandchild}/cgroup")).expect("cgroup of grandchild");
    assert!(cg.contains(&format!("/haven/instance/{}/straggler", lab.name)), "{cg}");

    assert_eq!(a.probe().code, 0, "probe of a running instance");
    let mut monitor_ms = Vec::new();
    for depth in [0, 10, 20] {
        let t = Instant::now();
        a.expect_monitor(depth, 0);
        monitor_ms.push(t.elapsed().as_millis());
    }
    a.expect("start", 0); // idempotent
    assert_eq!(lab.procs("web"), web, "a second start changes nothing");

    let list = Command::new(HAVEN).args(["instance", "list"]).output().expect("haven instance list");
    let text = String::from_utf8_lossy(&list.stdout);
    let line = text.lines().find(|l| l.starts_with(&format!("{} ", lab.name))).unwrap_or_default();
    assert!(line.contains(&lab.ip) && line.contains("running") && line.contains("web,files,sync(promoted)"), "{text}");

    let all: Vec<i32> = ["web", "files", "straggler"].iter().flat_map(|s| lab.procs(s)).chain([grandchild]).collect();
    let t1 = Instant::now();
    let stop = a.expect("stop", 0);
    let stop_ms = t1.elapsed().as_millis();
    assert!(stop.stderr.contains("did not stop within 2000 ms"), "the straggler needed SIGKILL:\n{}", stop.stderr);
    for pid in &all {
        assert!(!pid_alive(*pid), "pid {pid} survived stop");
    }
    assert!(!lab.cgroup.exists(), "the instance cgroup is removed");
    assert!(stop_ms < 6_000, "stop took {stop_ms} ms");
    // Nothing keeps the shared volume busy: it unmounts at once.
    let um = lab.mnt.run(&["umount", &lab.datadir]);
    assert!(um.status.success(), "datadir still busy after stop: {}", String::from_utf8_lossy(&um.stderr));
    a.expect("monitor", 7);
    a.expect("stop", 0); // idempotent
    let list = Command::new(HAVEN).args(["instance", "list"]).output().expect("haven instance list");
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.lines().any(|l| l.starts_with(&format!("{} ", lab.name)) && l.contains("stopped")), "{text}");
    eprintln!(
        "instance figures: start {start_ms} ms, monitor depth 0/10/20 {monitor_ms:?} ms, stop {stop_ms} ms \
         (straggler stop_timeout 2000 ms)"
    );
}

#[test]
fn unmounted_datadir_refuses_start_and_writes_nothing() {
    if !need_lab() {
        return;
    }
    let lab = Lab::new(false);
    // The instance file outside datadir, so only the mount is missing.
    let conf = lab.mnt.dir("instance.toml");
    std::fs::write(&conf, lab.instance_file("")).expect("write instance file");
    let a = lab.agent().param("config", &conf);
    let o = a.expect("start", 1);
    let reason = o.reason().unwrap_or_default();
    assert!(reason.contains("not a mounted filesystem") && reason.contains(&lab.datadir), "{reason}");
    let left: Vec<_> = std::fs::read_dir(&lab.datadir).expect("datadir").collect();
    assert!(left.is_empty(), "start wrote into the unmounted datadir: {left:?}");
    assert!(!lab.cgroup.exists(), "no cgroup was created");
    assert!(!lab.run_dir().join("web.log").exists(), "no service was started");
    a.expect("monitor", 7);
    a.expect("stop", 0);
    // A datadir that does not exist at all is refused the same way.
    let gone = lab.agent().param("config", &conf).param("datadir", &lab.mnt.dir("nowhere"));
    let o = gone.expect("start", 1);
    assert!(o.reason().unwrap_or_default().contains("does not exist"), "{}", o.stderr);
}

#[test]
fn promote_and_demote_run_exactly_the_promoted_services() {
    if !need_lab() {
        return;
    }
    let lab = Lab::new(true);
    lab.setup_site(&lab.instance_file(""));
    let a = lab.agent().meta("promotable", "true").meta("promoted_max", "1").meta("clone_max", "2");
    let start = a.expect("start", 0);
    let rsc = format!("{}-rsc", lab.name);
    assert!(
        start.stderr.contains(&format!("promotion score: crm_attribute --promotion={rsc} -v 10")),
        "start publishes the promotion score:\n{}",
        start.stderr
    );
    let web = lab.procs("web");
    let files = lab.procs("files");
    assert!(lab.procs("sync").is_empty());
    a.expect_monitor(10, 0);

    a.expect("promote", 0);
    // rsync's daemon (it may still have a child serving the ready probe).
    let sync = lab.procs("sync");
    assert!(!sync.is_empty(), "rsync runs once promoted");
    assert_eq!(lab.procs("web"), web, "promote leaves the other services alone");
    assert_eq!(lab.procs("files"), files);
    a.expect_monitor(0, 8);
    a.expect_monitor(10, 8);
    a.expect("promote", 0); // idempotent
    assert!(lab.procs("sync").contains(&sync[0]), "the same rsync daemon");

    a.expect("demote", 0);
    assert!(lab.procs("sync").is_empty() && !lab.cgroup.join("sync").exists(), "demote stops rsync");
    assert!(sync.iter().all(|p| !pid_alive(*p)));
    assert_eq!(lab.procs("web"), web, "demote leaves the other services alone");
    assert_eq!(lab.procs("files"), files);
    a.expect_monitor(10, 0);
    a.expect("demote", 0); // idempotent
    a.expect("notify", 0);

    // Promoted again, then stopped: the promoted-only service goes first.
    a.expect("promote", 0);
    let stop = a.expect("stop", 0);
    assert!(
        stop.stderr.contains(&format!("promotion score: crm_attribute --promotion={rsc} -D")),
        "stop withdraws the score:\n{}",
        stop.stderr
    );
    let order: Vec<usize> = ["service sync stopped", "service files stopped", "service web stopped"]
        .iter()
        .map(|m| stop.stderr.find(m).unwrap_or_else(|| panic!("{m} missing:\n{}", stop.stderr)))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "reverse order:\n{}", stop.stderr);
    assert!(!lab.cgroup.exists());
}

#[test]
fn a_killed_service_is_seen_by_the_next_monitor() {
    if !need_lab() {
        return;
    }
    let lab = Lab::new(true);
    lab.setup_site(&lab.instance_file(""));
    let a = lab.agent();
    a.expect("start", 0);
    a.expect("promote", 0);
    // The optional service: degraded, promoted (191), then degraded (190).
    let files = lab.procs("files");
    signal(files[0], nix::sys::signal::Signal::SIGKILL);
    wait_for(Duration::from_secs(2), || !pid_alive(files[0]));
    let o = a.expect_monitor(0, 191);
    assert!(o.stderr.contains("files"), "{}", o.stderr);
    a.expect("demote", 0);
    a.expect_monitor(0, 190);
    // The promoted-only service while promoted: failed promoted (9).
    a.expect("promote", 0);
    let sync = lab.procs("sync");
    signal(sync[0], nix::sys::signal::Signal::SIGKILL);
    wait_for(Duration::from_secs(2), || !pid_alive(sync[0]));
    let o = a.expect_monitor(0, 9);
    assert!(o.reason().unwrap_or_default().contains("sync"), "{}", o.stderr);
    a.expect("demote", 0);
    // A required service: failure (1) naming it, at the very next call.
    let master = lab.procs("web").into_iter().min().expect("nginx master");
    signal(master, nix::sys::signal::Signal::SIGKILL);
    wait_for(Duration::from_secs(2), || !pid_alive(master));
    let o = a.expect_monitor(0, 1);
    assert!(o.reason().unwrap_or_default().contains("service web is not running"), "{}", o.stderr);
    // stop still ends everything, including the orphaned nginx workers.
    a.expect("stop", 0);
    assert!(!lab.cgroup.exists());
    a.expect("monitor", 7);
}

#[test]
fn bad_instance_files_are_6_with_file_and_line() {
    if !need_lab() {
        return;
    }
    let lab = Lab::new(true);
    let dir = lab.mnt.dir("bad");
    std::fs::create_dir_all(&dir).expect("dir");
    let cases: [(&str, &str, usize, &str); 4] = [
        ("unknown-key", "[[service]]\nname = \"web\"\nargv = [\"/bin/true\"]\nrestart = \"always\"\n", 4, "restart"),
        ("missing-argv", "[[service]]\nname = \"web\"\nuser = \"root\"\n", 1, "argv"),
        (
            "bad-probe",
            "[[service]]\nname = \"web\"\nargv = [\"/bin/true\"]\nprobe = { type = \"http\", port = 0 }\n",
            4,
            "port",
        ),
        (
            "bad-probe-type",
            "[[service]]\nname = \"web\"\nargv = [\"/bin/true\"]\n\n[service.probe]\ntype = \"ldap\"\n",
            6,
            "ldap",
        ),
    ];
    for (tag, text, line, word) in cases {
        let path = format!("{dir}/{tag}.toml");
        std::fs::write(&path, text).expect("write");
        for action in ["validate-all", "start"] {
            let o = lab.agent().param("config", &path).action(action);
            assert_eq!(o.code, 6, "{tag} {action}: {}", o.stderr);
            let reason = o.reason().unwrap_or_default();
            assert!(reason.starts_with(&format!("{path}:")), "{tag}: reason names the file: {reason}");
            assert!(reason.starts_with(&format!("{path}:{line}:")), "{tag}: line {line}: {reason}");
            assert!(reason.contains(word), "{tag}: {reason}");
        }
    }
    assert!(!lab.cgroup.exists(), "nothing started");
}

#[test]
fn shell_metacharacters_in_argv_reach_the_program_verbatim() {
    if !need_lab() {
        return;
    }
    let lab = Lab::new(true);
    let marker = std::env::temp_dir().join(format!("haven-pwned-{}", lab.name));
    let m = marker.display().to_string();
    let service = format!(
        r#"
[[service]]
name = "echo"
argv = ["/usr/bin/python3", "-u", "-c", "import os, sys, time; print(repr(sys.argv[1:])); print(sorted((k, v) for k, v in os.environ.items() if k.startswith('HAVEN_')), flush=True); time.sleep(600)",
        "$(touch {m})", "`touch {m}`", "; touch {m}", "| touch {m}", "&& touch {m}", "$HOME", "*", "{{{{name}}}}"]
"#
    );
    lab.populate(&[("instance.toml", &service)]);
    let a = lab.agent();
    a.expect("start", 0);
    assert!(wait_for(Duration::from_secs(5), || lab.log("echo").lines().count() >= 2));
    let expected = format!(
        "['$(touch {m})', '`touch {m}`', '; touch {m}', '| touch {m}', '&& touch {m}', '$HOME', '*', '{}']",
        lab.name
    );
    let log = lab.log("echo");
    assert_eq!(log.lines().next().unwrap_or_default(), expected);
    let env = format!(
        "[('HAVEN_DATADIR', '{}'), ('HAVEN_HOSTNAME', '{}.example.org'), ('HAVEN_INSTANCE', '{}'), ('HAVEN_IP', '{}'), \
         ('HAVEN_RUNDIR', '{}'), ('HAVEN_SERVICE', 'echo')]",
        lab.datadir,
        lab.name,
        lab.name,
        lab.ip,
        lab.run_dir().display()
    );
    assert_eq!(log.lines().nth(1).unwrap_or_default(), env);
    assert!(!marker.exists(), "a shell ran the argv");
    a.expect("stop", 0);
}

#[test]
fn start_refuses_without_the_address_and_reports_a_dying_service() {
    if !need_lab() {
        return;
    }
    let lab = Lab::new(true);
    let dying = r#"
[[service]]
name = "sleeper"
argv = ["/usr/bin/sleep", "600"]

[[service]]
name = "broken"
argv = ["/usr/bin/python3", "-c", "import sys; sys.exit('broken: bad configuration line 7')"]
"#;
    lab.populate(&[("instance.toml", dying)]);
    let away = lab.agent().param("ip", "198.51.100.250");
    let o = away.expect("start", 1);
    assert!(o.reason().unwrap_or_default().contains("not an address of this node"), "{}", o.stderr);
    assert!(!lab.cgroup.exists());
    // A service that exits during start fails the start with its last
    // words, and what was started before it is stopped again.
    let a = lab.agent();
    let o = a.expect("start", 1);
    let reason = o.reason().unwrap_or_default();
    assert!(reason.contains("service broken exited") && reason.contains("bad configuration line 7"), "{reason}");
    assert!(!lab.cgroup.exists(), "the sleeper was stopped again");
    a.expect("monitor", 7);
}

#[test]
fn stop_ends_within_the_action_timeout_whatever_the_stop_timeouts() {
    if !need_lab() {
        return;
    }
    let lab = Lab::new(true);
    let slow = STRAGGLER.replace("stop_timeout = \"2s\"", "stop_timeout = \"60s\"");
    lab.populate(&[("instance.toml", &slow)]);
    let a = lab.agent();
    a.expect("start", 0);
    assert!(wait_for(Duration::from_secs(5), || logged_pid(&lab.log("straggler"), "grandchild").is_some()));
    let grandchild = logged_pid(&lab.log("straggler"), "grandchild").expect("grandchild");
    let mut short = lab.agent();
    short.meta.insert("timeout".into(), "4000".into());
    let t = Instant::now();
    let o = short.action("stop");
    let ms = t.elapsed().as_millis();
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(ms < 4_000, "stop took {ms} ms with a 4000 ms timeout");
    assert!(!pid_alive(grandchild) && !lab.cgroup.exists());
    eprintln!("instance figures: stop with a 60 s stop_timeout under a 4 s action timeout: {ms} ms");
}

#[test]
fn monitor_at_depth_0_forks_nothing() {
    if !need_lab() || !need_tool("strace") {
        return;
    }
    let lab = Lab::new(true);
    lab.setup_site(&lab.instance_file(""));
    let a = lab.agent();
    a.expect("start", 0);
    let trace = lab.mnt.dir("strace.out");
    let mut c = Command::new("nsenter");
    c.args(&lab.enter()[1..]).args(["strace", "-f", "-qq", "-e", "trace=process", "-o", &trace]);
    c.arg(agent_path("instance")).arg("monitor");
    c.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").env("OCF_RESKEY_CRM_meta_interval", "10000");
    for (k, v) in &a.params {
        c.env(format!("OCF_RESKEY_{k}"), v);
    }
    let o = c.output().expect("strace");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&trace).expect("trace");
    let execs = text.lines().filter(|l| l.contains("execve(")).count();
    let forks = text.lines().filter(|l| ["clone(", "clone3(", "fork(", "vfork("].iter().any(|c| l.contains(c))).count();
    assert_eq!((execs, forks), (1, 0), "monitor depth 0 runs one program and forks nothing:\n{text}");
    a.expect("stop", 0);
}

#[test]
fn the_mail_example_serves_imap_and_pop3_from_datadir() {
    if !need_lab() || !need_tool("dovecot") {
        return;
    }
    let lab = Lab::new(true);
    let mail = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/instances/mail.toml"))
        .expect("examples/instances/mail.toml");
    lab.populate(&[("instance.toml", &mail), ("users", "")]);
    let o = lab.mnt.run(&["install", "-d", "-o", "mail", "-g", "mail", &format!("{}/mail", lab.datadir)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a = lab.agent();
    a.expect("start", 0);
    a.expect_monitor(10, 0);
    let host = format!("{}.example.org", lab.name);
    let imap = lab.exchange(143, String::new());
    assert!(imap.starts_with("* OK") && imap.contains(&host), "{imap}");
    let pop = lab.exchange(110, String::new());
    assert!(pop.starts_with("+OK") && pop.contains(&host), "{pop}");
    let dovecot = lab.procs("dovecot");
    assert!(dovecot.len() >= 3, "dovecot master, its log, config and login processes: {dovecot:?}");
    a.expect("stop", 0);
    assert!(dovecot.iter().all(|p| !pid_alive(*p)) && !lab.cgroup.exists());
}

/// What conformance.rs needs: the command prefix that enters the lab node,
/// the -o parameters, and the lab to keep alive during the run.
pub type TesterSetup = (Vec<String>, Vec<(String, String)>, Box<dyn std::any::Any>);

/// ocf-tester's setup for this agent (used by conformance.rs): a lab node
/// with the web example, run inside its namespaces.
pub fn ocf_tester_setup() -> TesterSetup {
    assert!(need_lab(), "instance: ocf-tester needs the lab prerequisites");
    let lab = Lab::new(true);
    lab.setup_site(&lab.instance_file(""));
    let params = vec![
        ("name".to_string(), lab.name.clone()),
        ("hostname".to_string(), format!("{}.example.org", lab.name)),
        ("ip".to_string(), lab.ip.clone()),
        ("datadir".to_string(), lab.datadir.clone()),
    ];
    (lab.enter(), params, Box::new(lab))
}
