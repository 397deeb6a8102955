//! The one error enum of the D-Bus API.
//!
//! Every error the daemon returns is `io.scanbind.Daemon1.Error.<Variant>`, with an
//! English message for logs. Names are append-only: a name, once published, keeps its
//! meaning forever, and new names are only added. Match on the name (the variant),
//! never on the message.

use zbus::DBusError;

/// An error from the scanbind daemon, as it travels on the bus.
///
/// Proxy calls in [`crate::proxy`] return it: a reply with one of the names below
/// becomes that variant, anything else becomes [`Error::ZBus`].
#[derive(Debug, DBusError)]
#[zbus(prefix = "io.scanbind.Daemon1.Error")]
#[non_exhaustive]
pub enum Error {
    /// A transport or protocol error, or an error name this version does not know.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// No bound wallet can pay: bind one first (`StartBinding`). Since 0.1.
    NotBound(String),
    /// The merchant server is not reachable, so no new payment was started (a charge
    /// is never queued). Retry when `Connectivity` is `online`. Since 0.1.
    Offline(String),
    /// The amount is not a positive whole number of minor units that fits in 64 bits.
    /// Since 0.1.
    InvalidAmount(String),
    /// The currency is not an ISO 4217 code the daemon can pay in. Since 0.1.
    UnknownCurrency(String),
    /// The amount is below the wallet's minimum for this currency. Since 0.1.
    BelowMinimum(String),
    /// The amount exceeds a per-payment cap or a daily/monthly budget set for this app.
    /// Since 0.1.
    AboveLimit(String),
    /// This app may not do this (blocked by policy, or the object belongs to another
    /// app). Since 0.1.
    NotAllowed(String),
    /// No such object, or not one the caller may see. Since 0.1.
    NotFound(String),
    /// The order id was already used by this app for a payment with different
    /// parameters. (Repeating a `Pay` with the same parameters is not an error: it
    /// returns the existing payment.) Since 0.1.
    Duplicate(String),
    /// No Secret Service (OS keyring) is available to hold the device key and tokens.
    /// Install and start one (gnome-keyring, KeePassXC, KWallet with its Secret
    /// Service); the daemon never falls back to a plaintext file. Since 0.1.
    KeyringUnavailable(String),
    /// The OS keyring is locked and could not be unlocked. Unlock it (log in again or
    /// use the keyring manager) and retry. Since 0.1.
    KeyringLocked(String),
    /// The merchant server refused or failed the request; the message carries its
    /// reason. Since 0.1.
    ServerError(String),
    /// An argument is malformed: empty or oversized strings, a wrong type inside
    /// options, an unknown object path kind. Since 0.1.
    InvalidArgument(String),
    /// An options dictionary has a key this daemon does not know. Since 0.1.
    UnknownOption(String),
    /// The daemon is busy with a conflicting operation (e.g. a binding for the same
    /// wallet is already pending); retry later. Since 0.1.
    Busy(String),
    /// The user must answer on the trusted display first (first charge by this app, a
    /// charge the policy wants confirmed, a kid profile's charge) and no display agent
    /// is registered (or no parent PIN is set); nothing was recorded. Since 0.1.
    NeedsConfirmation(String),
    /// The user declined a confirmation or the binding on the phone, a parent did not
    /// approve, nobody answered in time, the agent went away, or the PIN attempts ran
    /// out; nothing was charged. Since 0.1.
    Denied(String),
    /// The binding's QR code or the payment window expired. Since 0.1.
    Expired(String),
    /// A refund is not possible: the payment did not succeed, the refund period is
    /// over, or the amount exceeds what is left to refund. Since 0.1.
    RefundNotAllowed(String),
    /// The daemon hit an unexpected internal failure (e.g. its journal could not be
    /// written); nothing was charged. Since 0.1.
    Internal(String),
}

/// A result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One value of every variant. The exhaustive `match` makes adding a variant
    /// without listing it here (and so in `docs/dbus-api.md`) a compile error.
    pub(crate) fn every_variant() -> Vec<Error> {
        let all = vec![
            Error::ZBus(zbus::Error::Unsupported),
            Error::NotBound(String::new()),
            Error::Offline(String::new()),
            Error::InvalidAmount(String::new()),
            Error::UnknownCurrency(String::new()),
            Error::BelowMinimum(String::new()),
            Error::AboveLimit(String::new()),
            Error::NotAllowed(String::new()),
            Error::NotFound(String::new()),
            Error::Duplicate(String::new()),
            Error::KeyringUnavailable(String::new()),
            Error::KeyringLocked(String::new()),
            Error::ServerError(String::new()),
            Error::InvalidArgument(String::new()),
            Error::UnknownOption(String::new()),
            Error::Busy(String::new()),
            Error::NeedsConfirmation(String::new()),
            Error::Denied(String::new()),
            Error::Expired(String::new()),
            Error::RefundNotAllowed(String::new()),
            Error::Internal(String::new()),
        ];
        for e in &all {
            match e {
                Error::ZBus(_)
                | Error::NotBound(_)
                | Error::Offline(_)
                | Error::InvalidAmount(_)
                | Error::UnknownCurrency(_)
                | Error::BelowMinimum(_)
                | Error::AboveLimit(_)
                | Error::NotAllowed(_)
                | Error::NotFound(_)
                | Error::Duplicate(_)
                | Error::KeyringUnavailable(_)
                | Error::KeyringLocked(_)
                | Error::ServerError(_)
                | Error::InvalidArgument(_)
                | Error::UnknownOption(_)
                | Error::Busy(_)
                | Error::NeedsConfirmation(_)
                | Error::Denied(_)
                | Error::Expired(_)
                | Error::RefundNotAllowed(_)
                | Error::Internal(_) => {}
            }
        }
        all
    }

    /// The published error names, in publication order. Append only.
    pub(crate) fn error_names() -> Vec<String> {
        every_variant()
            .iter()
            .filter(|e| !matches!(e, Error::ZBus(_)))
            .map(|e| e.name().to_string())
            .collect()
    }

    #[test]
    fn names_carry_the_prefix() {
        let names = error_names();
        assert_eq!(names[0], "io.scanbind.Daemon1.Error.NotBound");
        for n in &names {
            assert!(n.starts_with(crate::names::ERROR_PREFIX), "{n}");
        }
    }

    #[test]
    fn method_errors_map_back_to_variants() {
        let name =
            zbus::names::OwnedErrorName::try_from("io.scanbind.Daemon1.Error.Offline").unwrap();
        let msg = zbus::message::Message::method_call("/x", "Y")
            .unwrap()
            .build(&())
            .unwrap();
        let err = zbus::Error::MethodError(name, Some("server down".into()), msg);
        match Error::from(err) {
            Error::Offline(m) => assert_eq!(m, "server down"),
            other => panic!("expected Offline, got {other:?}"),
        }
    }

    #[test]
    fn display_shows_name_and_message() {
        let e = Error::KeyringLocked("unlock it".into());
        assert_eq!(
            e.to_string(),
            "io.scanbind.Daemon1.Error.KeyringLocked: unlock it"
        );
    }
}
