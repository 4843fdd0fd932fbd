//! The lab on the guest's real kernel: `haven lab up examples/interworx.toml
//! --kernel real` keeps the description's LVS-DR director on IPVS and its
//! NFS server (resource-agents' nfsserver + exportfs under Pacemaker, a
//! kernel nfsd in the manager's namespaces); the web nodes mount /home over
//! NFS and answer the client directly (DR); a web node is powered off and
//! the client is still served. The failover is measured and printed.

use super::*;
use std::net::SocketAddr;

const VIP: &str = "198.51.100.60";
/// node1 and node2 in the lab (cm is 198.51.100.11).
const NODE1: &str = "198.51.100.12";
const NODE2: &str = "198.51.100.13";

fn haven(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_haven")).args(args).output().unwrap_or_else(|e| panic!("haven {args:?}: {e}"))
}

fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// stdout of a command inside a lab node (or "client"), or the failure.
fn exec(node: &str, argv: &[&str]) -> Result<String, String> {
    let mut args = vec!["lab", "exec", node, "--"];
    args.extend_from_slice(argv);
    let o = haven(&args);
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(text(&o))
    }
}

/// `lab down` however the test ends.
struct LabUp;

impl Drop for LabUp {
    fn drop(&mut self) {
        let o = haven(&["lab", "down"]);
        if !o.status.success() {
            eprintln!("lab down: {}", text(&o));
        }
    }
}

/// The real servers in the director's IPVS table for the VIP.
fn ipvs_reals() -> Vec<String> {
    let table = exec("cm", &["ipvsadm", "-Ln"]).unwrap_or_default();
    let mut reals: Vec<String> = table
        .lines()
        .filter_map(|l| l.trim().strip_prefix("-> "))
        .filter(|l| l.contains("Route"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    reals.sort();
    reals
}

/// `n` answers in a row through the VIP (from the client's namespace, no fork).
fn answers(n: usize) -> bool {
    let addr: SocketAddr = format!("{VIP}:80").parse().expect("addr");
    (0..n).all(|_| haven::lab::client::request(addr, Duration::from_secs(1)).is_ok_and(|r| r.is_ok()))
}

fn wait(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// What a failed lab up leaves to read: failed actions and the agents' logs.
fn diagnose() {
    println!("{}", exec("cm", &["crm_mon", "-1rf"]).unwrap_or_else(|e| e));
    let log = "/var/lib/haven-lab/nodes/cm/log-pacemaker/pacemaker.log";
    let o = Command::new("grep").args(["-E", "nfsserver|exportfs|nfs-server|home-export|director", log]).output();
    if let Ok(o) = o {
        let lines: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect();
        println!("{}", lines[lines.len().saturating_sub(60)..].join("\n"));
    }
}

#[test]
fn interworx_on_ipvs_and_kernel_nfs_survives_a_web_node_poweroff() {
    if !in_guest() {
        return;
    }
    let example = format!("{}/examples/interworx.toml", env!("CARGO_MANIFEST_DIR"));
    let _ = haven(&["lab", "down"]);
    let guard = LabUp;
    let up = timed("lab up interworx (IPVS + kernel NFS)", || haven(&["lab", "up", "--kernel", "real", &example]));
    let out = text(&up);
    println!("{out}");
    if !(up.status.success() && out.contains("resources running after")) {
        diagnose();
        panic!("lab up did not settle:\n{out}");
    }
    assert!(
        out.contains("direct routing on ipvs") && out.contains("nfs-server: ocf:heartbeat:nfsserver kept"),
        "{out}"
    );

    // The director programmed the kernel: the VIP over node1 and node2 (DR).
    // (its checks add a real server once its web server answers)
    let both = vec![format!("{NODE1}:80"), format!("{NODE2}:80")];
    let _ = wait(Duration::from_secs(30), || ipvs_reals() == both);
    let reals = ipvs_reals();
    assert_eq!(reals, vec![format!("{NODE1}:80"), format!("{NODE2}:80")], "{:?}", exec("cm", &["ipvsadm", "-Ln"]));
    // /home is real NFS from the manager's kernel nfsd, read-write.
    for node in ["node1", "node2"] {
        let m = exec(node, &["findmnt", "-n", "-o", "FSTYPE,SOURCE", "/home"]).expect("findmnt");
        assert_eq!(
            m.split_whitespace().collect::<Vec<_>>(),
            ["nfs", "203.0.113.50:/var/lib/haven-lab/exports/home-export"],
            "{node}: {m}"
        );
    }
    let threads = exec("cm", &["cat", "/proc/fs/nfsd/threads"]).expect("nfsd threads");
    assert!(threads.trim().parse::<u32>().is_ok_and(|n| n > 0), "nfsd threads on cm: {threads}");
    exec("node1", &["sh", "-c", "echo written-by-node1 > /home/from-node1.html"]).expect("write over NFS");
    assert_eq!(
        exec("cm", &["cat", "/var/lib/haven-lab/exports/home-export/from-node1.html"]).expect("read on cm").trim(),
        "written-by-node1"
    );
    // The client is served through the VIP by both nodes, over /home.
    let url = format!("http://{VIP}/from-node1.html");
    for _ in 0..4 {
        let body = exec("client", &["curl", "-sf", "-m", "3", &url]).expect("the client is served");
        assert_eq!(body.trim(), "written-by-node1");
    }
    assert!(answers(6), "six answers in a row through {VIP}");

    // Power node2 off: the director drops it from the kernel table, the
    // client keeps being served by node1 over NFS.
    let off = Instant::now();
    let o = haven(&["lab", "fail", "node2", "poweroff"]);
    assert!(o.status.success(), "poweroff: {}", text(&o));
    let bound = Duration::from_secs(60);
    let dropped = wait(bound, || ipvs_reals() == vec![format!("{NODE1}:80")]).map(|_| off.elapsed());
    let served = wait(bound, || answers(6)).map(|_| off.elapsed());
    println!(
        "FAILOVER interworx on IPVS + kernel NFS: node2 out of the IPVS table {} s, six answers in a row {} s \
         after poweroff (bound {} s)",
        dropped.map_or("never".into(), |d| format!("{:.2}", d.as_secs_f64())),
        served.map_or("never".into(), |d| format!("{:.2}", d.as_secs_f64())),
        bound.as_secs()
    );
    assert!(dropped.is_some(), "node2 still in the IPVS table: {:?}", exec("cm", &["ipvsadm", "-Ln"]));
    assert!(served.is_some(), "the client is not served after node2's poweroff");
    let body = exec("client", &["curl", "-sf", "-m", "3", &url]).expect("served after the poweroff");
    assert_eq!(body.trim(), "written-by-node1");
    let m = exec("node1", &["findmnt", "-n", "-o", "FSTYPE", "/home"]).expect("findmnt");
    assert_eq!(m.trim(), "nfs", "/home stays mounted over NFS on node1");
    drop(guard);
    assert!(!Path::new("/var/lib/haven-lab").exists(), "lab down left /var/lib/haven-lab");
}
