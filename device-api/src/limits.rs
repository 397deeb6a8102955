//! The size limits of the device API (`/v1`), as `docs/openapi.json` states them
//! (`maxLength`, `maxItems`).
//!
//! The server refuses a request that breaks a text limit with `bad_request` and a
//! checkout with the wrong number of parts with `too_many_parts`. Lengths are characters;
//! every text field is also non-empty and free of control characters. The daemon's D-Bus
//! limits (`scanbind_ipc::limits`) are each at most their counterpart here, so what an
//! app may pass the daemon always fits the server.

/// `appId`: the app's id as the daemon saw it, 1 to 128 characters.
pub const MAX_APP_ID: usize = 128;

/// `appOrderId`: the app's order id, 1 to 64 characters.
pub const MAX_APP_ORDER_ID: usize = 64;

/// A payment's `description`: 1 to 256 characters.
pub const MAX_DESCRIPTION: usize = 256;

/// A refund's `refundId`: 1 to 64 characters.
pub const MAX_REFUND_ID: usize = 64;

/// A refund's `reason`: 1 to 256 characters when present.
pub const MAX_REFUND_REASON: usize = 256;

/// A checkout part's `sellerId`: 1 to 64 characters.
pub const MAX_SELLER_ID: usize = 64;

/// A checkout part's `description`: 1 to 256 characters.
pub const MAX_PART_DESCRIPTION: usize = 256;

/// A checkout's `parts`: at most 20.
pub const MAX_PARTS: usize = 20;

/// An all-or-nothing checkout's `parts`: at most 6.
pub const MAX_PARTS_ALL_OR_NOTHING: usize = 6;

/// A checkout's `parts`: at least 2.
pub const MIN_PARTS: usize = 2;

/// A device's `name` at registration: 1 to 64 characters.
pub const MAX_DEVICE_NAME: usize = 64;

/// A device's `model` at registration: at most 64 characters (may be empty).
pub const MAX_DEVICE_MODEL: usize = 64;

/// `appSubscriptionId`: the app's subscription id, 1 to 64 characters.
pub const MAX_APP_SUBSCRIPTION_ID: usize = 64;

/// A subscription's `plan`: 1 to 128 characters.
pub const MAX_PLAN: usize = 128;

/// An introductory price lasts at most this many periods.
pub const MAX_INTRODUCTORY_PERIODS: u32 = 12;
