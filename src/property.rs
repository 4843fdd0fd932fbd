//! Property targets (unit-test side): a target runs its stored seed inputs
//! from `fuzz/corpus/<target>/`, then a proptest strategy for an explicit
//! number of cases, and prints `property <target>: <N> cases, <M> corpus
//! files, ok` for CI (script/test runs `prop_` tests with --nocapture).

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestRunner};
use std::fmt::Debug;
use std::path::PathBuf;

/// The seed inputs of `target`, one file each (sorted by name).
pub fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("corpus file {}: {e}", p.display()))).collect()
}

/// Run `seed` on every corpus file of `target`, then `check` on `cases`
/// inputs from `strategy` (a failing input is shrunk and reported).
pub fn run<S>(target: &str, cases: u32, strategy: S, seed: impl Fn(&[u8]), check: impl Fn(S::Value))
where
    S: Strategy,
    S::Value: Debug,
{
    let seeds = corpus(target);
    assert!(!seeds.is_empty(), "fuzz/corpus/{target}/ has no seed inputs");
    for s in &seeds {
        seed(s);
    }
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    runner
        .run(&strategy, |v| {
            check(v);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("property {target} failed: {e}"));
    println!("property {target}: {cases} cases, {} corpus files, ok", seeds.len());
}
