//! The contract between apps and `scanbindd`, the scanbind device daemon.
//!
//! Apps talk to the daemon over D-Bus (the session bus, the system bus, or a
//! peer-to-peer Unix socket; the interfaces are the same on all three). This crate
//! holds every name, path, type and error the daemon puts on the wire, plus `#[proxy]`
//! traits for each interface, system mode's account names and the check a display
//! agent makes of its caller; no daemon logic, no runtime.
//!
//! The app developer reference is `docs/dbus-api.md`; the checked-in introspection XML
//! is in `ipc-proto/xml/`. A test keeps the two in step, so a member cannot be added to
//! one and forgotten in the other.
//!
//! # Layout
//!
//! - [`names`]: the bus name, the versioned interface names and the entry-point path.
//! - [`paths`]: one builder per child object kind (bindings, payments, subscriptions).
//! - [`types`]: wire records (typed structs for stable records), state enums, the keys
//!   of every `a{sv}` options and details dictionary.
//! - [`error`]: the one [`Error`] enum, `io.scanbind.Daemon1.Error.*`.
//! - [`limits`]: the size limits of arguments and options (order id, description,
//!   label, line items, refund reason, checkout parts), each within the device API's.
//! - [`proxy`]: client proxies for `io.scanbind.Daemon1`, `io.scanbind.Binding1`,
//!   `io.scanbind.Payment1`, `io.scanbind.Subscription1`, `io.scanbind.AgentManager1` (for display agents),
//!   `io.scanbind.Agent1` (for the daemon, calling an agent) and
//!   `io.scanbind.Manager1` (for the device owner's tools).
//! - [`xml`]: the introspection XML, embedded.
//! - [`accounts`]: system mode's accounts (the daemon's user, the agents' group) and
//!   lookups in the local user and group databases.
//! - [`agent_guard`]: a display agent's check that a call comes from the daemon.
//!
//! # Versioning
//!
//! Interface names carry a major version (`...1`). A published method, property or
//! signal signature never changes and error names are only ever added; a change that
//! needs more goes into a new method (usually with a trailing `options: a{sv}`), and
//! only a redesign bumps the suffix.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod accounts;
pub mod agent_guard;
pub mod error;
pub mod limits;
pub mod names;
pub mod paths;
pub mod proxy;
pub mod types;
pub mod xml;

#[cfg(test)]
mod contract_tests;

pub use error::{Error, Result};
pub use names::{
    AGENT_INTERFACE, AGENT_MANAGER_INTERFACE, BINDING_INTERFACE, BUS_NAME, DAEMON_INTERFACE,
    DAEMON_PATH, MANAGER_INTERFACE, MANAGER_PATH, PAYMENT_INTERFACE, SUBSCRIPTION_INTERFACE,
};
pub use proxy::{
    Agent1Proxy, AgentManager1Proxy, Binding1Proxy, Daemon1Proxy, Manager1Proxy, Payment1Proxy,
    Subscription1Proxy,
};
pub use types::{
    BindingState, BindingSummary, ErrorInfo, PaymentState, PaymentSummary, SubscriptionSummary,
};
