//! `io.scanbind.Payment1`: one payment job, at `/io/scanbind/Daemon1/payment/p<id>`
//! (`<id>` is the journal's row id, so a payment keeps its path across restarts).
//!
//! The object mirrors its journal entry: every state change is committed to the journal
//! first, then copied here, then announced (`PropertiesChanged`, and `Completed` once
//! the state is final) to the connections of the app that owns it only (`scope`).
//!
//! Only that app (its uid and app id) may see the object: for anyone else every
//! property, method and `Introspect` answers exactly as a path that is not served
//! (`org.freedesktop.DBus.Error.UnknownObject`, `Unknown object '<path>'`), checked
//! before the arguments are, so the answer tells nothing about the payment.

use std::collections::HashMap;
use std::sync::Arc;

use scanbind_ipc::types::keys;
use scanbind_ipc::{Error as Wire, ErrorInfo};
use zbus::message::{Header, Message};
use zbus::names::ErrorName;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, DBusError, fdo, interface};
use zvariant::{OwnedObjectPath, OwnedValue, Value};

use super::Bus;
use super::scope::unknown_object;
use crate::domain::driver::publish_payment;
use crate::domain::refund;
use crate::domain::shared::Shared;
use crate::store::journal::Entry;
use crate::sync::lock;

/// One payment object.
#[derive(Debug)]
pub(crate) struct PaymentObj {
    pub(crate) shared: Arc<Shared>,
    /// The journal entry as last committed. A std mutex (held for a copy or a
    /// replacement only): updates need no exclusive access to the object, so a state
    /// change never waits for a method call on the same object to finish.
    pub(crate) entry: std::sync::Mutex<Entry>,
    /// The binding charged.
    pub(crate) binding: OwnedObjectPath,
    /// Who is calling, and where the signals go.
    pub(crate) bus: Arc<Bus>,
}

/// The error of a `Payment1` method: a wire error, or the answer for a path that is
/// not served (a payment of another app).
#[derive(Debug)]
pub(crate) enum CallError {
    /// A wire error.
    Wire(Wire),
    /// Not the caller's payment: what zbus answers for a path it does not serve.
    Hidden(fdo::Error),
}

impl From<Wire> for CallError {
    fn from(e: Wire) -> Self {
        CallError::Wire(e)
    }
}

impl DBusError for CallError {
    fn create_reply(&self, msg: &Header<'_>) -> zbus::Result<Message> {
        match self {
            CallError::Wire(e) => e.create_reply(msg),
            CallError::Hidden(e) => e.create_reply(msg),
        }
    }

    fn name(&self) -> ErrorName<'_> {
        match self {
            CallError::Wire(e) => e.name(),
            CallError::Hidden(e) => e.name(),
        }
    }

    fn description(&self) -> Option<&str> {
        match self {
            CallError::Wire(e) => e.description(),
            CallError::Hidden(e) => e.description(),
        }
    }
}

impl PaymentObj {
    /// A copy of the entry.
    pub(crate) fn entry(&self) -> Entry {
        lock(&self.entry).clone()
    }

    /// Replaces the entry; returns the one it replaced.
    pub(crate) fn set_entry(&self, entry: Entry) -> Entry {
        std::mem::replace(&mut *lock(&self.entry), entry)
    }

    /// The `details` of the `Completed` signal.
    pub(crate) fn completed_details(&self) -> HashMap<&'static str, Value<'static>> {
        let mut d = HashMap::new();
        if let Some(e) = self.entry().error {
            d.insert(keys::completed::ERROR_NAME, Value::from(e.name));
            d.insert(keys::completed::ERROR_MESSAGE, Value::from(e.message));
        }
        d
    }

    /// The wire state.
    pub(crate) fn wire_state(&self) -> &'static str {
        self.entry().wire_state().as_str()
    }

    /// Property reads: only the app that paid, run by the user who paid, may read a
    /// payment; anyone else is answered as for a path that is not served. The
    /// daemon's own reads (for `PropertiesChanged`) carry no header and pass.
    async fn guard(&self, conn: &Connection, hdr: Option<&Header<'_>>) -> fdo::Result<()> {
        let Some(hdr) = hdr else { return Ok(()) };
        self.owned_by_caller(conn, hdr).await.map_err(|e| match e {
            CallError::Hidden(e) => e,
            CallError::Wire(e) => fdo::Error::AccessDenied(e.to_string()),
        })
    }

    /// `Ok` when the sender of `hdr` owns the payment (it is then noted as one of
    /// that app's connections); a caller that cannot be identified is refused
    /// (`NotAllowed`), anyone else answered as for a path that is not served.
    async fn owned_by_caller(&self, conn: &Connection, hdr: &Header<'_>) -> Result<(), CallError> {
        let who = self.bus.identify(conn, hdr).await?;
        if self.entry().is_owned_by(&who.owner()) {
            Ok(())
        } else {
            Err(CallError::Hidden(unknown_object(hdr)))
        }
    }
}

impl PaymentObj {
    /// `RequestRefund` once the caller is known to own the payment.
    async fn refund(
        &self,
        amount_minor: i64,
        reason: String,
        options: HashMap<String, OwnedValue>,
    ) -> Result<(String, String), Wire> {
        let mut refund_id = None;
        let mut part = None;
        for (k, v) in &options {
            match (k.as_str(), &**v) {
                (keys::request_refund::PART, Value::U32(p)) => part = Some(*p),
                (keys::request_refund::PART, _) => {
                    return Err(Wire::InvalidArgument("option part must be u".into()));
                }
                (keys::request_refund::REFUND_ID, Value::Str(id)) if valid_id(id) => {
                    refund_id = Some(id.to_string());
                }
                (keys::request_refund::REFUND_ID, _) => {
                    return Err(Wire::InvalidArgument(
                        "option refund-id must be s of 1 to 64 printable ASCII characters".into(),
                    ));
                }
                (other, _) => {
                    return Err(Wire::UnknownOption(format!(
                        "RequestRefund does not know {other:?}"
                    )));
                }
            }
        }
        refund::check_request(amount_minor, &reason)?;
        let (refund_id, state) = refund::request(
            &self.shared,
            &self.entry(),
            amount_minor,
            &reason,
            part,
            refund_id,
        )
        .await?;
        Ok((refund_id, state.as_str().to_owned()))
    }
}

/// 1 to 64 printable ASCII characters without spaces.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| (0x21..0x7f).contains(&b))
}

#[interface(name = "io.scanbind.Payment1")]
impl PaymentObj {
    /// `Finish(a{sv} options)`: the app delivered the goods. Only the app that paid (run
    /// by the same user) may call it, only on a `succeeded` payment; repeating it is a no-op.
    async fn finish(
        &self,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), CallError> {
        self.owned_by_caller(conn, &hdr).await?;
        if let Some(k) = options.keys().next() {
            return Err(Wire::UnknownOption(format!("Finish does not know {k:?}")).into());
        }
        let id = self.entry().id;
        let entry = self
            .shared
            .journal(move |j| {
                j.mark_delivered(id)?;
                j.get(id)
            })
            .await
            .map_err(Wire::from)?;
        // On every connection (this object included: `&self`, so no exclusive lock is
        // held while the others are updated).
        publish_payment(&self.shared, &entry, false)
            .await
            .map_err(Wire::from)?;
        Ok(())
    }

    /// `RequestRefund(x amount_minor, s reason, a{sv} options) -> (s refund_id, s
    /// state)`: records the refund (only within what is left to refund of a succeeded
    /// payment), sends it and answers with its state; a `pending` one settles later
    /// (`RefundedMinor` changes).
    #[zbus(out_args("refund_id", "state"))]
    async fn request_refund(
        &self,
        amount_minor: i64,
        reason: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(String, String), CallError> {
        self.owned_by_caller(conn, &hdr).await?;
        Ok(self.refund(amount_minor, reason, options).await?)
    }

    /// `Completed(s state, a{sv} details)`: emitted once, when `State` becomes final.
    #[zbus(signal)]
    pub(crate) async fn completed(
        emitter: &SignalEmitter<'_>,
        state: &str,
        details: HashMap<&str, Value<'_>>,
    ) -> zbus::Result<()>;

    /// `State` (`s`): a payment state.
    #[zbus(property)]
    async fn state(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.wire_state().to_owned())
    }

    /// `OrderId` (`s`): the app's order id.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn order_id(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.entry().order_id.clone())
    }

    /// `AmountMinor` (`x`): the amount in minor units.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn amount_minor(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<i64> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.entry().amount.minor().get())
    }

    /// `Currency` (`s`): the ISO 4217 code.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn currency(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.entry().amount.currency().code().to_owned())
    }

    /// `Description` (`s`): as given to `Pay`.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn description(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.entry().description.clone())
    }

    /// `Binding` (`o`): the binding charged.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn binding(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<OwnedObjectPath> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.binding.clone())
    }

    /// `CreatedAt` (`x`): when it was recorded, Unix seconds (UTC).
    #[zbus(property(emits_changed_signal = "const"))]
    async fn created_at(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<i64> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.entry().created_at)
    }

    /// `Receipt` (`s`): the signed receipt (JWS compact) once `succeeded`; empty before.
    #[zbus(property)]
    async fn receipt(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.entry().receipt.clone().unwrap_or_default())
    }

    /// `LastError` (`(ss)`): why it failed; empty strings otherwise.
    #[zbus(property)]
    async fn last_error(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<ErrorInfo> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.entry().error.clone().unwrap_or_default())
    }

    /// `Delivered` (`b`): whether the app called `Finish`.
    #[zbus(property)]
    async fn delivered(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<bool> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.entry().delivered)
    }

    /// `RefundedMinor` (`x`): the total refunded so far, in minor units.
    #[zbus(property)]
    async fn refunded_minor(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<i64> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.entry().refunded_minor)
    }

    /// `OrderCode` (`s`): the order QR code's text while the payment is open; empty
    /// otherwise.
    #[zbus(property)]
    async fn order_code(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.guard(conn, hdr.as_ref()).await?;
        let e = self.entry();
        Ok(if e.state.is_terminal() {
            String::new()
        } else {
            e.order_code.unwrap_or_default()
        })
    }

    /// `Parts` (`aa{sv}`): a combined checkout's parts; empty for other payments.
    #[zbus(property)]
    async fn parts(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<Vec<HashMap<String, OwnedValue>>> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(part_views(&self.entry()))
    }

    /// `OrderCodeExpiresAt` (`x`): when the order QR code expires; 0 without one.
    #[zbus(property)]
    async fn order_code_expires_at(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<i64> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.entry().order_code_expires_at.unwrap_or(0))
    }
}

/// The `Parts` property: one dictionary per part (keys in [`keys::part`]), the
/// request's fields filled in with the server's latest answer.
pub(crate) fn part_views(entry: &Entry) -> Vec<HashMap<String, OwnedValue>> {
    use keys::part as k;
    let Some(spec) = crate::domain::checkout::spec_of(entry) else {
        return Vec::new();
    };
    let result = crate::domain::checkout::result_of(entry);
    let s = |v: &str| OwnedValue::try_from(Value::from(v)).unwrap_or_else(|_| OwnedValue::from(0));
    spec.parts
        .iter()
        .enumerate()
        .map(|(i, asked)| {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            let known = result
                .as_ref()
                .and_then(|c| c.parts.iter().find(|p| p.index == index));
            let mut d = HashMap::new();
            d.insert(k::INDEX.to_owned(), OwnedValue::from(index));
            d.insert(k::SELLER.to_owned(), s(&asked.seller));
            d.insert(
                k::AMOUNT_MINOR.to_owned(),
                OwnedValue::from(asked.amount_minor),
            );
            d.insert(k::DESCRIPTION.to_owned(), s(&asked.description));
            d.insert(
                k::SELLER_NAME.to_owned(),
                s(known.map(|p| p.seller_name.as_str()).unwrap_or_default()),
            );
            d.insert(
                k::STATE.to_owned(),
                s(known.map_or("pending", |p| p.status.as_str())),
            );
            d.insert(
                k::RECEIPT.to_owned(),
                s(known.and_then(|p| p.receipt.as_deref()).unwrap_or_default()),
            );
            d.insert(
                k::REVERSED.to_owned(),
                OwnedValue::from(known.is_some_and(|p| p.reversed)),
            );
            d.insert(
                k::RESULT_CODE.to_owned(),
                s(known
                    .and_then(|p| p.result_code.as_deref())
                    .unwrap_or_default()),
            );
            d.insert(
                k::REFUNDED_MINOR.to_owned(),
                OwnedValue::from(entry.part_refunds.get(&index).copied().unwrap_or(0)),
            );
            d
        })
        .collect()
}
