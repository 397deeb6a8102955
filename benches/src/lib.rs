//! Benchmarks (see README.md): shared timing, reporting and docs-writing helpers.
//!
//! Every benchmark reports its figures next to a *floor* measured on the same machine in
//! the same run, so the committed numbers are comparable as ratios even when machines
//! differ. Timing is plain [`Instant`]: a warm-up, then a fixed number of rounds of a
//! fixed number of iterations, reporting the median round.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Throughput of one measured operation over several rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    /// Operations per second of each round, in the order they ran.
    pub rounds: Vec<f64>,
}

impl Throughput {
    /// Builds from per-round operations per second (at least one round).
    pub fn from_rounds(rounds: Vec<f64>) -> Self {
        assert!(!rounds.is_empty(), "at least one round");
        Throughput { rounds }
    }

    /// The median round, in operations per second.
    pub fn median(&self) -> f64 {
        let mut sorted = self.rounds.clone();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        }
    }

    /// Microseconds per operation at the median.
    pub fn micros_per_op(&self) -> f64 {
        1e6 / self.median()
    }

    /// Spread of the rounds: (slowest, fastest) in operations per second.
    pub fn range(&self) -> (f64, f64) {
        let min = self.rounds.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self
            .rounds
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    }
}

/// How long to measure: `warmup` untimed calls, then `rounds` timed rounds of
/// `iterations` calls each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Untimed calls before the first round.
    pub warmup: usize,
    /// Timed rounds; the median is reported.
    pub rounds: usize,
    /// Calls per round.
    pub iterations: usize,
}

/// Runs `op` according to `plan` and returns per-round throughput.
pub fn measure(plan: Plan, mut op: impl FnMut()) -> Throughput {
    assert!(plan.rounds > 0 && plan.iterations > 0, "empty plan");
    for _ in 0..plan.warmup {
        op();
    }
    let rounds = (0..plan.rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..plan.iterations {
                op();
            }
            plan.iterations as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    Throughput::from_rounds(rounds)
}

/// The machine a run was made on, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// UTC date of the run, `YYYY-MM-DD`.
    pub date: String,
    /// `model name` from `/proc/cpuinfo` (or "unknown").
    pub cpu: String,
    /// Logical cores available to this process.
    pub cores: usize,
}

impl Machine {
    /// Describes the current machine.
    pub fn current() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| cpu_model(&info))
            .unwrap_or_else(|| "unknown".to_owned());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let days = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 86_400);
        Machine {
            date: civil_date(days),
            cpu,
            cores,
        }
    }

    /// One line for reports: `date, CPU, N cores`.
    pub fn summary(&self) -> String {
        format!(
            "{}, {}, {} core{}",
            self.date,
            self.cpu,
            self.cores,
            if self.cores == 1 { "" } else { "s" }
        )
    }
}

/// The first `model name` in `/proc/cpuinfo` text.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// `YYYY-MM-DD` for a count of days since 1970-01-01 (proleptic Gregorian).
pub fn civil_date(days_since_epoch: u64) -> String {
    // Howard Hinnant's days_from_civil inverse.
    let z = days_since_epoch as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Formats a number of operations per second for a table: no decimals from 100 up.
pub fn fmt_rate(ops_per_sec: f64) -> String {
    if ops_per_sec >= 100.0 {
        format!("{ops_per_sec:.0}")
    } else {
        format!("{ops_per_sec:.1}")
    }
}

/// The HTML comment that opens a generated section.
pub fn start_marker(section: &str) -> String {
    format!("<!-- bench:{section}:start -->")
}

/// The HTML comment that closes a generated section.
pub fn end_marker(section: &str) -> String {
    format!("<!-- bench:{section}:end -->")
}

/// Replaces the text between the section's markers with `body` (markers kept), or
/// appends a new marked section at the end when the document has none.
pub fn replace_section(doc: &str, section: &str, body: &str) -> Result<String, String> {
    let (start, end) = (start_marker(section), end_marker(section));
    let body = body.trim_end_matches('\n');
    match (doc.find(&start), doc.find(&end)) {
        (Some(s), Some(e)) if s < e => Ok(format!("{}{start}\n{body}\n{}", &doc[..s], &doc[e..])),
        (None, None) => {
            let mut out = doc.trim_end_matches('\n').to_owned();
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(&format!("{start}\n{body}\n{end}\n"));
            Ok(out)
        }
        _ => Err(format!(
            "{start} and {end} are not both present in that order"
        )),
    }
}

/// The repository's root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ has a parent")
        .to_owned()
}

/// Reads a key fixture from `ams/tests/fixtures/` (the known-answer keys the tests use).
pub fn ams_fixture(name: &str) -> String {
    let path = repo_root().join("ams/tests/fixtures").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `docs/benchmarks.md`, where results are kept.
pub fn docs_path() -> PathBuf {
    repo_root().join("docs/benchmarks.md")
}

/// The opening of `docs/benchmarks.md` when it does not exist yet.
pub const DOCS_INTRO: &str = "\
# Benchmarks

Generated by `scripts/bench` (see `benches/README.md`); the sections between the
`<!-- bench:... -->` markers are rewritten by each run.

Absolute figures depend on the machine. Each benchmark therefore also measures a
**floor** on the same machine in the same run, and the figures that matter are the
ratios against it. Each section names the date, the CPU model (`/proc/cpuinfo`) and the
core count of its run (the daemon sections also the versions of the binaries, dbus-daemon,
gnome-keyring and the kernel). Reproduce with `scripts/bench` (about 10 minutes; it runs
every benchmark inside a private D-Bus session with an unlocked gnome-keyring).
";

/// Whether this run should rewrite `docs/benchmarks.md`: a `--write-docs` argument or
/// `SCANBIND_BENCH_WRITE=1`.
pub fn write_docs_requested() -> bool {
    std::env::args().any(|a| a == "--write-docs")
        || std::env::var("SCANBIND_BENCH_WRITE").is_ok_and(|v| v == "1")
}

/// Rewrites `section` of `docs/benchmarks.md` with `body`, creating the file with
/// [`DOCS_INTRO`] when it is missing.
pub fn update_docs(section: &str, body: &str) -> Result<PathBuf, String> {
    let path = docs_path();
    let doc = match std::fs::read_to_string(&path) {
        Ok(doc) => doc,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DOCS_INTRO.to_owned(),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let new = replace_section(&doc, section, body)?;
    std::fs::write(&path, new).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path)
}

/// The venv python with the official SDK, from `SCANBIND_PYTHON` (set by
/// `scripts/bench` and `scripts/test`).
pub fn python() -> Result<PathBuf, String> {
    const HOW: &str = "run through scripts/bench, which creates .venv with the official \
                       SDK and exports SCANBIND_PYTHON";
    let python = std::env::var_os("SCANBIND_PYTHON")
        .map(PathBuf::from)
        .ok_or_else(|| format!("SCANBIND_PYTHON is not set: {HOW}"))?;
    if !python.is_file() {
        return Err(format!(
            "SCANBIND_PYTHON={} does not exist: {HOW}",
            python.display()
        ));
    }
    Ok(python)
}

/// Runs a Python benchmark script and collects the `ops_per_sec <value>` lines it
/// prints, one per round. Any other stdout line is ignored; a failing script is an
/// error carrying its stderr.
pub fn run_python_rounds(cmd: &mut Command) -> Result<Throughput, String> {
    let out = cmd.output().map_err(|e| format!("starting {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let rounds = parse_rounds(&String::from_utf8_lossy(&out.stdout))?;
    Ok(Throughput::from_rounds(rounds))
}

/// Parses `ops_per_sec <value>` lines.
pub fn parse_rounds(stdout: &str) -> Result<Vec<f64>, String> {
    let rounds: Vec<f64> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ops_per_sec "))
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .map_err(|e| format!("bad rate {v:?}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    if rounds.is_empty() || rounds.iter().any(|r| !r.is_finite() || *r <= 0.0) {
        return Err(format!("no valid `ops_per_sec` rounds in:\n{stdout}"));
    }
    Ok(rounds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_rounds() {
        assert_eq!(Throughput::from_rounds(vec![3.0, 1.0, 2.0]).median(), 2.0);
        assert_eq!(
            Throughput::from_rounds(vec![4.0, 1.0, 3.0, 2.0]).median(),
            2.5
        );
        let t = Throughput::from_rounds(vec![5.0, 1.0, 9.0]);
        assert_eq!(t.range(), (1.0, 9.0));
        assert_eq!(t.micros_per_op(), 200_000.0);
    }

    #[test]
    fn measure_runs_warmup_and_every_iteration() {
        let mut calls = 0;
        let t = measure(
            Plan {
                warmup: 3,
                rounds: 4,
                iterations: 5,
            },
            || calls += 1,
        );
        assert_eq!(calls, 3 + 4 * 5);
        assert_eq!(t.rounds.len(), 4);
        assert!(t.rounds.iter().all(|r| *r > 0.0));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(59), "1970-03-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
        assert_eq!(civil_date(20_513), "2026-03-01");
        assert_eq!(civil_date(20_778), "2026-11-21");
    }

    #[test]
    fn cpu_model_from_cpuinfo() {
        let info = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t: fpu\n";
        assert_eq!(
            cpu_model(info).as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
        assert_eq!(cpu_model("processor : 0\n"), None);
    }

    #[test]
    fn sections_are_replaced_between_markers_only() {
        let doc =
            "# T\n\nintro\n\n<!-- bench:x:start -->\nold\ntable\n<!-- bench:x:end -->\n\nafter\n";
        let new = replace_section(doc, "x", "new\n").unwrap();
        assert_eq!(
            new,
            "# T\n\nintro\n\n<!-- bench:x:start -->\nnew\n<!-- bench:x:end -->\n\nafter\n"
        );
        // Idempotent, and other sections are left alone.
        assert_eq!(replace_section(&new, "x", "new").unwrap(), new);
        let two = replace_section(&new, "y", "why").unwrap();
        assert!(two.starts_with(&new.trim_end_matches('\n').to_owned()));
        assert!(two.ends_with("<!-- bench:y:start -->\nwhy\n<!-- bench:y:end -->\n"));
        assert_eq!(replace_section(&two, "x", "new").unwrap(), two);
    }

    #[test]
    fn broken_markers_are_an_error() {
        let only_start = "<!-- bench:x:start -->\n";
        assert!(replace_section(only_start, "x", "b").is_err());
        let reversed = "<!-- bench:x:end -->\n<!-- bench:x:start -->\n";
        assert!(replace_section(reversed, "x", "b").is_err());
    }

    #[test]
    fn python_rounds_are_parsed() {
        assert_eq!(
            parse_rounds("warming up\nops_per_sec 10.5\nops_per_sec 12\n").unwrap(),
            vec![10.5, 12.0]
        );
        assert!(parse_rounds("nothing\n").is_err());
        assert!(parse_rounds("ops_per_sec fast\n").is_err());
        assert!(parse_rounds("ops_per_sec 0\n").is_err());
    }
}
