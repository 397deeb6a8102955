//! A real `scanbindd` for the `apps` and `profiles` tests: the daemon library in this
//! process (its own runtime), serving only its peer-to-peer socket, secrets in a
//! throw-away file vault, the merchant server unreachable (it starts offline: the
//! policy needs no server), reading `policy`. `scanbindctl --socket` talks to it; the
//! policy changes go through `io.scanbind.Manager1` as they do for a user.

#![allow(dead_code)] // each test binary uses a part

use std::path::{Path, PathBuf};

pub struct PolicyDaemon {
    socket: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl PolicyDaemon {
    /// Starts it; `policy` is an explicitly configured file (missing: payments are
    /// refused until a change creates it).
    pub fn start(policy: &Path) -> PolicyDaemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("scanbindd.sock");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = scanbindd::Config::new(
            scanbindd::BusChoice::None,
            // Nothing listens on the discard port: the daemon starts offline.
            "http://127.0.0.1:9".to_owned(),
            dir.path().join("journal.sqlite3"),
        );
        config.p2p_socket = Some(socket.clone());
        config.vault =
            scanbindd::VaultChoice::file_with_new_secret(dir.path().join("vault")).unwrap();
        config.policy_file = Some(policy.to_owned());
        config.policy_required = true;
        let daemon = runtime
            .block_on(scanbindd::Daemon::start(config))
            .expect("scanbindd starts");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(daemon.run_until(async {
            let _ = stopped.await;
        }));
        PolicyDaemon {
            socket,
            stop: Some(stop),
            runtime,
            _dir: dir,
        }
    }

    /// Its socket, for `scanbindctl --socket`.
    pub fn socket(&self) -> &str {
        self.socket.to_str().unwrap()
    }
}

impl Drop for PolicyDaemon {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = &self.runtime;
    }
}
