//! `io.scanbind.Payment1`: one payment job, at `/io/scanbind/Daemon1/payment/p<id>`
//! (`<id>` is the journal's row id, so a payment keeps its path across restarts).
//!
//! The object mirrors its journal entry: every state change is committed to the journal
//! first, then copied here, then announced (`PropertiesChanged`, and `Completed` once
//! the state is final).

use std::collections::HashMap;
use std::sync::Arc;

use scanbind_ipc::types::keys;
use scanbind_ipc::{Error as Wire, ErrorInfo};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, fdo, interface};
use zvariant::{OwnedObjectPath, OwnedValue, Value};

use crate::caller;
use crate::journal::Entry;
use crate::service::Shared;

/// One payment object.
#[derive(Debug)]
pub(crate) struct PaymentObj {
    pub(crate) shared: Arc<Shared>,
    /// The journal entry as last committed.
    pub(crate) entry: Entry,
    /// The binding charged.
    pub(crate) binding: OwnedObjectPath,
}

impl PaymentObj {
    /// The `details` of the `Completed` signal.
    pub(crate) fn completed_details(&self) -> HashMap<&'static str, Value<'_>> {
        let mut d = HashMap::new();
        if let Some(e) = &self.entry.error {
            d.insert(keys::completed::ERROR_NAME, Value::from(e.name.as_str()));
            d.insert(
                keys::completed::ERROR_MESSAGE,
                Value::from(e.message.as_str()),
            );
        }
        d
    }

    /// The wire state.
    pub(crate) fn wire_state(&self) -> &'static str {
        self.entry.state.to_wire().as_str()
    }
}

#[interface(name = "io.scanbind.Payment1")]
impl PaymentObj {
    /// `Finish(a{sv} options)`: the app delivered the goods. Only the app that paid
    /// may call it, only on a `succeeded` payment; repeating it is a no-op.
    async fn finish(
        &mut self,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Wire> {
        if let Some(k) = options.keys().next() {
            return Err(Wire::UnknownOption(format!("Finish does not know {k:?}")));
        }
        let who = caller::identify(conn, &hdr).await?;
        if who.app_id != self.entry.app_id {
            return Err(Wire::NotFound("no such payment for this app".into()));
        }
        let id = self.entry.id;
        let entry = self
            .shared
            .journal(move |j| {
                j.mark_delivered(id)?;
                j.get(id)
            })
            .await?;
        self.entry = entry;
        self.delivered_changed(&emitter).await?;
        Ok(())
    }

    /// `RequestRefund(x amount_minor, s reason, a{sv} options) -> (s refund_id, s
    /// state)`: not implemented yet (issue 5).
    #[zbus(out_args("refund_id", "state"))]
    async fn request_refund(
        &self,
        amount_minor: i64,
        reason: String,
        options: HashMap<String, OwnedValue>,
    ) -> Result<(String, String), Wire> {
        // Named as in the XML (introspection shows argument names).
        let _ = (amount_minor, reason, options);
        Err(Wire::ZBus(zbus::Error::FDO(Box::new(
            fdo::Error::NotSupported("RequestRefund is not implemented yet".into()),
        ))))
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
    fn state(&self) -> String {
        self.wire_state().to_owned()
    }

    /// `OrderId` (`s`): the app's order id.
    #[zbus(property(emits_changed_signal = "const"))]
    fn order_id(&self) -> String {
        self.entry.order_id.clone()
    }

    /// `AmountMinor` (`x`): the amount in minor units.
    #[zbus(property(emits_changed_signal = "const"))]
    fn amount_minor(&self) -> i64 {
        self.entry.amount.minor().get()
    }

    /// `Currency` (`s`): the ISO 4217 code.
    #[zbus(property(emits_changed_signal = "const"))]
    fn currency(&self) -> String {
        self.entry.amount.currency().code().to_owned()
    }

    /// `Description` (`s`): as given to `Pay`.
    #[zbus(property(emits_changed_signal = "const"))]
    fn description(&self) -> String {
        self.entry.description.clone()
    }

    /// `Binding` (`o`): the binding charged.
    #[zbus(property(emits_changed_signal = "const"))]
    fn binding(&self) -> OwnedObjectPath {
        self.binding.clone()
    }

    /// `CreatedAt` (`x`): when it was recorded, Unix seconds (UTC).
    #[zbus(property(emits_changed_signal = "const"))]
    fn created_at(&self) -> i64 {
        self.entry.created_at
    }

    /// `Receipt` (`s`): the signed receipt (JWS compact) once `succeeded`; empty before.
    #[zbus(property)]
    fn receipt(&self) -> String {
        self.entry.receipt.clone().unwrap_or_default()
    }

    /// `LastError` (`(ss)`): why it failed; empty strings otherwise.
    #[zbus(property)]
    fn last_error(&self) -> ErrorInfo {
        self.entry.error.clone().unwrap_or_default()
    }

    /// `Delivered` (`b`): whether the app called `Finish`.
    #[zbus(property)]
    fn delivered(&self) -> bool {
        self.entry.delivered
    }

    /// `RefundedMinor` (`x`): the total refunded so far, in minor units.
    #[zbus(property)]
    fn refunded_minor(&self) -> i64 {
        0
    }
}
