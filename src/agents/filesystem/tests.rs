//! The agent's start, stop and holder decisions against the recording
//! double of [`super::System`]: no root, no mount, no process signalled.

use super::system::double::Recorder;
use super::Filesystem;
use crate::mount::holders::Holder;
use crate::ocf::env::OcfEnv;
use crate::ocf::params::Params;
use crate::ocf::{Action, Agent, Ctx, Deadline, Status};
use std::collections::BTreeMap;
use std::time::Duration;

const ROOT: &str = "20 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n";

fn ctx(action: Action, params: &[(&str, &str)]) -> Ctx {
    let raw: BTreeMap<String, String> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Ctx {
        action,
        env: OcfEnv::from_vars(Vec::new()),
        params: Params::parse(super::spec::SPEC.params, &raw).expect("valid parameters"),
        deadline: Deadline::after(Duration::from_secs(20)),
        depth: 0,
    }
}

const TMPFS: &[(&str, &str)] =
    &[("device", "tmpfs"), ("directory", "/srv/haven-t"), ("fstype", "tmpfs"), ("options", "size=1m")];
const MOUNTED: &str = "30 20 0:50 / /srv/haven-t rw - tmpfs tmpfs rw,size=1024k\n";

fn table(lines: &[&str]) -> String {
    lines.concat()
}

#[test]
fn start_mounts_once_and_checks_the_table_after() {
    let sys = Recorder::with_tables(&[ROOT, &table(&[ROOT, MOUNTED])]);
    let fs = Filesystem(sys);
    assert_eq!(fs.start(&ctx(Action::Start, TMPFS)).unwrap(), Status::Success);
    assert_eq!(fs.0.runs(), ["run mount -t tmpfs -o size=1m tmpfs /srv/haven-t"]);
}

#[test]
fn start_on_a_mounted_resource_does_nothing() {
    let fs = Filesystem(Recorder::with_tables(&[&table(&[ROOT, MOUNTED])]));
    assert_eq!(fs.start(&ctx(Action::Start, TMPFS)).unwrap(), Status::Success);
    assert!(fs.0.runs().is_empty(), "{:?}", fs.0.log());
}

#[test]
fn start_never_mounts_over_another_device_or_hides_submounts() {
    let other = "30 20 0:51 / /srv/haven-t rw - ext4 /dev/sdb1 rw\n";
    let fs = Filesystem(Recorder::with_tables(&[&table(&[ROOT, other])]));
    let e = fs.start(&ctx(Action::Start, TMPFS)).unwrap_err();
    assert!(e.to_string().contains("already has /dev/sdb1 (ext4) mounted"), "{e}");
    assert_eq!(e.status(), Status::ErrGeneric);

    let below = "31 20 0:52 / /srv/haven-t/sub rw - tmpfs tmpfs rw\n";
    let fs2 = Filesystem(Recorder::with_tables(&[&table(&[ROOT, below])]));
    let e = fs2.start(&ctx(Action::Start, TMPFS)).unwrap_err();
    assert!(e.to_string().contains("/srv/haven-t/sub"), "{e}");
    assert!(fs.0.runs().is_empty() && fs2.0.runs().is_empty());
}

#[test]
fn a_failed_mount_or_a_mount_that_does_not_show_is_an_error() {
    let fs = Filesystem(Recorder::with_tables(&[ROOT]));
    fs.0.script("mount", &[(32, "mount: wrong fs type")]);
    let e = fs.start(&ctx(Action::Start, TMPFS)).unwrap_err();
    assert!(e.to_string().contains("wrong fs type"), "{e}");

    let fs = Filesystem(Recorder::with_tables(&[ROOT]));
    let e = fs.start(&ctx(Action::Start, TMPFS)).unwrap_err();
    assert!(e.to_string().contains("does not show it"), "{e}");
}

#[test]
fn a_block_device_is_recognised_by_its_numbers() {
    let params = &[("device", "/dev/haven-test0"), ("directory", "/srv/haven-t"), ("fstype", "ext4")];
    let by_number = "30 20 8:17 / /srv/haven-t rw - ext4 /dev/mapper/other-name rw\n";
    let mut sys = Recorder::with_tables(&[&table(&[ROOT, by_number])]);
    sys.devices.insert("/dev/haven-test0".into(), (8, 17));
    let fs = Filesystem(sys);
    assert_eq!(fs.monitor(&ctx(Action::Monitor, params)).unwrap(), Status::Success);

    let mut sys = Recorder::with_tables(&[&table(&[ROOT, by_number])]);
    sys.devices.insert("/dev/haven-test0".into(), (8, 33));
    let e = Filesystem(sys).monitor(&ctx(Action::Monitor, params)).unwrap_err();
    assert!(e.to_string().contains("not from /dev/haven-test0"), "{e}");
}

#[test]
fn stop_of_nothing_or_of_a_foreign_mount_touches_nothing() {
    let fs = Filesystem(Recorder::with_tables(&[ROOT]));
    assert_eq!(fs.stop(&ctx(Action::Stop, TMPFS)).unwrap(), Status::Success);
    let foreign = "30 20 0:51 / /srv/haven-t rw - ext4 /dev/sdb1 rw\n";
    let fs2 = Filesystem(Recorder::with_tables(&[&table(&[ROOT, foreign])]));
    assert_eq!(fs2.stop(&ctx(Action::Stop, TMPFS)).unwrap(), Status::Success);
    assert!(fs.0.runs().is_empty() && fs2.0.runs().is_empty());
}

#[test]
fn stop_unmounts_submounts_deepest_first() {
    let a = "31 30 0:52 / /srv/haven-t/a rw - tmpfs tmpfs rw\n";
    let ab = "32 31 0:53 / /srv/haven-t/a/b rw - tmpfs tmpfs rw\n";
    let fs = Filesystem(Recorder::with_tables(&[&table(&[ROOT, MOUNTED, a, ab]), ROOT]));
    assert_eq!(fs.stop(&ctx(Action::Stop, TMPFS)).unwrap(), Status::Success);
    assert_eq!(
        fs.0.runs(),
        [
            "run umount --no-canonicalize /srv/haven-t/a/b",
            "run umount --no-canonicalize /srv/haven-t/a",
            "run umount --no-canonicalize /srv/haven-t",
        ]
    );
}

fn holder(pid: i32) -> Holder {
    Holder { pid, comm: "sleep".into(), how: "cwd" }
}

#[test]
fn a_busy_mount_gets_its_holders_signalled_then_unmounted() {
    let busy = table(&[ROOT, MOUNTED]);
    let mut sys = Recorder::with_tables(&[&busy, &busy, ROOT]);
    sys.holders = vec![holder(4242)];
    sys.script("umount", &[(32, "umount: /srv/haven-t: target is busy."), (0, "")]);
    let fs = Filesystem(sys);
    let mut p = TMPFS.to_vec();
    p.push(("signal_delay", "0"));
    assert_eq!(fs.stop(&ctx(Action::Stop, &p)).unwrap(), Status::Success);
    assert_eq!(
        fs.0.log(),
        ["run umount --no-canonicalize /srv/haven-t", "signal 15 to 4242", "run umount --no-canonicalize /srv/haven-t",]
    );
}

#[test]
fn without_force_unmount_a_busy_mount_is_reported_with_its_holders() {
    let busy = table(&[ROOT, MOUNTED]);
    let mut sys = Recorder::with_tables(&[&busy]);
    sys.holders = vec![holder(4242)];
    sys.script("umount", &[(32, "umount: /srv/haven-t: target is busy.")]);
    let fs = Filesystem(sys);
    let mut p = TMPFS.to_vec();
    p.push(("force_unmount", "false"));
    let e = fs.stop(&ctx(Action::Stop, &p)).unwrap_err();
    assert!(e.to_string().contains("4242 sleep (cwd)"), "{e}");
    assert_eq!(fs.0.runs().len(), 1);
    assert!(!fs.0.log().iter().any(|l| l.starts_with("signal")), "{:?}", fs.0.log());
}
