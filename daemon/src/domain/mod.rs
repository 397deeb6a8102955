//! The domain: what the daemon decides and does, with no D-Bus in it. It sits above
//! the store (`journal`, `vault`) and the merchant-server link, and below the D-Bus
//! adapters, which call into it; it reaches back up only through the traits it owns
//! in [`ports`] ([`ports::Publisher`], [`ports::Prompter`]).
//!
//! - [`error`]: [`Refusal`](error::Refusal), the domain's error.
//! - [`shared`]: [`Shared`](shared::Shared), the state of one daemon; crash points.
//! - [`model`]: binding records, line items.
//! - [`validate`]: checks of the `Pay` and `StartBinding` arguments, wallet limits.
//! - [`admission`]: everything `Pay` decides before the journal commit.
//! - [`driver`]: the payment state machine after the commit (send, settle, re-drive).
//! - [`checkout`]: combined checkouts (several sellers in one payment).
//! - [`binding`]: start, unbind and settle bindings.
//! - [`refund`]: refunds (record, send, settle, reconcile).
//! - [`refresh`]: token refresh timers.
//! - [`subscription`]: subscriptions (subscribe, list, cancel, the server's events).
//! - [`prompt`]: consent, confirmation and a parent's approval on the display.
//! - [`pin`]: the parent PIN.
//! - [`limits`]: per-app limits on prompts and bindings (what an app can put on the
//!   display).

pub(crate) mod admission;
pub(crate) mod binding;
pub(crate) mod checkout;
pub(crate) mod desktop;
pub(crate) mod driver;
pub(crate) mod error;
pub(crate) mod limits;
pub(crate) mod model;
pub(crate) mod pin;
pub(crate) mod ports;
pub(crate) mod prompt;
pub(crate) mod refresh;
pub(crate) mod refund;
pub(crate) mod shared;
pub(crate) mod subscription;
#[cfg(test)]
pub(crate) mod testing;
pub(crate) mod validate;
