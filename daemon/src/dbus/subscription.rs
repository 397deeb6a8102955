//! `io.scanbind.Subscription1`: one subscription, at
//! `/io/scanbind/Daemon1/subscription/<server id>` (`domain::subscription`).
//!
//! The object is a view of the merchant server's record as last seen (the answer to
//! `Subscribe`, `ListSubscriptions` or `Cancel`, or a `subscription.*` event). Only the
//! app that subscribed (its uid and app id) may read or cancel it: for anyone else
//! every property and method answers as a path that is not served
//! (`UnknownObject`), and its signals go to that app's connections only (`scope`).

use std::collections::HashMap;

use scanbind_device_api::types::Subscription;
use scanbind_ipc::Error as Wire;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, ObjectServer, fdo, interface};
use zvariant::OwnedValue;

use super::caller;
use super::daemon::DaemonObj;
use super::payment::CallError;
use super::scope::unknown_object;
use crate::domain::subscription::{self, unix_of};
use crate::store::journal::Owner;
use crate::sync::lock;

/// One subscription object.
#[derive(Debug)]
pub(crate) struct SubscriptionObj {
    /// The server's subscription as last seen. A std mutex, held for a copy or a
    /// replacement only.
    pub(crate) sub: std::sync::Mutex<Subscription>,
}

impl SubscriptionObj {
    /// A copy of the subscription.
    pub(crate) fn sub(&self) -> Subscription {
        lock(&self.sub).clone()
    }

    /// The app that subscribed.
    pub(crate) fn owner(&self) -> Owner {
        Owner::from_server_app_id(&lock(&self.sub).app_id)
    }

    /// `Ok` with the caller when the sender of `hdr` owns the subscription; anyone
    /// else is answered as for a path that is not served.
    async fn owned_by_caller(
        &self,
        conn: &Connection,
        hdr: &Header<'_>,
    ) -> Result<Owner, CallError> {
        let who = caller::identify(conn, hdr).await?.owner();
        if who == self.owner() {
            Ok(who)
        } else {
            Err(CallError::Hidden(unknown_object(hdr)))
        }
    }

    /// Property reads: the owner only; the daemon's own reads (for
    /// `PropertiesChanged`) carry no header and pass.
    async fn guard(&self, conn: &Connection, hdr: Option<&Header<'_>>) -> fdo::Result<()> {
        let Some(hdr) = hdr else { return Ok(()) };
        self.owned_by_caller(conn, hdr)
            .await
            .map(|_| ())
            .map_err(|e| match e {
                CallError::Hidden(e) => e,
                CallError::Wire(e) => fdo::Error::AccessDenied(e.to_string()),
            })
    }
}

#[interface(name = "io.scanbind.Subscription1")]
impl SubscriptionObj {
    /// `Cancel(a{sv} options) -> s state`: no more renewals; access until
    /// `CurrentPeriodEnd`. The owner only.
    #[zbus(out_args("state"))]
    async fn cancel(
        &self,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(object_server)] objects: &ObjectServer,
    ) -> Result<String, CallError> {
        let owner = self.owned_by_caller(conn, &hdr).await?;
        if let Some(k) = options.keys().next() {
            return Err(Wire::UnknownOption(format!("Cancel does not know {k:?}")).into());
        }
        let daemon = objects
            .interface::<_, DaemonObj>(scanbind_ipc::DAEMON_PATH)
            .await
            .map_err(|e| Wire::Internal(format!("the entry point is not served: {e}")))?;
        let shared = std::sync::Arc::clone(&daemon.get().await.shared);
        shared.touch();
        let id = self.sub().subscription_id;
        let s = subscription::cancel(&shared, &owner, &id)
            .await
            .map_err(Wire::from)?;
        let state = s.status.as_str().to_owned();
        // Copied to every connection's object (this one included); the server's
        // `subscription.cancelled` event announces it (`Changed`), once.
        shared
            .publisher
            .subscription_changed(&s, None)
            .await
            .map_err(Wire::from)?;
        Ok(state)
    }

    /// `Changed(s state, s event)`: the server renewed, failed to renew, cancelled or
    /// ended the subscription.
    #[zbus(signal)]
    pub(crate) async fn changed(
        emitter: &SignalEmitter<'_>,
        state: &str,
        event: &str,
    ) -> zbus::Result<()>;

    /// `State` (`s`).
    #[zbus(property)]
    async fn state(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.sub().status.as_str().to_owned())
    }

    /// `SubscriptionId` (`s`): the app's own id.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn subscription_id(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.sub().app_subscription_id)
    }

    /// `Plan` (`s`).
    #[zbus(property(emits_changed_signal = "const"))]
    async fn plan(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.sub().plan)
    }

    /// `AmountMinor` (`x`): the full price of one period.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn amount_minor(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<i64> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.sub().amount.value)
    }

    /// `Currency` (`s`).
    #[zbus(property(emits_changed_signal = "const"))]
    async fn currency(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.sub().amount.currency)
    }

    /// `Period` (`s`).
    #[zbus(property(emits_changed_signal = "const"))]
    async fn period(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.sub().period)
    }

    /// `Entitled` (`b`).
    #[zbus(property)]
    async fn entitled(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<bool> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.sub().entitled)
    }

    /// `CurrentPeriodEnd` (`x`): Unix seconds; 0 when none.
    #[zbus(property)]
    async fn current_period_end(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<i64> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(unix_of(self.sub().current_period_end.as_deref()))
    }

    /// `NextChargeAt` (`x`): Unix seconds; 0 when none.
    #[zbus(property)]
    async fn next_charge_at(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<i64> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(unix_of(self.sub().next_charge_at.as_deref()))
    }

    /// `NextChargeMinor` (`x`): 0 when none.
    #[zbus(property)]
    async fn next_charge_minor(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<i64> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.sub().next_charge_amount.map_or(0, |a| a.value))
    }

    /// `PeriodsPaid` (`u`).
    #[zbus(property)]
    async fn periods_paid(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<u32> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.sub().periods_paid)
    }

    /// `Receipt` (`s`): the signed subscription receipt; empty when none.
    #[zbus(property)]
    async fn receipt(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.guard(conn, hdr.as_ref()).await?;
        Ok(self.sub().receipt.unwrap_or_default())
    }
}

impl SubscriptionObj {
    /// Announces the change to `after` through `emitter`: `PropertiesChanged` for
    /// what may change, then `Changed(state, event)`.
    pub(crate) async fn announce(
        &self,
        emitter: &SignalEmitter<'_>,
        event: &str,
    ) -> zbus::Result<()> {
        self.state_changed(emitter).await?;
        self.entitled_changed(emitter).await?;
        self.current_period_end_changed(emitter).await?;
        self.next_charge_at_changed(emitter).await?;
        self.next_charge_minor_changed(emitter).await?;
        self.periods_paid_changed(emitter).await?;
        self.receipt_changed(emitter).await?;
        let state = self.sub().status.as_str();
        SubscriptionObj::changed(emitter, state, event).await
    }
}
