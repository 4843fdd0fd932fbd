//! Property target for the instance file parser (operator input, and on a
//! delegated file a customer's): any text, no panic, and every rejection
//! points at a line of the file. Runs the seeds in
//! fuzz/corpus/instance_file/ (the examples and broken variants) and
//! prints its counts.

use super::config::Vars;
use super::error::InstanceError;
use super::file::parse;
use proptest::prelude::*;

const CASES: u32 = 2000;
const TARGET: &str = "instance_file";

/// Pieces of real instance files, so random inputs get past TOML syntax.
const TOKENS: &[&str] = &[
    "[[service]]\n",
    "[[file]]\n",
    "name = \"web\"\n",
    "name = \"web\"\n",
    "argv = [\"/usr/sbin/nginx\", \"{{rundir}}/x\"]\n",
    "user = \"root\"\n",
    "capabilities = [\"net_bind_service\", \"setuid\"]\n",
    "memory_max = \"512M\"\n",
    "pids_max = 0\n",
    "cpu_weight = 100000\n",
    "probe = { type = \"http\", port = 80, path = \"/\" }\n",
    "probe = { type = \"external\", argv = [\"/bin/true\"] }\n",
    "stop_signal = \"QUIT\"\n",
    "stop_timeout = \"10s\"\n",
    "role = \"promoted\"\n",
    "env = { TZ = \"UTC\" }\n",
    "path = \"a/b.conf\"\n",
    "text = \"\"\"\n{{ip_literal}} {{\n\"\"\"\n",
    "source = \"x.in\"\n",
    "{{name}}",
    "\"",
    "=",
    "\n",
    "\u{fffd}",
];

fn vars() -> Vars {
    Vars {
        name: "web1".into(),
        hostname: "web1.example.org".into(),
        ip: "2001:db8::80".parse().expect("ip"),
        datadir: "/srv/web1".into(),
        rundir: "/run/haven/instance/web1".into(),
    }
}

/// The property: parse never panics; an error names the file and a line
/// of it; an accepted file has services.
fn check(text: &str) {
    let lines = text.lines().count().max(1) + 1;
    match parse("/srv/web1/instance.toml", text, &vars()) {
        Ok(f) => assert!(!f.services.is_empty(), "accepted without services:\n{text}"),
        Err(InstanceError::File { file, line, .. }) => {
            assert!(file == "/srv/web1/instance.toml" || file.ends_with(".in"), "{file}");
            assert!(line >= 1 && line <= lines + 1, "line {line} of {lines}:\n{text}");
        }
        Err(_) => {}
    }
}

#[test]
fn prop_instance_file() {
    let seeds: Vec<String> =
        crate::property::corpus(TARGET).iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect();
    let strategy = (
        proptest::collection::vec(0..TOKENS.len(), 0..40),
        proptest::collection::vec(any::<u8>(), 0..512),
        any::<usize>(),
        0u8..3,
    );
    crate::property::run(
        TARGET,
        CASES,
        strategy,
        |seed| check(&String::from_utf8_lossy(seed)),
        |(picks, bytes, at, mode)| {
            let text = match mode {
                0 => picks.iter().map(|i| TOKENS[*i]).collect::<String>(),
                1 => String::from_utf8_lossy(&bytes).into_owned(),
                _ => {
                    // A seed cut at a random place with tokens spliced in.
                    let s = &seeds[at % seeds.len().max(1)];
                    let mut cut = at % (s.len() + 1);
                    while !s.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    let middle: String = picks.iter().take(3).map(|i| TOKENS[*i]).collect();
                    format!("{}{middle}{}", &s[..cut], &s[cut..])
                }
            };
            check(&text);
        },
    );
}
