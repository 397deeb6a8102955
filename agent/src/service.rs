//! The D-Bus side: `io.scanbind.Agent1` served at the agent's path, the registration
//! with `io.scanbind.AgentManager1`, re-registration when the daemon comes back, and
//! the user's [`Action`]s. It talks to the UI only through a [`UiHandle`].

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use futures_util::StreamExt;
use scanbind_ipc::agent_guard::DaemonGuard;
use scanbind_ipc::{AgentManager1Proxy, BUS_NAME, Daemon1Proxy};
use tokio::sync::{mpsc as tokio_mpsc, oneshot};
use zbus::fdo::{self, DBusProxy};
use zbus::message::Header;
use zbus::{Connection, interface};
use zvariant::{ObjectPath, OwnedValue};

use crate::Error;
use crate::request::{Details, Display, Prompt};
use crate::state::{Action, UiCommand};

/// The object path the agent serves `io.scanbind.Agent1` at by default.
pub const DEFAULT_AGENT_PATH: &str = "/io/scanbind/Agent";

type Waker = Box<dyn Fn() + Send + Sync>;

/// The D-Bus side's end of the UI channel: sends [`UiCommand`]s and wakes the UI.
#[derive(Clone)]
pub struct UiHandle {
    tx: mpsc::Sender<UiCommand>,
    waker: Arc<OnceLock<Waker>>,
}

impl std::fmt::Debug for UiHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiHandle").finish_non_exhaustive()
    }
}

/// The UI's end: receives [`UiCommand`]s.
pub struct UiInbox {
    rx: mpsc::Receiver<UiCommand>,
    waker: Arc<OnceLock<Waker>>,
}

impl std::fmt::Debug for UiInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiInbox").finish_non_exhaustive()
    }
}

/// A new UI channel.
pub fn ui_channel() -> (UiHandle, UiInbox) {
    let (tx, rx) = mpsc::channel();
    let waker = Arc::new(OnceLock::new());
    (
        UiHandle {
            tx,
            waker: waker.clone(),
        },
        UiInbox { rx, waker },
    )
}

impl UiHandle {
    /// Queues `cmd` for the UI and wakes it.
    pub fn send(&self, cmd: UiCommand) -> Result<(), Error> {
        self.tx.send(cmd).map_err(|_| Error::UiClosed)?;
        if let Some(wake) = self.waker.get() {
            wake();
        }
        Ok(())
    }
}

impl UiInbox {
    /// Sets how to wake the UI when a command arrives (once; later calls are ignored).
    pub fn set_waker(&self, wake: impl Fn() + Send + Sync + 'static) {
        let _ = self.waker.set(Box::new(wake));
    }

    /// The next queued command, if any.
    pub fn try_recv(&self) -> Option<UiCommand> {
        self.rx.try_recv().ok()
    }

    /// Waits for the next command (for tests and headless use); `None` once every
    /// [`UiHandle`] is gone.
    pub fn recv(&self) -> Option<UiCommand> {
        self.rx.recv().ok()
    }
}

/// `io.scanbind.Agent1`: accepts calls from the daemon only (the current owner of
/// `io.scanbind.Daemon`, running as the daemon's uid) and hands them to the UI.
#[derive(Debug)]
pub struct Agent {
    ui: UiHandle,
    /// Answers only the daemon, running as the daemon's uid.
    guard: DaemonGuard,
}

impl Agent {
    /// An agent that forwards to `ui` the calls of a daemon running as `daemon_uid`.
    pub fn new(ui: UiHandle, daemon_uid: u32) -> Agent {
        Agent {
            ui,
            guard: DaemonGuard::new([daemon_uid]),
        }
    }

    /// Refuses callers other than the daemon (`AccessDenied`, before anything is shown
    /// or answered): [`scanbind_ipc::agent_guard`].
    async fn check_caller(&self, conn: &Connection, header: &Header<'_>) -> fdo::Result<()> {
        self.guard.check(conn, header).await.inspect_err(|e| {
            tracing::warn!(sender = ?header.sender(), cause = %e, "a caller that is not the daemon was refused");
        })
    }
}

#[interface(name = "io.scanbind.Agent1")]
impl Agent {
    /// `Show(s request, s kind, a{sv} details)`: put a QR code on screen.
    async fn show(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
        request: String,
        kind: String,
        details: Details,
    ) -> fdo::Result<()> {
        self.check_caller(conn, &header).await?;
        let display = Display::parse(&kind, &details)?;
        tracing::info!(%request, %kind, "show");
        self.ui.send(UiCommand::Show { request, display })?;
        Ok(())
    }

    /// `Dismiss(s request, s outcome)`: take it off the screen.
    async fn dismiss(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
        request: String,
        outcome: String,
    ) -> fdo::Result<()> {
        self.check_caller(conn, &header).await?;
        tracing::info!(%request, %outcome, "dismiss");
        self.ui.send(UiCommand::Dismiss { request, outcome })?;
        Ok(())
    }

    /// `Confirm(s request, s kind, a{sv} details) -> (b allowed, a{sv} answer)`:
    /// replies when the user answers; "denied" when the prompt is dismissed first.
    async fn confirm(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
        request: String,
        kind: String,
        details: Details,
    ) -> fdo::Result<(bool, HashMap<String, OwnedValue>)> {
        self.check_caller(conn, &header).await?;
        let prompt = Prompt::parse(&kind, &details)?;
        tracing::info!(%request, %kind, "confirm");
        let (reply, answer) = oneshot::channel();
        self.ui.send(UiCommand::Confirm {
            request: request.clone(),
            prompt,
            reply,
        })?;
        let answer = answer
            .await
            .unwrap_or_else(|_| crate::request::Answer::denied());
        tracing::info!(%request, allowed = answer.allowed, "answered");
        Ok(answer.into_reply())
    }
}

/// How the agent registers.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Where `io.scanbind.Agent1` is served.
    pub path: ObjectPath<'static>,
    /// The uid the daemon runs as: calls from any other uid are refused, even from the
    /// owner of `io.scanbind.Daemon`. Default: the agent's own (session mode); a
    /// system-mode agent sets the `scanbind` user's ([`daemon_uid`]).
    pub daemon_uid: u32,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            path: ObjectPath::from_static_str_unchecked(DEFAULT_AGENT_PATH),
            daemon_uid: rustix::process::geteuid().as_raw(),
        }
    }
}

/// The uid of the user named `name` in the user database (`/etc/passwd`): the
/// system-mode daemon's (`scanbind`, [`scanbind_ipc::accounts::DAEMON_USER`]).
pub fn daemon_uid(name: &str) -> Result<u32, Error> {
    match scanbind_ipc::accounts::user_by_name(name) {
        Ok(Some(user)) => Ok(user.uid),
        Ok(None) => Err(Error::NoSuchUser {
            name: name.to_owned(),
            reason: format!("not in {}", scanbind_ipc::accounts::PASSWD_FILE),
        }),
        Err(e) => Err(Error::NoSuchUser {
            name: name.to_owned(),
            reason: format!("{}: {e}", scanbind_ipc::accounts::PASSWD_FILE),
        }),
    }
}

/// Serves `io.scanbind.Agent1` on `conn`, registers with the daemon, calls
/// `on_registered` after the first successful registration, then runs until `actions`
/// closes: re-registers whenever the daemon's name gets a new owner (and resets the
/// UI when it loses one), and carries out the user's [`Action`]s.
///
/// Returns an error when the daemon refuses the registration (`NotAllowed`,
/// `Duplicate`) or the bus fails.
pub async fn run(
    conn: Connection,
    config: ServiceConfig,
    ui: UiHandle,
    mut actions: tokio_mpsc::UnboundedReceiver<Action>,
    on_registered: impl FnOnce(),
) -> Result<(), Error> {
    conn.object_server()
        .at(
            config.path.clone(),
            Agent::new(ui.clone(), config.daemon_uid),
        )
        .await?;
    let dbus = DBusProxy::new(&conn).await?;
    // Subscribe before the first attempt so an owner that appears meanwhile is seen.
    let mut owners = dbus
        .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
        .await?;
    let mut on_registered = Some(on_registered);
    let mut registered = register(&conn, &config).await?;
    if registered && let Some(f) = on_registered.take() {
        f();
    }
    loop {
        tokio::select! {
            change = owners.next() => {
                let Some(change) = change else { return Ok(()) };
                let args = change.args()?;
                if args.new_owner().is_some() {
                    tracing::info!("the daemon is (back) on the bus: registering");
                    ui.send(UiCommand::Reset)?;
                    registered = register(&conn, &config).await?;
                    if registered && let Some(f) = on_registered.take() {
                        f();
                    }
                } else if registered {
                    tracing::warn!("the daemon left the bus: waiting for it to come back");
                    registered = false;
                    ui.send(UiCommand::Reset)?;
                }
            }
            action = actions.recv() => {
                let Some(action) = action else { return Ok(()) };
                match action {
                    Action::StartBinding { wallet } => {
                        let result = async {
                            Daemon1Proxy::new(&conn)
                                .await?
                                .start_binding(&wallet, HashMap::new())
                                .await
                        }
                        .await;
                        match result {
                            Ok(binding) => tracing::info!(%wallet, %binding, "fresh binding code"),
                            Err(e) => tracing::warn!(%wallet, error = %e, "StartBinding failed"),
                        }
                    }
                }
            }
        }
    }
}

/// One `RegisterAgent`; `Ok(false)` when the daemon is not on the bus (yet).
async fn register(conn: &Connection, config: &ServiceConfig) -> Result<bool, Error> {
    let manager = AgentManager1Proxy::new(conn).await?;
    match manager.register_agent(&config.path, HashMap::new()).await {
        Ok(()) => {
            tracing::info!(path = %config.path, "registered with the daemon");
            Ok(true)
        }
        Err(scanbind_ipc::Error::ZBus(zbus::Error::MethodError(name, _, _)))
            if name.as_str() == "org.freedesktop.DBus.Error.ServiceUnknown"
                || name.as_str() == "org.freedesktop.DBus.Error.NameHasNoOwner" =>
        {
            tracing::info!("the daemon is not on the bus yet: waiting for it");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}
