//! `io.scanbind.Payment1`: one payment job, at `/io/scanbind/Daemon1/payment/p<id>`
//! (`<id>` is the journal's row id, so a payment keeps its path across restarts).
//!
//! The object mirrors its journal entry: every state change is committed to the journal
//! first, then copied here, then announced (`PropertiesChanged`, and `Completed` once
//! the state is final).

use std::collections::HashMap;
use std::sync::Arc;

use scanbind_device_api::types::{Amount, RefundRequest, RefundStatus};
use scanbind_ipc::types::keys;
use scanbind_ipc::{Error as Wire, ErrorInfo};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, fdo, interface};
use zvariant::{OwnedObjectPath, OwnedValue, Value};

use crate::dbus::caller;
use crate::error::Error;
use crate::store::journal::{Entry, RefundEntry, RefundRecorded, RefundState};
use crate::dbus::daemon::{Shared, publish_payment, settle_refund};

/// The longest refund reason (characters).
const MAX_REASON: usize = 256;

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
}

impl PaymentObj {
    /// A copy of the entry.
    pub(crate) fn entry(&self) -> Entry {
        crate::dbus::daemon::lock(&self.entry).clone()
    }

    /// Replaces the entry; returns the one it replaced.
    pub(crate) fn set_entry(&self, entry: Entry) -> Entry {
        std::mem::replace(&mut *crate::dbus::daemon::lock(&self.entry), entry)
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

    /// Property reads: only the app that paid may read a payment. The daemon's own
    /// reads (for `PropertiesChanged`) carry no header and pass.
    async fn guard(&self, conn: &Connection, hdr: Option<&Header<'_>>) -> fdo::Result<()> {
        let Some(hdr) = hdr else { return Ok(()) };
        let who = caller::identify(conn, hdr)
            .await
            .map_err(|e| fdo::Error::AccessDenied(e.to_string()))?;
        if who.app_id == self.entry().app_id {
            Ok(())
        } else {
            Err(fdo::Error::AccessDenied(
                "this payment belongs to another app".into(),
            ))
        }
    }
}

/// 1 to 64 printable ASCII characters without spaces.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| (0x21..0x7f).contains(&b))
}

/// A fresh refund id: `r-` + 24 hex digits.
fn new_refund_id() -> Result<String, Error> {
    let mut bytes = [0_u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| Error::ServerProtocol("no randomness for a refund id".into()))?;
    Ok(format!(
        "r-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// Sends a recorded refund to the server and settles it from the answer. A transport
/// error leaves it `pending` (reconciled at the next start, or by the server's event);
/// a refusal fails it and is the app's error.
pub(crate) async fn send_refund(
    shared: &Shared,
    entry: &Entry,
    refund: &RefundEntry,
    reason: &str,
) -> Result<RefundState, Wire> {
    // A checkout part is refunded as the seller's own payment.
    let server_id = match refund.part {
        Some(part) => crate::domain::checkout::part_payment_id(entry, part),
        None => entry.server_payment_id.clone(),
    };
    let Some(server_id) = server_id else {
        return Err(Wire::RefundNotAllowed(
            "the server has not confirmed this payment yet; retry later".into(),
        ));
    };
    let req = RefundRequest {
        refund_id: refund.refund_id.clone(),
        amount: Amount {
            currency: entry.amount.currency().code().to_owned(),
            value: refund.amount_minor,
        },
        reason: (!reason.is_empty()).then(|| reason.to_owned()),
    };
    match shared.server.refund(&server_id, &req).await {
        Ok(r) => {
            settle_refund(shared, &r.refund_id, r.status).await?;
            Ok(match r.status {
                RefundStatus::Pending => RefundState::Pending,
                RefundStatus::Succeeded => RefundState::Succeeded,
                RefundStatus::Failed => RefundState::Failed,
            })
        }
        Err(Error::ServerRejected {
            status,
            code,
            message,
        }) if (400..500).contains(&status) => {
            settle_refund(shared, &refund.refund_id, RefundStatus::Failed).await?;
            Err(Wire::RefundNotAllowed(format!("{code}: {message}")))
        }
        Err(e) => {
            tracing::warn!(refund = %refund.refund_id, cause = %e, "refund outcome unknown");
            Ok(RefundState::Pending)
        }
    }
}

#[interface(name = "io.scanbind.Payment1")]
impl PaymentObj {
    /// `Finish(a{sv} options)`: the app delivered the goods. Only the app that paid
    /// may call it, only on a `succeeded` payment; repeating it is a no-op.
    async fn finish(
        &self,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Wire> {
        if let Some(k) = options.keys().next() {
            return Err(Wire::UnknownOption(format!("Finish does not know {k:?}")));
        }
        let who = caller::identify(conn, &hdr).await?;
        if who.app_id != self.entry().app_id {
            return Err(Wire::NotFound("no such payment for this app".into()));
        }
        let id = self.entry().id;
        let entry = self
            .shared
            .journal(move |j| {
                j.mark_delivered(id)?;
                j.get(id)
            })
            .await?;
        // On every connection (this object included: `&self`, so no exclusive lock is
        // held while the others are updated).
        publish_payment(&self.shared, &entry, false).await?;
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
        if amount_minor <= 0 {
            return Err(Wire::InvalidAmount(format!(
                "amount_minor must be a positive number of minor units, not {amount_minor}"
            )));
        }
        if reason.chars().count() > MAX_REASON {
            return Err(Wire::InvalidArgument(format!(
                "reason must be at most {MAX_REASON} characters"
            )));
        }
        let who = caller::identify(conn, &hdr).await?;
        if who.app_id != self.entry().app_id {
            return Err(Wire::NotFound("no such payment for this app".into()));
        }
        match (crate::domain::checkout::spec_of(&self.entry()), part) {
            (Some(_), None) => {
                return Err(Wire::InvalidArgument(
                    "a combined checkout is refunded per seller: give the part option".into(),
                ));
            }
            (Some(spec), Some(p)) if p as usize >= spec.parts.len() => {
                return Err(Wire::InvalidArgument(format!(
                    "part {p} does not exist: this checkout has parts 0 to {}",
                    spec.parts.len() - 1
                )));
            }
            (None, Some(_)) => {
                return Err(Wire::InvalidArgument(
                    "option part is only for combined checkouts".into(),
                ));
            }
            _ => {}
        }
        let app_refund_id = match refund_id {
            Some(id) => id,
            None => new_refund_id().map_err(|e| Wire::Internal(e.to_string()))?,
        };
        // Refund ids are per payment: the key sent to the server is prefixed with the
        // payment's idempotency key, so two apps' ids never collide.
        let key = format!("{}-{app_refund_id}", self.entry().idempotency_key.as_str());
        let (id, k, r) = (self.entry().id, key, reason.clone());
        let recorded = self
            .shared
            .journal(move |j| j.record_refund(id, &k, amount_minor, &r, part))
            .await?;
        let refund = match recorded {
            RefundRecorded::NotPaid if part.is_some() => {
                return Err(Wire::RefundNotAllowed(
                    "only a part that succeeded can be refunded".into(),
                ));
            }
            RefundRecorded::NotPaid => {
                return Err(Wire::RefundNotAllowed(format!(
                    "only a succeeded payment can be refunded; this one is {}",
                    self.wire_state()
                )));
            }
            RefundRecorded::TooMuch(left) => {
                return Err(Wire::RefundNotAllowed(format!(
                    "at most {left} minor units are left to refund"
                )));
            }
            RefundRecorded::Existing(r) if r.amount_minor != amount_minor || r.part != part => {
                return Err(Wire::Duplicate(format!(
                    "refund {app_refund_id} was requested with another amount"
                )));
            }
            RefundRecorded::Existing(r) if r.state != RefundState::Pending => {
                return Ok((app_refund_id, r.state.as_str().to_owned()));
            }
            RefundRecorded::Existing(r) | RefundRecorded::New(r) => r,
        };
        let state = send_refund(&self.shared, &self.entry(), &refund, &reason).await?;
        Ok((app_refund_id, state.as_str().to_owned()))
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
        Ok(crate::domain::checkout::part_views(&self.entry()))
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
