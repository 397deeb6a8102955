//! [`Payment`]: one `io.scanbind.Payment1` object.

use std::collections::HashMap;

use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use scanbind_ipc::{ErrorInfo, Payment1Proxy, PaymentState};
use scanbind_money::{Currency, Money};
use serde::Serialize;
use zbus::proxy::CacheProperties;
use zvariant::OwnedObjectPath;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::watch::watch_property;

/// A payment started with [`Client::pay`] (or reopened with [`Client::payment`]).
#[derive(Debug, Clone)]
pub struct Payment {
    proxy: Payment1Proxy<'static>,
    path: OwnedObjectPath,
}

/// How a payment ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PaymentOutcome {
    /// `succeeded`, `failed`, `cancelled` or (a combined checkout whose parts were
    /// independent) `partially-succeeded`: see [`Payment::parts`].
    pub state: PaymentState,
    /// The signed receipt (JWS) when it succeeded.
    pub receipt: Option<String>,
    /// Why it failed, when it did.
    pub error: Option<ErrorInfo>,
}

impl PaymentOutcome {
    /// Whether the wallet was charged: deliver the goods, then [`Payment::finish`].
    pub fn succeeded(&self) -> bool {
        self.state == PaymentState::Succeeded
    }
}

/// One seller's part of a combined checkout ([`Payment::parts`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CheckoutPart {
    /// Position in the request, from 0 (what [`Payment::refund_part`] takes).
    pub index: u32,
    /// The seller id.
    pub seller: String,
    /// The seller's name (empty until the server answered).
    pub seller_name: String,
    /// The part's amount, minor units of the payment's currency.
    pub amount_minor: i64,
    /// What for.
    pub description: String,
    /// The part's own state: `pending`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    /// The part's signed receipt (naming the seller) once it succeeded.
    pub receipt: Option<String>,
    /// Paid, then reversed because another part of an all-or-nothing checkout failed.
    pub reversed: bool,
    /// Alipay's code for a failed part (or `CHECKOUT_REVERSED` / `CHECKOUT_ABORTED`).
    pub result_code: Option<String>,
    /// What was refunded of this part so far, minor units.
    pub refunded_minor: i64,
}

/// A refund asked for with [`Payment::refund`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Refund {
    /// The refund's id.
    pub id: String,
    /// `pending`, `succeeded` or `failed` (or a state a newer daemon added).
    pub state: String,
}

/// Reads a payment state, treating one this version does not know as
/// `pending-unknown` (not final), as the API asks.
fn parse_state(s: &str) -> PaymentState {
    s.parse().unwrap_or(PaymentState::PendingUnknown)
}

impl Payment {
    pub(crate) async fn open(client: &Client, path: OwnedObjectPath) -> Result<Payment> {
        let proxy = Payment1Proxy::builder(client.connection())
            .path(path.clone())?
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        Ok(Payment { proxy, path })
    }

    /// The object path (opaque; stays the same across daemon restarts).
    pub fn path(&self) -> &OwnedObjectPath {
        &self.path
    }

    /// The `io.scanbind.Payment1` proxy, for calls this API does not wrap.
    pub fn proxy(&self) -> &Payment1Proxy<'static> {
        &self.proxy
    }

    /// The current state (an unknown state reads as `pending-unknown`).
    #[doc(alias = "State")]
    pub async fn state(&self) -> Result<PaymentState> {
        Ok(parse_state(&self.proxy.state().await?))
    }

    /// The app's order id.
    #[doc(alias = "OrderId")]
    pub async fn order_id(&self) -> Result<String> {
        Ok(self.proxy.order_id().await?)
    }

    /// The amount charged (or to be charged).
    #[doc(alias = "AmountMinor")]
    #[doc(alias = "Currency")]
    pub async fn amount(&self) -> Result<Money> {
        let currency = Currency::from_code(&self.proxy.currency().await?)?;
        Ok(Money::from_minor(
            currency,
            self.proxy.amount_minor().await?,
        )?)
    }

    /// The description shown to the user.
    #[doc(alias = "Description")]
    pub async fn description(&self) -> Result<String> {
        Ok(self.proxy.description().await?)
    }

    /// When the daemon recorded it, seconds since the Unix epoch.
    #[doc(alias = "CreatedAt")]
    pub async fn created_at(&self) -> Result<i64> {
        Ok(self.proxy.created_at().await?)
    }

    /// The signed receipt once succeeded.
    #[doc(alias = "Receipt")]
    pub async fn receipt(&self) -> Result<Option<String>> {
        let r = self.proxy.receipt().await?;
        Ok((!r.is_empty()).then_some(r))
    }

    /// Why it failed, if it did.
    #[doc(alias = "LastError")]
    pub async fn last_error(&self) -> Result<Option<ErrorInfo>> {
        let e = self.proxy.last_error().await?;
        Ok((!e.name.is_empty()).then_some(e))
    }

    /// Whether the app called [`Payment::finish`].
    #[doc(alias = "Delivered")]
    pub async fn delivered(&self) -> Result<bool> {
        Ok(self.proxy.delivered().await?)
    }

    /// The total refunded so far.
    #[doc(alias = "RefundedMinor")]
    pub async fn refunded(&self) -> Result<Money> {
        let currency = Currency::from_code(&self.proxy.currency().await?)?;
        Ok(Money::from_minor(
            currency,
            self.proxy.refunded_minor().await?,
        )?)
    }

    /// For a payment made with [`PayRequest::by_order_code`]: the order QR code's text
    /// and when it expires (Unix seconds), waiting (bounded by your own timeout) until
    /// the server has made it. `None` once the payment is final without one.
    ///
    /// [`PayRequest::by_order_code`]: crate::PayRequest::by_order_code
    #[doc(alias = "OrderCode")]
    pub async fn order_code(&self) -> Result<Option<(String, i64)>> {
        let mut codes = watch_property(self.proxy.inner(), "OrderCode").await?;
        while let Some(code) = codes.next().await {
            let code = String::try_from(code?).map_err(zbus::Error::from)?;
            if !code.is_empty() {
                let expires = self.proxy.order_code_expires_at().await?;
                return Ok(Some((code, expires)));
            }
            if parse_state(&self.proxy.state().await?).is_terminal() {
                return Ok(None);
            }
        }
        Err(Error::Disconnected("the payment"))
    }

    /// Waits until the payment is final and returns the outcome; at once if it
    /// already is. `pending-unknown` is not final: the daemon keeps asking and the
    /// state moves on by itself. Bound it with a timeout of your own.
    #[doc(alias = "Completed")]
    pub async fn wait(&self) -> Result<PaymentOutcome> {
        // Subscribe first, then read the state: nothing can slip between the two.
        let mut completed = self.proxy.receive_completed().await?;
        loop {
            let state = parse_state(&self.proxy.state().await?);
            if state.is_terminal() {
                return self.outcome(state).await;
            }
            if completed.next().await.is_none() {
                return Err(Error::Disconnected("the payment"));
            }
        }
    }

    async fn outcome(&self, state: PaymentState) -> Result<PaymentOutcome> {
        let (receipt, error) = if state == PaymentState::Succeeded {
            (self.receipt().await?, None)
        } else {
            (None, self.last_error().await?)
        };
        Ok(PaymentOutcome {
            state,
            receipt,
            error,
        })
    }

    /// The payment's states: the current one first, then each change (a slow reader
    /// sees the latest). Ends when the daemon goes away.
    #[doc(alias = "PropertiesChanged")]
    pub async fn receive_states(&self) -> Result<BoxStream<'static, Result<PaymentState>>> {
        let stream = watch_property(self.proxy.inner(), "State").await?;
        Ok(stream
            .map(|value| {
                let state = String::try_from(value?).map_err(zbus::Error::from)?;
                Ok(parse_state(&state))
            })
            .boxed())
    }

    /// The total refunded so far: the current value first, then each change (a slow
    /// reader sees the latest). Ends when the daemon goes away.
    #[doc(alias = "RefundedMinor")]
    pub async fn receive_refunded(&self) -> Result<BoxStream<'static, Result<Money>>> {
        let currency = Currency::from_code(&self.proxy.currency().await?)?;
        let stream = watch_property(self.proxy.inner(), "RefundedMinor").await?;
        Ok(stream
            .map(move |value| {
                let minor = i64::try_from(value?).map_err(zbus::Error::from)?;
                Ok(Money::from_minor(currency, minor)?)
            })
            .boxed())
    }

    /// A combined checkout's parts, one per seller, in request order (empty for
    /// other payments).
    #[doc(alias = "Parts")]
    pub async fn parts(&self) -> Result<Vec<CheckoutPart>> {
        use scanbind_ipc::types::keys::part as k;
        let raw = <Vec<HashMap<String, zvariant::OwnedValue>>>::try_from(self.proxy.parts().await?)
            .map_err(zbus::Error::from)?;
        let mut out = Vec::with_capacity(raw.len());
        for d in raw {
            let text = |key: &str| -> String {
                d.get(key)
                    .and_then(|v| <&str>::try_from(v).ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let int = |key: &str| -> i64 {
                d.get(key)
                    .and_then(|v| i64::try_from(v).ok())
                    .unwrap_or_default()
            };
            let opt = |s: String| (!s.is_empty()).then_some(s);
            out.push(CheckoutPart {
                index: d
                    .get(k::INDEX)
                    .and_then(|v| u32::try_from(v).ok())
                    .unwrap_or_default(),
                seller: text(k::SELLER),
                seller_name: text(k::SELLER_NAME),
                amount_minor: int(k::AMOUNT_MINOR),
                description: text(k::DESCRIPTION),
                state: text(k::STATE),
                receipt: opt(text(k::RECEIPT)),
                reversed: d
                    .get(k::REVERSED)
                    .and_then(|v| bool::try_from(v).ok())
                    .unwrap_or_default(),
                result_code: opt(text(k::RESULT_CODE)),
                refunded_minor: int(k::REFUNDED_MINOR),
            });
        }
        Ok(out)
    }

    /// Asks for a refund of `amount` of a combined checkout's part `index` (within
    /// what is left of that part).
    #[doc(alias = "RequestRefund")]
    pub async fn refund_part(&self, index: u32, amount: Money, reason: &str) -> Result<Refund> {
        let opts = HashMap::from([(
            scanbind_ipc::types::keys::request_refund::PART,
            zvariant::Value::from(index),
        )]);
        let (id, state) = self
            .proxy
            .request_refund(amount.minor().get(), reason, opts)
            .await?;
        Ok(Refund { id, state })
    }

    /// Tells the daemon the goods were delivered (only for succeeded payments;
    /// repeating it does nothing).
    #[doc(alias = "Finish")]
    pub async fn finish(&self) -> Result<()> {
        Ok(self.proxy.finish(HashMap::new()).await?)
    }

    /// Asks for a refund of `amount` (all or part of what is left), with a reason for
    /// the records.
    #[doc(alias = "RequestRefund")]
    pub async fn refund(&self, amount: Money, reason: &str) -> Result<Refund> {
        let (id, state) = self
            .proxy
            .request_refund(amount.minor().get(), reason, HashMap::new())
            .await?;
        Ok(Refund { id, state })
    }
}
