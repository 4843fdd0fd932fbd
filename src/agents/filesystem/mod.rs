//! ocf:haven:filesystem — mounts shared storage with mount(8), watches it
//! without hanging, and unmounts it ending only the processes that hold it.

mod config;
mod error;
mod kinds;
mod netcheck;
mod path;
pub mod spec;
mod system;

pub use config::Config;
pub use error::FsError;
pub use system::{Linux, System};

use crate::error::AgentError;
use crate::exec;
use crate::mount::guard::bounded;
use crate::mount::{holders, MountEntry, MountTable};
use crate::ocf::agent::ActionResult;
use crate::ocf::{Agent, AgentSpec, Ctx, Deadline, Status};
use crate::safe_file::{SafeDir, SafeFileError};
use crate::{info, warn};
use config::{Device, ForceUnmount};
use std::time::{Duration, Instant};

/// The agent over a [`System`]: [`Linux`] when Pacemaker runs it.
pub struct Filesystem<S = Linux>(pub S);

/// How a mount compares with the configured device.
enum Match {
    Yes,
    No(String),
}

impl<S: System> Agent for Filesystem<S> {
    fn spec(&self) -> &'static AgentSpec {
        &spec::SPEC
    }

    fn validate(&self, ctx: &Ctx) -> ActionResult {
        let cfg = prepare(ctx)?;
        check_node(&cfg, &ctx.deadline)?;
        Ok(Status::Success)
    }

    fn start(&self, ctx: &Ctx) -> ActionResult {
        let cfg = prepare(ctx)?;
        let dl = &ctx.deadline;
        let sys = &self.0;
        let table = read_table(sys)?;
        let mp = mount_point(&cfg, &table, dl);
        if let Some(top) = table.top_at(&mp) {
            return match matches(sys, &cfg, &table, top, dl)? {
                Match::Yes => {
                    info!("{} is already mounted on {mp}", cfg.device_text);
                    Ok(Status::Success)
                }
                Match::No(found) => {
                    Err(FsError::OtherDevice { dir: mp, found, device: cfg.device_text.clone() }.into())
                }
            };
        }
        let below: Vec<String> = table.below(&mp).iter().map(|e| e.mount_point.clone()).collect();
        if !below.is_empty() {
            return Err(FsError::Submounts { dir: mp, below: below.join(", ") }.into());
        }
        check_node(&cfg, &ctx.deadline)?;
        if cfg.create_directory {
            sys.create_dir(&mp, dl)?
                .map_err(|source| FsError::Io(crate::error::IoError::new("create", mp.clone(), source)))?;
        }
        fsck(sys, &cfg, dl)?;
        let mut argv: Vec<String> = vec!["mount".into()];
        if cfg.fstype != "none" {
            argv.extend(["-t".into(), cfg.fstype.clone()]);
        }
        if !cfg.options.is_empty() {
            argv.extend(["-o".into(), cfg.options.clone()]);
        }
        argv.extend([cfg.device.mount_source(), mp.clone()]);
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        system::run_ok(sys, &args, dl).map_err(|source| FsError::Mount {
            device: cfg.device_text.clone(),
            dir: mp.clone(),
            source,
        })?;
        let table = read_table(sys)?;
        match table.top_at(&mp).map(|e| matches(sys, &cfg, &table, e, dl)).transpose()? {
            Some(Match::Yes) => {}
            Some(Match::No(found)) => {
                return Err(FsError::Mismatch { dir: mp, found, device: cfg.device_text.clone() }.into())
            }
            None => return Err(FsError::NotMounted { device: cfg.device_text.clone(), dir: mp }.into()),
        }
        quota_on(sys, &cfg, &mp, dl)?;
        info!("mounted {} on {mp} ({})", cfg.device_text, cfg.fstype);
        Ok(Status::Success)
    }

    fn stop(&self, ctx: &Ctx) -> ActionResult {
        let cfg = Config::from_params(&ctx.params)?;
        let dl = &ctx.deadline;
        let sys = &self.0;
        let table = read_table(sys)?;
        let mp = mount_point(&cfg, &table, dl);
        let Some(top) = table.top_at(&mp) else {
            return Ok(Status::Success);
        };
        if let Match::No(found) = matches(sys, &cfg, &table, top, dl)? {
            // Never touch a mount this resource does not own.
            warn!("{mp} has {found} mounted, not {}; leaving it alone", cfg.device_text);
            return Ok(Status::Success);
        }
        remove_status_file(ctx, &cfg, &mp, dl);
        // Sub-mounts first, deepest first, then the mount itself.
        let mut targets: Vec<MountEntry> = table.below(&mp).into_iter().cloned().collect();
        targets.push(top.clone());
        for t in &targets {
            unmount(sys, &cfg, t, dl)?;
        }
        let table = read_table(sys)?;
        if targets.iter().any(|t| table.by_id(t.id).is_some()) {
            return Err(FsError::Unmount { dir: mp, why: "still in the mount table after umount".into() }.into());
        }
        info!("unmounted {mp}");
        Ok(Status::Success)
    }

    fn monitor(&self, ctx: &Ctx) -> ActionResult {
        let cfg = Config::from_params(&ctx.params)?;
        let dl = &ctx.deadline;
        let sys = &self.0;
        let table = read_table(sys)?;
        let mp = mount_point(&cfg, &table, dl);
        let Some(top) = table.top_at(&mp) else {
            return Ok(Status::NotRunning);
        };
        if let Match::No(found) = matches(sys, &cfg, &table, top, dl)? {
            return Err(FsError::Mismatch { dir: mp, found, device: cfg.device_text.clone() }.into());
        }
        if kinds::is_network(&top.fstype) {
            netcheck::server_answers(&mp, &top.fstype, dl)?;
        }
        if ctx.depth >= 10 {
            read_device(&cfg, top, dl)?;
        }
        if ctx.depth >= 20 {
            status_file_round_trip(ctx, &cfg, &mp, dl)?;
        }
        Ok(Status::Success)
    }
}

/// Parse, and refuse clones of filesystems that clones would destroy.
fn prepare(ctx: &Ctx) -> Result<Config, AgentError> {
    let cfg = Config::from_params(&ctx.params)?;
    if ctx.env.meta.is_clone() && !kinds::clone_safe(&cfg.fstype) && !cfg.force_clones && !cfg.read_only() {
        return Err(FsError::Clone { fstype: cfg.fstype.clone() }.into());
    }
    let kernel = kinds::kernel_types();
    if !kinds::is_known(&cfg.fstype, &kernel) {
        return Err(crate::ocf::params::ParamError::Malformed {
            name: "fstype",
            value: cfg.fstype.clone(),
            why: "not a filesystem type this node or haven knows".into(),
        }
        .into());
    }
    Ok(cfg)
}

/// What this node must have: kernel support, the mount helper, the device,
/// the quota tool when quotas are asked for.
fn check_node(cfg: &Config, dl: &Deadline) -> Result<(), AgentError> {
    let name = kinds::kernel_name(&cfg.fstype).to_string();
    if cfg.fstype != "none" && !kinds::kernel_types().contains(&name) {
        // The module may just not be loaded yet.
        if exec::which("modprobe").is_some() {
            // Within the action's deadline, not a fixed few seconds: loading
            // ocfs2 or gfs2 with their dependencies can take longer.
            let _ = exec::run(&["modprobe", "-q", &name], &dl.within(Duration::from_secs(30)));
        }
        if !kinds::kernel_types().contains(&name) {
            return Err(FsError::NotSupported { fstype: cfg.fstype.clone() }.into());
        }
    }
    if let Some(helper) = kinds::helper(&cfg.fstype) {
        if exec::which(helper).is_none() {
            return Err(FsError::HelperMissing { helper, fstype: cfg.fstype.clone() }.into());
        }
    }
    match &cfg.device {
        Device::Block(d) => {
            let is_block = std::fs::metadata(d).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_block_device()
            });
            if !is_block {
                return Err(FsError::DeviceMissing { device: d.clone() }.into());
            }
        }
        Device::Bind(d) if !std::path::Path::new(d).exists() => {
            return Err(FsError::DeviceMissing { device: d.clone() }.into());
        }
        _ => {}
    }
    if !cfg.quota_options().is_empty() && cfg.fstype.starts_with("ext") && exec::which("quotaon").is_none() {
        return Err(FsError::QuotaTool { opts: cfg.quota_options().join(","), tool: "quotaon" }.into());
    }
    Ok(())
}

fn read_table(sys: &dyn System) -> Result<MountTable, FsError> {
    sys.mount_table().map_err(|source| FsError::Io(crate::error::IoError::new("read", "/proc/self/mountinfo", source)))
}

/// The mount point as the mount table spells it: the configured path, or
/// its canonical form when a parent is a symlink (resolved off-thread when
/// the path crosses a filesystem that could hang: a dead server). Start, stop, monitor and the holder
/// search all go through here, so `/var/run/x` (with /var/run -> /run) is
/// `/run/x` everywhere, even before start has created it.
fn mount_point(cfg: &Config, table: &MountTable, dl: &Deadline) -> String {
    if table.top_at(&cfg.directory).is_some() {
        return cfg.directory.clone();
    }
    let dir = cfg.directory.clone();
    if path::resolves_locally(&dir, table, kinds::answers_locally) {
        // No thread needed (the common probe of a stopped local filesystem).
        return path::canonical(std::path::Path::new(&dir))
            .map_or_else(|_| cfg.directory.clone(), |p| p.to_string_lossy().into_owned());
    }
    let short = dl.within(Duration::from_secs(2));
    match bounded("resolving the mount point", &short, move || path::canonical(std::path::Path::new(&dir))) {
        Ok(Ok(p)) => p.to_string_lossy().into_owned(),
        _ => cfg.directory.clone(),
    }
}

fn trim_slash(s: &str) -> &str {
    if s.len() > 1 {
        s.trim_end_matches('/')
    } else {
        s
    }
}

/// Is `e` (an entry of `table`) the configured device?
fn matches(
    sys: &dyn System,
    cfg: &Config,
    table: &MountTable,
    e: &MountEntry,
    dl: &Deadline,
) -> Result<Match, AgentError> {
    let found = || format!("{} ({})", e.source, e.fstype);
    let ok = match &cfg.device {
        Device::Block(d) => match sys.dev_numbers(d, true, table, dl)? {
            Some(n) => n == (e.major, e.minor),
            None => e.source == *d,
        },
        Device::Tag { kind, value } => {
            let link = format!("/dev/disk/by-{}/{value}", kind.to_ascii_lowercase());
            match sys.dev_numbers(&link, true, table, dl)? {
                Some(n) => n == (e.major, e.minor),
                // No udev links on this node: the type is all we can check.
                None => e.fstype == cfg.fstype,
            }
        }
        Device::Network(d) => trim_slash(&e.source) == trim_slash(d),
        Device::Bind(d) => match sys.dev_numbers(d, false, table, dl)? {
            Some(n) => n == (e.major, e.minor),
            None => false,
        },
        Device::Virtual(d) => {
            e.source == *d && (e.fstype == cfg.fstype || kinds::is_fuse(&cfg.fstype) && kinds::is_fuse(&e.fstype))
        }
    };
    Ok(if ok { Match::Yes } else { Match::No(found()) })
}

fn fsck(sys: &dyn System, cfg: &Config, dl: &Deadline) -> Result<(), AgentError> {
    let is_block = matches!(cfg.device, Device::Block(_) | Device::Tag { .. });
    let wanted = match cfg.run_fsck.as_str() {
        "force" => true,
        "no" => false,
        _ => kinds::fsck_by_default(&cfg.fstype),
    };
    if !(is_block && wanted) {
        return Ok(());
    }
    let source = cfg.device.mount_source();
    info!("checking {source} with fsck -p");
    let f = sys.run(&["fsck", "-t", &cfg.fstype, "-p", &source], dl)?;
    // 1 = errors corrected, 2 = corrected, reboot advised; 4 and up: not fixed.
    if f.code >= 4 {
        return Err(FsError::Fsck { device: source, code: f.code, stderr: exec::one_line(&f.stderr) }.into());
    }
    Ok(())
}

fn quota_on(sys: &dyn System, cfg: &Config, mp: &str, dl: &Deadline) -> Result<(), AgentError> {
    let q = cfg.quota_options();
    if q.is_empty() || !cfg.fstype.starts_with("ext") {
        return Ok(());
    }
    let mut flags = String::from("-");
    if q.iter().any(|o| *o == "usrquota" || *o == "quota" || o.starts_with("usrjquota=")) {
        flags.push('u');
    }
    if q.contains(&"grpquota") {
        flags.push('g');
    }
    if flags.len() > 1 {
        let f = sys.run(&["quotaon", &flags, mp], dl)?;
        if f.code != 0 && !f.stderr.contains("already on") {
            warn!("quotaon {flags} {mp} failed: {}", exec::one_line(&f.stderr));
        }
    }
    Ok(())
}

/// The status file of this resource instance on this node.
fn status_path(ctx: &Ctx, cfg: &Config, mp: &str) -> String {
    format!("{mp}/{}{}", cfg.statusfile_prefix, status_name(ctx))
}

/// "<resource>_<node>", the status file's name after the prefix.
fn status_name(ctx: &Ctx) -> String {
    let mut name = if ctx.env.instance.is_empty() { "filesystem".to_string() } else { ctx.env.instance.clone() };
    name = name.replace('/', "_");
    if let Some(c) = ctx.env.meta.clone {
        name = format!("{name}_{c}");
    }
    let node = ctx.env.meta.on_node.clone().unwrap_or_else(crate::host::node_name);
    format!("{name}_{node}")
}

/// Depth 20: write the status file and read it back. Others may write
/// the volume: the file goes into a status directory the agent owns (root,
/// 0700, created on first use, refused when it is a symlink or someone
/// else's), replaces whatever is there without following it, and is read
/// back bounded and without blocking (crate::safe_file).
fn status_file_round_trip(ctx: &Ctx, cfg: &Config, mp: &str, dl: &Deadline) -> Result<(), AgentError> {
    let path = status_path(ctx, cfg, mp);
    let stamp = format!(
        "{} {}\n",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0),
        std::process::id()
    );
    let (mp2, prefix, name, s) = (mp.to_string(), cfg.statusfile_prefix.clone(), status_name(ctx), stamp.clone());
    let result = bounded(format!("writing the status file {path}"), dl, move || {
        let dir = status_dir(&mp2, &prefix)?;
        let file = format!("{}{name}", file_prefix(&prefix));
        dir.write_new(&file, s.as_bytes(), 0o600)?;
        dir.read_bounded(&file, 4096)
    })?;
    let got = String::from_utf8_lossy(&result?).into_owned();
    if got != stamp {
        return Err(FsError::StatusMismatch { path, got }.into());
    }
    Ok(())
}

/// The directory part of statusfile_prefix below the mount point, opened
/// safely (the mount point itself when the prefix has none).
fn status_dir(mp: &str, prefix: &str) -> Result<SafeDir, SafeFileError> {
    let base = SafeDir::open(std::path::Path::new(mp))?;
    match prefix.rsplit_once('/') {
        Some((dir, _)) if !dir.trim_matches('/').is_empty() => base.private_dir(dir, 0o700),
        _ => Ok(base),
    }
}

fn file_prefix(prefix: &str) -> &str {
    prefix.rsplit_once('/').map_or(prefix, |(_, f)| f)
}

fn remove_status_file(ctx: &Ctx, cfg: &Config, mp: &str, dl: &Deadline) {
    let short = dl.within(Duration::from_secs(1));
    let (mp, prefix, name) = (mp.to_string(), cfg.statusfile_prefix.clone(), status_name(ctx));
    let _ = bounded("removing the status file", &short, move || {
        // Nothing to remove where no status directory was ever made: stop
        // does not create one.
        let dir = prefix.rsplit_once('/').map_or("", |(d, _)| d);
        if std::fs::symlink_metadata(std::path::Path::new(&mp).join(dir)).is_err() {
            return Ok(());
        }
        status_dir(&mp, &prefix).and_then(|d| d.remove(&format!("{}{name}", file_prefix(&prefix))))
    });
}

/// Depth 10: read the first 4 KiB of the device, bypassing the page cache;
/// filesystems without a device get a statfs of the mount point instead, and
/// network filesystems nothing.
fn read_device(cfg: &Config, m: &MountEntry, dl: &Deadline) -> Result<(), AgentError> {
    let mp = m.mount_point.as_str();
    let device = match &cfg.device {
        Device::Block(d) => d.clone(),
        // The kernel's name for the device the tag resolved to at mount.
        Device::Tag { .. } => m.source.clone(),
        Device::Network(_) => return Ok(()),
        Device::Bind(_) | Device::Virtual(_) => {
            let path = mp.to_string();
            let rc = bounded(format!("statfs {mp}"), dl, move || {
                nix::sys::statvfs::statvfs(path.as_str()).map(drop).map_err(std::io::Error::from)
            })?;
            return rc
                .map_err(|source| FsError::Io(crate::error::IoError::new("statfs", mp.to_string(), source)).into());
        }
    };
    let d = device.clone();
    let r = bounded(format!("reading {device}"), dl, move || direct_read(&d))?;
    r.map_err(|source| FsError::Io(crate::error::IoError::new("read", device, source)).into())
}

fn direct_read(path: &str) -> std::io::Result<()> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    const LEN: usize = 4096;
    let direct = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(path);
    let mut f = match direct {
        Ok(f) => f,
        // Some devices refuse O_DIRECT; a plain read still proves the path.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => std::fs::File::open(path)?,
        Err(e) => return Err(e),
    };
    // O_DIRECT wants a block-aligned buffer: the type carries the alignment.
    #[repr(C, align(4096))]
    struct Block([u8; LEN]);
    let mut block = Box::new(Block([0; LEN]));
    f.read(&mut block.0).map(|_| ())
}

/// Unmount one mount: umount first; when busy, signal the processes that
/// hold exactly this mount (term, then kill, spread over the deadline) and
/// try again.
fn unmount(sys: &dyn System, cfg: &Config, m: &MountEntry, dl: &Deadline) -> Result<(), AgentError> {
    let mp = &m.mount_point;
    let forced = kinds::is_network(&m.fstype) || kinds::is_fuse(&m.fstype);
    let mut argv = vec!["umount", "--no-canonicalize"];
    if forced {
        argv.push("-f");
    }
    argv.push(mp);
    let started = Instant::now();
    // Term signals for the first half of what is left (once with fast_stop).
    let term_phase = dl.remaining() / 2;
    let mut rounds = 0u32;
    let mut last_holders: String;
    let mut last_logged = String::new();
    loop {
        let attempt = dl.within(Duration::from_secs(10));
        let last_err = match sys.run(&argv, &attempt) {
            Ok(f) if f.code == 0 => return Ok(()),
            Ok(f) => exec::one_line(&f.stderr),
            Err(e) => e.to_string(),
        };
        let table = read_table(sys)?;
        if table.by_id(m.id).is_none() {
            return Ok(()); // gone after all (e.g. umount timed out late)
        }
        if cfg.force_unmount == ForceUnmount::No {
            let h = sys.holders(m.id, &table);
            return Err(FsError::Busy { dir: mp.clone(), holders: describe(&h, &last_err) }.into());
        }
        let h = sys.holders(m.id, &table);
        last_holders = describe(&h, &last_err);
        if dl.expired() {
            break;
        }
        let use_kill = if cfg.fast_stop { rounds >= 1 } else { started.elapsed() >= term_phase };
        let sigs = if use_kill { &cfg.kill_signals } else { &cfg.term_signals };
        if !h.is_empty() {
            let names: Vec<String> = h.iter().map(|x| format!("{} {} ({})", x.pid, x.comm, x.how)).collect();
            let sig_names: Vec<String> = sigs.iter().map(|s| holders::signal_name(*s)).collect();
            let line = format!("{mp} is busy; sending {} to {}", sig_names.join(" "), names.join(", "));
            // Say it once per change, not once per round.
            if line != last_logged {
                info!("{line}");
                last_logged = line;
            }
            for s in sigs {
                sys.signal(&h, *s);
            }
        }
        rounds += 1;
        if !dl.sleep(cfg.signal_delay.min(Duration::from_secs(5)).max(Duration::from_millis(100))) {
            break;
        }
    }
    Err(FsError::Busy { dir: mp.clone(), holders: last_holders }.into())
}

fn describe(h: &[holders::Holder], umount_err: &str) -> String {
    if h.is_empty() {
        return format!("no process found holding it; umount said: {umount_err}");
    }
    let list: Vec<String> = h.iter().map(|x| format!("{} {} ({})", x.pid, x.comm, x.how)).collect();
    list.join(", ")
}

#[cfg(test)]
mod tests;
