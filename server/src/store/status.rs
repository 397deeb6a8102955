//! Every status and stage the database stores as text, as enums. A row is decoded at the
//! store boundary: an unknown text is a [`StoreError::Unknown`], never a panic and never
//! a guess. The texts are the stored ones, byte for byte (existing databases keep
//! working); statements bind [`Stored::as_str`].
//!
//! Payment and refund statuses are the device API's own enums
//! ([`PaymentStatus`], [`RefundStatus`]): the stored text is the wire text.

use sqlx::Row;
use sqlx::any::AnyRow;

pub use scanbind_device_api::types::{PaymentStatus, RefundStatus};

use super::error::{Result, StoreError};

/// A value stored as text.
pub trait Stored: Sized + Copy {
    /// The stored text.
    fn as_str(self) -> &'static str;
    /// The value of a stored text; `None` for an unknown one.
    fn parse(text: &str) -> Option<Self>;
}

/// Reads `column` of `row` as a [`Stored`] value; unknown text is an error naming the
/// column and the text.
pub fn decode<T: Stored>(row: &AnyRow, column: &'static str) -> Result<T> {
    let text: String = row.try_get(column)?;
    T::parse(&text).ok_or(StoreError::Unknown {
        column,
        value: text,
    })
}

/// [`decode`] for a nullable column.
pub fn decode_opt<T: Stored>(row: &AnyRow, column: &'static str) -> Result<Option<T>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| T::parse(&t).ok_or(StoreError::Unknown { column, value: t }))
        .transpose()
}

macro_rules! stored {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stored text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The value of a stored text; `None` for an unknown one.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl Stored for $name {
            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
            fn parse(text: &str) -> Option<Self> {
                $name::parse(text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

impl Stored for PaymentStatus {
    fn as_str(self) -> &'static str {
        PaymentStatus::as_str(self)
    }
    fn parse(text: &str) -> Option<Self> {
        PaymentStatus::parse(text)
    }
}

impl Stored for RefundStatus {
    fn as_str(self) -> &'static str {
        RefundStatus::as_str(self)
    }
    fn parse(text: &str) -> Option<Self> {
        RefundStatus::parse(text)
    }
}

stored! {
    /// `payments.stage`: where the engine is with a pending payment (`done` once final).
    PaymentStage {
        /// A part of a combined checkout not sent yet.
        Queued = "queued",
        /// The AMS `pay` is being sent (or was, by a process that stopped).
        Sending = "sending",
        /// The outcome is learnt by `inquiryPayment`.
        Inquiring = "inquiring",
        /// Past its expiry: the engine cancels it.
        Cancelling = "cancelling",
        /// A checkout part that will never be sent (claimed to be failed).
        Abandoned = "abandoned",
        /// Final.
        Done = "done",
    }
}

stored! {
    /// `payments.product`.
    Product {
        /// An agreement payment (Scan to Bind tokens).
        Agreement = "agreement",
        /// An Order Code payment (the buyer scans a QR code).
        OrderCode = "order_code",
        /// A part of a combined checkout (an agreement payment to one seller).
        CheckoutPart = "checkout_part",
    }
}

stored! {
    /// `bindings.status`: the device API's binding status plus `exchanging` (the token
    /// exchange in flight, shown to devices as pending).
    BindingState {
        /// Waiting for the user to scan and approve.
        Pending = "pending",
        /// The auth code is being exchanged for tokens.
        Exchanging = "exchanging",
        /// Bound.
        Active = "active",
        /// Authorisation or token exchange failed.
        Failed = "failed",
        /// Not approved in time.
        Expired = "expired",
        /// Unbound by the device or an operator.
        Revoked = "revoked",
        /// Unbound in the wallet app (`TOKEN_CANCELED`).
        Cancelled = "cancelled",
    }
}

stored! {
    /// `checkouts.status`.
    CheckoutState {
        /// Parts are being paid.
        Paying = "paying",
        /// All-or-nothing: a part failed, the paid parts are being reversed.
        Reversing = "reversing",
        /// Every part paid (final).
        Succeeded = "succeeded",
        /// Independent mode: some parts paid (final).
        PartiallySucceeded = "partially_succeeded",
        /// Nothing paid, or everything reversed (final).
        Failed = "failed",
    }
}

impl CheckoutState {
    /// True while the engine still drives it (`paying`, `reversing`).
    pub fn is_open(self) -> bool {
        matches!(self, CheckoutState::Paying | CheckoutState::Reversing)
    }
}

stored! {
    /// `checkout_parts.reversal`: how a paid part of an all-or-nothing checkout is undone.
    Reversal {
        /// AMS `cancel`.
        Cancel = "cancel",
        /// A full refund (once `cancel` was refused).
        Refund = "refund",
    }
}

stored! {
    /// `declarations.status`.
    DeclarationStatus {
        /// Written, AMS not answered yet: send the identical request again.
        Sending = "sending",
        /// Accepted by Alipay; customs has not answered.
        Processing = "processing",
        /// Customs accepted it.
        Succeeded = "succeeded",
        /// Customs refused it.
        Failed = "failed",
    }
}

stored! {
    /// `operator_keys.scope`: what a key may do. Ordered: a higher scope includes the
    /// lower ones.
    #[derive(PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    Scope {
        /// Search payments, look at one, inquire declarations.
        Read = "read",
        /// Also refund, cancel and declare to customs.
        Refund = "refund",
        /// Also revoke bindings.
        Admin = "admin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Stored + PartialEq + std::fmt::Debug>(all: &[T]) {
        for v in all {
            assert_eq!(T::parse(v.as_str()), Some(*v));
        }
    }

    #[test]
    fn every_stored_text_parses_back() {
        round_trip(PaymentStage::ALL);
        round_trip(Product::ALL);
        round_trip(BindingState::ALL);
        round_trip(CheckoutState::ALL);
        round_trip(Reversal::ALL);
        round_trip(DeclarationStatus::ALL);
        round_trip(Scope::ALL);
        round_trip(&[
            PaymentStatus::Pending,
            PaymentStatus::Succeeded,
            PaymentStatus::Failed,
            PaymentStatus::Cancelled,
        ]);
        round_trip(&[
            RefundStatus::Pending,
            RefundStatus::Succeeded,
            RefundStatus::Failed,
        ]);
        assert_eq!(PaymentStage::parse("Sending"), None);
        assert!(Scope::Read < Scope::Refund && Scope::Refund < Scope::Admin);
    }
}
