//! The filesystem agent's parameters and actions: ocf:heartbeat:Filesystem's
//! names and meanings, plus create_directory.

use crate::ocf::agent::{ActionSpec, AgentSpec};
use crate::ocf::params::{parse_bool, Kind, ParamSpec, TimeUnit, Value};
use crate::ocf::Action;

fn no_controls(s: &str) -> Result<(), String> {
    if s.contains(['\0', '\n', '\r', '\t']) {
        Err("control characters are not allowed".into())
    } else {
        Ok(())
    }
}

/// A block device, LABEL=/UUID= (or mount's -L/-U forms), host:/export,
/// //server/share, a directory to bind, or a name for tmpfs. Never an
/// option: a leading '-' other than -L/-U would be read by mount(8).
fn check_device(s: &str) -> Result<Value, String> {
    let t = s.trim();
    no_controls(t)?;
    if t.is_empty() {
        return Err("empty".into());
    }
    if let Some(rest) = t.strip_prefix("-L ").or_else(|| t.strip_prefix("-U ")) {
        if rest.trim().is_empty() || rest.trim().starts_with('-') {
            return Err("-L and -U need a label or UUID".into());
        }
        return Ok(Value::Str(t.to_string()));
    }
    if t.starts_with('-') {
        return Err("a device cannot start with '-' (it would be read as a mount option)".into());
    }
    Ok(Value::Str(t.to_string()))
}

/// An absolute path other than "/", without "." or ".." components.
pub fn check_directory(s: &str) -> Result<Value, String> {
    let t = s.trim();
    no_controls(t)?;
    if !t.starts_with('/') {
        return Err("must be an absolute path".into());
    }
    let parts: Vec<&str> = t.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err("refusing to mount on /".into());
    }
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err("'.' and '..' are not allowed in the mount point".into());
    }
    Ok(Value::Str(format!("/{}", parts.join("/"))))
}

fn check_fstype(s: &str) -> Result<Value, String> {
    let t = s.trim();
    let ok = !t.is_empty()
        && t.len() <= 64
        && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !t.starts_with('-');
    if ok {
        Ok(Value::Str(t.to_string()))
    } else {
        Err("a filesystem type such as ext4, xfs, nfs4, tmpfs or none (letters, digits, '.', '_', '-')".into())
    }
}

fn check_options(s: &str) -> Result<Value, String> {
    no_controls(s)?;
    if s.contains(char::is_whitespace) {
        return Err("mount options are comma-separated, without spaces".into());
    }
    Ok(Value::Str(s.to_string()))
}

fn check_prefix(s: &str) -> Result<Value, String> {
    no_controls(s)?;
    if s.starts_with('/') || s.split('/').any(|p| p == "..") || s.is_empty() {
        return Err("a path relative to the mount point, without '..'".into());
    }
    Ok(Value::Str(s.to_string()))
}

fn check_force_unmount(s: &str) -> Result<Value, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("safe") {
        return Ok(Value::Str("safe".into()));
    }
    match parse_bool(t) {
        Some(true) => Ok(Value::Str("true".into())),
        Some(false) => Ok(Value::Str("false".into())),
        None => Err("true, safe or false".into()),
    }
}

fn check_signals(s: &str) -> Result<Value, String> {
    let names: Vec<&str> = s.split_whitespace().collect();
    if names.is_empty() {
        return Err("at least one signal".into());
    }
    for n in &names {
        if crate::mount::holders::signal_number(n).is_none() {
            return Err(format!("{n:?} is not a signal name or number"));
        }
    }
    Ok(Value::Str(names.join(" ")))
}

pub static PARAMS: &[ParamSpec] = &[
    ParamSpec::new(
        "device",
        Kind::Custom {
            check: check_device,
            hint: "A device, LABEL=/UUID=, host:/export, //server/share or a directory.",
        },
        "block device",
        "What to mount: a block device (/dev/sdb1, /dev/disk/by-uuid/...), LABEL=name or UUID=id (or mount's -L/-U \
         forms), host:/export for nfs/nfs4, //server/share for cifs, the source directory of a bind mount, or any \
         name for tmpfs.",
    )
    .required(),
    ParamSpec::new(
        "directory",
        Kind::Custom { check: check_directory, hint: "An absolute path other than /." },
        "mount point",
        "Where to mount it. start refuses when a different device is mounted there, or when something is mounted \
         below it.",
    )
    .required(),
    ParamSpec::new(
        "fstype",
        Kind::Custom { check: check_fstype, hint: "e.g. ext4, xfs, nfs4, cifs, gfs2, ocfs2, tmpfs, none." },
        "filesystem type",
        "The filesystem type, as mount -t takes it. Use none (with options=bind) for bind mounts. Types that are not \
         cluster or network filesystems are refused as clones unless force_clones is set or the mount is read-only.",
    )
    .required(),
    ParamSpec::new(
        "options",
        Kind::Custom { check: check_options, hint: "Comma-separated mount options." },
        "mount options",
        "Options for mount -o, e.g. noatime or vers=4.2,hard. For bind mounts add bind (bind,ro works). usrquota and \
         grpquota pass through; with them, quotaon is required and run after an ext2/3/4 mount.",
    ),
    ParamSpec::new(
        "statusfile_prefix",
        Kind::Custom { check: check_prefix, hint: "A relative path; a trailing / makes it a directory." },
        "status file prefix",
        "Where monitor depth 20 writes its status file, relative to the mount point; the file is named after the \
         resource instance, the clone number and the node.",
    )
    .default(".Filesystem_status/"),
    ParamSpec::new(
        "run_fsck",
        Kind::Enum(&["auto", "force", "no"]),
        "run_fsck",
        "Whether start runs fsck -p on a block device: auto (only for types that need it, not for journalling or \
         network filesystems), force (always), no (never). fsck exit codes of 4 and above fail the start.",
    )
    .default("auto"),
    ParamSpec::new(
        "fast_stop",
        Kind::Boolean,
        "fast stop",
        "When true, stop sends term_signals once and then kill_signals to the processes using the mount, without \
         spreading the signals over the stop timeout.",
    )
    .default("no"),
    ParamSpec::new(
        "force_clones",
        Kind::Boolean,
        "allow clones of local filesystems",
        "Allow a clone of a filesystem that is not a cluster or network filesystem (ext4, xfs, ...). Only when every \
         node mounts its own device: two nodes writing one ext4 or xfs destroy it.",
    )
    .default("false"),
    ParamSpec::new(
        "force_unmount",
        Kind::Custom { check: check_force_unmount, hint: "true, safe or false." },
        "kill processes that use the mount",
        "What stop does when the filesystem is busy: true or safe signal the processes holding THIS mount (open \
         files, working or root directory, executable, memory maps; found from /proc without touching the \
         filesystem, so both are the 'safe' kind), false leaves them and fails the stop.",
    )
    .default("true"),
    ParamSpec::new(
        "term_signals",
        Kind::Custom { check: check_signals, hint: "Signal names or numbers, space-separated." },
        "signals to end users with",
        "Signals sent first to the processes holding the mount.",
    )
    .default("TERM"),
    ParamSpec::new(
        "kill_signals",
        Kind::Custom { check: check_signals, hint: "Signal names or numbers, space-separated." },
        "signals to kill users with",
        "Signals sent when the holders survive term_signals.",
    )
    .default("KILL"),
    ParamSpec::new(
        "signal_delay",
        Kind::Duration { unit: TimeUnit::Seconds },
        "delay between signals",
        "How long to wait after each round of signals before unmounting again.",
    )
    .default("1"),
    ParamSpec::new(
        "create_directory",
        Kind::Boolean,
        "create the mount point",
        "Create the mount point (and its parents) on start when it does not exist, as Filesystem does.",
    )
    .default("true"),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "filesystem",
    shortdesc: "Mounts shared storage (drop-in for Filesystem) without hanging the node",
    longdesc: "Mounts a filesystem with mount(8), so helpers such as mount.nfs and mount.ocfs2 apply, and unmounts it \
with umount(8), ending only the processes that hold this very mount. It accepts the parameters of \
ocf:heartbeat:Filesystem with the same meanings. Block devices, LABEL=/UUID=, NFS exports, CIFS shares, bind mounts \
and tmpfs are supported. The state is read from /proc/self/mountinfo; monitor at depth 0 forks nothing. Depth 10 \
reads the device directly (nothing for network filesystems), depth 20 writes and reads back a status file. Every \
call that could block on a dead server or a frozen FUSE daemon is abandoned at the action deadline, so monitor fails \
in time instead of hanging. Clones of filesystems that are not cluster or network aware are refused.",
    params: PARAMS,
    actions: &[
        ActionSpec::new(Action::Start, 60),
        ActionSpec::new(Action::Stop, 60),
        ActionSpec::new(Action::Monitor, 40).depth(0).every(20),
        ActionSpec::new(Action::Monitor, 40).depth(10).every(61),
        ActionSpec::new(Action::Monitor, 40).depth(20).every(121),
        ActionSpec::new(Action::Notify, 60),
        ActionSpec::new(Action::ValidateAll, 10),
        ActionSpec::new(Action::MetaData, 5),
    ],
    primary: "directory",
    depths: &[0, 10, 20],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_rules() {
        assert_eq!(check_directory("/srv/www/"), Ok(Value::Str("/srv/www".into())));
        assert_eq!(check_directory("//srv//www"), Ok(Value::Str("/srv/www".into())));
        assert!(check_directory("/").is_err());
        assert!(check_directory("srv/www").is_err());
        assert!(check_directory("/srv/../etc").is_err());
    }

    #[test]
    fn device_rules() {
        assert!(check_device("/dev/sdb1").is_ok());
        assert!(check_device("-U 1234").is_ok());
        assert!(check_device("--bind").is_err());
        assert!(check_device("-o remount").is_err());
        assert!(check_device("filer:/export").is_ok());
    }

    #[test]
    fn other_rules() {
        assert!(check_fstype("ext4").is_ok() && check_fstype("fuse.bindfs").is_ok());
        assert!(check_fstype("ext4;reboot").is_err());
        assert!(check_options("rw,noatime").is_ok() && check_options("rw noatime").is_err());
        assert!(check_prefix("../x").is_err() && check_prefix(".st/").is_ok());
        assert_eq!(check_force_unmount("yes"), Ok(Value::Str("true".into())));
        assert_eq!(check_force_unmount("SAFE"), Ok(Value::Str("safe".into())));
        assert!(check_signals("TERM HUP").is_ok() && check_signals("TERM; reboot").is_err());
    }
}
