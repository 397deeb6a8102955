//! Display agents (issue 7): the trusted UI that shows what the user must be able to
//! trust — the binding QR with its match code, order codes, confirmations and the
//! parent's PIN prompt. Protocol: `io.scanbind.AgentManager1` (served here beside
//! `Daemon1`) and `io.scanbind.Agent1` (served by the agent), documented in
//! `docs/dbus-api.md`.
//!
//! One agent at a time. Only trusted agents may register: a process of the daemon's
//! own user running `scanbind-agent` or `scanbindctl` from the directory `scanbindd`
//! itself runs from (in system mode also of a user in the `scanbind-agent` group,
//! [`Agents::trust_group`]), or one listed in `policy.toml` under `[[trusted_agents]]`
//! by uid and executable. `scanbindctl` reads its answers from its standard input, so
//! by default it is trusted only while that is a terminal (the kernel's word:
//! [`caller::input_is_terminal`]); started on a pipe or a file, any program could answer
//! its prompts, and it may register only when the policy names it (tests, kiosks). Showing is best effort (an app may draw the QR itself);
//! confirmations are not: without an agent they fail with `NeedsConfirmation`, a
//! prompt nobody answers in time or whose agent goes away is a refusal (`Denied`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use scanbind_ipc::Error as Wire;
use scanbind_ipc::proxy::Agent1Proxy;
use scanbind_ipc::types::keys::agent as keys;
use zbus::message::Header;
use zbus::names::OwnedUniqueName;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, interface};
use zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};

use super::Bus;
use super::caller::{self, Caller};
use super::options::no_options;
use crate::domain::error::Refusal;
use crate::domain::pin;
use crate::domain::ports::{Answer, Details};
use crate::domain::shared::Shared;
use crate::sync::lock;

/// The executables trusted by default when they sit beside `scanbindd`.
const DEFAULT_AGENTS: &[&str] = &["scanbind-agent", "scanbindctl"];

/// Those of [`DEFAULT_AGENTS`] that read the user's answers from standard input.
const STDIN_AGENTS: &[&str] = &["scanbindctl"];

/// The registered agent.
#[derive(Debug, Clone)]
struct Registered {
    conn: Connection,
    /// Its unique name on a bus; `None` on a peer-to-peer connection.
    peer: Option<OwnedUniqueName>,
    path: OwnedObjectPath,
    /// Which registration this is (a watcher only clears its own).
    generation: u64,
}

/// The agent registry, shared by every connection.
#[derive(Debug, Default)]
pub(crate) struct Agents {
    /// A std mutex: held for a copy or a replacement.
    current: Mutex<Option<Registered>>,
    generation: AtomicU64,
    requests: AtomicU64,
    /// System mode: the group whose members' `scanbind-agent` / `scanbindctl` beside
    /// the daemon are trusted too ([`Agents::trust_group`]).
    group: std::sync::OnceLock<String>,
}

impl Agents {
    /// Also trusts `scanbind-agent` and `scanbindctl` from the daemon's directory when
    /// the caller's uid is a member of `group` in the group database (system mode:
    /// `scanbind-agent`, `scanbind_ipc::accounts::AGENT_GROUP`). Once; later calls
    /// are ignored.
    pub(crate) fn trust_group(&self, group: &str) {
        let _ = self.group.set(group.to_owned());
    }

    /// Whether an agent is registered.
    pub(crate) fn is_registered(&self) -> bool {
        lock(&self.current).is_some()
    }

    /// Whether the sender of a call on `conn` is the registered agent: the same
    /// connection of the daemon (compared by identity, which also tells peer-to-peer
    /// sockets apart) and, on a bus, the same unique name.
    fn is_registered_agent(&self, conn: &Connection, peer: Option<&OwnedUniqueName>) -> bool {
        lock(&self.current).as_ref().is_some_and(|r| {
            std::ptr::eq(r.conn.object_server(), conn.object_server()) && r.peer.as_ref() == peer
        })
    }

    /// A fresh request id.
    pub(crate) fn request_id(&self, prefix: &str) -> String {
        format!(
            "{prefix}-{}",
            self.requests.fetch_add(1, Ordering::Relaxed) + 1
        )
    }

    async fn proxy(&self) -> Option<(u64, Agent1Proxy<'static>)> {
        let r = lock(&self.current).clone()?;
        let mut b = Agent1Proxy::builder(&r.conn)
            .path(r.path.clone())
            .ok()?
            .cache_properties(zbus::proxy::CacheProperties::No);
        b = match &r.peer {
            Some(peer) => b.destination(peer.clone()).ok()?,
            // Peer-to-peer: zbus wants a destination but the socket has one peer; the
            // name is not used for routing.
            None => b.destination("io.scanbind.Agent").ok()?,
        };
        Some((r.generation, b.build().await.ok()?))
    }

    /// Forgets registration `generation` (its agent went away or a call to it failed).
    fn forget(&self, generation: u64) -> bool {
        let mut current = lock(&self.current);
        if current.as_ref().is_some_and(|r| r.generation == generation) {
            *current = None;
            true
        } else {
            false
        }
    }

    /// Asks the agent to show `kind` until [`Agents::dismiss`]; nothing happens
    /// without one. The call runs in the background: never delays the caller.
    pub(crate) async fn show(bus: &Bus, request: String, kind: &'static str, details: Details) {
        let Some((generation, agent)) = bus.agents.proxy().await else {
            return;
        };
        let agents = Arc::clone(&bus.agents);
        tokio::spawn(async move {
            if let Err(e) = agent.show(&request, kind, as_options(&details)).await {
                tracing::warn!(cause = %e, kind, "the display agent did not take a request");
                agents.gone(generation, &e);
            }
        });
    }

    /// Takes `request` off the agent's screen (background, best effort).
    pub(crate) async fn dismiss(bus: &Bus, request: String, outcome: &'static str) {
        let Some((generation, agent)) = bus.agents.proxy().await else {
            return;
        };
        let agents = Arc::clone(&bus.agents);
        tokio::spawn(async move {
            if let Err(e) = agent.dismiss(&request, outcome).await {
                agents.gone(generation, &e);
            }
        });
    }

    /// A call to the agent failed: if its connection or name is gone, forget it.
    fn gone(&self, generation: u64, e: &zbus::Error) {
        let vanished = match e {
            zbus::Error::MethodError(name, _, _) => matches!(
                name.as_str(),
                "org.freedesktop.DBus.Error.NoReply"
                    | "org.freedesktop.DBus.Error.ServiceUnknown"
                    | "org.freedesktop.DBus.Error.NameHasNoOwner"
                    | "org.freedesktop.DBus.Error.UnknownObject"
            ),
            zbus::Error::InputOutput(_) => true,
            _ => false,
        };
        if vanished && self.forget(generation) {
            tracing::info!("the display agent went away");
        }
    }

    /// Asks the user through the agent and waits for the answer, `timeout` at most.
    /// No agent: `NeedsConfirmation` carrying `why`; no answer in time or the agent
    /// went away: `Denied`.
    pub(crate) async fn confirm(
        bus: &Bus,
        kind: &'static str,
        mut details: Details,
        timeout: Duration,
        why: &str,
    ) -> Result<Answer, Refusal> {
        let Some((generation, agent)) = bus.agents.proxy().await else {
            return Err(Refusal::NeedsConfirmation(format!(
                "{why} and no trusted display agent is running (start scanbind-agent or \
                 scanbindctl agent); nothing was charged"
            )));
        };
        let request = bus.agents.request_id(kind);
        details.push((
            keys::TIMEOUT_SECS,
            OwnedValue::from(u32::try_from(timeout.as_secs()).unwrap_or(u32::MAX)),
        ));
        let asked =
            tokio::time::timeout(timeout, agent.confirm(&request, kind, as_options(&details)))
                .await;
        match asked {
            Ok(Ok((allowed, answer))) => {
                Agents::dismiss(bus, request, "answered").await;
                let pin = answer
                    .get(keys::ANSWER_PIN)
                    .and_then(|v| String::try_from(v.clone()).ok())
                    .map(zeroize::Zeroizing::new);
                Ok(Answer { allowed, pin })
            }
            Ok(Err(e)) => {
                if !matches!(&e, zbus::Error::MethodError(..)) || bus.agents.is_registered() {
                    bus.agents.gone(generation, &e);
                }
                announce(bus).await;
                Err(Refusal::Denied(
                    "the display agent went away before the user answered; nothing was charged"
                        .into(),
                ))
            }
            Err(_) => {
                Agents::dismiss(bus, request, "timed-out").await;
                Err(Refusal::Denied(format!(
                    "nobody answered on the display within {} s; nothing was charged",
                    timeout.as_secs()
                )))
            }
        }
    }
}

fn as_options(details: &Details) -> HashMap<&str, Value<'_>> {
    details
        .iter()
        .map(|(k, v)| {
            (
                *k,
                Value::from(v.try_clone().unwrap_or_else(|_| OwnedValue::from(false))),
            )
        })
        .collect()
}

/// Emits `AgentRegistered` changes on every connection.
async fn announce(bus: &Bus) {
    for conn in bus.connections() {
        if let Ok(iface) = conn
            .object_server()
            .interface::<_, AgentManagerObj>(scanbind_ipc::DAEMON_PATH)
            .await
        {
            let _ = iface
                .get()
                .await
                .agent_registered_changed(iface.signal_emitter())
                .await;
        }
    }
}

/// How far `who` is trusted as the display agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// Named in the policy.
    Named,
    /// Trusted by default (beside the daemon); `true`: as long as its standard input is
    /// a terminal.
    Default { needs_terminal: bool },
    /// Not at all.
    No,
}

/// How far `who` is trusted as the display agent (module docs).
fn trust(shared: &Shared, agents: &Agents, who: &Caller) -> Trust {
    let exe = Path::new(&who.app_id);
    if !exe.is_absolute() {
        return Trust::No; // a Flatpak or snap app (or an unverified one) is never an agent
    }
    if let Ok(policy) = shared.policy.current()
        && policy
            .trusted_agents
            .iter()
            .any(|t| t.uid == who.uid && t.exe == exe)
    {
        return Trust::Named;
    }
    let ours = own_uid().is_some_and(|uid| uid == who.uid)
        || agents
            .group
            .get()
            .is_some_and(|group| in_group(who.uid, group));
    let beside = std::env::current_exe()
        .ok()
        .and_then(|me| me.parent().map(Path::to_path_buf))
        .zip(exe.parent().map(Path::to_path_buf))
        .is_some_and(|(a, b)| a == b);
    let name = exe.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if ours && beside && DEFAULT_AGENTS.contains(&name) {
        Trust::Default {
            needs_terminal: STDIN_AGENTS.contains(&name),
        }
    } else {
        Trust::No
    }
}

/// Whether `uid` is a member of `group` in the group database; an unreadable
/// database is no (logged).
fn in_group(uid: u32, group: &str) -> bool {
    scanbind_ipc::accounts::uid_in_group(uid, group).unwrap_or_else(|e| {
        tracing::warn!(cause = %e, group, "cannot read the group database: trusting no group member");
        false
    })
}

/// The daemon's own uid (the owner of `/proc/self`).
fn own_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// The `io.scanbind.AgentManager1` object, at the entry-point path.
#[derive(Debug)]
pub(crate) struct AgentManagerObj {
    pub(crate) shared: Arc<Shared>,
    pub(crate) bus: Arc<Bus>,
}

#[interface(name = "io.scanbind.AgentManager1")]
impl AgentManagerObj {
    /// `RegisterAgent(o agent, a{sv} options)`.
    async fn register_agent(
        &self,
        agent: ObjectPath<'_>,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Wire> {
        no_options("RegisterAgent", &options)?;
        let who = caller::identify(conn, &hdr).await?;
        let trust = trust(&self.shared, &self.bus.agents, &who);
        if trust
            == (Trust::Default {
                needs_terminal: true,
            })
            && !caller::input_is_terminal(conn, &hdr).await?
        {
            tracing::warn!(app = %who.app_id, uid = who.uid, "a display agent reading its answers from a pipe or file tried to register: refused");
            return Err(Wire::NotAllowed(format!(
                "{} (uid {}) reads its answers from standard input, which is not a terminal \
                 (a pipe or a file): any program could answer its prompts. Run it in a \
                 terminal, or name it under [[trusted_agents]] in policy.toml (tests, kiosks)",
                who.app_id, who.uid
            )));
        }
        if trust == Trust::No {
            tracing::warn!(app = %who.app_id, uid = who.uid, "an untrusted program tried to register as display agent");
            let group = match self.bus.agents.group.get() {
                Some(g) => format!(
                    ", or run scanbind-agent from scanbindd's directory as a member of the \
                     group {g}"
                ),
                None => String::new(),
            };
            return Err(Wire::NotAllowed(format!(
                "{} (uid {}) is not a trusted display agent: list it under [[trusted_agents]] \
                 in policy.toml{group}",
                who.app_id, who.uid
            )));
        }
        let peer: Option<OwnedUniqueName> = hdr.sender().map(|s| s.to_owned().into());
        let generation = self.bus.agents.generation.fetch_add(1, Ordering::Relaxed) + 1;
        {
            let mut current = lock(&self.bus.agents.current);
            if let Some(r) = current.as_ref() {
                let same = r.peer == peer && r.conn.unique_name() == conn.unique_name();
                if !same {
                    return Err(Wire::Duplicate(
                        "another display agent is registered; only one may be".into(),
                    ));
                }
            }
            *current = Some(Registered {
                conn: conn.clone(),
                peer: peer.clone(),
                path: agent.clone().into(),
                generation,
            });
        }
        tracing::info!(agent = %who.app_id, "display agent registered");
        watch(Arc::clone(&self.bus), conn.clone(), peer, generation);
        let _ = self.agent_registered_changed(&emitter).await;
        announce(&self.bus).await;
        Ok(())
    }

    /// `UnregisterAgent(o agent, a{sv} options)`.
    async fn unregister_agent(
        &self,
        agent: ObjectPath<'_>,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), Wire> {
        no_options("UnregisterAgent", &options)?;
        let peer: Option<OwnedUniqueName> = hdr.sender().map(|s| s.to_owned().into());
        let generation = {
            let current = lock(&self.bus.agents.current);
            match current.as_ref() {
                Some(r) if r.peer == peer && r.path.as_str() == agent.as_str() => r.generation,
                _ => {
                    return Err(Wire::NotFound(
                        "the caller is not the registered agent".into(),
                    ));
                }
            }
        };
        self.bus.agents.forget(generation);
        tracing::info!("display agent unregistered");
        announce(&self.bus).await;
        Ok(())
    }

    /// `SetParentPin(s old_pin, s new_pin, a{sv} options)`: only the registered agent
    /// may call it (`NotAllowed` for anyone else, nothing changed).
    async fn set_parent_pin(
        &self,
        old_pin: String,
        new_pin: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Wire> {
        let peer: Option<OwnedUniqueName> = hdr.sender().map(|s| s.to_owned().into());
        if !self.bus.agents.is_registered_agent(conn, peer.as_ref()) {
            tracing::warn!(
                sender = peer.as_ref().map_or("(peer-to-peer)", |p| p.as_str()),
                "SetParentPin from a caller that is not the registered display agent: refused"
            );
            return Err(Wire::NotAllowed(
                "only the registered display agent may set the parent PIN (scanbindctl \
                 profiles set-pin registers as one); nothing changed"
                    .into(),
            ));
        }
        no_options("SetParentPin", &options)?;
        let old_pin = zeroize::Zeroizing::new(old_pin);
        let new_pin = zeroize::Zeroizing::new(new_pin);
        if !new_pin.is_empty() {
            pin::validate(&new_pin)?;
        }
        if let Some(stored) = pin::stored(&self.shared).await? {
            pin::check(&self.shared, &stored, &old_pin).await?;
        }
        Ok(pin::set(&self.shared, (!new_pin.is_empty()).then_some(&*new_pin)).await?)
    }

    /// `AgentRegistered` (`b`).
    #[zbus(property)]
    fn agent_registered(&self) -> bool {
        self.bus.agents.is_registered()
    }
}

/// Forgets the agent when its bus name goes away (on a bus), or its connection closes
/// (peer-to-peer).
fn watch(bus: Arc<Bus>, conn: Connection, peer: Option<OwnedUniqueName>, generation: u64) {
    tokio::spawn(async move {
        match peer {
            Some(name) => {
                let Ok(dbus) = zbus::fdo::DBusProxy::new(&conn).await else {
                    return;
                };
                let Ok(mut changes) = dbus
                    .receive_name_owner_changed_with_args(&[(0, name.as_str())])
                    .await
                else {
                    return;
                };
                // The name may have gone between the registration and the subscription.
                if dbus
                    .name_has_owner(name.as_ref().into())
                    .await
                    .unwrap_or(true)
                {
                    while let Some(signal) = changes.next().await {
                        if signal.args().is_ok_and(|a| a.new_owner().is_none()) {
                            break;
                        }
                    }
                }
            }
            None => {
                // A peer-to-peer agent: its connection ends with the socket.
                let mut stream = zbus::MessageStream::from(&conn);
                while stream.next().await.is_some() {}
            }
        }
        if bus.agents.forget(generation) {
            tracing::info!("the display agent went away");
            announce(&bus).await;
        }
    });
}
