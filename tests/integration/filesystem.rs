//! ocf:haven:filesystem against real mounts: loop devices with ext4 and
//! xfs, tmpfs, bind mounts and a FUSE filesystem, all inside a private
//! mount namespace per test.

use crate::common::*;
use std::time::{Duration, Instant};

fn need_fs_tools() -> bool {
    need_root() && need_tool("nsenter") && need_tool("unshare") && need_tool("losetup")
}

fn fs<'a>(ns: &MountNs, device: &str, dir: &str, fstype: &str) -> Run<'a> {
    Run::new("filesystem").in_mounts(ns).param("device", device).param("directory", dir).param("fstype", fstype)
}

fn full_cycle(r: &Run, ns: &MountNs, dir: &str) {
    assert_eq!(r.probe().code, 7, "probe before start");
    r.expect("start", 0);
    assert_eq!(ns.mounts_under(dir), vec![dir.to_string()], "mounted once");
    for depth in [0, 10, 20] {
        let o = r.monitor_at(depth);
        assert_eq!(o.code, 0, "monitor depth {depth}: {}", o.stderr);
    }
    assert_eq!(r.probe().code, 0);
    r.expect("start", 0); // idempotent
    assert_eq!(ns.mounts_under(dir).len(), 1);
    r.expect("stop", 0);
    assert!(ns.mounts_under(dir).is_empty(), "unmounted");
    r.expect("monitor", 7);
    r.expect("stop", 0); // idempotent
}

#[test]
fn ext4_on_a_loop_device_cycles() {
    if !need_fs_tools() || !need_tool("mkfs.ext4") {
        return;
    }
    let ns = MountNs::new();
    let img = LoopImage::new(32, &["mkfs.ext4", "-q"]);
    let dir = ns.dir("ext4");
    full_cycle(&fs(&ns, &img.device, &dir, "ext4"), &ns, &dir);
}

#[test]
fn xfs_on_a_loop_device_cycles() {
    if !need_fs_tools() || !need_tool("mkfs.xfs") {
        return;
    }
    let ns = MountNs::new();
    let img = LoopImage::new(320, &["mkfs.xfs", "-q"]);
    let dir = ns.dir("xfs");
    full_cycle(&fs(&ns, &img.device, &dir, "xfs").param("run_fsck", "no"), &ns, &dir);
}

#[test]
fn tmpfs_and_bind_mounts_cycle() {
    if !need_fs_tools() {
        return;
    }
    let ns = MountNs::new();
    let dir = ns.dir("tmpfs");
    full_cycle(&fs(&ns, "scratch", &dir, "tmpfs").param("options", "size=8m"), &ns, &dir);
    let src = ns.dir("bind-src");
    std::fs::create_dir_all(&src).unwrap();
    let dst = ns.dir("bind-dst");
    full_cycle(&fs(&ns, &src, &dst, "none").param("options", "bind"), &ns, &dst);
}

#[test]
fn label_and_uuid_devices() {
    if !need_fs_tools() || !need_tool("mkfs.ext4") || !need_tool("blkid") {
        return;
    }
    let ns = MountNs::new();
    let label = format!("hvt{}", std::process::id() % 100_000);
    let img = LoopImage::new(32, &["mkfs.ext4", "-q", "-L", &label]);
    let dir = ns.dir("label");
    full_cycle(&fs(&ns, &format!("LABEL={label}"), &dir, "ext4"), &ns, &dir);
    let uuid = sh(&["blkid", "-s", "UUID", "-o", "value", &img.device]).trim().to_string();
    full_cycle(&fs(&ns, &format!("-U {uuid}"), &dir, "ext4"), &ns, &dir);
}

#[test]
fn stop_ends_holders_of_this_mount_only() {
    if !need_fs_tools() || !need_tool("mkfs.ext4") || !need_tool("python3") {
        return;
    }
    let ns = MountNs::new();
    let img = LoopImage::new(32, &["mkfs.ext4", "-q"]);
    let dir = ns.dir("held");
    let other = ns.dir("other");
    let r = fs(&ns, &img.device, &dir, "ext4").param("signal_delay", "1");
    r.expect("start", 0);
    // The same filesystem mounted a second time elsewhere: same device,
    // another mount. Its users must survive our stop.
    assert!(ns.run(&["mkdir", "-p", &other]).status.success());
    assert!(ns.run(&["mount", &img.device, &other]).status.success());
    for d in [&dir, &other] {
        assert!(ns.run(&["sh", "-c", &format!("head -c 8192 /dev/zero > {d}/data")]).status.success());
    }
    // A process whose only hold on the file is a mapping (ctypes mmap, so
    // no descriptor is kept), and which ignores SIGTERM.
    let mmap = |path: &str| {
        format!(
            "import ctypes,os,time,signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
             libc=ctypes.CDLL(None)\nlibc.mmap.restype=ctypes.c_void_p\n\
             libc.mmap.argtypes=[ctypes.c_void_p,ctypes.c_size_t,ctypes.c_int,ctypes.c_int,ctypes.c_int,ctypes.c_long]\n\
             fd=os.open('{path}',os.O_RDONLY)\nassert libc.mmap(None,4096,1,1,fd,0) not in (None,2**64-1)\n\
             os.close(fd)\ntime.sleep(120)"
        )
    };
    let spawn_set = |d: &str| -> Vec<Reaped> {
        vec![
            Reaped(ns.spawn(&["env", &format!("--chdir={d}"), "sleep", "120"])),
            Reaped(ns.spawn(&["python3", "-c", &format!("f=open('{d}/data','rb')\nimport time\ntime.sleep(120)")])),
            Reaped(ns.spawn(&["python3", "-c", &mmap(&format!("{d}/data"))])),
        ]
    };
    let mut ours = spawn_set(&dir);
    let mut theirs = spawn_set(&other);
    // And the same kinds of process on /.
    let root_file = format!("/var/tmp/haven-tests-root-{}", std::process::id());
    std::fs::write(&root_file, vec![0u8; 8192]).unwrap();
    let mut on_root = vec![
        Reaped(ns.spawn(&["env", "--chdir=/", "sleep", "120"])),
        Reaped(ns.spawn(&["python3", "-c", &mmap(&root_file)])),
    ];
    // Python starts slowly on a loaded machine: wait until every holder
    // really holds its file (cwd, descriptor or mapping), not a fixed time.
    let holding = |p: &Reaped, d: &str| {
        let base = format!("/proc/{}", p.pid());
        let link = |l: &str| std::fs::read_link(l).is_ok_and(|t| t.to_string_lossy().starts_with(d));
        link(&format!("{base}/cwd"))
            || std::fs::read_dir(format!("{base}/fd"))
                .is_ok_and(|fds| fds.flatten().any(|f| link(&f.path().to_string_lossy())))
            || std::fs::read_to_string(format!("{base}/maps")).is_ok_and(|m| m.contains(&format!("{d}/data")))
    };
    let all_hold = || ours.iter().all(|p| holding(p, &dir)) && theirs.iter().all(|p| holding(p, &other));
    assert!(wait_for(Duration::from_secs(30), all_hold), "holders did not take hold of their files within 30 s");
    assert!(ours.iter_mut().chain(theirs.iter_mut()).all(|p| p.alive()), "holders started");

    let started = Instant::now();
    let o = r.action("stop");
    assert_eq!(o.code, 0, "stop: {}", o.stderr);
    assert!(started.elapsed() < Duration::from_secs(20), "stop within its deadline");
    assert!(!ns.mounts_under(&dir).iter().any(|m| m == &dir), "our mount is gone");
    assert!(ns.mounts_under(&other).iter().any(|m| m == &other), "the other mount is untouched");
    std::thread::sleep(Duration::from_millis(300));
    for (i, p) in ours.iter_mut().enumerate() {
        assert!(!p.alive(), "holder {i} of our mount survived");
    }
    for (i, p) in theirs.iter_mut().enumerate() {
        assert!(p.alive(), "process {i} on the other mount of the same device was touched");
    }
    assert!(on_root.iter_mut().all(|p| p.alive()), "a process on / was touched");
    assert!(
        o.stderr.contains("memory map") && o.stderr.contains("working directory") && o.stderr.contains("open file"),
        "stop names how each holder held the mount: {}",
        o.stderr
    );
    drop(theirs);
    drop(on_root);
    let _ = ns.run(&["umount", &other]);
    let _ = std::fs::remove_file(&root_file);
}

/// A directory given through a symlinked parent (as /var/run/x with
/// /var/run -> /run): start, monitor, stop and the holder search all find the
/// mount under its canonical name, whether start creates the directory or it
/// exists already.
#[test]
fn a_directory_through_a_symlink_is_one_mount_point() {
    if !need_fs_tools() {
        return;
    }
    let ns = MountNs::new();
    let real = ns.dir("real");
    std::fs::create_dir_all(&real).unwrap();
    let link = ns.dir("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    for (tag, exists) in [("made", false), ("there", true)] {
        if exists {
            std::fs::create_dir_all(format!("{real}/{tag}")).unwrap();
        }
        let (dir, canonical) = (format!("{link}/{tag}"), format!("{real}/{tag}"));
        let r = fs(&ns, "scratch", &dir, "tmpfs").param("options", "size=8m").param("signal_delay", "1");
        assert_eq!(r.probe().code, 7, "probe before start");
        let o = r.action("start");
        assert_eq!(o.code, 0, "start through the symlink ({tag}): {}", o.stderr);
        assert_eq!(ns.mounts_under(&real), vec![canonical.clone()], "mounted once, canonically ({tag})");
        for depth in [0, 10, 20] {
            let o = r.monitor_at(depth);
            assert_eq!(o.code, 0, "monitor depth {depth} ({tag}): {}", o.stderr);
        }
        r.expect("start", 0);
        assert_eq!(ns.mounts_under(&real).len(), 1, "start again mounts nothing more ({tag})");
        // A holder through the symlinked name is found and ended.
        let mut holder = Reaped(ns.spawn(&["env", &format!("--chdir={dir}"), "sleep", "120"]));
        std::thread::sleep(Duration::from_millis(300));
        assert!(holder.alive(), "holder started ({tag})");
        let o = r.action("stop");
        assert_eq!(o.code, 0, "stop ({tag}): {}", o.stderr);
        assert!(ns.mounts_under(&real).is_empty(), "unmounted ({tag})");
        std::thread::sleep(Duration::from_millis(300));
        assert!(!holder.alive(), "the holder of the mount was ended ({tag})");
        r.expect("monitor", 7);
        r.expect("stop", 0);
    }
}

#[test]
fn frozen_fuse_daemon_cannot_hang_monitor_or_stop() {
    if !need_fs_tools() || !need_tool("bindfs") || !need_file("/dev/fuse") {
        return;
    }
    let ns = MountNs::new();
    let src = ns.dir("fuse-src");
    std::fs::create_dir_all(&src).unwrap();
    let dir = ns.dir("fuse");
    let r = fs(&ns, &src, &dir, "fuse.bindfs").meta("timeout", "3000");
    r.expect("start", 0);
    r.expect("monitor", 0);
    // The daemon serving this mount: found by its own command line.
    let daemon = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            args.first().is_some_and(|a| a.ends_with(b"bindfs")) && args.contains(&dir.as_bytes())
        })
        .expect("the bindfs daemon");
    // Freezing the daemon this test's mount started.
    signal(daemon, nix::sys::signal::Signal::SIGSTOP);
    for depth in [10, 20] {
        let t = Instant::now();
        let o = r.monitor_at(depth);
        let took = t.elapsed();
        assert_ne!(o.code, 0, "depth {depth} must fail on a frozen filesystem");
        assert!(o.reason().unwrap_or_default().contains("not responding"), "{}", o.stderr);
        assert!(took < Duration::from_secs(3), "depth {depth} took {took:?}, beyond the 3 s timeout");
        eprintln!("monitor depth {depth} on a frozen FUSE mount failed after {took:?} (timeout 3 s)");
    }
    let t = Instant::now();
    let o = r.meta("timeout", "5000").action("stop");
    let took = t.elapsed();
    eprintln!("stop of a frozen FUSE mount: rc {} after {took:?} (timeout 5 s)", o.code);
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(ns.mounts_under(&dir).is_empty());
    // Ending the daemon of the mount this test made.
    signal(daemon, nix::sys::signal::Signal::SIGCONT);
    signal(daemon, nix::sys::signal::Signal::SIGKILL);
}

#[test]
fn clones_of_local_filesystems_are_refused() {
    if !need_fs_tools() || !need_tool("mkfs.ext4") {
        return;
    }
    let ns = MountNs::new();
    let img = LoopImage::new(32, &["mkfs.ext4", "-q"]);
    let dir = ns.dir("clone");
    let clone = |fstype: &str, device: &str| fs(&ns, device, &dir, fstype).meta("clone", "0").meta("clone_max", "2");
    for action in ["validate-all", "start"] {
        let o = clone("ext4", &img.device).action(action);
        assert_eq!(o.code, 6, "{action}: {}", o.stderr);
        assert!(o.reason().unwrap_or_default().contains("destroys it"), "{}", o.stderr);
    }
    assert!(ns.mounts_under(&dir).is_empty());
    // Allowed when forced, or read-only.
    assert_eq!(clone("ext4", &img.device).param("force_clones", "true").action("validate-all").code, 0);
    assert_eq!(clone("ext4", &img.device).param("options", "ro").action("validate-all").code, 0);
    // A cluster filesystem passes the clone check; this kernel has no
    // OCFS2, which validate-all reports as a node problem (5), not as a
    // configuration error (6).
    let o = clone("ocfs2", &img.device).action("validate-all");
    let ocfs2_here = std::fs::read_to_string("/proc/filesystems").unwrap_or_default().contains("ocfs2");
    if ocfs2_here {
        assert_eq!(o.code, 0, "{}", o.stderr);
    } else {
        assert_eq!(o.code, 5, "{}", o.stderr);
        assert!(o.reason().unwrap_or_default().contains("not supported by this node"), "{}", o.stderr);
    }
    // NFS clones pass the clone check (this kernel has no NFS client: 5).
    let o = clone("nfs4", "filer.example:/export/web").action("validate-all");
    assert!(o.code == 0 || o.code == 5, "{}", o.stderr);
    assert!(!o.reason().unwrap_or_default().contains("destroys"), "{}", o.stderr);
    assert_eq!(clone("tmpfs", "scratch").action("validate-all").code, 0);
}

#[test]
fn refuses_to_cover_other_mounts() {
    if !need_fs_tools() || !need_tool("mkfs.ext4") {
        return;
    }
    let ns = MountNs::new();
    let img = LoopImage::new(32, &["mkfs.ext4", "-q"]);
    let dir = ns.dir("covered");
    // Another filesystem already on the mount point.
    assert!(ns.run(&["mkdir", "-p", &dir]).status.success());
    assert!(ns.run(&["mount", "-t", "tmpfs", "other", &dir]).status.success());
    let r = fs(&ns, &img.device, &dir, "ext4");
    let o = r.action("start");
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.reason().unwrap_or_default().contains("already has"), "{}", o.stderr);
    assert_eq!(r.action("monitor").code, 1, "a different device is not ours");
    r.expect("stop", 0);
    assert_eq!(ns.mounts_under(&dir), vec![dir.clone()], "stop never touches a mount it does not own");
    assert!(ns.run(&["umount", &dir]).status.success());
    // Something mounted below the mount point.
    let sub = format!("{dir}/spool");
    assert!(ns.run(&["mkdir", "-p", &sub]).status.success());
    assert!(ns.run(&["mount", "-t", "tmpfs", "below", &sub]).status.success());
    let o = r.action("start");
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.reason().unwrap_or_default().contains("mounted below"), "{}", o.stderr);
    assert_eq!(ns.mounts_under(&dir), vec![sub.clone()]);
}

#[test]
fn bad_input_is_6_and_mounts_nothing() {
    if !need_fs_tools() {
        return;
    }
    let ns = MountNs::new();
    let dir = ns.dir("bad");
    let before = ns.mountinfo().lines().count();
    let cases: [(&str, &str, &str, &str); 7] = [
        ("scratch", "relative/dir", "tmpfs", "directory"),
        ("scratch", "/", "tmpfs", "directory"),
        ("", &dir, "tmpfs", "device"),
        ("scratch", &dir, "ext5", "fstype"),
        ("scratch; reboot", &dir, "tmpfs;reboot", "fstype"),
        ("scratch", "/srv/$(reboot)/../x", "tmpfs", "directory"),
        ("--bind", &dir, "tmpfs", "device"),
    ];
    for (device, directory, fstype, named) in cases {
        for action in ["validate-all", "start"] {
            let mut r = Run::new("filesystem").in_mounts(&ns).param("directory", directory).param("fstype", fstype);
            if !device.is_empty() {
                r = r.param("device", device);
            }
            let o = r.action(action);
            assert_eq!(o.code, 6, "{action} device={device:?} dir={directory:?} fstype={fstype:?}: {}", o.stderr);
            assert!(o.reason().unwrap_or_default().contains(&format!("'{named}'")), "{}", o.stderr);
        }
    }
    assert_eq!(ns.mountinfo().lines().count(), before, "nothing was mounted");
    let opts = Run::new("filesystem").in_mounts(&ns).param("device", "scratch").param("directory", &dir);
    let o = opts.param("fstype", "tmpfs").param("options", "size=1m mode=777").action("start");
    assert_eq!(o.code, 6);
    assert!(o.reason().unwrap_or_default().contains("'options'"));
}

#[test]
fn missing_device_or_unsupported_type_is_a_node_problem() {
    if !need_fs_tools() {
        return;
    }
    let ns = MountNs::new();
    let dir = ns.dir("nodev");
    let o = fs(&ns, "/dev/haven-no-such-disk", &dir, "ext4").action("start");
    assert_eq!(o.code, 5, "{}", o.stderr);
    assert!(o.reason().unwrap_or_default().contains("does not exist on this node"), "{}", o.stderr);
    let probe = fs(&ns, "/dev/haven-no-such-disk", &dir, "ext4").probe();
    assert_eq!(probe.code, 7, "a probe where the device is missing: not running");
}
