//! App names from the system's own metadata, for prompts (issue 22 item 7): the
//! `Name=` of the `.desktop` file that the system installed for an app, never a name
//! the app gives at run time.
//!
//! - an executable: the `.desktop` file in `applications/` of the system's data
//!   directories (`$XDG_DATA_DIRS`, else `/usr/local/share:/usr/share`) whose `Exec=`
//!   or `TryExec=` program is that executable (an absolute path, or a name found in the
//!   system's `bin` directories; both sides with symbolic links resolved);
//! - a Flatpak app: `<app id>.desktop` exported by the system installation
//!   (`/var/lib/flatpak/exports/share/applications`);
//! - a snap: `<snap>_*.desktop` that snapd installed (`/var/lib/snapd/desktop/applications`).
//!
//! Only files that root owns, in directories that root owns, and that nobody else may
//! write count: a program of the user could put a `.desktop` file naming any
//! executable in the user's own `~/.local/share/applications`, so that directory does
//! not count. Without such a file the prompt falls back to the executable's file name
//! (or the Flatpak id, the snap name); the executable path (or the id) is always shown
//! beside the name.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// Where Flatpak's system installation exports its apps' data.
const FLATPAK_EXPORTS: &str = "/var/lib/flatpak/exports/share";
/// Where snapd puts its snaps' `.desktop` files (the `applications` directory's parent).
const SNAPD_DESKTOP: &str = "/var/lib/snapd/desktop";
/// The system's program directories, where an `Exec=` program name is looked up.
const BIN_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
    "/usr/games",
    "/usr/local/games",
];
/// Most bytes of a `.desktop` file read.
const DESKTOP_MAX: u64 = 64 * 1024;

/// The system's data directories (`$XDG_DATA_DIRS`, absolute entries only).
pub(crate) fn data_dirs() -> Vec<PathBuf> {
    let dirs: Vec<PathBuf> = std::env::var_os("XDG_DATA_DIRS")
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| p.is_absolute())
                .collect()
        })
        .unwrap_or_default();
    if dirs.is_empty() {
        vec!["/usr/local/share".into(), "/usr/share".into()]
    } else {
        dirs
    }
}

/// The name of the app whose executable is `exe`, from a `.desktop` file in
/// `applications/` of one of `dirs`.
pub(crate) fn name_for_exe(dirs: &[PathBuf], exe: &Path) -> Option<String> {
    let exe = std::fs::canonicalize(exe).ok()?;
    for dir in dirs {
        let apps = dir.join("applications");
        if !root_only(&apps) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&apps) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "desktop"))
            .collect();
        files.sort();
        for file in files {
            let Some(entry) = read_entry(&file) else {
                continue;
            };
            let runs = programs(&entry)
                .filter_map(|p| resolve(&p))
                .any(|p| p == exe);
            if runs {
                return Some(entry.name);
            }
        }
    }
    None
}

/// The name of Flatpak app `id`, from the `.desktop` file the system installation
/// exports for it (`exports` overrides [`FLATPAK_EXPORTS`] for tests).
pub(crate) fn name_for_flatpak(id: &str, exports: Option<&Path>) -> Option<String> {
    let apps = exports
        .unwrap_or(Path::new(FLATPAK_EXPORTS))
        .join("applications");
    if !root_only(&apps) {
        return None;
    }
    read_entry(&apps.join(format!("{id}.desktop"))).map(|e| e.name)
}

/// The name of snap `snap`, from a `.desktop` file snapd installed for it
/// (`<snap>_<app>.desktop`; `desktop` overrides [`SNAPD_DESKTOP`] for tests).
pub(crate) fn name_for_snap(snap: &str, desktop: Option<&Path>) -> Option<String> {
    let apps = desktop
        .unwrap_or(Path::new(SNAPD_DESKTOP))
        .join("applications");
    if !root_only(&apps) {
        return None;
    }
    let prefix = format!("{snap}_");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&apps)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".desktop"))
        })
        .collect();
    files.sort();
    files.iter().find_map(|f| read_entry(f)).map(|e| e.name)
}

/// Whether `path` (not a symbolic link) is root's and writable by nobody else.
fn root_only(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.uid() == 0 && m.mode() & 0o022 == 0)
}

/// What a `.desktop` file's `[Desktop Entry]` group says.
#[derive(Debug, Default, PartialEq, Eq)]
struct Entry {
    name: String,
    exec: Option<String>,
    try_exec: Option<String>,
}

/// The `[Desktop Entry]` of the `.desktop` file at `path`: a root-only regular file
/// that names an application (`Type=Application`, a `Name=`, not `Hidden=true`).
fn read_entry(path: &Path) -> Option<Entry> {
    use std::io::Read as _;
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || !root_only(path) {
        return None;
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(DESKTOP_MAX)
        .read_to_string(&mut text)
        .ok()?;
    parse_entry(&text)
}

fn parse_entry(text: &str) -> Option<Entry> {
    let mut entry = Entry::default();
    let mut inside = false;
    let mut app = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[Desktop Entry]";
            continue;
        }
        let Some((key, value)) = line.split_once('=').filter(|_| inside) else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "Name" => entry.name = value.to_owned(),
            "Exec" => entry.exec = Some(value.to_owned()),
            "TryExec" => entry.try_exec = Some(value.to_owned()),
            "Type" => app = value == "Application",
            "Hidden" if value == "true" => return None,
            _ => {}
        }
    }
    (app && !entry.name.is_empty()).then_some(entry)
}

/// The programs an entry runs: those of its `Exec=` and `TryExec=`.
fn programs(entry: &Entry) -> impl Iterator<Item = String> + '_ {
    [entry.exec.as_deref(), entry.try_exec.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(program)
}

/// The `Name=` and the programs (`Exec=`, `TryExec=`) of a `.desktop` file's text as
/// [`name_for_exe`] reads them; `None` if it names no application. For the fuzz
/// targets (the `untrusted` module).
pub(crate) fn name_and_programs(text: &str) -> Option<(String, Vec<String>)> {
    let entry = parse_entry(text)?;
    let programs = programs(&entry).collect();
    Some((entry.name, programs))
}

/// The program of an `Exec=` value: its first word, quoted or not.
fn program(exec: &str) -> Option<String> {
    let exec = exec.trim_start();
    let word = match exec.strip_prefix('"') {
        Some(rest) => {
            let mut out = String::new();
            let mut chars = rest.chars();
            loop {
                match chars.next()? {
                    '"' => break out,
                    '\\' => out.push(chars.next()?),
                    c => out.push(c),
                }
            }
        }
        None => exec.split_whitespace().next()?.to_owned(),
    };
    (!word.is_empty()).then_some(word)
}

/// The file `program` runs: an absolute path, or the first of [`BIN_DIRS`] that has
/// it; with symbolic links resolved.
fn resolve(program: &str) -> Option<PathBuf> {
    let path = Path::new(program);
    if path.is_absolute() {
        return std::fs::canonicalize(path).ok();
    }
    if program.contains('/') {
        return None;
    }
    BIN_DIRS
        .iter()
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desktop(dir: &Path, file: &str, text: &str) {
        std::fs::create_dir_all(dir.join("applications")).unwrap();
        std::fs::write(dir.join("applications").join(file), text).unwrap();
    }

    #[test]
    fn entries_and_programs_parse() {
        let e = parse_entry(
            "[Desktop Entry]\nType=Application\nName=Space Miner\nName[de]=Weltraum\nExec=\"/opt/space miner/run\" %U\n[Desktop Action x]\nName=Other\n",
        )
        .unwrap();
        assert_eq!(e.name, "Space Miner");
        assert_eq!(
            program(e.exec.as_deref().unwrap()).as_deref(),
            Some("/opt/space miner/run")
        );
        assert_eq!(program("game --fullscreen").as_deref(), Some("game"));
        assert_eq!(parse_entry("[Desktop Entry]\nType=Link\nName=x\n"), None);
        assert_eq!(
            parse_entry("[Desktop Entry]\nType=Application\nName=x\nHidden=true\n"),
            None
        );
    }

    #[test]
    fn the_name_comes_from_a_root_owned_desktop_file_that_runs_the_executable() {
        // As root: the temporary directories are root's.
        let data = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        let game = bin.path().join("space-miner");
        std::fs::copy("/bin/true", &game).unwrap();
        let link = bin.path().join("miner-link");
        std::os::unix::fs::symlink(&game, &link).unwrap();
        desktop(
            data.path(),
            "miner.desktop",
            &format!(
                "[Desktop Entry]\nType=Application\nName=Space Miner\nExec={} --tv\n",
                link.display()
            ),
        );
        desktop(
            data.path(),
            "other.desktop",
            "[Desktop Entry]\nType=Application\nName=Other\nExec=/usr/bin/other\n",
        );
        let dirs = vec![data.path().to_path_buf()];
        assert_eq!(name_for_exe(&dirs, &game).as_deref(), Some("Space Miner"));
        assert_eq!(name_for_exe(&dirs, Path::new("/bin/true")), None);
        // A file others may write (as a user's own applications directory would be,
        // for the user's programs): not trusted.
        let apps = data.path().join("applications");
        std::fs::set_permissions(&apps, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        assert_eq!(name_for_exe(&dirs, &game), None);
        std::fs::set_permissions(&apps, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let file = apps.join("miner.desktop");
        std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
        assert_eq!(name_for_exe(&dirs, &game), None);
    }

    #[test]
    fn flatpak_and_snap_names_come_from_their_installed_files() {
        let exports = tempfile::tempdir().unwrap();
        desktop(
            exports.path(),
            "com.example.Game.desktop",
            "[Desktop Entry]\nType=Application\nName=Example Game\nExec=/usr/bin/flatpak run com.example.Game\n",
        );
        assert_eq!(
            name_for_flatpak("com.example.Game", Some(exports.path())).as_deref(),
            Some("Example Game")
        );
        assert_eq!(
            name_for_flatpak("com.example.Other", Some(exports.path())),
            None
        );
        let snapd = tempfile::tempdir().unwrap();
        desktop(
            snapd.path(),
            "tv-game_tv-game.desktop",
            "[Desktop Entry]\nType=Application\nName=TV Game\nExec=/snap/bin/tv-game\n",
        );
        assert_eq!(
            name_for_snap("tv-game", Some(snapd.path())).as_deref(),
            Some("TV Game")
        );
        assert_eq!(name_for_snap("tv", Some(snapd.path())), None);
    }
}
