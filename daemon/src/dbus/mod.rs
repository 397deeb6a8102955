//! The D-Bus layer: one adapter per interface, on top of the domain.
//!
//! - [`daemon`]: `io.scanbind.Daemon1` (the entry point).
//! - [`binding`]: `io.scanbind.Binding1`; [`payment`]: `io.scanbind.Payment1`;
//!   [`subscription`]: `io.scanbind.Subscription1`.
//! - [`agent`]: `io.scanbind.AgentManager1` and the calls to the display agent
//!   (`io.scanbind.Agent1`).
//! - [`caller`]: who is calling (bus credentials, `SO_PEERCRED`).
//! - [`options`]: the `a{sv}` options apps pass.
//! - [`error`]: the one mapping of the daemon's errors to the wire errors.
//! - [`p2p`]: the peer-to-peer socket.
//! - [`manager`]: `io.scanbind.Manager1`, the device owner's management interface;
//!   [`polkit`]: asking polkit about its callers.
//! - [`scope`]: who receives which signal, and an `Introspect` that shows each caller
//!   only its own payments.
//!
//! [`Bus`] holds what belongs to D-Bus itself (the connections objects are served on,
//! the connections each app identified on, the registered display agent) and
//! implements the domain's `Publisher` and `Prompter` (`domain::ports`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use scanbind_ipc::DAEMON_PATH;
use scanbind_ipc::Error as Wire;
use scanbind_ipc::paths::payment_path;
use zbus::Connection;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zvariant::{OwnedObjectPath, Value};

use crate::domain::error::Refusal;
use crate::domain::model::BindingRecord;
use crate::domain::ports::{Answer, Details, Prompter, Publisher};
use crate::domain::shared::Shared;
use crate::error::Result;
use crate::store::journal::{Entry, Owner};
use crate::sync::lock;

pub(crate) mod agent;
pub(crate) mod binding;
pub(crate) mod caller;
pub(crate) mod daemon;
pub(crate) mod error;
pub(crate) mod manager;
pub(crate) mod options;
pub(crate) mod p2p;
pub(crate) mod payment;
pub(crate) mod polkit;
pub(crate) mod scope;
pub(crate) mod subscription;

use agent::Agents;
use binding::BindingObj;
use caller::Caller;
use daemon::DaemonObj;
use payment::PaymentObj;
use scope::Recipients;
use subscription::SubscriptionObj;

/// The D-Bus side of one daemon: its connections and its display agent.
#[derive(Debug, Default)]
pub(crate) struct Bus {
    /// Every connection objects are served on: the bus (if any) and each open
    /// peer-to-peer connection. A std mutex: held for a copy, a push or a removal.
    connections: Mutex<Vec<Connection>>,
    /// The display agent, if one is registered.
    pub(crate) agents: Arc<Agents>,
    /// The connections each app identified on: who receives which signal
    /// ([`scope`]). A std mutex: held for a lookup, an insert or a removal.
    recipients: Arc<Mutex<Recipients>>,
}

impl Bus {
    /// The connections objects are served on (a copy).
    pub(crate) fn connections(&self) -> Vec<Connection> {
        lock(&self.connections).clone()
    }

    /// Adds a connection (the bus, or a peer-to-peer client) whose objects are
    /// served: scopes its introspection (`payments`: the payment objects it serves
    /// already, by path and owner) and, on a bus, forgets the unique names that leave
    /// it ([`scope`]).
    pub(crate) async fn add_connection(
        &self,
        shared: &Arc<Shared>,
        conn: Connection,
        payments: impl IntoIterator<Item = (String, Owner)>,
    ) -> Result<()> {
        scope::scope_tree(&conn, shared, payments).await?;
        if conn.unique_name().is_some() {
            scope::watch_names(&conn, Arc::clone(&self.recipients)).await?;
        }
        lock(&self.connections).push(conn);
        Ok(())
    }

    /// Drops the connections `gone` says are gone (and the apps identified on them).
    pub(crate) fn remove_connections(&self, gone: impl Fn(&Connection) -> bool) {
        let mut recipients = lock(&self.recipients);
        lock(&self.connections).retain(|c| {
            if gone(c) {
                recipients.forget_peer(c);
                false
            } else {
                true
            }
        });
    }

    /// Identifies the sender of `hdr` ([`caller::identify`]) and notes its connection
    /// as one of that app's: the signals of its payments go there from now on.
    pub(crate) async fn identify(
        &self,
        conn: &Connection,
        hdr: &Header<'_>,
    ) -> std::result::Result<Caller, Wire> {
        let who = caller::identify(conn, hdr).await?;
        lock(&self.recipients).remember(conn, hdr, &who.owner());
        Ok(who)
    }

    /// The emitters that reach the connections of the apps `wanted` accepts on the
    /// connection of `base`.
    fn emitters(
        &self,
        base: &SignalEmitter<'_>,
        wanted: impl Fn(&Owner) -> bool,
    ) -> Vec<SignalEmitter<'static>> {
        lock(&self.recipients).emitters(base.connection(), base, wanted)
    }

    /// How many connections objects are served on.
    pub(crate) fn connection_count(&self) -> usize {
        lock(&self.connections).len()
    }

    /// Emits `Connectivity` changes on every connection.
    pub(crate) async fn connectivity_changed(&self) -> Result<()> {
        for conn in self.connections() {
            let Ok(iface) = conn
                .object_server()
                .interface::<_, DaemonObj>(DAEMON_PATH)
                .await
            else {
                continue;
            };
            iface
                .get()
                .await
                .connectivity_changed(iface.signal_emitter())
                .await?;
        }
        Ok(())
    }
}

/// Serves the binding's object on every connection.
pub(crate) async fn serve_binding(
    bus: &Bus,
    shared: &Arc<Shared>,
    path: &OwnedObjectPath,
    binding_id: &str,
) -> Result<()> {
    for conn in bus.connections() {
        conn.object_server()
            .at(
                path,
                BindingObj {
                    shared: Arc::clone(shared),
                    binding_id: binding_id.to_owned(),
                },
            )
            .await?;
    }
    Ok(())
}

impl Bus {
    /// Copies a committed entry to the payment's object on every connection and
    /// announces what changed to the connections of the app that owns it only
    /// ([`scope`]).
    async fn publish_payment(&self, after: &Entry, state_changed: bool) -> Result<()> {
        let path = payment_path(after.id.unsigned_abs());
        let terminal = after.state.is_terminal();
        let owner = after.owner();
        for conn in self.connections() {
            let Ok(iface) = conn.object_server().interface::<_, PaymentObj>(&path).await else {
                continue;
            };
            let obj = iface.get().await;
            let old = obj.set_entry(after.clone());
            for emitter in self.emitters(iface.signal_emitter(), |o| *o == owner) {
                obj.announce(&emitter, &old, after, state_changed, terminal)
                    .await?;
            }
        }
        Ok(())
    }
}

impl PaymentObj {
    /// Announces the change from `old` to `after` through `emitter`.
    async fn announce(
        &self,
        emitter: &SignalEmitter<'_>,
        old: &Entry,
        after: &Entry,
        state_changed: bool,
        terminal: bool,
    ) -> Result<()> {
        let obj = self;
        if state_changed {
            obj.state_changed(emitter).await?;
            obj.receipt_changed(emitter).await?;
            obj.last_error_changed(emitter).await?;
        }
        if old.delivered != after.delivered {
            obj.delivered_changed(emitter).await?;
        }
        if old.refunded_minor != after.refunded_minor {
            obj.refunded_minor_changed(emitter).await?;
        }
        if old.checkout_result != after.checkout_result || old.part_refunds != after.part_refunds {
            obj.parts_changed(emitter).await?;
        }
        if old.order_code != after.order_code || (state_changed && terminal) {
            // The expiry first: an app that reacts to the code has it already.
            obj.order_code_expires_at_changed(emitter).await?;
            obj.order_code_changed(emitter).await?;
        }
        if state_changed && terminal {
            PaymentObj::completed(emitter, obj.wire_state(), obj.completed_details()).await?;
        }
        Ok(())
    }
}

impl Bus {
    /// Announces a settled binding to the connections of the apps whose policy lets
    /// them charge its wallet (those `ListBindings` shows it to) and of the app that
    /// started it ([`scope`]):
    /// `PropertiesChanged`, `Completed`, and `BindingRemoved(reason)` when `removed`
    /// is given.
    async fn publish_binding(&self, record: &BindingRecord, removed: Option<&str>) -> Result<()> {
        let path = &record.path;
        for conn in self.connections() {
            let Ok(iface) = conn.object_server().interface::<_, BindingObj>(path).await else {
                continue;
            };
            let obj = iface.get().await;
            let sees = |o: &Owner| {
                crate::domain::binding::visible_to(&obj.shared, o)(&record.wallet)
                    || record.starter.as_ref() == Some(o)
            };
            for emitter in self.emitters(iface.signal_emitter(), sees) {
                obj.announce(&emitter, record, removed).await?;
            }
        }
        Ok(())
    }
}

impl BindingObj {
    /// Announces the settled `record` through `emitter` (`BindingRemoved` through
    /// the entry point's path, to the same destination).
    async fn announce(
        &self,
        emitter: &SignalEmitter<'_>,
        record: &BindingRecord,
        removed: Option<&str>,
    ) -> Result<()> {
        let path = &record.path;
        let obj = self;
        obj.state_changed(emitter).await?;
        obj.code_value_changed(emitter).await?;
        obj.label_changed(emitter).await?;
        obj.last_error_changed(emitter).await?;
        let details = binding::completed_details(record)
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    v.try_to_owned().map(Value::from).unwrap_or(Value::from("")),
                )
            })
            .collect::<HashMap<_, _>>();
        BindingObj::completed(emitter, record.state.as_str(), details).await?;
        if let Some(reason) = removed {
            let mut daemon = SignalEmitter::new(emitter.connection(), DAEMON_PATH)?;
            if let Some(to) = emitter.destination() {
                daemon = daemon.set_destination(to.clone());
            }
            DaemonObj::binding_removed(&daemon, path.as_ref(), reason).await?;
        }
        Ok(())
    }
}

impl Bus {
    /// Serves the subscription's object on every connection (if not served yet),
    /// copies `s` to it and, with `event`, announces the change to the connections of
    /// the app that owns it only ([`scope`]). Returns its path.
    pub(crate) async fn publish_subscription(
        &self,
        s: &scanbind_device_api::types::Subscription,
        event: Option<&str>,
    ) -> Result<OwnedObjectPath> {
        let path = scanbind_ipc::paths::subscription_path(&s.subscription_id);
        let owner = Owner::from_server_app_id(&s.app_id);
        for conn in self.connections() {
            let objects = conn.object_server();
            objects
                .at(
                    &path,
                    SubscriptionObj {
                        sub: Mutex::new(s.clone()),
                    },
                )
                .await?;
            let Ok(iface) = objects.interface::<_, SubscriptionObj>(&path).await else {
                continue;
            };
            let obj = iface.get().await;
            *lock(&obj.sub) = s.clone();
            if let Some(event) = event {
                for emitter in self.emitters(iface.signal_emitter(), |o| *o == owner) {
                    obj.announce(&emitter, event).await?;
                }
            }
        }
        Ok(path)
    }
}

impl Publisher for Bus {
    fn subscription_changed<'a>(
        &'a self,
        s: &'a scanbind_device_api::types::Subscription,
        event: Option<&'static str>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.publish_subscription(s, event).await.map(|_| ()) })
    }

    fn payment_changed<'a>(
        &'a self,
        after: &'a Entry,
        state_changed: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.publish_payment(after, state_changed))
    }

    fn binding_settled<'a>(
        &'a self,
        record: &'a BindingRecord,
        removed: Option<&'a str>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.publish_binding(record, removed))
    }
}

impl Prompter for Bus {
    fn show(&self, request: String, kind: &'static str, details: Details) -> BoxFuture<'_, ()> {
        Box::pin(Agents::show(self, request, kind, details))
    }

    fn dismiss(&self, request: String, outcome: &'static str) -> BoxFuture<'_, ()> {
        Box::pin(Agents::dismiss(self, request, outcome))
    }

    fn confirm<'a>(
        &'a self,
        kind: &'static str,
        details: Details,
        timeout: Duration,
        why: &'a str,
    ) -> BoxFuture<'a, std::result::Result<Answer, Refusal>> {
        Box::pin(Agents::confirm(self, kind, details, timeout, why))
    }
}
