//! What a running lab consists of, kept in /var/lib/haven-lab/state.json:
//! read by every `haven lab` command and by the fence agent inside the
//! nodes (the file is on the host's disk, which the nodes see; their /run
//! is a tmpfs of their own). Changes happen under a lock.

use super::error::LabError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything the lab creates on disk lives here.
pub const LAB_DIR: &str = "/var/lib/haven-lab";
/// Serialises changes to the state (the fence agent's power changes run
/// while a CLI command may be changing it too).
pub const LOCK_FILE: &str = "/var/lib/haven-lab.lock";
/// Network namespaces: `ip netns` names, so `ip -n` works on them.
pub const NETNS_PREFIX: &str = "haven-lab-";
pub const SWITCH: &str = "switch";
pub const CLIENT: &str = "client";
/// The client's address on the lab's network.
pub const CLIENT_ADDR: &str = "198.51.100.250";
/// The name the fence agent is found under in the nodes' /usr/sbin.
pub const FENCE_AGENT: &str = "fence_haven";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub cluster: String,
    /// The haven binary: agents, fence agent and the host-side helper.
    pub binary: PathBuf,
    pub description: PathBuf,
    /// A process left in the namespaces `lab up` ran in: the fence agent
    /// enters them (through nsenter --target) to power nodes off and on,
    /// since the nodes' own namespaces cannot see the lab's handles.
    pub holder: i32,
    pub nodes: Vec<NodeState>,
    pub volumes: Vec<Volume>,
    /// Mount points the lab created on the host (the nodes share its
    /// filesystem): removed at `lab down` when empty, deepest first.
    #[serde(default)]
    pub created_dirs: Vec<PathBuf>,
    /// The kernel has IPVS and nfsd: directors on IPVS, NFS served for real
    /// (rpcbind and the lab's /etc/nfs.conf and /etc/exports in every node).
    #[serde(default)]
    pub kernel_real: bool,
    /// Directories exported for real: a tmpfs each, bound onto the nodes
    /// the export may run on.
    #[serde(default)]
    pub exports: Vec<LabExport>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabExport {
    /// The tmpfs on the host, under the lab directory.
    pub source: PathBuf,
    /// Where the nodes see it (the exportfs resource's directory).
    pub directory: String,
    pub nodes: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeState {
    pub name: String,
    /// Corosync node id.
    pub id: u32,
    /// Position in the lab (1-based): the address and the switch port.
    pub index: u32,
    pub addr: String,
    /// corosync and pacemakerd, by their own pids (nsenter execs into them).
    pub daemons: Vec<Daemon>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Daemon {
    pub name: String,
    pub pid: i32,
}

/// A filesystem image on a loop device, standing in for a SAN volume.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Volume {
    pub label: String,
    pub image: PathBuf,
    pub device: String,
}

pub fn lab_dir() -> &'static Path {
    Path::new(LAB_DIR)
}

pub fn state_file() -> PathBuf {
    lab_dir().join("state.json")
}

/// Where mount and UTS namespace handles are bound (a private mount).
pub fn ns_dir() -> PathBuf {
    lab_dir().join("ns")
}

pub fn node_dir(name: &str) -> PathBuf {
    lab_dir().join("nodes").join(name)
}

pub fn netns_name(name: &str) -> String {
    format!("{NETNS_PREFIX}{name}")
}

pub fn netns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(netns_name(name))
}

pub fn mnt_handle(name: &str) -> PathBuf {
    ns_dir().join(format!("{name}.mnt"))
}

pub fn uts_handle(name: &str) -> PathBuf {
    ns_dir().join(format!("{name}.uts"))
}

/// The switch-side end of a node's link.
pub fn port_name(index: u32) -> String {
    format!("lab{index}")
}

impl State {
    pub fn load() -> Result<State, LabError> {
        let path = state_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LabError::NotUp(path)),
            Err(e) => return Err(LabError::Io(crate::error::IoError::new("read", path.display(), e))),
        };
        serde_json::from_str(&text).map_err(|e| LabError::State { path, reason: e.to_string() })
    }

    pub fn save(&self) -> Result<(), LabError> {
        let path = state_file();
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| LabError::State { path: path.clone(), reason: e.to_string() })?;
        // Write then rename: the fence agent may read it at any moment.
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(LabError::io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(LabError::io("rename", &path))
    }

    pub fn node(&self, name: &str) -> Result<&NodeState, LabError> {
        self.nodes.iter().find(|n| n.name == name).ok_or_else(|| self.unknown(name))
    }

    pub fn node_mut(&mut self, name: &str) -> Result<&mut NodeState, LabError> {
        let known = self.known();
        self.nodes.iter_mut().find(|n| n.name == name).ok_or(LabError::UnknownNode { name: name.to_string(), known })
    }

    fn known(&self) -> String {
        self.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")
    }

    fn unknown(&self, name: &str) -> LabError {
        LabError::UnknownNode { name: name.to_string(), known: self.known() }
    }
}

impl NodeState {
    /// Powered on: one of its daemons still runs.
    pub fn is_on(&self) -> bool {
        self.daemons.iter().any(|d| super::process::alive(d.pid))
    }
}

/// An exclusive lock on the lab's state, released on drop.
pub struct Lock {
    _held: nix::fcntl::Flock<std::fs::File>,
}

impl Lock {
    pub fn take() -> Result<Lock, LabError> {
        // Bounded: a holder that hangs must not hang every lab command.
        let deadline = crate::ocf::Deadline::after(std::time::Duration::from_secs(60));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_FILE)
            .map_err(LabError::io("open", LOCK_FILE))?;
        loop {
            match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
                Ok(held) => return Ok(Lock { _held: held }),
                Err((back, _)) => f = back,
            }
            if deadline.expired() {
                return Err(LabError::Timeout {
                    what: format!("taking the lab lock {LOCK_FILE}"),
                    secs: 60,
                    detail: String::new(),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
