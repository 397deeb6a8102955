//! A throwaway PostgreSQL cluster (`PG_BIN_DIR`), run as an unprivileged user when we
//! are root; stopped on drop. [`PgCluster::start`] keeps fsync on, so it can be killed
//! with SIGKILL and started again on the same data directory (the crash matrix);
//! [`PgCluster::start_throwaway`] runs without fsync, or makes a database in the server
//! named by `SCANBIND_TEST_DATABASE_URL` when that is set.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A PostgreSQL cluster in a temporary directory (or a database in a given server).
#[derive(Debug)]
pub struct PgCluster {
    dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    run_as: Option<String>,
    fsync: bool,
    /// A database in the server of `SCANBIND_TEST_DATABASE_URL`: nothing to stop.
    given: bool,
    /// `postgres://postgres@127.0.0.1:PORT/postgres` (or the given server's database).
    pub url: String,
}

fn pg_command(bin: &Path, tool: &str, run_as: &Option<String>) -> Command {
    match run_as {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.arg("-u").arg(user).arg("--").arg(bin.join(tool));
            c
        }
        None => Command::new(bin.join(tool)),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PgCluster {
    /// initdb + start, fsync on. Needs `PG_BIN_DIR` (scripts/test exports it).
    pub fn start() -> crate::Result<PgCluster> {
        PgCluster::start_cluster(true)
    }

    /// A database for one test: with `SCANBIND_TEST_DATABASE_URL` set, a new database
    /// in that server (created with `psql`); else a cluster as [`PgCluster::start`]
    /// makes, without fsync (it is never killed).
    pub fn start_throwaway() -> crate::Result<PgCluster> {
        let Ok(url) = std::env::var("SCANBIND_TEST_DATABASE_URL") else {
            return PgCluster::start_cluster(false);
        };
        static DATABASES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = DATABASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("sbtest_{}_{nanos}_{n}", std::process::id());
        let status = Command::new("psql")
            .arg(&url)
            .arg("-c")
            .arg(format!("CREATE DATABASE {name}"))
            .status()
            .map_err(crate::io(
                "psql (to create a test database in SCANBIND_TEST_DATABASE_URL)",
            ))?;
        if !status.success() {
            return Err(crate::Error::Process("CREATE DATABASE failed".into()));
        }
        let base = url
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .unwrap_or(url);
        let dir = tempfile::tempdir().map_err(crate::io("tempdir"))?;
        Ok(PgCluster {
            data: dir.path().to_owned(),
            dir,
            bin: PathBuf::new(),
            port: 0,
            run_as: None,
            fsync: false,
            given: true,
            url: format!("{base}/{name}"),
        })
    }

    fn start_cluster(fsync: bool) -> crate::Result<PgCluster> {
        let bin = std::env::var_os("PG_BIN_DIR").map(PathBuf::from).ok_or_else(|| {
            crate::Error::Process(
                "the PostgreSQL cells need PG_BIN_DIR (initdb, pg_ctl, postgres); scripts/test exports it"
                    .into(),
            )
        })?;
        let dir = tempfile::tempdir().map_err(crate::io("tempdir"))?;
        let run_as = is_root().then(|| {
            let postgres = Command::new("id")
                .arg("postgres")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if postgres { "postgres" } else { "nobody" }.to_owned()
        });
        if let Some(user) = &run_as {
            let ok = Command::new("chown")
                .arg("-R")
                .arg(user)
                .arg(dir.path())
                .status()
                .map_err(crate::io("chown"))?;
            if !ok.success() {
                return Err(crate::Error::Process(
                    "chown of the cluster dir failed".into(),
                ));
            }
        }
        let data = dir.path().join("data");
        let out = pg_command(&bin, "initdb", &run_as)
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .output()
            .map_err(crate::io("initdb"))?;
        if !out.status.success() {
            return Err(crate::Error::Process(format!(
                "initdb: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(crate::io("pick a port"))?
            .port();
        let pg = PgCluster {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
            data,
            bin,
            port,
            run_as,
            fsync,
            given: false,
        };
        pg.restart()?;
        Ok(pg)
    }

    /// Starts the cluster (again) on its data directory and waits until it accepts
    /// connections (`pg_ctl -w`). After a SIGKILL this runs crash recovery.
    pub fn restart(&self) -> crate::Result<()> {
        // fsync stays on for `start`: the crash matrix kills PostgreSQL with SIGKILL,
        // which its WAL survives either way; fsync=off only matters for a power loss.
        let fsync = if self.fsync { "" } else { " -c fsync=off" };
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1{fsync} -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let out = pg_command(&self.bin, "pg_ctl", &self.run_as)
            .arg("-D")
            .arg(&self.data)
            .arg("-o")
            .arg(opts)
            .arg("-l")
            .arg(self.dir.path().join("pg.log"))
            .args(["-w", "-t", "60", "start"])
            .output()
            .map_err(crate::io("pg_ctl start"))?;
        if !out.status.success() {
            return Err(crate::Error::Process(format!(
                "pg_ctl start: {} {}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(self.dir.path().join("pg.log")).unwrap_or_default()
            )));
        }
        Ok(())
    }

    /// The postmaster's pid (first line of `postmaster.pid`).
    pub fn postmaster_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// `kill -9` of the postmaster and every backend of this cluster (its process
    /// group is not ours: the backends are found through `/proc` by their parent).
    pub fn kill_9(&self) -> crate::Result<()> {
        let Some(pm) = self.postmaster_pid() else {
            return Err(crate::Error::Process("no postmaster.pid".into()));
        };
        let children = children_of(pm);
        for &pid in std::iter::once(&pm).chain(&children) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        // Wait (bounded) until the postmaster and its backends are gone (or zombies:
        // PID 1 of a container may never reap them), then remove the stale
        // `postmaster.pid` as an init system's reaping would let PostgreSQL do itself.
        let gone = |pid: i32| !Path::new("/proc").join(pid.to_string()).exists() || is_zombie(pid);
        for _ in 0..600 {
            if gone(pm) && children.iter().all(|c| gone(*c)) {
                let _ = std::fs::remove_file(self.data.join("postmaster.pid"));
                let socket = self.dir.path().join(format!(".s.PGSQL.{}", self.port));
                let _ = std::fs::remove_file(&socket);
                let lock = self.dir.path().join(format!(".s.PGSQL.{}.lock", self.port));
                let _ = std::fs::remove_file(lock);
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(crate::Error::Process("the postmaster did not die".into()))
    }

    /// The cluster's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("pg.log")
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

fn children_of(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.given {
            return;
        }
        let _ = pg_command(&self.bin, "pg_ctl", &self.run_as)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
