//! The size limits of the D-Bus contract, as documented in `docs/dbus-api.md`.
//!
//! The daemon refuses a call that breaks one with `InvalidArgument`. Lengths are
//! characters unless a limit says bytes (the ASCII-only fields, where the two agree).
//! Everything the daemon forwards to the merchant server must also fit the device
//! API's limits (`scanbind_device_api::limits`): each limit here is at most its
//! counterpart there, which `ipc-proto/tests/limits.rs` checks.

/// `Pay`'s `order_id`: 1 to 64 printable ASCII characters (the device API's
/// `appOrderId`).
pub const MAX_ORDER_ID: usize = 64;

/// `Pay`'s `description`: 1 to 256 characters (the device API's `description`).
pub const MAX_DESCRIPTION: usize = 256;

/// A wallet name (`Bind`'s `wallet`, e.g. `ALIPAY_HK`): 1 to 32 of `A-Z a-z 0-9 _`.
pub const MAX_WALLET: usize = 32;

/// `Bind`'s `label` option: at most 64 characters.
pub const MAX_LABEL: usize = 64;

/// `Pay`'s `line-items` option: 1 to 100 items.
pub const MAX_LINE_ITEMS: usize = 100;

/// A line item's `name`: 1 to 256 characters.
pub const MAX_ITEM_NAME: usize = 256;

/// `RequestRefund`'s `refund-id` option: 1 to 64 printable ASCII characters (the device
/// API's `refundId`).
pub const MAX_REFUND_ID: usize = 64;

/// `RequestRefund`'s `reason`: at most 256 characters, may be empty (the device API's
/// `reason`).
pub const MAX_REFUND_REASON: usize = 256;

/// A combined checkout part's `seller`: 1 to 64 bytes of `A-Z a-z 0-9 _ . -` (the device
/// API's `sellerId`).
pub const MAX_SELLER: usize = 64;

/// A combined checkout part's `description`: 1 to 256 characters.
pub const MAX_PART_DESCRIPTION: usize = 256;

/// `Pay`'s `sellers` option: at most 20 parts.
pub const MAX_PARTS: usize = 20;

/// `Pay`'s `sellers` option with `all-or-nothing`: at most 6 parts.
pub const MAX_PARTS_ALL_OR_NOTHING: usize = 6;

/// `Pay`'s `sellers` option: at least 2 parts.
pub const MIN_PARTS: usize = 2;
