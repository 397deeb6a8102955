//! `include/scanbind.h` is what cbindgen makes of `src/lib.rs` today: the checked-in
//! header cannot drift from the library. `UPDATE_HEADER=1` rewrites it instead.

use std::path::Path;

#[test]
fn the_checked_in_header_matches_the_library() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen could not read src/lib.rs")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8 header");
    let path = dir.join("include/scanbind.h");
    if std::env::var_os("UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("writing include/scanbind.h");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/scanbind.h is out of date: run `UPDATE_HEADER=1 cargo test -p libscanbind --test header` \
         and commit the result"
    );
}

/// The C snippets of the app developer's guide (`docs/apps.md`) compile against the
/// header with the system C compiler (`cc`, or `$CC`).
#[test]
fn the_guide_s_c_snippets_compile() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(dir.join("../../docs/apps.md")).expect("docs/apps.md");
    let snippets: Vec<&str> = guide
        .split("```c\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default())
        .collect();
    assert!(!snippets.is_empty(), "docs/apps.md has no C snippet");
    let tmp = tempfile::tempdir().unwrap();
    for (i, snippet) in snippets.iter().enumerate() {
        let file = tmp.path().join(format!("snippet{i}.c"));
        std::fs::write(&file, snippet).unwrap();
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
        let out = std::process::Command::new(&cc)
            .args([
                "-std=c99",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-fsyntax-only",
                "-I",
            ])
            .arg(dir.join("include"))
            .arg(&file)
            .output()
            .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?} (install gcc): {e}"));
        assert!(
            out.status.success(),
            "C snippet {i} of docs/apps.md does not compile:\n{snippet}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
