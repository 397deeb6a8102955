//! Client proxies, one per interface.
//!
//! Methods return [`crate::Result`], so a daemon error arrives as the matching
//! [`crate::Error`] variant. Options dictionaries are `HashMap<&str, Value>`; their keys
//! are in [`crate::types::keys`]. Multi-value replies are tuples in the order of the
//! XML's named out arguments. On a bus the defaults point at the daemon; on a
//! peer-to-peer connection the destination is ignored.

use std::collections::HashMap;

use zvariant::Value;

pub use agent::Agent1Proxy;
pub use agent_manager::AgentManager1Proxy;
pub use binding::{
    Binding1Proxy, Completed as BindingCompleted, CompletedStream as BindingCompletedStream,
};
pub use daemon::{BindingRemoved, BindingRemovedStream, Daemon1Proxy};
pub use manager::Manager1Proxy;
pub use payment::{
    Completed as PaymentCompleted, CompletedStream as PaymentCompletedStream, Payment1Proxy,
};
pub use subscription::{
    Changed as SubscriptionChanged, ChangedStream as SubscriptionChangedStream, Subscription1Proxy,
};

/// An `a{sv}` argument.
pub type Options<'a> = HashMap<&'a str, Value<'a>>;

/// The `io.scanbind.Daemon1` proxy and its signal types.
pub mod daemon {
    // `#[proxy]` generates signal-argument structs and accessors without docs; the
    // trait methods below carry the documentation.
    #![allow(missing_docs)]
    use std::collections::HashMap;

    use zbus::proxy;
    use zvariant::{ObjectPath, OwnedObjectPath, OwnedValue};

    use super::Options;
    use crate::types::{BindingSummary, PaymentSummary};

    /// `io.scanbind.Daemon1` at `/io/scanbind/Daemon1`: the entry point.
    #[proxy(
        interface = "io.scanbind.Daemon1",
        default_service = "io.scanbind.Daemon",
        default_path = "/io/scanbind/Daemon1",
        gen_blocking = false
    )]
    pub trait Daemon1 {
        /// `GetStatus(a{sv} options) -> a{sv} status`: version, connectivity, bound
        /// wallets (keys in [`crate::types::keys::status`]).
        fn get_status(&self, options: Options<'_>) -> crate::Result<HashMap<String, OwnedValue>>;

        /// `StartBinding(s wallet, a{sv} options) -> o binding`: starts binding `wallet`
        /// and returns the new binding job at once; follow its `State` and `Completed`.
        /// The display names the calling app; one pending binding per app and a few
        /// per window (`Busy` past that).
        fn start_binding(
            &self,
            wallet: &str,
            options: Options<'_>,
        ) -> crate::Result<OwnedObjectPath>;

        /// `ListBindings(a{sv} options) -> a(osss) bindings`: the bindings of the wallets
        /// the calling app's policy lets it charge (none for a denied app).
        fn list_bindings(&self, options: Options<'_>) -> crate::Result<Vec<BindingSummary>>;

        /// `Unbind(o binding, a{sv} options)`: once the user approved it on the trusted
        /// display agent, revokes a binding (or abandons a pending one) and deletes its
        /// tokens. No agent: `NeedsConfirmation`; declined: `Denied`; nothing changes
        /// either way. An app cancels a pending binding it started without a question.
        fn unbind(&self, binding: &ObjectPath<'_>, options: Options<'_>) -> crate::Result<()>;

        /// `Pay(s order_id, x amount_minor, s currency, s description, a{sv} options) ->
        /// o payment`: records and starts a payment, returning its job at once. The same
        /// `order_id` with the same parameters returns the same payment.
        fn pay(
            &self,
            order_id: &str,
            amount_minor: i64,
            currency: &str,
            description: &str,
            options: Options<'_>,
        ) -> crate::Result<OwnedObjectPath>;

        /// `ListPayments(a{sv} options) -> a(osxsbsx) payments`: the caller's own payments.
        fn list_payments(&self, options: Options<'_>) -> crate::Result<Vec<PaymentSummary>>;

        /// `Subscribe(s plan, x amount_minor, s currency, s period, a{sv} options) -> o
        /// subscription`: once the user confirmed it on the trusted display, subscribes
        /// (keys in [`crate::types::keys::subscribe`]; `subscription-id` is required and
        /// is the idempotency key).
        fn subscribe(
            &self,
            plan: &str,
            amount_minor: i64,
            currency: &str,
            period: &str,
            options: Options<'_>,
        ) -> crate::Result<OwnedObjectPath>;

        /// `ListSubscriptions(a{sv} options) -> ao subscriptions`: the calling app's
        /// subscriptions, as the merchant server knows them (restore after a reinstall).
        fn list_subscriptions(&self, options: Options<'_>) -> crate::Result<Vec<OwnedObjectPath>>;

        /// `BindingRemoved(o binding, s reason)`: a binding went away (`unbound` from this
        /// device, `token-canceled` from the wallet app, `expired`).
        #[zbus(signal)]
        fn binding_removed(&self, binding: ObjectPath<'_>, reason: &str) -> zbus::Result<()>;

        /// `Version` (`s`): the daemon's version.
        #[zbus(property)]
        fn version(&self) -> zbus::Result<String>;

        /// `Connectivity` (`s`): `online`, `connecting` or `offline`.
        #[zbus(property)]
        fn connectivity(&self) -> zbus::Result<String>;
    }
}

/// The `io.scanbind.Binding1` proxy and its signal types.
pub mod binding {
    // `#[proxy]` generates signal-argument structs and accessors without docs; the
    // trait methods below carry the documentation.
    #![allow(missing_docs)]
    use std::collections::HashMap;

    use zbus::proxy;
    use zvariant::Value;

    use super::Options;
    use crate::types::ErrorInfo;

    /// `io.scanbind.Binding1`: one binding, pending or settled.
    #[proxy(
        interface = "io.scanbind.Binding1",
        default_service = "io.scanbind.Daemon",
        gen_blocking = false
    )]
    pub trait Binding1 {
        /// `GetQrSvg(a{sv} options) -> s svg`: the QR code as an SVG document.
        fn get_qr_svg(&self, options: Options<'_>) -> crate::Result<String>;

        /// `GetQrPng(a{sv} options) -> ay png`: the QR code as a PNG image.
        fn get_qr_png(&self, options: Options<'_>) -> crate::Result<Vec<u8>>;

        /// `GetQrMatrix(a{sv} options) -> (u width, ay modules)`: the modules row by row,
        /// `width * width` bytes, 1 = dark, without quiet zone.
        fn get_qr_matrix(&self, options: Options<'_>) -> crate::Result<(u32, Vec<u8>)>;

        /// `Completed(s state, a{sv} details)`: emitted once, when `State` leaves `pending`.
        #[zbus(signal)]
        fn completed(&self, state: &str, details: HashMap<&str, Value<'_>>) -> zbus::Result<()>;

        /// `State` (`s`): a [`crate::BindingState`].
        #[zbus(property)]
        fn state(&self) -> zbus::Result<String>;

        /// `Wallet` (`s`): the wallet (`customerBelongsTo`).
        #[zbus(property)]
        fn wallet(&self) -> zbus::Result<String>;

        /// `Label` (`s`): what the user sees for this binding.
        #[zbus(property)]
        fn label(&self) -> zbus::Result<String>;

        /// `CodeValue` (`s`): the text the QR code encodes (empty once completed).
        #[zbus(property)]
        fn code_value(&self) -> zbus::Result<String>;

        /// `MatchCode` (`s`): the short code shown beside the QR and on the wallet page.
        #[zbus(property)]
        fn match_code(&self) -> zbus::Result<String>;

        /// `ExpiresAt` (`x`): when the QR code expires, seconds since the Unix epoch (UTC).
        #[zbus(property)]
        fn expires_at(&self) -> zbus::Result<i64>;

        /// `LastError` (`(ss)`): why it failed; empty strings otherwise.
        #[zbus(property)]
        fn last_error(&self) -> zbus::Result<ErrorInfo>;
    }
}

/// The `io.scanbind.Payment1` proxy and its signal types.
pub mod payment {
    // `#[proxy]` generates signal-argument structs and accessors without docs; the
    // trait methods below carry the documentation.
    #![allow(missing_docs)]
    use std::collections::HashMap;

    use zbus::proxy;
    use zvariant::{OwnedObjectPath, Value};

    use super::Options;
    use crate::types::ErrorInfo;

    /// `io.scanbind.Payment1`: one payment job.
    #[proxy(
        interface = "io.scanbind.Payment1",
        default_service = "io.scanbind.Daemon",
        gen_blocking = false
    )]
    pub trait Payment1 {
        /// `Finish(a{sv} options)`: the app delivered the goods; the payment is no longer
        /// listed as unfinished. Only for `succeeded` payments; repeating it is a no-op.
        fn finish(&self, options: Options<'_>) -> crate::Result<()>;

        /// `RequestRefund(x amount_minor, s reason, a{sv} options) -> (s refund_id, s
        /// state)`: asks for a full or partial refund of a succeeded payment.
        fn request_refund(
            &self,
            amount_minor: i64,
            reason: &str,
            options: Options<'_>,
        ) -> crate::Result<(String, String)>;

        /// `Completed(s state, a{sv} details)`: emitted once, when `State` becomes final.
        #[zbus(signal)]
        fn completed(&self, state: &str, details: HashMap<&str, Value<'_>>) -> zbus::Result<()>;

        /// `State` (`s`): a [`crate::PaymentState`].
        #[zbus(property)]
        fn state(&self) -> zbus::Result<String>;

        /// `OrderId` (`s`): the app's order id.
        #[zbus(property)]
        fn order_id(&self) -> zbus::Result<String>;

        /// `AmountMinor` (`x`): the amount in minor units.
        #[zbus(property)]
        fn amount_minor(&self) -> zbus::Result<i64>;

        /// `Currency` (`s`): the ISO 4217 code.
        #[zbus(property)]
        fn currency(&self) -> zbus::Result<String>;

        /// `Description` (`s`): as given to `Pay`.
        #[zbus(property)]
        fn description(&self) -> zbus::Result<String>;

        /// `Binding` (`o`): the binding charged.
        #[zbus(property)]
        fn binding(&self) -> zbus::Result<OwnedObjectPath>;

        /// `CreatedAt` (`x`): when it was recorded, seconds since the Unix epoch (UTC).
        #[zbus(property)]
        fn created_at(&self) -> zbus::Result<i64>;

        /// `Receipt` (`s`): the signed receipt (JWS compact serialisation) once
        /// `succeeded`; empty before.
        #[zbus(property)]
        fn receipt(&self) -> zbus::Result<String>;

        /// `LastError` (`(ss)`): why it failed; empty strings otherwise.
        #[zbus(property)]
        fn last_error(&self) -> zbus::Result<ErrorInfo>;

        /// `Delivered` (`b`): whether the app called `Finish`.
        #[zbus(property)]
        fn delivered(&self) -> zbus::Result<bool>;

        /// `RefundedMinor` (`x`): the total refunded so far, in minor units.
        #[zbus(property)]
        fn refunded_minor(&self) -> zbus::Result<i64>;

        /// `OrderCode` (`s`): for a payment made with the `order-code` option, the text
        /// of the order QR code the user scans; empty otherwise or until the server made
        /// it, and once the payment is final.
        #[zbus(property)]
        fn order_code(&self) -> zbus::Result<String>;

        /// `OrderCodeExpiresAt` (`x`): when the order QR code expires (Unix seconds);
        /// 0 without one.
        #[zbus(property)]
        fn order_code_expires_at(&self) -> zbus::Result<i64>;

        /// `Parts` (`aa{sv}`): a combined checkout's parts, one per seller (keys in
        /// [`crate::types::keys::part`]); empty for other payments. Typed as the raw
        /// value (convert with `Vec<HashMap<String, OwnedValue>>::try_from`): a typed
        /// `aa{sv}` property keeps a caching proxy from filling its cache.
        #[zbus(property)]
        fn parts(&self) -> zbus::Result<zvariant::OwnedValue>;
    }
}

/// The `io.scanbind.AgentManager1` proxy: how a display agent registers.
pub mod agent_manager {
    #![allow(missing_docs)]
    use zbus::proxy;
    use zvariant::ObjectPath;

    use super::Options;

    /// `io.scanbind.AgentManager1` at `/io/scanbind/Daemon1`.
    #[proxy(
        interface = "io.scanbind.AgentManager1",
        default_service = "io.scanbind.Daemon",
        default_path = "/io/scanbind/Daemon1",
        gen_blocking = false
    )]
    pub trait AgentManager1 {
        /// `RegisterAgent(o agent, a{sv} options)`: the caller serves
        /// `io.scanbind.Agent1` at `agent` and shows what the daemon asks. Only agents
        /// the configuration trusts (by uid and executable) may register, and only one
        /// at a time (`NotAllowed`, `Duplicate`).
        fn register_agent(&self, agent: &ObjectPath<'_>, options: Options<'_>)
        -> crate::Result<()>;

        /// `UnregisterAgent(o agent, a{sv} options)`: the registered agent leaves
        /// (disconnecting from the bus does the same).
        fn unregister_agent(
            &self,
            agent: &ObjectPath<'_>,
            options: Options<'_>,
        ) -> crate::Result<()>;

        /// `SetParentPin(s old_pin, s new_pin, a{sv} options)`: sets the PIN that
        /// approves a kid profile's charges (4 to 12 digits); `old_pin` must match when
        /// one is set. An empty `new_pin` removes it. Only the registered display agent
        /// may call it (its connection, the one that called `RegisterAgent`); anyone
        /// else gets `NotAllowed`. Wrong PINs lock it for a time that doubles with each
        /// lock, and while locked even the right PIN is refused (`Denied`).
        fn set_parent_pin(
            &self,
            old_pin: &str,
            new_pin: &str,
            options: Options<'_>,
        ) -> crate::Result<()>;

        /// `AgentRegistered` (`b`): whether a display agent is registered now.
        #[zbus(property)]
        fn agent_registered(&self) -> zbus::Result<bool>;
    }
}

/// The `io.scanbind.Agent1` proxy: how the daemon calls a display agent. Agents
/// implement the interface (`#[zbus::interface(name = "io.scanbind.Agent1")]`); the
/// keys of `details` and `answer` are in [`crate::types::keys::agent`].
pub mod agent {
    #![allow(missing_docs)]
    use std::collections::HashMap;

    use zbus::proxy;
    use zvariant::OwnedValue;

    use super::Options;

    /// `io.scanbind.Agent1`, at the path the agent registered.
    #[proxy(interface = "io.scanbind.Agent1", gen_blocking = false)]
    pub trait Agent1 {
        /// `Show(s request, s kind, a{sv} details)`: put something on screen until
        /// `Dismiss(request)`: a binding QR (`binding-qr`) or an order code
        /// (`order-code`).
        fn show(&self, request: &str, kind: &str, details: Options<'_>) -> zbus::Result<()>;

        /// `Dismiss(s request, s outcome)`: take `request` off the screen; `outcome`
        /// says why (`bound`, `expired`, `succeeded`, `timed-out`, ...).
        fn dismiss(&self, request: &str, outcome: &str) -> zbus::Result<()>;

        /// `Confirm(s request, s kind, a{sv} details) -> (b allowed, a{sv} answer)`:
        /// ask the user (`consent`, `payment`, `parent-approval`) and reply with the
        /// answer; the daemon gives up after `timeout-secs` and dismisses the prompt.
        fn confirm(
            &self,
            request: &str,
            kind: &str,
            details: Options<'_>,
        ) -> zbus::Result<(bool, HashMap<String, OwnedValue>)>;
    }
}

/// The `io.scanbind.Manager1` proxy: the device owner's management interface.
pub mod manager {
    #![allow(missing_docs)]
    use std::collections::HashMap;

    use zbus::proxy;
    use zvariant::ObjectPath;

    use super::Options;

    /// `io.scanbind.Manager1` at `/io/scanbind/Manager1`. Every call is authorized
    /// (`NotAllowed` otherwise, nothing changed); the policy is checked with the
    /// daemon's own parser and written atomically. Keys of `options` in each method's
    /// documentation in `docs/dbus-api.md`.
    #[proxy(
        interface = "io.scanbind.Manager1",
        default_service = "io.scanbind.Daemon",
        default_path = "/io/scanbind/Manager1",
        gen_blocking = false
    )]
    pub trait Manager1 {
        /// `GetPolicy(a{sv} options) -> (s path, s policy)`: the file the policy is
        /// read from and the policy as TOML (its parsed form).
        fn get_policy(&self, options: Options<'_>) -> crate::Result<(String, String)>;

        /// `SetPolicy(s policy, a{sv} options)`: replaces the whole policy.
        fn set_policy(&self, policy: &str, options: Options<'_>) -> crate::Result<()>;

        /// `AllowApp(s app, as wallets, a{sv} options)`: lets `app` charge `wallets`
        /// (all when empty); options `confirm` (b), `above-cap` (s).
        fn allow_app(&self, app: &str, wallets: &[&str], options: Options<'_>)
        -> crate::Result<()>;

        /// `DenyApp(s app, a{sv} options)`: forbids `app` to charge.
        fn deny_app(&self, app: &str, options: Options<'_>) -> crate::Result<()>;

        /// `RemoveApp(s app, a{sv} options)`: removes `app`'s rule.
        fn remove_app(&self, app: &str, options: Options<'_>) -> crate::Result<()>;

        /// `SetUnknownApps(s mode, a{sv} options)`: `allow`, `deny` or `ask`.
        fn set_unknown_apps(&self, mode: &str, options: Options<'_>) -> crate::Result<()>;

        /// `SetLimits(s scope, s name, s currency, a{sx} limits, a{sv} options)`:
        /// merges limits (minor units; keys `per-payment`, `daily`, `monthly`) into an
        /// app's rule (`app`), a profile (`profile`) or the consent (`consent`, name
        /// empty).
        fn set_limits(
            &self,
            scope: &str,
            name: &str,
            currency: &str,
            limits: HashMap<&str, i64>,
            options: Options<'_>,
        ) -> crate::Result<()>;

        /// `SetProfile(s name, a{sv} options)`: adds or changes a profile; option
        /// `kid` (b).
        fn set_profile(&self, name: &str, options: Options<'_>) -> crate::Result<()>;

        /// `RemoveProfile(s name, a{sv} options)`: removes a profile (not the active one).
        fn remove_profile(&self, name: &str, options: Options<'_>) -> crate::Result<()>;

        /// `UseProfile(s name, a{sv} options)`: makes `name` the active profile (empty:
        /// none).
        fn use_profile(&self, name: &str, options: Options<'_>) -> crate::Result<()>;

        /// `TrustAgent(u uid, s exe, a{sv} options)`: trusts a display agent.
        fn trust_agent(&self, uid: u32, exe: &str, options: Options<'_>) -> crate::Result<()>;

        /// `UntrustAgent(u uid, s exe, a{sv} options)`: stops trusting one.
        fn untrust_agent(&self, uid: u32, exe: &str, options: Options<'_>) -> crate::Result<()>;

        /// `Unbind(o binding, a{sv} options)`: unbinds directly, without asking on the
        /// display.
        fn unbind(&self, binding: &ObjectPath<'_>, options: Options<'_>) -> crate::Result<()>;

        /// `ListSubscriptions(a{sv} options) -> a(susssxsssx) subscriptions`: every
        /// app's subscriptions on this device, as the merchant server knows them.
        fn list_subscriptions(
            &self,
            options: Options<'_>,
        ) -> crate::Result<Vec<crate::types::SubscriptionSummary>>;

        /// `CancelSubscription(s subscription, a{sv} options) -> s state`: cancels any
        /// app's subscription (no more renewals; access until the period's end).
        fn cancel_subscription(
            &self,
            subscription: &str,
            options: Options<'_>,
        ) -> crate::Result<String>;
    }
}

/// The `io.scanbind.Subscription1` proxy and its signal types.
pub mod subscription {
    // `#[proxy]` generates signal-argument structs and accessors without docs; the
    // trait methods below carry the documentation.
    #![allow(missing_docs)]
    use zbus::proxy;

    use super::Options;

    /// `io.scanbind.Subscription1`: one subscription.
    #[proxy(
        interface = "io.scanbind.Subscription1",
        default_service = "io.scanbind.Daemon",
        gen_blocking = false
    )]
    pub trait Subscription1 {
        /// `Cancel(a{sv} options) -> s state`: no more renewals; access stays until
        /// `CurrentPeriodEnd`. Cancelling again is a no-op.
        fn cancel(&self, options: Options<'_>) -> crate::Result<String>;

        /// `Changed(s state, s event)`: the merchant server renewed, failed to renew,
        /// cancelled or ended it (`event`: [`crate::types::keys::subscription_changed`]).
        #[zbus(signal)]
        fn changed(&self, state: &str, event: &str) -> zbus::Result<()>;

        /// `State` (`s`): `pending`, `trial`, `active`, `grace`, `cancelled`, `expired`.
        #[zbus(property)]
        fn state(&self) -> zbus::Result<String>;

        /// `SubscriptionId` (`s`): the app's own subscription id.
        #[zbus(property)]
        fn subscription_id(&self) -> zbus::Result<String>;

        /// `Plan` (`s`): the plan's name.
        #[zbus(property)]
        fn plan(&self) -> zbus::Result<String>;

        /// `AmountMinor` (`x`): the full price of one period, minor units.
        #[zbus(property)]
        fn amount_minor(&self) -> zbus::Result<i64>;

        /// `Currency` (`s`): the ISO 4217 code.
        #[zbus(property)]
        fn currency(&self) -> zbus::Result<String>;

        /// `Period` (`s`): the billing period (`P1M`, ...).
        #[zbus(property)]
        fn period(&self) -> zbus::Result<String>;

        /// `Entitled` (`b`): whether the app should grant access now.
        #[zbus(property)]
        fn entitled(&self) -> zbus::Result<bool>;

        /// `CurrentPeriodEnd` (`x`): the end of what is paid for (or of the trial),
        /// seconds since the Unix epoch; 0 when none.
        #[zbus(property)]
        fn current_period_end(&self) -> zbus::Result<i64>;

        /// `NextChargeAt` (`x`): when the server charges next; 0 when it will not.
        #[zbus(property)]
        fn next_charge_at(&self) -> zbus::Result<i64>;

        /// `NextChargeMinor` (`x`): what it charges next; 0 when it will not.
        #[zbus(property)]
        fn next_charge_minor(&self) -> zbus::Result<i64>;

        /// `PeriodsPaid` (`u`): periods paid so far.
        #[zbus(property)]
        fn periods_paid(&self) -> zbus::Result<u32>;

        /// `Receipt` (`s`): the signed subscription receipt (JWS, typ
        /// `scanbind-subscription+jwt`) of the current state; empty when none.
        #[zbus(property)]
        fn receipt(&self) -> zbus::Result<String>;
    }
}
