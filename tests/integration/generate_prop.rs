//! Property target `generate`: random cluster descriptions from a small
//! grammar (valid and invalid names, awkward values, cycles, clones,
//! rules, RHCS services) must either be refused by `--check`, or give
//! output every tool loads. Every case runs through parse, lint and all
//! renderers in process with the cheap checks (well-formed XML, crm and
//! pcs tokenisation, one xmllint batch against the Pacemaker and RHCS
//! schemas); a bounded sample goes through the real crm_verify,
//! crm_simulate, crm and pcs (they are slow: crm and pcs are python).
//! The seed is printed first, so a failure in CI can be replayed with
//! HAVEN_PROP_SEED; HAVEN_PROP_CASES changes the case count.

use crate::common::*;
use crate::generate::{assert_same, extended_rhcs_schema, load_crm, load_pcs, shell_words, text, Scratch};
use haven::generate::{self as gen, Format};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/generate");

/// Picks from the random bytes proptest hands over (shrinking them shrinks
/// the description).
struct Pick<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Pick<'_> {
    fn n(&mut self, below: usize) -> usize {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        usize::from(b) % below.max(1)
    }
    fn one<'s>(&mut self, from: &[&'s str]) -> &'s str {
        from[self.n(from.len())]
    }
    /// Mostly a good choice, now and then (1 in 16) a bad one.
    fn mostly<'s>(&mut self, good: &[&'s str], bad: &[&'s str]) -> &'s str {
        if self.chance(16) {
            self.one(bad)
        } else {
            self.one(good)
        }
    }
    fn chance(&mut self, in_256: u8) -> bool {
        let b = self.bytes.get(self.at).copied().unwrap_or(255);
        self.at += 1;
        b < in_256
    }
}

/// A TOML basic string for any text.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const NODES: &[&str] = &["n1", "n2", "n3", "n4"];
const IDS: &[&str] = &["r0", "r1", "r2", "r3", "r4", "r5"];
/// Values every format must carry (quoted as each needs).
const VALUES: &[&str] = &[
    "stop",
    "100",
    "",
    "a b",
    "a(b)",
    "q'uote",
    "d\"q",
    "$x",
    "back\\slash",
    "<&>",
    "-5",
    "INFINITY",
    "#c",
    "ünï",
    "a;b",
    "`id`",
    "x=y",
    "--force",
];
/// Values no format can carry: lint must refuse them.
const BAD_VALUES: &[&str] = &["x\ny", "t\tz", "bell\u{7}"];
const PROPERTIES: &[&str] =
    &["no-quorum-policy", "no-quorum-polcy", "maintenance-mode", "symmetric-cluster", "bad name", "stop-all-resources"];
const SCORES: &[&str] = &["\"INFINITY\"", "\"-INFINITY\"", "100", "-50", "0"];

fn pairs(p: &mut Pick, names: &[&str], max: usize) -> String {
    let n = p.n(max + 1);
    let mut seen = Vec::new();
    let mut parts = Vec::new();
    for _ in 0..n {
        let k = p.mostly(names, &["bad name", "1a", "a:b"]);
        if seen.contains(&k) {
            continue;
        }
        seen.push(k);
        parts.push(format!("{} = {}", toml_str(k), toml_str(p.mostly(VALUES, BAD_VALUES))));
    }
    format!("{{ {} }}", parts.join(", "))
}

fn resource(p: &mut Pick, t: &mut String, id: &str, ip: usize, rhcs: bool) {
    // r0 is the address the group g serves (with r1); a vip anywhere else
    // is now and then the lint case it is.
    let agent = if id == "r0" {
        "ocf:haven:vip"
    } else if rhcs {
        p.mostly(&["lsb:app"], &["systemd:web", "ocf:heartbeat:Dummy"])
    } else {
        p.mostly(&["systemd:web", "lsb:app", "ocf:heartbeat:Dummy", "ocf:pacemaker:Stateful"], &["ocf:haven:vip"])
    };
    t.push_str(&format!("\n[[resource]]\nid = \"{id}\"\nagent = \"{agent}\"\n"));
    match agent {
        "ocf:haven:vip" if !p.chance(20) => {
            t.push_str(&format!("params = {{ ip = \"198.51.100.{}\", cidr_netmask = 24 }}\n", ip + 10))
        }
        "ocf:heartbeat:Dummy" | "ocf:pacemaker:Stateful" => {
            t.push_str(&format!("params = {}\n", pairs(p, &["state", "fake"], 2)))
        }
        _ => {}
    }
    if !rhcs && p.chance(60) {
        t.push_str(&format!("meta = {}\n", pairs(p, &["description", "priority", "migration-threshold"], 2)));
    }
    if p.chance(30) {
        t.push_str("monitor = false\n");
    }
    for _ in 0..p.n(3) {
        let name = p.mostly(&["monitor", "start", "stop"], &["status", "reload"]);
        let interval =
            if name == "monitor" { p.mostly(&["10s", "30", "1min", "PT30S"], &["abc", "10 s"]) } else { "0" };
        t.push_str(&format!("[[resource.op]]\nname = \"{name}\"\ninterval = \"{interval}\"\n"));
        if p.chance(80) {
            t.push_str("force = true\n");
        }
    }
}

/// One description from the grammar.
fn description(bytes: &[u8]) -> String {
    let mut p = Pick { bytes, at: 0 };
    let rhcs = p.chance(64);
    let mut t = String::from("[cluster]\nname = \"prop\"\n");
    if rhcs {
        t.push_str(p.one(&["stacks = [\"rhcs\"]\n", "stacks = [\"pacemaker\", \"rhcs\"]\n"]));
    }
    let nodes = &NODES[..1 + p.n(NODES.len())];
    for n in nodes {
        t.push_str(&format!("\n[[node]]\nname = \"{n}\"\n"));
        if !rhcs && p.chance(30) {
            t.push_str(&format!("attributes = {}\n", pairs(&mut p, &["ssd", "rack"], 2)));
        }
    }
    t.push('\n');
    match p.n(4) {
        0 => t.push_str("[fencing]\nenabled = false\n"),
        1 => t.push_str(&format!(
            "[[fencing.device]]\nid = \"pdu\"\nagent = \"fence_apc\"\nhosts = [{}]\nports = {{ {} }}\nparams = {}\n",
            nodes.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", "),
            nodes
                .iter()
                .filter(|_| p.chance(245))
                .enumerate()
                .map(|(i, n)| format!("{n} = \"{}\"", i + 1))
                .collect::<Vec<_>>()
                .join(", "),
            pairs(&mut p, &["ip", "username"], 2)
        )),
        _ => t.push_str("[fencing]\nsbd = { devices = [\"/dev/sdb1\"] }\n"),
    }
    if !rhcs && p.chance(80) {
        let name = p.mostly(&["no-quorum-policy", "maintenance-mode", "stop-all-resources"], PROPERTIES);
        let value = p.mostly(&["stop", "false", "freeze"], VALUES);
        t.push_str(&format!("\n[properties]\n{} = {}\n", toml_str(name), toml_str(value)));
    }
    let count = 1 + p.n(IDS.len());
    for (i, id) in IDS[..count].iter().enumerate() {
        resource(&mut p, &mut t, id, i, rhcs);
    }
    let any = |p: &mut Pick| IDS[p.n(count)].to_string();
    if rhcs {
        t.push_str(&format!(
            "\n[[failover_domain]]\nname = \"dom\"\nordered = {}\nrestricted = {}\nnodes = [{}]\n",
            p.chance(128),
            p.chance(128),
            nodes
                .iter()
                .take(2)
                .enumerate()
                .map(|(i, n)| format!("{{ name = \"{n}\", priority = {} }}", i + 1))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let members: Vec<String> = IDS[..count].iter().filter(|_| p.chance(240)).map(|i| format!("\"{i}\"")).collect();
        t.push_str(&format!("\n[[service]]\nname = \"svc\"\ndomain = \"dom\"\nresources = [{}]\n", members.join(", ")));
        return t;
    }
    if count > 1 && !p.chance(16) {
        let mut members = vec!["\"r0\"".to_string(), "\"r1\"".to_string()];
        if count > 2 && p.chance(100) {
            members.push(format!("\"{}\"", IDS[2 + p.n(count - 2)]));
        }
        t.push_str(&format!("\n[[group]]\nid = \"g\"\nresources = [{}]\n", members.join(", ")));
    }
    if p.chance(70) {
        let what = if p.chance(60) { "g".to_string() } else { any(&mut p) };
        t.push_str(&format!(
            "\n[[clone]]\nid = \"c\"\nresource = \"{what}\"\ninterleave = true\npromotable = {}\n",
            p.chance(60)
        ));
        if p.chance(60) {
            t.push_str(&format!("max = {}\n", p.mostly(&["1", "2"], &["0"])));
        }
    }
    let placeable = |p: &mut Pick| p.mostly(&["r2", "r3", "r4", "r5", "g", "c"], &["nope", "r0", "r1"]).to_string();
    for _ in 0..p.n(3) {
        let r = placeable(&mut p);
        if p.chance(160) {
            t.push_str(&format!(
                "\n[[location]]\nresource = \"{r}\"\n{} = \"{}\"\n",
                p.one(&["prefer", "avoid"]),
                p.one(NODES)
            ));
        } else {
            t.push_str(&format!(
                "\n[[location]]\nresource = \"{r}\"\n[location.rule]\nscore = {}\n[[location.rule.expression]]\nattribute = {}\noperation = \"eq\"\nvalue = {}\n",
                p.one(SCORES),
                toml_str(p.mostly(&["#uname", "ssd"], &["bad name", "#nope"])),
                toml_str(p.mostly(&["n1", "yes"], &["a b", "a(b)"]))
            ));
        }
    }
    for _ in 0..p.n(2) {
        let (a, b) = (placeable(&mut p), placeable(&mut p));
        t.push_str(&format!("\n[[colocation]]\nresource = \"{a}\"\nwith = \"{b}\"\nscore = {}\n", p.one(SCORES)));
    }
    for _ in 0..p.n(3) {
        let (a, b) = (placeable(&mut p), placeable(&mut p));
        t.push_str(&format!("\n[[order]]\nfirst = \"{a}\"\nthen = \"{b}\"\n"));
        if p.chance(40) {
            t.push_str(&format!("kind = \"{}\"\n", p.one(&["Mandatory", "Optional", "Serialize"])));
        }
    }
    t
}

/// What one accepted case produced.
struct Accepted {
    toml: String,
    outputs: Vec<(Format, String)>,
}

/// The cheap checks every accepted case gets in process.
fn check_case(toml: &str) -> Result<Option<Accepted>, String> {
    let Ok(d) = gen::parse::parse("prop.toml", toml) else { return Ok(None) };
    // As the CLI checks (installed meta-data, cached per process): the
    // sample is loaded through `haven generate`.
    let opts = gen::Options { installed_metadata: true, ..Default::default() };
    if !gen::check(&d, &opts).findings.is_empty() {
        return Ok(None);
    }
    let mut outputs = Vec::new();
    for format in [Format::Cib, Format::Crm, Format::Pcs, Format::ClusterConf] {
        if !d.cluster.targets(format.stack()) {
            continue;
        }
        let out = gen::render(&d, format, &opts)
            .map_err(|e| format!("{}: lint passed, render failed: {e}", format.as_str()))?;
        match format {
            Format::Cib | Format::ClusterConf => {
                roxmltree::Document::parse(&out)
                    .map_err(|e| format!("{}: not well-formed: {e}\n{out}", format.as_str()))?;
            }
            Format::Crm => crm_tokens(&out)?,
            Format::Pcs => pcs_tokens(&out)?,
        }
        outputs.push((format, out));
    }
    Ok(Some(Accepted { toml: toml.to_string(), outputs }))
}

/// crm statements: no control character, quotes closed on every line (a
/// statement continues only with a trailing backslash).
fn crm_tokens(out: &str) -> Result<(), String> {
    for line in out.lines() {
        if line.chars().any(|c| c.is_control() && c != '\t') || line.contains('\t') {
            return Err(format!("crm: control character in {line:?}"));
        }
        let mut quoted = false;
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' if quoted => {
                    chars.next();
                }
                '"' => quoted = !quoted,
                _ => {}
            }
        }
        if quoted {
            return Err(format!("crm: unclosed quote in {line:?}"));
        }
    }
    Ok(())
}

/// pcs commands: one per line, starting with `pcs`, quotes closed.
fn pcs_tokens(out: &str) -> Result<(), String> {
    for line in out.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        if !shell_quotes_closed(line) || line.chars().any(char::is_control) {
            return Err(format!("pcs: a command does not fit its line: {line:?}"));
        }
        if shell_words(line).first().map(String::as_str) != Some("pcs") {
            return Err(format!("pcs: not a pcs command: {line:?}"));
        }
    }
    Ok(())
}

/// Whether a line of POSIX shell ends outside any quote.
fn shell_quotes_closed(line: &str) -> bool {
    let (mut single, mut chars) = (false, line.chars());
    while let Some(c) = chars.next() {
        match c {
            '\'' => single = !single,
            '\\' if !single => {
                chars.next();
            }
            _ => {}
        }
    }
    !single
}

fn seed() -> u64 {
    std::env::var("HAVEN_PROP_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    })
}

fn corpus() -> Vec<(PathBuf, String)> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(CORPUS).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    files.sort();
    files.into_iter().map(|f| (f.clone(), std::fs::read_to_string(&f).unwrap())).collect()
}

/// xmllint over many files at once: (schema, files) -> failures.
fn xmllint_batch(rng: &Path, files: &[PathBuf]) -> Result<(), String> {
    if files.is_empty() {
        return Ok(());
    }
    let o = Command::new("xmllint").args(["--noout", "--relaxng"]).arg(rng).args(files).output().unwrap();
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("xmllint --relaxng {}: {}", rng.display(), text(&o)))
    }
}

/// The real tools on one accepted case; returns how many loaded it.
fn real_tools(s: &Scratch, n: usize, case: &Accepted, with_crm: bool, with_pcs: bool) -> Result<(), String> {
    let toml = s.write(&format!("case{n}.toml"), &case.toml);
    let Some((_, cib)) = case.outputs.iter().find(|(f, _)| *f == Format::Cib) else { return Ok(()) };
    let direct = s.write(&format!("case{n}.xml"), cib);
    // Warnings about the machine (no quorum, nodes that never joined) are
    // expected offline; errors, and warnings that Pacemaker replaced or
    // ignored a value of ours, are not.
    let o = Command::new("crm_verify").arg("-V").arg("--xml-file").arg(&direct).output().unwrap();
    let out = text(&o);
    let bad = ["Errors found", "invalid", "must be", "Using default", "Ignoring"];
    if bad.iter().any(|b| out.contains(b)) {
        return Err(format!("crm_verify refused case {n}: {out}"));
    }
    let mut sim = Command::new("crm_simulate");
    sim.arg("-S").arg("-x").arg(&direct);
    for node in NODES.iter().filter(|node| case.toml.contains(&format!("name = \"{node}\"\n"))) {
        sim.args(["-u", node]);
    }
    let o = sim.output().unwrap();
    let out = text(&o);
    if !o.status.success() || out.contains("invalid transition") || out.contains("Transition failed") {
        return Err(format!("crm_simulate on case {n} (exit {:?}): {out}", o.status.code()));
    }
    if with_crm {
        let loaded = load_crm(s, &toml, &format!("case{n}"));
        assert_same(&direct, &loaded, &format!("case {n} (crm)"));
    }
    if with_pcs {
        let loaded = load_pcs(s, &toml, &direct, &format!("case{n}"));
        assert_same(&direct, &loaded, &format!("case {n} (pcs)"));
    }
    Ok(())
}

fn env_count(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn prop_generate() {
    let seed = seed();
    // Printed first: a failure below shows it with the output.
    eprintln!("property generate: seed {seed} (replay with HAVEN_PROP_SEED={seed})");
    let cases = env_count("HAVEN_PROP_CASES", 3000);
    let sample = env_count("HAVEN_PROP_TOOL_CASES", 30) as usize;
    let accepted: RefCell<Vec<Accepted>> = RefCell::new(Vec::new());
    let rejected = RefCell::new(0u32);
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &key);
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, rng);
    let result = runner.run(&proptest::collection::vec(any::<u8>(), 40..200), |bytes| {
        let toml = description(&bytes);
        match check_case(&toml) {
            Ok(Some(a)) => accepted.borrow_mut().push(a),
            Ok(None) => *rejected.borrow_mut() += 1,
            Err(e) => return Err(TestCaseError::fail(format!("seed {seed}: {e}\ndescription:\n{toml}"))),
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("property generate failed (seed {seed}): {e}");
    }
    let corpus = corpus();
    assert!(corpus.len() >= 3, "fuzz/corpus/generate holds the seed descriptions");
    for (file, toml) in &corpus {
        match check_case(toml) {
            Ok(Some(a)) => accepted.borrow_mut().push(a),
            Ok(None) => {}
            Err(e) => panic!("{}: {e}", file.display()),
        }
    }
    let accepted = accepted.into_inner();
    // Proptest repeats shrunk inputs rarely; the grammar makes most cases
    // distinct, and both kinds must occur or the grammar is broken.
    assert!(
        accepted.len() > 20 && rejected.into_inner() > 20,
        "the grammar hardly varies: {} accepted",
        accepted.len()
    );

    let s = Scratch::new("prop");
    let mut real = 0;
    if need_tool("xmllint") {
        let write_all = |format: Format, ext: &str| -> Vec<PathBuf> {
            accepted
                .iter()
                .enumerate()
                .flat_map(|(n, a)| a.outputs.iter().filter(|(f, _)| *f == format).map(move |(_, x)| (n, x)))
                .map(|(n, x)| s.write(&format!("all{n}.{ext}"), x))
                .collect()
        };
        let cibs = write_all(Format::Cib, "xml");
        let pacemaker_rng = Path::new("/usr/share/pacemaker/pacemaker-3.9.rng");
        if need_file("/usr/share/pacemaker/pacemaker-3.9.rng") {
            xmllint_batch(pacemaker_rng, &cibs).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
        let confs = write_all(Format::ClusterConf, "conf");
        if need_file(crate::generate::RHCS_SCHEMA) {
            let rng = extended_rhcs_schema(&s);
            xmllint_batch(&rng, &confs).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
    }
    if ["crm_verify", "crm_simulate", "cibadmin", "crm", "pcs"].iter().all(|t| need_tool(t)) {
        let crm_cases = env_count("HAVEN_PROP_CRM_CASES", 4) as usize;
        let pcs_cases = env_count("HAVEN_PROP_PCS_CASES", 1) as usize;
        let pacemaker: Vec<&Accepted> =
            accepted.iter().filter(|a| a.outputs.iter().any(|(f, _)| *f == Format::Cib)).take(sample).collect();
        for (n, a) in pacemaker.iter().enumerate() {
            real_tools(&s, n, a, n < crm_cases, n < pcs_cases)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}\ndescription:\n{}", a.toml));
            real += 1;
        }
    }
    println!(
        "property generate: {} cases, {} corpus files ({} accepted, {real} through the real tools), ok",
        cases,
        corpus.len(),
        accepted.len()
    );
}
