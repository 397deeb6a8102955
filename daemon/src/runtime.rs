//! Starting and running the daemon: [`Daemon::start`] opens the journal, loads (or
//! creates) the device key, registers with the server, opens the event stream, serves
//! every object and only then takes the bus name; [`Daemon::run_until`] dispatches
//! server events to the objects until the shutdown future completes.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use scanbind_device_api::DeviceKey;
use scanbind_device_api::types::{Binding, BindingStatus, Event};
use scanbind_ipc::types::Connectivity;
use scanbind_ipc::{BUS_NAME, BindingState, DAEMON_PATH, Error as Wire, ErrorInfo};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zbus::{Connection, DBusError};
use zeroize::Zeroizing;

use crate::dbus::agent::AgentManagerObj;
use crate::dbus::binding::BindingObj;
use crate::dbus::daemon::{DaemonObj, payment_object};
use crate::dbus::manager::{Access, ManagerObj};
use crate::dbus::{Bus, serve_binding};
use crate::domain::binding::settle_binding;
use crate::domain::driver::{execute_payment, settle_checkout, settle_payment, transition_for};
use crate::domain::model::BindingRecord;
use crate::domain::refund::{resend_refund, settle_refund};
use crate::domain::shared::Shared;
use crate::domain::subscription;
use crate::error::{Error, Result};
use crate::link::{self, LinkEvent, ServerLink};
use crate::store::journal::Journal;
use crate::store::vault::{SecretKind, Vault, VaultChoice};
use crate::sync::lock;
use scanbind_ipc::types::keys::subscription_changed as sc;

/// How long after it became final a payment is served again at start without being
/// asked for (a day): an app that was following it when the daemon went away finds it.
const SERVE_SETTLED_FOR_SECS: i64 = 24 * 60 * 60;

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
    /// The system bus (single-user TVs and consoles; needs the bus policy in
    /// `packaging/`).
    System,
    /// A bus at this D-Bus address (`unix:path=...`).
    Address(String),
    /// No bus: only the peer-to-peer socket ([`Config::p2p_socket`]).
    None,
}

/// How to run the daemon.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The bus to serve on.
    pub bus: BusChoice,
    /// Also serve the same interfaces on this Unix socket, one peer-to-peer D-Bus
    /// connection per client (for systems without a bus).
    pub p2p_socket: Option<PathBuf>,
    /// The merchant server's base URL.
    pub server_url: String,
    /// The journal database file.
    pub journal_path: PathBuf,
    /// The name this device shows on the wallet page.
    pub device_name: String,
    /// Where the secrets (device key, sealed tokens, parent PIN hash) are kept: the
    /// session's Secret Service (the default) or the daemon's own encrypted file vault
    /// (`VaultChoice::File { dir, master_secret }`).
    pub vault: VaultChoice,
    /// The keyring service name the secrets are stored under in the Secret Service
    /// (default: the bus name; tests use one per daemon). Unused by the file vault.
    pub vault_service: String,
    /// Exit after this long without app calls, when nothing is in flight (no pending
    /// binding or payment, no peer-to-peer client). `None`: never.
    pub idle_exit: Option<Duration>,
    /// The per-app payment policy file (`docs/policy.md`); `None` or a missing file:
    /// every app may pay.
    pub policy_file: Option<PathBuf>,
    /// Where the answers to the consent prompt are kept, per (uid, app id): the
    /// daemon's own file (`docs/policy.md`, "Consents"; a system daemon's
    /// `<state dir>/consents.toml`). `None`: in the policy file, for the daemon's own
    /// user only (a session daemon).
    pub consents_file: Option<PathBuf>,
    /// The provisioning token the server asks for when it does not accept open
    /// registration (`devices.registration = "token"`). Redacted in `Debug`.
    pub provisioning_token: Option<scanbind_money::SecretString>,
    /// A missing policy file refuses every payment (fail closed) instead of letting
    /// every app pay: `scanbindd` sets it for a path configured explicitly and in
    /// system mode (`docs/policy.md`). Default: `false`.
    pub policy_required: bool,
    /// Where policy changes made through `io.scanbind.Manager1` are written when the
    /// daemon must not write `policy_file` itself (system mode: `<state dir>/policy.toml`,
    /// which is then the policy in effect). `None`: into `policy_file`.
    pub managed_policy_file: Option<PathBuf>,
    /// System mode: the group whose members may call `io.scanbind.Manager1` where
    /// polkit does not run (`admin_group`, default `scanbind-admin`). Unused in session
    /// mode (the daemon's own user manages it).
    pub admin_group: Option<String>,
    /// System mode (`scanbindd --system`; the default when `bus` is
    /// [`BusChoice::System`]): the policy file is honoured only while it is root's
    /// ([`crate::settings::check_root_policy`]; otherwise every payment is refused), and
    /// the members of the `scanbind-agent` group may register a display agent.
    pub system: bool,
}

impl Config {
    /// A configuration with the default device name.
    pub fn new(bus: BusChoice, server_url: String, journal_path: PathBuf) -> Config {
        Config {
            system: bus == BusChoice::System,
            bus,
            p2p_socket: None,
            server_url,
            journal_path,
            device_name: "scanbind device".to_owned(),
            vault: VaultChoice::SecretService,
            vault_service: BUS_NAME.to_owned(),
            idle_exit: None,
            provisioning_token: None,
            policy_file: None,
            consents_file: None,
            policy_required: false,
            managed_policy_file: None,
            admin_group: None,
        }
    }
}

/// A started daemon: it owns its bus name.
#[derive(Debug)]
pub struct Daemon {
    shared: Arc<Shared>,
    bus: Arc<Bus>,
    events: JoinHandle<()>,
    rx: mpsc::Receiver<LinkEvent>,
    listener: Option<JoinHandle<()>>,
    p2p_path: Option<PathBuf>,
    idle_exit: Option<Duration>,
    // Kept so the bus connection (and the name) lives as long as the daemon.
    _bus: Option<Connection>,
}

impl Daemon {
    /// Starts the daemon (see the module docs). When this returns, the bus name is
    /// owned and every object is served.
    pub async fn start(config: Config) -> Result<Daemon> {
        let journal_path = config.journal_path.clone();
        let journal = tokio::task::spawn_blocking(move || Journal::open(&journal_path))
            .await
            .map_err(Error::Task)??;
        let vault = Vault::open(&config.vault, &config.vault_service).await?;
        let key = load_or_create_key(&vault).await?;
        let link = ServerLink::new(
            &config.server_url,
            key,
            config
                .provisioning_token
                .as_ref()
                .map(|t| t.expose().to_owned()),
        )?;
        let bus = Arc::new(Bus::default());
        let access = Arc::new(Access {
            system: config.system,
            admin_group: config.admin_group.clone().filter(|g| !g.is_empty()),
            own_uid: crate::store::journal::own_uid(),
        });
        let shared = Arc::new(Shared::new(
            journal,
            vault,
            link.clone(),
            config.device_name.clone(),
            crate::policy::PolicySource::new(config.policy_file.clone())
                .with_consents(
                    config.consents_file.clone(),
                    crate::store::journal::own_uid(),
                )
                .required(config.policy_required)
                .with_managed(
                    config.managed_policy_file.clone(),
                    crate::settings::check_managed_policy,
                ),
            Arc::clone(&bus) as _,
            Arc::clone(&bus) as _,
        ));
        if config.system {
            system_mode(&shared, &bus);
        }
        // Online at start: registered, stream open, bindings restored before the name
        // is taken. Unreachable: serve anyway (`Connectivity` offline; new payments
        // fail with `Offline`) and bring the link up in the background.
        let online = match bring_up(&shared).await {
            Ok(up) => Some(up),
            Err(Error::ServerUnreachable(e)) => {
                tracing::warn!(cause = %e, "the merchant server is unreachable; starting offline");
                *lock(&shared.connectivity) = Connectivity::Offline;
                None
            }
            Err(e) => return Err(e),
        };
        let restored_bindings: Vec<(zvariant::OwnedObjectPath, String, Binding)> = online
            .as_ref()
            .map(|(_, restored)| restored.clone())
            .unwrap_or_default();
        // Open payments (a crash or a transport error cut them off) are served again
        // and re-driven once the link is up; unfinished ones and those settled in the
        // last day are served again too, so the path an app holds keeps answering.
        let since = link::unix_now().saturating_sub(SERVE_SETTLED_FOR_SECS);
        let open = shared.journal(move |j| j.entries_to_serve(since)).await?;

        let builder = match &config.bus {
            BusChoice::Session => Some(zbus::connection::Builder::session()?),
            BusChoice::System => Some(zbus::connection::Builder::system()?),
            BusChoice::Address(a) => Some(zbus::connection::Builder::address(a.as_str())?),
            BusChoice::None => None,
        };
        let bus_conn = match builder {
            Some(builder) => {
                let mut builder = builder.name(BUS_NAME)?.serve_at(
                    DAEMON_PATH,
                    DaemonObj {
                        shared: Arc::clone(&shared),
                        bus: Arc::clone(&bus),
                    },
                )?;
                builder = builder.serve_at(
                    DAEMON_PATH,
                    AgentManagerObj {
                        shared: Arc::clone(&shared),
                        bus: Arc::clone(&bus),
                    },
                )?;
                builder = builder.serve_at(
                    scanbind_ipc::MANAGER_PATH,
                    ManagerObj {
                        shared: Arc::clone(&shared),
                        access: Arc::clone(&access),
                    },
                )?;
                for (path, id, _) in &restored_bindings {
                    builder = builder.serve_at(
                        path.clone(),
                        BindingObj {
                            shared: Arc::clone(&shared),
                            binding_id: id.clone(),
                        },
                    )?;
                }
                for entry in &open {
                    let (path, obj) = payment_object(&shared, &bus, entry.clone());
                    builder = builder.serve_at(path, obj)?;
                }
                let connection = builder.build().await.map_err(|e| match e {
                    zbus::Error::NameTaken => Error::NameTaken(BUS_NAME.to_owned()),
                    other => Error::Bus(other),
                })?;
                let served = open.iter().map(|e| {
                    (
                        scanbind_ipc::paths::payment_path(e.id.unsigned_abs()).to_string(),
                        e.owner(),
                    )
                });
                bus.add_connection(&shared, connection.clone(), served)
                    .await?;
                Some(connection)
            }
            None => None,
        };
        let listener = match &config.p2p_socket {
            Some(path) => Some(
                crate::dbus::p2p::listen(
                    Arc::clone(&shared),
                    Arc::clone(&bus),
                    Arc::clone(&access),
                    path,
                )
                .await?,
            ),
            None => None,
        };

        let (tx, rx) = mpsc::channel(64);
        let events = match online {
            Some((first, restored)) => {
                after_online(&shared, &bus, &restored, false).await?;
                tokio::spawn(link::run_events(link, first, tx))
            }
            None => {
                let (shared, bus) = (Arc::clone(&shared), Arc::clone(&bus));
                tokio::spawn(async move {
                    let mut attempt = 0_u32;
                    let first = loop {
                        let wait = link::backoff(attempt, 0);
                        attempt = attempt.saturating_add(1);
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            () = tx.closed() => return,
                        }
                        match bring_up(&shared).await {
                            Ok((first, restored)) => {
                                if let Err(e) = after_online(&shared, &bus, &restored, true).await {
                                    tracing::error!(cause = %e, "serving the restored bindings failed");
                                }
                                break first;
                            }
                            Err(e) => {
                                tracing::debug!(cause = %e, attempt, "the merchant server is still unreachable");
                            }
                        }
                    };
                    tracing::info!("the merchant server is reachable again");
                    if tx.send(LinkEvent::Online).await.is_err() {
                        return;
                    }
                    link::run_events(link, first, tx).await;
                })
            }
        };
        Ok(Daemon {
            shared,
            events,
            rx,
            listener,
            p2p_path: config.p2p_socket.clone(),
            idle_exit: config.idle_exit,
            bus,
            _bus: bus_conn,
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
            let idle = idle_deadline(&self.shared, self.idle_exit);
            let ev = tokio::select! {
                () = &mut shutdown => break,
                () = sleep_until_opt(idle) => {
                    if self.is_idle() {
                        tracing::info!("idle: exiting (D-Bus activation starts the daemon again)");
                        break;
                    }
                    // Busy: look again one idle period from now.
                    self.shared.touch();
                    continue;
                }
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
        if let Some(l) = self.listener.take() {
            l.abort();
        }
        if let Some(p) = &self.p2p_path {
            let _ = std::fs::remove_file(p);
        }
        tracing::info!("scanbindd stopped");
        Ok(())
    }

    /// Whether nothing is in flight: no pending binding, no open payment, no
    /// peer-to-peer client, and no call for the idle period.
    fn is_idle(&self) -> bool {
        let Some(idle) = self.idle_exit else {
            return false;
        };
        if lock(&self.shared.last_call).elapsed() < idle {
            return false;
        }
        let pending_binding = lock(&self.shared.bindings)
            .values()
            .any(|b| b.state == BindingState::Pending);
        let busy = self.shared.busy.load(std::sync::atomic::Ordering::SeqCst);
        let p2p_clients = self.bus.connection_count() > usize::from(self._bus.is_some());
        // A registered display agent keeps the daemon up: exiting under it would leave
        // the next prompt without an agent until it registers again.
        let agent = self.bus.agents.is_registered();
        !pending_binding && busy == 0 && !p2p_clients && !agent
    }

    async fn set_connectivity(&self, c: Connectivity) -> Result<()> {
        *lock(&self.shared.connectivity) = c;
        self.bus.connectivity_changed().await
    }

    async fn dispatch(&self, ev: LinkEvent) -> Result<()> {
        let envelope = match ev {
            LinkEvent::Online => {
                self.set_connectivity(Connectivity::Online).await?;
                // The link was down: a payment whose request died with it never reached
                // the server and will get no event. Re-drive every open entry with its
                // same app order id (the server answers idempotently).
                redrive_open_payments(&self.shared).await?;
                return Ok(());
            }
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
                self.settle_binding(&b.binding_id, BindingState::Failed, Some(info), None)
                    .await
            }
            Event::BindingExpired(b) => {
                let info = error_info(&Wire::Expired(String::new()), "the QR code expired".into());
                self.settle_binding(&b.binding_id, BindingState::Expired, Some(info), None)
                    .await
            }
            Event::TokenCancelled(b) => {
                crate::domain::refresh::cancel(&self.shared, &b.binding_id);
                self.shared
                    .vault
                    .delete(&SecretKind::SealedTokens {
                        binding_id: b.binding_id.clone(),
                    })
                    .await?;
                self.settle_binding(
                    &b.binding_id,
                    BindingState::Unbound,
                    None,
                    Some("token-canceled"),
                )
                .await
            }
            Event::TokenRefreshed(b) => {
                self.store_tokens(&b).await?;
                crate::domain::refresh::schedule(&self.shared, &b);
                Ok(())
            }
            Event::PaymentResult(p) => {
                let (app, order) = (p.app_id.clone(), p.app_order_id.clone());
                let entry = self
                    .shared
                    .journal(move |j| j.find_for_server(&app, &order))
                    .await?;
                match entry {
                    Some(e) if !e.state.is_terminal() => {
                        let (id, sid) = (e.id, p.payment_id.clone());
                        self.shared
                            .journal(move |j| j.set_server_payment_id(id, &sid))
                            .await?;
                        settle_payment(&self.shared, e.id, transition_for(&p)).await
                    }
                    _ => Ok(()),
                }
            }
            Event::RefundResult(r) => settle_refund(&self.shared, &r.refund_id, r.status).await,
            Event::CheckoutResult(c) => {
                let (app, order) = (c.app_id.clone(), c.app_order_id.clone());
                let entry = self
                    .shared
                    .journal(move |j| j.find_for_server(&app, &order))
                    .await?;
                match entry {
                    Some(e) if e.checkout.is_some() && !e.state.is_terminal() => {
                        settle_checkout(&self.shared, e.id, &c).await
                    }
                    _ => Ok(()),
                }
            }
            Event::SubscriptionRenewed(s) => {
                subscription::changed(&self.shared, &s, sc::RENEWED).await
            }
            Event::SubscriptionRenewalFailed(s) => {
                subscription::changed(&self.shared, &s, sc::RENEWAL_FAILED).await
            }
            Event::SubscriptionGrace(s) => subscription::changed(&self.shared, &s, sc::GRACE).await,
            Event::SubscriptionExpired(s) => {
                subscription::changed(&self.shared, &s, sc::EXPIRED).await
            }
            Event::SubscriptionCancelled(s) => {
                subscription::changed(&self.shared, &s, sc::CANCELLED).await
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
        crate::domain::refresh::schedule(&self.shared, &b);
        let known = lock(&self.shared.bindings).contains_key(&b.binding_id);
        let kind = SecretKind::SealedTokens {
            binding_id: b.binding_id.clone(),
        };
        if !known && self.shared.vault.read(&kind).await?.is_some() {
            // Started by an earlier run (the daemon restarted while the user was
            // scanning): adopt it at its stable path, as a restart would have.
            let path = adopt_bound(&self.shared, &b);
            serve_binding(&self.bus, &self.shared, &path, &b.binding_id).await?;
            tracing::info!(binding = %path, "binding completed (started before this run)");
            return Ok(());
        }
        // Once bound, the label is the wallet's masked account (docs: `Label`), not the
        // text the app gave to `StartBinding`.
        if let Some(login) = b.user_login_id.as_ref().filter(|l| !l.is_empty())
            && let Some(record) = lock(&self.shared.bindings).get_mut(&b.binding_id)
        {
            record.label = login.clone();
        }
        self.settle_binding(&b.binding_id, BindingState::Bound, None, None)
            .await
    }

    async fn settle_binding(
        &self,
        binding_id: &str,
        state: BindingState,
        error: Option<ErrorInfo>,
        removed: Option<&str>,
    ) -> Result<()> {
        settle_binding(&self.shared, binding_id, state, error, removed)
            .await
            .map(|_| ())
    }
}

fn error_info(kind: &Wire, message: String) -> ErrorInfo {
    ErrorInfo {
        name: kind.name().to_string(),
        message,
    }
}

/// System mode: the policy file must be root's (checked before every read), and the
/// `scanbind-agent` group's members may register a display agent.
fn system_mode(shared: &Shared, bus: &Bus) {
    shared.policy.set_guard(crate::settings::check_root_policy);
    // Checked (and logged) now, not only at the first payment.
    if let Err(e) = shared.policy.current() {
        tracing::error!(cause = %e, "system mode: the payment policy is refused");
    }
    bus.agents.trust_group(scanbind_ipc::accounts::AGENT_GROUP);
    if let Some(path) = shared.policy.path() {
        tracing::info!(policy = %path.display(), "system mode: the payment policy in effect");
    }
    tracing::info!(
        group = scanbind_ipc::accounts::AGENT_GROUP,
        "system mode: the policy file must be root's; display agents of the group's members are trusted"
    );
}

/// The device key from the vault, or a new one stored there first.
async fn load_or_create_key(vault: &Vault) -> Result<DeviceKey> {
    if let Some(secret) = vault.read(&SecretKind::DeviceKey).await? {
        return DeviceKey::from_pkcs8(secret.expose()).map_err(Error::DeviceKey);
    }
    let key = DeviceKey::generate().map_err(Error::DeviceKey)?;
    vault.store(&SecretKind::DeviceKey, key.to_pkcs8()).await?;
    tracing::info!(vault = vault.describe(), "created a new device key");
    Ok(key)
}

/// The active bindings the server knows for this device whose tokens are in the vault
/// (a blob still held by the server is fetched and stored first), as objects to serve.
async fn restore_bindings(
    shared: &Shared,
) -> Result<Vec<(zvariant::OwnedObjectPath, String, Binding)>> {
    let mut out = Vec::new();
    for b in shared.link.bindings().await? {
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
        let path = adopt_bound(shared, &b);
        out.push((path, b.binding_id.clone(), b));
    }
    Ok(out)
}

/// Records a binding the server reports bound as `bound` in this run, at its stable
/// path; returns the path (the caller serves the object).
fn adopt_bound(shared: &Shared, b: &Binding) -> zvariant::OwnedObjectPath {
    let path = scanbind_ipc::paths::binding_path(&b.wallet, &b.binding_id);
    lock(&shared.bindings).insert(
        b.binding_id.clone(),
        BindingRecord {
            path: path.clone(),
            wallet: b.wallet.clone(),
            label: b.user_login_id.clone().unwrap_or_default(),
            state: BindingState::Bound,
            code_value: String::new(),
            match_code: String::new(),
            expires_at: 0,
            last_error: ErrorInfo::default(),
            starter: None,
        },
    );
    path
}

/// Registers the device, opens the event stream (before listing the bindings, so
/// nothing is missed) and restores the bindings.
async fn bring_up(
    shared: &Shared,
) -> Result<(
    link::EventStream,
    Vec<(zvariant::OwnedObjectPath, String, Binding)>,
)> {
    shared
        .link
        .register(&shared.device_name, "scanbindd")
        .await?;
    tracing::info!(device = %shared.link.device_id(), "registered with the merchant server");
    let first = shared.link.events(None).await?;
    let restored = restore_bindings(shared).await?;
    Ok((first, restored))
}

/// Once the link is up: serve restored bindings (when they were not served at start),
/// set their refresh timers, send pending refunds again and re-drive open payments.
async fn after_online(
    shared: &Arc<Shared>,
    bus: &Bus,
    restored: &[(zvariant::OwnedObjectPath, String, Binding)],
    serve: bool,
) -> Result<()> {
    for (path, id, b) in restored {
        if serve {
            serve_binding(bus, shared, path, id).await?;
        }
        crate::domain::refresh::schedule(shared, b);
    }
    for r in shared.journal(|j| j.pending_refunds()).await? {
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            if let Err(e) = resend_refund(&shared, r).await {
                tracing::warn!(cause = %e, "a pending refund could not be sent again yet");
            }
        });
    }
    // Coming online later (`serve`): the `Online` event that follows re-drives them.
    if serve {
        return Ok(());
    }
    redrive_open_payments(shared).await
}

/// Re-drives every open journal entry (`pending`, `sent`, `pending-unknown`).
async fn redrive_open_payments(shared: &Arc<Shared>) -> Result<()> {
    let open = shared.journal(|j| j.open_entries()).await?;
    if !open.is_empty() {
        tracing::info!(count = open.len(), "reconciling open payments");
    }
    for e in open {
        let (shared, id) = (Arc::clone(shared), e.id);
        tokio::spawn(async move {
            if let Err(e) = execute_payment(&shared, id).await {
                tracing::error!(payment = id, cause = %e, "open payment could not be settled");
            }
        });
    }
    Ok(())
}

/// When the idle timer must next look, if idle exit is on.
fn idle_deadline(shared: &Shared, idle: Option<Duration>) -> Option<tokio::time::Instant> {
    let idle = idle?;
    let last = *lock(&shared.last_call);
    Some(tokio::time::Instant::from_std(last + idle))
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
