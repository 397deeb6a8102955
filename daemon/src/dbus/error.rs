//! The one mapping of the daemon's errors to the wire errors
//! ([`scanbind_ipc::Error`], `io.scanbind.Daemon1.Error.*`) that apps receive.
//! Internal details stay in the daemon's log; the app gets the name and a message
//! that says what to do.

use crate::domain::error::Refusal;
use crate::error::Error;

impl Error {
    /// The error an app receives on the bus. Internal details stay in the daemon's
    /// log; the app gets the name and a message that says what to do.
    pub fn to_wire(&self) -> scanbind_ipc::Error {
        use scanbind_ipc::Error as W;
        let msg = self.to_string();
        match self {
            Error::KeyringUnavailable(_) => W::KeyringUnavailable(msg),
            Error::KeyringLocked(_) => W::KeyringLocked(msg),
            Error::OrderConflict { .. } => W::Duplicate(msg),
            Error::UnknownPayment(_) => W::NotFound(msg),
            Error::InvalidTransition { .. } | Error::PolicyNotRootOwned { .. } => {
                W::NotAllowed(msg)
            }
            Error::ServerUnreachable(_) => W::Offline(msg),
            Error::ServerRejected { .. } | Error::ServerProtocol(_) => W::ServerError(msg),
            Error::Keyring(_)
            | Error::KeyringTask(_)
            | Error::DeviceKey(_)
            | Error::Task(_)
            | Error::HttpClient(_)
            | Error::Bus(_)
            | Error::NameTaken(_)
            | Error::DevStack(_)
            | Error::Config(_)
            | Error::Socket { .. }
            | Error::JournalDir { .. }
            | Error::JournalSetup { .. }
            | Error::Journal { .. }
            | Error::JournalCorrupt { .. }
            | Error::VaultNoMasterSecret
            | Error::VaultEphemeralExisting { .. }
            | Error::VaultSecretTooShort { .. }
            | Error::VaultSecretUnreadable { .. }
            | Error::VaultUndecryptable { .. }
            | Error::VaultCorrupt { .. }
            | Error::VaultPermissions { .. }
            | Error::VaultOwner { .. }
            | Error::VaultIo { .. }
            | Error::Vault { .. } => W::Internal(msg),
        }
    }
}

impl From<Error> for scanbind_ipc::Error {
    fn from(e: Error) -> Self {
        e.to_wire()
    }
}

impl From<Refusal> for scanbind_ipc::Error {
    fn from(r: Refusal) -> Self {
        use scanbind_ipc::Error as W;
        match r {
            Refusal::InvalidArgument(m) => W::InvalidArgument(m),
            Refusal::InvalidAmount(m) => W::InvalidAmount(m),
            Refusal::UnknownCurrency(m) => W::UnknownCurrency(m),
            Refusal::NotBound(m) => W::NotBound(m),
            Refusal::NotFound(m) => W::NotFound(m),
            Refusal::NotAllowed(m) => W::NotAllowed(m),
            Refusal::Offline(m) => W::Offline(m),
            Refusal::BelowMinimum(m) => W::BelowMinimum(m),
            Refusal::AboveLimit(m) => W::AboveLimit(m),
            Refusal::Duplicate(m) => W::Duplicate(m),
            Refusal::Busy(m) => W::Busy(m),
            Refusal::NeedsConfirmation(m) => W::NeedsConfirmation(m),
            Refusal::Denied(m) => W::Denied(m),
            Refusal::RefundNotAllowed(m) => W::RefundNotAllowed(m),
            Refusal::ServerError(m) => W::ServerError(m),
            Refusal::Internal(m) => W::Internal(m),
            Refusal::Policy(w) => w,
            Refusal::Failed(e) => e.to_wire(),
        }
    }
}

#[cfg(test)]
mod tests {
    use zbus::DBusError;

    use crate::error::Error;

    fn wire_name(e: Error) -> String {
        e.to_wire().name().to_string()
    }

    #[test]
    fn errors_keep_their_meaning_on_the_wire() {
        let wire = Error::KeyringUnavailable(keyring_core::Error::NoEntry).to_wire();
        assert_eq!(
            wire.name().as_str(),
            "io.scanbind.Daemon1.Error.KeyringUnavailable"
        );
        assert!(wire.to_string().contains("gnome-keyring"), "{wire}");
        assert_eq!(
            wire_name(Error::KeyringLocked(keyring_core::Error::NoEntry)),
            "io.scanbind.Daemon1.Error.KeyringLocked"
        );
        assert_eq!(
            wire_name(Error::OrderConflict {
                order_id: "o".into()
            }),
            "io.scanbind.Daemon1.Error.Duplicate"
        );
        assert_eq!(
            wire_name(Error::UnknownPayment(1)),
            "io.scanbind.Daemon1.Error.NotFound"
        );
        assert_eq!(
            wire_name(Error::JournalCorrupt {
                id: 1,
                reason: "x".into()
            }),
            "io.scanbind.Daemon1.Error.Internal"
        );
    }
}
