//! Property targets for every parser of real servers' answers (untrusted
//! network input): any bytes, no panic, bounded work. Each target also runs
//! the seed answers stored in fuzz/corpus/<target>/ and prints its counts.

use super::{dns, http, ldap, ping, radius, sql, text};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const CASES: u32 = 2000;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| std::fs::read(e.path()).expect("corpus file"))
        .collect();
    out.sort();
    out
}

/// Run `f` on the corpus and on CASES random inputs; print the counts.
fn target(name: &str, f: impl Fn(&[u8])) {
    let seeds = corpus(name);
    assert!(!seeds.is_empty(), "fuzz/corpus/{name} has no seeds");
    for s in &seeds {
        f(s);
    }
    // Random bytes, and seeds with random bytes flipped (closer to real
    // answers, so parsers get past their first check).
    let mut runner = TestRunner::new(Config { cases: CASES, failure_persistence: None, ..Config::default() });
    let seeds2 = seeds.clone();
    let strategy = (proptest::collection::vec(any::<u8>(), 0..1024), any::<usize>(), any::<u8>(), any::<bool>());
    runner
        .run(&strategy, |(bytes, pick, flip, mutate)| {
            if mutate {
                let mut s = seeds2[pick % seeds2.len()].clone();
                if !s.is_empty() {
                    let i = pick % s.len();
                    s[i] ^= flip | 1;
                    s.truncate(pick % (s.len() + 1));
                }
                f(&s);
            } else {
                f(&bytes);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    println!("property {name}: {CASES} cases, {} corpus files, ok", seeds.len());
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn prop_probe_http_response() {
    let addr = "127.0.0.1:80".parse().unwrap();
    target("probe_http_response", |b| {
        let _ = http::parse(b);
        let _ = http::judge(addr, b, &super::Expect::from_receive("ok"));
    });
}

#[test]
fn prop_probe_text_replies() {
    target("probe_text_replies", |b| {
        let t = text_of(b);
        for line in t.lines() {
            let _ = text::reply_code(line);
            let _ = text::pop_ok(line);
            let _ = text::imap_ok(line, "a1");
            let _ = text::nntp_ok(line);
            let _ = text::pasv_port(line);
        }
        let _ = text::sip_ok(b);
    });
}

#[test]
fn prop_probe_ldap_message() {
    target("probe_ldap_message", |b| {
        if let Some((_, _, body)) = ldap::parse_message(b) {
            let _ = ldap::result_code(body);
            let _ = ldap::entry_dn(body);
        }
        let _ = ldap::read_tlv(b);
    });
}

#[test]
fn prop_probe_dns_answer() {
    target("probe_dns_answer", |b| {
        let id = b.get(..2).map_or(0, |x| u16::from_be_bytes([x[0], x[1]]));
        let _ = dns::answers(b, id);
    });
}

#[test]
fn prop_probe_sql_answers() {
    target("probe_sql_answers", |b| {
        let _ = sql::parse_handshake(b);
        let _ = sql::mysql_error(b);
        if let Some((_, body)) = sql::pg_message(b) {
            let _ = sql::pg_error(body);
        }
        let _ = sql::scram_server_first(&text_of(b));
    });
}

#[test]
fn prop_probe_radius_response() {
    target("probe_radius_response", |b| {
        let auth = [7u8; 16];
        let _ = radius::verify_response(b, b.get(1).copied().unwrap_or(0), &auth, "secret");
    });
}

#[test]
fn prop_probe_icmp_reply() {
    target("probe_icmp_reply", |b| {
        let _ = ping::is_reply(b, "203.0.113.5".parse().unwrap(), 7);
        let _ = ping::is_reply(b, "2001:db8::5".parse().unwrap(), 7);
    });
}

#[test]
fn seeds_are_understood() {
    // The parsers accept the real answers they are seeded with.
    assert!(http::parse(b"HTTP/1.1 200 OK\r\n\r\nok").is_some());
    assert_eq!(text::reply_code("250-mail.example.org"), Some((250, false)));
    assert_eq!(text::pasv_port("227 Entering Passive Mode (127,0,0,1,195,80)"), Some(50000));
    let q = dns::query(0x1234, "ok.example.org").unwrap();
    let mut a = q.clone();
    a[2] |= 0x80;
    a[7] = 1;
    a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 7]);
    assert_eq!(dns::answers(&a, 0x1234), Some(vec!["203.0.113.7".to_string()]));
    let auth = [1u8; 16];
    let req = radius::request(9, &auth, "u", "p", "s");
    assert_eq!(req.len(), usize::from(u16::from_be_bytes([req[2], req[3]])));
    assert_eq!(sql::pg_md5("u", "p", &[1, 2, 3, 4]).len(), 35);
    let m = ldap::bind_request(1, "", "");
    assert_eq!(ldap::parse_message(&m).map(|(id, op, _)| (id, op)), Some((1, 0x60)));
}
