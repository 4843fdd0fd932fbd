//! The director's negotiate checks against real servers from Debian's
//! packages (dnsmasq, slapd, PostgreSQL, MariaDB, FreeRADIUS, Dovecot,
//! Python's smtpd, pyftpdlib, tinyproxy in front of Python's http.server)
//! and small SIP/NNTP responders written here, each in its
//! own network namespace on 127.0.0.1. Every check runs through
//! `haven director round` on an ldirectord.cf, once where it must pass and
//! once where it must fail.

use super::common::*;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A server process inside a namespace, ended by pid when the test ends.
struct Server {
    child: Child,
    what: String,
}

impl Server {
    fn start(ns: &Netns, what: &str, argv: &[&str]) -> Server {
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        Server { child, what: what.to_string() }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // `ip netns exec` execs the server: this pid is the server's.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let waited = wait_for(Duration::from_secs(10), || matches!(self.child.try_wait(), Ok(Some(_))));
        if !waited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = &self.what;
    }
}

/// A scratch directory removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("haven-checks-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write scratch file");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run one round of checks inside `ns`: (real servers up, output).
fn round(ns: &Netns, dir: &Scratch, cf: &str) -> (usize, String) {
    let path = dir.write("ldirectord.cf", cf);
    let o = ns.exec(&[HAVEN, "director", "round", "--config", &path]);
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "haven director round failed:\n{cf}\n{out}");
    let up = out
        .split(", ")
        .find_map(|p| p.strip_suffix(" up\n").or(p.strip_suffix(" up")))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count in {out:?}"));
    (up, out)
}

/// A virtual block for one real server on 127.0.0.1:`port`.
fn cf(port: u16, service: &str, extra: &str) -> String {
    format!(
        "checktimeout = 5\nnegotiatetimeout = 5\nvirtual = 198.51.100.10:{port}\n\treal = 127.0.0.1:{port} masq\n\
         \tchecktype = negotiate\n\tservice = {service}\n{extra}"
    )
}

/// Wait until `port` takes connections inside the namespace.
fn ready(ns: &Netns, dir: &Scratch, port: u16, udp: bool) {
    if udp {
        std::thread::sleep(Duration::from_millis(300));
        return;
    }
    ready_on(ns, dir, "127.0.0.1", port);
}

/// Wait until `ip`:`port` takes TCP connections inside the namespace.
fn ready_on(ns: &Netns, dir: &Scratch, ip: &str, port: u16) {
    let text = format!("virtual = 198.51.100.10:{port}\n\treal = {ip}:{port} masq\n\tchecktype = connect\n");
    assert!(wait_for(Duration::from_secs(30), || round(ns, dir, &text).0 == 1), "{ip}:{port} never opened");
}

/// The passing and failing configurations of one service.
fn pass_and_fail(ns: &Netns, dir: &Scratch, pass: &str, fail: &str) {
    let (up, out) = round(ns, dir, pass);
    assert_eq!(up, 1, "must pass:\n{pass}\n{out}");
    let (up, out) = round(ns, dir, fail);
    assert_eq!(up, 0, "must fail:\n{fail}\n{out}");
}

fn prerequisites(tools: &[&str]) -> bool {
    need_root() && tools.iter().all(|t| need_tool(t))
}

#[test]
fn dns_check_against_dnsmasq() {
    if !prerequisites(&["dnsmasq"]) {
        return;
    }
    let ns = Netns::new();
    let dir = Scratch::new("dns");
    let _s = Server::start(
        &ns,
        "dnsmasq",
        &[
            "dnsmasq",
            "-k",
            "--no-resolv",
            "--no-hosts",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--port=5353",
            "--pid-file=",
            "--address=/ok.example.org/203.0.113.7",
        ],
    );
    ready(&ns, &dir, 5353, true);
    let base = "\tprotocol = udp\n\trequest = \"ok.example.org\"\n";
    pass_and_fail(
        &ns,
        &dir,
        &cf(5353, "dns", &format!("{base}\treceive = \"203.0.113.7\"\n")),
        &cf(5353, "dns", &format!("{base}\treceive = \"198.51.100.99\"\n")),
    );
    // Over TCP as well, when the virtual service is TCP.
    let (up, out) = round(
        &ns,
        &dir,
        &cf(5353, "dns", "\tprotocol = tcp\n\trequest = \"ok.example.org\"\n\treceive = \"203.0.113.7\"\n"),
    );
    assert_eq!(up, 1, "{out}");
}

#[test]
fn ldap_check_against_slapd() {
    if !prerequisites(&["slapd"]) {
        return;
    }
    let ns = Netns::new();
    let dir = Scratch::new("ldap");
    let conf = dir.write(
        "slapd.conf",
        &format!(
            "include /etc/ldap/schema/core.schema\npidfile {}\nargsfile {}\n",
            dir.path("slapd.pid"),
            dir.path("slapd.args")
        ),
    );
    let _s = Server::start(&ns, "slapd", &["slapd", "-d", "0", "-h", "ldap://127.0.0.1:3389/", "-f", &conf]);
    ready(&ns, &dir, 3389, false);
    // The root DSE (request "/"): one entry, anonymous bind.
    pass_and_fail(&ns, &dir, &cf(3389, "ldap", ""), &cf(3389, "ldap", "\trequest = \"dc=missing,dc=example\"\n"));
}

#[test]
fn pgsql_check_against_postgresql() {
    let Some(bin) = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.path().join("bin"))
    else {
        missing("postgresql (/usr/lib/postgresql/*/bin)");
        return;
    };
    if !prerequisites(&["setpriv"]) {
        return;
    }
    let ns = Netns::new();
    let dir = Scratch::new("pgsql");
    let data = dir.path("data");
    std::fs::create_dir_all(&data).unwrap();
    let pw = dir.write("pw", "s3cret\n");
    sh(&["chown", "-R", "postgres:postgres", &dir.0.display().to_string()]);
    let as_pg = ["setpriv", "--reuid", "postgres", "--regid", "postgres", "--clear-groups"];
    let initdb = bin.join("initdb").display().to_string();
    let mut argv: Vec<&str> = as_pg.to_vec();
    argv.extend(["--", &initdb, "-D", &data, "-U", "haven", "--pwfile", &pw, "--auth=scram-sha-256"]);
    let o = Command::new(argv[0]).args(&argv[1..]).output().expect("initdb");
    assert!(o.status.success(), "initdb: {}", String::from_utf8_lossy(&o.stderr));
    let postgres = bin.join("postgres").display().to_string();
    let mut argv: Vec<&str> = as_pg.to_vec();
    argv.extend(["--", &postgres, "-D", &data, "-k", &data, "-h", "127.0.0.1", "-p", "5433"]);
    let _s = Server::start(&ns, "postgres", &argv);
    ready(&ns, &dir, 5433, false);
    let login = "\tlogin = \"haven\"\n\tdatabase = \"postgres\"\n\trequest = \"SELECT 1\"\n";
    pass_and_fail(
        &ns,
        &dir,
        &cf(5433, "pgsql", &format!("{login}\tpasswd = \"s3cret\"\n")),
        &cf(5433, "pgsql", &format!("{login}\tpasswd = \"wrong\"\n")),
    );
    // A query that returns no rows fails too (ldirectord's check_sql).
    let (up, _) = round(
        &ns,
        &dir,
        &cf(5433, "pgsql", "\tlogin = \"haven\"\n\tpasswd = \"s3cret\"\n\trequest = \"SELECT 1 WHERE false\"\n"),
    );
    assert_eq!(up, 0);
}

#[test]
fn mysql_check_against_mariadb() {
    if !prerequisites(&["mariadbd", "mariadb-install-db"]) {
        return;
    }
    let ns = Netns::new();
    let dir = Scratch::new("mysql");
    let data = dir.path("data");
    let o = Command::new("mariadb-install-db")
        .args(["--no-defaults", "--user=root", "--skip-test-db", "--auth-root-authentication-method=normal"])
        .arg(format!("--datadir={data}"))
        .output()
        .expect("mariadb-install-db");
    assert!(o.status.success(), "mariadb-install-db: {}", String::from_utf8_lossy(&o.stderr));
    let init = dir.write(
        "init.sql",
        "CREATE USER IF NOT EXISTS 'haven'@'%' IDENTIFIED BY 's3cret';\nGRANT SELECT ON *.* TO 'haven'@'%';\n",
    );
    let pidf = format!("--pid-file={}", dir.path("pid"));
    let (datadir, socket, initf) =
        (format!("--datadir={data}"), format!("--socket={}", dir.path("sock")), format!("--init-file={init}"));
    let _s = Server::start(
        &ns,
        "mariadbd",
        &[
            "mariadbd",
            "--no-defaults",
            "--user=root",
            &datadir,
            &socket,
            &initf,
            "--port=3307",
            "--bind-address=127.0.0.1",
            "--skip-log-bin",
            &pidf,
            "--innodb-buffer-pool-size=8M",
        ],
    );
    ready(&ns, &dir, 3307, false);
    let login = "\tlogin = \"haven\"\n\tdatabase = \"mysql\"\n\trequest = \"SELECT 1\"\n";
    pass_and_fail(
        &ns,
        &dir,
        &cf(3307, "mysql", &format!("{login}\tpasswd = \"s3cret\"\n")),
        &cf(3307, "mysql", &format!("{login}\tpasswd = \"wrong\"\n")),
    );
}

#[test]
fn radius_check_against_freeradius() {
    if !prerequisites(&["freeradius"]) {
        return;
    }
    let ns = Netns::new();
    let dir = Scratch::new("radius");
    let conf = dir.path("raddb");
    sh(&["cp", "-a", "/etc/freeradius/3.0", &conf]);
    // One virtual server doing PAP from the users file (the package's sites
    // want EAP certificates it does not make).
    for site in std::fs::read_dir(format!("{conf}/sites-enabled")).unwrap().flatten() {
        let _ = std::fs::remove_file(site.path());
    }
    let _ = std::fs::remove_file(format!("{conf}/mods-enabled/eap"));
    std::fs::write(
        format!("{conf}/sites-enabled/check"),
        "server default {\n listen {\n  type = auth\n  ipaddr = 127.0.0.1\n  port = 1812\n }\n \
         authorize {\n  files\n  pap\n }\n authenticate {\n  Auth-Type PAP {\n   pap\n  }\n }\n}\n",
    )
    .unwrap();
    std::fs::write(format!("{conf}/clients.conf"), "client local {\n\tipaddr = 127.0.0.1\n\tsecret = t3sting\n}\n")
        .unwrap();
    let users = format!("{conf}/mods-config/files/authorize");
    let old = std::fs::read_to_string(&users).unwrap_or_default();
    std::fs::write(&users, format!("haven Cleartext-Password := \"s3cret\"\n{old}")).unwrap();
    sh(&["chmod", "-R", "a+rX", &dir.0.display().to_string()]);
    let _s = Server::start(&ns, "freeradius", &["freeradius", "-f", "-d", &conf, "-l", "stdout"]);
    ready(&ns, &dir, 1812, true);
    std::thread::sleep(Duration::from_secs(2));
    let base = "\tprotocol = udp\n\tlogin = \"haven\"\n\tsecret = \"t3sting\"\n";
    pass_and_fail(
        &ns,
        &dir,
        &cf(1812, "radius", &format!("{base}\tpasswd = \"s3cret\"\n")),
        &cf(1812, "radius", &format!("{base}\tpasswd = \"wrong\"\n")),
    );
    // A wrong secret: the answer's authenticator does not verify.
    let (up, _) = round(
        &ns,
        &dir,
        &cf(1812, "radius", "\tprotocol = udp\n\tlogin = \"haven\"\n\tsecret = \"other\"\n\tpasswd = \"s3cret\"\n"),
    );
    assert_eq!(up, 0);
}

#[test]
fn mail_checks_against_dovecot_and_smtpd() {
    if !prerequisites(&["dovecot", "openssl", "python3"]) {
        return;
    }
    let ns = Netns::new();
    let dir = Scratch::new("mail");
    let (cert, key) = (dir.path("cert.pem"), dir.path("key.pem"));
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
        "/CN=mail.example.org",
        "-keyout",
        &key,
        "-out",
        &cert,
    ]);
    std::fs::create_dir_all(dir.path("run")).unwrap();
    std::fs::create_dir_all(dir.path("home")).unwrap();
    sh(&["chmod", "-R", "a+rwX", &dir.path("home")]);
    let conf = dir.write(
        "dovecot.conf",
        &format!(
            "base_dir = {run}\nstate_dir = {run}\nlog_path = /dev/null\nprotocols = imap pop3\nlisten = 127.0.0.1\n\
             ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\nauth_mechanisms = plain\n\
             disable_plaintext_auth = no\npassdb {{\n  driver = static\n  args = password=s3cret\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={home}/%u\n}}\n\
             mail_location = maildir:~/Maildir\n\
             service imap-login {{\n  inet_listener imap {{\n    port = 1143\n  }}\n  inet_listener imaps {{\n    port = 1993\n    ssl = yes\n  }}\n}}\n\
             service pop3-login {{\n  inet_listener pop3 {{\n    port = 1110\n  }}\n  inet_listener pop3s {{\n    port = 1995\n    ssl = yes\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\nservice imap-login {{\n  chroot =\n}}\nservice pop3-login {{\n  chroot =\n}}\n",
            run = dir.path("run"),
            home = dir.path("home"),
        ),
    );
    let _d = Server::start(&ns, "dovecot", &["dovecot", "-F", "-c", &conf]);
    let _m = Server::start(
        &ns,
        "smtpd",
        &["python3", "-W", "ignore", "-m", "smtpd", "-n", "-c", "DebuggingServer", "127.0.0.1:2525"],
    );
    for port in [1143, 1993, 1110, 1995, 2525] {
        ready(&ns, &dir, port, false);
    }
    for (port, service) in [(1143, "imap"), (1993, "imaps"), (1110, "pop"), (1995, "pops")] {
        pass_and_fail(
            &ns,
            &dir,
            &cf(port, service, "\tlogin = \"haven\"\n\tpasswd = \"s3cret\"\n"),
            &cf(port, service, "\tlogin = \"haven\"\n\tpasswd = \"wrong\"\n"),
        );
    }
    // TLS where the service says so: imaps on the plain port fails.
    assert_eq!(round(&ns, &dir, &cf(1143, "imaps", "")).0, 0);
    // SMTP and submission: greeting and EHLO; a POP3 server is no SMTP server.
    for service in ["smtp", "submission"] {
        pass_and_fail(&ns, &dir, &cf(2525, service, ""), &cf(1110, service, ""));
    }
}

/// A SIP responder (UDP) and an NNTP responder (TCP): no light Debian
/// package serves these, so the test brings its own, answering `good` on
/// one port and `bad` on another.
const RESPONDERS: &str = r#"
import socket, sys, threading
def sip(port, status):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    while True:
        data, peer = s.recvfrom(4096)
        if data.startswith(b"OPTIONS sip:"):
            s.sendto(b"SIP/2.0 " + status + b"\r\nContent-Length: 0\r\n\r\n", peer)
def nntp(port, greeting):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(8)
    while True:
        c, _ = s.accept()
        c.sendall(greeting + b"\r\n")
        c.close()
for f, a in [(sip, (5060, b"200 OK")), (sip, (5061, b"503 Service Unavailable")),
             (nntp, (1119, b"200 news.example.org ready")), (nntp, (1120, b"502 access denied"))]:
    threading.Thread(target=f, args=a, daemon=True).start()
threading.Event().wait()
"#;

#[test]
fn sip_and_nntp_checks_against_responders() {
    if !prerequisites(&["python3"]) {
        return;
    }
    let ns = Netns::new();
    let dir = Scratch::new("sip");
    let script = dir.write("responders.py", RESPONDERS);
    let _r = Server::start(&ns, "responders", &["python3", &script]);
    ready(&ns, &dir, 1119, false);
    let udp = "\tprotocol = udp\n";
    pass_and_fail(&ns, &dir, &cf(5060, "sip", udp), &cf(5061, "sip", udp));
    pass_and_fail(&ns, &dir, &cf(1119, "nntp", ""), &cf(1120, "nntp", ""));
}

/// Debian's python3, which the python3-* packages install for (a python3
/// earlier on PATH may lack them): Some when it imports `module`, from
/// Debian's `package`.
fn debian_python(module: &str, package: &str) -> Option<&'static str> {
    let python = "/usr/bin/python3";
    let ok = Command::new(python).args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success());
    if ok {
        Some(python)
    } else {
        missing(&format!("{python} with {module} (Debian package {package})"));
        None
    }
}

#[test]
fn ftp_check_against_pyftpdlib() {
    if !prerequisites(&[]) {
        return;
    }
    let Some(python) = debian_python("pyftpdlib", "python3-pyftpdlib") else {
        return;
    };
    let ns = Netns::new();
    let dir = Scratch::new("ftp");
    let served = dir.path("served");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::write(format!("{served}/health.txt"), "ftp server healthy\n").unwrap();
    let _s = Server::start(
        &ns,
        "pyftpdlib",
        &[
            python,
            "-m",
            "pyftpdlib",
            "-i",
            "127.0.0.1",
            "-p",
            "2121",
            "-r",
            "30000-30009",
            "-d",
            &served,
            "-u",
            "haven",
            "-P",
            "s3cret",
        ],
    );
    ready(&ns, &dir, 2121, false);
    let file = "\trequest = \"health.txt\"\n\treceive = \"healthy\"\n";
    pass_and_fail(
        &ns,
        &dir,
        &cf(2121, "ftp", &format!("\tlogin = \"haven\"\n\tpasswd = \"s3cret\"\n{file}")),
        &cf(2121, "ftp", &format!("\tlogin = \"haven\"\n\tpasswd = \"wrong\"\n{file}")),
    );
    // Logged in, but the file says something else, or is not there.
    let login = "\tlogin = \"haven\"\n\tpasswd = \"s3cret\"\n";
    for other in [
        "\trequest = \"health.txt\"\n\treceive = \"broken\"\n",
        "\trequest = \"missing.txt\"\n\treceive = \"healthy\"\n",
    ] {
        let (up, out) = round(&ns, &dir, &cf(2121, "ftp", &format!("{login}{other}")));
        assert_eq!(up, 0, "must fail:\n{other}\n{out}");
    }
}

#[test]
fn http_proxy_check_against_tinyproxy() {
    if !prerequisites(&["tinyproxy"]) {
        return;
    }
    let Some(python) = debian_python("http.server", "python3") else {
        return;
    };
    let ns = Netns::new();
    let dir = Scratch::new("proxy");
    let site = dir.path("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(format!("{site}/page.html"), "<p>origin page ok</p>\n").unwrap();
    // The origin listens on 127.0.0.2 only: a passing check on
    // 127.0.0.1:8888 went through the proxy.
    let _origin = Server::start(
        &ns,
        "http.server",
        &[python, "-m", "http.server", "--bind", "127.0.0.2", "--directory", &site, "8080"],
    );
    let conf = dir.write(
        "tinyproxy.conf",
        "User nobody\nGroup nogroup\nPort 8888\nListen 127.0.0.1\nTimeout 10\nMaxClients 8\nLogLevel Error\nAllow 127.0.0.1\n",
    );
    let _proxy = Server::start(&ns, "tinyproxy", &["tinyproxy", "-d", "-c", &conf]);
    ready_on(&ns, &dir, "127.0.0.2", 8080);
    ready(&ns, &dir, 8888, false);
    let url = "\trequest = \"http://127.0.0.2:8080/page.html\"\n";
    pass_and_fail(
        &ns,
        &dir,
        &cf(8888, "http_proxy", &format!("{url}\treceive = \"origin page ok\"\n")),
        &cf(8888, "http_proxy", &format!("{url}\treceive = \"something else\"\n")),
    );
    // A page the origin does not have: the proxy passes on the 404.
    let (up, out) = round(
        &ns,
        &dir,
        &cf(8888, "http_proxy", "\trequest = \"http://127.0.0.2:8080/missing.html\"\n\treceive = \"origin\"\n"),
    );
    assert_eq!(up, 0, "a 404 through the proxy must fail:\n{out}");
    // An origin nobody listens on: the proxy answers with an error page.
    let (up, out) = round(&ns, &dir, &cf(8888, "http_proxy", "\trequest = \"http://127.0.0.3:8080/page.html\"\n"));
    assert_eq!(up, 0, "an unreachable origin must fail:\n{out}");
}
