//! The D-Bus side: `io.scanbind.Agent1` served at the agent's path, the registration
//! with `io.scanbind.AgentManager1`, re-registration when the daemon comes back, and
//! the user's [`Action`]s. It talks to the UI only through a [`UiHandle`].

use std::collections::HashMap;
use std::path::PathBuf;
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
/// `io.scanbind.Daemon`, running as the daemon's uid and the daemon's executable) and
/// hands them to the UI.
#[derive(Debug)]
pub struct Agent {
    ui: UiHandle,
    /// Answers only the daemon ([`scanbind_ipc::agent_guard`]).
    guard: Arc<DaemonGuard>,
}

impl Agent {
    /// An agent that forwards to `ui` the calls of the daemon `guard` recognises.
    pub fn new(ui: UiHandle, guard: Arc<DaemonGuard>) -> Agent {
        Agent { ui, guard }
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
    /// Another executable the daemon may run besides the installed one and `scanbindd`
    /// beside the agent (`--daemon-exe`: development and tests).
    pub daemon_exe: Option<PathBuf>,
}

impl ServiceConfig {
    /// The guard that recognises the daemon this configuration names.
    pub fn guard(&self) -> DaemonGuard {
        DaemonGuard::new(
            [self.daemon_uid],
            DaemonGuard::expected_daemons(self.daemon_exe.as_deref()),
        )
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            path: ObjectPath::from_static_str_unchecked(DEFAULT_AGENT_PATH),
            daemon_uid: rustix::process::geteuid().as_raw(),
            daemon_exe: None,
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
/// `on_registered` after the first successful registration (`on_impostor` with the
/// reason each time the owner of the daemon's name is not the daemon, which it does
/// not register with), then runs until `actions`
/// closes: re-registers whenever the daemon's name gets a new owner (and resets the
/// UI when it loses one), and carries out the user's [`Action`]s.
///
/// Registers only with an owner of `io.scanbind.Daemon` that is the daemon
/// ([`DaemonGuard::verified_owner`]); an impostor is logged and ignored until the name
/// changes hands.
///
/// Returns an error when the daemon refuses the registration (`NotAllowed`,
/// `Duplicate`) or the bus fails.
pub async fn run(
    conn: Connection,
    config: ServiceConfig,
    ui: UiHandle,
    mut actions: tokio_mpsc::UnboundedReceiver<Action>,
    on_registered: impl FnOnce(),
    on_impostor: impl Fn(&str),
) -> Result<(), Error> {
    let guard = Arc::new(config.guard());
    conn.object_server()
        .at(config.path.clone(), Agent::new(ui.clone(), guard.clone()))
        .await?;
    let dbus = DBusProxy::new(&conn).await?;
    // Subscribe before the first attempt so an owner that appears meanwhile is seen.
    let mut owners = dbus
        .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
        .await?;
    let mut on_registered = Some(on_registered);
    let mut registered = register(&conn, &config, &guard, &on_impostor).await?;
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
                    registered = register(&conn, &config, &guard, &on_impostor).await?;
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

/// One `RegisterAgent` with the verified daemon; `Ok(false)` when the daemon is not on
/// the bus (yet), or the owner of its name is not the daemon.
async fn register(
    conn: &Connection,
    config: &ServiceConfig,
    guard: &DaemonGuard,
    on_impostor: &impl Fn(&str),
) -> Result<bool, Error> {
    let owner = match daemon(conn, guard).await {
        Ok(Some(owner)) => owner,
        Ok(None) => {
            tracing::info!("the daemon is not on the bus yet: waiting for it");
            return Ok(false);
        }
        Err(e) => {
            tracing::warn!(cause = %e, "not registering: waiting for the real daemon");
            on_impostor(&e.to_string());
            return Ok(false);
        }
    };
    let manager = AgentManager1Proxy::builder(conn)
        .destination(owner)?
        .build()
        .await?;
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

/// The verified owner of the daemon's name, after starting it (bus activation) when
/// nobody owns it.
async fn daemon(
    conn: &Connection,
    guard: &DaemonGuard,
) -> fdo::Result<Option<zbus::names::OwnedUniqueName>> {
    if let Some(owner) = guard.verified_owner(conn).await? {
        return Ok(Some(owner));
    }
    let dbus = DBusProxy::new(conn).await?;
    let name = zbus::names::WellKnownName::try_from(BUS_NAME).map_err(zbus::Error::from)?;
    match dbus.start_service_by_name(name, 0).await {
        Ok(_) => guard.verified_owner(conn).await,
        Err(fdo::Error::ServiceUnknown(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
