//! What the domain needs from the layer above it, as traits the domain owns: the
//! [`Publisher`] announces committed changes to apps, the [`Prompter`] shows and asks
//! on the trusted display. The D-Bus layer implements both (`dbus::Bus`); tests use
//! fakes. The domain never calls a signal emitter or an agent proxy itself.

use std::time::Duration;

use futures_util::future::BoxFuture;
use zvariant::OwnedValue;

use super::error::Refusal;
use super::model::BindingRecord;
use crate::error::Result;
use crate::store::journal::Entry;

/// `details` of a display request (keys in `scanbind_ipc::types::keys::agent`), in
/// the order given.
pub(crate) type Details = Vec<(&'static str, OwnedValue)>;

/// A confirmation answered by the user.
#[derive(Debug)]
pub(crate) struct Answer {
    /// Whether the user allowed it.
    pub(crate) allowed: bool,
    /// The PIN typed, when one was asked for.
    pub(crate) pin: Option<zeroize::Zeroizing<String>>,
}

/// Announces committed changes to apps. Called after the journal commit, never
/// before.
pub(crate) trait Publisher: Send + Sync + std::fmt::Debug {
    /// A payment's journal entry changed (`after` as committed): copy it to the
    /// payment's objects and announce what changed; `state_changed` says whether this
    /// commit moved its state (`Completed` when that made it final).
    fn payment_changed<'a>(
        &'a self,
        after: &'a Entry,
        state_changed: bool,
    ) -> BoxFuture<'a, Result<()>>;

    /// A binding left its state for `record.state`: announce it (`Completed`, and
    /// `BindingRemoved(reason)` when `removed` is given).
    fn binding_settled<'a>(
        &'a self,
        record: &'a BindingRecord,
        removed: Option<&'a str>,
    ) -> BoxFuture<'a, Result<()>>;

    /// The merchant server's subscription `s` as it is now: copy it to its object
    /// (served if it is not yet) and, with `event`, announce the change to the app that
    /// owns it.
    fn subscription_changed<'a>(
        &'a self,
        s: &'a scanbind_device_api::types::Subscription,
        event: Option<&'static str>,
    ) -> BoxFuture<'a, Result<()>>;
}

/// The trusted display (the display agent).
pub(crate) trait Prompter: Send + Sync + std::fmt::Debug {
    /// Shows `kind` (binding QR, order code) until [`Prompter::dismiss`]; best effort,
    /// never delays the caller; nothing happens without a display.
    fn show(&self, request: String, kind: &'static str, details: Details) -> BoxFuture<'_, ()>;

    /// Takes `request` off the display (best effort).
    fn dismiss(&self, request: String, outcome: &'static str) -> BoxFuture<'_, ()>;

    /// Asks the user and waits for the answer, `timeout` at most. No display:
    /// `NeedsConfirmation` carrying `why`; no answer in time or the display went away:
    /// `Denied`.
    fn confirm<'a>(
        &'a self,
        kind: &'static str,
        details: Details,
        timeout: Duration,
        why: &'a str,
    ) -> BoxFuture<'a, std::result::Result<Answer, Refusal>>;
}
