//! Everything the sandbox remembers, and the one lock around it.
//!
//! [`State`] is plain data (serde), so it can be written to the state file as JSON and
//! read back after a restart. [`Store`] owns it behind a single `std::sync::Mutex`:
//! every AMS call, phone action and control call is a short, purely in-memory critical
//! section (no `.await` inside), and one lock makes each call atomic with respect to
//! every other — two concurrent pays with the same `paymentRequestId` cannot both charge,
//! and a refund cannot race a cancel. Notifications produced inside a critical section are
//! queued in [`State::outbox`] and handed to the notifier after the lock is released.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// Time as stored: Unix seconds (sandbox clock).
pub type Timestamp = i64;

/// Converts a sandbox time to a [`Timestamp`].
pub fn ts(t: OffsetDateTime) -> Timestamp {
    t.unix_timestamp()
}

/// Converts a [`Timestamp`] back to a time (the epoch if out of range).
pub fn from_ts(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A simulated wallet user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Login id (also the key).
    pub login_id: String,
    /// `customerBelongsTo` of the wallet this user belongs to.
    pub wallet: String,
    /// Wallet currency.
    pub currency: String,
    /// Balance in minor units.
    pub balance: i64,
}

/// The life of a Scan to Bind QR code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QrStatus {
    /// Shown, not scanned yet.
    Pending,
    /// The user approved; an authCode was issued.
    Approved,
    /// The user declined.
    Denied,
}

/// A QR code issued by consult.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthQr {
    /// The random code in the QR URL.
    pub code: String,
    /// Merchant client id.
    pub client_id: String,
    /// `customerBelongsTo`.
    pub wallet: String,
    /// `authState`, echoed in AUTHCODE_CREATED.
    pub auth_state: String,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// `authNotifyUrl`.
    pub notify_url: Option<String>,
    /// `authClientId`, echoed in notifications.
    pub auth_client_id: Option<String>,
    /// Merchant name shown on the phone.
    pub merchant_name: String,
    /// Device name shown on the phone, when the merchant sent one.
    pub device_name: Option<String>,
    /// Match code shown on the phone, when the merchant sent one.
    pub match_code: Option<String>,
    /// Issued at.
    pub created: Timestamp,
    /// Unusable after (15 minutes).
    pub expires: Timestamp,
    /// Where it stands.
    pub status: QrStatus,
}

/// An authCode delivered in AUTHCODE_CREATED.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthCode {
    /// Merchant client id.
    pub client_id: String,
    /// The QR it came from.
    pub qr: String,
    /// The approving user.
    pub user: String,
    /// Issued at.
    pub created: Timestamp,
    /// Expires (1 minute).
    pub expires: Timestamp,
    /// Single use.
    pub used: bool,
}

/// A binding between a wallet user and a merchant (what tokens stand for).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// Sandbox id.
    pub id: String,
    /// Merchant client id.
    pub client_id: String,
    /// Wallet user.
    pub user: String,
    /// `customerBelongsTo`.
    pub wallet: String,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Merchant display name.
    pub merchant_name: String,
    /// Where TOKEN_CANCELED goes.
    pub notify_url: Option<String>,
    /// `authClientId`.
    pub auth_client_id: Option<String>,
    /// Granted at.
    pub created: Timestamp,
    /// Revoked (by the merchant or by the user's Unbind) at.
    pub revoked: Option<Timestamp>,
    /// The newest access token (for TOKEN_CANCELED).
    pub access_token: String,
}

/// Which kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TokenKind {
    /// Used as `paymentMethodId`.
    Access,
    /// Used with grantType REFRESH_TOKEN (single use).
    Refresh,
}

/// An access or refresh token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    /// Access or refresh.
    pub kind: TokenKind,
    /// The binding.
    pub authorization: String,
    /// Expires at.
    pub expires: Timestamp,
    /// A refresh token that has been exchanged.
    pub used: bool,
}

/// Agreement (one-click) or order-code payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Product {
    /// `AGREEMENT_PAYMENT` with an access token.
    AgreementPayment,
    /// `IN_STORE_PAYMENT` / `OrderCode`.
    InStorePayment,
}

/// Payment state (the `paymentStatus` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PayState {
    /// Not final: waiting for the buyer, or the wallet is still working.
    Processing,
    /// Paid.
    Success,
    /// Failed (see `result_code`).
    Fail,
    /// Cancelled (never paid, or paid and fully reversed).
    Cancelled,
}

impl PayState {
    /// The wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            PayState::Processing => "PROCESSING",
            PayState::Success => "SUCCESS",
            PayState::Fail => "FAIL",
            PayState::Cancelled => "CANCELLED",
        }
    }
}

/// A payment that will become final later (PAYMENT_IN_PROCESS fault or magic amount).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingOutcome {
    /// Final state: success, or failure with this code.
    pub fail_code: Option<String>,
    /// Inquiries that still answer PROCESSING.
    pub inquiries_left: u32,
    /// Or final once the clock passes this time.
    pub final_at: Timestamp,
}

/// A payment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    /// `paymentId`.
    pub payment_id: String,
    /// `paymentRequestId`.
    pub payment_request_id: String,
    /// Merchant client id.
    pub client_id: String,
    /// Agreement or order code.
    pub product: Product,
    /// Currency code.
    pub currency: String,
    /// Amount in minor units.
    pub amount: i64,
    /// State.
    pub status: PayState,
    /// Failure code when `status` is FAIL.
    pub fail_code: Option<String>,
    /// Failure message.
    pub fail_message: Option<String>,
    /// The paying user (agreement: from the token; order code: whoever paid).
    pub user: Option<String>,
    /// Wallet that paid.
    pub wallet: Option<String>,
    /// `paymentMethod.paymentMethodId` as sent (idempotency comparison).
    pub payment_method_id: Option<String>,
    /// Order description.
    pub description: String,
    /// `order.referenceOrderId`.
    pub reference_order_id: String,
    /// Merchant display name.
    pub merchant_name: String,
    /// The seller paid (`order.merchant.referenceMerchantId` naming a registered
    /// seller); `None` for the client itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_merchant_id: Option<String>,
    /// `paymentNotifyUrl`.
    pub notify_url: Option<String>,
    /// Created at.
    pub created: Timestamp,
    /// Paid at.
    pub paid: Option<Timestamp>,
    /// Closes (agreement pay: 1 minute; order code: its expiry).
    pub expires: Timestamp,
    /// Cancelled at.
    pub cancelled: Option<Timestamp>,
    /// Sum of successful refunds (minor units), including a cancel's reversal.
    pub refunded: i64,
    /// How many times money moved from the user for this payment (the exactly-once oracle: 0 or 1).
    pub money_movements: u32,
    /// How many times money moved back because of a cancel.
    pub reversals: u32,
    /// Order-code value (the phone pay page code).
    pub order_code: Option<String>,
    /// A later final outcome (in-process simulation).
    pub pending: Option<PendingOutcome>,
    /// Inquiries received (for the in-process simulation).
    pub inquiries: u32,
    /// Notification already sent for the final state.
    pub notified: bool,
    /// A payment priced in another currency than the wallet's: what the wallet pays,
    /// at which quote (`actualPaymentAmount`, `paymentQuote`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<ActualPayment>,
    /// Minor units of the paying currency moved back to the user so far (refunds and a
    /// cancel of a payment with [`Payment::actual`]).
    #[serde(default)]
    pub actual_refunded: i64,
}

/// What the wallet pays for a payment priced in another currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActualPayment {
    /// The wallet's currency.
    pub currency: String,
    /// Minor units of it.
    pub amount: i64,
    /// `quoteId`.
    pub quote_id: String,
    /// `quoteCurrencyPair` (`PRICED/PAID`).
    pub pair: String,
    /// `quotePrice`.
    pub price: String,
    /// Quote validity start.
    pub quote_start: Timestamp,
    /// Quote validity end.
    pub quote_expiry: Timestamp,
}

impl Payment {
    /// What the wallet is charged: the actual amount of a converted payment, otherwise
    /// the payment amount (currency, minor units).
    pub fn charged(&self) -> (&str, i64) {
        match &self.actual {
            Some(a) => (&a.currency, a.amount),
            None => (&self.currency, self.amount),
        }
    }
}

/// A refund.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    /// `refundId`.
    pub refund_id: String,
    /// `refundRequestId`.
    pub refund_request_id: String,
    /// Merchant client id.
    pub client_id: String,
    /// The payment refunded.
    pub payment_id: String,
    /// Currency.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
    /// `SUCCESS`, `FAIL`, or `PROCESSING` while an asynchronous refund is pending.
    pub status: String,
    /// Created at (and completed at, for a synchronous refund).
    pub created: Timestamp,
    /// When an asynchronous refund became final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<Timestamp>,
    /// The planned outcome of an asynchronous refund still `PROCESSING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingOutcome>,
    /// What went back to the user in the wallet's currency, for a refund of a payment
    /// priced in another currency (currency, minor units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<(String, i64)>,
    /// The result code of a refund that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_code: Option<String>,
    /// `refundNotifyUrl`.
    pub notify_url: Option<String>,
    /// How many times money moved back to the user for this refund (0 or 1).
    pub money_movements: u32,
    /// The response body given to refund, replayed for identical repeats.
    pub response: String,
}

/// A customs declaration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Declaration {
    /// `declarationRequestId`.
    pub declaration_request_id: String,
    /// Merchant client id.
    pub client_id: String,
    /// The payment.
    pub payment_id: String,
    /// The request as received (JSON), for inquiry echo and idempotency.
    pub request: serde_json::Value,
    /// `customsPaymentId`.
    pub customs_payment_id: String,
    /// `customsOrderId`.
    pub customs_order_id: String,
    /// Declared at.
    pub created: Timestamp,
    /// The response body given to declare, replayed for identical repeats.
    pub response: String,
}

/// A notification to deliver once the lock is released.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Which notification (for the delivery log).
    pub kind: &'static str,
    /// Merchant client id (the `client-id` header).
    pub client_id: String,
    /// The merchant's URL.
    pub url: String,
    /// The exact body.
    pub body: String,
}

/// All sandbox data. Fields missing from an older state file take their defaults.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct State {
    /// The clock offset in seconds (restored on start).
    pub clock_offset_secs: u64,
    /// Counter for sequential ids.
    pub seq: u64,
    /// Wallet users by login id.
    pub users: BTreeMap<String, User>,
    /// Consult QR codes by code.
    pub qrs: BTreeMap<String, AuthQr>,
    /// authCodes by value.
    pub auth_codes: BTreeMap<String, AuthCode>,
    /// Bindings by id.
    pub authorizations: BTreeMap<String, Authorization>,
    /// Tokens by value.
    pub tokens: BTreeMap<String, Token>,
    /// Payments by paymentId.
    pub payments: BTreeMap<String, Payment>,
    /// `client-id` + NUL + paymentRequestId → paymentId.
    pub payment_requests: BTreeMap<String, String>,
    /// Payments still PROCESSING (checked by the time-driven sweep).
    pub open_payments: BTreeSet<String>,
    /// Failed payments whose notifyPayment waits for the order to close → when.
    pub failure_notices: BTreeMap<String, Timestamp>,
    /// Order codes → paymentId.
    pub order_codes: BTreeMap<String, String>,
    /// Refunds by refundId.
    pub refunds: BTreeMap<String, Refund>,
    /// `client-id` + NUL + refundRequestId → refundId.
    pub refund_requests: BTreeMap<String, String>,
    /// Asynchronous refunds still PROCESSING (checked by the time-driven sweep).
    pub open_refunds: BTreeSet<String>,
    /// `client-id` + NUL + declarationRequestId → declaration.
    pub declarations: BTreeMap<String, Declaration>,
    /// Limit usage: `user|yyyy-mm-dd` and `user|yyyy` → minor units paid.
    pub usage: BTreeMap<String, i64>,
    /// Notifications produced by the current critical section (never persisted).
    #[serde(skip)]
    pub outbox: Vec<Outgoing>,
}

/// The key of a per-merchant index.
pub fn scoped(client_id: &str, id: &str) -> String {
    format!("{client_id}\u{0}{id}")
}

impl State {
    /// The next sequence number.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Looks a payment up by its request id.
    pub fn payment_by_request(&self, client_id: &str, request_id: &str) -> Option<&Payment> {
        self.payment_requests
            .get(&scoped(client_id, request_id))
            .and_then(|id| self.payments.get(id))
    }

    /// Queues a notification.
    pub fn notify(&mut self, kind: &'static str, client_id: &str, url: &str, body: String) {
        self.outbox.push(Outgoing {
            kind,
            client_id: client_id.to_owned(),
            url: url.to_owned(),
            body,
        });
    }
}

/// The shared state, its lock and its file.
#[derive(Debug)]
pub struct Store {
    /// One std mutex for all data (see the module docs for why one, and why std: no
    /// critical section awaits).
    state: Mutex<State>,
    /// Written after each change, when set.
    file: Option<PathBuf>,
}

impl Store {
    /// Opens the store, reading `file` when it exists.
    pub fn open(file: Option<PathBuf>) -> Result<Self> {
        let state = match &file {
            Some(path) if path.exists() => {
                let bytes = std::fs::read(path).map_err(|source| Error::Io {
                    what: "read the state file",
                    path: path.clone(),
                    source,
                })?;
                serde_json::from_slice(&bytes).map_err(|source| Error::StateFile {
                    path: path.clone(),
                    source,
                })?
            }
            _ => State::default(),
        };
        Ok(Store {
            state: Mutex::new(state),
            file,
        })
    }

    /// Runs `f` on the state without changing it.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    /// Runs `f` on the state, saves the state file if `f` reports a change, and returns
    /// `f`'s result with the notifications it queued.
    pub fn write<R>(&self, f: impl FnOnce(&mut State) -> (R, bool)) -> (R, Vec<Outgoing>) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (out, changed) = f(&mut guard);
        let outbox = std::mem::take(&mut guard.outbox);
        if (changed || !outbox.is_empty())
            && let Some(path) = &self.file
            && let Err(err) = save(path, &guard)
        {
            tracing::error!(cause = %err, "could not save the sandbox state file");
        }
        (out, outbox)
    }
}

/// Writes the state to `path` atomically: a temporary file in the same directory, fsync,
/// rename.
fn save(path: &Path, state: &State) -> Result<()> {
    use std::io::Write as _;
    let io = |what, source| Error::Io {
        what,
        path: path.to_owned(),
        source,
    };
    let bytes = serde_json::to_vec(state).map_err(|source| Error::StateFile {
        path: path.to_owned(),
        source,
    })?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        // The state holds tokens: keep it private to the sandbox's user.
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(&tmp)
        .map_err(|e| io("create the temporary state file", e))?;
    file.write_all(&bytes)
        .map_err(|e| io("write the temporary state file", e))?;
    file.sync_all()
        .map_err(|e| io("sync the temporary state file", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("replace the state file", e))
}
