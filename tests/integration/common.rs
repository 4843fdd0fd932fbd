//! Helpers shared by the integration tests: running the built binary the way
//! Pacemaker does, prerequisites that fail loudly under CI, throwaway
//! network namespaces, and a packet capture inside a namespace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const HAVEN: &str = env!("CARGO_BIN_EXE_haven");

/// Whether CI asked for every prerequisite to be present.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A test that cannot run without `what`: under CI=true this is a failure,
/// elsewhere the test says loudly that it skipped.
pub fn missing(what: &str) -> bool {
    if in_ci() {
        panic!("prerequisite missing under CI=true: {what}");
    }
    eprintln!("SKIPPED: prerequisite missing: {what}");
    false
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Send `sig` to `pid`, a process this test started or found as its own;
/// one that is already gone is fine.
pub fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

/// Move the calling thread into the network namespace at `path` (setns
/// affects this thread only: run it on a thread of its own).
pub fn enter_netns(path: impl AsRef<Path>) {
    let f = std::fs::File::open(path.as_ref()).expect("open netns");
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
}

/// Root and the `ip` tool, for tests that build namespaces.
pub fn need_root() -> bool {
    if !is_root() {
        return missing("root (network namespaces)");
    }
    need_tool("ip")
}

/// An executable `tool` on the test's PATH (the `which` crate: execute bit
/// respected, as the agents look programs up).
pub fn which(tool: &str) -> Option<PathBuf> {
    which::which(tool).ok()
}

pub fn need_tool(tool: &str) -> bool {
    which(tool).is_some() || missing(&format!("the {tool} command"))
}

pub fn need_file(path: &str) -> bool {
    Path::new(path).exists() || missing(path)
}

/// A directory with one link per agent, named after it, pointing at the
/// built binary: the OCF layout Pacemaker executes. World-readable, since
/// ocf-tester runs meta-data as nobody.
pub fn agent_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("haven-it-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the agent link directory");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod agent dir");
        let out = Command::new(HAVEN).arg("agents").output().expect("run haven agents");
        for name in String::from_utf8_lossy(&out.stdout).lines() {
            let link = dir.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(HAVEN, &link).expect("link agent");
        }
        dir
    })
}

pub fn agent_path(agent: &str) -> PathBuf {
    agent_dir().join(agent)
}

/// The result of one agent action.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    fn from(o: Output) -> Outcome {
        Outcome {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// The `ocf-exit-reason:` line Pacemaker would show.
    pub fn reason(&self) -> Option<&str> {
        self.stderr.lines().find_map(|l| l.strip_prefix("ocf-exit-reason:"))
    }
}

/// One invocation as Pacemaker's executor makes it: a clean environment
/// with OCF_ROOT, OCF_RESOURCE_INSTANCE, OCF_RESKEY_* and CRM_meta_*.
pub struct Run<'a> {
    pub agent: &'a str,
    pub params: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    pub extra_env: Vec<(String, String)>,
    /// The command that enters the test's namespaces before the agent
    /// runs (`ip netns exec NS`, `nsenter --mount=...`), empty for none.
    pub enter: Vec<String>,
}

impl<'a> Run<'a> {
    pub fn new(agent: &'a str) -> Run<'a> {
        let mut meta = BTreeMap::new();
        meta.insert("timeout".into(), "20000".into());
        Run { agent, params: BTreeMap::new(), meta, extra_env: Vec::new(), enter: Vec::new() }
    }
    pub fn param(mut self, k: &str, v: &str) -> Self {
        self.params.insert(k.into(), v.into());
        self
    }
    pub fn meta(mut self, k: &str, v: &str) -> Self {
        self.meta.insert(k.into(), v.into());
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.extra_env.push((k.into(), v.into()));
        self
    }
    pub fn inside(self, ns: &Netns) -> Self {
        self.entering(vec!["ip".into(), "netns".into(), "exec".into(), ns.name.clone()])
    }
    pub fn in_mounts(self, ns: &MountNs) -> Self {
        self.entering(vec!["nsenter".into(), ns.enter_arg(), "--".into()])
    }
    /// Run the agent behind any namespace-entering command.
    pub fn entering(mut self, enter: Vec<String>) -> Self {
        self.enter = enter;
        self
    }

    fn command(&self, action: &str, interval_ms: u64) -> Command {
        let mut c = match self.enter.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(agent_path(self.agent));
                c
            }
            None => Command::new(agent_path(self.agent)),
        };
        c.arg(action);
        c.env_clear();
        c.env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        c.env("OCF_ROOT", "/usr/lib/ocf");
        c.env("OCF_RESOURCE_INSTANCE", format!("it_{}", self.agent));
        for (k, v) in &self.params {
            c.env(format!("OCF_RESKEY_{k}"), v);
        }
        for (k, v) in &self.meta {
            c.env(format!("OCF_RESKEY_CRM_meta_{k}"), v);
        }
        c.env("OCF_RESKEY_CRM_meta_interval", interval_ms.to_string());
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
        c.stdin(Stdio::null());
        c
    }

    pub fn action(&self, action: &str) -> Outcome {
        let interval = if action == "monitor" { 10_000 } else { 0 };
        Outcome::from(self.command(action, interval).output().expect("spawn agent"))
    }

    /// A recurring monitor at OCF_CHECK_LEVEL `depth`.
    pub fn monitor_at(&self, depth: u32) -> Outcome {
        let mut c = self.command("monitor", 10_000);
        c.env("OCF_CHECK_LEVEL", depth.to_string());
        Outcome::from(c.output().expect("spawn agent"))
    }

    /// monitor with interval 0: Pacemaker's probe.
    pub fn probe(&self) -> Outcome {
        Outcome::from(self.command("monitor", 0).output().expect("spawn agent"))
    }

    /// A monitor at `depth`, asserting its exit code.
    pub fn expect_monitor(&self, depth: u32, code: i32) -> Outcome {
        let o = self.monitor_at(depth);
        assert_eq!(
            o.code, code,
            "{} monitor depth {depth}: expected {code}, got {}\nstderr:\n{}",
            self.agent, o.code, o.stderr
        );
        o
    }

    /// Run and assert the exit code, showing stderr when it differs.
    pub fn expect(&self, action: &str, code: i32) -> Outcome {
        let o = self.action(action);
        assert_eq!(o.code, code, "{} {action}: expected {code}, got {}\nstderr:\n{}", self.agent, o.code, o.stderr);
        o
    }
}

/// Run a command, panicking with its stderr on failure.
pub fn sh(args: &[&str]) -> String {
    let o = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("spawn {args:?}: {e}"));
    assert!(o.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A network namespace that exists for one test and is deleted when the
/// test ends, even when it fails (Drop runs during unwinding).
pub struct Netns {
    pub name: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Netns {
    pub fn new() -> Netns {
        let name = format!("hvt-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NAME ARGS...`
    pub fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// Run a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip").args(["netns", "exec", &self.name]).args(args).output().expect("ip netns exec")
    }

    pub fn sysctl(&self, key: &str) -> String {
        let p = format!("/proc/sys/{}", key.replace('.', "/"));
        let o = self.exec(&["cat", &p]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    pub fn set_sysctl(&self, key: &str, value: &str) {
        let o = self.exec(&["sysctl", "-q", "-w", &format!("{key}={value}")]);
        assert!(o.status.success(), "sysctl {key}={value}: {}", String::from_utf8_lossy(&o.stderr));
    }

    /// `ip -o addr show` lines mentioning `ip`.
    pub fn addrs_of(&self, ip: &str) -> Vec<String> {
        self.ip(&["-o", "addr", "show"])
            .lines()
            .filter(|l| l.split_whitespace().any(|w| w.split('/').next() == Some(ip)))
            .map(|l| l.to_string())
            .collect()
    }

    pub fn all_addrs(&self) -> String {
        self.ip(&["-o", "addr", "show"])
    }

    pub fn mac(&self, ifname: &str) -> [u8; 6] {
        let out = self.ip(&["-o", "link", "show", ifname]);
        let mac = out.split("link/ether ").nth(1).and_then(|s| s.split_whitespace().next()).expect("mac in ip link");
        let mut b = [0u8; 6];
        for (i, p) in mac.split(':').enumerate() {
            b[i] = u8::from_str_radix(p, 16).expect("hex");
        }
        b
    }

    fn inode(&self) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/run/netns/{}", self.name)).ok().map(|m| m.ino())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // vip keeps per-namespace state under /run/haven; remove ours.
        if let Some(ino) = self.inode() {
            let _ = std::fs::remove_dir_all(format!("/run/haven/vip/net-{ino}"));
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// A veth pair `a_if` (in a) <-> `b_if` (in b), both up, with addresses.
pub fn veth(a: &Netns, a_if: &str, a_addrs: &[&str], b: &Netns, b_if: &str, b_addrs: &[&str]) {
    sh(&["ip", "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns", &b.name]);
    for (ns, ifname, addrs) in [(a, a_if, a_addrs), (b, b_if, b_addrs)] {
        for addr in addrs {
            let mut args = vec!["addr", "add", addr, "dev", ifname];
            if addr.contains(':') {
                args.push("nodad");
            }
            ns.ip(&args);
        }
        ns.ip(&["link", "set", ifname, "up"]);
    }
}

/// Two namespaces joined by veth: "node" (v0) and "peer" (v1), on
/// 198.51.100.0/24 and 2001:db8:1::/64.
pub struct Pair {
    pub node: Netns,
    pub peer: Netns,
}

impl Pair {
    pub fn new() -> Pair {
        let node = Netns::new();
        let peer = Netns::new();
        veth(
            &node,
            "v0",
            &["198.51.100.1/24", "2001:db8:1::1/64"],
            &peer,
            "v1",
            &["198.51.100.2/24", "2001:db8:1::2/64"],
        );
        Pair { node, peer }
    }
}

/// Frames captured on one interface inside a namespace, by a thread that
/// entered the namespace (setns affects only that thread).
pub struct Capture {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<Vec<Vec<u8>>>>,
}

impl Capture {
    pub fn start(ns: &Netns, ifname: &str) -> Capture {
        let ns_path = format!("/run/netns/{}", ns.name);
        let ifname = std::ffi::CString::new(ifname).expect("ifname");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            use nix::sys::socket::{self, AddressFamily, LinkAddr, SockFlag, SockProtocol, SockType};
            use std::os::fd::{AsFd, AsRawFd};
            enter_netns(&ns_path);
            let idx = nix::net::if_::if_nametoindex(ifname.as_c_str()).expect("interface for capture");
            // Every frame of the namespace; the ones of other interfaces are
            // dropped below by the interface index recvfrom reports.
            let fd = socket::socket(
                AddressFamily::Packet,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                SockProtocol::EthAll,
            )
            .expect("packet socket");
            let _ = ready_tx.send(());
            let mut frames = Vec::new();
            let started = Instant::now();
            let mut buf = vec![0u8; 2048];
            while !stop2.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
                let mut fds = [nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN)];
                if !matches!(nix::poll::poll(&mut fds, 50u16), Ok(n) if n > 0) {
                    continue;
                }
                if let Ok((n, Some(from))) = socket::recvfrom::<LinkAddr>(fd.as_raw_fd(), &mut buf) {
                    if n > 0 && from.ifindex() == idx as usize {
                        frames.push(buf[..n].to_vec());
                    }
                }
            }
            frames
        });
        ready_rx.recv_timeout(Duration::from_secs(5)).expect("capture ready");
        Capture { stop, handle: Some(handle) }
    }

    /// Stop after `linger` and return the frames.
    pub fn finish(mut self, linger: Duration) -> Vec<Vec<u8>> {
        std::thread::sleep(linger);
        self.stop.store(true, Ordering::SeqCst);
        self.handle.take().map(|h| h.join().expect("capture thread")).unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// An ARP frame as seen on the wire (Ethernet header included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpFrame {
    pub eth_src: [u8; 6],
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: [u8; 4],
    pub target_ip: [u8; 4],
}

pub fn arp_frames(frames: &[Vec<u8>]) -> Vec<ArpFrame> {
    frames
        .iter()
        .filter(|f| f.len() >= 42 && f[12..14] == [0x08, 0x06])
        .map(|f| ArpFrame {
            eth_src: f[6..12].try_into().unwrap(),
            op: u16::from_be_bytes([f[20], f[21]]),
            sender_mac: f[22..28].try_into().unwrap(),
            sender_ip: f[28..32].try_into().unwrap(),
            target_ip: f[38..42].try_into().unwrap(),
        })
        .collect()
}

/// An ICMPv6 neighbour advertisement as seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaFrame {
    pub eth_src: [u8; 6],
    pub src: std::net::Ipv6Addr,
    pub dst: std::net::Ipv6Addr,
    pub hop_limit: u8,
    pub target: std::net::Ipv6Addr,
    pub lladdr: Option<[u8; 6]>,
}

pub fn na_frames(frames: &[Vec<u8>]) -> Vec<NaFrame> {
    let ip6 = |b: &[u8]| std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap());
    frames
        .iter()
        .filter(|f| f.len() >= 14 + 40 + 24 && f[12..14] == [0x86, 0xdd] && f[20] == 58 && f[54] == 136)
        .map(|f| NaFrame {
            eth_src: f[6..12].try_into().unwrap(),
            src: ip6(&f[22..38]),
            dst: ip6(&f[38..54]),
            hop_limit: f[21],
            target: ip6(&f[62..78]),
            lladdr: (f.len() >= 86 && f[78] == 2).then(|| f[80..86].try_into().unwrap()),
        })
        .collect()
}

/// Poll `f` until it returns true or `limit` passes.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// A persistent private mount namespace for one test: agents and helper
/// processes enter it with nsenter, so nothing they mount is seen by the
/// host. Dropping it unmounts the handle; the namespace and every mount in
/// it disappear with its last process.
pub struct MountNs {
    pub handle: PathBuf,
    /// A directory for this test's mount points, removed on drop.
    pub scratch: PathBuf,
}

const MNT_DIR: &str = "/run/haven-tests/mnt";

impl MountNs {
    pub fn new() -> MountNs {
        std::fs::create_dir_all(MNT_DIR).expect("create the mount namespace directory");
        // The handle must live on a private mount, or the bind of the
        // namespace file would propagate (and fail).
        // Once per test process: tests run in parallel and must not stack
        // two bind mounts on the directory.
        static PRIVATE: std::sync::Once = std::sync::Once::new();
        PRIVATE.call_once(|| {
            let is_mount = Command::new("mountpoint").args(["-q", MNT_DIR]).status().is_ok_and(|s| s.success());
            if !is_mount {
                let _ = Command::new("mount").args(["--bind", MNT_DIR, MNT_DIR]).status();
                let _ = Command::new("mount").args(["--make-private", MNT_DIR]).status();
            }
        });
        let name = format!("{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        let handle = Path::new(MNT_DIR).join(name);
        std::fs::write(&handle, "").expect("create the namespace handle");
        sh(&["unshare", &format!("--mount={}", handle.display()), "--propagation", "private", "true"]);
        let scratch = Path::new("/srv/haven-tests").join(handle.file_name().unwrap_or_default());
        std::fs::create_dir_all(&scratch).expect("create the scratch directory");
        MountNs { handle, scratch }
    }

    /// A path for a mount point or source directory of this test.
    pub fn dir(&self, tag: &str) -> String {
        self.scratch.join(tag).display().to_string()
    }

    pub fn enter_arg(&self) -> String {
        format!("--mount={}", self.handle.display())
    }

    /// Run a command inside the namespace and wait for it.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("nsenter").arg(self.enter_arg()).arg("--").args(args).output().expect("nsenter")
    }

    /// Start a long-running command inside the namespace (its pid is the
    /// command's own: nsenter and env exec into it).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new("nsenter")
            .arg(self.enter_arg())
            .arg("--")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nsenter spawn")
    }

    /// The mount table inside the namespace.
    pub fn mountinfo(&self) -> String {
        String::from_utf8_lossy(&self.run(&["cat", "/proc/self/mountinfo"]).stdout).into_owned()
    }

    /// Mount points (field 5) inside the namespace under `prefix`.
    pub fn mounts_under(&self, prefix: &str) -> Vec<String> {
        self.mountinfo()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(prefix))
            .collect()
    }
}

impl Drop for MountNs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.handle).status();
        let _ = std::fs::remove_file(&self.handle);
        // Only plain directories remain here: every mount of the test lived
        // in its private namespace.
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// A filesystem image on a loop device, detached and deleted on drop.
pub struct LoopImage {
    pub file: PathBuf,
    pub device: String,
}

impl LoopImage {
    /// `mkfs` is the full mkfs argv prefix, e.g. ["mkfs.ext4", "-q"]; the
    /// image path is appended.
    pub fn new(size_mb: u32, mkfs: &[&str]) -> LoopImage {
        let dir = Path::new("/var/tmp/haven-tests");
        std::fs::create_dir_all(dir).expect("image dir");
        let file = dir.join(format!("img-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst)));
        let f = std::fs::File::create(&file).expect("create image");
        f.set_len(u64::from(size_mb) << 20).expect("size image");
        let mut argv = mkfs.to_vec();
        let fp = file.display().to_string();
        argv.push(&fp);
        sh(&argv);
        let device = sh(&["losetup", "--find", "--show", &fp]).trim().to_string();
        LoopImage { file, device }
    }
}

impl Drop for LoopImage {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
        let _ = std::fs::remove_file(&self.file);
    }
}

/// A child process ended when the test ends, by its own pid.
pub struct Reaped(pub std::process::Child);

impl Reaped {
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }
    pub fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        // SIGCONT first: a stopped child would not die of SIGKILL until continued.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), nix::sys::signal::Signal::SIGCONT);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
