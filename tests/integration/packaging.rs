//! The packages, as an operator meets them. The Debian package is built
//! from this checkout with packaging/build-deb, checked by lintian,
//! installed with dpkg -i, and then Pacemaker (crm_resource), crmsh, pcs,
//! ocf-tester, man and bash see the INSTALLED files; an upgrade happens
//! under a running director, and a purge leaves nothing behind. The RPM
//! spec is parsed by rpmspec with Cargo.toml's version.
//!
//! The Debian test changes the system, so the parallel `cargo test` run
//! ignores it and script/test runs it on its own, after the release
//! build: `cargo test --test integration packaging -- --ignored`. A lock
//! file keeps two runs apart; a guard purges the package, and puts back a
//! script/install installation it moved aside, even when the test fails.

use crate::common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");
const BIN: &str = "/usr/sbin/haven";
const OCF_DIR: &str = "/usr/lib/ocf/resource.d/haven";
const RGM_DIR: &str = "/usr/share/cluster";
const DOC_DIR: &str = "/usr/share/doc/haven";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn text(&self) -> String {
        format!("exit {}\nstdout:\n{}\nstderr:\n{}", self.code, self.stdout, self.stderr)
    }
}

fn run(cmd: &mut Command) -> Out {
    let o = cmd.output().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn ok(cmd: &mut Command) -> String {
    let o = run(cmd);
    assert_eq!(o.code, 0, "{cmd:?} failed:\n{}", o.text());
    o.stdout
}

/// One run at a time on this machine (dpkg, /usr, the director's table).
struct RunLock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

fn run_lock() -> RunLock {
    std::fs::create_dir_all("/run/lock").expect("create /run/lock");
    let path = "/run/lock/haven-packaging-test.lock";
    let mut file =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).expect("open the lock");
    let until = Instant::now() + Duration::from_secs(20 * 60);
    let mut said = false;
    let lock = loop {
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => break lock,
            Err((back, _)) => file = back,
        }
        assert!(Instant::now() < until, "{path} stayed locked for 20 minutes: another packaging test is stuck");
        if !said {
            eprintln!("packaging: waiting for another packaging test run ({path})");
            said = true;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    RunLock(lock)
}

/// dpkg, waiting out another dpkg or apt holding the dpkg lock.
fn dpkg(args: &[&str]) -> Out {
    let until = Instant::now() + Duration::from_secs(300);
    loop {
        let o = run(Command::new("dpkg").args(args).env("DEBIAN_FRONTEND", "noninteractive"));
        if o.code != 0 && o.stderr.contains("lock") && Instant::now() < until {
            std::thread::sleep(Duration::from_secs(2));
            continue;
        }
        return o;
    }
}

/// The haven package's dpkg status ("install ok installed 0.1.0"), None
/// when dpkg has no record of it.
fn package_status() -> Option<String> {
    let o = run(Command::new("dpkg-query").args(["-W", "-f", "${Status} ${Version}", "haven"]));
    let s = o.stdout.trim().to_string();
    (o.code == 0 && !s.is_empty() && !s.contains("not-installed")).then_some(s)
}

/// The paths a .deb holds: (directories, everything else).
fn package_paths(deb: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let listing = ok(Command::new("dpkg-deb").arg("-c").arg(deb));
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    for line in listing.lines() {
        let Some(name) = line.split_whitespace().nth(5) else { continue };
        let path = name.trim_start_matches('.').trim_end_matches('/');
        if path.is_empty() {
            continue;
        }
        if line.starts_with('d') {
            dirs.push(PathBuf::from(path));
        } else {
            files.push(PathBuf::from(path));
        }
    }
    (dirs, files)
}

/// Variables `cargo test` sets for the test besides CARGO_PKG_*.
const SET_BY_CARGO: [&str; 6] = [
    "CARGO",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
];

/// A command without the variables `cargo test` sets for the test: a
/// cargo run under them sees another environment (ring's build script
/// watches CARGO_MANIFEST_DIR) and rebuilds the release binary.
fn outside_cargo_test(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CARGO_PKG_") || SET_BY_CARGO.contains(&k.as_ref()) {
            cmd.env_remove(&key);
        }
    }
    cmd
}

fn exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}

/// Move a file or link, across filesystems too.
fn move_path(from: &Path, to: &Path) {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).expect("create a directory to move into");
    }
    if std::fs::rename(from, to).is_ok() {
        return;
    }
    if let Ok(target) = std::fs::read_link(from) {
        std::os::unix::fs::symlink(target, to).expect("copy a link");
    } else {
        std::fs::copy(from, to).expect("copy a file");
    }
    std::fs::remove_file(from).expect("remove the moved file");
}

/// The installed package: purged when dropped, and whatever of a
/// script/install installation stood in its way put back.
struct Installation {
    backup_dir: PathBuf,
    moved: Vec<PathBuf>,
}

impl Installation {
    /// Move aside files of the package's paths that no package owns (a
    /// script/install installation): dpkg would take them over and the
    /// purge would delete them.
    fn prepare(files: &[PathBuf]) -> Installation {
        let backup_dir = PathBuf::from(format!("/var/tmp/haven-packaging-{}", std::process::id()));
        let mut moved = Vec::new();
        for f in files.iter().filter(|f| exists(f)) {
            let owned = run(Command::new("dpkg-query").arg("-S").arg(f)).code == 0;
            assert!(!owned, "{} belongs to another package", f.display());
            eprintln!("packaging: moving {} aside while the package is installed", f.display());
            move_path(f, &backup_dir.join(f.strip_prefix("/").unwrap()));
            moved.push(f.clone());
        }
        Installation { backup_dir, moved }
    }
}

impl Drop for Installation {
    fn drop(&mut self) {
        if package_status().is_some() {
            let o = dpkg(&["--purge", "haven"]);
            if o.code != 0 {
                eprintln!("packaging: dpkg --purge haven failed:\n{}", o.text());
            }
        }
        for f in &self.moved {
            let saved = self.backup_dir.join(f.strip_prefix("/").unwrap());
            if exists(&saved) && !exists(f) {
                move_path(&saved, f);
            }
        }
        let _ = std::fs::remove_dir_all(&self.backup_dir);
    }
}

/// A director started through the installed agent, stopped (and its
/// daemon killed if need be) when dropped.
struct Director {
    ns: Netns,
    config: PathBuf,
    table: String,
}

impl Director {
    fn new() -> Director {
        let ns = Netns::new();
        let config = std::env::temp_dir().join(format!("haven-pkg-{}.cf", ns.name));
        std::fs::write(
            &config,
            "checkinterval = 1\nvirtual = 198.51.100.78:80\n\treal = 203.0.113.12:80 masq\n\tchecktype = on\n",
        )
        .expect("write the director configuration");
        Director { ns, config, table: format!("hvt_pkg_{}", std::process::id()) }
    }

    fn action(&self, action: &str) -> Out {
        let interval = if action == "monitor" { "10000" } else { "0" };
        run(Command::new("ip")
            .args(["netns", "exec", &self.ns.name, &format!("{OCF_DIR}/director"), action])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("OCF_ROOT", "/usr/lib/ocf")
            .env("OCF_RESOURCE_INSTANCE", "pkg_director")
            .env("OCF_RESKEY_configfile", &self.config)
            .env("OCF_RESKEY_table", &self.table)
            .env("OCF_RESKEY_CRM_meta_timeout", "20000")
            .env("OCF_RESKEY_CRM_meta_interval", interval))
    }

    /// The pid of this director's daemon, found by its command line.
    fn daemon(&self) -> Option<i32> {
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            let ours = args.contains(&b"director".as_slice())
                && args.contains(&b"run".as_slice())
                && args.contains(&self.table.as_bytes());
            ours.then_some(pid)
        })
    }
}

impl Drop for Director {
    fn drop(&mut self) {
        let _ = self.action("stop");
        if let Some(pid) = self.daemon() {
            // Killing the daemon this test started.
            signal(pid, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = std::fs::remove_file(&self.config);
        // The agent keeps its last daemon.log there after stop (for the
        // operator); the test's own table name, so the test removes it.
        let _ = std::fs::remove_dir_all(Path::new("/run/haven/director").join(&self.table));
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Meta-data XML (with its DOCTYPE line).
fn parse_xml(text: &str) -> roxmltree::Document<'_> {
    let opts = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
    roxmltree::Document::parse_with_options(text, opts).expect("meta-data parses")
}

fn man(args: &[&str]) -> Out {
    run(Command::new("man")
        .arg("--warnings")
        .args(args)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8"))
}

#[test]
#[ignore = "installs a package into the system; script/test runs it alone: cargo test --test integration packaging -- --ignored"]
fn debian_package_builds_installs_serves_pacemaker_and_purges_clean() {
    if !need_root() {
        return;
    }
    for tool in [
        "dpkg-buildpackage",
        "dh",
        "lintian",
        "crm_resource",
        "crm",
        "pcs",
        "ocf-tester",
        "man",
        "nsenter",
        "mkfs.ext4",
        "python3",
        "cargo",
    ] {
        if !need_tool(tool) {
            return;
        }
    }
    let started = Instant::now();
    let _lock = run_lock();
    if let Some(status) = package_status() {
        eprintln!("packaging: purging a haven package left by an earlier run ({status})");
        let o = dpkg(&["--purge", "haven"]);
        assert_eq!(o.code, 0, "purge the leftover package:\n{}", o.text());
    }

    // Build from the checkout: one command, writing nothing outside target/.
    let git_status = || run(Command::new("git").args(["-C", ROOT, "status", "--porcelain"])).stdout;
    let before = git_status();
    let build = run(outside_cargo_test(Command::new(format!("{ROOT}/packaging/build-deb")).current_dir(ROOT)));
    assert_eq!(build.code, 0, "packaging/build-deb:\n{}", build.text());
    assert_eq!(git_status(), before, "packaging/build-deb changed files outside target/");
    let deb = PathBuf::from(
        build.stdout.lines().rev().find_map(|l| l.strip_prefix("build-deb: ")).expect("build-deb names the package"),
    );
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(&format!("haven_{}_", VERSION.replace('-', "~"))), "{name}: not Cargo.toml's version");
    eprintln!("packaging: built {} in {:.0?}", deb.display(), started.elapsed());

    // lintian: no errors; the warnings are shown.
    let lint = run(Command::new("lintian").args(["--fail-on", "error"]).arg(&deb));
    assert_eq!(lint.code, 0, "lintian:\n{}", lint.text());
    assert!(!lint.stdout.lines().any(|l| l.starts_with("E:")), "lintian errors:\n{}", lint.stdout);
    eprintln!("packaging: lintian warnings:\n{}", if lint.stdout.trim().is_empty() { "(none)" } else { &lint.stdout });

    // No maintainer script: installing, upgrading or removing the package
    // starts and stops nothing.
    let info = ok(Command::new("dpkg-deb").arg("-I").arg(&deb));
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        assert!(!info.contains(&format!(" {script}")), "the package has a {script}:\n{info}");
    }

    let (dirs, files) = package_paths(&deb);
    let new_dirs: Vec<&PathBuf> = dirs.iter().filter(|d| !d.exists()).collect();
    let guard = Installation::prepare(&files);
    let o = dpkg(&["-i", &deb.to_string_lossy()]);
    assert_eq!(o.code, 0, "dpkg -i:\n{}", o.text());

    let agents: Vec<String> = ok(Command::new(BIN).arg("agents")).lines().map(str::to_string).collect();
    let built: Vec<String> = ok(Command::new(HAVEN).arg("agents")).lines().map(str::to_string).collect();
    assert_eq!(agents, built, "the installed binary holds the agents of this build");
    assert!(!agents.is_empty());

    for agent in &agents {
        // The links: OCF and rgmanager, both resolving to the binary.
        for link in [format!("{OCF_DIR}/{agent}"), format!("{RGM_DIR}/haven-{agent}.sh")] {
            assert!(Path::new(&link).symlink_metadata().unwrap().file_type().is_symlink(), "{link}: not a link");
            assert_eq!(std::fs::canonicalize(&link).unwrap(), Path::new(BIN), "{link}");
        }
        let own = ok(Command::new(BIN).args(["agent", agent, "meta-data"]));
        let shown = ok(Command::new("crm_resource").args(["--show-metadata", &format!("ocf:haven:{agent}")]));
        assert_eq!(shown, own, "crm_resource --show-metadata ocf:haven:{agent}");
        assert!(shown.contains(&format!("<resource-agent name=\"{agent}\"")), "{shown}");
        let rgm = ok(Command::new(format!("{RGM_DIR}/haven-{agent}.sh")).arg("meta-data"));
        assert_eq!(rgm, ok(Command::new(BIN).args(["agent", "--rgmanager", agent, "meta-data"])));
        assert!(rgm.contains(&format!("<resource-agent name=\"haven-{agent}\"")), "{rgm}");

        // The man page generated from the meta-data renders, names every
        // parameter, and is the installed one.
        let page = format!("ocf_haven_{agent}");
        let path = ok(Command::new("man").args(["-w", "7", &page]));
        assert_eq!(path.trim(), format!("/usr/share/man/man7/{page}.7.gz"));
        let m = man(&["7", &page]);
        assert_eq!(m.code, 0, "man 7 {page}:\n{}", m.text());
        assert!(m.stderr.trim().is_empty(), "man 7 {page} warns:\n{}", m.stderr);
        assert!(m.stdout.contains("NAME") && m.stdout.contains(&page), "{}", m.stdout);
        let root = parse_xml(&own);
        for p in root.descendants().filter(|n| n.has_tag_name("parameter")) {
            let name = p.attribute("name").unwrap();
            assert!(m.stdout.contains(name), "man 7 {page} lacks the parameter {name}");
        }
    }

    // crmsh and pcs describe the agents.
    let list = ok(Command::new("crm").args(["ra", "list", "ocf", "haven"]));
    let listed: BTreeSet<&str> = list.split_whitespace().collect();
    for agent in &agents {
        assert!(listed.contains(agent.as_str()), "crm ra list ocf haven lacks {agent}:\n{list}");
    }
    let vip_meta = ok(Command::new(BIN).args(["agent", "vip", "meta-data"]));
    let vip_doc = parse_xml(&vip_meta);
    let shortdesc = vip_doc.root_element().children().find(|n| n.has_tag_name("shortdesc")).unwrap().text().unwrap();
    let info = ok(Command::new("crm").args(["ra", "info", "ocf:haven:vip"]));
    assert!(info.contains(shortdesc) && info.contains("ocf:haven:vip") && info.contains("ip*"), "crm ra info:\n{info}");
    let desc = ok(Command::new("pcs").args(["resource", "describe", "ocf:haven:vip"]));
    assert!(
        desc.contains(shortdesc) && desc.contains("ocf:haven:vip") && desc.contains("ip (required)"),
        "pcs resource describe:\n{desc}"
    );

    // haven(8), the completion, the examples and the crate list.
    let m = man(&["8", "haven"]);
    assert_eq!(m.code, 0, "man 8 haven:\n{}", m.text());
    assert!(m.stderr.trim().is_empty(), "man 8 haven warns:\n{}", m.stderr);
    for agent in &agents {
        assert!(m.stdout.contains(&format!("ocf:haven:{agent}")), "man 8 haven lacks {agent}");
    }
    let completion = ok(Command::new("bash").args([
        "-c",
        "source /usr/share/bash-completion/completions/haven && COMP_WORDS=(haven agent '') COMP_CWORD=2 && _haven && printf '%s\\n' \"${COMPREPLY[@]}\"",
    ]));
    assert_eq!(completion.lines().collect::<Vec<_>>(), agents, "bash completion of `haven agent `");
    let examples = Path::new(ROOT).join("examples");
    for f in files_under(&examples) {
        let installed = Path::new(DOC_DIR).join("examples").join(f.strip_prefix(&examples).unwrap());
        assert_eq!(std::fs::read(&installed).ok(), std::fs::read(&f).ok(), "{}", installed.display());
    }
    assert!(std::fs::read_to_string(format!("{DOC_DIR}/crates.txt")).unwrap().contains("\nclap v"));

    // ocf-tester against the installed paths, with the conformance setups.
    for agent in &agents {
        let setup = crate::conformance::setup_for(agent);
        let mut cmd = Command::new(&setup.prefix[0]);
        cmd.args(&setup.prefix[1..]).args(["ocf-tester", "-n", &format!("pkg_{agent}")]);
        for (k, v) in &setup.params {
            cmd.arg("-o").arg(format!("{k}={v}"));
        }
        cmd.arg(format!("{OCF_DIR}/{agent}"));
        let o = run(&mut cmd);
        assert!(o.code == 0 && o.stdout.contains("passed all tests"), "ocf-tester {OCF_DIR}/{agent}:\n{}", o.text());
        eprintln!("packaging: ocf-tester passed for {OCF_DIR}/{agent}");
    }

    // An upgrade under a running director keeps it running: same daemon,
    // monitor still 0.
    assert!(agents.iter().any(|a| a == "director"), "the upgrade check needs the director agent");
    {
        let director = Director::new();
        let o = director.action("start");
        assert_eq!(o.code, 0, "director start:\n{}", o.text());
        let pid = director.daemon().expect("the director daemon runs");
        let unpacked = std::env::temp_dir().join(format!("haven-pkg-upgrade-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&unpacked);
        ok(Command::new("dpkg-deb").arg("-R").arg(&deb).arg(&unpacked));
        let control = unpacked.join("DEBIAN/control");
        let newer = format!("{}+upgrade1", VERSION.replace('-', "~"));
        let text = std::fs::read_to_string(&control).unwrap();
        let text: String = text
            .lines()
            .map(|l| if l.starts_with("Version: ") { format!("Version: {newer}\n") } else { format!("{l}\n") })
            .collect();
        std::fs::write(&control, text).unwrap();
        let upgrade = std::env::temp_dir().join(format!("haven_{newer}_{}.deb", std::process::id()));
        ok(Command::new("dpkg-deb").args(["--root-owner-group", "-b"]).arg(&unpacked).arg(&upgrade));
        let _ = std::fs::remove_dir_all(&unpacked);
        let o = dpkg(&["-i", &upgrade.to_string_lossy()]);
        let _ = std::fs::remove_file(&upgrade);
        assert_eq!(o.code, 0, "dpkg -i (upgrade):\n{}", o.text());
        assert!(package_status().is_some_and(|s| s.ends_with(&newer)), "{:?}", package_status());
        assert_eq!(director.daemon(), Some(pid), "the upgrade ended the director daemon");
        let o = director.action("monitor");
        assert_eq!(o.code, 0, "director monitor after the upgrade:\n{}", o.text());
        let o = director.action("stop");
        assert_eq!(o.code, 0, "director stop:\n{}", o.text());
        assert_eq!(director.daemon(), None, "stop ends the daemon");
    }

    // Purge: nothing of the package remains.
    let o = dpkg(&["--purge", "haven"]);
    assert_eq!(o.code, 0, "dpkg --purge haven:\n{}", o.text());
    assert_eq!(package_status(), None, "dpkg still knows haven");
    let left: Vec<String> =
        files.iter().chain(new_dirs.iter().copied()).filter(|p| exists(p)).map(|p| p.display().to_string()).collect();
    assert!(left.is_empty(), "left behind by the purge: {left:?}");
    let info_dir = std::fs::read_dir("/var/lib/dpkg/info").unwrap();
    let records: Vec<String> = info_dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("haven.") || n.starts_with("haven:"))
        .collect();
    assert!(records.is_empty(), "dpkg records left: {records:?}");
    drop(guard);
    eprintln!("packaging: the Debian package passed in {:.0?}", started.elapsed());
}

#[test]
fn rpm_spec_parses_with_cargo_version() {
    if !need_tool("rpmspec") {
        return;
    }
    let spec = ok(outside_cargo_test(Command::new(format!("{ROOT}/packaging/build-rpm")).current_dir(ROOT)));
    let version = spec.lines().find_map(|l| l.strip_prefix("Version:")).map(str::trim);
    assert_eq!(version, Some(VERSION), "{spec}");
    for line in [
        "packaging/install-tree",
        "%{_sbindir}/haven",
        "/usr/sbin/haven",
        "/usr/lib/ocf/resource.d/haven/*",
        "/usr/share/cluster/haven-*.sh",
        "/usr/share/man/man7/ocf_haven_*.7*",
    ] {
        if line.starts_with("%{") {
            assert!(!spec.contains(line), "rpmspec left {line} unexpanded");
        } else {
            assert!(spec.contains(line), "the parsed spec lacks {line}:\n{spec}");
        }
    }
}
