//! Direct routing and IP-in-IP on nftables, end to end in namespaces: a
//! client, a director (ocf:haven:vip + ocf:haven:director, gate or ipip)
//! and three real servers holding the VIP on lo (ocf:haven:vip
//! lvs_realserver=true), all on one bridge. The real servers answer the
//! client directly: the test counts where the replies come from.

use crate::common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const VIP: &str = "198.51.100.10";
const DIRECTOR: &str = "198.51.100.1";
const CLIENT: &str = "198.51.100.2";

/// HTTP on :80 (test.html names the server, health.html for checks) and
/// an echo on :7 greeting with the server's name, on every address.
const SERVER_PY: &str = r#"
import http.server, socketserver, sys, threading, os
name, root = sys.argv[1], sys.argv[2]
os.chdir(root)
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(("hello from " + name + "\n").encode())
        while True:
            d = self.request.recv(100)
            if not d:
                return
            self.request.sendall(d)
class T(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True
e = T(("0.0.0.0", 7), Echo)
threading.Thread(target=e.serve_forever, daemon=True).start()
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass
T(("0.0.0.0", 80), H).serve_forever()
"#;

struct Real {
    ns: Netns,
    name: String,
    addr: String,
    root: PathBuf,
    server: Option<Reaped>,
}

impl Real {
    fn start(&mut self) {
        let script = self.root.join("server.py");
        std::fs::write(&script, SERVER_PY).unwrap();
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns.name, "python3"])
            .arg(&script)
            .arg(&self.name)
            .arg(&self.root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.server = Some(Reaped(child));
        // Probed from a thread inside the namespace, not by a python3 per
        // try: under the guest's TCG each interpreter start costs seconds.
        let (path, addr) = (format!("/run/netns/{}", self.ns.name), format!("{}:80", self.addr));
        let up = std::thread::spawn(move || {
            enter_netns(path);
            let addr: std::net::SocketAddr = addr.parse().unwrap();
            wait_for(Duration::from_secs(30), || TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok())
        })
        .join()
        .unwrap();
        assert!(up, "{} did not come up", self.name);
    }
}

/// One bridge (in a namespace of its own) joining every node's e0.
struct Lan {
    switch: Netns,
    client: Netns,
    director: Netns,
    reals: Vec<Real>,
    table: String,
    dir: PathBuf,
}

fn plug(switch: &Netns, ns: &Netns, port: &str, addr: &str) {
    sh(&["ip", "link", "add", "e0", "netns", &ns.name, "type", "veth", "peer", "name", port, "netns", &switch.name]);
    switch.ip(&["link", "set", port, "master", "br0"]);
    switch.ip(&["link", "set", port, "up"]);
    ns.ip(&["addr", "add", addr, "dev", "e0"]);
    ns.ip(&["link", "set", "e0", "up"]);
}

impl Lan {
    fn new(ipip: bool) -> Lan {
        let switch = Netns::new();
        switch.ip(&["link", "add", "br0", "type", "bridge"]);
        switch.ip(&["link", "set", "br0", "up"]);
        let client = Netns::new();
        let director = Netns::new();
        plug(&switch, &client, "pc", &format!("{CLIENT}/24"));
        plug(&switch, &director, "pd", &format!("{DIRECTOR}/24"));
        let dir = std::env::temp_dir().join(format!("haven-dr-{}", director.name));
        std::fs::create_dir_all(&dir).unwrap();
        let mut reals = Vec::new();
        for i in 1..=3 {
            let ns = Netns::new();
            let addr = format!("198.51.100.1{i}");
            plug(&switch, &ns, &format!("p{i}"), &format!("{addr}/24"));
            if ipip {
                // The fallback device tunl0 decapsulates IP-in-IP from anyone.
                if ns.exec(&["ip", "link", "show", "tunl0"]).status.success() {
                    ns.ip(&["link", "set", "tunl0", "up"]);
                } else {
                    ns.ip(&["link", "add", "tunl0", "type", "ipip"]);
                    ns.ip(&["link", "set", "tunl0", "up"]);
                }
                for k in ["all", "default", "tunl0"] {
                    ns.set_sysctl(&format!("net.ipv4.conf.{k}.rp_filter"), "0");
                }
            }
            let root = dir.join(format!("rs{i}"));
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(root.join("test.html"), format!("still alive: rs{i}\n")).unwrap();
            std::fs::write(root.join("health.html"), "ok\n").unwrap();
            let vip = Run::new("vip").inside(&ns).param("ip", VIP).param("lvs_realserver", "true").param("nic", "e0");
            vip.expect("start", 0);
            let mut rs = Real { ns, name: format!("rs{i}"), addr, root, server: None };
            rs.start();
            reals.push(rs);
        }
        let table = format!("hvt_{}", director.name.replace('-', "_"));
        Lan { switch, client, director, reals, table, dir }
    }

    fn config(&self, method: &str) -> String {
        let reals = |port: u16| -> String {
            self.reals.iter().map(|r| format!("\treal = {}:{port} {method}\n", r.addr)).collect()
        };
        let text = format!(
            "checkinterval = 1\nchecktimeout = 1\nfailurecount = 2\nquiescent = no\n\
             virtual = {VIP}:80\n{}\tservice = http\n\trequest = \"test.html\"\n\treceive = \"still alive\"\n\tscheduler = rr\n\
             virtual = {VIP}:7\n{}\tservice = http\n\tcheckport = 80\n\trequest = \"health.html\"\n\treceive = \"ok\"\n\tscheduler = rr\n",
            reals(80),
            reals(7)
        );
        let p = self.dir.join("ldirectord.cf");
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    /// `n` requests from the client (one process, each with a bounded
    /// timeout): how many each real server answered (index 0: failed).
    fn spread(&self, n: usize) -> [usize; 4] {
        let o = self.client.exec(&["python3", "-c", &format!(
            "import urllib.request\nfor _ in range({n}):\n try:\n  print(urllib.request.urlopen('http://{VIP}/test.html', timeout=2).read().decode().strip())\n except Exception:\n  print('failed')"
        )]);
        let mut c = [0usize; 4];
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let i = line.rsplit("rs").next().and_then(|d| d.parse::<usize>().ok());
            c[i.filter(|i| (1..=3).contains(i)).unwrap_or(0)] += 1;
        }
        c[0] += n.saturating_sub(c.iter().sum());
        c
    }

    fn status(&self) -> String {
        String::from_utf8_lossy(&self.director.exec(&[HAVEN, "director", "status", "--table", &self.table]).stdout)
            .into_owned()
    }

    /// Packets the director forwarded to real servers (its rs_* chains'
    /// counters).
    fn forwarded(&self) -> u64 {
        let o = self.director.exec(&["nft", "list", "table", "netdev", &self.table]);
        String::from_utf8_lossy(&o.stdout)
            .split("chain rs_")
            .skip(1)
            .filter_map(|c| {
                c.split('}').next()?.split("counter packets ").nth(1)?.split_whitespace().next()?.parse::<u64>().ok()
            })
            .sum()
    }

    fn tx_packets(&self) -> u64 {
        let o = self.director.exec(&["cat", "/sys/class/net/e0/statistics/tx_packets"]);
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(0)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // A failed test never reached stop: end its director daemon (the
        // pid its agent recorded, checked by command line).
        let state = format!("/run/haven/director/{}", self.table);
        if let Some(pid) =
            std::fs::read_to_string(format!("{state}/pid")).ok().and_then(|p| p.trim().parse::<i32>().ok())
        {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmd.split(|b| *b == 0).any(|a| a == self.table.as_bytes()) {
                signal(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(state);
        let _ = &self.switch;
    }
}

/// Counters of packets from the VIP: in the client (all of them, and those
/// with the director's MAC as source) and arriving at the director.
fn watch(lan: &Lan) {
    let dmac = lan.director.mac("e0").iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    let client = format!(
        "table netdev hvt_watch {{ counter via_director {{ }}\n counter from_vip {{ }}\n\
         chain in {{ type filter hook ingress device \"e0\" priority 0; policy accept;\n\
         ip saddr {VIP} ether saddr {dmac} counter name via_director\n ip saddr {VIP} counter name from_vip\n }}\n}}\n"
    );
    let director = format!(
        "table netdev hvt_watch {{ counter from_vip {{ }}\n chain in {{ type filter hook ingress device \"e0\" priority 0; policy accept;\n\
         ip saddr {VIP} counter name from_vip\n }}\n}}\n"
    );
    for (ns, text) in [(&lan.client, client), (&lan.director, director)] {
        let path = lan.dir.join(format!("watch-{}.nft", ns.name));
        std::fs::write(&path, text).unwrap();
        let o = ns.exec(&["nft", "-f", path.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

fn counter(ns: &Netns, name: &str) -> u64 {
    let o = ns.exec(&["nft", "list", "counter", "netdev", "hvt_watch", name]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.split("packets ").nth(1).and_then(|s| s.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn connect_in(ns: &Netns, addr: &str) -> TcpStream {
    let path = format!("/run/netns/{}", ns.name);
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    std::thread::spawn(move || {
        enter_netns(path);
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s
    })
    .join()
    .unwrap()
}

fn greeting(s: &mut TcpStream) -> String {
    let mut buf = [0u8; 100];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).split_whitespace().last().unwrap_or_default().to_string()
}

fn echo(s: &mut TcpStream, what: &[u8]) -> bool {
    let mut buf = [0u8; 100];
    s.write_all(what).is_ok() && s.read(&mut buf).is_ok_and(|n| &buf[..n] == what)
}

/// The scenario for one forwarding method. ipip runs in the guest only
/// (kernel::guest::ipip_on_nftables_tunnels_to_the_real_servers): the
/// host's kernel lacks the ipip module.
pub fn direct_routing(method: &str) {
    let t0 = Instant::now();
    let phase = |what: &str| eprintln!("{method}: {what} after {:.1} s", t0.elapsed().as_secs_f64());
    let mut lan = Lan::new(method == "ipip");
    phase("namespaces and real servers up");
    let vip = Run::new("vip").inside(&lan.director).param("ip", VIP).param("nic", "e0").param("arp_bg", "false");
    vip.expect("start", 0);
    let config = lan.config(method);
    // nftables even where the kernel has IPVS (the guest, once ip_vs is
    // loaded): this is the nftables data plane's test.
    let d = Run::new("director")
        .inside(&lan.director)
        .param("configfile", &config)
        .param("table", &lan.table)
        .param("backend", "nftables");
    d.expect("start", 0);
    d.expect("monitor", 0);
    phase("director started");
    let netdev = String::from_utf8_lossy(&lan.director.exec(&["nft", "list", "table", "netdev", &lan.table]).stdout)
        .into_owned();
    assert!(netdev.contains("hook ingress") && !netdev.contains("dnat"), "{netdev}");
    watch(&lan);

    // Requests spread; replies come from the real servers, not the director.
    let (tx, fwd) = (lan.tx_packets(), lan.forwarded());
    let t = Instant::now();
    let c = lan.spread(30);
    let took = t.elapsed();
    let (tx, fwd) = (lan.tx_packets() - tx, lan.forwarded() - fwd);
    let (from_vip, via_director) = (counter(&lan.client, "from_vip"), counter(&lan.client, "via_director"));
    let at_director = counter(&lan.director, "from_vip");
    eprintln!(
        "{method}: 30 requests: failed {}, rs1 {}, rs2 {}, rs3 {}; client got {from_vip} packets from the VIP, \
         {via_director} of them via the director; {at_director} reply packets reached the director; director e0 sent {tx} packets (health checks included), {fwd} of them requests forwarded \
         by the netdev table; {took:?}",
        c[0], c[1], c[2], c[3]
    );
    assert!(c[0] == 0 && c[1] > 0 && c[2] > 0 && c[3] > 0, "{c:?}\n{}", lan.status());
    assert!(from_vip >= 30 * 3, "every request answered with several packets: {from_vip}");
    assert_eq!((via_director, at_director), (0, 0), "no reply crossed the director");

    phase("requests spread");
    // A connection held to one real server across a table change.
    let mut held = connect_in(&lan.client, &format!("{VIP}:7"));
    let name = greeting(&mut held);
    let keep: usize = name.trim_start_matches("rs").parse::<usize>().unwrap() - 1;
    let victim = (keep + 1) % 3;
    let victim_addr = format!("{}:80", lan.reals[victim].addr);
    // A dead real server leaves within checkinterval x failurecount +
    // checktimeout (generous slack: the machine is shared).
    let bound = Duration::from_secs(2 + 1);
    lan.reals[victim].server = None;
    let t = Instant::now();
    // Under the guest's TCG (ipip) every check round is several times
    // slower: more slack there; the time taken is printed either way.
    let slack = if std::env::var("HAVEN_VM").is_ok_and(|v| v == "1") { 15 } else { 4 };
    let gone = wait_for(bound + Duration::from_secs(slack), || {
        lan.status().lines().any(|l| l.contains(&victim_addr) && l.contains("DOWN"))
    });
    let took = t.elapsed();
    eprintln!("{method}: rs{} removed after {took:?} (bound {bound:?})", victim + 1);
    assert!(gone, "not removed:\n{}", lan.status());
    assert!(echo(&mut held, b"still here?"), "the held connection to {name} broke on the table change");
    let c = lan.spread(15);
    eprintln!("{method}: after removal: failed {}, rs1 {}, rs2 {}, rs3 {}", c[0], c[1], c[2], c[3]);
    assert!(c[0] == 0 && c[victim + 1] == 0, "{c:?}");
    for _ in 0..4 {
        let mut s = connect_in(&lan.client, &format!("{VIP}:7"));
        assert_ne!(greeting(&mut s), format!("rs{}", victim + 1));
    }
    assert!(echo(&mut held, b"and now?"));
    drop(held);
    phase("removal and held connection checked");

    d.expect("stop", 0);
    let tables = String::from_utf8_lossy(&lan.director.exec(&["nft", "list", "tables"]).stdout).into_owned();
    assert!(!tables.contains(&lan.table), "stop left a table: {tables}");
    // tunl0 is the kernel's own fallback device, in every namespace once
    // the ipip module is loaded; the director's devices have other names.
    let links = lan.director.ip(&["-o", "link", "show"]);
    let left: Vec<&str> = links.lines().filter(|l| l.contains("link/ipip") && !l.contains(" tunl0")).collect();
    assert!(left.is_empty(), "stop left a tunnel device: {links}");
    vip.expect("stop", 0);
    phase("stopped");
}

#[test]
fn gate_on_nftables_routes_directly() {
    if !need_root() || !need_tool("nft") || !need_tool("python3") {
        return;
    }
    direct_routing("gate");
}

/// `haven director check` says how gate and ipip are carried out on
/// nftables, and which services are still DNAT'ed.
#[test]
fn check_says_how_gate_and_ipip_run_on_nftables() {
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        eprintln!("NOT RUN: this kernel has IPVS, check describes the IPVS data plane");
        return;
    }
    let cf = std::env::temp_dir().join(format!("haven-dr-check-{}.cf", std::process::id()));
    std::fs::write(
        &cf,
        "virtual = 198.51.100.10:80\n\treal = 198.51.100.11:80 gate\n\treal = 198.51.100.12:80 gate\n\tscheduler = wlc\n\
         virtual = 198.51.100.10:443\n\treal = 198.51.100.11:443 ipip\n\
         virtual = 198.51.100.10:25\n\treal = 198.51.100.11:25 gate\n\treal = 198.51.100.12:25 masq\n",
    )
    .unwrap();
    let o = std::process::Command::new(HAVEN).args(["director", "check", "--config"]).arg(&cf).output().unwrap();
    let _ = std::fs::remove_file(&cf);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let line = |port: &str| err.lines().filter(|l| l.contains(&format!(":{port} "))).collect::<Vec<_>>().join("\n");
    assert!(line("80").contains("direct routing") && line("80").contains("fwd to"), "{err}");
    assert!(line("80").contains("active connections"), "the wlc gap is said: {err}");
    assert!(line("443").contains("ipip tunnel device per real server"), "{err}");
    assert!(line("25").contains("reached by DNAT"), "{err}");
    assert!(!line("80").contains("DNAT") && !line("443").contains("DNAT"), "{err}");
}
