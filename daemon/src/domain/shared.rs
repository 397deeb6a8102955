//! The state shared by every object and task of one daemon ([`Shared`]), and the
//! crash points of the kill -9 tests.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use scanbind_ipc::DAEMON_PATH;
use scanbind_ipc::types::Connectivity;
use zvariant::OwnedObjectPath;

use super::model::BindingRecord;
use super::ports::{Prompter, Publisher};
use crate::error::{Error, Result};
use crate::link::ServerLink;
use crate::store::journal::Journal;
use crate::store::vault::Vault;
use crate::sync::lock;

/// State shared by every object and task of one daemon.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The journal. A std mutex, locked only inside `spawn_blocking` (every write
    /// waits for an fsync), never across an `.await`.
    journal: Arc<Mutex<Journal>>,
    pub(crate) vault: Vault,
    /// The merchant server's client.
    pub(crate) link: ServerLink,
    /// The link to the server, written by the event task. A std mutex: held for a
    /// copy only.
    pub(crate) connectivity: Mutex<Connectivity>,
    /// Bindings by the server's binding id. A std mutex: held for lookups and
    /// inserts only, never across an `.await`.
    pub(crate) bindings: Mutex<HashMap<String, BindingRecord>>,
    pub(crate) device_name: String,
    /// The token refresh timer of each bound binding (`refresh`). A std mutex: held
    /// for one insert or removal.
    pub(crate) refreshers: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    /// When an app last called the daemon (for `--idle-exit`).
    pub(crate) last_call: Mutex<Instant>,
    /// Payments being driven right now (the daemon is not idle while one is).
    pub(crate) busy: AtomicUsize,
    /// The per-app payment policy (re-read when its file changes).
    pub(crate) policy: crate::policy::PolicySource,
    /// Payments being driven by a task right now (one driver per payment). A std
    /// mutex: held for an insert or a removal.
    pub(crate) driving: Mutex<HashSet<i64>>,
    /// Announces committed changes to apps (the D-Bus layer's objects and signals).
    pub(crate) publisher: Arc<dyn Publisher>,
    /// Shows and asks on the trusted display (the D-Bus layer's display agent).
    pub(crate) prompter: Arc<dyn Prompter>,
    /// What each app may still put on the display (prompts, binding QR codes).
    pub(crate) limits: super::limits::Limits,
}

/// A crash point for the kill -9 tests (feature `test-util` only): when
/// `SCANBINDD_CRASH_AT` names this point, the process sends itself `SIGKILL` here:
/// exactly `kill -9`, without unwinding, flushing or a core dump (an abort could wait
/// on the system's core dump handler).
pub(crate) fn crash_point(name: &str) {
    #[cfg(feature = "test-util")]
    if std::env::var("SCANBINDD_CRASH_AT").is_ok_and(|v| v == name) {
        eprintln!("scanbindd: crash point {name}");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
    #[cfg(not(feature = "test-util"))]
    let _ = name;
}

impl Shared {
    pub(crate) fn new(
        journal: Journal,
        vault: Vault,
        link: ServerLink,
        device_name: String,
        policy: crate::policy::PolicySource,
        publisher: Arc<dyn Publisher>,
        prompter: Arc<dyn Prompter>,
    ) -> Shared {
        Shared {
            journal: Arc::new(Mutex::new(journal)),
            vault,
            link,
            connectivity: Mutex::new(Connectivity::Online),
            bindings: Mutex::new(HashMap::new()),
            device_name,
            refreshers: Mutex::new(HashMap::new()),
            last_call: Mutex::new(Instant::now()),
            busy: AtomicUsize::new(0),
            policy,
            driving: Mutex::new(HashSet::new()),
            publisher,
            prompter,
            limits: super::limits::Limits::default(),
        }
    }

    /// Notes an app's call (resets the idle timer).
    pub(crate) fn touch(&self) {
        *lock(&self.last_call) = Instant::now();
    }

    /// Runs `f` on the journal on the blocking pool.
    pub(crate) async fn journal<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Journal) -> Result<T> + Send + 'static,
    {
        let journal = Arc::clone(&self.journal);
        tokio::task::spawn_blocking(move || f(&mut lock(&journal)))
            .await
            .map_err(Error::Task)?
    }

    /// The path of a binding's object (the entry point's path for an order code, which
    /// has none).
    pub(crate) fn binding_path_of(&self, binding_id: &str) -> OwnedObjectPath {
        lock(&self.bindings)
            .get(binding_id)
            .map(|b| b.path.clone())
            .unwrap_or_else(|| {
                OwnedObjectPath::try_from(DAEMON_PATH).expect("DAEMON_PATH is a valid path")
            })
    }
}
