//! Starting and running the daemon: [`Daemon::start`] opens the journal, loads (or
//! creates) the device key, registers with the server, opens the event stream, serves
//! every object and only then takes the bus name; [`Daemon::run_until`] dispatches
//! server events to the objects until the shutdown future completes.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use scanbind_device_api::DeviceKey;
use scanbind_device_api::types::{Binding, BindingStatus, Event};
use scanbind_ipc::types::Connectivity;
use scanbind_ipc::{BUS_NAME, BindingState, DAEMON_PATH, Error as Wire, ErrorInfo};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zbus::{Connection, DBusError};
use zeroize::Zeroizing;

use crate::binding::BindingObj;
use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::server::{self, LinkEvent, ServerLink};
use crate::service::{
    BindingRecord, DaemonObj, Shared, execute_payment, lock, payment_object, settle_payment,
    transition_for,
};
use crate::vault::{SecretKind, Vault};

/// The default journal file: `$XDG_STATE_HOME/scanbind/journal.sqlite3` (or under
/// `$HOME/.local/state`); `None` without either variable.
pub fn default_journal_path() -> Option<PathBuf> {
    Journal::default_path()
}

/// Which bus the daemon serves on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusChoice {
    /// The session bus (`DBUS_SESSION_BUS_ADDRESS`).
    Session,
    /// A bus at this D-Bus address (`unix:path=...`).
    Address(String),
}

/// How to run the daemon.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The bus to serve on.
    pub bus: BusChoice,
    /// The merchant server's base URL.
    pub server_url: String,
    /// The journal database file.
    pub journal_path: PathBuf,
    /// The name this device shows on the wallet page.
    pub device_name: String,
    /// The keyring service name the secrets are stored under (default: the bus name;
    /// tests use one per daemon).
    pub vault_service: String,
}

impl Config {
    /// A configuration with the default device name.
    pub fn new(bus: BusChoice, server_url: String, journal_path: PathBuf) -> Config {
        Config {
            bus,
            server_url,
            journal_path,
            device_name: "scanbind device".to_owned(),
            vault_service: BUS_NAME.to_owned(),
        }
    }
}

/// A started daemon: it owns its bus name.
#[derive(Debug)]
pub struct Daemon {
    connection: Connection,
    shared: Arc<Shared>,
    events: JoinHandle<()>,
    rx: mpsc::Receiver<LinkEvent>,
}

impl Daemon {
    /// Starts the daemon (see the module docs). When this returns, the bus name is
    /// owned and every object is served.
    pub async fn start(config: Config) -> Result<Daemon> {
        let journal_path = config.journal_path.clone();
        let journal = tokio::task::spawn_blocking(move || Journal::open(&journal_path))
            .await
            .map_err(Error::Task)??;
        let vault = Vault::with_service(config.vault_service.clone());
        let key = load_or_create_key(&vault).await?;
        let link = ServerLink::new(&config.server_url, key)?;
        link.register(&config.device_name, "scanbindd").await?;
        tracing::info!(device = %link.device_id(), "registered with the merchant server");
        // The stream is open before the bindings are listed, so nothing is missed.
        let first = link.events(None).await?;
        let shared = Arc::new(Shared::new(
            journal,
            vault,
            link.clone(),
            config.device_name.clone(),
        ));
        let restored = restore_bindings(&shared).await?;
        // Open payments (a crash or a transport error cut them off) are served again
        // and re-driven once the name is owned.
        let open = shared.journal(|j| j.open_entries()).await?;

        let builder = match &config.bus {
            BusChoice::Session => zbus::connection::Builder::session()?,
            BusChoice::Address(a) => zbus::connection::Builder::address(a.as_str())?,
        };
        let mut builder = builder.name(BUS_NAME)?.serve_at(
            DAEMON_PATH,
            DaemonObj {
                shared: Arc::clone(&shared),
            },
        )?;
        for (path, obj) in restored {
            builder = builder.serve_at(path, obj)?;
        }
        let open_ids: Vec<i64> = open.iter().map(|e| e.id).collect();
        for entry in open {
            let (path, obj) = payment_object(&shared, entry);
            builder = builder.serve_at(path, obj)?;
        }
        let connection = builder.build().await.map_err(|e| match e {
            zbus::Error::NameTaken => Error::NameTaken(BUS_NAME.to_owned()),
            other => Error::Bus(other),
        })?;

        let (tx, rx) = mpsc::channel(64);
        let events = tokio::spawn(server::run_events(link, first, tx));
        if !open_ids.is_empty() {
            tracing::info!(count = open_ids.len(), "reconciling open payments");
        }
        for id in open_ids {
            let (shared, conn) = (Arc::clone(&shared), connection.clone());
            tokio::spawn(async move {
                if let Err(e) = execute_payment(&shared, &conn, id).await {
                    tracing::error!(payment = id, cause = %e, "open payment could not be settled");
                }
            });
        }
        Ok(Daemon {
            connection,
            shared,
            events,
            rx,
        })
    }

    /// The well-known name the daemon owns.
    pub fn bus_name(&self) -> &'static str {
        BUS_NAME
    }

    /// Dispatches server events until `shutdown` completes or the event task ends.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        loop {
            let ev = tokio::select! {
                () = &mut shutdown => break,
                ev = self.rx.recv() => ev,
            };
            let Some(ev) = ev else { break };
            if let Err(e) = self.dispatch(ev).await {
                tracing::error!(cause = %e, "handling a server event failed");
            }
        }
        // Dropping the receiver ends the event task; in-flight payments stay in the
        // journal (`sent`) for reconciliation.
        drop(self.rx);
        self.events.abort();
        tracing::info!("scanbindd stopped");
        Ok(())
    }

    async fn set_connectivity(&self, c: Connectivity) -> Result<()> {
        *lock(&self.shared.connectivity) = c;
        let iface = self
            .connection
            .object_server()
            .interface::<_, DaemonObj>(DAEMON_PATH)
            .await?;
        iface
            .get()
            .await
            .connectivity_changed(iface.signal_emitter())
            .await?;
        Ok(())
    }

    async fn dispatch(&self, ev: LinkEvent) -> Result<()> {
        let envelope = match ev {
            LinkEvent::Online => return self.set_connectivity(Connectivity::Online).await,
            LinkEvent::Connecting => {
                return self.set_connectivity(Connectivity::Connecting).await;
            }
            LinkEvent::Event(e) => e,
        };
        tracing::debug!(
            seq = envelope.seq,
            kind = envelope.event.kind(),
            "server event"
        );
        match envelope.event {
            Event::BindingCompleted(b) => self.binding_bound(b).await,
            Event::BindingFailed(b) => {
                let msg = b.reason.clone().unwrap_or_else(|| "binding failed".into());
                let info = error_info(&Wire::Denied(String::new()), msg);
                self.settle_binding(&b.binding_id, BindingState::Failed, Some(info))
                    .await
            }
            Event::BindingExpired(b) => {
                let info = error_info(&Wire::Expired(String::new()), "the QR code expired".into());
                self.settle_binding(&b.binding_id, BindingState::Expired, Some(info))
                    .await
            }
            Event::TokenCancelled(b) => {
                self.shared
                    .vault
                    .delete(&SecretKind::SealedTokens {
                        binding_id: b.binding_id.clone(),
                    })
                    .await?;
                self.settle_binding(&b.binding_id, BindingState::Unbound, None)
                    .await?;
                let path = lock(&self.shared.bindings)
                    .get(&b.binding_id)
                    .map(|r| r.path.clone());
                if let Some(path) = path {
                    let emitter =
                        zbus::object_server::SignalEmitter::new(&self.connection, DAEMON_PATH)?;
                    DaemonObj::binding_removed(&emitter, path.as_ref(), "token-canceled").await?;
                }
                Ok(())
            }
            Event::TokenRefreshed(b) => self.store_tokens(&b).await,
            Event::PaymentResult(p) => {
                let (app, order) = (p.app_id.clone(), p.app_order_id.clone());
                let entry = self.shared.journal(move |j| j.find(&app, &order)).await?;
                match entry {
                    Some(e) if !e.state.is_terminal() => {
                        settle_payment(&self.shared, &self.connection, e.id, transition_for(&p))
                            .await
                    }
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    async fn store_tokens(&self, b: &Binding) -> Result<()> {
        if let Some(sealed) = &b.sealed_tokens {
            let sealed = Zeroizing::new(sealed.clone());
            self.shared
                .vault
                .store(
                    &SecretKind::SealedTokens {
                        binding_id: b.binding_id.clone(),
                    },
                    sealed.as_bytes(),
                )
                .await?;
        }
        Ok(())
    }

    async fn binding_bound(&self, b: Binding) -> Result<()> {
        // Tokens first: a `bound` binding can always pay.
        self.store_tokens(&b).await?;
        self.settle_binding(&b.binding_id, BindingState::Bound, None)
            .await
    }

    async fn settle_binding(
        &self,
        binding_id: &str,
        state: BindingState,
        error: Option<ErrorInfo>,
    ) -> Result<()> {
        let path = {
            let mut bindings = lock(&self.shared.bindings);
            let Some(record) = bindings.get_mut(binding_id) else {
                tracing::debug!("event for a binding this run did not start");
                return Ok(());
            };
            record.state = state;
            record.path.clone()
        };
        let iface = self
            .connection
            .object_server()
            .interface::<_, BindingObj>(&path)
            .await?;
        let changed = iface.get_mut().await.settle(state, error);
        if changed {
            let obj = iface.get().await;
            let emitter = iface.signal_emitter();
            obj.state_changed(emitter).await?;
            obj.code_value_changed(emitter).await?;
            obj.last_error_changed(emitter).await?;
            BindingObj::completed(emitter, state.as_str(), obj.completed_details()).await?;
            tracing::info!(binding = %path, state = state.as_str(), "binding completed");
        }
        Ok(())
    }
}

fn error_info(kind: &Wire, message: String) -> ErrorInfo {
    ErrorInfo {
        name: kind.name().to_string(),
        message,
    }
}

/// The device key from the vault, or a new one stored there first.
async fn load_or_create_key(vault: &Vault) -> Result<DeviceKey> {
    if let Some(secret) = vault.read(&SecretKind::DeviceKey).await? {
        return DeviceKey::from_pkcs8(secret.expose()).map_err(Error::DeviceKey);
    }
    let key = DeviceKey::generate().map_err(Error::DeviceKey)?;
    vault.store(&SecretKind::DeviceKey, key.to_pkcs8()).await?;
    tracing::info!("created a new device key in the OS keyring");
    Ok(key)
}

/// The active bindings the server knows for this device whose tokens are in the vault
/// (a blob still held by the server is fetched and stored first), as objects to serve.
async fn restore_bindings(shared: &Shared) -> Result<Vec<(zvariant::OwnedObjectPath, BindingObj)>> {
    let mut out = Vec::new();
    for b in shared.server.bindings().await? {
        if b.status != BindingStatus::Active {
            continue;
        }
        let kind = SecretKind::SealedTokens {
            binding_id: b.binding_id.clone(),
        };
        if let Some(sealed) = &b.sealed_tokens {
            let sealed = Zeroizing::new(sealed.clone());
            shared.vault.store(&kind, sealed.as_bytes()).await?;
        } else if shared.vault.read(&kind).await?.is_none() {
            continue;
        }
        let path = shared.next_binding_path(&b.wallet);
        let label = b.user_login_id.clone().unwrap_or_default();
        lock(&shared.bindings).insert(
            b.binding_id.clone(),
            BindingRecord {
                path: path.clone(),
                wallet: b.wallet.clone(),
                label: label.clone(),
                state: BindingState::Bound,
            },
        );
        out.push((
            path,
            BindingObj {
                wallet: b.wallet,
                label,
                state: BindingState::Bound,
                code_value: String::new(),
                match_code: String::new(),
                expires_at: 0,
                last_error: ErrorInfo::default(),
            },
        ));
    }
    Ok(out)
}
