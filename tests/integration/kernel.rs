//! Kernel-true tests: what this host's kernel lacks (IPVS, NFS client and
//! server, OCFS2, GFS2, quota v2, ipip tunnels, cgroup2's memory, pids and
//! cpu controllers) tested on Debian's own 6.1 kernel in a
//! QEMU guest (script/vm). On the host, `kernel_tests_in_the_guest` boots
//! the guest once and runs this test binary inside it, filtered to
//! `kernel::`; inside (HAVEN_VM=1, set by script/vm) those tests run
//! for real. On the host they return at once: the driver runs them.

use crate::common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn in_guest() -> bool {
    std::env::var("HAVEN_VM").is_ok_and(|v| v == "1")
}

/// What runs in the guest: this module's tests.
pub const GUEST_TESTS: &[&str] = &["kernel::"];

/// Boot the guest once and run every `kernel::guest::` test inside it.
#[test]
fn kernel_tests_in_the_guest() {
    if in_guest() || !need_root() || !need_tool("qemu-system-x86_64") {
        return;
    }
    let vm = Path::new(env!("CARGO_MANIFEST_DIR")).join("script/vm");
    let exe = std::env::current_exe().expect("the test binary's path");
    let started = Instant::now();
    let status = Command::new(&vm)
        .args(["--timeout", "1500", "--"])
        .arg(&exe)
        .args(GUEST_TESTS)
        .args(["--test-threads=1", "--nocapture"])
        .status()
        .expect("run script/vm");
    eprintln!("kernel-true tests in the guest: {:.0} s in all", started.elapsed().as_secs_f64());
    assert!(status.success(), "the kernel tests in the guest failed ({status}); output above");
}

/// Time one phase and print it (the report's figures).
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let v = f();
    println!("kernel test {what}: {:.1} s", t.elapsed().as_secs_f64());
    v
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("spawn {args:?}: {e}"))
}

fn modprobe(modules: &[&str]) {
    for m in modules {
        sh(&["modprobe", m]);
    }
}

/// The lab on the guest's kernel (IPVS + kernel NFS under Pacemaker).
mod lab;

mod guest {
    use super::*;

    /// Inside the guest only; on the host the driver runs these.
    fn here() -> bool {
        in_guest()
    }

    // ---- 3. local and cluster filesystems on loop devices ---------------

    fn fs_cycle(fstype: &str, mkfs: &[&str], clone_ok: bool) {
        // mkfs on the loop device, not the image: mkfs.ocfs2 opens with
        // O_DIRECT, which the tmpfs under the image refuses.
        let img = LoopImage::new(320, &["true"]);
        let mut argv = mkfs.to_vec();
        argv.push(&img.device);
        timed(&format!("{fstype} mkfs"), || sh(&argv));
        let ns = MountNs::new();
        let dir = ns.dir(fstype);
        let agent = || {
            Run::new("filesystem")
                .in_mounts(&ns)
                .param("device", &img.device)
                .param("directory", &dir)
                .param("fstype", fstype)
                .param("create_directory", "true")
        };
        let r = agent();
        r.expect("validate-all", 0);
        let clone = agent().meta("clone_max", "2").meta("clone_node_max", "1").action("validate-all");
        if clone_ok {
            assert_eq!(clone.code, 0, "{fstype} clone validate-all: {}", clone.stderr);
        } else {
            assert_eq!(clone.code, 6, "{fstype} must refuse cloning: {}", clone.stderr);
        }
        r.expect("start", 0);
        assert!(ns.mounts_under(&dir).contains(&dir), "{fstype} not mounted: {}", ns.mountinfo());
        for depth in [0, 10, 20] {
            r.expect_monitor(depth, 0);
        }
        // A holder is ended at stop.
        let mut holder = Reaped(ns.spawn(&["sh", "-c", &format!("cd {dir} && exec sleep 600")]));
        std::thread::sleep(Duration::from_millis(500));
        r.expect("stop", 0);
        assert!(!holder.alive(), "the holder of {fstype} survived stop");
        r.expect_monitor(0, 7);
        r.expect("stop", 0);
    }

    #[test]
    fn local_and_cluster_filesystems_on_loop_devices() {
        if !here() {
            return;
        }
        // ext4, xfs, ocfs2 and gfs2 are loaded by the agent itself.
        modprobe(&["loop"]);
        timed("ext4 start/monitor 0,10,20/stop", || fs_cycle("ext4", &["mkfs.ext4", "-q", "-F"], false));
        timed("xfs start/monitor 0,10,20/stop", || fs_cycle("xfs", &["mkfs.xfs", "-q", "-f"], false));
        timed("ocfs2 (local) start/monitor 0,10,20/stop + clone", || {
            fs_cycle("ocfs2", &["mkfs.ocfs2", "-q", "-F", "-M", "local", "-N", "2", "-J", "size=4M"], true)
        });
        timed("gfs2 (lock_nolock) start/monitor 0,10,20/stop + clone", || {
            fs_cycle("gfs2", &["mkfs.gfs2", "-O", "-q", "-p", "lock_nolock", "-j", "2", "-J", "8"], true)
        });
    }

    // ---- 4. ext4 quotas ----------------------------------------------------

    #[test]
    fn ext4_quota_is_switched_on_and_enforced() {
        if !here() {
            return;
        }
        modprobe(&["loop", "ext4", "quota_v2"]);
        let t = Instant::now();
        let img = LoopImage::new(64, &["mkfs.ext4", "-q", "-F"]);
        let ns = MountNs::new();
        let dir = ns.dir("quota");
        std::fs::create_dir_all(&dir).unwrap();
        // The quota files, as an operator creates them once (quotacheck -c).
        let prep = ns.run(&[
            "sh",
            "-c",
            &format!(
                "mount -o usrquota,grpquota {dev} {dir} && quotacheck -cug {dir} && mkdir {dir}/nobody && \
                 chown nobody {dir}/nobody && umount {dir}",
                dev = img.device
            ),
        ]);
        assert!(prep.status.success(), "quota preparation: {}", String::from_utf8_lossy(&prep.stderr));
        let r = Run::new("filesystem")
            .in_mounts(&ns)
            .param("device", &img.device)
            .param("directory", &dir)
            .param("fstype", "ext4")
            .param("options", "usrquota,grpquota");
        r.expect("start", 0);
        let on = ns.run(&["quotaon", "-p", &dir]);
        let state = String::from_utf8_lossy(&on.stdout).into_owned();
        assert!(
            state.contains("user quota on") && state.contains("group quota on"),
            "quotaon after mount did not run: {state}"
        );
        let set = ns.run(&["setquota", "-u", "nobody", "100", "200", "0", "0", &dir]);
        assert!(set.status.success(), "setquota: {}", String::from_utf8_lossy(&set.stderr));
        let write = ns.run(&[
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "dd",
            "if=/dev/zero",
            &format!("of={dir}/nobody/big"),
            "bs=1k",
            "count=1000",
            "conv=fsync",
        ]);
        let err = String::from_utf8_lossy(&write.stderr).into_owned();
        assert!(!write.status.success() && err.contains("quota"), "the quota was not enforced: {err}");
        r.expect("stop", 0);
        println!("kernel test ext4 quota on + enforced: {:.1} s", t.elapsed().as_secs_f64());
    }

    // ---- 5. ipip on nftables ------------------------------------------------

    /// dr.rs's end-to-end scenario with ipip real servers: the host's
    /// kernel has no ipip module, Debian's has.
    #[test]
    fn ipip_on_nftables_tunnels_to_the_real_servers() {
        if !here() {
            return;
        }
        // Loaded first: each new namespace then gets its fallback tunl0,
        // which decapsulates on the real servers.
        modprobe(&["ipip"]);
        timed("ipip on nftables (dr.rs scenario) in all", || crate::dr::direct_routing("ipip"));
    }

    // ---- 6. an instance service's cgroup limits ------------------------------

    /// memory_max, pids_max and cpu_weight reach the kernel's files of the
    /// service's cgroup (the host's cgroup2 lacks these controllers; the
    /// guest's root has them all), the service runs in that cgroup, and
    /// stop removes it.
    #[test]
    fn instance_cgroup_limits_reach_the_kernel() {
        if !here() {
            return;
        }
        assert!(crate::instance::need_lab(), "the instance lab's prerequisites in the guest");
        let t = Instant::now();
        let lab = crate::instance::Lab::new(true);
        let root = lab.cgroup.ancestors().nth(3).expect("the cgroup2 root").to_path_buf();
        let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        for c in ["memory", "pids", "cpu"] {
            assert!(controllers.split_whitespace().any(|x| x == c), "{c} missing in {}: {controllers}", root.display());
        }
        let file = "[[service]]\nname = \"svc\"\nargv = [\"/usr/bin/sleep\", \"600\"]\n\
                    memory_max = \"48M\"\npids_max = 37\ncpu_weight = 250\n";
        lab.populate(&[("instance.toml", file)]);
        let a = lab.agent();
        a.expect("start", 0);
        let svc = lab.cgroup.join("svc");
        let read = |f: &str| std::fs::read_to_string(svc.join(f)).unwrap_or_else(|e| format!("<{f}: {e}>"));
        assert_eq!(read("memory.max").trim(), (48u64 << 20).to_string(), "memory.max");
        assert_eq!(read("pids.max").trim(), "37", "pids.max");
        assert_eq!(read("cpu.weight").trim(), "250", "cpu.weight");
        let procs = lab.procs("svc");
        assert!(!procs.is_empty(), "no process in {}", svc.display());
        let rel = format!("0::/{}", svc.strip_prefix(&root).expect("below the root").display());
        for pid in &procs {
            let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            assert_eq!(cg.trim(), rel, "process {pid} is elsewhere");
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            assert_eq!(comm.trim(), "sleep", "process {pid} in the service's cgroup");
        }
        a.expect("monitor", 0);
        a.expect("stop", 0);
        assert!(!svc.exists(), "stop left {}", svc.display());
        assert!(!lab.cgroup.exists(), "stop left {}", lab.cgroup.display());
        println!(
            "kernel test instance cgroup limits (memory.max, pids.max, cpu.weight) applied and removed: {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }

    // ---- 2. NFSv3 and NFSv4 with a kernel nfsd in another namespace -------

    const NFS_SERVER: &str = "198.51.100.1";
    const NFS_CLIENT: &str = "198.51.100.2";
    /// The NFSv4 pseudo-root (fsid=0) and an NFSv3 export (fsid=3), each
    /// a tmpfs of its own.
    const EXPORT: &str = "/srv/haven-nfs-export";
    const EXPORT_V3: &str = "/srv/haven-nfs-v3";

    struct NfsServer {
        ns: Netns,
        client: Netns,
        daemons: Vec<Reaped>,
    }

    impl NfsServer {
        fn start() -> NfsServer {
            modprobe(&["nfsd", "nfs", "nfsv3", "nfsv4"]);
            let ns = Netns::new();
            let client = Netns::new();
            veth(&ns, "s0", &[&format!("{NFS_SERVER}/24")], &client, "c0", &[&format!("{NFS_CLIENT}/24")]);
            for dir in [EXPORT, EXPORT_V3] {
                std::fs::create_dir_all(dir).unwrap();
                if !run(&["mountpoint", "-q", dir]).status.success() {
                    sh(&["mount", "-t", "tmpfs", "-o", "size=64m", "haven-nfs", dir]);
                }
            }
            let rpcbind = Command::new("ip").args(["netns", "exec", &ns.name, "rpcbind", "-f", "-w"]).spawn().unwrap();
            let mut s = NfsServer { ns, client, daemons: vec![Reaped(rpcbind)] };
            std::thread::sleep(Duration::from_millis(500));
            let o = s.ns.exec(&[
                "exportfs",
                "-o",
                "rw,sync,no_root_squash,no_subtree_check,insecure,fsid=0",
                &format!("198.51.100.0/24:{EXPORT}"),
            ]);
            assert!(o.status.success(), "exportfs: {}", String::from_utf8_lossy(&o.stderr));
            let o = s.ns.exec(&[
                "exportfs",
                "-o",
                "rw,sync,no_root_squash,no_subtree_check,insecure,fsid=3",
                &format!("198.51.100.0/24:{EXPORT_V3}"),
            ]);
            assert!(o.status.success(), "exportfs: {}", String::from_utf8_lossy(&o.stderr));
            // mountd answers MNT only where it sees the nfsd filesystem
            // mounted (its own mount namespace, from `ip netns exec`).
            let mountd = Command::new("ip")
                .args(["netns", "exec", &s.ns.name, "sh", "-c"])
                .arg("mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd; exec rpc.mountd -F -p 20048")
                .spawn()
                .unwrap();
            s.daemons.push(Reaped(mountd));
            s.threads(4);
            s
        }

        /// The server's nfsd control filesystem, mounted from inside its
        /// network namespace but in the guest's own mount namespace: nfsd
        /// shuts down when that mount goes, so it must outlive any one
        /// `ip netns exec` (whose private mount namespace dies with it).
        fn nfsd_dir(&self) -> String {
            format!("/run/haven-nfsd-{}", self.ns.name)
        }

        /// N nfsd threads in the server's namespace (0: the server dies;
        /// what `rpc.nfsd N` does), with a short NFSv4 grace period so the
        /// test does not wait 90 s.
        fn threads(&self, n: u32) {
            let script = format!(
                "set -e; d={d}; mkdir -p $d; mountpoint -q $d || mount -t nfsd nfsd $d; \
                 echo 10 > $d/nfsv4gracetime 2>/dev/null || :; echo 10 > $d/nfsv4leasetime 2>/dev/null || :; \
                 echo {n} > $d/threads",
                d = self.nfsd_dir()
            );
            let o = Command::new("nsenter")
                .arg(format!("--net=/run/netns/{}", self.ns.name))
                .args(["--", "sh", "-c", &script])
                .output()
                .unwrap();
            assert!(o.status.success(), "nfsd threads {n}: {}", String::from_utf8_lossy(&o.stderr));
        }

        fn link(&self, up: bool) {
            self.ns.ip(&["link", "set", "s0", if up { "up" } else { "down" }]);
        }
    }

    impl Drop for NfsServer {
        fn drop(&mut self) {
            let d = self.nfsd_dir();
            let _ = std::fs::write(format!("{d}/threads"), "0");
            let _ = run(&["umount", &d]);
            let _ = std::fs::remove_dir(&d);
            let _ = self.ns.exec(&["exportfs", "-ua"]);
            self.daemons.clear();
            let _ = run(&["umount", "-l", EXPORT]);
            let _ = run(&["umount", "-l", EXPORT_V3]);
        }
    }

    /// The filesystem agent in the client's network namespace and a private
    /// mount namespace.
    fn nfs_agent<'a>(srv: &NfsServer, ns: &MountNs, fstype: &'a str, device: &str, dir: &str) -> Run<'a> {
        // Hard mounts (the default, what operators run). NFSv3 names its
        // ports: the kernel nfsd of a non-initial namespace does not get
        // registered with rpcbind in this guest (its kernel threads resolve
        // rpcbind's socket in the initramfs root), so there is nothing to
        // query.
        let opts = if fstype == "nfs" {
            "vers=3,proto=tcp,port=2049,mountport=20048,mountproto=tcp,nolock"
        } else {
            "vers=4.2"
        };
        Run::new("filesystem")
            .entering(vec![
                "nsenter".into(),
                ns.enter_arg(),
                format!("--net=/run/netns/{}", srv.client.name),
                "--".into(),
            ])
            .param("device", device)
            .param("directory", dir)
            .param("fstype", fstype)
            .param("options", opts)
            .param("create_directory", "true")
            .meta("timeout", "30000")
    }

    /// Every depth answers within the action timeout; the depths that can
    /// not reach the server say so.
    fn monitors_on_dead_server(r: &Run, how: &str, fstype: &str) {
        for depth in [0, 10, 20] {
            let t = Instant::now();
            let o = r.monitor_at(depth);
            let secs = t.elapsed().as_secs_f64();
            println!("kernel test {fstype} dead server ({how}) monitor depth {depth}: exit {} in {secs:.1} s", o.code);
            assert!(secs < 40.0, "monitor depth {depth} took {secs:.1} s with a 30 s timeout");
            assert_ne!(o.code, 0, "monitor depth {depth} said success with a dead server ({how})");
        }
    }

    fn nfs_round(fstype: &str, device: &str) {
        let srv = NfsServer::start();
        let ns = MountNs::new();
        let dir = ns.dir(fstype);
        let r = nfs_agent(&srv, &ns, fstype, device, &dir);
        // Start, monitor at every depth, stop with a holder.
        timed(&format!("{fstype} start"), || r.expect("start", 0));
        for depth in [0, 10, 20] {
            timed(&format!("{fstype} monitor depth {depth}"), || r.expect_monitor(depth, 0));
        }
        let mut holder = Reaped(ns.spawn(&["sh", "-c", &format!("cd {dir} && exec sleep 600")]));
        std::thread::sleep(Duration::from_millis(500));
        timed(&format!("{fstype} stop with a holder"), || r.expect("stop", 0));
        assert!(!holder.alive(), "the holder of the {fstype} mount survived stop");

        // The server's link goes down.
        r.expect("start", 0);
        srv.link(false);
        monitors_on_dead_server(&r, "link down", fstype);
        let mut holder = Reaped(ns.spawn(&["sh", "-c", &format!("cd {dir} && exec sleep 600")]));
        std::thread::sleep(Duration::from_millis(500));
        let t = Instant::now();
        let o = r.action("stop");
        let secs = t.elapsed().as_secs_f64();
        println!("kernel test {fstype} dead server (link down) stop: exit {} in {secs:.1} s", o.code);
        assert_eq!(o.code, 0, "stop of a dead {fstype} mount failed: {}", o.stderr);
        assert!(secs < 40.0, "stop of a dead mount took {secs:.1} s with a 30 s timeout");
        assert!(!holder.alive(), "the holder of the dead mount survived stop");
        assert!(!ns.mounts_under(&dir).contains(&dir), "the dead mount is still there");

        // The server comes back; then nfsd stops (rpc.nfsd 0).
        srv.link(true);
        timed(&format!("{fstype} start after the server came back"), || r.expect("start", 0));
        r.expect_monitor(20, 0);
        srv.threads(0);
        monitors_on_dead_server(&r, "nfsd threads 0", fstype);
        let t = Instant::now();
        let o = r.action("stop");
        println!(
            "kernel test {fstype} dead server (nfsd threads 0) stop: exit {} in {:.1} s",
            o.code,
            t.elapsed().as_secs_f64()
        );
        assert_eq!(o.code, 0, "stop with nfsd stopped: {}", o.stderr);
        srv.threads(4);
        timed(&format!("{fstype} start with nfsd back"), || r.expect("start", 0));
        r.expect("stop", 0);
    }

    #[test]
    fn nfs_v3_and_v4_with_a_dying_server() {
        if !here() {
            return;
        }
        timed("NFSv3 in all", || nfs_round("nfs", &format!("{NFS_SERVER}:{EXPORT_V3}")));
        timed("NFSv4 in all", || nfs_round("nfs4", &format!("{NFS_SERVER}:/")));
    }
}

/// 1. The director on IPVS: gate, masq and ipip services in front of three
///    real servers in namespaces, a fallback, quiescent removal, the table
///    read back with ipvsadm and by monitor, and a bystander service.
mod ipvs {
    use super::*;
    use std::io::Read;
    use std::net::TcpStream;

    const VIP: &str = "198.51.100.10";
    const BYSTANDER: &str = "198.51.100.99:80";

    /// A real server's service, served from a thread of this test that
    /// entered the server's namespace: "hello from NAME" on ports 80, 81
    /// and 82 until stopped (its listeners close: connections are refused).
    struct Hello {
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Hello {
        fn start(ns: &Netns, name: &str) -> Hello {
            use std::sync::atomic::Ordering;
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (path, name, flag) = (format!("/run/netns/{}", ns.name), name.to_string(), stop.clone());
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let thread = std::thread::spawn(move || {
                let f = std::fs::File::open(&path).expect("open the real server's namespace");
                nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("enter the real server's namespace");
                let listeners: Vec<std::net::TcpListener> = [80, 81, 82]
                    .iter()
                    .map(|p| {
                        let l = std::net::TcpListener::bind(("0.0.0.0", *p)).expect("listen");
                        l.set_nonblocking(true).expect("nonblocking");
                        l
                    })
                    .collect();
                let _ = ready_tx.send(());
                while !flag.load(Ordering::SeqCst) {
                    let mut idle = true;
                    for l in &listeners {
                        if let Ok((mut c, _)) = l.accept() {
                            idle = false;
                            let _ = c.set_nonblocking(false);
                            let _ = std::io::Write::write_all(&mut c, format!("hello from {name}\n").as_bytes());
                        }
                    }
                    if idle {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            });
            ready_rx.recv_timeout(Duration::from_secs(30)).expect("the real server listens");
            Hello { stop, thread: Some(thread) }
        }
    }

    impl Drop for Hello {
        fn drop(&mut self) {
            self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn config() -> String {
        let reals = |port: u16, method: &str| {
            (11..=13).map(|i| format!("\treal = 198.51.100.{i}:{port} {method}\n")).collect::<String>()
        };
        format!(
            "checkinterval = 1\nchecktimeout = 2\nfailurecount = 2\nquiescent = no\n\
             virtual = {VIP}:80\n{}\tfallback = 198.51.100.14:80 gate\n\tchecktype = connect\n\tscheduler = rr\n\
             virtual = {VIP}:81\n{}\tchecktype = connect\n\tscheduler = rr\n\tquiescent = yes\n\
             virtual = {VIP}:82\n{}\tchecktype = connect\n\tscheduler = wrr\n",
            reals(80, "gate"),
            reals(81, "masq"),
            reals(82, "ipip")
        )
    }

    /// `ipvsadm -Ln` reduced to "TCP vip sched" and "-> real Fwd weight"
    /// lines, without the bystander.
    fn table(director: &Netns) -> Vec<String> {
        let out = String::from_utf8_lossy(&director.exec(&["ipvsadm", "-Ln"]).stdout).into_owned();
        let mut lines = Vec::new();
        let mut skip = false;
        for l in out.lines() {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                ["TCP", addr, sched, ..] => {
                    skip = *addr == BYSTANDER;
                    if !skip {
                        lines.push(format!("TCP {addr} {sched}"));
                    }
                }
                ["->", addr, fwd, weight, ..] if !skip && *addr != "RemoteAddress:Port" => {
                    lines.push(format!("-> {addr} {fwd} {weight}"))
                }
                _ => {}
            }
        }
        lines
    }

    fn expected(alive: &[u8], quiescent_dead: &[u8]) -> Vec<String> {
        let mut v = Vec::new();
        let gate: Vec<u8> = if alive.is_empty() { vec![14] } else { alive.to_vec() };
        v.push(format!("TCP {VIP}:80 rr"));
        v.extend(gate.iter().map(|i| format!("-> 198.51.100.{i}:80 Route 1")));
        v.push(format!("TCP {VIP}:81 rr"));
        for i in 11..=13u8 {
            if alive.contains(&i) {
                v.push(format!("-> 198.51.100.{i}:81 Masq 1"));
            } else if quiescent_dead.contains(&i) {
                v.push(format!("-> 198.51.100.{i}:81 Masq 0"));
            }
        }
        v.push(format!("TCP {VIP}:82 wrr"));
        v.extend(alive.iter().map(|i| format!("-> 198.51.100.{i}:82 Tunnel 1")));
        v
    }

    fn status(director: &Netns) -> String {
        let o = director.exec(&[HAVEN, "director", "status", "--table", "hvkernel"]);
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    }

    /// One request from inside `ns`: the answering real server's name.
    fn ask(ns: &Netns, port: u16) -> Option<String> {
        let path = format!("/run/netns/{}", ns.name);
        std::thread::spawn(move || {
            let f = std::fs::File::open(&path).ok()?;
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
            let addr = format!("{VIP}:{port}").parse().ok()?;
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
            let mut text = String::new();
            s.read_to_string(&mut text).ok()?;
            text.split_whitespace().last().map(str::to_string)
        })
        .join()
        .ok()
        .flatten()
    }

    /// Answers per real server for `n` requests (None: failed requests).
    fn spread(ns: &Netns, port: u16, n: usize) -> std::collections::BTreeMap<Option<String>, usize> {
        let mut m = std::collections::BTreeMap::new();
        for _ in 0..n {
            *m.entry(ask(ns, port)).or_insert(0) += 1;
        }
        m
    }

    struct Lab {
        _lan: Netns,
        director: Netns,
        reals: Vec<Netns>,
        lan_client: Netns,
        far_client: Netns,
        servers: Vec<Option<Hello>>,
        dir: std::path::PathBuf,
    }

    impl Lab {
        fn new() -> Lab {
            modprobe(&["ip_vs", "ip_vs_rr", "ip_vs_wrr", "ipip"]);
            let lan = Netns::new();
            lan.ip(&["link", "add", "br0", "type", "bridge"]);
            lan.ip(&["link", "set", "br0", "up"]);
            let join = |ns: &Netns, port: &str, addr: &str| {
                veth(&lan, port, &[], ns, "e0", &[addr]);
                lan.ip(&["link", "set", port, "master", "br0"]);
            };
            let director = Netns::new();
            join(&director, "p0", "198.51.100.1/24");
            let far_client = Netns::new();
            veth(&director, "w0", &["203.0.113.1/24"], &far_client, "w1", &["203.0.113.100/24"]);
            far_client.ip(&["route", "add", "default", "via", "203.0.113.1"]);
            director.set_sysctl("net.ipv4.ip_forward", "1");
            let lan_client = Netns::new();
            join(&lan_client, "pc", "198.51.100.100/24");
            let dir = std::env::temp_dir().join(format!("haven-kernel-ipvs-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut reals = Vec::new();
            for i in 11..=14u8 {
                let rs = Netns::new();
                join(&rs, &format!("p{i}"), &format!("198.51.100.{i}/24"));
                rs.ip(&["route", "add", "default", "via", "198.51.100.1"]);
                rs.ip(&["link", "set", "tunl0", "up"]);
                for k in
                    ["net.ipv4.conf.all.rp_filter", "net.ipv4.conf.tunl0.rp_filter", "net.ipv4.conf.default.rp_filter"]
                {
                    rs.set_sysctl(k, "0");
                }
                reals.push(rs);
            }
            let mut lab = Lab { _lan: lan, director, reals, lan_client, far_client, servers: Vec::new(), dir };
            for i in 0..4 {
                let hello = Hello::start(&lab.reals[i], &format!("rs{}", i + 1));
                lab.servers.push(Some(hello));
            }
            lab
        }

        fn kill(&mut self, i: usize) {
            self.servers[i] = None;
        }
    }

    impl Drop for Lab {
        fn drop(&mut self) {
            let state = "/run/haven/director/hvkernel";
            if let Some(pid) = std::fs::read_to_string(format!("{state}/pid")).ok().and_then(|p| p.trim().parse().ok())
            {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn director_on_ipvs_gate_masq_ipip() {
        if !in_guest() {
            return;
        }
        let t0 = Instant::now();
        let mut lab = Lab::new();
        let vips: Vec<Run> = [0, 1, 2, 3]
            .iter()
            .map(|i| Run::new("vip").inside(&lab.reals[*i]).param("ip", VIP).param("lvs_realserver", "true"))
            .collect();
        for v in &vips {
            v.expect("start", 0);
        }
        let vip = Run::new("vip").inside(&lab.director).param("ip", VIP).param("nic", "e0").param("arp_bg", "false");
        vip.expect("start", 0);
        assert!(lab.director.exec(&["ipvsadm", "-A", "-t", BYSTANDER, "-s", "rr"]).status.success());
        let cf = lab.dir.join("ldirectord.cf");
        std::fs::write(&cf, config()).unwrap();
        let d = Run::new("director")
            .inside(&lab.director)
            .param("configfile", cf.to_str().unwrap())
            .param("table", "hvkernel")
            .param("backend", "ipvs");
        timed("IPVS director start", || d.expect("start", 0));
        let all = expected(&[11, 12, 13], &[]);
        assert!(
            wait_for(Duration::from_secs(60), || table(&lab.director) == all),
            "ipvsadm -Ln: {:?}\nwant {all:?}\n{}",
            table(&lab.director),
            status(&lab.director)
        );
        d.expect_monitor(0, 0);

        // Requests spread over the three real servers, per method.
        for (port, client) in [(80, &lab.lan_client), (81, &lab.far_client), (82, &lab.lan_client)] {
            let s = spread(client, port, 12);
            println!("kernel test IPVS spread on port {port}: {s:?}");
            assert!(!s.contains_key(&None), "failed requests on port {port}: {s:?}");
            for rs in ["rs1", "rs2", "rs3"] {
                assert!(s.get(&Some(rs.to_string())).is_some_and(|n| *n > 0), "{rs} got nothing on {port}: {s:?}");
            }
        }

        // A real server dies: gone from gate/ipip, weight 0 on the
        // quiescent masq service, within checkinterval x failurecount +
        // checktimeout (1 x 2 + 2 = 4 s; bounded generously under TCG).
        let t = Instant::now();
        lab.kill(1);
        let want = expected(&[11, 13], &[12]);
        assert!(
            wait_for(Duration::from_secs(60), || table(&lab.director) == want),
            "after rs2 died: {:?}\nwant {want:?}",
            table(&lab.director)
        );
        println!(
            "kernel test IPVS dead real server removed from the kernel table in {:.1} s (budget 4 s)",
            t.elapsed().as_secs_f64()
        );
        for (port, client) in [(80, &lab.lan_client), (81, &lab.far_client), (82, &lab.lan_client)] {
            let s = spread(client, port, 8);
            assert!(
                !s.contains_key(&None) && !s.contains_key(&Some("rs2".into())),
                "port {port} after rs2 died: {s:?}"
            );
        }

        // All down: the gate service falls back to rs4.
        lab.kill(0);
        lab.kill(2);
        let want = expected(&[], &[11, 12, 13]);
        assert!(
            wait_for(Duration::from_secs(60), || table(&lab.director) == want),
            "all down: {:?}\nwant {want:?}",
            table(&lab.director)
        );
        assert_eq!(ask(&lab.lan_client, 80).as_deref(), Some("rs4"), "the fallback did not answer");

        // A service deleted behind the director's back: monitor fails.
        assert!(lab.director.exec(&["ipvsadm", "-D", "-t", &format!("{VIP}:82")]).status.success());
        let t = Instant::now();
        assert!(
            wait_for(Duration::from_secs(40), || d.monitor_at(0).code != 0),
            "monitor still succeeds with {VIP}:82 deleted from the kernel"
        );
        println!("kernel test IPVS drift seen by monitor in {:.1} s", t.elapsed().as_secs_f64());

        // Stop removes exactly the director's services.
        timed("IPVS director stop", || d.expect("stop", 0));
        let left = String::from_utf8_lossy(&lab.director.exec(&["ipvsadm", "-Ln"]).stdout).into_owned();
        assert!(table(&lab.director).is_empty(), "stop left services: {left}");
        assert!(left.contains(BYSTANDER), "stop removed the bystander service: {left}");
        vip.expect("stop", 0);
        for v in &vips {
            v.expect("stop", 0);
        }
        println!("kernel test IPVS director in all: {:.1} s", t0.elapsed().as_secs_f64());
    }
}
