//! Wire types: records returned by methods, state values, and the keys of every
//! `a{sv}` dictionary.
//!
//! Stable records are typed structs (their D-Bus signature is fixed forever);
//! open-ended data travels as `a{sv}` with the keys listed in [`keys`]. States travel
//! as lower-case strings (`s`) so that tools like `busctl` show them readably; the enums
//! here parse and print them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use zvariant::{OwnedObjectPath, OwnedValue, Type, Value};

/// The state of a payment job (`io.scanbind.Payment1.State`).
///
/// Since 0.1. New states may be added; treat an unknown state like `pending-unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Type)]
#[zvariant(signature = "s")]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PaymentState {
    /// Recorded in the journal and being charged; the result is not known yet.
    Pending,
    /// Charged. The receipt is available.
    Succeeded,
    /// Not charged; `LastError` says why.
    Failed,
    /// The charge was sent but its outcome is not known yet (timeout, wallet still
    /// processing). The daemon keeps asking the server; the state moves on by itself.
    /// Never deliver goods in this state, and never report it to the user as a failure.
    PendingUnknown,
    /// Cancelled before it was charged (e.g. it stayed unknown until its expiry).
    Cancelled,
    /// A combined checkout without `all-or-nothing` (final): some sellers' parts were
    /// charged and some were not; `Parts` says which. Deliver what was paid for.
    /// Since 0.1.
    PartiallySucceeded,
}

impl PaymentState {
    /// Every state, in lifecycle order.
    pub const ALL: &'static [PaymentState] = &[
        PaymentState::Pending,
        PaymentState::Succeeded,
        PaymentState::Failed,
        PaymentState::PendingUnknown,
        PaymentState::Cancelled,
        PaymentState::PartiallySucceeded,
    ];

    /// The wire form (`"pending"`, `"succeeded"`, `"failed"`, `"pending-unknown"`,
    /// `"cancelled"`, `"partially-succeeded"`).
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::Pending => "pending",
            PaymentState::Succeeded => "succeeded",
            PaymentState::Failed => "failed",
            PaymentState::PendingUnknown => "pending-unknown",
            PaymentState::Cancelled => "cancelled",
            PaymentState::PartiallySucceeded => "partially-succeeded",
        }
    }

    /// Whether the state is final (the `Completed` signal has been or will be emitted
    /// with it and it never changes again).
    pub fn is_terminal(self) -> bool {
        match self {
            PaymentState::Succeeded
            | PaymentState::Failed
            | PaymentState::Cancelled
            | PaymentState::PartiallySucceeded => true,
            PaymentState::Pending | PaymentState::PendingUnknown => false,
        }
    }
}

/// The state of a binding (`io.scanbind.Binding1.State`).
///
/// Since 0.1. New states may be added; treat an unknown state as "not bound".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Type)]
#[zvariant(signature = "s")]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum BindingState {
    /// The QR code is on display and waits to be scanned and approved.
    Pending,
    /// The wallet approved; the device holds its tokens and can charge it.
    Bound,
    /// The user declined on the phone.
    Denied,
    /// The QR code expired (15 minutes) before it was approved. Start a new binding.
    Expired,
    /// The binding could not be completed; `LastError` says why.
    Failed,
    /// The binding was removed (from the device or from the wallet app).
    Unbound,
}

impl BindingState {
    /// Every state, in lifecycle order.
    pub const ALL: &'static [BindingState] = &[
        BindingState::Pending,
        BindingState::Bound,
        BindingState::Denied,
        BindingState::Expired,
        BindingState::Failed,
        BindingState::Unbound,
    ];

    /// The wire form (`"pending"`, `"bound"`, `"denied"`, `"expired"`, `"failed"`,
    /// `"unbound"`).
    pub fn as_str(self) -> &'static str {
        match self {
            BindingState::Pending => "pending",
            BindingState::Bound => "bound",
            BindingState::Denied => "denied",
            BindingState::Expired => "expired",
            BindingState::Failed => "failed",
            BindingState::Unbound => "unbound",
        }
    }

    /// Whether the binding job has completed (anything but `pending`); `Completed` is
    /// emitted exactly once, on leaving `pending`.
    pub fn is_completed(self) -> bool {
        match self {
            BindingState::Pending => false,
            BindingState::Bound
            | BindingState::Denied
            | BindingState::Expired
            | BindingState::Failed
            | BindingState::Unbound => true,
        }
    }
}

/// The daemon's link to the merchant server (`io.scanbind.Daemon1.Connectivity`).
///
/// Since 0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Type)]
#[zvariant(signature = "s")]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Connectivity {
    /// The event stream to the server is open.
    Online,
    /// (Re)connecting; new payments fail with `Offline` until online.
    Connecting,
    /// No server reachable; new payments fail with `Offline`.
    Offline,
}

impl Connectivity {
    /// Every value.
    pub const ALL: &'static [Connectivity] = &[
        Connectivity::Online,
        Connectivity::Connecting,
        Connectivity::Offline,
    ];

    /// The wire form (`"online"`, `"connecting"`, `"offline"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Connectivity::Online => "online",
            Connectivity::Connecting => "connecting",
            Connectivity::Offline => "offline",
        }
    }
}

/// A state string that is not one this version knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownState(pub String);

impl fmt::Display for UnknownState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown state {:?}", self.0)
    }
}

impl std::error::Error for UnknownState {}

macro_rules! string_enum {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $t {
            type Err = UnknownState;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$t>::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownState(s.to_owned()))
            }
        }
    };
}

string_enum!(PaymentState);
string_enum!(BindingState);
string_enum!(Connectivity);

/// One entry of `ListBindings`: signature `(osss)`.
///
/// Since 0.1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct BindingSummary {
    /// The binding's object (implements `io.scanbind.Binding1`).
    pub binding: OwnedObjectPath,
    /// The wallet (`customerBelongsTo`, e.g. `ALIPAY_HK`, `GCASH`).
    pub wallet: String,
    /// The binding's state.
    pub state: BindingState,
    /// What the user sees for this binding: the masked wallet account once bound, or
    /// the label given to `StartBinding`.
    pub label: String,
}

/// One entry of `ListPayments`: signature `(osxsbsx)`.
///
/// Since 0.1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct PaymentSummary {
    /// The payment's object (implements `io.scanbind.Payment1`).
    pub payment: OwnedObjectPath,
    /// The app's own order id, as given to `Pay`.
    pub order_id: String,
    /// The amount in minor units of `currency` (cents, whole yen, ...).
    pub amount_minor: i64,
    /// The ISO 4217 currency code.
    pub currency: String,
    /// Whether the app called `Finish` on it.
    pub delivered: bool,
    /// The payment's state.
    pub state: PaymentState,
    /// When the daemon recorded it, in seconds since the Unix epoch (UTC).
    pub created_at: i64,
}

/// One entry of `Manager1.ListSubscriptions`: signature `(susssxsssx)`.
///
/// Since 0.4.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct SubscriptionSummary {
    /// The merchant server's subscription id (`Manager1.CancelSubscription` takes it).
    pub subscription: String,
    /// The uid of the user whose app subscribed.
    pub uid: u32,
    /// The app that subscribed.
    pub app_id: String,
    /// The app's own subscription id.
    pub app_subscription_id: String,
    /// The plan's name.
    pub plan: String,
    /// The full price of one period, minor units of `currency`.
    pub amount_minor: i64,
    /// The ISO 4217 currency code.
    pub currency: String,
    /// The billing period (`P1M`, ...).
    pub period: String,
    /// `pending`, `trial`, `active`, `grace`, `cancelled` or `expired`.
    pub state: String,
    /// The end of what is paid for (or of the trial), seconds since the Unix epoch; 0
    /// when none.
    pub current_period_end: i64,
}

/// The last error of a job (`LastError` on `Binding1` and `Payment1`): signature
/// `(ss)`. Both fields are empty when there was none.
///
/// Since 0.1.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Type, Value, OwnedValue)]
pub struct ErrorInfo {
    /// A D-Bus error name from [`crate::Error`] (`io.scanbind.Daemon1.Error.*`).
    pub name: String,
    /// A human-readable message (English; for logs, not for matching).
    pub message: String,
}

/// The keys of every `a{sv}` dictionary, by method or signal. Unknown keys in an
/// argument are refused with `UnknownOption`, so a key that an older daemon does not
/// know is never silently ignored.
pub mod keys {
    /// `Daemon1.GetStatus` result keys.
    pub mod status {
        /// `s`: the daemon's version.
        pub const VERSION: &str = "version";
        /// `s`: the link to the merchant server, a [`Connectivity`](crate::types::Connectivity).
        pub const CONNECTIVITY: &str = "connectivity";
        /// `ao`: the objects of every `bound` binding.
        pub const BINDINGS: &str = "bindings";
        /// `s`: the name this device shows on the wallet page.
        pub const DEVICE_NAME: &str = "device-name";
    }

    /// `Daemon1.StartBinding` options.
    pub mod start_binding {
        /// `s`: a label for the binding, shown next to it in lists (at most 64 chars).
        pub const LABEL: &str = "label";
        /// `b`: whether the daemon shows the QR on the trusted display (default true).
        pub const DISPLAY: &str = "display";
    }

    /// `Daemon1.Pay` options.
    pub mod pay {
        /// `o`: the binding to charge (default: the only bound binding; with several,
        /// omitting it fails with `InvalidArgument`).
        pub const BINDING: &str = "binding";
        /// `aa{sv}`: line items, each with `name` (`s`), `quantity` (`u`) and
        /// `amount-minor` (`x`, per unit); their total must equal the amount.
        pub const LINE_ITEMS: &str = "line-items";
        /// `b`: pay by scanning an order QR code with a wallet app instead of charging
        /// a bound wallet (no binding needed; the code is in the payment's `OrderCode`
        /// property). Default false.
        pub const ORDER_CODE: &str = "order-code";
        /// `aa{sv}`: a combined checkout: one part per seller, each with `seller`
        /// (`s`, the seller id the merchant server knows), `amount-minor` (`x`) and
        /// `description` (`s`); 2 to 20 parts (6 with `all-or-nothing`), adding up to
        /// the amount. The user confirms once; each seller is paid separately.
        pub const SELLERS: &str = "sellers";
        /// `b`: with `sellers`: every part is paid or none is (parts already paid are
        /// reversed when one fails). Default true; false lets parts succeed or fail
        /// independently (`partially-succeeded`).
        pub const ALL_OR_NOTHING: &str = "all-or-nothing";
    }

    /// The keys of one `Pay` `sellers` part.
    pub mod seller {
        /// `s`: the seller id (1 to 64 characters).
        pub const SELLER: &str = "seller";
        /// `x`: this seller's amount, in minor units of the payment's currency.
        pub const AMOUNT_MINOR: &str = "amount-minor";
        /// `s`: what this seller sells (1 to 256 characters), shown by the wallet.
        pub const DESCRIPTION: &str = "description";
    }

    /// The keys of one entry of `Payment1.Parts` (a combined checkout's parts).
    pub mod part {
        /// `u`: position in the `sellers` option, from 0.
        pub const INDEX: &str = "index";
        /// `s`: the seller id.
        pub const SELLER: &str = "seller";
        /// `s`: the seller's name, once the server answered.
        pub const SELLER_NAME: &str = "seller-name";
        /// `x`: the part's amount, minor units.
        pub const AMOUNT_MINOR: &str = "amount-minor";
        /// `s`: what for.
        pub const DESCRIPTION: &str = "description";
        /// `s`: the part's own payment state (`pending`, `succeeded`, `failed`,
        /// `cancelled`).
        pub const STATE: &str = "state";
        /// `s`: the part's signed receipt once it succeeded (empty otherwise).
        pub const RECEIPT: &str = "receipt";
        /// `b`: the part was paid, then reversed because another part of an
        /// all-or-nothing checkout failed.
        pub const REVERSED: &str = "reversed";
        /// `s`: Alipay's result code of a failed part (or `CHECKOUT_REVERSED`,
        /// `CHECKOUT_ABORTED`, `CHECKOUT_EXPIRED`); empty otherwise.
        pub const RESULT_CODE: &str = "result-code";
        /// `x`: what was refunded of this part so far, minor units.
        pub const REFUNDED_MINOR: &str = "refunded-minor";
    }

    /// `Subscribe` options.
    pub mod subscribe {
        /// `s`, required: the app's own subscription id (1 to 64 printable ASCII
        /// characters), the idempotency key.
        pub const SUBSCRIPTION_ID: &str = "subscription-id";
        /// `s`: what the user gets, shown on the confirmation (1 to 256 characters).
        pub const DESCRIPTION: &str = "description";
        /// `s`: a free trial before the first charge (`P3D`, `P1W`, `P2W`, `P1M`).
        pub const TRIAL: &str = "trial";
        /// `x`: the introductory price of one period, minor units (with
        /// `intro-periods`).
        pub const INTRO_AMOUNT_MINOR: &str = "intro-amount-minor";
        /// `u`: how many periods cost `intro-amount-minor` (1 to 12).
        pub const INTRO_PERIODS: &str = "intro-periods";
        /// `o`: the binding that pays (needed when several wallets are bound).
        pub const BINDING: &str = "binding";
    }

    /// The `event` of `Subscription1.Changed`.
    pub mod subscription_changed {
        /// A period was paid.
        pub const RENEWED: &str = "renewed";
        /// A renewal charge failed (the subscription is in grace or expired).
        pub const RENEWAL_FAILED: &str = "renewal-failed";
        /// It entered its grace period.
        pub const GRACE: &str = "grace";
        /// It ended.
        pub const EXPIRED: &str = "expired";
        /// It was cancelled (access until `CurrentPeriodEnd`).
        pub const CANCELLED: &str = "cancelled";
    }

    /// The keys of one `Pay` line item.
    pub mod line_item {
        /// `s`: what is sold (at most 256 chars).
        pub const NAME: &str = "name";
        /// `u`: how many (at least 1).
        pub const QUANTITY: &str = "quantity";
        /// `x`: price of one, in minor units of the payment's currency.
        pub const AMOUNT_MINOR: &str = "amount-minor";
    }

    /// `Daemon1.ListPayments` options.
    pub mod list_payments {
        /// `b`: only payments the app must still act on: not `Finish`ed and not
        /// failed or cancelled (default false). Call this at start to catch up on
        /// results delivered while the app was not running.
        pub const UNFINISHED: &str = "unfinished";
        /// `u`: at most this many, newest first (default 100, at most 1000).
        pub const LIMIT: &str = "limit";
    }

    /// `Payment1.RequestRefund` options.
    pub mod request_refund {
        /// `s`: the app's own id for this refund (1 to 64 printable ASCII characters),
        /// its idempotency key: the same id again returns the same refund, never a
        /// second one. Default: a fresh id (a retry then makes a new refund).
        pub const REFUND_ID: &str = "refund-id";
        /// `u`: for a combined checkout, which part (its `index`) to refund;
        /// required there, refused for other payments.
        pub const PART: &str = "part";
    }

    /// `Binding1.GetQrSvg` and `Binding1.GetQrPng` options.
    pub mod qr {
        /// `u`: size of one module in pixels (PNG) or user units (SVG); default 8,
        /// 1 to 64.
        pub const MODULE_SIZE: &str = "module-size";
        /// `b`: include the 4-module quiet zone (default true).
        pub const QUIET_ZONE: &str = "quiet-zone";
    }

    /// The display agent protocol (`io.scanbind.Agent1`): request kinds, the keys of
    /// `details` and `answer`, and `Dismiss` outcomes. Agents must ignore keys they do
    /// not know; new keys and kinds may be added.
    pub mod agent {
        /// `Show` kind: a binding QR code to scan with the wallet app.
        pub const KIND_BINDING_QR: &str = "binding-qr";
        /// `Show` kind: an order QR code to pay by scanning.
        pub const KIND_ORDER_CODE: &str = "order-code";
        /// `Confirm` kind: the first charge of an app the policy does not know.
        pub const KIND_CONSENT: &str = "consent";
        /// `Confirm` kind: a charge the policy wants confirmed.
        pub const KIND_PAYMENT: &str = "payment";
        /// `Confirm` kind: a kid profile's charge, approved with the parent PIN.
        pub const KIND_PARENT_APPROVAL: &str = "parent-approval";
        /// `Confirm` kind: an app asks to unbind a wallet from this device (every app
        /// then stops being able to charge it). Details: `app-id`, `app-name`,
        /// `wallet`, `wallet-name`, `account`, `object`.
        pub const KIND_UNBIND: &str = "unbind";

        /// `s`: a short title for the screen.
        pub const TITLE: &str = "title";
        /// `s`: the whole question or instruction, ready to show as is.
        pub const MESSAGE: &str = "message";
        /// `s`: the text the QR code encodes (`binding-qr`, `order-code`).
        pub const CODE_VALUE: &str = "code-value";
        /// `s`: the match code shown beside a binding QR and on the phone.
        pub const MATCH_CODE: &str = "match-code";
        /// `x`: when the code expires, Unix seconds (UTC).
        pub const EXPIRES_AT: &str = "expires-at";
        /// `s`: this device's name, as the wallet page shows it.
        pub const DEVICE_NAME: &str = "device-name";
        /// `s`: the wallet (`ALIPAY_HK`, ...).
        pub const WALLET: &str = "wallet";
        /// `s`: the wallet as people call it (`AlipayHK`).
        pub const WALLET_NAME: &str = "wallet-name";
        /// `s`: the app's verified identity (the app that asks: payments, `unbind`,
        /// and the app that started a `binding-qr`).
        pub const APP_ID: &str = "app-id";
        /// `s`: the app as people call it, from the system's metadata for its verified
        /// id (the `.desktop` file installed for its executable, its Flatpak or snap
        /// metadata), else its executable's file name; never a name the app gives.
        /// Show it with [`APP_EXE`] beside it.
        pub const APP_NAME: &str = "app-name";
        /// `s`: the app's executable path (for a Flatpak or snap app, its verified id:
        /// `flatpak:…`, `snap:…`), to show beside [`APP_NAME`].
        pub const APP_EXE: &str = "app-exe";
        /// `s`: the amount formatted for people (`HK$49.00`).
        pub const AMOUNT_TEXT: &str = "amount-text";
        /// `x`: the amount in minor units.
        pub const AMOUNT_MINOR: &str = "amount-minor";
        /// `s`: ISO 4217 currency code.
        pub const CURRENCY: &str = "currency";
        /// `s`: the payment's description, as the app gave it.
        pub const DESCRIPTION: &str = "description";
        /// `b`: the answer must carry the parent PIN (`answer["pin"]`).
        pub const PIN_REQUIRED: &str = "pin-required";
        /// `u`: PIN attempts left before approvals are locked for a while.
        pub const ATTEMPTS_LEFT: &str = "attempts-left";
        /// `u`: seconds the daemon waits for the answer.
        pub const TIMEOUT_SECS: &str = "timeout-secs";
        /// `s`: the binding's account as the daemon knows it (`unbind`): the wallet's
        /// masked login id (`63****1234`), else the label given at `StartBinding`;
        /// may be empty.
        pub const ACCOUNT: &str = "account";
        /// `o`: the binding (`binding-qr`, `unbind`) or payment (`order-code`) object.
        pub const OBJECT: &str = "object";

        /// `answer` key, `s`: the PIN the user typed.
        pub const ANSWER_PIN: &str = "pin";
    }

    /// Keys of the `details` dictionary of the `Completed` signals.
    pub mod completed {
        /// `s`: on failure, the error name (as in `LastError`).
        pub const ERROR_NAME: &str = "error-name";
        /// `s`: on failure, the error message.
        pub const ERROR_MESSAGE: &str = "error-message";
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zvariant::{LE, serialized::Context, to_bytes};

    #[test]
    fn states_round_trip_through_strings() {
        for s in PaymentState::ALL {
            assert_eq!(s.as_str().parse::<PaymentState>(), Ok(*s));
        }
        for s in BindingState::ALL {
            assert_eq!(s.as_str().parse::<BindingState>(), Ok(*s));
        }
        for s in Connectivity::ALL {
            assert_eq!(s.as_str().parse::<Connectivity>(), Ok(*s));
        }
        assert!("refunded".parse::<PaymentState>().is_err());
    }

    #[test]
    fn signatures_are_the_documented_ones() {
        assert_eq!(BindingSummary::SIGNATURE.to_string(), "(osss)");
        assert_eq!(PaymentSummary::SIGNATURE.to_string(), "(osxsbsx)");
        assert_eq!(ErrorInfo::SIGNATURE.to_string(), "(ss)");
        assert_eq!(PaymentState::SIGNATURE.to_string(), "s");
    }

    #[test]
    fn enums_encode_as_their_wire_strings() {
        let ctxt = Context::new_dbus(LE, 0);
        let a = to_bytes(ctxt, &PaymentState::PendingUnknown).unwrap();
        let b = to_bytes(ctxt, &"pending-unknown").unwrap();
        assert_eq!(a.bytes(), b.bytes());
        let (back, _): (PaymentState, _) = b.deserialize().unwrap();
        assert_eq!(back, PaymentState::PendingUnknown);
    }

    #[test]
    fn terminal_states() {
        assert!(!PaymentState::Pending.is_terminal());
        assert!(!PaymentState::PendingUnknown.is_terminal());
        assert!(PaymentState::Succeeded.is_terminal());
        assert!(!BindingState::Pending.is_completed());
        assert!(BindingState::Bound.is_completed());
    }
}
