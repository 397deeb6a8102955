//! Who sees which payment: the recipients of the payment and binding signals, and an
//! `Introspect` that shows each caller only its own payments.
//!
//! ## Signal recipients
//!
//! A payment's `PropertiesChanged` and `Completed` carry what only its app may know
//! (state, receipt, amount, the live order QR code); they are unicast to the
//! connections of the app that owns the payment, never broadcast. The owning app's
//! connections are those that identified as that [`Owner`] (uid, app id) in a call to
//! the daemon ([`Recipients`], filled by [`super::Bus::identify`]): a bus unique name,
//! or a peer-to-peer connection (known by its GUID). An app that calls `Pay` is
//! identified in that call, before its payment exists, so every signal of the payment
//! reaches it; it only has to subscribe before it relies on one (apps subscribe, then
//! call; `ListPayments` and the properties stay the truth for what it missed).
//!
//! A binding belongs to the household, not to one app: its signals (`Binding1`'s
//! `PropertiesChanged` and `Completed`, `Daemon1.BindingRemoved`) are unicast to every
//! connection that identified as some app (the one that started the binding among
//! them), never to a connection that only listens.
//!
//! Unique names are never reused by a bus, so a name that left cannot be taken by
//! another process; names are forgotten when they leave (`NameOwnerChanged`) only so
//! that the map does not grow for ever. A peer-to-peer connection is forgotten with
//! its connection.
//!
//! ## Introspection
//!
//! zbus answers `org.freedesktop.DBus.Introspectable.Introspect` on every node it
//! serves with the whole subtree below it, interfaces included: `Introspect` of `/`
//! would list every payment object. So on the way from `/` to the payment objects
//! (`/`, `/io`, `/io/scanbind`, `/io/scanbind/Daemon1`, `.../payment`) and on every
//! payment object, the built-in interface is replaced by [`ScopedIntrospection`], which
//! lists child nodes by name only (as libdbus and sd-bus do) and shows a caller only
//! the payment objects of its own (uid, app id). A payment object of another app
//! answers `Introspect` (and every property and method, see `payment.rs`) exactly as
//! a path that is not served: `org.freedesktop.DBus.Error.UnknownObject`. A payment
//! object's `org.freedesktop.DBus.Properties` is replaced too ([`PaymentProperties`]):
//! zbus's `GetAll` leaves out properties whose getter fails, so it would answer another
//! app with an empty dictionary. See D32 in `docs/decisions.md`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use scanbind_ipc::DAEMON_PATH;
use zbus::message::Header;
use zbus::names::{BusName, InterfaceName, OwnedUniqueName};
use zbus::object_server::{Interface, SignalEmitter};
use zbus::{Connection, ObjectServer, fdo, interface};

use super::agent::AgentManagerObj;
use super::binding::BindingObj;
use super::caller;
use super::daemon::DaemonObj;
use super::payment::PaymentObj;
use crate::domain::shared::Shared;
use crate::store::journal::Owner;
use crate::sync::lock;

/// The node that holds every payment object.
pub(crate) const PAYMENTS_PATH: &str = "/io/scanbind/Daemon1/payment";

/// The connections each app identified on.
#[derive(Debug, Default)]
pub(crate) struct Recipients {
    /// The app each unique name on the bus identified as.
    names: HashMap<OwnedUniqueName, Owner>,
    /// The app the peer of each peer-to-peer connection identified as, by the
    /// connection's GUID.
    peers: HashMap<String, Owner>,
}

impl Recipients {
    /// Notes that the sender of `hdr` on `conn` is `owner`.
    pub(crate) fn remember(&mut self, conn: &Connection, hdr: &Header<'_>, owner: &Owner) {
        if conn.unique_name().is_some() {
            if let Some(sender) = hdr.sender() {
                self.names
                    .insert(OwnedUniqueName::from(sender.to_owned()), owner.clone());
            }
        } else {
            self.peers
                .insert(conn.server_guid().to_string(), owner.clone());
        }
    }

    /// Forgets a unique name that left the bus.
    pub(crate) fn forget_name(&mut self, name: &str) {
        self.names.retain(|n, _| n.as_str() != name);
    }

    /// Forgets a peer-to-peer connection that closed.
    pub(crate) fn forget_peer(&mut self, conn: &Connection) {
        self.peers.remove(&conn.server_guid().to_string());
    }

    /// The emitters that reach, on `conn`, the connections of the apps `wanted`
    /// accepts: one per unique name on a bus (the signal's destination set), the
    /// connection itself on a peer-to-peer connection whose peer is such an app, none
    /// otherwise.
    pub(crate) fn emitters(
        &self,
        conn: &Connection,
        base: &SignalEmitter<'_>,
        wanted: impl Fn(&Owner) -> bool,
    ) -> Vec<SignalEmitter<'static>> {
        if conn.unique_name().is_some() {
            self.names
                .iter()
                .filter(|(_, o)| wanted(o))
                .map(|(name, _)| base.to_owned().set_destination(BusName::from(name.clone())))
                .collect()
        } else if self
            .peers
            .get(&conn.server_guid().to_string())
            .is_some_and(wanted)
        {
            vec![base.to_owned()]
        } else {
            Vec::new()
        }
    }
}

/// Forgets the unique names that leave the bus of `conn`, until the bus closes. The
/// match rule is in place when this returns.
pub(crate) async fn watch_names(
    conn: &Connection,
    recipients: Arc<Mutex<Recipients>>,
) -> zbus::Result<()> {
    use futures_util::StreamExt as _;
    let dbus = fdo::DBusProxy::new(conn).await?;
    // A name that lost its owner: the new owner is empty (a broker without argument
    // matching sends every change; the loop below filters them anyway).
    let mut left = match dbus.receive_name_owner_changed_with_args(&[(2, "")]).await {
        Ok(s) => s,
        Err(_) => dbus.receive_name_owner_changed().await?,
    };
    tokio::spawn(async move {
        while let Some(signal) = left.next().await {
            let Ok(args) = signal.args() else { continue };
            if args.new_owner().is_none()
                && let BusName::Unique(name) = args.name()
            {
                lock(&recipients).forget_name(name.as_str());
            }
        }
    });
    Ok(())
}

/// What a node replaced by [`ScopedIntrospection`] is.
#[derive(Debug)]
enum Node {
    /// `/`, `/io`, `/io/scanbind`: one child, named here.
    Ancestor(&'static str),
    /// `/io/scanbind/Daemon1`.
    Daemon(Arc<Shared>),
    /// `/io/scanbind/Daemon1/payment`: its children, each with its owner.
    Payments(Mutex<BTreeMap<String, Owner>>),
    /// A payment object, and its owner.
    Payment(Owner),
}

/// `org.freedesktop.DBus.Introspectable`, answered per caller (module docs).
#[derive(Debug)]
pub(crate) struct ScopedIntrospection {
    node: Node,
}

/// Keeps a node that has no interface of its own in zbus's tree once its built-in
/// `Introspectable` is replaced (zbus drops a node whose last interface other than
/// the standard ones goes). It has no members, and [`ScopedIntrospection`] does not
/// list it.
#[derive(Debug)]
pub(crate) struct Anchor;

#[interface(name = "io.scanbind.internal.Anchor", introspection_docs = false)]
impl Anchor {}

/// The name of the interface replaced.
fn introspectable() -> InterfaceName<'static> {
    InterfaceName::from_static_str_unchecked("org.freedesktop.DBus.Introspectable")
}

/// The name of the properties interface.
fn properties() -> InterfaceName<'static> {
    InterfaceName::from_static_str_unchecked("org.freedesktop.DBus.Properties")
}

/// What zbus answers for a path it does not serve.
pub(crate) fn unknown_object(hdr: &Header<'_>) -> fdo::Error {
    let path = hdr.path().map(|p| p.as_str()).unwrap_or_default();
    fdo::Error::UnknownObject(format!("Unknown object '{path}'"))
}

/// `org.freedesktop.DBus.Peer` as zbus describes it.
const PEER_XML: &str = r#"  <interface name="org.freedesktop.DBus.Peer">
    <method name="Ping">
    </method>
    <method name="GetMachineId">
      <arg type="s" direction="out"/>
    </method>
  </interface>
"#;

#[interface(
    name = "org.freedesktop.DBus.Introspectable",
    introspection_docs = false
)]
impl ScopedIntrospection {
    /// The node's interfaces and the names of the child nodes the caller may see.
    async fn introspect(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(object_server)] objects: &ObjectServer,
    ) -> fdo::Result<String> {
        let owner = match &self.node {
            Node::Payments(_) | Node::Payment(_) => {
                caller::identify(conn, &hdr).await.ok().map(|c| c.owner())
            }
            Node::Ancestor(_) | Node::Daemon(_) => None,
        };
        let mut xml = String::from(
            "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n \
             \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n<node>\n",
        );
        xml.push_str(PEER_XML);
        self.introspect_to_writer(&mut xml, 2);
        fdo::Properties.introspect_to_writer(&mut xml, 2);
        let mut children = Vec::new();
        match &self.node {
            Node::Ancestor(child) => children.push((*child).to_owned()),
            Node::Daemon(shared) => {
                if let Ok(d) = objects.interface::<_, DaemonObj>(DAEMON_PATH).await {
                    d.get().await.introspect_to_writer(&mut xml, 2);
                }
                if let Ok(a) = objects.interface::<_, AgentManagerObj>(DAEMON_PATH).await {
                    a.get().await.introspect_to_writer(&mut xml, 2);
                }
                let bindings: Vec<_> = lock(&shared.bindings)
                    .values()
                    .map(|b| b.path.clone())
                    .collect();
                for path in bindings {
                    if objects.interface::<_, BindingObj>(&path).await.is_ok() {
                        children.push("binding".to_owned());
                        break;
                    }
                }
                children.push("payment".to_owned());
            }
            Node::Payments(served) => {
                if let Some(owner) = &owner {
                    children.extend(
                        lock(served)
                            .iter()
                            .filter(|(_, o)| *o == owner)
                            .map(|(name, _)| name.clone()),
                    );
                }
            }
            Node::Payment(of) => {
                if owner.as_ref() != Some(of) {
                    return Err(unknown_object(&hdr));
                }
                let path = hdr.path().ok_or_else(|| unknown_object(&hdr))?;
                let payment = objects
                    .interface::<_, PaymentObj>(path)
                    .await
                    .map_err(|_| unknown_object(&hdr))?;
                payment.get().await.introspect_to_writer(&mut xml, 2);
            }
        }
        for child in children {
            let _ = writeln!(xml, "  <node name=\"{child}\"/>");
        }
        xml.push_str("</node>\n");
        Ok(xml)
    }
}

/// `org.freedesktop.DBus.Properties` of a payment object: zbus's own `GetAll` leaves
/// out the properties whose getter fails, so it would answer another app with an
/// empty dictionary instead of as for a path that is not served. This one answers
/// `UnknownObject` to anyone but the payment's owner, and passes the owner's calls to
/// the `Payment1` object as zbus's does.
#[derive(Debug)]
pub(crate) struct PaymentProperties {
    /// The payment's owner.
    owner: Owner,
}

/// The name of the interface whose properties a payment object has.
const PAYMENT1: &str = "io.scanbind.Payment1";

impl PaymentProperties {
    /// The payment object when the sender of `hdr` owns it and asks about
    /// `Payment1`; `UnknownObject` for anyone else, as for a path that is not served.
    async fn payment(
        &self,
        interface_name: &InterfaceName<'_>,
        hdr: &Header<'_>,
        conn: &Connection,
        objects: &ObjectServer,
    ) -> fdo::Result<zbus::object_server::InterfaceRef<PaymentObj>> {
        let caller = caller::identify(conn, hdr).await.ok().map(|c| c.owner());
        if caller.as_ref() != Some(&self.owner) {
            return Err(unknown_object(hdr));
        }
        if interface_name.as_str() != PAYMENT1 {
            return Err(fdo::Error::UnknownInterface(format!(
                "Unknown interface '{interface_name}'"
            )));
        }
        let path = hdr.path().ok_or_else(|| unknown_object(hdr))?;
        objects
            .interface::<_, PaymentObj>(path)
            .await
            .map_err(|_| unknown_object(hdr))
    }
}

#[interface(name = "org.freedesktop.DBus.Properties", introspection_docs = false)]
impl PaymentProperties {
    /// `Get(s interface_name, s property_name) -> v value`.
    async fn get(
        &self,
        interface_name: InterfaceName<'_>,
        property_name: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(object_server)] objects: &ObjectServer,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> fdo::Result<zvariant::OwnedValue> {
        let payment = self.payment(&interface_name, &hdr, conn, objects).await?;
        let obj = payment.get().await;
        obj.get(property_name, objects, conn, Some(&hdr), &emitter)
            .await
            .unwrap_or_else(|| {
                Err(fdo::Error::UnknownProperty(format!(
                    "Unknown property '{property_name}'"
                )))
            })
    }

    /// `GetAll(s interface_name) -> a{sv} properties`.
    async fn get_all(
        &self,
        interface_name: InterfaceName<'_>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(object_server)] objects: &ObjectServer,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> fdo::Result<HashMap<String, zvariant::OwnedValue>> {
        let payment = self.payment(&interface_name, &hdr, conn, objects).await?;
        let obj = payment.get().await;
        obj.get_all(objects, conn, Some(&hdr), &emitter).await
    }

    /// `Set(s interface_name, s property_name, v value)`: every property of a payment
    /// is read-only.
    async fn set(
        &self,
        interface_name: InterfaceName<'_>,
        property_name: &str,
        _value: zvariant::Value<'_>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(object_server)] objects: &ObjectServer,
    ) -> fdo::Result<()> {
        self.payment(&interface_name, &hdr, conn, objects).await?;
        Err(fdo::Error::UnknownProperty(format!(
            "Unknown property '{property_name}'"
        )))
    }

    /// `PropertiesChanged(s interface_name, a{sv} changed, as invalidated)`.
    #[zbus(signal)]
    async fn properties_changed(
        emitter: &SignalEmitter<'_>,
        interface_name: InterfaceName<'_>,
        changed_properties: HashMap<&str, zvariant::Value<'_>>,
        invalidated_properties: &[&str],
    ) -> zbus::Result<()>;
}

/// Replaces the built-in `Introspectable` at `path` (a node that has an interface of
/// its own, or an [`Anchor`]).
async fn replace(objects: &ObjectServer, path: &str, node: Node) -> zbus::Result<()> {
    match objects.remove_named(path, introspectable()).await {
        Ok(_) | Err(zbus::Error::InterfaceNotFound) => {}
        Err(e) => return Err(e),
    }
    objects.at(path, ScopedIntrospection { node }).await?;
    Ok(())
}

/// Scopes the introspection of a new connection's tree: the ancestors of the payment
/// objects, the payment node, and the payment objects already served (`payments`:
/// path and owner).
pub(crate) async fn scope_tree(
    conn: &Connection,
    shared: &Arc<Shared>,
    payments: impl IntoIterator<Item = (String, Owner)>,
) -> zbus::Result<()> {
    let objects = conn.object_server();
    for (path, child) in [
        ("/", "io"),
        ("/io", "scanbind"),
        ("/io/scanbind", "Daemon1"),
    ] {
        objects.at(path, Anchor).await?;
        replace(objects, path, Node::Ancestor(child)).await?;
    }
    replace(objects, DAEMON_PATH, Node::Daemon(Arc::clone(shared))).await?;
    objects.at(PAYMENTS_PATH, Anchor).await?;
    replace(objects, PAYMENTS_PATH, Node::Payments(Mutex::default())).await?;
    for (path, owner) in payments {
        scope_payment(objects, &path, owner).await?;
    }
    Ok(())
}

/// Scopes the introspection of a payment object just served at `path`, and lists it
/// (for its owner) under the payment node.
pub(crate) async fn scope_payment(
    objects: &ObjectServer,
    path: &str,
    owner: Owner,
) -> zbus::Result<()> {
    replace(objects, path, Node::Payment(owner.clone())).await?;
    match objects.remove_named(path, properties()).await {
        Ok(_) | Err(zbus::Error::InterfaceNotFound) => {}
        Err(e) => return Err(e),
    }
    objects
        .at(
            path,
            PaymentProperties {
                owner: owner.clone(),
            },
        )
        .await?;
    let name = path.rsplit('/').next().unwrap_or_default().to_owned();
    // The payment node is scoped as soon as a connection is added; a call that comes
    // in before that (a peer-to-peer client's very first) leaves the payment unlisted
    // rather than failing a payment already recorded.
    if let Ok(parent) = objects
        .interface::<_, ScopedIntrospection>(PAYMENTS_PATH)
        .await
        && let Node::Payments(served) = &parent.get().await.node
    {
        lock(served).insert(name, owner);
    }
    Ok(())
}
