//! Per-node haven binaries and `haven lab upgrade NODE BINARY`: one turn of
//! a rolling upgrade. Every node shares the host's /usr, so the agents'
//! links point at a path of the node's own (/run/haven-lab/bin/haven, a
//! bind mount of the node's directory on the host), and upgrading a node
//! replaces that link the way a package manager replaces a file: a new
//! name renamed over the old one. Agents are exec'd per action and pick it
//! up at once; long-running daemons (the director) keep the old binary
//! until Pacemaker restarts them, which the turn's standby does.

use super::cluster::{self, Snapshot};
use super::error::LabError;
use super::state::{self, State};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where each node sees its own haven binary directory.
pub const BIN_IN_NODE: &str = "/run/haven-lab/bin";
/// The binary's name in that directory.
const BIN_NAME: &str = "haven";
/// How long a standby may take to move everything off the node, and the
/// cluster to settle after the node is back.
const DRAIN_LIMIT: Duration = Duration::from_secs(90);
const RETURN_LIMIT: Duration = Duration::from_secs(90);

/// The node's binary directory on the host (bound at [`BIN_IN_NODE`]).
pub fn bin_dir(node: &str) -> PathBuf {
    state::node_dir(node).join("bin")
}

/// What the agent links point at, inside every node.
pub fn in_node_binary() -> PathBuf {
    Path::new(BIN_IN_NODE).join(BIN_NAME)
}

/// Which binary the node's agents run now (the host path).
pub fn installed(node: &str) -> Result<PathBuf, LabError> {
    let link = bin_dir(node).join(BIN_NAME);
    std::fs::read_link(&link).map_err(LabError::io("read", link))
}

/// Point the node's haven at `binary`: a new link renamed over the old one,
/// so an agent exec'd meanwhile runs either binary, never none.
pub fn install(node: &str, binary: &Path) -> Result<(), LabError> {
    let dir = bin_dir(node);
    std::fs::create_dir_all(&dir).map_err(LabError::io("create", &dir))?;
    let tmp = dir.join(format!(".{BIN_NAME}.new"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(binary, &tmp).map_err(LabError::io("link", &tmp))?;
    let link = dir.join(BIN_NAME);
    std::fs::rename(&tmp, &link).map_err(LabError::io("rename", link))
}

/// A binary the nodes can run: absolute once resolved, a regular
/// executable file, outside the trees each node mounts its own tmpfs on
/// (there the nodes would not see it), answering `--version`.
pub fn check_binary(binary: &Path) -> Result<(PathBuf, String), LabError> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::fs::canonicalize(binary).map_err(LabError::io("resolve the binary", binary))?;
    let meta = std::fs::metadata(&path).map_err(LabError::io("inspect the binary", &path))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(LabError::Refused(format!("binary {}: not an executable file", path.display())));
    }
    if ["/run/", "/srv/", "/dev/shm/", "/proc/", "/sys/"].iter().any(|p| path.starts_with(p)) {
        return Err(LabError::Refused(format!(
            "binary {}: the nodes do not see the host's {} (each mounts its own); put it elsewhere",
            path.display(),
            path.iter().take(2).collect::<PathBuf>().display()
        )));
    }
    let argv = [path.to_string_lossy().into_owned(), "--version".into()];
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let version = super::node::run(&refs)
        .map_err(|e| LabError::Refused(format!("binary {}: `--version` failed: {e}", path.display())))?;
    Ok((path, version.trim().to_string()))
}

/// What one node's turn took.
pub struct Turn {
    pub from: PathBuf,
    pub to: PathBuf,
    pub version: String,
    /// Standby asked until nothing ran on the node.
    pub drained: Duration,
    /// Unstandby asked until the cluster settled again.
    pub returned: Duration,
    pub total: Duration,
}

/// `haven lab upgrade NODE BINARY`: from a whole, settled cluster, standby
/// NODE, wait until nothing runs on it, point its haven at BINARY, take it
/// out of standby and wait until every resource runs again (the usual
/// rolling-upgrade turn).
pub fn upgrade(node: &str, binary: &Path) -> Result<Turn, LabError> {
    let st = State::load()?;
    let n = st.node(node)?.clone();
    if !n.is_on() {
        return Err(LabError::Refused(format!("{node} is powered off: `haven lab heal {node}` first")));
    }
    let (to, version) = check_binary(binary)?;
    let from = installed(node)?;
    let names: Vec<String> = st.nodes.iter().map(|n| n.name.clone()).collect();
    let d = crate::generate::parse::load(&st.description).map_err(crate::generate::GenerateError::from)?;
    let allowed = super::standin::stopped_allowed(&d, &names);
    // A turn starts from a whole cluster: standing a node by while another
    // is still away (or a resource is down) could stop the last copy.
    let now = cluster::snapshot(node)?;
    if !(now.formed(&names) && now.settled_allowing(&allowed)) {
        return Err(LabError::Refused(format!(
            "the cluster is not whole and settled (finish the previous turn first):\n{}",
            now.placement_text()
        )));
    }
    let started = Instant::now();
    standby(node, true)?;
    wait(node, DRAIN_LIMIT, &format!("{node} running nothing in standby"), |s| {
        !s.resources.iter().any(|r| r.active && r.nodes.iter().any(|x| x == node))
    })?;
    let drained = started.elapsed();
    {
        let _lock = state::Lock::take()?;
        install(node, &to)?;
    }
    let back = Instant::now();
    standby(node, false)?;
    wait(node, RETURN_LIMIT, &format!("the cluster settling with {node} back"), |s| {
        s.formed(&names) && s.settled_allowing(&allowed)
    })?;
    Ok(Turn { from, to, version, drained, returned: back.elapsed(), total: started.elapsed() })
}

/// Put the node in standby or take it out (crm_attribute on the node).
fn standby(node: &str, on: bool) -> Result<(), LabError> {
    let mut argv = vec!["crm_attribute", "--node", node, "--name", "standby"];
    argv.extend(if on { ["--update", "on"].as_slice() } else { ["--delete"].as_slice() });
    super::node::run_in(node, &argv).map(|_| ())
}

/// Wait until `done` holds for crm_mon as the node sees it.
fn wait(node: &str, limit: Duration, what: &str, done: impl Fn(&Snapshot) -> bool) -> Result<(), LabError> {
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < limit {
        if let Ok(s) = cluster::snapshot(node) {
            if done(&s) {
                return Ok(());
            }
            last = Some(s);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let detail = last.map(|s| format!(":\n{}", s.placement_text())).unwrap_or_default();
    Err(LabError::Timeout { what: what.into(), secs: limit.as_secs(), detail })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_the_nodes_cannot_run_is_refused_with_its_path() {
        let dir = std::env::temp_dir().join(format!("haven-upgrade-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("not-executable");
        std::fs::write(&plain, "x").unwrap();
        let e = check_binary(&plain).expect_err("refused").to_string();
        assert!(e.contains("not an executable file") && e.contains("not-executable"), "{e}");
        let e = check_binary(&dir.join("missing")).expect_err("refused").to_string();
        assert!(e.contains("missing"), "{e}");
        let e = check_binary(&dir).expect_err("refused").to_string();
        assert!(e.contains("not an executable file"), "{e}");
        // An executable that is not haven: `--version` fails.
        let e = check_binary(Path::new("/bin/false")).expect_err("refused").to_string();
        assert!(e.contains("--version"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_agents_link_to_the_path_each_node_binds_its_own_binary_at() {
        assert_eq!(in_node_binary(), Path::new("/run/haven-lab/bin/haven"));
        assert!(bin_dir("lab1").starts_with(state::LAB_DIR));
        assert!(bin_dir("lab1").ends_with("nodes/lab1/bin"));
    }
}
