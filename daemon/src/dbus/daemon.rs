//! `io.scanbind.Daemon1`: the entry point, at `/io/scanbind/Daemon1`.
//!
//! `Pay` checks its arguments and options, identifies the caller through the bus, has
//! the domain admit the payment ([`admission::admit`]: policy, prompts, the journal
//! commit), serves the `Payment1` object and returns its path at once; a task then
//! drives the payment ([`driver`]). The same app order id returns the existing object.

use std::collections::HashMap;
use std::sync::Arc;

use scanbind_ipc::paths::payment_path;
use scanbind_ipc::types::keys;
use scanbind_ipc::{BindingState, BindingSummary, Error as Wire, PaymentSummary};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, ObjectServer, interface};
use zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};

use super::Bus;
use super::caller;
use super::options::{no_options, parse_line_items, parse_sellers};
use super::payment::PaymentObj;
use super::scope;
use crate::domain::admission::{self, Admitted, PayRequest};
use crate::domain::shared::{Shared, crash_point};
use crate::domain::subscription::{self, SubscribeArgs};
use crate::domain::validate::{MAX_LABEL, validate_pay, validate_wallet};
use crate::domain::{binding, driver};
use crate::store::journal::Entry;
use crate::sync::lock;

/// The `io.scanbind.Daemon1` object.
#[derive(Debug)]
pub(crate) struct DaemonObj {
    pub(crate) shared: Arc<Shared>,
    pub(crate) bus: Arc<Bus>,
}

fn internal(e: zvariant::Error) -> Wire {
    Wire::Internal(format!("encoding a reply: {e}"))
}

#[interface(name = "io.scanbind.Daemon1")]
impl DaemonObj {
    /// `GetStatus(a{sv} options) -> a{sv} status`: version, connectivity, the bound
    /// bindings the caller's policy lets it charge (as `ListBindings`), device name.
    #[zbus(out_args("status"))]
    async fn get_status(
        &self,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> std::result::Result<HashMap<String, OwnedValue>, Wire> {
        self.shared.touch();
        no_options("GetStatus", &options)?;
        let who = caller::identify(conn, &hdr).await?;
        let owner = who.owner();
        let visible = binding::visible_to(&self.shared, &owner);
        let bound: Vec<ObjectPath<'static>> = lock(&self.shared.bindings)
            .values()
            .filter(|b| b.state == BindingState::Bound && visible(&b.wallet))
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
    /// and returns the binding job at once; follow its `State` and `Completed`. The QR
    /// code on the display names the calling app; one pending binding per app and a
    /// few per window (`Busy` past that, [`crate::domain::limits`]).
    #[zbus(out_args("binding"))]
    async fn start_binding(
        &self,
        wallet: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> std::result::Result<OwnedObjectPath, Wire> {
        self.shared.touch();
        // Noted as an app's connection: the binding's signals reach it (`scope`).
        let who = self.bus.identify(conn, &hdr).await?;
        validate_wallet(&wallet)?;
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
        let (path, binding_id) =
            binding::start(&self.shared, &who.owner(), wallet, label, display).await?;
        super::serve_binding(&self.bus, &self.shared, &path, &binding_id).await?;
        tracing::info!(binding = %path, "binding started");
        Ok(path)
    }

    /// `ListBindings(a{sv} options) -> a(osss) bindings`: the bindings of the wallets
    /// the caller's policy lets it charge (none for an app the policy denies).
    #[zbus(out_args("bindings"))]
    async fn list_bindings(
        &self,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> std::result::Result<Vec<BindingSummary>, Wire> {
        self.shared.touch();
        no_options("ListBindings", &options)?;
        let who = caller::identify(conn, &hdr).await?;
        let owner = who.owner();
        let visible = binding::visible_to(&self.shared, &owner);
        Ok(lock(&self.shared.bindings)
            .values()
            .filter(|b| visible(&b.wallet))
            .map(|b| BindingSummary {
                binding: b.path.clone(),
                wallet: b.wallet.clone(),
                state: b.state,
                label: b.label.clone(),
            })
            .collect())
    }

    /// `Unbind(o binding, a{sv} options)`: once the user confirmed it on the trusted
    /// display (`NeedsConfirmation` without an agent, `Denied` when declined; nothing
    /// changes either way), revokes a bound binding with the wallet (through the
    /// server), deletes its tokens from the keyring and moves it to `unbound`; a
    /// pending binding is abandoned (the app that started it needs no confirmation).
    /// Offline: nothing changes.
    async fn unbind(
        &self,
        binding: OwnedObjectPath,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> std::result::Result<(), Wire> {
        self.shared.touch();
        no_options("Unbind", &options)?;
        // An app unbinds only with the user's confirmation on the trusted display.
        let who = caller::identify(conn, &hdr).await?;
        Ok(binding::unbind_confirmed(&self.shared, &binding, &who.owner()).await?)
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
        #[zbus(object_server)] objects: &ObjectServer,
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
            (Some(v), aon) => Some(parse_sellers(v, amount_minor, aon.unwrap_or(true))?),
        };
        // Identified (and noted as this app's connection) before the payment exists, so
        // every signal of the payment reaches it.
        let who = self.bus.identify(conn, &hdr).await?;
        let req = PayRequest {
            owner: who.owner(),
            order_id,
            amount,
            description,
            binding: chosen,
            order_code,
            line_items,
            checkout,
        };
        match admission::admit(&self.shared, req).await? {
            Admitted::Existing(entry) => {
                serve_payment(&self.shared, &self.bus, objects, entry).await
            }
            Admitted::New(entry) => {
                crash_point("after-journal");
                let path = serve_payment(&self.shared, &self.bus, objects, entry.clone()).await?;
                tracing::info!(payment = %path, "payment recorded");
                driver::spawn(&self.shared, entry);
                Ok(path)
            }
        }
    }

    /// `ListPayments(a{sv} options) -> a(osxsbsx) payments`: the caller's own payments
    /// (its uid's, of its app).
    #[zbus(out_args("payments"))]
    async fn list_payments(
        &self,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(object_server)] objects: &ObjectServer,
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
        let who = self.bus.identify(conn, &hdr).await?;
        let entries = self
            .shared
            .journal(move |j| j.list_for_app(&who.owner(), unfinished, limit))
            .await?;
        // Settled payments from earlier runs are served on demand, so every listed
        // path answers.
        for e in &entries {
            serve_payment(&self.shared, &self.bus, objects, e.clone()).await?;
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

    /// `Subscribe(s plan, x amount_minor, s currency, s period, a{sv} options) -> o
    /// subscription`: once the user confirmed it on the trusted display (always),
    /// subscribes the app at the merchant server, which charges each period itself
    /// ([`crate::domain::subscription`]). The same `subscription-id` with the same
    /// terms returns the same subscription without asking again.
    #[zbus(out_args("subscription"))]
    #[allow(clippy::too_many_arguments)]
    async fn subscribe(
        &self,
        plan: String,
        amount_minor: i64,
        currency: String,
        period: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> std::result::Result<OwnedObjectPath, Wire> {
        use keys::subscribe as k;
        self.shared.touch();
        let mut args = SubscribeArgs {
            subscription_id: None,
            plan,
            amount_minor,
            currency,
            period,
            description: None,
            trial: None,
            intro_amount_minor: None,
            intro_periods: None,
            binding: None,
        };
        for (key, v) in &options {
            let bad = |t: &str| Wire::InvalidArgument(format!("option {key} must be {t}"));
            match (key.as_str(), &**v) {
                (k::SUBSCRIPTION_ID, Value::Str(s)) => args.subscription_id = Some(s.to_string()),
                (k::DESCRIPTION, Value::Str(s)) => args.description = Some(s.to_string()),
                (k::TRIAL, Value::Str(s)) => args.trial = Some(s.to_string()),
                (k::INTRO_AMOUNT_MINOR, Value::I64(n)) => args.intro_amount_minor = Some(*n),
                (k::INTRO_PERIODS, Value::U32(n)) => args.intro_periods = Some(*n),
                (k::BINDING, Value::ObjectPath(p)) => args.binding = Some(p.clone().into()),
                (k::SUBSCRIPTION_ID | k::DESCRIPTION | k::TRIAL, _) => return Err(bad("s")),
                (k::INTRO_AMOUNT_MINOR, _) => return Err(bad("x")),
                (k::INTRO_PERIODS, _) => return Err(bad("u")),
                (k::BINDING, _) => return Err(bad("o")),
                (other, _) => {
                    return Err(Wire::UnknownOption(format!(
                        "Subscribe does not know {other:?}"
                    )));
                }
            }
        }
        let checked = subscription::check(args)?;
        // Identified (and noted as this app's connection) first, so every signal of
        // the subscription reaches it.
        let who = self.bus.identify(conn, &hdr).await?;
        let s = subscription::subscribe(&self.shared, &who.owner(), checked).await?;
        let path = self.bus.publish_subscription(&s, None).await?;
        tracing::info!(subscription = %path, "subscription served");
        Ok(path)
    }

    /// `ListSubscriptions(a{sv} options) -> ao subscriptions`: the caller's app's
    /// subscriptions, as the merchant server knows them (restore after a reinstall).
    #[zbus(out_args("subscriptions"))]
    async fn list_subscriptions(
        &self,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> std::result::Result<Vec<OwnedObjectPath>, Wire> {
        self.shared.touch();
        no_options("ListSubscriptions", &options)?;
        let who = self.bus.identify(conn, &hdr).await?;
        let subs = subscription::list(&self.shared, &who.owner()).await?;
        let mut paths = Vec::with_capacity(subs.len());
        for s in &subs {
            paths.push(self.bus.publish_subscription(s, None).await?);
        }
        Ok(paths)
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
pub(crate) fn payment_object(
    shared: &Arc<Shared>,
    bus: &Arc<Bus>,
    entry: Entry,
) -> (OwnedObjectPath, PaymentObj) {
    let path = payment_path(entry.id.unsigned_abs());
    let binding = shared.binding_path_of(&entry.binding);
    let obj = PaymentObj {
        shared: Arc::clone(shared),
        entry: std::sync::Mutex::new(entry),
        binding,
        bus: Arc::clone(bus),
    };
    (path, obj)
}

/// Serves the object of a journal entry (if not served yet; its `Introspect` scoped
/// to its owner, `scope`) and returns its path.
async fn serve_payment(
    shared: &Arc<Shared>,
    bus: &Arc<Bus>,
    objects: &ObjectServer,
    entry: Entry,
) -> std::result::Result<OwnedObjectPath, Wire> {
    let owner = entry.owner();
    let (path, obj) = payment_object(shared, bus, entry);
    // `false` when the object is already served: the same payment again.
    if objects.at(&path, obj).await? {
        scope::scope_payment(objects, path.as_str(), owner).await?;
    }
    Ok(path)
}
