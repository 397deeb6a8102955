//! Issue 10 §3, the short fuzz run of the test command, on the stable toolchain: every
//! input of every checked-in corpus (`fuzz/corpus/<target>/`) through the target's
//! check, then a bounded mutation run (bit flips, byte inserts and deletes, chunk
//! duplication, splices of two corpus inputs, interesting bytes) from a seed printed
//! at the start. The checks are the very functions the cargo-fuzz targets call
//! (`fuzz/checks.rs`); the coverage-guided long run is `scripts/fuzz` (nightly).
//!
//! `SCANBIND_FUZZ_SEED=N` replays a run; `SCANBIND_FUZZ_ITERATIONS=N` sets the
//! mutations per target (default 30,000). A failing input is written to
//! `target/fuzz-short/<target>-<seed>-<n>` for `cargo fuzz run <target> FILE`.

#[path = "../../fuzz/checks.rs"]
mod checks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// xorshift64*: a small deterministic generator (reproducible from the seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One mutation of `input` (with `other` for splices); at most 8 KiB, as the long run.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    const INTERESTING: &[u8] = b"\x00\xff\x7f\x80\n\r\"\\{}[]:,=%+/-_.0123456789ae";
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(out.len() + 1);
                out.insert(i, rng.next() as u8);
            }
            2 if !out.is_empty() => {
                let i = rng.below(out.len());
                let n = 1 + rng.below((out.len() - i).min(16));
                out.drain(i..i + n);
            }
            3 if !out.is_empty() => {
                let i = rng.below(out.len());
                let n = 1 + rng.below((out.len() - i).min(64));
                let chunk = out[i..i + n].to_vec();
                let at = rng.below(out.len() + 1);
                out.splice(at..at, chunk);
            }
            4 if !other.is_empty() => {
                let cut = rng.below(out.len() + 1);
                let from = rng.below(other.len());
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            5 => {
                let i = rng.below(out.len() + 1);
                out.insert(i, INTERESTING[rng.below(INTERESTING.len())]);
            }
            _ if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            _ => out.push(rng.next() as u8),
        }
    }
    out.truncate(8192);
    out
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// Runs `check` on `input`; on a panic, saves the input and fails with its path.
fn run(target: &str, check: fn(&[u8]), input: &[u8], seed: u64, n: usize, from: &str) {
    if catch_unwind(AssertUnwindSafe(|| check(input))).is_err() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-short");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{target}-{seed}-{n}"));
        std::fs::write(&file, input).unwrap();
        panic!(
            "{target}: the check failed on {from} (saved as {}; replay with \
             SCANBIND_FUZZ_SEED={seed})",
            file.display()
        );
    }
}

#[test]
fn every_corpus_input_and_mutations_of_them_pass_every_check() {
    let seed = std::env::var("SCANBIND_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
        | 1;
    let iterations: usize = std::env::var("SCANBIND_FUZZ_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30_000);
    eprintln!("fuzz-short: seed {seed}, {iterations} mutations per target");
    for (target, check) in checks::TARGETS {
        let inputs = corpus(target);
        assert!(
            !inputs.is_empty(),
            "{target}: the checked-in corpus is empty"
        );
        for (n, input) in inputs.iter().enumerate() {
            run(target, *check, input, seed, n, "a corpus input");
        }
        let mut rng = Rng(seed ^ target.len() as u64);
        for n in 0..iterations {
            let a = &inputs[rng.below(inputs.len())];
            let b = &inputs[rng.below(inputs.len())];
            let input = mutate(&mut rng, a, b);
            run(target, *check, &input, seed, n, "a mutated input");
        }
        eprintln!(
            "fuzz-short: {target}: {} corpus inputs + {iterations} mutations, no failure",
            inputs.len()
        );
    }
}

/// The harness itself: a check that fails on some input is caught and the input kept.
#[test]
fn a_failing_check_is_caught_and_its_input_saved() {
    fn fails_on_x(data: &[u8]) {
        assert!(!data.contains(&b'x'), "x");
    }
    let input = b"a forged x";
    let caught = catch_unwind(|| run("harness", fails_on_x, input, 7, 0, "a test input"));
    assert!(caught.is_err(), "the failing input was not reported");
    let saved = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-short/harness-7-0");
    assert_eq!(std::fs::read(&saved).unwrap(), input);
    let _ = std::fs::remove_file(saved);
    // And mutations stay within the long run's bound and do change inputs.
    let mut rng = Rng(99);
    let changed = (0..100)
        .map(|_| mutate(&mut rng, input, b"other"))
        .filter(|m| m.as_slice() != input)
        .count();
    assert!(
        changed > 50,
        "only {changed} of 100 mutations changed the input"
    );
    assert!(mutate(&mut rng, &[0; 9000], b"").len() <= 8192);
}

/// The `manager_calls` seeds reach the checks behind the decoding: every call of every
/// seed decodes and is accepted (so the policy round trip is checked), but for three
/// refused on purpose, with the documented error: `SetProfile` with a string for `kid`,
/// a second `UntrustAgent` of the same agent, `RemoveProfile` of the active profile.
#[test]
fn the_manager_call_seeds_are_accepted_calls() {
    use scanbindd::policy::PolicyFile;
    use scanbindd::untrusted::{MANAGER_MEMBERS, manager_call};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/manager_calls");
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("seed-") {
            continue;
        }
        seeds += 1;
        let data = std::fs::read(&path).unwrap();
        let mut policy = PolicyFile::default();
        let mut rest = &data[..];
        let mut outcomes = Vec::new();
        while let [member, lo, hi, tail @ ..] = rest {
            let len = usize::from(u16::from_le_bytes([*lo, *hi]));
            assert!(len <= tail.len(), "{name}: a truncated call");
            let (body, next) = tail.split_at(len);
            rest = next;
            let outcome =
                manager_call(&mut policy, usize::from(*member), body).map_err(|e| e.to_string());
            outcomes.push((MANAGER_MEMBERS[usize::from(*member)], outcome));
        }
        let refused: Vec<(&str, &str)> = outcomes
            .iter()
            .filter_map(|(m, o)| o.as_ref().err().map(|e| (*m, e.as_str())))
            .collect();
        let expected: &[(&str, &str)] = match name.as_str() {
            "seed-bad-options" => &[("SetProfile", "option kid must be a boolean")],
            "seed-agents" => &[("UntrustAgent", "no trusted display agent")],
            "seed-profiles" => &[("RemoveProfile", "kids is the active profile")],
            _ => &[],
        };
        assert_eq!(refused.len(), expected.len(), "{name}: {outcomes:?}");
        for ((member, error), (want_member, want)) in refused.iter().zip(expected) {
            assert!(
                member == want_member && error.contains(want),
                "{name}: {outcomes:?}"
            );
        }
    }
    assert!(seeds >= 10, "{seeds} seeds in {}", dir.display());
}
