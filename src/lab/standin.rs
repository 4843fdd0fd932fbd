//! Lab stand-ins: what `haven lab up` changes in a deployment description so
//! it runs on one machine, each change reported (never silently):
//!
//! | in the description                         | in the lab                                          |
//! |--------------------------------------------|-----------------------------------------------------|
//! | fence devices (SBD, fence_ipmilan, ...)    | the lab's fence_haven (one device, every node)      |
//! | ocfs2/gfs2 filesystem (cloned)             | bind mount of a lab directory shared by the nodes   |
//! | nfs/nfs4/cifs/glusterfs filesystem         | bind mount of a lab directory shared by the nodes   |
//! | ext2/3/4/xfs on /dev/... or UUID=          | LABEL=<id>: an image on a loop device               |
//! | DLM/o2cb controld, nfsserver, exportfs     | ocf:pacemaker:Dummy (order/colocation kept)         |
//! | systemd:/lsb:/service: units               | ocf:haven:instance: python3 http.server on port 80  |
//! | instance without its instance file         | a small http.server instance file, written at up    |
//! | vip on a network the lab has no link for   | nic = eth0 (the lab's one link)                     |
//! | director configfile                        | a lab file: the VIP's port 80 over the nodes the    |
//! |                                            | director is kept off, gate (DR) on nftables         |
//!
//! The kernel here has no OCFS2/GFS2/NFS server and no IPVS; a shared
//! directory is what every node of a cluster filesystem sees, so a bind
//! mount of one lab directory keeps that meaning (a write on one node is
//! seen on the others).

use super::kernel::Kernel;
use crate::generate::model::{AgentRef, Description, Pair, Placement, Primitive};
use std::fmt::Write;

/// Where the lab's stand-in files live on the host (under the lab dir) and
/// where the nodes see them.
pub const STANDIN_SUBDIR: &str = "standin";
pub const STANDIN_IN_NODE: &str = "/run/haven-lab/standin";
pub const SHARED_SUBDIR: &str = "shared";
pub const SEED_SUBDIR: &str = "seed";
/// What a stand-in web server answers on /test.html (the director's check).
pub const ALIVE: &str = "still alive";

/// A file the lab writes at `lab up`, relative to the lab directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabFile {
    pub path: String,
    pub text: String,
}

#[derive(Clone, Debug, Default)]
pub struct Translation {
    pub description: Description,
    /// One line per substitution, for `lab up` to print.
    pub lines: Vec<String>,
    /// Files under the lab directory (stand-in configs, shared directories,
    /// volume seeds).
    pub files: Vec<LabFile>,
    /// Volume label -> seed directory (relative to the lab dir) its
    /// filesystem is created from.
    pub seeds: Vec<(String, String)>,
    /// Mount points the description's filesystems need on every node.
    pub mount_points: Vec<String>,
    /// On a real kernel: the directories exportfs exports, each a tmpfs
    /// (tmpfs exports; the guest's overlay root does not).
    pub exports: Vec<Export>,
}

/// A directory an `ocf:heartbeat:exportfs` resource exports, on a real kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// The exportfs resource's id: the tmpfs is <lab dir>/exports/<id>.
    pub id: String,
    pub directory: String,
    /// The nodes the export may run on (not kept off by a location).
    pub nodes: Vec<String>,
}

/// Where the exported tmpfs of each export lives, under the lab directory.
pub const EXPORTS_SUBDIR: &str = "exports";

fn pair(name: &str, value: &str) -> Pair {
    Pair { name: name.into(), value: value.into(), line: 0 }
}

fn set(r: &mut Primitive, name: &str, value: &str) {
    match r.params.iter_mut().find(|p| p.name == name) {
        Some(p) => p.value = value.into(),
        None => r.params.push(pair(name, value)),
    }
}

fn agent(class: &str, provider: Option<&str>, kind: &str) -> AgentRef {
    AgentRef { class: class.into(), provider: provider.map(str::to_string), kind: kind.into() }
}

/// Cluster plumbing with nothing to show in a lab: kept as Dummy so the
/// description's order and colocation stay as written.
fn is_plumbing(a: &AgentRef) -> bool {
    a.class == "ocf" && matches!(a.kind.as_str(), "controld" | "o2cb" | "nfsserver" | "exportfs" | "clvm" | "lvmlockd")
}

const SHARED_FS: &[&str] = &["ocfs2", "gfs2", "nfs", "nfs4", "cifs", "glusterfs"];
const BLOCK_FS: &[&str] = &["ext2", "ext3", "ext4", "xfs"];

/// A filesystem label for a resource id (ext: 16 bytes, xfs: 12).
fn label_for(id: &str, fstype: &str) -> String {
    let max = if fstype == "xfs" { 12 } else { 16 };
    id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(max).collect()
}

/// The lab's web server as an instance file: python3's http.server on
/// port 80 over the data directory. `bind` is `{{ip}}` or an address; a
/// promotable instance runs it only where it is promoted.
pub fn http_instance(what: &str, bind: &str, promoted: bool) -> String {
    let mut s = format!(
        "# Written by haven lab: a stand-in for {what}.\ndescription = \"haven lab stand-in: python3 http.server\"\n\n"
    );
    if promoted {
        // Something runs on every instance; the web server on the promoted.
        s.push_str(
            "[[service]]\nname = \"base\"\nargv = [\"/usr/bin/python3\", \"-m\", \"http.server\", \"--bind\", \
             \"127.0.0.1\", \"--directory\", \"{{datadir}}\", \"8080\"]\nstop_signal = \"INT\"\nstop_timeout = \
             \"5s\"\nprobe = { type = \"connect\", port = 8080 }\n\n",
        );
    }
    let _ = write!(
        s,
        "[[service]]\nname = \"http\"\nargv = [\"/usr/bin/python3\", \"-m\", \"http.server\", \"--bind\", \
         \"{bind}\", \"--directory\", \"{{{{datadir}}}}\", \"80\"]\nstop_signal = \"INT\"\nstop_timeout = \"5s\"\n\
         user = \"nobody\"\ncapabilities = [\"net_bind_service\"]\n"
    );
    if promoted {
        s.push_str("role = \"promoted\"\n");
    } else if bind == "{{ip}}" {
        s.push_str("probe = { type = \"connect\", port = 80 }\n");
    }
    s
}

/// The director's lab configuration: port 80 of `vip` over `reals`, on
/// `backend` (nftables where the kernel has no IPVS, ipvs where it has).
pub fn director_cf(vip: &str, reals: &[String], backend: &str) -> String {
    let mut s = format!(
        "# Written by haven lab: the description's director configuration, with the lab's nodes as real\n\
         # servers, fast checks and the {backend} data plane.\n\
         checkinterval = 1\nchecktimeout = 1\nfailurecount = 1\nquiescent = no\n\
         backend = {backend}\n\n",
    );
    let _ = writeln!(s, "virtual = {vip}:80");
    for r in reals {
        // Direct routing, as the described LVS-DR clusters: the nodes hold
        // the address on lo (their ocf:haven:vip lvs_realserver=true) and
        // answer the client themselves.
        let _ = writeln!(s, "\treal = {r}:80 gate");
    }
    let _ = write!(
        s,
        "\tchecktype = negotiate\n\tservice = http\n\trequest = \"test.html\"\n\treceive = \"{ALIVE}\"\n\
         \tscheduler = rr\n\tprotocol = tcp\n"
    );
    s
}

/// The group (or clone of a group) a primitive is in, and the ids that
/// stand for it in constraints.
fn containers(d: &Description, id: &str) -> Vec<String> {
    let mut ids = vec![id.to_string()];
    for g in &d.groups {
        if g.resources.iter().any(|r| r.id == id) {
            ids.push(g.id.clone());
        }
    }
    let more: Vec<String> = d.clones.iter().filter(|c| ids.contains(&c.resource.id)).map(|c| c.id.clone()).collect();
    ids.extend(more);
    ids
}

fn group_of<'a>(d: &'a Description, id: &str) -> Option<&'a crate::generate::model::Group> {
    d.groups.iter().find(|g| g.resources.iter().any(|r| r.id == id))
}

fn is_promotable(d: &Description, id: &str) -> bool {
    let ids = containers(d, id);
    d.clones.iter().any(|c| c.promotable && ids.contains(&c.id))
}

fn under<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
    let dir = dir.trim_end_matches('/');
    path.strip_prefix(dir).and_then(|rest| rest.strip_prefix('/'))
}

/// Translate a description for the lab. `node_addrs` are (name, address)
/// of the lab's nodes.
pub fn translate(d: &Description, node_addrs: &[(String, String)]) -> Translation {
    translate_for(d, node_addrs, Kernel::Standins)
}

/// Translate for a kernel: on a real one, NFS servers, exports and NFS
/// mounts stay, and directors run on IPVS.
pub fn translate_for(d: &Description, node_addrs: &[(String, String)], kernel: Kernel) -> Translation {
    let mut t = Translation { description: d.clone(), ..Default::default() };
    fencing(&mut t, d);
    if kernel == Kernel::Real {
        let names: Vec<String> = node_addrs.iter().map(|(n, _)| n.clone()).collect();
        exports(&mut t, d, &names);
    }
    let dirs = filesystems(&mut t);
    plumbing(&mut t);
    services(&mut t, d);
    instance_files(&mut t, d, &dirs);
    off_link_addresses(&mut t);
    directors(&mut t, d, node_addrs, kernel);
    t
}

/// The nodes a negative location keeps resource `id` (or a group or clone
/// holding it) off.
fn avoided_nodes<'a>(d: &'a Description, id: &str) -> Vec<&'a str> {
    let ids = containers(d, id);
    d.locations
        .iter()
        .filter(|l| ids.contains(&l.resource.id))
        .filter_map(|l| match &l.placement {
            Placement::Node { node, score } if score.is_negative() => Some(node.id.as_str()),
            _ => None,
        })
        .collect()
}

/// The nodes a resource may run on: those no negative location keeps it off.
fn allowed_nodes(d: &Description, id: &str, nodes: &[String]) -> Vec<String> {
    let avoided = avoided_nodes(d, id);
    nodes.iter().filter(|n| !avoided.contains(&n.as_str())).cloned().collect()
}

/// A real kernel: exportfs and nfsserver stay. Each exported directory
/// becomes a tmpfs of the lab (the guest's overlay root cannot be
/// exported), named by its path under the lab directory, so the exporting
/// node's own directory (/home) stays as it is and the filesystem agent's
/// probe there sees nothing mounted from the server.
fn exports(t: &mut Translation, d: &Description, nodes: &[String]) {
    if d.resources.iter().any(|r| r.agent.is("ocf", Some("heartbeat"), "nfsserver")) {
        let mut ops = t.description.op_defaults.clone();
        if !ops.iter().any(|p| p.name == "timeout") {
            ops.push(pair("timeout", "120s"));
            t.lines.push(
                "op_defaults: timeout = 120s (resource-agents' shell agents take more than the default 20 s \
                 under the guest's TCG)"
                    .into(),
            );
        }
        t.description.op_defaults = ops;
    }
    for r in &mut t.description.resources {
        if r.agent.is("ocf", Some("heartbeat"), "nfsserver") {
            t.lines.push(format!(
                "{}: {} kept: a kernel nfsd in the node's namespaces (Debian's nfs-kernel-server init script, \
                 the lab's /etc/exports placeholder and /etc/nfs.conf with mountd on port {})",
                r.id,
                r.agent,
                super::kernel::MOUNTD_PORT
            ));
        }
        if !r.agent.is("ocf", Some("heartbeat"), "exportfs") {
            continue;
        }
        let Some(dir) = r.param("directory").map(str::to_string) else { continue };
        let source = format!("{}/{EXPORTS_SUBDIR}/{}", super::state::LAB_DIR, r.id);
        let allowed = allowed_nodes(d, &r.id, nodes);
        t.lines.push(format!(
            "{}: {} kept: directory {dir} -> {source}, a tmpfs (the guest's root cannot be exported)",
            r.id, r.agent
        ));
        set(r, "directory", &source);
        t.exports.push(Export { id: r.id.clone(), directory: dir, nodes: allowed });
    }
}

/// The export an NFS device (`host:/path`) names, when the lab serves it.
fn export_for<'a>(exports: &'a [Export], device: &str) -> Option<&'a Export> {
    let path = device.split_once(':').map(|(_, p)| p)?;
    exports.iter().find(|e| e.directory.trim_end_matches('/') == path.trim_end_matches('/'))
}

/// Fence devices of the deployment become the lab's fence_haven.
fn fencing(t: &mut Translation, d: &Description) {
    let real_fencing: Vec<_> = d.fencing.devices.iter().filter(|f| f.agent != super::state::FENCE_AGENT).collect();
    if !real_fencing.is_empty() {
        let list: Vec<String> = real_fencing.iter().map(|f| format!("{} ({})", f.id, f.agent)).collect();
        t.lines.push(format!(
            "fencing: {} -> lab-fence (fence_haven: off kills the node's processes and takes its link down)",
            list.join(", ")
        ));
    }
}

/// Where the filesystems' directories end up: (directory, label) of each
/// volume and (directory, shared lab dir) of each shared filesystem.
struct FsDirs {
    volumes: Vec<(String, String)>,
    shared: Vec<(String, String)>,
}

/// Filesystems first: instance files go where their directories end up.
fn filesystems(t: &mut Translation) -> FsDirs {
    // (directory, where: Some(label) for a volume, None for a shared dir id)
    let mut volume_dirs: Vec<(String, String)> = Vec::new();
    let mut shared_dirs: Vec<(String, String)> = Vec::new();
    let exports = t.exports.clone();
    for r in &mut t.description.resources {
        if !r.agent.is("ocf", Some("haven"), "filesystem") {
            continue;
        }
        let fstype = r.param("fstype").unwrap_or("ext4").to_string();
        let device = r.param("device").unwrap_or_default().to_string();
        let dir = r.param("directory").unwrap_or_default().to_string();
        if !dir.is_empty() && !t.mount_points.contains(&dir) {
            t.mount_points.push(dir.clone());
        }
        let served =
            if matches!(fstype.as_str(), "nfs" | "nfs4") { export_for(&exports, &device).cloned() } else { None };
        if let Some(e) = served {
            real_nfs(r, &fstype, &device, &e, &mut t.lines, &mut t.files);
            shared_dirs.push((dir, format!("{EXPORTS_SUBDIR}/{}", e.id)));
        } else if SHARED_FS.contains(&fstype.as_str()) {
            let src = format!("{}/{SHARED_SUBDIR}/{}", super::state::LAB_DIR, r.id);
            t.lines.push(format!(
                "{}: {fstype} {device} -> bind mount of {src} (one directory every node shares; no {fstype} here)",
                r.id
            ));
            set(r, "device", &src);
            set(r, "fstype", "none");
            set(r, "options", "bind");
            r.params.retain(|p| !matches!(p.name.as_str(), "run_fsck"));
            t.files.push(LabFile { path: format!("{SHARED_SUBDIR}/{}/test.html", r.id), text: format!("{ALIVE}\n") });
            t.files.push(LabFile {
                path: format!("{SHARED_SUBDIR}/{}/index.html", r.id),
                text: format!("haven lab: {}\n", r.id),
            });
            shared_dirs.push((dir, format!("{SHARED_SUBDIR}/{}", r.id)));
        } else if BLOCK_FS.contains(&fstype.as_str()) {
            let label = match device.strip_prefix("LABEL=") {
                Some(l) => l.to_string(),
                None => {
                    let l = label_for(&r.id, &fstype);
                    t.lines.push(format!("{}: {fstype} on {device} -> LABEL={l}, an image on a loop device", r.id));
                    set(r, "device", &format!("LABEL={l}"));
                    l
                }
            };
            volume_dirs.push((dir, label));
        }
    }
    FsDirs { volumes: volume_dirs, shared: shared_dirs }
}

/// An NFS mount of an export the lab serves: kept, with the client options
/// the guest needs (kernel::nfs3_client_options), and the export seeded
/// with what the lab's web servers answer.
fn real_nfs(
    r: &mut Primitive,
    fstype: &str,
    device: &str,
    e: &Export,
    lines: &mut Vec<String>,
    files: &mut Vec<LabFile>,
) {
    let host = device.split_once(':').map_or("", |(h, _)| h);
    let served = format!("{host}:{}/{EXPORTS_SUBDIR}/{}", super::state::LAB_DIR, e.id);
    set(r, "device", &served);
    let device = served.as_str();
    if fstype == "nfs" && !r.param("options").is_some_and(|o| o.contains("vers=4")) {
        let extra = super::kernel::nfs3_client_options();
        let options = match r.param("options") {
            Some(o) if !o.is_empty() => format!("{o},{extra}"),
            _ => extra.clone(),
        };
        set(r, "options", &options);
        lines.push(format!(
            "{}: {fstype} {device} kept (real NFS); options += {extra} (no portmapper registration of a \
             namespaced nfsd here)",
            r.id
        ));
    } else {
        lines.push(format!("{}: {fstype} {device} kept (real NFS)", r.id));
    }
    files.push(LabFile { path: format!("{EXPORTS_SUBDIR}/{}/test.html", e.id), text: format!("{ALIVE}\n") });
    files.push(LabFile {
        path: format!("{EXPORTS_SUBDIR}/{}/index.html", e.id),
        text: format!("haven lab: {}\n", r.id),
    });
}

/// Cluster plumbing this kernel lacks (DLM, o2cb, NFS server) becomes Dummy.
fn plumbing(t: &mut Translation) {
    let real_nfs = !t.exports.is_empty();
    for r in &mut t.description.resources {
        let served = real_nfs && r.agent.class == "ocf" && matches!(r.agent.kind.as_str(), "nfsserver" | "exportfs");
        if is_plumbing(&r.agent) && !served {
            t.lines.push(format!(
                "{}: {} -> ocf:pacemaker:Dummy (cluster plumbing this kernel lacks; its order and colocation stay)",
                r.id, r.agent
            ));
            r.agent = agent("ocf", Some("pacemaker"), "Dummy");
            r.params.clear();
        }
    }
}

/// Services the nodes cannot run (no systemd/init here): the lab's web
/// server on port 80 of every address, over the filesystem of their group
/// when there is one.
fn services(t: &mut Translation, originals: &Description) {
    for r in &mut t.description.resources {
        if !matches!(r.agent.class.as_str(), "systemd" | "lsb" | "service") {
            continue;
        }
        let datadir = group_of(originals, &r.id)
            .and_then(|g| {
                g.resources.iter().find_map(|m| {
                    originals
                        .resources
                        .iter()
                        .find(|p| p.id == m.id && p.agent.is("ocf", Some("haven"), "filesystem"))
                        .and_then(|p| p.param("directory"))
                })
            })
            .unwrap_or("/srv")
            .to_string();
        let file = format!("{STANDIN_SUBDIR}/{}.toml", r.id);
        t.lines.push(format!(
            "{}: {} -> ocf:haven:instance with {STANDIN_IN_NODE}/{}.toml (python3 http.server on :80 over {datadir})",
            r.id, r.agent, r.id
        ));
        t.files.push(LabFile { path: file, text: http_instance(&r.agent.to_string(), "0.0.0.0", false) });
        r.agent = agent("ocf", Some("haven"), "instance");
        r.params = vec![
            pair("name", &r.id),
            pair("datadir", &datadir),
            pair("config", &format!("{STANDIN_IN_NODE}/{}.toml", r.id)),
        ];
    }
}

/// Instances whose instance file is not there: write one.
fn instance_files(t: &mut Translation, originals: &Description, dirs: &FsDirs) {
    for r in &mut t.description.resources {
        if !r.agent.is("ocf", Some("haven"), "instance") || r.param("config").is_some_and(|c| c.starts_with("/run/")) {
            continue;
        }
        let Some(datadir) = r.param("datadir").map(str::to_string) else { continue };
        let config = r.param("config").map_or_else(|| format!("{datadir}/instance.toml"), str::to_string);
        let promoted = is_promotable(originals, &r.id);
        let text = http_instance(&format!("instance {}", r.id), if promoted { "0.0.0.0" } else { "{{ip}}" }, promoted);
        let hostname = r.param("hostname").or(r.param("name")).unwrap_or(&r.id).to_string();
        let on_volume = dirs.volumes.iter().find_map(|(dir, label)| under(&config, dir).map(|rel| (dir, label, rel)));
        let on_shared = dirs.shared.iter().find_map(|(dir, src)| under(&config, dir).map(|rel| (dir, src, rel)));
        if let Some((dir, label, rel)) = on_volume {
            let seed = format!("{SEED_SUBDIR}/{label}");
            t.files.push(LabFile { path: format!("{seed}/{rel}"), text });
            if datadir == *dir {
                t.files.push(LabFile { path: format!("{seed}/index.html"), text: format!("{hostname}\n") });
            }
            if !t.seeds.iter().any(|(l, _)| l == label) {
                t.seeds.push((label.clone(), seed));
            }
            t.lines.push(format!("{}: instance file {config} written onto volume LABEL={label} (http.server)", r.id));
        } else if let Some((dir, src, rel)) = on_shared {
            t.files.push(LabFile { path: format!("{src}/{rel}"), text });
            if datadir == *dir {
                t.files.push(LabFile { path: format!("{src}/index.html"), text: format!("{hostname}\n") });
            }
            t.lines.push(format!("{}: instance file {config} written into the shared lab directory", r.id));
        } else {
            let path = format!("{STANDIN_IN_NODE}/{}.toml", r.id);
            t.files.push(LabFile { path: format!("{STANDIN_SUBDIR}/{}.toml", r.id), text });
            t.lines.push(format!("{}: instance file {config} -> {path} (http.server)", r.id));
            set(r, "config", &path);
        }
    }
}

/// Addresses on a network the lab has no link for (a private network of
/// the deployment): held on the lab's one link, eth0.
fn off_link_addresses(t: &mut Translation) {
    for r in &mut t.description.resources {
        if !r.agent.is("ocf", Some("haven"), "vip") || r.param("nic").is_some() {
            continue;
        }
        let Some(ip) = r.param("ip").map(str::to_string) else { continue };
        let on_lab = ip.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.octets()[..3] == [198, 51, 100]);
        if !on_lab {
            t.lines.push(format!(
                "{}: {ip} is on a network the lab has no link for -> nic = eth0 (the lab's one link)",
                r.id
            ));
            set(r, "nic", "eth0");
        }
    }
}

/// Directors: the VIP of their group, the nodes they are kept off as real
/// servers (all other nodes when none).
fn directors(t: &mut Translation, originals: &Description, node_addrs: &[(String, String)], kernel: Kernel) {
    for r in &mut t.description.resources {
        if !r.agent.is("ocf", Some("haven"), "director") {
            continue;
        }
        let group = group_of(originals, &r.id);
        let vip = group
            .into_iter()
            .flat_map(|g| g.resources.iter())
            .filter_map(|m| originals.resources.iter().find(|p| p.id == m.id))
            .filter(|p| p.agent.is("ocf", Some("haven"), "vip"))
            .max_by_key(|p| p.param("lvs_support") == Some("true"))
            .and_then(|p| p.param("ip"))
            .map(str::to_string);
        let Some(vip) = vip else {
            t.lines.push(format!("{}: director without a VIP in its group -> ocf:pacemaker:Dummy", r.id));
            r.agent = agent("ocf", Some("pacemaker"), "Dummy");
            r.params.clear();
            continue;
        };
        let avoided = avoided_nodes(originals, &r.id);
        let reals: Vec<String> = node_addrs
            .iter()
            .filter(|(n, _)| avoided.is_empty() || avoided.contains(&n.as_str()))
            .map(|(_, a)| a.clone())
            .collect();
        let path = format!("{STANDIN_IN_NODE}/{}.cf", r.id);
        let backend = if kernel == Kernel::Real { "ipvs" } else { "nftables" };
        t.lines.push(format!(
            "{}: configfile {} -> {path}: {vip}:80 over {} (direct routing on {backend})",
            r.id,
            r.param("configfile").unwrap_or("(none)"),
            reals.join(", ")
        ));
        t.files
            .push(LabFile { path: format!("{STANDIN_SUBDIR}/{}.cf", r.id), text: director_cf(&vip, &reals, backend) });
        r.params.retain(|p| !matches!(p.name.as_str(), "virtual" | "real" | "backend"));
        set(r, "configfile", &path);
    }
}

/// How many stopped instances of each cloned primitive a settled lab of
/// `nodes` shows: one per node the clone is kept off (`avoid`).
pub fn stopped_allowed(d: &Description, nodes: &[String]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for c in &d.clones {
        let kept_off = d
            .locations
            .iter()
            .filter(|l| l.resource.id == c.id || l.resource.id == c.resource.id)
            .filter_map(|l| match &l.placement {
                Placement::Node { node, score } if score.is_negative() && nodes.contains(&node.id) => {
                    Some(node.id.clone())
                }
                _ => None,
            })
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        if kept_off == 0 {
            continue;
        }
        let members: Vec<String> = match d.groups.iter().find(|g| g.id == c.resource.id) {
            Some(g) => g.resources.iter().map(|r| r.id.clone()).collect(),
            None => vec![c.resource.id.clone()],
        };
        out.extend(members.into_iter().map(|m| (m, kept_off)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str) -> Description {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name);
        crate::generate::parse::load(&path).expect("example parses")
    }

    fn addrs(names: &[&str]) -> Vec<(String, String)> {
        names.iter().enumerate().map(|(i, n)| (n.to_string(), format!("198.51.100.{}", 11 + i))).collect()
    }

    fn res<'a>(d: &'a Description, id: &str) -> &'a Primitive {
        d.resources.iter().find(|r| r.id == id).expect("resource")
    }

    #[test]
    fn smt_mirror_gets_dummies_a_shared_bind_mount_a_web_stand_in_and_a_lab_director() {
        let t = translate(&load("smt-mirror.toml"), &addrs(&["node1", "node2", "node3"]));
        let d = &t.description;
        for id in ["dlm", "o2cb"] {
            assert!(res(d, id).agent.is("ocf", Some("pacemaker"), "Dummy"), "{id}");
        }
        let fs = res(d, "smt-fs");
        assert_eq!(fs.param("fstype"), Some("none"));
        assert_eq!(fs.param("options"), Some("bind"));
        assert_eq!(fs.param("device"), Some("/var/lib/haven-lab/shared/smt-fs"));
        let web = res(d, "smt-web");
        assert!(web.agent.is_haven() && web.agent.kind == "instance");
        assert_eq!(web.param("datadir"), Some("/smt"));
        assert!(t.files.iter().any(|f| f.path == "shared/smt-fs/test.html" && f.text.contains(ALIVE)));
        let dir = res(d, "director");
        assert_eq!(dir.param("configfile"), Some("/run/haven-lab/standin/director.cf"));
        let cf = &t.files.iter().find(|f| f.path == "standin/director.cf").expect("director file").text;
        assert!(cf.contains("virtual = 198.51.100.10:80"), "{cf}");
        assert!(cf.contains("real = 198.51.100.11:80") && cf.contains("real = 198.51.100.12:80"), "{cf}");
        assert!(!cf.contains("198.51.100.13"), "the director's own node is no real server: {cf}");
        assert!(cf.contains("198.51.100.11:80 gate") && !cf.contains("masq"), "direct routing: {cf}");
        // Structure kept: same groups, clones, constraints.
        let o = load("smt-mirror.toml");
        assert_eq!(d.groups.len(), o.groups.len());
        assert_eq!(d.locations.len(), o.locations.len());
        assert_eq!(t.mount_points, vec!["/smt".to_string()]);
        assert!(t.lines.iter().any(|l| l.starts_with("fencing: fence-sbd (fence_sbd)")), "{:?}", t.lines);
        assert_eq!(t.lines.len(), 6, "{:#?}", t.lines);
    }

    #[test]
    fn mail_volumes_become_labelled_loop_devices_seeded_with_instance_files() {
        let t = translate(&load("mail-active-active.toml"), &addrs(&["nodea", "nodeb"]));
        let d = &t.description;
        assert_eq!(res(d, "mail1-fs").param("device"), Some("LABEL=mail1-fs"));
        assert_eq!(res(d, "mail2-fs").param("device"), Some("LABEL=mail2-fs"));
        assert_eq!(
            t.seeds,
            vec![("mail1-fs".into(), "seed/mail1-fs".into()), ("mail2-fs".into(), "seed/mail2-fs".into())]
        );
        let f = t.files.iter().find(|f| f.path == "seed/mail1-fs/instance.toml").expect("instance file");
        assert!(f.text.contains("\"--bind\", \"{{ip}}\"") && f.text.contains("{{datadir}}"), "{}", f.text);
        assert!(t.files.iter().any(|f| f.path == "seed/mail2-fs/index.html" && f.text == "mail2.example.com\n"));
        // The instance file is where the agent looks for it: unchanged params.
        assert_eq!(res(d, "mail1-instance").param("config"), None);
        let fencing = &t.lines[0];
        assert!(fencing.contains("ipmi-nodea (fence_ipmilan)") && fencing.contains("ipmi-nodeb"), "{fencing}");
    }

    #[test]
    fn nfs_becomes_a_shared_directory_holding_the_instance_file() {
        let t = translate(&load("hsphere-web.toml"), &addrs(&["web1", "web2", "web3"]));
        let fs = res(&t.description, "hsphere-fs");
        assert_eq!(fs.param("device"), Some("/var/lib/haven-lab/shared/hsphere-fs"));
        assert_eq!(fs.param("options"), Some("bind"));
        let f = t
            .files
            .iter()
            .find(|f| f.path == "shared/hsphere-fs/local/config/web/instance.toml")
            .expect("instance file on the share");
        assert!(f.text.contains("role = \"promoted\""), "{}", f.text);
    }

    #[test]
    fn the_lab_web_example_needs_no_stand_in() {
        let t = translate(&load("lab-web.toml"), &addrs(&["lab1", "lab2", "lab3"]));
        assert!(t.lines.is_empty(), "{:?}", t.lines);
        assert!(t.files.is_empty() && t.seeds.is_empty());
    }

    #[test]
    fn instance_files_parse() {
        for promoted in [false, true] {
            let text = http_instance("x", "{{ip}}", promoted);
            let v: toml::Value = toml::from_str(&text).expect("toml");
            assert!(v.get("service").is_some());
        }
    }

    #[test]
    fn clones_kept_off_a_node_may_show_a_stopped_instance() {
        let d = load("smt-mirror.toml");
        let nodes: Vec<String> = ["node1", "node2", "node3"].map(String::from).to_vec();
        let a = stopped_allowed(&d, &nodes);
        assert_eq!(a.len(), 5, "{a:?}");
        assert!(a.iter().all(|(_, n)| *n == 1));
        assert!(stopped_allowed(&load("lab-web.toml"), &nodes).is_empty());
    }

    #[test]
    fn interworx_quorum_address_goes_on_the_lab_link_and_nfs_is_shared() {
        let t = translate(&load("interworx.toml"), &addrs(&["cm", "node1", "node2"]));
        let d = &t.description;
        assert_eq!(res(d, "quorum-ip").param("nic"), Some("eth0"));
        assert_eq!(res(d, "public-ip").param("nic"), None);
        assert!(res(d, "nfs-server").agent.is("ocf", Some("pacemaker"), "Dummy"));
        assert_eq!(res(d, "home").param("options"), Some("bind"));
        assert_eq!(res(d, "httpd").param("datadir"), Some("/home"));
        let cf = &t.files.iter().find(|f| f.path == "standin/director.cf").expect("director file").text;
        assert!(cf.contains("virtual = 198.51.100.60:80") && cf.contains("real = 198.51.100.12:80"), "{cf}");
        assert!(!cf.contains("198.51.100.11:80"), "the manager is no real server: {cf}");
    }

    #[test]
    fn interworx_on_a_real_kernel_keeps_nfs_and_runs_the_director_on_ipvs() {
        let t = translate_for(&load("interworx.toml"), &addrs(&["cm", "node1", "node2"]), Kernel::Real);
        let d = &t.description;
        assert!(res(d, "nfs-server").agent.is("ocf", Some("heartbeat"), "nfsserver"));
        let export = res(d, "home-export");
        assert!(export.agent.is("ocf", Some("heartbeat"), "exportfs"));
        assert_eq!(export.param("directory"), Some("/var/lib/haven-lab/exports/home-export"));
        assert_eq!(
            t.exports,
            vec![Export { id: "home-export".into(), directory: "/home".into(), nodes: vec!["cm".into()] }]
        );
        let home = res(d, "home");
        assert_eq!(home.param("fstype"), Some("nfs"));
        assert_eq!(home.param("device"), Some("203.0.113.50:/var/lib/haven-lab/exports/home-export"));
        assert_eq!(home.param("directory"), Some("/home"));
        assert!(d.op_defaults.iter().any(|p| p.name == "timeout" && p.value == "120s"));
        let opts = home.param("options").expect("options");
        assert!(
            opts.starts_with("nfsvers=3,") && opts.contains("mountport=20048") && opts.contains("nolock"),
            "{opts}"
        );
        assert!(t.files.iter().any(|f| f.path == "exports/home-export/test.html" && f.text.contains(ALIVE)));
        let cf = &t.files.iter().find(|f| f.path == "standin/director.cf").expect("director file").text;
        assert!(cf.contains("backend = ipvs") && cf.contains("198.51.100.12:80 gate"), "{cf}");
        // The stand-in translation is unchanged.
        let s = translate(&load("interworx.toml"), &addrs(&["cm", "node1", "node2"]));
        assert!(s.exports.is_empty() && res(&s.description, "home-export").agent.is("ocf", Some("pacemaker"), "Dummy"));
    }

    #[test]
    fn labels_fit() {
        assert_eq!(label_for("a-very-long-resource-id", "ext4").len(), 16);
        assert_eq!(label_for("a-very-long-resource-id", "xfs").len(), 12);
    }
}
