//! One lab node: a network namespace on the lab's switch, a mount and UTS
//! namespace of its own (its own /etc/corosync, /var/lib/pacemaker, logs,
//! /etc/hosts, tmpfs /run, /dev/shm and /srv, sysfs, and haven's binary as
//! the OCF agents and the fence agent), and its corosync and pacemakerd.
//! Powering off kills every process of those namespaces and drops the
//! mount namespace; powering on builds it again, as a reboot would.

use super::error::LabError;
use super::process;
use super::state::{self, Daemon, NodeState, State, FENCE_AGENT, SWITCH};
use crate::ocf::Deadline;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const STEP: Duration = Duration::from_secs(20);

/// Run a program on the host, bounded.
pub fn run(argv: &[&str]) -> Result<String, LabError> {
    Ok(crate::exec::run_ok(argv, &Deadline::after(STEP))?.stdout)
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// nsenter arguments that put a program into the node's namespaces.
pub fn enter_args(name: &str) -> Vec<String> {
    vec![
        "nsenter".into(),
        format!("--mount={}", state::mnt_handle(name).display()),
        format!("--uts={}", state::uts_handle(name).display()),
        format!("--net={}", state::netns_path(name).display()),
        "--".into(),
    ]
}

/// Run a program inside the node, bounded.
pub fn run_in(name: &str, argv: &[&str]) -> Result<String, LabError> {
    let mut full = enter_args(name);
    full.extend(argv.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = full.iter().map(String::as_str).collect();
    run(&refs)
}

/// The switch: a bridge in a namespace of its own (never the root one).
pub fn create_switch() -> Result<(), LabError> {
    let sw = state::netns_name(SWITCH);
    run(&["ip", "netns", "add", &sw])?;
    run(&["ip", "-n", &sw, "link", "set", "lo", "up"])?;
    run(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"])?;
    run(&["ip", "-n", &sw, "link", "set", "br0", "up"])?;
    Ok(())
}

/// A namespace `who` with `eth0` at `addr`/24, plugged into switch `port`.
pub fn plug(who: &str, port: &str, addr: &str) -> Result<(), LabError> {
    let ns = state::netns_name(who);
    let sw = state::netns_name(SWITCH);
    run(&["ip", "netns", "add", &ns])?;
    run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
    run(&["ip", "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", port, "netns", &sw])?;
    run(&["ip", "-n", &sw, "link", "set", port, "master", "br0", "up"])?;
    run(&["ip", "-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
    run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
    Ok(())
}

/// Set a node's switch port up or down (a cable pulled or put back).
pub fn set_port(index: u32, up: bool) -> Result<(), LabError> {
    let sw = state::netns_name(SWITCH);
    run(&["ip", "-n", &sw, "link", "set", &state::port_name(index), if up { "up" } else { "down" }])?;
    Ok(())
}

fn mkdir(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<(), LabError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).map_err(LabError::io("create", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(LabError::io("chmod", path))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(LabError::io("chown", path))?;
    }
    Ok(())
}

/// uid of hacluster and gid of haclient, as Pacemaker's daemons run.
fn hacluster() -> Result<(u32, u32), LabError> {
    let user = nix::unistd::User::from_name("hacluster").ok().flatten();
    let group = nix::unistd::Group::from_name("haclient").ok().flatten();
    match (user, group) {
        (Some(u), Some(g)) => Ok((u.uid.as_raw(), g.gid.as_raw())),
        _ => Err(LabError::Refused("user hacluster or group haclient is missing: is pacemaker installed?".into())),
    }
}

/// The node's files on the host: what its bind mounts show it.
pub fn write_files(node: &NodeState, corosync_conf: &str, hosts: &str, cib: &str) -> Result<(), LabError> {
    let owner = Some(hacluster()?);
    let dir = state::node_dir(&node.name);
    mkdir(&dir, 0o755, None)?;
    mkdir(&dir.join("etc-corosync"), 0o755, None)?;
    mkdir(&dir.join("var-lib-corosync"), 0o755, None)?;
    mkdir(&dir.join("log-corosync"), 0o755, None)?;
    mkdir(&dir.join("var-lib-pacemaker"), 0o755, None)?;
    for sub in ["cib", "pengine", "blackbox", "cores"] {
        mkdir(&dir.join("var-lib-pacemaker").join(sub), 0o750, owner)?;
    }
    mkdir(&dir.join("log-pacemaker"), 0o770, owner)?;
    mkdir(&dir.join("log-pacemaker/bundles"), 0o770, owner)?;
    let write = |p: PathBuf, text: &str| std::fs::write(&p, text).map_err(LabError::io("write", p));
    write(dir.join("etc-corosync/corosync.conf"), corosync_conf)?;
    write(dir.join("hosts"), hosts)?;
    let cib_file = dir.join("var-lib-pacemaker/cib/cib.xml");
    write(cib_file.clone(), cib)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cib_file, std::fs::Permissions::from_mode(0o600))
        .map_err(LabError::io("chmod", &cib_file))?;
    if let Some((u, g)) = owner {
        std::os::unix::fs::chown(&cib_file, Some(u), Some(g)).map_err(LabError::io("chown", &cib_file))?;
    }
    Ok(())
}

/// The lab-wide overlay layers: resource.d/haven/<agent> and
/// sbin/fence_haven, links to each node's own haven binary (see
/// [`super::upgrade`]: a node can be upgraded alone).
pub fn write_agent_layers() -> Result<(), LabError> {
    let binary = super::upgrade::in_node_binary();
    let ocf = state::lab_dir().join("ocf/haven");
    mkdir(&ocf, 0o755, None)?;
    for name in crate::agents::names() {
        let link = ocf.join(name);
        std::os::unix::fs::symlink(&binary, &link).map_err(LabError::io("link", &link))?;
    }
    let sbin = state::lab_dir().join("sbin");
    mkdir(&sbin, 0o755, None)?;
    let link = sbin.join(FENCE_AGENT);
    std::os::unix::fs::symlink(&binary, &link).map_err(LabError::io("link", &link))?;
    Ok(())
}

/// Mount points under `prefix` in our mount table, deepest last.
fn mounts_under(prefix: &str) -> Vec<String> {
    let table = crate::mount::MountTable::read().unwrap_or_default();
    table
        .entries
        .into_iter()
        .map(|e| e.mount_point)
        .filter(|m| m == prefix.trim_end_matches('/') || m.starts_with(prefix))
        .collect()
}

/// Lazily unmount everything under `prefix` (deepest first); whether
/// there was anything.
pub fn unmount_under(prefix: &str) -> bool {
    let found = mounts_under(prefix);
    for m in found.iter().rev() {
        let _ = run(&["umount", "-n", "-l", m]);
    }
    !found.is_empty()
}

fn is_mountpoint(path: &Path) -> bool {
    let p = path_str(path);
    mounts_under(&p).contains(&p)
}

/// Make sure nothing from a previous boot is bound on the handles.
pub fn release_handles(name: &str) {
    for h in [state::mnt_handle(name), state::uts_handle(name)] {
        while is_mountpoint(&h) {
            if run(&["umount", "-n", &path_str(&h)]).is_err() {
                break;
            }
        }
        let _ = std::fs::remove_file(&h);
    }
}

/// Build the node's mount and UTS namespaces (from the host's mount table,
/// then its own mounts on top).
fn build_mounts(st: &State, node: &NodeState) -> Result<(), LabError> {
    let name = &node.name;
    release_handles(name);
    let (mnt, uts) = (state::mnt_handle(name), state::uts_handle(name));
    for h in [&mnt, &uts] {
        std::fs::write(h, "").map_err(LabError::io("create", h))?;
    }
    run(&[
        "unshare",
        &format!("--mount={}", mnt.display()),
        &format!("--uts={}", uts.display()),
        "--propagation",
        "private",
        "true",
    ])?;
    run_in(name, &["hostname", name])?;
    // Whatever the host has mounted under /run (network namespace handles,
    // other tests' mount namespaces) and the lab's own handles must not be
    // held by this node: lazily detach them in its view, deepest first.
    let mut stale = mounts_under("/run/");
    stale.extend(mounts_under(&format!("{}/", state::ns_dir().display())));
    stale.push(path_str(&state::ns_dir()));
    // One umount for all (it goes on past the ones that fail): each
    // nsenter costs about a second in the TCG guest.
    if !stale.is_empty() {
        let mut argv = vec!["umount", "-n", "-l"];
        argv.extend(stale.iter().rev().map(String::as_str));
        let _ = run_in(name, &argv);
    }
    let dir = state::node_dir(name);
    let bind = |src: PathBuf, dst: &str| -> Result<(), LabError> {
        run_in(name, &["mount", "-n", "--bind", &path_str(&src), dst]).map(|_| ())
    };
    bind(dir.join("etc-corosync"), "/etc/corosync")?;
    bind(dir.join("var-lib-corosync"), "/var/lib/corosync")?;
    bind(dir.join("var-lib-pacemaker"), "/var/lib/pacemaker")?;
    bind(dir.join("log-corosync"), "/var/log/corosync")?;
    bind(dir.join("log-pacemaker"), "/var/log/pacemaker")?;
    bind(dir.join("hosts"), "/etc/hosts")?;
    // -n: mount(8) must not record these in the host's /run/mount.
    run_in(name, &["mount", "-n", "-t", "tmpfs", "-o", "mode=0755,size=64m", "tmpfs", "/run"])?;
    run_in(name, &["mount", "-n", "-t", "tmpfs", "-o", "mode=1777,size=64m", "tmpfs", "/dev/shm"])?;
    run_in(name, &["mount", "-n", "-t", "tmpfs", "-o", "mode=0755,size=16m", "tmpfs", "/srv"])?;
    // A sysfs of the node's own network namespace: without it
    // /sys/class/net shows the host's interfaces.
    // The cgroup tree (the instance agent's services live in it) is kept
    // across: moved aside, sysfs mounted, moved back.
    run_in(name, &["mkdir", "-p", "/run/haven-lab/cgroup"])?;
    run_in(name, &["mount", "-n", "--rbind", "/sys/fs/cgroup", "/run/haven-lab/cgroup"])?;
    run_in(name, &["mount", "-n", "-t", "sysfs", "sysfs", "/sys"])?;
    run_in(name, &["mount", "-n", "--move", "/run/haven-lab/cgroup", "/sys/fs/cgroup"])?;
    // Each node its own cgroup v2 subtree, as each machine has its own:
    // a cloned instance has the same name on every node, and its cgroup
    // must not be the other nodes' (starting one would kill the others).
    if let Some(root) = cgroup2_root() {
        let own = root.join(CGROUP_DIR).join(name);
        std::fs::create_dir_all(&own).map_err(LabError::io("create", &own))?;
        run_in(name, &["mount", "-n", "--bind", &path_str(&own), &path_str(&root)])?;
    }
    let lab = state::lab_dir();
    let overlay = |layer: PathBuf, dst: &str| -> Result<(), LabError> {
        let opts = format!("lowerdir={}:{dst}", layer.display());
        run_in(name, &["mount", "-n", "-t", "overlay", "overlay", "-o", &opts, dst]).map(|_| ())
    };
    // The node's own haven binary, which the agent layers link to.
    run_in(name, &["mkdir", "-p", super::upgrade::BIN_IN_NODE])?;
    bind(super::upgrade::bin_dir(name), super::upgrade::BIN_IN_NODE)?;
    overlay(lab.join("ocf"), "/usr/lib/ocf/resource.d")?;
    overlay(lab.join("sbin"), "/usr/sbin")?;
    // The description's directory, for files its resources name.
    let desc_dir = st.description.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    run_in(name, &["mkdir", "-p", "/run/haven-lab/description"])?;
    bind(desc_dir, "/run/haven-lab/description")?;
    // The stand-ins' files (instance files, director configuration).
    run_in(name, &["mkdir", "-p", super::standin::STANDIN_IN_NODE])?;
    bind(state::lab_dir().join(super::standin::STANDIN_SUBDIR), super::standin::STANDIN_IN_NODE)?;
    if st.kernel_real {
        real_kernel_mounts(name)?;
    }
    Ok(())
}

/// A real kernel: nfs-utils' files (the exported tmpfs is under the lab
/// directory, which every node sees).
fn real_kernel_mounts(name: &str) -> Result<(), LabError> {
    let files = state::lab_dir().join(super::kernel::FILES_SUBDIR);
    let bind = |src: PathBuf, dst: &str| -> Result<(), LabError> {
        run_in(name, &["mount", "-n", "--bind", &path_str(&src), dst]).map(|_| ())
    };
    bind(files.join("nfs.conf"), "/etc/nfs.conf")?;
    bind(files.join("exports"), "/etc/exports")?;
    run_in(name, &["mkdir", "-p", super::kernel::PLACEHOLDER])?;
    Ok(())
}

/// The lab's cgroups, under the host's cgroup v2 root.
const CGROUP_DIR: &str = "haven-lab";

/// Where the host has its cgroup v2 hierarchy mounted.
fn cgroup2_root() -> Option<PathBuf> {
    let table = crate::mount::MountTable::read().ok()?;
    table.entries.into_iter().find(|e| e.fstype == "cgroup2").map(|e| PathBuf::from(e.mount_point))
}

/// Remove the lab's cgroups (empty once every lab process is gone),
/// deepest first.
pub fn remove_cgroups() -> bool {
    fn rm(dir: &Path) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rm(&e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    match cgroup2_root().map(|r| r.join(CGROUP_DIR)) {
        Some(dir) if dir.exists() => {
            rm(&dir);
            true
        }
        _ => false,
    }
}

/// Start a daemon inside the node, detached from our process group, its
/// output appended to <node dir>/<daemon>.out. The pid is the daemon's own:
/// nsenter execs into it.
fn spawn(name: &str, argv: &[&str], env: &[(&str, &str)]) -> Result<Daemon, LabError> {
    let out_path = state::node_dir(name).join(format!("{}.out", argv[0]));
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out_path)
        .map_err(LabError::io("open", &out_path))?;
    let err = out.try_clone().map_err(LabError::io("open", &out_path))?;
    let enter = enter_args(name);
    let mut c = Command::new(&enter[0]);
    c.args(&enter[1..]).args(argv);
    c.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").env("LC_ALL", "C");
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(Stdio::null()).stdout(out).stderr(err);
    // Its own process group: ^C on `haven lab up` must not reach the nodes.
    use std::os::unix::process::CommandExt;
    c.process_group(0);
    let child = c.spawn().map_err(|source| LabError::Spawn { program: argv[0].into(), node: name.into(), source })?;
    Ok(Daemon { name: argv[0].into(), pid: child.id() as i32 })
}

/// Power a node on: fresh namespaces, then corosync, then pacemakerd.
pub fn boot(st: &State, node: &NodeState) -> Result<Vec<Daemon>, LabError> {
    build_mounts(st, node)?;
    let mut daemons = Vec::new();
    if st.kernel_real {
        // The private network of the description (the NFS server's
        // address) on the same link, and rpcbind as a machine's boot
        // starts it (Debian's NFS init scripts refuse to run without it).
        let private = format!("{}/24", super::kernel::private_addr(node.index));
        run_in(&node.name, &["ip", "addr", "replace", &private, "dev", "eth0"])?;
        daemons.push(spawn(&node.name, &["rpcbind", "-f", "-w"], &[])?);
    }
    let corosync = spawn(&node.name, &["corosync", "-f"], &[])?;
    // pacemakerd gives up when corosync is not answering yet.
    let deadline = Deadline::after(Duration::from_secs(15));
    while run_in(&node.name, &["corosync-cfgtool", "-s"]).is_err() {
        if deadline.expired() || !process::alive(corosync.pid) {
            return Err(LabError::Timeout {
                what: format!("corosync answering on {}", node.name),
                secs: 15,
                detail: format!(" (see {})", state::node_dir(&node.name).join("log-corosync/corosync.log").display()),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pacemakerd = spawn(
        &node.name,
        &["pacemakerd"],
        &[("PCMK_logfile", "/var/log/pacemaker/pacemaker.log"), ("PCMK_logfacility", "none")],
    )?;
    daemons.extend([corosync, pacemakerd]);
    Ok(daemons)
}

/// The namespaces of a node, by inode (the mount namespace only while it
/// exists).
fn inodes(name: &str) -> HashSet<u64> {
    [state::netns_path(name), state::mnt_handle(name), state::uts_handle(name)]
        .iter()
        .filter_map(|p| process::ns_inode(p))
        .collect()
}

/// Pull the plug: every process of the node dies at once, its link goes
/// down, its mount namespace (and every mount a resource made in it) goes.
pub fn poweroff(node: &NodeState) -> Result<(), LabError> {
    if !plugged(&node.name) {
        return Ok(());
    }
    let ns = inodes(&node.name);
    // Link first: nothing the node sends while dying may reach the others.
    set_port(node.index, false)?;
    let left = process::kill_all_in(&ns, Duration::from_secs(10));
    if left > 0 {
        return Err(LabError::Timeout {
            what: format!("every process of {} ending", node.name),
            secs: 10,
            detail: format!(" ({left} left)"),
        });
    }
    release_handles(&node.name);
    // Addresses, routes and sysctls do not survive a power cycle either: the
    // network namespace goes too (and its link with it); boot plugs anew.
    run(&["ip", "netns", "del", &state::netns_name(&node.name)])?;
    Ok(())
}

/// Whether the node's network namespace exists (it does not while off).
pub fn plugged(name: &str) -> bool {
    state::netns_path(name).exists()
}

/// Processes left in any of the lab's namespaces (for `lab down`).
pub fn kill_everything(names: &[String]) -> usize {
    let mut ns = HashSet::new();
    for n in names {
        ns.extend(inodes(n));
    }
    process::kill_all_in(&ns, Duration::from_secs(10))
}
