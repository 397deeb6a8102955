//! `io.scanbind.Daemon1`: the entry point, at `/io/scanbind/Daemon1`, and the state it
//! shares with the job objects ([`Shared`]).
//!
//! `Pay` validates its arguments, identifies the caller through the bus, commits the
//! payment to the journal, serves the `Payment1` object and returns its path at once;
//! a task then marks the entry `sent`, calls the server and settles the entry and the
//! object ([`execute_payment`]). The same app order id returns the existing object.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use scanbind_ams::{Currency, MinorUnits, Money};
use scanbind_device_api::types::{
    Amount, OrderCodePayRequest, PayRequest, Payment, PaymentStatus, RefundStatus,
};
use scanbind_ipc::paths::{binding_path, payment_path};
use scanbind_ipc::types::{Connectivity, keys};
use scanbind_ipc::{
    BindingState, BindingSummary, DAEMON_PATH, Error as Wire, ErrorInfo, PaymentSummary,
};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, DBusError, ObjectServer, interface};
use zeroize::Zeroize as _;
use zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};

use crate::dbus::binding::BindingObj;
use crate::dbus::caller;
use crate::error::{Error, Result};
use crate::store::journal::{Entry, Journal, JournalState, NewPayment, Recorded, RefundState, Transition};
use crate::dbus::payment::PaymentObj;
use crate::link::ServerLink;
use crate::store::vault::{SecretKind, Vault};

/// The longest order id, description, wallet or label accepted (characters), as
/// documented in `docs/dbus-api.md`.
const MAX_ORDER_ID: usize = 64;
const MAX_DESCRIPTION: usize = 256;
const MAX_WALLET: usize = 32;
const MAX_LABEL: usize = 64;
/// The most line items one payment may carry.
const MAX_LINE_ITEMS: usize = 100;
/// The longest line item name (characters).
const MAX_ITEM_NAME: usize = 256;

/// One validated line item (stored in the journal as JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LineItem {
    pub(crate) name: String,
    pub(crate) quantity: u32,
    pub(crate) amount_minor: i64,
}

/// Parses and checks the `line-items` option (`aa{sv}`): names, quantities, unit
/// prices, and that they add up to `total` exactly (checked arithmetic, no overflow).
pub(crate) fn parse_line_items(
    v: &Value<'_>,
    total: i64,
) -> std::result::Result<Vec<LineItem>, Wire> {
    use scanbind_ipc::types::keys::line_item as k;
    let bad = |m: String| Wire::InvalidArgument(format!("line-items: {m}"));
    let Value::Array(items) = v else {
        return Err(bad("must be aa{sv}".into()));
    };
    if items.is_empty() || items.len() > MAX_LINE_ITEMS {
        return Err(bad(format!("give 1 to {MAX_LINE_ITEMS} items")));
    }
    let mut out = Vec::with_capacity(items.len());
    let mut sum: i64 = 0;
    for (i, item) in items.inner().iter().enumerate() {
        let Value::Dict(d) = item else {
            return Err(bad(format!("item {i} must be a{{sv}}")));
        };
        let (mut name, mut quantity, mut amount) = (None, None, None);
        for (key, val) in d.iter() {
            let Value::Str(key) = key else {
                return Err(bad(format!("item {i}: keys must be strings")));
            };
            let val = match val {
                Value::Value(inner) => &**inner,
                other => other,
            };
            match (key.as_str(), val) {
                (k::NAME, Value::Str(n)) if !n.is_empty() && n.chars().count() <= MAX_ITEM_NAME => {
                    name = Some(n.to_string());
                }
                (k::QUANTITY, Value::U32(q)) if *q >= 1 => quantity = Some(*q),
                (k::AMOUNT_MINOR, Value::I64(a)) if *a > 0 => amount = Some(*a),
                (k::NAME, _) => {
                    return Err(bad(format!(
                        "item {i}: name must be s of 1 to {MAX_ITEM_NAME} characters"
                    )));
                }
                (k::QUANTITY, _) => return Err(bad(format!("item {i}: quantity must be u ≥ 1"))),
                (k::AMOUNT_MINOR, _) => {
                    return Err(bad(format!("item {i}: amount-minor must be x > 0")));
                }
                (other, _) => {
                    return Err(Wire::UnknownOption(format!(
                        "line item {i} has an unknown key {other:?}"
                    )));
                }
            }
        }
        let (Some(name), Some(quantity), Some(amount_minor)) = (name, quantity, amount) else {
            return Err(bad(format!(
                "item {i} needs name, quantity and amount-minor"
            )));
        };
        sum = amount_minor
            .checked_mul(i64::from(quantity))
            .and_then(|line| sum.checked_add(line))
            .ok_or_else(|| Wire::InvalidAmount("line-items: the total overflows".into()))?;
        out.push(LineItem {
            name,
            quantity,
            amount_minor,
        });
    }
    if sum != total {
        return Err(Wire::InvalidAmount(format!(
            "line-items add up to {sum}, not amount_minor {total}"
        )));
    }
    Ok(out)
}

/// Everything the daemon knows about one binding; its objects are views of it.
#[derive(Debug, Clone)]
pub(crate) struct BindingRecord {
    pub(crate) path: OwnedObjectPath,
    pub(crate) wallet: String,
    pub(crate) label: String,
    pub(crate) state: BindingState,
    pub(crate) code_value: String,
    pub(crate) match_code: String,
    pub(crate) expires_at: i64,
    pub(crate) last_error: ErrorInfo,
}

/// State shared by every object and task of one daemon.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The journal. A std mutex, locked only inside `spawn_blocking` (every write
    /// waits for an fsync), never across an `.await`.
    journal: Arc<Mutex<Journal>>,
    pub(crate) vault: Vault,
    pub(crate) server: ServerLink,
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
    /// Every connection objects are served on: the bus (if any) and each open
    /// peer-to-peer connection. A std mutex: held for a copy, a push or a removal.
    pub(crate) connections: Mutex<Vec<Connection>>,
    /// When an app last called the daemon (for `--idle-exit`).
    pub(crate) last_call: Mutex<std::time::Instant>,
    /// Payments being driven right now (the daemon is not idle while one is).
    pub(crate) busy: std::sync::atomic::AtomicUsize,
    /// The per-app payment policy (re-read when its file changes).
    pub(crate) policy: crate::policy::PolicySource,
    /// Payments being driven by a task right now (one driver per payment). A std
    /// mutex: held for an insert or a removal.
    pub(crate) driving: Mutex<std::collections::HashSet<i64>>,
    /// The display agent, if one is registered.
    pub(crate) agents: Arc<crate::dbus::agent::Agents>,
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

/// Locks a std mutex; a panic while it was held does not make the data unusable here
/// (every critical section is a plain copy or insert).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(
        journal: Journal,
        vault: Vault,
        server: ServerLink,
        device_name: String,
        policy: Option<std::path::PathBuf>,
    ) -> Shared {
        Shared {
            journal: Arc::new(Mutex::new(journal)),
            vault,
            server,
            connectivity: Mutex::new(Connectivity::Online),
            bindings: Mutex::new(HashMap::new()),
            device_name,
            refreshers: Mutex::new(HashMap::new()),
            connections: Mutex::new(Vec::new()),
            last_call: Mutex::new(std::time::Instant::now()),
            busy: std::sync::atomic::AtomicUsize::new(0),
            policy: crate::policy::PolicySource::new(policy),
            driving: Mutex::new(std::collections::HashSet::new()),
            agents: Arc::default(),
        }
    }

    /// The connections objects are served on (a copy).
    pub(crate) fn connections(&self) -> Vec<Connection> {
        lock(&self.connections).clone()
    }

    /// Notes an app's call (resets the idle timer).
    pub(crate) fn touch(&self) {
        *lock(&self.last_call) = std::time::Instant::now();
    }

    /// Serves the binding's object on every connection.
    pub(crate) async fn serve_binding(
        self: &Arc<Self>,
        path: &OwnedObjectPath,
        binding_id: &str,
    ) -> Result<()> {
        for conn in self.connections() {
            conn.object_server()
                .at(
                    path,
                    BindingObj {
                        shared: Arc::clone(self),
                        binding_id: binding_id.to_owned(),
                    },
                )
                .await?;
        }
        Ok(())
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

    fn binding_path_of(&self, binding_id: &str) -> OwnedObjectPath {
        lock(&self.bindings)
            .get(binding_id)
            .map(|b| b.path.clone())
            .unwrap_or_else(|| {
                OwnedObjectPath::try_from(DAEMON_PATH).expect("DAEMON_PATH is a valid path")
            })
    }
}

/// The `io.scanbind.Daemon1` object.
#[derive(Debug)]
pub(crate) struct DaemonObj {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) fn no_options(
    method: &str,
    options: &HashMap<String, OwnedValue>,
) -> std::result::Result<(), Wire> {
    match options.keys().next() {
        Some(k) => Err(Wire::UnknownOption(format!("{method} does not know {k:?}"))),
        None => Ok(()),
    }
}

fn internal(e: zvariant::Error) -> Wire {
    Wire::Internal(format!("encoding a reply: {e}"))
}

fn wire_name(e: &Wire) -> String {
    e.name().to_string()
}

/// The wallet's own minimum and per-payment limit (ams-api.md §4), checked before
/// anything is recorded, for amounts in the wallet's currency.
fn check_wallet_limits(wallet: &str, amount: Money) -> std::result::Result<(), Wire> {
    let Some(profile) = scanbind_ams::wallet::Wallet::parse(wallet).scan_to_bind() else {
        return Ok(());
    };
    if profile.currency != amount.currency() {
        return Ok(());
    }
    if amount.minor() < profile.min_amount {
        return Err(Wire::BelowMinimum(format!(
            "{} takes at least {} minor units of {}",
            profile.display_name,
            profile.min_amount.get(),
            profile.currency.code()
        )));
    }
    if let Some(limit) = profile.per_transaction_limit
        && amount.minor() > limit
    {
        return Err(Wire::AboveLimit(format!(
            "{} takes at most {} minor units of {} per payment",
            profile.display_name,
            limit.get(),
            profile.currency.code()
        )));
    }
    Ok(())
}

/// Checks the `Pay` arguments; the money on success.
pub(crate) fn validate_pay(
    order_id: &str,
    amount_minor: i64,
    currency: &str,
    description: &str,
) -> std::result::Result<Money, Wire> {
    if order_id.is_empty()
        || order_id.len() > MAX_ORDER_ID
        || !order_id.bytes().all(|b| (0x20..0x7f).contains(&b))
    {
        return Err(Wire::InvalidArgument(format!(
            "order_id must be 1 to {MAX_ORDER_ID} printable ASCII characters"
        )));
    }
    if description.is_empty() || description.chars().count() > MAX_DESCRIPTION {
        return Err(Wire::InvalidArgument(format!(
            "description must be 1 to {MAX_DESCRIPTION} characters"
        )));
    }
    if amount_minor <= 0 {
        return Err(Wire::InvalidAmount(format!(
            "amount_minor must be a positive number of minor units, not {amount_minor}"
        )));
    }
    let currency = Currency::from_code(currency).map_err(|_| {
        Wire::UnknownCurrency(format!(
            "{currency:?} is not an ISO 4217 code scanbind pays in"
        ))
    })?;
    let minor = MinorUnits::new(amount_minor)
        .map_err(|e| Wire::InvalidAmount(format!("amount_minor: {e}")))?;
    Ok(Money::new(currency, minor))
}

#[interface(name = "io.scanbind.Daemon1")]
impl DaemonObj {
    /// `GetStatus(a{sv} options) -> a{sv} status`: version, connectivity, bound
    /// wallets, device name.
    #[zbus(out_args("status"))]
    async fn get_status(
        &self,
        options: HashMap<String, OwnedValue>,
    ) -> std::result::Result<HashMap<String, OwnedValue>, Wire> {
        self.shared.touch();
        no_options("GetStatus", &options)?;
        let bound: Vec<ObjectPath<'static>> = lock(&self.shared.bindings)
            .values()
            .filter(|b| b.state == BindingState::Bound)
            .map(|b| b.path.clone().into_inner())
            .collect();
        let connectivity = *lock(&self.shared.connectivity);
        let mut out = HashMap::new();
        let mut put = |k: &str, v: Value<'_>| -> std::result::Result<(), Wire> {
            out.insert(k.to_owned(), OwnedValue::try_from(v).map_err(internal)?);
            Ok(())
        };
        put(
            keys::status::VERSION,
            Value::from(env!("CARGO_PKG_VERSION")),
        )?;
        put(
            keys::status::CONNECTIVITY,
            Value::from(connectivity.as_str()),
        )?;
        put(keys::status::BINDINGS, Value::from(bound))?;
        put(
            keys::status::DEVICE_NAME,
            Value::from(self.shared.device_name.as_str()),
        )?;
        Ok(out)
    }

    /// `StartBinding(s wallet, a{sv} options) -> o binding`: starts binding `wallet`
    /// and returns the binding job at once; follow its `State` and `Completed`.
    #[zbus(out_args("binding"))]
    async fn start_binding(
        &self,
        wallet: String,
        options: HashMap<String, OwnedValue>,
    ) -> std::result::Result<OwnedObjectPath, Wire> {
        self.shared.touch();
        if wallet.is_empty()
            || wallet.len() > MAX_WALLET
            || !wallet
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(Wire::InvalidArgument(format!(
                "wallet must be 1 to {MAX_WALLET} of A-Z a-z 0-9 _ (e.g. ALIPAY_HK)"
            )));
        }
        let mut label = String::new();
        let mut display = true;
        for (k, v) in &options {
            match k.as_str() {
                keys::start_binding::LABEL => match &**v {
                    Value::Str(s) if s.chars().count() <= MAX_LABEL => label = s.to_string(),
                    _ => {
                        return Err(Wire::InvalidArgument(format!(
                            "option label must be a string of at most {MAX_LABEL} characters"
                        )));
                    }
                },
                keys::start_binding::DISPLAY => match &**v {
                    Value::Bool(b) => display = *b,
                    _ => return Err(Wire::InvalidArgument("option display must be b".into())),
                },
                other => {
                    return Err(Wire::UnknownOption(format!(
                        "StartBinding does not know {other:?}"
                    )));
                }
            }
        }
        let started = self.shared.server.start_binding(&wallet).await?;
        let expires_at = time::OffsetDateTime::parse(
            &started.expires_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map(|t| t.unix_timestamp())
        .map_err(|e| Wire::ServerError(format!("bad expiresAt from the server: {e}")))?;
        let path = binding_path(&wallet, &started.binding_id);
        if display {
            use crate::dbus::agent::str_value;
            use scanbind_ipc::types::keys::agent as k;
            let details = vec![
                (
                    k::TITLE,
                    str_value(format!("Bind {}", crate::dbus::agent::wallet_name(&wallet))),
                ),
                (
                    k::MESSAGE,
                    str_value(format!(
                        "Scan with the {} app to pay from this device with one click. Check \
                         that the phone shows the match code {}.",
                        crate::dbus::agent::wallet_name(&wallet),
                        started.match_code
                    )),
                ),
                (k::CODE_VALUE, str_value(started.code_value.clone())),
                (k::MATCH_CODE, str_value(started.match_code.clone())),
                (k::EXPIRES_AT, OwnedValue::from(expires_at)),
                (k::DEVICE_NAME, str_value(self.shared.device_name.clone())),
                (k::WALLET, str_value(wallet.clone())),
                (
                    k::WALLET_NAME,
                    str_value(crate::dbus::agent::wallet_name(&wallet)),
                ),
                (k::OBJECT, crate::dbus::agent::path_value(&path)),
            ];
            crate::dbus::agent::Agents::show(&self.shared, path.to_string(), k::KIND_BINDING_QR, details)
                .await;
        }
        lock(&self.shared.bindings).insert(
            started.binding_id.clone(),
            BindingRecord {
                path: path.clone(),
                wallet,
                label,
                state: BindingState::Pending,
                code_value: started.code_value,
                match_code: started.match_code,
                expires_at,
                last_error: ErrorInfo::default(),
            },
        );
        self.shared
            .serve_binding(&path, &started.binding_id)
            .await?;
        tracing::info!(binding = %path, "binding started");
        Ok(path)
    }

    /// `ListBindings(a{sv} options) -> a(osss) bindings`.
    #[zbus(out_args("bindings"))]
    async fn list_bindings(
        &self,
        options: HashMap<String, OwnedValue>,
    ) -> std::result::Result<Vec<BindingSummary>, Wire> {
        self.shared.touch();
        no_options("ListBindings", &options)?;
        Ok(lock(&self.shared.bindings)
            .values()
            .map(|b| BindingSummary {
                binding: b.path.clone(),
                wallet: b.wallet.clone(),
                state: b.state,
                label: b.label.clone(),
            })
            .collect())
    }

    /// `Unbind(o binding, a{sv} options)`: revokes a bound binding with the wallet
    /// (through the server), deletes its tokens from the keyring and moves it to
    /// `unbound`; a pending binding is abandoned. Offline: nothing changes.
    async fn unbind(
        &self,
        binding: OwnedObjectPath,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> std::result::Result<(), Wire> {
        self.shared.touch();
        no_options("Unbind", &options)?;
        // Any app of the user's session may unbind (the user's own choice); the
        // caller is identified so that a call without one is refused.
        let who = caller::identify(conn, &hdr).await?;
        let found = lock(&self.shared.bindings)
            .iter()
            .find(|(_, b)| b.path == binding)
            .map(|(id, b)| (id.clone(), b.state));
        let Some((binding_id, state)) = found else {
            return Err(Wire::NotFound(format!(
                "no binding at {}",
                binding.as_str()
            )));
        };
        let kind = SecretKind::SealedTokens {
            binding_id: binding_id.clone(),
        };
        match state {
            BindingState::Bound => {
                if let Some(tokens) = self.shared.vault.read(&kind).await? {
                    let sealed = String::from_utf8_lossy(tokens.expose()).into_owned();
                    let sealed = zeroize::Zeroizing::new(sealed);
                    match self.shared.server.revoke(&binding_id, &sealed).await {
                        Ok(_) => {}
                        // Already revoked or cancelled on the server: finish locally.
                        Err(Error::ServerRejected { status, .. })
                            if status == 404 || status == 409 => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                self.shared.vault.delete(&kind).await?;
                crate::domain::refresh::cancel(&self.shared, &binding_id);
            }
            BindingState::Pending => {}
            _ => return Ok(()),
        }
        tracing::info!(binding = %binding, app = %who.app_id, "unbinding");
        settle_binding(
            &self.shared,
            &binding_id,
            BindingState::Unbound,
            None,
            Some("unbound"),
        )
        .await?;
        Ok(())
    }

    /// `Pay(s order_id, x amount_minor, s currency, s description, a{sv} options) -> o
    /// payment`: records the payment, starts it and returns its job at once. The same
    /// order id with the same parameters returns the same payment, never a second
    /// charge.
    #[zbus(out_args("payment"))]
    #[allow(clippy::too_many_arguments)]
    async fn pay(
        &self,
        order_id: String,
        amount_minor: i64,
        currency: String,
        description: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(object_server)] server: &ObjectServer,
    ) -> std::result::Result<OwnedObjectPath, Wire> {
        self.shared.touch();
        let amount = validate_pay(&order_id, amount_minor, &currency, &description)?;
        let mut chosen: Option<OwnedObjectPath> = None;
        let mut line_items: Option<String> = None;
        let mut order_code = false;
        let mut sellers: Option<&Value<'_>> = None;
        let mut all_or_nothing: Option<bool> = None;
        for (k, v) in &options {
            match k.as_str() {
                keys::pay::BINDING => match &**v {
                    Value::ObjectPath(p) => chosen = Some(p.clone().into()),
                    _ => return Err(Wire::InvalidArgument("option binding must be o".into())),
                },
                keys::pay::ORDER_CODE => match &**v {
                    Value::Bool(b) => order_code = *b,
                    _ => return Err(Wire::InvalidArgument("option order-code must be b".into())),
                },
                keys::pay::LINE_ITEMS => {
                    let items = parse_line_items(v, amount_minor)?;
                    line_items = Some(
                        serde_json::to_string(&items)
                            .map_err(|e| Wire::Internal(format!("encoding line items: {e}")))?,
                    );
                }
                keys::pay::SELLERS => sellers = Some(&**v),
                keys::pay::ALL_OR_NOTHING => match &**v {
                    Value::Bool(b) => all_or_nothing = Some(*b),
                    _ => {
                        return Err(Wire::InvalidArgument(
                            "option all-or-nothing must be b".into(),
                        ));
                    }
                },
                other => return Err(Wire::UnknownOption(format!("Pay does not know {other:?}"))),
            }
        }
        let checkout = match (sellers, all_or_nothing) {
            (None, Some(_)) => {
                return Err(Wire::InvalidArgument(
                    "option all-or-nothing needs the sellers option".into(),
                ));
            }
            (None, None) => None,
            (Some(_), _) if order_code || line_items.is_some() => {
                return Err(Wire::InvalidArgument(
                    "a combined checkout (sellers) takes neither line-items nor order-code".into(),
                ));
            }
            (Some(v), aon) => Some(crate::domain::checkout::parse_sellers(
                v,
                amount_minor,
                aon.unwrap_or(true),
            )?),
        };
        let checkout_json = checkout.as_ref().map(|c| c.to_json()).transpose()?;
        let who = caller::identify(conn, &hdr).await?;

        // The same order again: the existing payment, whatever the link state.
        let (app, order) = (who.app_id.clone(), order_id.clone());
        if let Some(existing) = self.shared.journal(move |j| j.find(&app, &order)).await? {
            if existing.amount != amount
                || existing.description != description
                || existing.line_items != line_items
                || existing.checkout != checkout_json
                // (An app's order stepped up to an order code is still the same order.)
                || (order_code && !existing.is_order_code)
            {
                return Err(Error::OrderConflict { order_id }.into());
            }
            return serve_payment(&self.shared, server, existing).await;
        }

        if order_code && chosen.is_some() {
            return Err(Wire::InvalidArgument(
                "order-code pays by scanning; it takes no binding".into(),
            ));
        }
        let mut wallet = String::new();
        let mut binding_id = if order_code {
            String::new()
        } else {
            let bindings = lock(&self.shared.bindings);
            let mut bound = bindings
                .iter()
                .filter(|(_, b)| b.state == BindingState::Bound)
                .filter(|(_, b)| chosen.as_ref().is_none_or(|c| *c == b.path));
            match (bound.next(), bound.next()) {
                (Some((id, b)), None) => {
                    match &checkout {
                        // Each seller is paid by a payment of its own.
                        Some(spec) => {
                            for part in &spec.parts {
                                let minor = MinorUnits::new(part.amount_minor)
                                    .map_err(|e| Wire::InvalidAmount(format!("sellers: {e}")))?;
                                check_wallet_limits(
                                    &b.wallet,
                                    Money::new(amount.currency(), minor),
                                )?;
                            }
                        }
                        None => check_wallet_limits(&b.wallet, amount)?,
                    }
                    wallet = b.wallet.clone();
                    id.clone()
                }
                (None, _) if chosen.is_some() => {
                    return Err(Wire::NotFound("no such bound binding".into()));
                }
                (None, _) => {
                    return Err(Wire::NotBound(
                        "no wallet is bound to this device: call StartBinding first".into(),
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(Wire::InvalidArgument(
                        "several wallets are bound: name one with the binding option".into(),
                    ));
                }
            }
        };
        if *lock(&self.shared.connectivity) != Connectivity::Online {
            return Err(Wire::Offline(
                "the merchant server is not reachable; nothing was charged, retry later".into(),
            ));
        }

        // The app's policy: refusals and prompts here, budgets with the insert below.
        let decide = || -> std::result::Result<crate::policy::Decision, Wire> {
            let policy = self
                .shared
                .policy
                .current()
                .map_err(|e| Wire::NotAllowed(format!("the payment policy is invalid: {e}")))?;
            policy.decide(&who.app_id, &wallet, amount, crate::link::unix_now())
        };
        let mut decision = decide()?;
        if decision.step_up && checkout.is_some() {
            // One order code cannot pay several sellers.
            return Err(Wire::AboveLimit(
                "the checkout is above this app's per-payment cap; a combined checkout is \
                 not stepped up to an order code; nothing was charged"
                    .into(),
            ));
        }
        if let Some(prompt) = decision.prompt.take() {
            let shown = match &checkout {
                Some(spec) => format!("{description} (paid to {})", spec.sellers_text()),
                None => description.clone(),
            };
            let asked = crate::dbus::agent::PaymentPrompt {
                app_id: &who.app_id,
                wallet: &wallet,
                amount,
                description: &shown,
            };
            crate::dbus::agent::ask(&self.shared, &prompt, &asked).await?;
            if prompt == crate::policy::Prompt::Consent {
                // Allowed now: the app's new rule (its limits) applies to this payment.
                decision = decide()?;
                decision.prompt = None;
            }
        }
        if decision.step_up {
            // Above the app's cap: the user pays this one on the phone.
            tracing::info!(app = %who.app_id, "above the cap: stepping up to an order code");
            order_code = true;
            binding_id = String::new();
        }
        let budgets = decision.budgets;

        crash_point("before-journal");
        // Committed (fsync'd) before anything leaves the device.
        let (app, order, desc, bid, items, parts) = (
            who.app_id.clone(),
            order_id.clone(),
            description.clone(),
            binding_id,
            line_items,
            checkout_json,
        );
        let recorded = self
            .shared
            .journal(move |j| {
                let recorded = j.record(&NewPayment {
                    app_id: &app,
                    order_id: &order,
                    amount,
                    description: &desc,
                    binding: &bid,
                    line_items: items.as_deref(),
                    order_code,
                    budgets: &budgets,
                    checkout: parts.as_deref(),
                })?;
                // Sent at once (below): `sent` in the same hand-off to the journal.
                match recorded {
                    Recorded::New(entry) => Ok(Recorded::New(j.mark_sent(entry.id)?)),
                    other => Ok(other),
                }
            })
            .await?;
        match recorded {
            Recorded::OverBudget { budget, spent } => Err(Wire::AboveLimit(format!(
                "the {} budget of {} for this app would be exceeded ({} spent); nothing was \
                 charged",
                budget.period,
                crate::policy::money_text(budget.currency, budget.limit),
                crate::policy::money_text(budget.currency, spent),
            ))),
            Recorded::Existing(entry) => serve_payment(&self.shared, server, entry).await,
            Recorded::New(entry) => {
                crash_point("after-journal");
                let id = entry.id;
                let path = serve_payment(&self.shared, server, entry.clone()).await?;
                tracing::info!(payment = %path, "payment recorded");
                let shared = Arc::clone(&self.shared);
                tokio::spawn(async move {
                    if let Err(e) = execute_payment_from(&shared, id, Some(entry)).await {
                        tracing::error!(payment = id, cause = %e, "payment could not be settled");
                    }
                });
                Ok(path)
            }
        }
    }

    /// `ListPayments(a{sv} options) -> a(osxsbsx) payments`: the caller's own payments.
    #[zbus(out_args("payments"))]
    async fn list_payments(
        &self,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(object_server)] server: &ObjectServer,
    ) -> std::result::Result<Vec<PaymentSummary>, Wire> {
        self.shared.touch();
        let mut unfinished = false;
        let mut limit = 100_u32;
        for (k, v) in &options {
            match (k.as_str(), &**v) {
                (keys::list_payments::UNFINISHED, Value::Bool(b)) => unfinished = *b,
                (keys::list_payments::LIMIT, Value::U32(n)) if (1..=1000).contains(n) => {
                    limit = *n;
                }
                (keys::list_payments::UNFINISHED | keys::list_payments::LIMIT, _) => {
                    return Err(Wire::InvalidArgument(format!("bad value for option {k}")));
                }
                (other, _) => {
                    return Err(Wire::UnknownOption(format!(
                        "ListPayments does not know {other:?}"
                    )));
                }
            }
        }
        let who = caller::identify(conn, &hdr).await?;
        let entries = self
            .shared
            .journal(move |j| j.list_for_app(&who.app_id, unfinished, limit))
            .await?;
        // Settled payments from earlier runs are served on demand, so every listed
        // path answers.
        for e in &entries {
            serve_payment(&self.shared, server, e.clone()).await?;
        }
        Ok(entries
            .into_iter()
            .map(|e| PaymentSummary {
                state: e.wire_state(),
                payment: payment_path(e.id.unsigned_abs()),
                order_id: e.order_id,
                amount_minor: e.amount.minor().get(),
                currency: e.amount.currency().code().to_owned(),
                delivered: e.delivered,
                created_at: e.created_at,
            })
            .collect())
    }

    /// `BindingRemoved(o binding, s reason)`: a binding went away.
    #[zbus(signal)]
    pub(crate) async fn binding_removed(
        emitter: &SignalEmitter<'_>,
        binding: ObjectPath<'_>,
        reason: &str,
    ) -> zbus::Result<()>;

    /// `Version` (`s`): the daemon's version.
    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }

    /// `Connectivity` (`s`): `online`, `connecting` or `offline`.
    #[zbus(property)]
    fn connectivity(&self) -> String {
        lock(&self.shared.connectivity).as_str().to_owned()
    }
}

/// The object of a journal entry, and its path.
pub(crate) fn payment_object(shared: &Arc<Shared>, entry: Entry) -> (OwnedObjectPath, PaymentObj) {
    let path = payment_path(entry.id.unsigned_abs());
    let binding = shared.binding_path_of(&entry.binding);
    let obj = PaymentObj {
        shared: Arc::clone(shared),
        entry: std::sync::Mutex::new(entry),
        binding,
    };
    (path, obj)
}

/// Serves the object of a journal entry (if not served yet) and returns its path.
async fn serve_payment(
    shared: &Arc<Shared>,
    server: &ObjectServer,
    entry: Entry,
) -> std::result::Result<OwnedObjectPath, Wire> {
    let (path, obj) = payment_object(shared, entry);
    // `false` when the object is already served: the same payment again.
    server.at(&path, obj).await?;
    Ok(path)
}

/// Pays an open journal entry through the server and settles entry and object: a
/// `pending` entry is marked `sent` first; a `sent` or `pending-unknown` one (after a
/// crash or a transport error) is sent again with the same app order id, which the
/// server answers idempotently (never a second charge).
pub(crate) async fn execute_payment(shared: &Shared, id: i64) -> Result<()> {
    execute_payment_from(shared, id, None).await
}

/// [`execute_payment`], starting from the entry as just written (`sent`) when the
/// caller has it: no second read of the journal before the request goes out.
async fn execute_payment_from(shared: &Shared, id: i64, mut fresh: Option<Entry>) -> Result<()> {
    use std::sync::atomic::Ordering;
    // One driver per payment: a re-drive while one runs is a no-op.
    if !lock(&shared.driving).insert(id) {
        return Ok(());
    }
    shared.busy.fetch_add(1, Ordering::SeqCst);
    let mut attempt = 0_u32;
    let result = loop {
        if let Err(e) = drive_payment(shared, id, fresh.take()).await {
            break Err(e);
        }
        // Outcome still unknown (the request failed, the server answered 5xx, or the
        // wallet is still processing): ask again, with the same app order id, after a
        // capped back-off, until a result arrives here or by the event stream. A
        // payment is never left in limbo waiting for an event that may never come.
        match shared.journal(move |j| j.get(id)).await {
            Ok(e) if e.state == JournalState::PendingUnknown => {
                let wait = crate::link::backoff(attempt, 0);
                attempt = attempt.saturating_add(1);
                tracing::debug!(payment = id, ?wait, "outcome unknown; asking again");
                tokio::time::sleep(wait).await;
            }
            Ok(_) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    lock(&shared.driving).remove(&id);
    shared.busy.fetch_sub(1, Ordering::SeqCst);
    shared.touch();
    result
}

async fn drive_payment(shared: &Shared, id: i64, fresh: Option<Entry>) -> Result<()> {
    let entry = match fresh {
        Some(entry) if entry.state == JournalState::Sent => entry,
        _ => shared.journal(move |j| j.mark_sent(id)).await?,
    };
    if entry.state.is_terminal() {
        return Ok(());
    }
    if entry.is_order_code {
        return drive_order_code(shared, entry).await;
    }
    let tokens = shared
        .vault
        .read(&SecretKind::SealedTokens {
            binding_id: entry.binding.clone(),
        })
        .await?;
    let Some(tokens) = tokens else {
        let msg = "the binding's tokens are not in the keyring: bind the wallet again";
        let info = ErrorInfo {
            name: wire_name(&Wire::NotBound(String::new())),
            message: msg.into(),
        };
        return settle_payment(shared, id, Transition::Failed(info)).await;
    };
    if entry.checkout.is_some() {
        let sealed = String::from_utf8_lossy(tokens.expose()).into_owned();
        drop(tokens);
        return crate::domain::checkout::drive_checkout(shared, entry, sealed).await;
    }
    let mut req = PayRequest {
        app_id: entry.app_id.clone(),
        app_order_id: entry.order_id.clone(),
        binding_id: entry.binding.clone(),
        sealed_tokens: String::from_utf8_lossy(tokens.expose()).into_owned(),
        amount: Amount {
            currency: entry.amount.currency().code().to_owned(),
            value: entry.amount.minor().get(),
        },
        description: entry.description.clone(),
    };
    drop(tokens);
    let result = shared.server.pay(&req).await;
    req.sealed_tokens.zeroize();
    crash_point("after-send");
    let mut server_id = None;
    let t = match result {
        Ok(p) => {
            server_id = Some(p.payment_id.clone());
            transition_for(&p)
        }
        Err(e @ Error::ServerRejected { status, .. }) if (400..500).contains(&status) => {
            // A final refusal (4xx): nothing was charged.
            Transition::Failed(ErrorInfo {
                name: wire_name(&Wire::ServerError(String::new())),
                message: e.to_string(),
            })
        }
        Err(e) => {
            // Sent, outcome unknown: the entry stays open for reconciliation.
            tracing::warn!(payment = id, cause = %e, "payment outcome unknown");
            Transition::PendingUnknown
        }
    };
    settle_payment_with(shared, id, t, server_id).await
}

/// An order code payment: asks the server for the order QR code (idempotent per app
/// order id, so a re-drive after a crash gets the same code), publishes it, and
/// settles at once if the server already knows the outcome; otherwise the server's
/// `payment.result` event settles it (paid, declined, or cancelled after expiry).
async fn drive_order_code(shared: &Shared, entry: Entry) -> Result<()> {
    let id = entry.id;
    let req = OrderCodePayRequest {
        app_id: entry.app_id.clone(),
        app_order_id: entry.order_id.clone(),
        amount: Amount {
            currency: entry.amount.currency().code().to_owned(),
            value: entry.amount.minor().get(),
        },
        description: entry.description.clone(),
    };
    let p = match shared.server.pay_order_code(&req).await {
        Ok(p) => p,
        Err(e @ Error::ServerRejected { status, .. }) if (400..500).contains(&status) => {
            let info = ErrorInfo {
                name: wire_name(&Wire::ServerError(String::new())),
                message: e.to_string(),
            };
            return settle_payment(shared, id, Transition::Failed(info)).await;
        }
        Err(e) => {
            tracing::warn!(payment = id, cause = %e, "order code not made yet");
            return settle_payment(shared, id, Transition::PendingUnknown).await;
        }
    };
    let sid = p.payment_id.clone();
    let code = p.order_code.clone();
    let updated = shared
        .journal(move |j| {
            j.set_server_payment_id(id, &sid)?;
            match code {
                Some(c) => {
                    let expires = time::OffsetDateTime::parse(
                        &c.expires_at,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .map(|t| t.unix_timestamp())
                    .unwrap_or(0);
                    j.set_order_code(id, &c.code_value, expires)
                }
                None => j.get(id),
            }
        })
        .await?;
    publish_payment(shared, &updated, false).await?;
    if let Some(code) = &updated.order_code
        && !updated.state.is_terminal()
    {
        use crate::dbus::agent::str_value;
        use scanbind_ipc::types::keys::agent as k;
        let app = crate::dbus::agent::app_name(&updated.app_id);
        let details = vec![
            (k::TITLE, str_value(format!("Pay {app}"))),
            (
                k::MESSAGE,
                str_value(format!(
                    "Scan with your wallet app to pay {} to {app} for {}.",
                    updated.amount, updated.description
                )),
            ),
            (k::CODE_VALUE, str_value(code.clone())),
            (
                k::EXPIRES_AT,
                OwnedValue::from(updated.order_code_expires_at.unwrap_or(0)),
            ),
            (k::APP_ID, str_value(updated.app_id.clone())),
            (k::APP_NAME, str_value(app)),
            (k::AMOUNT_TEXT, str_value(updated.amount.to_string())),
            (
                k::AMOUNT_MINOR,
                OwnedValue::from(updated.amount.minor().get()),
            ),
            (
                k::CURRENCY,
                str_value(updated.amount.currency().code().to_owned()),
            ),
            (k::DESCRIPTION, str_value(updated.description.clone())),
            (
                k::OBJECT,
                crate::dbus::agent::path_value(&payment_path(id.unsigned_abs())),
            ),
        ];
        crate::dbus::agent::Agents::show(
            shared,
            payment_path(id.unsigned_abs()).to_string(),
            k::KIND_ORDER_CODE,
            details,
        )
        .await;
    }
    match p.status {
        PaymentStatus::Pending => Ok(()),
        _ => settle_payment(shared, id, transition_for(&p)).await,
    }
}

/// The journal transition for a server payment.
pub(crate) fn transition_for(p: &Payment) -> Transition {
    let error = || ErrorInfo {
        name: wire_name(&Wire::ServerError(String::new())),
        message: format!(
            "{}: {}",
            p.result_code.as_deref().unwrap_or("unknown"),
            p.result_message.as_deref().unwrap_or_default()
        ),
    };
    match p.status {
        PaymentStatus::Succeeded => Transition::Succeeded(p.receipt.clone().unwrap_or_default()),
        PaymentStatus::Failed => Transition::Failed(error()),
        PaymentStatus::Cancelled => Transition::Cancelled(error()),
        PaymentStatus::Pending => Transition::PendingUnknown,
    }
}

/// Settles a combined checkout from the server's answer (its response or its
/// `checkout.result` event): the answer and the state in one commit, then the object.
pub(crate) async fn settle_checkout(
    shared: &Shared,
    id: i64,
    c: &scanbind_device_api::types::Checkout,
) -> Result<()> {
    let t = crate::domain::checkout::transition_for_checkout(c);
    let json = serde_json::to_string(c)
        .map_err(|e| Error::ServerProtocol(format!("re-encoding a checkout: {e}")))?;
    let checkout_id = c.checkout_id.clone();
    let (before, after) = shared
        .journal(move |j| {
            let before = j.get(id)?.state;
            if before.is_terminal() {
                return Ok((before, j.get(id)?));
            }
            Ok((
                before,
                j.advance_checkout(id, t, Some(&checkout_id), Some(&json))?,
            ))
        })
        .await?;
    crash_point("after-settle");
    publish_payment(shared, &after, before != after.state).await
}

/// Commits `t`, copies the entry to the object (if served) and announces the change;
/// `Completed` is emitted only when this call made the state final.
pub(crate) async fn settle_payment(shared: &Shared, id: i64, t: Transition) -> Result<()> {
    settle_payment_with(shared, id, t, None).await
}

/// [`settle_payment`], remembering the server's payment id in the same commit.
pub(crate) async fn settle_payment_with(
    shared: &Shared,
    id: i64,
    t: Transition,
    server_payment_id: Option<String>,
) -> Result<()> {
    let (before, after) = shared
        .journal(move |j| {
            let before = j.get(id)?.state;
            // "Outcome unknown" after the result already arrived (the event stream won
            // the race with a failing request): the known result stands.
            if before.is_terminal() && t == Transition::PendingUnknown {
                return Ok((before, j.get(id)?));
            }
            Ok((before, j.advance_with(id, t, server_payment_id.as_deref())?))
        })
        .await?;
    crash_point("after-settle");
    if after.is_order_code && after.state.is_terminal() && !before.is_terminal() {
        let path = payment_path(after.id.unsigned_abs()).to_string();
        crate::dbus::agent::Agents::dismiss(shared, path, after.state.to_wire().as_str()).await;
    }
    publish_payment(shared, &after, before != after.state).await
}

/// Copies a committed entry to the payment's object on every connection and announces
/// what changed: `PropertiesChanged` for state, receipt, error, delivered and refunded,
/// and `Completed` when `state_changed` made the state final.
pub(crate) async fn publish_payment(
    shared: &Shared,
    after: &Entry,
    state_changed: bool,
) -> Result<()> {
    let path = payment_path(after.id.unsigned_abs());
    let terminal = after.state.is_terminal();
    for conn in shared.connections() {
        let Ok(iface) = conn.object_server().interface::<_, PaymentObj>(&path).await else {
            continue;
        };
        let obj = iface.get().await;
        let old = obj.set_entry(after.clone());
        let emitter = iface.signal_emitter();
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
    }
    if state_changed && terminal {
        tracing::info!(payment = %path, state = after.state.to_wire().as_str(), "payment completed");
    }
    Ok(())
}

/// Moves a binding to `state` (object, map, signals). Returns whether it changed;
/// `Completed` is emitted on a change, and `BindingRemoved(reason)` too when
/// `removed` is given.
pub(crate) async fn settle_binding(
    shared: &Shared,
    binding_id: &str,
    state: BindingState,
    error: Option<ErrorInfo>,
    removed: Option<&str>,
) -> Result<bool> {
    let (path, changed) = {
        let mut bindings = lock(&shared.bindings);
        let Some(record) = bindings.get_mut(binding_id) else {
            tracing::debug!("event for a binding this run did not start");
            return Ok(false);
        };
        (record.path.clone(), record.settle(state, error))
    };
    if !changed {
        return Ok(false);
    }
    tracing::info!(binding = %path, state = state.as_str(), "binding completed");
    crate::dbus::agent::Agents::dismiss(shared, path.to_string(), state.as_str()).await;
    for conn in shared.connections() {
        let Ok(iface) = conn.object_server().interface::<_, BindingObj>(&path).await else {
            continue;
        };
        let obj = iface.get().await;
        let emitter = iface.signal_emitter();
        obj.state_changed(emitter).await?;
        obj.code_value_changed(emitter).await?;
        obj.last_error_changed(emitter).await?;
        let details = lock(&shared.bindings)
            .get(binding_id)
            .map(|r| {
                r.completed_details()
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k,
                            v.try_to_owned().map(Value::from).unwrap_or(Value::from("")),
                        )
                    })
                    .collect::<HashMap<_, _>>()
            })
            .unwrap_or_default();
        BindingObj::completed(emitter, state.as_str(), details).await?;
        if let Some(reason) = removed {
            let emitter = SignalEmitter::new(&conn, DAEMON_PATH)?;
            DaemonObj::binding_removed(&emitter, path.as_ref(), reason).await?;
        }
    }
    Ok(true)
}

/// Settles a refund from the server's answer or event: journal first, then the
/// payment object's `RefundedMinor`.
pub(crate) async fn settle_refund(
    shared: &Shared,
    refund_id: &str,
    status: RefundStatus,
) -> Result<()> {
    let state = match status {
        RefundStatus::Pending => return Ok(()),
        RefundStatus::Succeeded => RefundState::Succeeded,
        RefundStatus::Failed => RefundState::Failed,
    };
    let rid = refund_id.to_owned();
    let settled = shared
        .journal(move |j| {
            let Some(r) = j.settle_refund(&rid, state)? else {
                return Ok(None);
            };
            Ok(Some(j.get(r.payment)?))
        })
        .await?;
    let Some(entry) = settled else {
        tracing::debug!("a refund this device did not record");
        return Ok(());
    };
    publish_payment(shared, &entry, false).await?;
    tracing::info!(refund = refund_id, state = state.as_str(), "refund settled");
    Ok(())
}

#[cfg(test)]
mod tests;
