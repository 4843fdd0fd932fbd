//! `haven lab`: a real Pacemaker + Corosync cluster on one machine, one node
//! per network + mount + UTS namespace, joined by a bridge in a switch
//! namespace, running a cluster description with haven's binary as the
//! agents and a fence agent that really isolates nodes. For demos, for
//! scenario tests and for the failover benchmark.

pub mod client;
pub mod cluster;
pub mod config;
pub mod error;
pub mod fence;
pub mod kernel;
pub mod node;
pub mod process;
pub mod standin;
pub mod state;
pub mod upgrade;
pub mod volume;
pub mod watch;

pub use error::LabError;
use state::{NodeState, State, CLIENT, CLIENT_ADDR, SWITCH};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the cluster may take to form once every node booted, and its
/// resources to start (bounds for failures: a host lab settles in about
/// 10 s; under the QEMU guest's TCG each node takes 20-70 s to boot and the
/// resources a minute or more).
const FORM_LIMIT: Duration = Duration::from_secs(60);
const SETTLE_LIMIT: Duration = Duration::from_secs(180);

/// Set by SIGINT/SIGTERM: long waits stop and the lab is torn down.
fn interrupted(flag: &Option<Arc<AtomicBool>>) -> bool {
    flag.as_ref().is_some_and(|f| f.load(Ordering::SeqCst))
}

/// Progress lines with the time since `start`.
pub struct Progress {
    start: Instant,
    last: String,
}

impl Progress {
    pub fn new() -> Progress {
        Progress { start: Instant::now(), last: String::new() }
    }
    pub fn say(&mut self, msg: &str) {
        if msg != self.last {
            eprintln!("[{:6.1} s] {msg}", self.start.elapsed().as_secs_f64());
            self.last = msg.to_string();
        }
    }
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

/// What `lab up` reports.
pub struct UpReport {
    pub formed_after: Duration,
    pub settled_after: Option<Duration>,
    pub snapshot: cluster::Snapshot,
}

fn need_tools() -> Result<(), LabError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(LabError::Refused("haven lab needs root (namespaces, mounts)".into()));
    }
    for tool in
        ["corosync", "pacemakerd", "crm_mon", "corosync-cfgtool", "nsenter", "unshare", "ip", "losetup", "mount"]
    {
        if crate::exec::which(tool).is_none() {
            return Err(LabError::Refused(format!("{tool} is not installed (script/setup installs it)")));
        }
    }
    Ok(())
}

/// `haven lab up FILE [--nodes N]`. On any failure or interrupt the lab is
/// torn down before the error is returned.
pub fn up(file: &Path, nodes: Option<usize>, choice: kernel::Choice) -> Result<UpReport, LabError> {
    need_tools()?;
    let kernel = kernel::detect(choice)?;
    if state::lab_dir().exists() {
        return Err(LabError::AlreadyUp(state::lab_dir().to_path_buf()));
    }
    let d = crate::generate::parse::load(file).map_err(crate::generate::GenerateError::from)?;
    let opts = crate::generate::Options { installed_metadata: false, ..Default::default() };
    let findings = crate::generate::check(&d, &opts).findings;
    if !findings.is_empty() {
        return Err(crate::generate::GenerateError::Lint { file: d.file.clone(), findings }.into());
    }
    let lab_nodes = config::lab_nodes(&d, nodes)?;
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, flag.clone());
    }
    let flag = Some(flag);
    let mut progress = Progress::new();
    let names: Vec<String> = lab_nodes.iter().map(|n| n.name.clone()).collect();
    let allowed = standin::stopped_allowed(&d, &names);
    progress.say(match kernel {
        kernel::Kernel::Real => "kernel: IPVS and nfsd present: directors on IPVS, NFS served by the kernel",
        kernel::Kernel::Standins => "kernel: stand-ins for IPVS and NFS",
    });
    let result = build(file, &d, &lab_nodes, kernel, &flag, &mut progress)
        .and_then(|()| wait_up(&flag, &mut progress, &allowed));
    if let Err(e) = &result {
        progress.say(&format!("failed: {e}; tearing the lab down"));
        let _ = down();
    }
    result
}

fn build(
    file: &Path,
    d: &crate::generate::model::Description,
    lab_nodes: &[crate::generate::model::Node],
    kernel: kernel::Kernel,
    flag: &Option<Arc<AtomicBool>>,
    progress: &mut Progress,
) -> Result<(), LabError> {
    let lock = state::Lock::take()?;
    let binary = std::env::current_exe().map_err(LabError::io("find", "/proc/self/exe"))?;
    let description = std::fs::canonicalize(file).map_err(LabError::io("resolve", file))?;
    std::fs::create_dir_all(state::ns_dir()).map_err(LabError::io("create", state::ns_dir()))?;
    // Namespace handles need a private mount, or binding them propagates.
    let ns = state::ns_dir().display().to_string();
    node::run(&["mount", "-n", "--bind", &ns, &ns])?;
    node::run(&["mount", "-n", "--make-private", &ns])?;
    let mut st = State {
        cluster: d.cluster.name.clone(),
        binary: binary.clone(),
        description,
        holder: spawn_holder()?,
        nodes: lab_nodes
            .iter()
            .enumerate()
            .map(|(i, n)| NodeState {
                name: n.name.clone(),
                id: n.id,
                index: i as u32 + 1,
                addr: config::node_addr(i as u32 + 1),
                daemons: Vec::new(),
            })
            .collect(),
        volumes: Vec::new(),
        created_dirs: Vec::new(),
        kernel_real: kernel == kernel::Kernel::Real,
        exports: Vec::new(),
    };
    st.save()?;
    progress.say(&format!("building {} nodes of {}", st.nodes.len(), d.cluster.name));
    let addrs: Vec<(String, String)> = st.nodes.iter().map(|n| (n.name.clone(), n.addr.clone())).collect();
    let t = standin::translate_for(d, &addrs, kernel);
    if st.kernel_real {
        real_kernel_files(&t, &mut st, progress)?;
    }
    write_standins(&t, progress)?;
    create_mount_points(&t, &mut st, progress)?;
    let d = &t.description;
    for (label, fstype) in config::wanted_volumes(d) {
        let seed = t.seeds.iter().find(|(l, _)| *l == label).map(|(_, dir)| state::lab_dir().join(dir));
        let v = volume::create(&label, &fstype, seed.as_deref())?;
        progress.say(&format!("volume LABEL={label}: {fstype} on {}", v.device));
        st.volumes.push(v);
        st.save()?;
    }
    node::create_switch()?;
    node::plug(CLIENT, "labc", CLIENT_ADDR)?;
    let rendered = crate::generate::render(
        &config::for_lab(d, lab_nodes, &st.volumes),
        crate::generate::Format::Cib,
        &Default::default(),
    )?;
    let coro = config::corosync_conf(&st.cluster, &st.nodes);
    let hosts = config::hosts(&st.nodes);
    node::write_agent_layers()?;
    for n in &st.nodes {
        node::plug(&n.name, &state::port_name(n.index), &n.addr)?;
        node::write_files(n, &coro, &hosts, config::cib_xml(&rendered))?;
        upgrade::install(&n.name, &binary)?;
    }
    boot_all(&mut st, flag, progress)?;
    drop(lock);
    Ok(())
}

/// A real kernel: the nodes' nfs-utils files, and a tmpfs for each export
/// (mounted before the stand-ins' files are written into it).
fn real_kernel_files(t: &standin::Translation, st: &mut State, progress: &mut Progress) -> Result<(), LabError> {
    let dir = state::lab_dir().join(kernel::FILES_SUBDIR);
    std::fs::create_dir_all(&dir).map_err(LabError::io("create", &dir))?;
    for (name, text) in [("nfs.conf", kernel::nfs_conf()), ("exports", kernel::exports_file())] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(LabError::io("write", &path))?;
    }
    for e in &t.exports {
        let source = state::lab_dir().join(standin::EXPORTS_SUBDIR).join(&e.id);
        std::fs::create_dir_all(&source).map_err(LabError::io("create", &source))?;
        let s = source.display().to_string();
        node::run(&["mount", "-n", "-t", "tmpfs", "-o", "mode=0755,size=64m", "haven-lab-export", &s])?;
        st.exports.push(state::LabExport { source, directory: e.directory.clone(), nodes: e.nodes.clone() });
        st.save()?;
        progress.say(&format!("export {}: tmpfs {s}", e.directory));
    }
    Ok(())
}

/// The holder: a process in our namespaces for the fence agent to enter.
fn spawn_holder() -> Result<i32, LabError> {
    use std::os::unix::process::CommandExt;
    let mut c = std::process::Command::new("sleep");
    c.arg("infinity").stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null());
    c.stderr(std::process::Stdio::null()).process_group(0);
    let child =
        c.spawn().map_err(|source| LabError::Spawn { program: "sleep".into(), node: "the host".into(), source })?;
    Ok(child.id() as i32)
}

/// The stand-ins' files (configurations, seeds) in the lab's directory.
fn write_standins(t: &standin::Translation, progress: &mut Progress) -> Result<(), LabError> {
    for line in &t.lines {
        progress.say(&format!("stand-in: {line}"));
    }
    for f in &t.files {
        let path = state::lab_dir().join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(LabError::io("create", parent))?;
        }
        std::fs::write(&path, &f.text).map_err(LabError::io("write", &path))?;
    }
    let dir = state::lab_dir().join(standin::STANDIN_SUBDIR);
    std::fs::create_dir_all(&dir).map_err(LabError::io("create", &dir))
}

/// Mount points: the nodes share the host's filesystem below their own
/// mounts; what the lab creates here it removes at `lab down`. (/srv and
/// /run are each node's own tmpfs: the agent makes those.)
fn create_mount_points(t: &standin::Translation, st: &mut State, progress: &mut Progress) -> Result<(), LabError> {
    for dir in t.mount_points.iter().filter(|m| !m.starts_with("/srv/") && !m.starts_with("/run/")) {
        let mut missing = Vec::new();
        let mut p = Path::new(dir);
        while !p.exists() {
            missing.push(p.to_path_buf());
            match p.parent() {
                Some(parent) => p = parent,
                None => break,
            }
        }
        for m in missing.into_iter().rev() {
            std::fs::create_dir(&m).map_err(LabError::io("create", &m))?;
            progress.say(&format!("mount point {} created (removed at lab down)", m.display()));
            st.created_dirs.push(m);
            st.save()?;
        }
    }
    Ok(())
}

fn boot_all(st: &mut State, flag: &Option<Arc<AtomicBool>>, progress: &mut Progress) -> Result<(), LabError> {
    for i in 0..st.nodes.len() {
        if interrupted(flag) {
            return Err(LabError::Refused("interrupted".into()));
        }
        let daemons = node::boot(st, &st.nodes[i])?;
        st.nodes[i].daemons = daemons;
        st.save()?;
        progress.say(&format!("{} booted (corosync and pacemakerd)", st.nodes[i].name));
    }
    Ok(())
}

/// A node that is on, to ask crm_mon from.
fn observer(st: &State) -> Option<&NodeState> {
    st.nodes.iter().find(|n| n.is_on())
}

fn wait_up(
    flag: &Option<Arc<AtomicBool>>,
    progress: &mut Progress,
    allowed: &[(String, usize)],
) -> Result<UpReport, LabError> {
    let st = State::load()?;
    let names: Vec<String> = st.nodes.iter().map(|n| n.name.clone()).collect();
    let mut last;
    let booted = progress.elapsed();
    let formed_after = loop {
        if interrupted(flag) {
            return Err(LabError::Refused("interrupted".into()));
        }
        if let Some(Ok(s)) = observer(&st).map(|n| cluster::snapshot(&n.name)) {
            let online = s.nodes.iter().filter(|(_, on)| *on).count();
            progress.say(&format!(
                "forming cluster: {online}/{} nodes online, DC {}",
                names.len(),
                if s.dc { "elected" } else { "pending" }
            ));
            let formed = s.formed(&names);
            last = s;
            if formed {
                break progress.elapsed();
            }
        }
        if progress.elapsed() > booted + FORM_LIMIT {
            return Err(LabError::Timeout {
                what: "the cluster forming".into(),
                secs: FORM_LIMIT.as_secs(),
                detail: format!(" (logs under {})", state::lab_dir().join("nodes").display()),
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    progress.say(&format!("cluster formed in {:.1} s", formed_after.as_secs_f64()));
    let until = progress.elapsed() + SETTLE_LIMIT;
    let settled_after = loop {
        if interrupted(flag) {
            return Err(LabError::Refused("interrupted".into()));
        }
        if let Some(Ok(s)) = observer(&st).map(|n| cluster::snapshot(&n.name)) {
            let running = s.resources.iter().filter(|r| r.active).count();
            progress.say(&format!("waiting for resources: {running}/{} running", s.resources.len()));
            let settled = s.settled_allowing(allowed);
            last = s;
            if settled {
                break Some(progress.elapsed());
            }
        }
        if progress.elapsed() > until {
            progress.say("some resources did not start; the lab stays up (see `haven lab status`)");
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    Ok(UpReport { formed_after, settled_after, snapshot: last })
}

/// `haven lab down`: every process, namespace, mount, loop device and file
/// of the lab goes, whatever state it is in. Safe to run twice. Returns
/// what it removed, for the message.
pub fn down() -> Result<Vec<String>, LabError> {
    let mut removed = Vec::new();
    if !state::lab_dir().exists() && lab_netns().is_empty() {
        return Ok(removed);
    }
    let _lock = state::Lock::take()?;
    let st = State::load().ok();
    let mut names: Vec<String> = lab_netns();
    if let Ok(dir) = std::fs::read_dir(state::ns_dir()) {
        for e in dir.flatten() {
            if let Some(stem) = e.path().file_stem().and_then(|s| s.to_str()) {
                names.push(stem.to_string());
            }
        }
    }
    if let Some(st) = &st {
        names.extend(st.nodes.iter().map(|n| n.name.clone()));
    }
    names.sort();
    names.dedup();
    if let Some(st) = &st {
        for n in &st.nodes {
            for d in &n.daemons {
                process::kill_pid(d.pid, &d.name, Duration::from_secs(5));
            }
        }
        if process::kill_pid(st.holder, "sleep", Duration::from_secs(5)) {
            removed.push("holder process".into());
        }
    }
    let left = node::kill_everything(&names);
    if left > 0 {
        return Err(LabError::Timeout {
            what: "every lab process ending".into(),
            secs: 10,
            detail: format!(" ({left} left)"),
        });
    }
    for n in &names {
        node::release_handles(n);
    }
    if node::remove_cgroups() {
        removed.push("lab cgroups".into());
    }
    let ns = state::ns_dir();
    let ns_s = ns.display().to_string();
    while crate::mount::MountTable::read().is_ok_and(|t| t.entries.iter().any(|e| e.mount_point == ns_s)) {
        if node::run(&["umount", "-n", &ns_s]).is_err() {
            break;
        }
    }
    for n in lab_netns() {
        if node::run(&["ip", "netns", "del", &state::netns_name(&n)]).is_ok() {
            removed.push(format!("network namespace {}", state::netns_name(&n)));
        }
    }
    if let Ok(dir) = std::fs::read_dir(state::lab_dir().join("volumes")) {
        for e in dir.flatten() {
            volume::remove(&e.path());
            removed.push(format!("volume {}", e.path().display()));
        }
    }
    if let Some(st) = &st {
        for dir in st.created_dirs.iter().rev() {
            if std::fs::remove_dir(dir).is_ok() {
                removed.push(format!("mount point {}", dir.display()));
            }
        }
    }
    if node::unmount_under(&format!("{}/", state::lab_dir().join(standin::EXPORTS_SUBDIR).display())) {
        removed.push("exported tmpfs".into());
    }
    if state::lab_dir().exists() {
        std::fs::remove_dir_all(state::lab_dir()).map_err(LabError::io("remove", state::lab_dir()))?;
        removed.push(state::LAB_DIR.to_string());
    }
    let _ = std::fs::remove_file(state::LOCK_FILE);
    Ok(removed)
}

/// Lab network namespaces that exist, by lab name (switch, client, nodes).
fn lab_netns() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/run/netns") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_prefix(state::NETNS_PREFIX)).map(str::to_string))
        .collect()
}

/// `haven lab status`: nodes (power, link, addresses), crm_mon, placement.
pub fn status() -> Result<String, LabError> {
    let st = State::load()?;
    let mut out = format!("lab {} from {}\n", st.cluster, st.description.display());
    for n in &st.nodes {
        let addrs = node::run(&["ip", "-n", &state::netns_name(&n.name), "-o", "-4", "addr", "show", "dev", "eth0"])
            .map(|o| o.lines().filter_map(|l| l.split_whitespace().nth(3)).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        let port =
            node::run(&["ip", "-n", &state::netns_name(SWITCH), "-o", "link", "show", &state::port_name(n.index)])
                .map(|o| if o.contains("state UP") || o.contains(",UP") { "link up" } else { "link down" })
                .unwrap_or("unplugged");
        // During a rolling upgrade: which nodes run another binary.
        let binary = upgrade::installed(&n.name)
            .ok()
            .filter(|b| *b != st.binary)
            .map(|b| format!("  haven {}", b.display()))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {:<10} {:<4} {:<9} {addrs}{binary}\n",
            n.name,
            if n.is_on() { "on" } else { "off" },
            port
        ));
    }
    match observer(&st) {
        Some(n) => {
            let text = node::run_in(&n.name, &["crm_mon", "-1"]).unwrap_or_else(|e| format!("crm_mon: {e}\n"));
            out.push_str(&format!("\ncrm_mon on {}:\n{text}", n.name));
            if let Ok(s) = cluster::snapshot(&n.name) {
                out.push_str("\nwhere each resource runs:\n");
                out.push_str(&s.placement_text());
            }
        }
        None => out.push_str("\nevery node is off\n"),
    }
    Ok(out)
}

/// The argv that runs a command inside a node (or the client).
pub fn exec_argv(name: &str, cmd: &[String]) -> Result<Vec<String>, LabError> {
    let mut argv = if name == CLIENT {
        vec!["ip".into(), "netns".into(), "exec".into(), state::netns_name(CLIENT)]
    } else {
        State::load()?.node(name)?;
        node::enter_args(name)
    };
    argv.extend(cmd.iter().cloned());
    Ok(argv)
}

/// How to fail a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Every process dies, the link goes down.
    Poweroff,
    /// The link goes down; the node keeps running (a partition).
    Cut,
    /// corosync is killed; pacemaker is left to notice.
    Killcoro,
    /// The node's fence device fails from now on (until `heal`).
    Fencing,
}

impl Failure {
    pub fn parse(s: &str) -> Option<Failure> {
        match s {
            "poweroff" => Some(Failure::Poweroff),
            "cut" => Some(Failure::Cut),
            "killcoro" => Some(Failure::Killcoro),
            "fencing" => Some(Failure::Fencing),
            _ => None,
        }
    }
}

/// `haven lab fail NODE poweroff|cut|killcoro|fencing`.
pub fn fail(name: &str, how: Failure) -> Result<(), LabError> {
    let _lock = state::Lock::take()?;
    let mut st = State::load()?;
    let n = st.node(name)?.clone();
    match how {
        Failure::Poweroff => {
            node::poweroff(&n)?;
            st.node_mut(name)?.daemons.clear();
            st.save()?;
        }
        Failure::Cut if node::plugged(name) => node::set_port(n.index, false)?,
        Failure::Cut => return Err(LabError::Refused(format!("{name} is powered off"))),
        Failure::Fencing => fence::break_for(name)?,
        Failure::Killcoro => {
            let pid = n.daemons.iter().find(|d| d.name == "corosync").map(|d| d.pid);
            match pid {
                Some(pid) if process::kill_pid(pid, "corosync", Duration::from_secs(5)) => {}
                _ => return Err(LabError::Refused(format!("corosync is not running on {name}"))),
            }
        }
    }
    Ok(())
}

/// `haven lab heal NODE`: its fence device repaired, its link up, and
/// powered on when it is off.
pub fn heal(name: &str, delay: Duration) -> Result<(), LabError> {
    // A delayed heal (a fence reboot) must not power on a node of the next
    // lab: the holder identifies the lab it was asked for.
    let asked_for = State::load()?.holder;
    std::thread::sleep(delay);
    let _lock = state::Lock::take()?;
    let mut st = State::load()?;
    if st.holder != asked_for {
        return Err(LabError::Refused(format!("the lab was replaced while {name} waited to be powered on")));
    }
    let n = st.node(name)?.clone();
    fence::repair(name);
    if !node::plugged(name) {
        node::plug(name, &state::port_name(n.index), &n.addr)?;
    }
    node::set_port(n.index, true)?;
    if !n.is_on() {
        let daemons = node::boot(&st, &n)?;
        st.node_mut(name)?.daemons = daemons;
        st.save()?;
    }
    Ok(())
}

/// Where the lab keeps its files (for messages).
pub fn lab_dir() -> PathBuf {
    state::lab_dir().to_path_buf()
}
