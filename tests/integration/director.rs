//! The director end to end with nftables, in namespaces: a client, a
//! director holding the VIP (ocf:haven:vip), three real servers serving a
//! test page ("still alive") with the director as their gateway.

use crate::common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const VIP: &str = "198.51.100.10";

/// A small server inside a namespace: HTTP on :80 from a directory, and an
/// echo service on :7 that greets with the server's name.
const SERVER_PY: &str = r#"
import http.server, socketserver, sys, threading, os
name, addr, root = sys.argv[1], sys.argv[2], sys.argv[3]
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
e = T((addr, 7), Echo)
threading.Thread(target=e.serve_forever, daemon=True).start()
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass
h = T((addr, 80), H)
h.serve_forever()
"#;

struct RealServer {
    ns: Netns,
    name: String,
    addr: String,
    root: PathBuf,
    server: Option<Reaped>,
}

impl RealServer {
    fn start(&mut self) {
        let script = self.root.join("server.py");
        std::fs::write(&script, SERVER_PY).unwrap();
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns.name, "python3"])
            .arg(&script)
            .args([&self.name, &self.addr])
            .arg(&self.root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.server = Some(Reaped(child));
        let ok = wait_for(Duration::from_secs(5), || {
            self.ns
                .exec(&["python3", "-c", &format!("import socket; socket.create_connection(('{}', 80), 1)", self.addr)])
                .status
                .success()
        });
        assert!(ok, "{} did not come up", self.name);
    }
    fn kill(&mut self) {
        self.server = None;
    }
    fn set_health(&self, ok: bool) {
        let p = self.root.join("health.html");
        if ok {
            std::fs::write(p, "ok\n").unwrap();
        } else {
            let _ = std::fs::remove_file(p);
        }
    }
}

struct Lab {
    /// nftables table and state directory of this test's director: unique,
    /// since tests run in parallel and share /run.
    table: String,
    client: Netns,
    director: Netns,
    reals: Vec<RealServer>,
    dir: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let client = Netns::new();
        let director = Netns::new();
        veth(&client, "c0", &["198.51.100.2/24"], &director, "d0", &["198.51.100.1/24"]);
        director.ip(&["link", "add", "br0", "type", "bridge"]);
        director.ip(&["addr", "add", "203.0.113.1/24", "dev", "br0"]);
        director.ip(&["link", "set", "br0", "up"]);
        director.set_sysctl("net.ipv4.ip_forward", "1");
        let dir = std::env::temp_dir().join(format!("haven-director-{}-{}", std::process::id(), director.name));
        std::fs::create_dir_all(&dir).unwrap();
        let mut reals = Vec::new();
        for i in 1..=3 {
            let ns = Netns::new();
            let port = format!("p{i}");
            sh(&[
                "ip",
                "link",
                "add",
                "r0",
                "netns",
                &ns.name,
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                &director.name,
            ]);
            director.ip(&["link", "set", &port, "master", "br0"]);
            director.ip(&["link", "set", &port, "up"]);
            let addr = format!("203.0.113.1{i}");
            ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", "r0"]);
            ns.ip(&["link", "set", "r0", "up"]);
            ns.ip(&["route", "add", "default", "via", "203.0.113.1"]);
            let root = dir.join(format!("rs{i}"));
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(root.join("test.html"), format!("still alive: rs{i}\n")).unwrap();
            let mut rs = RealServer { ns, name: format!("rs{i}"), addr, root, server: None };
            rs.set_health(true);
            rs.start();
            reals.push(rs);
        }
        let table = format!("hvt_{}", director.name.replace('-', "_"));
        Lab { table, client, director, reals, dir }
    }

    /// One request from the client through the VIP; the body, or None.
    fn get(&self, path: &str) -> Option<String> {
        let o = self.client.exec(&["python3", "-c", &format!(
            "import urllib.request,sys\ntry:\n print(urllib.request.urlopen('http://{VIP}{path}', timeout=2).read().decode().strip())\nexcept Exception as e:\n sys.exit(1)"
        )]);
        o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    }

    fn config(&self, text: &str) -> String {
        let p = self.dir.join("ldirectord.cf");
        let tmp = self.dir.join("ldirectord.cf.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        p.display().to_string()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // A failed test never reached stop: end its director daemon (found
        // by the pid its agent recorded, checked by command line), or it
        // would live on in the deleted namespace.
        let state = format!("/run/haven/director/{}", self.table);
        if let Some(pid) =
            std::fs::read_to_string(format!("{state}/pid")).ok().and_then(|p| p.trim().parse::<i32>().ok())
        {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmd.split(|b| *b == 0).any(|a| a == self.table.as_bytes()) {
                // The daemon this test's director resource started.
                signal(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(state);
    }
}

fn cf(quiescent: &str, extra_real: &str) -> String {
    format!(
        "checkinterval = 1\nchecktimeout = 1\nfailurecount = 2\nquiescent = {quiescent}\nautoreload = yes\n\
         virtual = {VIP}:80\n\treal = 203.0.113.11:80 masq\n\treal = 203.0.113.12:80 masq\n\treal = 203.0.113.13:80 masq\n{extra_real}\
         \tservice = http\n\trequest = \"test.html\"\n\treceive = \"still alive\"\n\tscheduler = rr\n\tfallback = 127.0.0.1:8080\n\
         virtual = {VIP}:7\n\treal = 203.0.113.11:7 masq\n\treal = 203.0.113.12:7 masq\n\treal = 203.0.113.13:7 masq\n\
         \tservice = http\n\tcheckport = 80\n\trequest = \"health.html\"\n\treceive = \"ok\"\n\tscheduler = rr\n"
    )
}

fn spread(lab: &Lab, n: usize) -> [usize; 4] {
    let mut counts = [0usize; 4];
    for _ in 0..n {
        match lab.get("/test.html") {
            Some(body) if body.contains("rs1") => counts[1] += 1,
            Some(body) if body.contains("rs2") => counts[2] += 1,
            Some(body) if body.contains("rs3") => counts[3] += 1,
            _ => counts[0] += 1,
        }
    }
    counts
}

fn director_status(lab: &Lab) -> String {
    String::from_utf8_lossy(&lab.director.exec(&[HAVEN, "director", "status", "--table", &lab.table]).stdout)
        .into_owned()
}

#[test]
fn load_balances_and_follows_health() {
    if !need_root() || !need_tool("nft") || !need_tool("python3") {
        return;
    }
    let mut lab = Lab::new();
    let vip = Run::new("vip").inside(&lab.director).param("ip", VIP).param("nic", "d0").param("arp_bg", "false");
    vip.expect("start", 0);
    let config = lab.config(&cf("no", ""));
    let d = Run::new("director").inside(&lab.director).param("configfile", &config).param("table", &lab.table);
    assert_eq!(d.probe().code, 7);
    let t = Instant::now();
    d.expect("start", 0);
    eprintln!("director start took {:?}", t.elapsed());
    d.expect("monitor", 0);

    // Requests spread over all three.
    let c = spread(&lab, 30);
    eprintln!("30 requests: failed {}, rs1 {}, rs2 {}, rs3 {}", c[0], c[1], c[2], c[3]);
    assert_eq!(c[0], 0, "no request fails");
    assert!(c[1] > 0 && c[2] > 0 && c[3] > 0, "{c:?}");

    // rs2 dies: gone within checkinterval x failurecount + checktimeout.
    let bound = Duration::from_secs(2 + 1) + Duration::from_millis(1500); // interval x failurecount + timeout, plus slack
    lab.reals[1].kill();
    let t = Instant::now();
    let gone =
        wait_for(bound, || director_status(&lab).lines().any(|l| l.contains("203.0.113.12:80") && l.contains("DOWN")));
    eprintln!("rs2 removed after {:?} (bound {bound:?})", t.elapsed());
    assert!(gone, "rs2 not removed in time:\n{}", director_status(&lab));
    let c = spread(&lab, 20);
    assert_eq!((c[0], c[2]), (0, 0), "after removal no request fails or reaches rs2: {c:?}");

    // Back: re-added after one good check.
    lab.reals[1].start();
    let back = wait_for(Duration::from_secs(4), || {
        director_status(&lab).lines().any(|l| l.contains("203.0.113.12:80") && l.contains(" up "))
    });
    assert!(back, "rs2 not re-added:\n{}", director_status(&lab));
    let c = spread(&lab, 15);
    assert!(c[2] > 0 && c[0] == 0, "{c:?}");

    // All down: the fallback (a server on the director itself) answers.
    let fb_root = lab.dir.join("fallback");
    std::fs::create_dir_all(&fb_root).unwrap();
    std::fs::write(fb_root.join("test.html"), "sorry, fallback\n").unwrap();
    let _fallback = Reaped(
        std::process::Command::new("ip")
            .args(["netns", "exec", &lab.director.name, "python3", "-m", "http.server", "8080", "--bind", "0.0.0.0"])
            .current_dir(&fb_root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    for rs in lab.reals.iter_mut() {
        rs.kill();
    }
    let fell_back = wait_for(Duration::from_secs(6), || lab.get("/test.html").is_some_and(|b| b.contains("fallback")));
    assert!(fell_back, "fallback did not answer:\n{}", director_status(&lab));
    assert!(director_status(&lab).contains("FALLBACK"));
    for rs in lab.reals.iter_mut() {
        rs.start();
    }
    assert!(wait_for(Duration::from_secs(5), || lab.get("/test.html").is_some_and(|b| b.contains("still alive"))));

    d.expect("stop", 0);
    let tables = String::from_utf8_lossy(&lab.director.exec(&["nft", "list", "tables"]).stdout).into_owned();
    assert!(!tables.contains(&lab.table), "stop left the table: {tables}");
    assert_eq!(d.action("monitor").code, 7);
    vip.expect("stop", 0);
}

/// A TCP connection made from inside `ns` (by a thread that entered it);
/// the socket stays in that namespace and is usable from this thread.
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

#[test]
fn quiescent_keeps_established_connections() {
    if !need_root() || !need_tool("nft") || !need_tool("python3") {
        return;
    }
    let lab = Lab::new();
    let vip = Run::new("vip").inside(&lab.director).param("ip", VIP).param("nic", "d0").param("arp_bg", "false");
    vip.expect("start", 0);
    let config = lab.config(&cf("yes", ""));
    let d = Run::new("director").inside(&lab.director).param("configfile", &config).param("table", &lab.table);
    d.expect("start", 0);
    let mut s = connect_in(&lab.client, &format!("{VIP}:7"));
    let name = greeting(&mut s);
    let idx: usize = name.trim_start_matches("rs").parse::<usize>().unwrap() - 1;
    let addr = format!("{}:7", lab.reals[idx].addr);
    lab.reals[idx].set_health(false);
    let quiesced = wait_for(Duration::from_secs(5), || {
        director_status(&lab).lines().any(|l| l.contains(&addr) && l.contains("DOWN") && l.contains(" 0 "))
    });
    assert!(quiesced, "{name} not quiesced:\n{}", director_status(&lab));
    // The established connection still reaches its real server...
    s.write_all(b"still here?").unwrap();
    let mut buf = [0u8; 100];
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"still here?");
    // ...while new ones go elsewhere.
    for _ in 0..9 {
        let mut c = connect_in(&lab.client, &format!("{VIP}:7"));
        assert_ne!(greeting(&mut c), name, "a new connection reached the quiescent {name}");
    }
    d.expect("stop", 0);
    vip.expect("stop", 0);
}

#[test]
fn autoreload_applies_good_files_and_survives_broken_ones() {
    if !need_root() || !need_tool("nft") || !need_tool("python3") {
        return;
    }
    let lab = Lab::new();
    let vip = Run::new("vip").inside(&lab.director).param("ip", VIP).param("nic", "d0").param("arp_bg", "false");
    vip.expect("start", 0);
    let config = lab.config(&cf("no", ""));
    let d = Run::new("director").inside(&lab.director).param("configfile", &config).param("table", &lab.table);
    d.expect("start", 0);
    // A good file: rs3 leaves the service.
    lab.config(&cf("no", "").replace("\treal = 203.0.113.13:80 masq\n", ""));
    let reloaded = wait_for(Duration::from_secs(5), || !director_status(&lab).contains("203.0.113.13:80"));
    assert!(reloaded, "good file not applied:\n{}", director_status(&lab));
    let c = spread(&lab, 12);
    assert!(c[0] == 0 && c[3] == 0 && c[1] > 0 && c[2] > 0, "{c:?}");
    // A broken file: the running table stays, the error is logged, monitor
    // depth 10 reports degraded.
    let before = director_status(&lab);
    lab.config("checkinterval = 1\nvirtual = 198.51.100.10:80\n\treal = 203.0.113.11:80 sideways\n");
    std::thread::sleep(Duration::from_millis(2500));
    let log = std::fs::read_to_string(format!("/run/haven/director/{}/daemon.log", lab.table)).unwrap_or_default();
    assert!(log.contains("NOT reloaded") && log.contains(":3:"), "the error with its line is logged:\n{log}");
    let after = director_status(&lab);
    assert_eq!(before.lines().filter(|l| l.contains("->")).count(), after.lines().filter(|l| l.contains("->")).count());
    assert_eq!(spread(&lab, 6)[0], 0, "still serving");
    d.expect("monitor", 0);
    assert_eq!(d.monitor_at(10).code, 190, "depth 10 sees the broken file");
    // A file that now names a command (callback) in a directory others can
    // write: refused like a broken one (crate::trust), the table stays.
    lab.config(&format!("callback = /bin/true\n{}", cf("no", "")));
    std::thread::sleep(Duration::from_millis(2500));
    let log = std::fs::read_to_string(format!("/run/haven/director/{}/daemon.log", lab.table)).unwrap_or_default();
    assert!(log.contains("NOT reloaded") && log.contains("refusing"), "the refusal is logged:\n{log}");
    let c = spread(&lab, 6);
    assert!(c[0] == 0 && c[3] == 0, "the old table (without rs3) still serves: {c:?}");
    d.expect("stop", 0);
    vip.expect("stop", 0);
}

#[test]
fn check_reports_line_numbers_and_parses_the_smt_example() {
    let root = env!("CARGO_MANIFEST_DIR");
    let ok = std::process::Command::new(HAVEN)
        .args(["director", "check", "--config"])
        .arg(format!("{root}/examples/ldirectord-smt.cf"))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("2 virtual services, 4 real servers"));
    if !std::path::Path::new("/proc/net/ip_vs").exists() {
        // On nftables the wlc gap is said, not only written in a comment.
        let err = String::from_utf8_lossy(&ok.stderr);
        assert!(err.contains("scheduler wlc on nftables") && err.contains("active connections"), "{err}");
    }
    // Debian's own example file loads as it is.
    let debian = "/usr/share/doc/ldirectord/examples/ldirectord.cf";
    if need_file(debian) {
        let o = std::process::Command::new(HAVEN).args(["director", "check", "--config", debian]).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let bad = std::env::temp_dir().join(format!("haven-bad-{}.cf", std::process::id()));
    std::fs::write(&bad, "checkinterval = 5\nvirtual = 198.51.100.10:80\n\treal = 203.0.113.11:80 gaet\n").unwrap();
    let o = std::process::Command::new(HAVEN).args(["director", "check", "--config"]).arg(&bad).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{}:3:", bad.display())), "{err}");
    let _ = std::fs::remove_file(&bad);
}

#[test]
fn the_smt_example_runs_as_it_is() {
    if !need_root() || !need_tool("nft") {
        return;
    }
    // No real servers answer here: the director runs, every real server is
    // down, and the fallback takes the traffic (a degraded but working LVS).
    let ns = Netns::new();
    let root = env!("CARGO_MANIFEST_DIR");
    let table = format!("hvt_smt_{}", std::process::id());
    let d = Run::new("director")
        .inside(&ns)
        .param("configfile", &format!("{root}/examples/ldirectord-smt.cf"))
        .param("table", &table);
    d.expect("start", 0);
    let st = String::from_utf8_lossy(&ns.exec(&[HAVEN, "director", "status", "--table", &table]).stdout).into_owned();
    assert!(st.contains("TCP  198.51.100.10:443 wlc") && st.contains("TCP  198.51.100.10:80 wlc"), "{st}");
    assert!(st.contains("FALLBACK"), "{st}");
    d.expect("monitor", 0);
    d.expect("stop", 0);
    let _ = std::fs::remove_dir_all(format!("/run/haven/director/{table}"));
}

#[test]
fn https_checks_speak_tls() {
    if !need_root() || !need_tool("openssl") {
        return;
    }
    let ns = Netns::new();
    let dir = std::env::temp_dir().join(format!("haven-tls-{}", ns.name));
    std::fs::create_dir_all(&dir).unwrap();
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    sh(&[
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=www.example.org",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]);
    let _server = Reaped(
        std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "openssl",
                "s_server",
                "-quiet",
                "-www",
                "-accept",
                "127.0.0.1:8443",
                "-key",
            ])
            .arg(&key)
            .arg("-cert")
            .arg(&cert)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let cfg = dir.join("tls.cf");
    std::fs::write(
        &cfg,
        "checkinterval = 1\nchecktimeout = 2\nnegotiatetimeout = 2\nvirtual = 198.51.100.77:443\n\
        \treal = 127.0.0.1:8443 masq\n\tservice = https\n\trequest = \"/\"\n\treceive = \"(?i)cipher\"\n",
    )
    .unwrap();
    let table = format!("hvt_tls_{}", std::process::id());
    let st =
        || String::from_utf8_lossy(&ns.exec(&[HAVEN, "director", "status", "--table", &table]).stdout).into_owned();
    let d = Run::new("director").inside(&ns).param("configfile", cfg.to_str().unwrap()).param("table", &table);
    d.expect("start", 0);
    // s_server needs a moment to listen: the real server comes up once it does.
    assert!(
        wait_for(Duration::from_secs(6), || st().lines().any(|l| l.contains("127.0.0.1:8443") && l.contains(" up "))),
        "{}",
        st()
    );
    d.expect("stop", 0);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(format!("/run/haven/director/{table}"));
}

#[test]
fn ping_and_external_checks() {
    if !need_root() {
        return;
    }
    let ns = Netns::new();
    ns.ip(&["addr", "add", "203.0.113.50/32", "dev", "lo"]);
    let dir = std::env::temp_dir().join(format!("haven-ping-{}", ns.name));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("ping.cf");
    // 203.0.113.50 answers (it is on lo); 203.0.113.51 does not exist.
    std::fs::write(
        &cfg,
        "checktimeout = 1\nvirtual = 198.51.100.77:80\n\treal = 203.0.113.50:80 masq\n\treal = 203.0.113.51:80 masq\n\tchecktype = ping\n\
         virtual = 198.51.100.77:81\n\treal = 203.0.113.50:81 masq\n\tchecktype = external\n\tcheckcommand = /bin/true\n",
    )
    .unwrap();
    let out = ns.exec(&[HAVEN, "director", "round", "--config", cfg.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("3 real servers checked") && text.contains(", 2 up"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
