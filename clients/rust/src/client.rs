//! [`Client`]: one connection to the daemon and the `io.scanbind.Daemon1` calls.

use std::collections::HashMap;

use futures_util::StreamExt as _;

use scanbind_ipc::types::{Connectivity, keys};
use scanbind_ipc::{BindingSummary, Daemon1Proxy, PaymentSummary};
use scanbind_money::Money;
use serde::Serialize;
use zbus::Connection;
use zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};

use crate::binding::Binding;
use crate::connect::{self, Transport};
use crate::error::{Error, Result};
use crate::payment::Payment;
use crate::watch::watch_property;

/// A connection to `scanbindd`.
///
/// Cheap to clone (the connection is shared). Every call is a D-Bus round trip; long
/// operations ([`Client::bind`], [`Client::pay`]) return a handle at once, which is then
/// awaited or streamed.
#[derive(Debug, Clone)]
pub struct Client {
    conn: Connection,
    daemon: Daemon1Proxy<'static>,
    p2p: bool,
}

/// The daemon's status (`GetStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Status {
    /// The daemon's version.
    pub version: String,
    /// The link to the merchant server: `online`, `connecting`, `offline` (or a value
    /// a newer daemon added).
    pub connectivity: String,
    /// The object paths of the bound bindings.
    pub bindings: Vec<OwnedObjectPath>,
    /// The name this device shows on the wallet page.
    pub device_name: String,
}

impl Status {
    /// Whether new payments can start ([`Connectivity::Online`]).
    pub fn is_online(&self) -> bool {
        self.connectivity == Connectivity::Online.as_str()
    }
}

/// What to charge: the arguments of `Pay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayRequest {
    order_id: String,
    amount: Money,
    description: String,
    binding: Option<OwnedObjectPath>,
    order_code: bool,
    sellers: Vec<SellerPart>,
    all_or_nothing: Option<bool>,
}

/// One seller's part of a combined checkout ([`PayRequest::sellers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SellerPart {
    seller: String,
    amount_minor: i64,
    description: String,
}

impl SellerPart {
    /// `amount` (in the checkout's currency) for `seller` (the seller id the merchant
    /// server is configured with), described to the user as `description`.
    pub fn new(seller: impl Into<String>, amount: Money, description: impl Into<String>) -> Self {
        SellerPart {
            seller: seller.into(),
            amount_minor: amount.minor().get(),
            description: description.into(),
        }
    }
}

impl PayRequest {
    /// A payment of `amount` for the app's order `order_id` (1 to 64 printable ASCII
    /// characters; it is the idempotency key: the same id never charges twice),
    /// described to the user as `description` (1 to 256 characters).
    pub fn new(order_id: impl Into<String>, amount: Money, description: impl Into<String>) -> Self {
        PayRequest {
            order_id: order_id.into(),
            amount,
            description: description.into(),
            binding: None,
            order_code: false,
            sellers: Vec::new(),
            all_or_nothing: None,
        }
    }

    /// A combined checkout: the amount is paid to several sellers (2 to 20; at most 6
    /// all-or-nothing), one payment each, confirmed once. The parts must add up to the
    /// amount. All-or-nothing by default: if one part fails, the paid ones are
    /// reversed and nothing is charged. The parts and their receipts:
    /// [`Payment::parts`].
    ///
    /// [`Payment::parts`]: crate::Payment::parts
    pub fn sellers(mut self, parts: impl IntoIterator<Item = SellerPart>) -> Self {
        self.sellers = parts.into_iter().collect();
        self
    }

    /// With [`PayRequest::sellers`]: `false` lets parts succeed or fail on their own
    /// (the payment may end `partially-succeeded`); default `true`.
    pub fn all_or_nothing(mut self, all_or_nothing: bool) -> Self {
        self.all_or_nothing = Some(all_or_nothing);
        self
    }

    /// Pays by scanning instead of charging a bound wallet: the daemon gets an order
    /// QR code from the server ([`Payment::order_code`]); the user scans it with a
    /// wallet app and pays there. No binding is needed. An unpaid code is cancelled
    /// when it expires.
    ///
    /// [`Payment::order_code`]: crate::Payment::order_code
    pub fn by_order_code(mut self) -> Self {
        self.order_code = true;
        self
    }

    /// Charges this binding (required when several wallets are bound).
    pub fn binding(mut self, binding: OwnedObjectPath) -> Self {
        self.binding = Some(binding);
        self
    }

    /// The order id.
    pub fn order_id(&self) -> &str {
        &self.order_id
    }

    /// The amount.
    pub fn amount(&self) -> Money {
        self.amount
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.description
    }
}

/// Which payments [`Client::payments`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListOptions {
    /// Only those the app must still act on: not finished and not failed or cancelled.
    pub unfinished: bool,
    /// At most this many, newest first (the daemon's default is 100, its maximum 1000).
    pub limit: Option<u32>,
}

/// Options of [`Client::bind`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BindOptions {
    /// A label for the binding (at most 64 characters).
    pub label: Option<String>,
    /// `false` when the app draws the QR itself and the daemon should not show it on
    /// its trusted display.
    pub display: Option<bool>,
}

impl Client {
    /// Connects to the daemon over `transport` and checks that it is there.
    ///
    /// ```no_run
    /// # async fn f() -> scanbind_client::Result<()> {
    /// use scanbind_client::{Client, Transport};
    /// let client = Client::connect(Transport::Auto).await?;
    /// println!("daemon {}", client.status().await?.version);
    /// # Ok(()) }
    /// ```
    pub async fn connect(transport: Transport) -> Result<Client> {
        let (conn, p2p) = connect::open(&transport).await?;
        Client::with_connection(conn, p2p).await
    }

    /// Uses an existing connection (`p2p`: a peer-to-peer connection to the daemon,
    /// not a bus).
    pub async fn with_connection(conn: Connection, p2p: bool) -> Result<Client> {
        // zbus ignores the destination and skips name tracking on a peer-to-peer
        // connection, so the same proxies serve both.
        let daemon = Daemon1Proxy::new(&conn).await?;
        Ok(Client { conn, daemon, p2p })
    }

    /// The underlying D-Bus connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The `io.scanbind.Daemon1` proxy, for calls this API does not wrap.
    pub fn daemon_proxy(&self) -> &Daemon1Proxy<'static> {
        &self.daemon
    }

    /// Whether this is a peer-to-peer connection (a socket of the daemon, no bus).
    pub fn is_p2p(&self) -> bool {
        self.p2p
    }

    /// The daemon's version, connectivity and bound wallets.
    #[doc(alias = "GetStatus")]
    pub async fn status(&self) -> Result<Status> {
        let mut m = self.daemon.get_status(HashMap::new()).await?;
        let text = |m: &mut HashMap<String, OwnedValue>, k: &str| -> String {
            m.remove(k)
                .and_then(|v| String::try_from(v).ok())
                .unwrap_or_default()
        };
        let version = text(&mut m, keys::status::VERSION);
        let connectivity = text(&mut m, keys::status::CONNECTIVITY);
        let device_name = text(&mut m, keys::status::DEVICE_NAME);
        let bindings = m
            .remove(keys::status::BINDINGS)
            .and_then(|v| Vec::<OwnedObjectPath>::try_from(v).ok())
            .unwrap_or_default();
        Ok(Status {
            version,
            connectivity,
            bindings,
            device_name,
        })
    }

    /// Waits until the daemon's link to the merchant server is `online` (at once if
    /// it is): new payments fail with `Offline` before. Bound it with a timeout.
    #[doc(alias = "Connectivity")]
    pub async fn wait_online(&self) -> Result<()> {
        let mut changes = watch_property(self.daemon.inner(), "Connectivity").await?;
        while let Some(c) = changes.next().await {
            if String::try_from(c?).map_err(zbus::Error::from)? == Connectivity::Online.as_str() {
                return Ok(());
            }
        }
        Err(Error::Disconnected("waiting for the server link"))
    }

    /// Starts binding `wallet` (`ALIPAY_HK`, `GCASH`, ...): the returned [`Binding`] is
    /// `pending`, with its QR code; await [`Binding::wait`] or stream
    /// [`Binding::receive_states`] for the outcome.
    #[doc(alias = "StartBinding")]
    pub async fn bind(&self, wallet: &str, options: BindOptions) -> Result<Binding> {
        let mut opts: HashMap<&str, Value<'_>> = HashMap::new();
        if let Some(label) = &options.label {
            opts.insert(keys::start_binding::LABEL, Value::from(label.as_str()));
        }
        if let Some(display) = options.display {
            opts.insert(keys::start_binding::DISPLAY, Value::from(display));
        }
        let path = self.daemon.start_binding(wallet, opts).await?;
        self.binding(path).await
    }

    /// A handle on an existing binding object (from [`Client::bindings`] or
    /// [`Status::bindings`]).
    pub async fn binding(&self, path: OwnedObjectPath) -> Result<Binding> {
        Binding::open(self, path).await
    }

    /// The bindings of the wallets this app's policy lets it charge (none for an app
    /// the policy denies).
    #[doc(alias = "ListBindings")]
    pub async fn bindings(&self) -> Result<Vec<BindingSummary>> {
        Ok(self.daemon.list_bindings(HashMap::new()).await?)
    }

    /// Removes a binding once the user approved it on the trusted display agent:
    /// revokes its tokens with the wallet and deletes them. Without an agent the
    /// daemon answers `NeedsConfirmation`, declined `Denied` (nothing changes); the
    /// call waits for the user's answer (at most the prompt timeout).
    #[doc(alias = "Unbind")]
    pub async fn unbind(&self, binding: &ObjectPath<'_>) -> Result<()> {
        Ok(self.daemon.unbind(binding, HashMap::new()).await?)
    }

    /// Charges a bound wallet. Returns at once with the payment in `pending`; await
    /// [`Payment::wait`] for the result. Calling it again with the same order id and
    /// parameters returns the same payment and never charges twice.
    #[doc(alias = "Pay")]
    pub async fn pay(&self, request: &PayRequest) -> Result<Payment> {
        let mut opts: HashMap<&str, Value<'_>> = HashMap::new();
        if let Some(b) = &request.binding {
            opts.insert(keys::pay::BINDING, Value::from(b.as_ref()));
        }
        if request.order_code {
            opts.insert(keys::pay::ORDER_CODE, Value::from(true));
        }
        if !request.sellers.is_empty() {
            let parts: Vec<HashMap<&str, Value<'_>>> = request
                .sellers
                .iter()
                .map(|p| {
                    HashMap::from([
                        (keys::seller::SELLER, Value::from(p.seller.as_str())),
                        (keys::seller::AMOUNT_MINOR, Value::from(p.amount_minor)),
                        (
                            keys::seller::DESCRIPTION,
                            Value::from(p.description.as_str()),
                        ),
                    ])
                })
                .collect();
            opts.insert(keys::pay::SELLERS, Value::from(parts));
        }
        if let Some(aon) = request.all_or_nothing {
            opts.insert(keys::pay::ALL_OR_NOTHING, Value::from(aon));
        }
        let path = self
            .daemon
            .pay(
                &request.order_id,
                request.amount.minor().get(),
                request.amount.currency().code(),
                &request.description,
                opts,
            )
            .await?;
        self.payment(path).await
    }

    /// A handle on an existing payment object (from [`Client::payments`]): how an app
    /// picks up a payment again after a restart.
    pub async fn payment(&self, path: OwnedObjectPath) -> Result<Payment> {
        Payment::open(self, path).await
    }

    /// The calling app's own payments, newest first.
    #[doc(alias = "ListPayments")]
    pub async fn payments(&self, options: ListOptions) -> Result<Vec<PaymentSummary>> {
        let mut opts: HashMap<&str, Value<'_>> = HashMap::new();
        if options.unfinished {
            opts.insert(keys::list_payments::UNFINISHED, Value::from(true));
        }
        if let Some(limit) = options.limit {
            opts.insert(keys::list_payments::LIMIT, Value::from(limit));
        }
        Ok(self.daemon.list_payments(opts).await?)
    }

    /// The payments the app must still act on (succeeded but not yet finished, or
    /// still pending), as handles: call this at start, deliver and
    /// [`Payment::finish`] each succeeded one, and keep waiting on the others.
    pub async fn unfinished_payments(&self) -> Result<Vec<Payment>> {
        let list = self
            .payments(ListOptions {
                unfinished: true,
                limit: None,
            })
            .await?;
        let mut out = Vec::with_capacity(list.len());
        for p in list {
            out.push(self.payment(p.payment).await?);
        }
        Ok(out)
    }
}

pub(crate) fn unknown_state(e: scanbind_ipc::types::UnknownState) -> Error {
    Error::UnknownState(e.0)
}
