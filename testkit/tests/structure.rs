//! The workspace's structure rules (issue 20, docs/architecture.md "Layers"), checked on
//! the source tree itself so a later change cannot quietly undo them:
//!
//! - among the top-level modules of `daemon/src`, `server/src` and `sandbox/src`, no two
//!   import each other, directly or through others (`crate::x` and `super::x` paths,
//!   doc links included, form no cycle);
//! - every SQL statement of the server lives in `server/src/store/`;
//! - the shipped command line links neither the daemon, the server nor the sandbox, and
//!   the app-facing client does not link Alipay's protocol crate, and only the demo links
//!   the embedded D-Bus broker `busd` (`cargo tree`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the workspace")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The identifiers that follow `prefix` in `text` (`crate::journal::x` gives `journal`).
fn paths_after<'a>(text: &'a str, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    text.match_indices(prefix).filter_map(move |(at, _)| {
        // `foo_crate::x` is not `crate::x`: the prefix must start a path.
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        let rest = &text[at + prefix.len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        (end > 0).then(|| &rest[..end])
    })
}

/// The top-level modules of a crate's `src/` and the modules each one names.
fn module_edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(src).expect("src/ is readable") {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_stem()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            let mut files = Vec::new();
            rust_files(&path, &mut files);
            modules.entry(name).or_default().extend(files);
        } else if path.extension().is_some_and(|x| x == "rs") && name != "lib" && name != "main" {
            modules.entry(name).or_default().push(path);
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut edges = BTreeMap::new();
    for (module, files) in &modules {
        let mut targets = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(file).expect("source is readable");
            let depth = file
                .strip_prefix(src)
                .expect("under src")
                .components()
                .count()
                - 1;
            let is_mod_rs = file.file_name().is_some_and(|f| f == "mod.rs");
            let mut named: Vec<&str> = paths_after(&text, "crate::").collect();
            // `super::x` reaches the crate root from a top-level file, and from a file
            // one folder down unless it is that folder's mod.rs.
            if depth == 0 {
                named.extend(paths_after(&text, "super::"));
            } else if depth == 1 && !is_mod_rs {
                named.extend(paths_after(&text, "super::super::"));
            }
            targets.extend(
                named
                    .into_iter()
                    .filter(|n| names.contains(*n) && *n != module)
                    .map(str::to_owned),
            );
        }
        edges.insert(module.clone(), targets);
    }
    edges
}

/// A cycle among the modules, if there is one (depth-first search with colours).
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|n| n == next).expect("on the stack");
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(cycle) = visit(next, edges, state, stack) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(cycle) = visit(node, edges, &mut state, &mut stack) {
                return Some(cycle);
            }
        }
    }
    None
}

#[test]
fn the_cycle_finder_finds_a_planted_cycle() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges
        .entry("dbus".into())
        .or_default()
        .insert("domain".into());
    edges
        .entry("domain".into())
        .or_default()
        .insert("store".into());
    edges.entry("store".into()).or_default();
    assert_eq!(find_cycle(&edges), None);
    edges
        .entry("store".into())
        .or_default()
        .insert("dbus".into());
    assert_eq!(
        find_cycle(&edges),
        Some(vec![
            "dbus".into(),
            "domain".into(),
            "store".into(),
            "dbus".into()
        ])
    );
    let text = "use crate::store::journal; // see [`super::dbus`]; not my_crate::x";
    assert_eq!(paths_after(text, "crate::").collect::<Vec<_>>(), ["store"]);
    assert_eq!(paths_after(text, "super::").collect::<Vec<_>>(), ["dbus"]);
}

#[test]
fn top_level_modules_of_daemon_server_and_sandbox_form_no_cycle() {
    for krate in ["daemon", "server", "sandbox"] {
        let edges = module_edges(&workspace().join(krate).join("src"));
        assert!(
            edges.len() >= 3,
            "{krate}/src has too few modules to check: {edges:?}"
        );
        if let Some(cycle) = find_cycle(&edges) {
            panic!(
                "{krate}/src: the top-level modules import each other in a cycle: {}",
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn every_sql_statement_of_the_server_lives_in_its_store() {
    let src = workspace().join("server/src");
    let store = src.join("store");
    assert!(store.is_dir(), "server/src/store/ is missing");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut in_store = 0;
    let mut outside = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source is readable");
        let n = text.matches("sqlx::query").count();
        if file.starts_with(&store) {
            in_store += n;
        } else if n > 0 {
            outside.push(format!("{} ({n})", file.display()));
        }
    }
    assert!(
        outside.is_empty(),
        "sqlx::query outside server/src/store/: {outside:?}"
    );
    assert!(
        in_store > 50,
        "the store holds only {in_store} statements: is the check looking in the right place?"
    );
}

/// The normal dependencies (default features) of a workspace package, as `cargo tree` prints them.
fn normal_tree(package: &str) -> String {
    normal_tree_with(package, &[])
}

/// As [`normal_tree`], with more `cargo tree` arguments (e.g. `--no-default-features`).
fn normal_tree_with(package: &str, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO"))
        .current_dir(workspace())
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .args(extra)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn crate_names(tree: &str) -> BTreeSet<String> {
    tree.lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_shipped_cli_links_no_daemon_server_or_sandbox() {
    let names = crate_names(&normal_tree("scanbindctl"));
    assert!(
        names.contains("scanbind-client"),
        "unexpected tree: {names:?}"
    );
    for forbidden in ["scanbindd", "scanbind-server", "scanbind-sandbox"] {
        assert!(
            !names.contains(forbidden),
            "scanbindctl links {forbidden}: {names:?}"
        );
    }
}

#[test]
fn only_the_development_stack_links_the_embedded_d_bus_broker() {
    assert!(
        crate_names(&normal_tree("scanbind-demo")).contains("busd"),
        "scanbind-demo does not list busd: not the tree this test expects"
    );
    // What ships: the command line with its default features, the daemon as
    // scripts/package builds it (without the dev stack, docs/decisions.md D24).
    for (shipped, extra) in [
        ("scanbindctl", &[][..]),
        ("scanbindd", &["--no-default-features"][..]),
    ] {
        let names = crate_names(&normal_tree_with(shipped, extra));
        assert!(
            names.contains("zbus"),
            "unexpected tree of {shipped}: {names:?}"
        );
        assert!(
            !names.contains("busd"),
            "{shipped} links busd (the development stack's embedded broker, docs/decisions.md D29)"
        );
    }
}

#[test]
fn the_app_facing_client_does_not_link_the_ams_protocol_crate() {
    let names = crate_names(&normal_tree("scanbind-client"));
    assert!(
        names.contains("scanbind-money"),
        "unexpected tree: {names:?}"
    );
    assert!(
        !names.contains("scanbind-ams"),
        "scanbind-client links scanbind-ams: {names:?}"
    );
}
