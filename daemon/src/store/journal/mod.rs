//! The payment journal: every payment, durably, before anything leaves the device.
//!
//! SQLite (bundled) in WAL mode with `synchronous=FULL`, so a commit has reached the
//! disk when [`Journal::record`] returns; a `kill -9` or power loss right after it
//! loses nothing. The database lives in the XDG state directory
//! ([`Journal::default_path`]); the path is injectable for tests.
//!
//! One row per payment, unique on (caller's uid, app id, app order id) — its
//! [`Owner`] and its order id: the same order id never makes a second entry, and its
//! idempotency key (derived from the three) is the same on every retry and after every
//! restart. Two users running the same app never share a payment, an order id or a
//! budget ([`Journal::record`]); a profile's (household) budget counts every app of
//! every user. States move only forward:
//!
//! ```text
//! pending ──► sent ──► succeeded | failed | pending-unknown | cancelled
//!    │                                   pending-unknown ──► succeeded | failed | cancelled
//!    └──► failed | cancelled   (never sent)
//! ```
//!
//! `sent` is written *before* the request goes out ([`Journal::mark_sent`]), so after a
//! crash of the daemon `pending` means "certainly never sent" and `sent` means "maybe
//! sent: ask the server" ([`Journal::open_entries`]). That one commit does not wait for
//! its own fsync: the entry is already durable as `pending`, the next commit (the
//! answer) carries `sent` to the disk with it, and both states are re-driven alike,
//! with the same idempotency key, so an OS crash or power loss that loses `sent` loses
//! nothing either (the server answers the re-sent request idempotently). Nothing secret
//! is stored: no tokens, no keys; the receipt is a signed public document.
//!
//! Concurrency: a `Journal` owns one `rusqlite::Connection` (not `Sync`). The daemon
//! keeps it behind a `std::sync::Mutex` and calls it from `spawn_blocking`, since
//! every write waits for an fsync.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use scanbind_ipc::{ErrorInfo, PaymentState};
use scanbind_money::{Currency, MinorUnits, Money};

use crate::error::{Error, Result};

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 6;

const SCHEMA: &str = "
CREATE TABLE payments (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id            TEXT    NOT NULL CHECK (length(app_id) > 0),
    order_id          TEXT    NOT NULL CHECK (length(order_id) > 0),
    idempotency_key   TEXT    NOT NULL UNIQUE,
    amount_minor      INTEGER NOT NULL CHECK (amount_minor > 0),
    currency          TEXT    NOT NULL,
    description       TEXT    NOT NULL,
    binding           TEXT    NOT NULL,
    state             TEXT    NOT NULL CHECK (state IN
                          ('pending', 'sent', 'succeeded', 'failed', 'pending-unknown', 'cancelled')),
    delivered         INTEGER NOT NULL DEFAULT 0 CHECK (delivered IN (0, 1)),
    receipt           TEXT,
    error_name        TEXT,
    error_message     TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (app_id, order_id)
) STRICT;
CREATE INDEX payments_open ON payments (state) WHERE state IN ('pending', 'sent', 'pending-unknown');
CREATE INDEX payments_app ON payments (app_id, id);
";

/// Version 1 → 2: the server's payment id (for refunds), line items, refunds.
const SCHEMA_V2: &str = "
ALTER TABLE payments ADD COLUMN server_payment_id TEXT;
ALTER TABLE payments ADD COLUMN line_items TEXT;
CREATE TABLE refunds (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    payment       INTEGER NOT NULL REFERENCES payments (id),
    refund_id     TEXT    NOT NULL UNIQUE CHECK (length(refund_id) > 0),
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),
    reason        TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX refunds_payment ON refunds (payment);
";

/// Version 2 → 3: order code payments (the user scans an order QR code instead of a
/// bound wallet paying).
const SCHEMA_V3: &str = "
ALTER TABLE payments ADD COLUMN product TEXT NOT NULL DEFAULT 'agreement'
    CHECK (product IN ('agreement', 'order_code'));
ALTER TABLE payments ADD COLUMN order_code TEXT;
ALTER TABLE payments ADD COLUMN order_code_expires_at INTEGER;
";

/// Version 3 → 4: small counters that must survive restarts (the parent PIN's wrong
/// attempts and lock).
const SCHEMA_V4: &str = "
CREATE TABLE meta (
    key    TEXT    PRIMARY KEY,
    value  INTEGER NOT NULL
) STRICT;
";

/// Version 4 → 5: combined checkouts (several sellers in one payment): the parts as
/// asked, the server's latest answer, and the part each refund is for.
const SCHEMA_V5: &str = "
ALTER TABLE payments ADD COLUMN checkout TEXT;
ALTER TABLE payments ADD COLUMN checkout_result TEXT;
ALTER TABLE refunds ADD COLUMN part INTEGER CHECK (part IS NULL OR part >= 0);
";

/// Version 5 → 6: the caller's uid is part of a payment's owner: `uid` column, unique
/// on (uid, app id, order id). SQLite cannot change a table's constraints, so the
/// table is rebuilt (ids, and so payment object paths, are kept; `refunds` refers to
/// `payments` by name and follows the renamed table). The existing rows get `?1`, the
/// daemon's own euid: before version 6 only session daemons existed, and every caller
/// of a session daemon is the session's user, which is the daemon's user.
const SCHEMA_V6: [&str; 2] = [
    "
CREATE TABLE payments_v6 (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    uid               INTEGER NOT NULL CHECK (uid >= 0 AND uid <= 4294967295),
    app_id            TEXT    NOT NULL CHECK (length(app_id) > 0),
    order_id          TEXT    NOT NULL CHECK (length(order_id) > 0),
    idempotency_key   TEXT    NOT NULL UNIQUE,
    amount_minor      INTEGER NOT NULL CHECK (amount_minor > 0),
    currency          TEXT    NOT NULL,
    description       TEXT    NOT NULL,
    binding           TEXT    NOT NULL,
    state             TEXT    NOT NULL CHECK (state IN
                          ('pending', 'sent', 'succeeded', 'failed', 'pending-unknown', 'cancelled')),
    delivered         INTEGER NOT NULL DEFAULT 0 CHECK (delivered IN (0, 1)),
    receipt           TEXT,
    error_name        TEXT,
    error_message     TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    server_payment_id TEXT,
    line_items        TEXT,
    product           TEXT    NOT NULL DEFAULT 'agreement'
                          CHECK (product IN ('agreement', 'order_code')),
    order_code        TEXT,
    order_code_expires_at INTEGER,
    checkout          TEXT,
    checkout_result   TEXT,
    UNIQUE (uid, app_id, order_id)
) STRICT;
",
    "
DROP TABLE payments;
ALTER TABLE payments_v6 RENAME TO payments;
CREATE INDEX payments_open ON payments (state) WHERE state IN ('pending', 'sent', 'pending-unknown');
CREATE INDEX payments_owner ON payments (uid, app_id, id);
",
];

/// The columns kept by the version 6 rebuild (all of version 5's).
const V5_COLUMNS: &str = "id, app_id, order_id, idempotency_key, amount_minor, currency, \
     description, binding, state, delivered, receipt, error_name, error_message, created_at, \
     updated_at, server_payment_id, line_items, product, order_code, order_code_expires_at, \
     checkout, checkout_result";

const COLUMNS: &str = "id, app_id, order_id, idempotency_key, amount_minor, currency, description, \
     binding, state, delivered, receipt, error_name, \
     error_message, created_at, updated_at, server_payment_id, line_items, \
     (SELECT coalesce(sum(r.amount_minor), 0) FROM refunds r \
      WHERE r.payment = payments.id AND r.state = 'succeeded'), \
     (SELECT coalesce(sum(r.amount_minor), 0) FROM refunds r \
      WHERE r.payment = payments.id AND r.state != 'failed'), \
     product, order_code, order_code_expires_at, checkout, checkout_result, \
     (SELECT json_group_object(part, total) FROM (SELECT r.part AS part, \
      sum(r.amount_minor) AS total FROM refunds r WHERE r.payment = payments.id \
      AND r.state = 'succeeded' AND r.part IS NOT NULL GROUP BY r.part)), uid";

/// A journal entry's state. Finer than the wire's [`PaymentState`]: `pending` and
/// `sent` both show as `pending` to apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JournalState {
    /// Recorded; certainly not sent yet.
    Pending,
    /// About to be sent or sent; the outcome is not known.
    Sent,
    /// Charged (final).
    Succeeded,
    /// Not charged (final).
    Failed,
    /// Sent; the server does not know the outcome yet.
    PendingUnknown,
    /// Not charged, cancelled (final).
    Cancelled,
}

impl JournalState {
    const ALL: [JournalState; 6] = [
        JournalState::Pending,
        JournalState::Sent,
        JournalState::Succeeded,
        JournalState::Failed,
        JournalState::PendingUnknown,
        JournalState::Cancelled,
    ];

    /// The stored form.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            JournalState::Pending => "pending",
            JournalState::Sent => "sent",
            JournalState::Succeeded => "succeeded",
            JournalState::Failed => "failed",
            JournalState::PendingUnknown => "pending-unknown",
            JournalState::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Option<JournalState> {
        JournalState::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// What apps see.
    pub(crate) fn to_wire(self) -> PaymentState {
        match self {
            JournalState::Pending | JournalState::Sent => PaymentState::Pending,
            JournalState::Succeeded => PaymentState::Succeeded,
            JournalState::Failed => PaymentState::Failed,
            JournalState::PendingUnknown => PaymentState::PendingUnknown,
            JournalState::Cancelled => PaymentState::Cancelled,
        }
    }

    /// Whether the state is final.
    pub(crate) fn is_terminal(self) -> bool {
        match self {
            JournalState::Succeeded | JournalState::Failed | JournalState::Cancelled => true,
            JournalState::Pending | JournalState::Sent | JournalState::PendingUnknown => false,
        }
    }

    /// Whether `self → to` is an allowed move (see the module docs).
    pub(crate) fn can_move_to(self, to: JournalState) -> bool {
        use JournalState::*;
        match self {
            Pending => matches!(to, Sent | Failed | Cancelled),
            Sent => matches!(to, Succeeded | Failed | PendingUnknown | Cancelled),
            PendingUnknown => matches!(to, Succeeded | Failed | Cancelled),
            Succeeded | Failed | Cancelled => false,
        }
    }
}

/// A state change, with what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transition {
    /// The request is about to go out (written before sending).
    Sent,
    /// Charged, with the server's signed receipt (JWS compact serialisation).
    Succeeded(String),
    /// Not charged, and why.
    Failed(ErrorInfo),
    /// The outcome is unknown for now.
    PendingUnknown,
    /// Cancelled, and why.
    Cancelled(ErrorInfo),
}

impl Transition {
    fn target(&self) -> JournalState {
        match self {
            Transition::Sent => JournalState::Sent,
            Transition::Succeeded(_) => JournalState::Succeeded,
            Transition::Failed(_) => JournalState::Failed,
            Transition::PendingUnknown => JournalState::PendingUnknown,
            Transition::Cancelled(_) => JournalState::Cancelled,
        }
    }
}

/// Who a payment belongs to: the caller's uid and app id, as the kernel and the bus
/// vouch for them (`dbus::caller`). Payments, order ids and per-app budgets are per
/// owner: the same app run by two users is two owners.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Owner {
    /// The caller's uid.
    pub uid: u32,
    /// The caller's app id.
    pub app_id: String,
}

/// The prefix of the merchant server's app id of an owner whose uid is not the
/// daemon's own ([`Owner::server_app_id`]).
const SERVER_UID_PREFIX: &str = "uid:";

impl Owner {
    /// The app id the merchant server knows this owner's payments under (it keeps one
    /// payment per device, app id and order id): the plain app id for the daemon's
    /// own uid (a session daemon, whose callers are all its user, sends what it always
    /// sent), `uid:<uid>:<app id>` for every other uid, so that two users' identical
    /// order ids are two payments there too. App ids start with `/`, `flatpak:` or
    /// `snap:`, so the two forms never collide.
    pub(crate) fn server_app_id(&self) -> String {
        if self.uid == own_uid() {
            self.app_id.clone()
        } else {
            format!("{SERVER_UID_PREFIX}{}:{}", self.uid, self.app_id)
        }
    }

    /// The owner of a server app id ([`Owner::server_app_id`] reversed).
    pub(crate) fn from_server_app_id(server_app_id: &str) -> Owner {
        if let Some(rest) = server_app_id.strip_prefix(SERVER_UID_PREFIX)
            && let Some((digits, app_id)) = rest.split_once(':')
            && let Ok(uid) = digits.parse::<u32>()
            // Canonical digits only ("+1", "01" are not uids).
            && uid.to_string() == digits
        {
            return Owner {
                uid,
                app_id: app_id.to_owned(),
            };
        }
        Owner {
            uid: own_uid(),
            app_id: server_app_id.to_owned(),
        }
    }
}

/// The idempotency key of a payment: derived from its owner (uid, app id) and order id
/// only, so every retry and every restart sends the same key, and two users' equal
/// order ids never share one. `p2-` + 32 hex digits (128 bits of SHA-256). Payments
/// recorded before uids were part of the key keep their stored `p1-` key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key for `order_id` of `owner`.
    pub(crate) fn derive(owner: &Owner, order_id: &str) -> IdempotencyKey {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let uid = owner.uid.to_string();
        // Length-prefixed fields: ("ab", "c") and ("a", "bc") give different keys.
        for part in ["scanbind/pay/v2", &uid, &owner.app_id, order_id] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part.as_bytes());
        }
        let digest = ctx.finish();
        let hex: String = digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        IdempotencyKey(format!("p2-{hex}"))
    }

    /// The key as sent to the server.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// A payment to record.
#[derive(Debug, Clone)]
pub(crate) struct NewPayment<'a> {
    /// Who pays: the caller's verified identity.
    pub owner: &'a Owner,
    /// The app's own order id.
    pub order_id: &'a str,
    /// How much.
    pub amount: Money,
    /// What for.
    pub description: &'a str,
    /// The server's id of the binding that pays.
    pub binding: &'a str,
    /// The line items, as JSON (`[{"name", "quantity", "amountMinor"}]`), if any.
    pub line_items: Option<&'a str>,
    /// Paid by scanning an order QR code instead of by a bound wallet.
    pub order_code: bool,
    /// Budgets a new payment must stay within (checked in the recording transaction).
    pub budgets: &'a [crate::policy::Budget],
    /// A combined checkout's parts, as JSON (the domain's `CheckoutSpec`), if
    /// this is one.
    pub checkout: Option<&'a str>,
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The row id; never reused. Also the payment's object path counter.
    pub id: i64,
    /// The caller's uid (with `app_id`, the payment's [`Owner`]).
    pub uid: u32,
    /// The app's identity.
    pub app_id: String,
    /// The app's order id.
    pub order_id: String,
    /// Derived from (uid, app id, order id).
    pub idempotency_key: IdempotencyKey,
    /// How much.
    pub amount: Money,
    /// What for.
    pub description: String,
    /// The binding that pays.
    pub binding: String,
    /// Where it stands.
    pub state: JournalState,
    /// Whether the app called `Finish`.
    pub delivered: bool,
    /// The signed receipt (JWS compact serialisation), once succeeded.
    pub receipt: Option<String>,
    /// Why it failed or was cancelled.
    pub error: Option<ErrorInfo>,
    /// When recorded (Unix seconds).
    pub created_at: i64,
    /// When last changed (Unix seconds).
    pub updated_at: i64,
    /// The merchant server's id of the payment, once it answered.
    pub server_payment_id: Option<String>,
    /// The line items as JSON, if the app gave any.
    pub line_items: Option<String>,
    /// The total of the succeeded refunds, in minor units.
    pub refunded_minor: i64,
    /// The total of the refunds not failed (succeeded or still pending).
    pub refund_reserved_minor: i64,
    /// Paid by scanning an order QR code (no binding).
    pub is_order_code: bool,
    /// The order QR code's text value, once the server made it.
    pub order_code: Option<String>,
    /// When the order QR code expires (Unix seconds).
    pub order_code_expires_at: Option<i64>,
    /// A combined checkout's parts as asked (JSON, the domain's `CheckoutSpec`).
    pub checkout: Option<String>,
    /// The merchant server's latest answer about the checkout (JSON, its `Checkout`).
    pub checkout_result: Option<String>,
    /// What was refunded per checkout part (part index → minor units).
    pub part_refunds: std::collections::BTreeMap<u32, i64>,
}

impl Entry {
    /// Who the payment belongs to.
    pub(crate) fn owner(&self) -> Owner {
        Owner {
            uid: self.uid,
            app_id: self.app_id.clone(),
        }
    }

    /// Whether `owner` is who the payment belongs to.
    pub(crate) fn is_owned_by(&self, owner: &Owner) -> bool {
        self.uid == owner.uid && self.app_id == owner.app_id
    }

    /// What apps see: [`JournalState::to_wire`], except that a combined checkout the
    /// server settled as partially succeeded shows as `partially-succeeded`.
    pub(crate) fn wire_state(&self) -> PaymentState {
        if self.state == JournalState::Succeeded
            && self.server_checkout().is_some_and(|c| {
                c.status == scanbind_device_api::types::CheckoutStatus::PartiallySucceeded
            })
        {
            return PaymentState::PartiallySucceeded;
        }
        self.state.to_wire()
    }

    /// The server's latest answer about the entry's checkout, if any (read from
    /// [`Entry::checkout_result`]).
    pub(crate) fn server_checkout(&self) -> Option<scanbind_device_api::types::Checkout> {
        serde_json::from_str(self.checkout_result.as_deref()?).ok()
    }
}

/// A refund's state in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefundState {
    /// Recorded, maybe sent; the outcome is not known.
    Pending,
    /// Refunded (final).
    Succeeded,
    /// Not refunded (final).
    Failed,
}

impl RefundState {
    /// The stored (and wire) form.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RefundState::Pending => "pending",
            RefundState::Succeeded => "succeeded",
            RefundState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<RefundState> {
        [
            RefundState::Pending,
            RefundState::Succeeded,
            RefundState::Failed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// One refund of a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefundEntry {
    /// The payment's journal id.
    pub payment: i64,
    /// The refund id (the idempotency key sent to the server).
    pub refund_id: String,
    /// How much, in the payment's minor units.
    pub amount_minor: i64,
    /// Where it stands.
    pub state: RefundState,
    /// The checkout part it refunds (a combined checkout's refunds are per part).
    pub part: Option<u32>,
    /// The app's reason, sent with the refund (and again when it is re-sent).
    pub reason: String,
}

/// What [`Journal::record_refund`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RefundRecorded {
    /// Recorded.
    New(RefundEntry),
    /// This refund id was already recorded (a retry): the existing one.
    Existing(RefundEntry),
    /// The payment is not `succeeded`.
    NotPaid,
    /// The amount is more than what is left to refund (the rest, in minor units).
    TooMuch(i64),
}

/// What [`Journal::record`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// A new entry, committed.
    New(Entry),
    /// The app already recorded this order with the same parameters: the existing
    /// entry, unchanged.
    Existing(Entry),
    /// Not recorded: it would take the app past this budget (`spent` so far).
    OverBudget {
        /// The budget.
        budget: crate::policy::Budget,
        /// What the app spent in the budget's period so far, minor units.
        spent: i64,
    },
}

impl Recorded {
    /// The entry, new or existing.
    pub(crate) fn entry(&self) -> Option<&Entry> {
        match self {
            Recorded::New(e) | Recorded::Existing(e) => Some(e),
            Recorded::OverBudget { .. } => None,
        }
    }
}

/// The payment journal (see the module docs).
#[derive(Debug)]
pub(crate) struct Journal {
    conn: Connection,
}

impl Journal {
    /// `$XDG_STATE_HOME/scanbind/journal.sqlite3`, falling back to
    /// `$HOME/.local/state/scanbind/journal.sqlite3`; `None` without either.
    pub(crate) fn default_path() -> Option<PathBuf> {
        default_path_from(std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME"))
    }

    /// Opens (creating if needed) the journal at `path`, its directory with mode 0700.
    pub(crate) fn open(path: &Path) -> Result<Journal> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(|source| Error::JournalDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(Error::journal("open"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(Error::journal("busy_timeout"))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(Error::journal("journal_mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::JournalSetup {
                path: path.to_owned(),
                reason: format!("cannot use WAL mode (SQLite reports {mode:?})"),
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(Error::journal("synchronous"))?;
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .map_err(Error::journal("synchronous"))?;
        if sync != 2 {
            return Err(Error::JournalSetup {
                path: path.to_owned(),
                reason: format!("synchronous is {sync}, not FULL (2)"),
            });
        }
        let mut journal = Journal { conn };
        journal.migrate(path)?;
        Ok(journal)
    }

    fn migrate(&mut self, path: &Path) -> Result<()> {
        // Version 6 rebuilds `payments`, which `refunds` refers to: foreign keys are
        // off while it does (SQLite's procedure for changing a table; the pragma is a
        // no-op inside a transaction), checked before the commit, and on again after.
        let fk: bool = self
            .conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .map_err(Error::journal("migrate"))?;
        self.conn
            .pragma_update(None, "foreign_keys", false)
            .map_err(Error::journal("migrate"))?;
        let migrated = self.migrate_in_transaction(path);
        let restored = self
            .conn
            .pragma_update(None, "foreign_keys", fk)
            .map_err(Error::journal("migrate"));
        migrated.and(restored)
    }

    fn migrate_in_transaction(&mut self, path: &Path) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::journal("migrate"))?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(Error::journal("migrate"))?;
        let step = |e: &'static str| Error::journal(e);
        match version {
            0..=5 => {
                let what = if version == 0 {
                    "create schema"
                } else {
                    "migrate"
                };
                if version == 0 {
                    tx.execute_batch(SCHEMA).map_err(step(what))?;
                }
                if version <= 1 {
                    tx.execute_batch(SCHEMA_V2).map_err(step(what))?;
                }
                if version <= 2 {
                    tx.execute_batch(SCHEMA_V3).map_err(step(what))?;
                }
                if version <= 3 {
                    tx.execute_batch(SCHEMA_V4).map_err(step(what))?;
                }
                if version <= 4 {
                    tx.execute_batch(SCHEMA_V5).map_err(step(what))?;
                }
                migrate_to_6(&tx, own_uid()).map_err(step("migrate to 6"))?;
                let broken: Option<String> = tx
                    .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
                    .optional()
                    .map_err(step("migrate to 6"))?;
                if let Some(table) = broken {
                    return Err(Error::JournalSetup {
                        path: path.to_owned(),
                        reason: format!("a row of {table} refers to a payment that is not there"),
                    });
                }
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                    .map_err(Error::journal("migrate"))?;
            }
            SCHEMA_VERSION => {}
            newer => {
                return Err(Error::JournalSetup {
                    path: path.to_owned(),
                    reason: format!(
                        "schema version {newer} is newer than this scanbindd ({SCHEMA_VERSION})"
                    ),
                });
            }
        }
        tx.commit().map_err(Error::journal("migrate"))
    }

    /// Records a payment in state `pending` and commits it (fsync'd) before returning.
    ///
    /// The same (owner, order id) again with the same amount, currency and
    /// description returns [`Recorded::Existing`]; with different ones
    /// [`Error::OrderConflict`]. Either way no second entry is made.
    pub(crate) fn record(&mut self, p: &NewPayment<'_>) -> Result<Recorded> {
        let key = IdempotencyKey::derive(p.owner, p.order_id);
        let (uid, app_id) = (p.owner.uid, p.owner.app_id.as_str());
        let now = unix_now();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::journal("record"))?;
        // Budgets hold for new payments only (a retry of a recorded order is not a new
        // charge). The write lock is held from here to the commit, so concurrent
        // calls see each other's payments and can never overspend together.
        let exists: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM payments \
                 WHERE uid = ?1 AND app_id = ?2 AND order_id = ?3)",
                params![uid, app_id, p.order_id],
                |r| r.get(0),
            )
            .map_err(Error::journal("record"))?;
        if !exists {
            for b in p.budgets {
                let spent: i64 = tx
                    .query_row(
                        "SELECT coalesce(sum(amount_minor), 0) FROM payments \
                         WHERE (?4 = 0 OR (uid = ?5 AND app_id = ?1)) AND currency = ?2 \
                         AND created_at >= ?3 AND state NOT IN ('failed', 'cancelled')",
                        params![app_id, b.currency.code(), b.since, b.per_app, uid],
                        |r| r.get(0),
                    )
                    .map_err(Error::journal("record"))?;
                if spent.saturating_add(p.amount.minor().get()) > b.limit {
                    return Ok(Recorded::OverBudget { budget: *b, spent });
                }
            }
        }
        let inserted = tx
            .execute(
                "INSERT INTO payments (app_id, order_id, idempotency_key, amount_minor, currency, \
                 description, binding, state, created_at, updated_at, line_items, product, \
                 checkout, uid) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8, ?9, ?10, ?11, ?12) \
                 ON CONFLICT (uid, app_id, order_id) DO NOTHING",
                params![
                    app_id,
                    p.order_id,
                    key.as_str(),
                    p.amount.minor().get(),
                    p.amount.currency().code(),
                    p.description,
                    p.binding,
                    now,
                    p.line_items,
                    if p.order_code {
                        "order_code"
                    } else {
                        "agreement"
                    },
                    p.checkout,
                    uid,
                ],
            )
            .map_err(Error::journal("record"))?;
        let entry = tx
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM payments \
                     WHERE uid = ?1 AND app_id = ?2 AND order_id = ?3"
                ),
                params![uid, app_id, p.order_id],
                RawEntry::from_row,
            )
            .map_err(Error::journal("record"))?
            .into_entry()?;
        tx.commit().map_err(Error::journal("record"))?;
        if inserted == 1 {
            return Ok(Recorded::New(entry));
        }
        if entry.amount == p.amount
            && entry.description == p.description
            && entry.line_items.as_deref() == p.line_items
            && entry.is_order_code == p.order_code
            && entry.checkout.as_deref() == p.checkout
        {
            Ok(Recorded::Existing(entry))
        } else {
            Err(Error::OrderConflict {
                order_id: p.order_id.to_owned(),
            })
        }
    }

    /// A counter from the meta table.
    pub(crate) fn meta(&self, key: &str) -> Result<Option<i64>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(Error::journal("meta"))
    }

    /// Sets a counter in the meta table (committed before returning).
    pub(crate) fn set_meta(&mut self, key: &str, value: i64) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(drop)
            .map_err(Error::journal("meta"))
    }

    /// The entry with this id.
    pub(crate) fn get(&self, id: i64) -> Result<Entry> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM payments WHERE id = ?1"),
                [id],
                RawEntry::from_row,
            )
            .optional()
            .map_err(Error::journal("get"))?
            .ok_or(Error::UnknownPayment(id))?
            .into_entry()
    }

    /// The entry of `order_id` of `owner`, if any.
    pub(crate) fn find(&self, owner: &Owner, order_id: &str) -> Result<Option<Entry>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM payments \
                     WHERE uid = ?1 AND app_id = ?2 AND order_id = ?3"
                ),
                params![owner.uid, owner.app_id, order_id],
                RawEntry::from_row,
            )
            .optional()
            .map_err(Error::journal("find"))?
            .map(RawEntry::into_entry)
            .transpose()
    }

    /// The entry the merchant server knows as (`server_app_id`, `order_id`) (its
    /// events name payments so; see [`Owner::server_app_id`]), if any.
    pub(crate) fn find_for_server(
        &self,
        server_app_id: &str,
        order_id: &str,
    ) -> Result<Option<Entry>> {
        self.find(&Owner::from_server_app_id(server_app_id), order_id)
    }

    /// Moves an entry to a new state and commits. Moving to the state it is already
    /// in is a no-op that returns the entry unchanged (a result delivered twice, e.g.
    /// by reconciliation, changes nothing); any move not allowed by the state machine
    /// is [`Error::InvalidTransition`].
    pub(crate) fn advance(&mut self, id: i64, t: Transition) -> Result<Entry> {
        self.advance_with(id, t, None)
    }

    /// Moves a `pending` entry to `sent` (any other entry is returned as it is), without
    /// waiting for the fsync of this one commit (`synchronous=NORMAL` for it, then
    /// `FULL` again): it is in the WAL at once, so it survives a crash of the daemon,
    /// and on the disk with the next commit (see the module docs for why losing it to
    /// a power loss is harmless).
    pub(crate) fn mark_sent(&mut self, id: i64) -> Result<Entry> {
        let entry = self.get(id)?;
        if entry.state != JournalState::Pending {
            return Ok(entry);
        }
        self.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(Error::journal("synchronous"))?;
        let moved = self.advance(id, Transition::Sent);
        let restored = self
            .conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(Error::journal("synchronous"));
        let entry = moved?;
        restored?;
        Ok(entry)
    }

    /// [`Journal::advance`], also remembering the server's payment id (first answer
    /// wins) in the same commit: one fsync instead of two.
    pub(crate) fn advance_with(
        &mut self,
        id: i64,
        t: Transition,
        server_payment_id: Option<&str>,
    ) -> Result<Entry> {
        self.advance_checkout(id, t, server_payment_id, None)
    }

    /// [`Journal::advance_with`], also storing the server's latest answer about a
    /// combined checkout (JSON) in the same commit, unless the entry is already final
    /// (a late answer never replaces the final one).
    pub(crate) fn advance_checkout(
        &mut self,
        id: i64,
        t: Transition,
        server_payment_id: Option<&str>,
        checkout_result: Option<&str>,
    ) -> Result<Entry> {
        let to = t.target();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::journal("advance"))?;
        if let Some(result) = checkout_result {
            tx.execute(
                "UPDATE payments SET checkout_result = ?2 WHERE id = ?1 AND checkout IS NOT NULL \
                 AND state NOT IN ('succeeded', 'failed', 'cancelled')",
                params![id, result],
            )
            .map_err(Error::journal("advance"))?;
        }
        if let Some(sid) = server_payment_id {
            tx.execute(
                "UPDATE payments SET server_payment_id = ?2 \
                 WHERE id = ?1 AND server_payment_id IS NULL",
                params![id, sid],
            )
            .map_err(Error::journal("advance"))?;
        }
        let current: Option<String> = tx
            .query_row("SELECT state FROM payments WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(Error::journal("advance"))?;
        let current = current.ok_or(Error::UnknownPayment(id))?;
        let from = JournalState::parse(&current).ok_or_else(|| Error::JournalCorrupt {
            id,
            reason: format!("unknown state {current:?}"),
        })?;
        if from != to {
            if !from.can_move_to(to) {
                return Err(Error::InvalidTransition {
                    id,
                    from: from.as_str(),
                    to: to.as_str(),
                });
            }
            let (receipt, error) = match &t {
                Transition::Succeeded(r) => (Some(r), None),
                Transition::Failed(e) | Transition::Cancelled(e) => (None, Some(e)),
                Transition::Sent | Transition::PendingUnknown => (None, None),
            };
            tx.execute(
                "UPDATE payments SET state = ?2, updated_at = ?3, \
                 receipt = coalesce(?4, receipt), \
                 error_name = coalesce(?5, error_name), error_message = coalesce(?6, error_message) \
                 WHERE id = ?1",
                params![
                    id,
                    to.as_str(),
                    unix_now(),
                    receipt,
                    error.map(|e| &e.name),
                    error.map(|e| &e.message),
                ],
            )
            .map_err(Error::journal("advance"))?;
        }
        tx.commit().map_err(Error::journal("advance"))?;
        self.get(id)
    }

    /// Sets the delivered flag of a succeeded payment (the app called `Finish`).
    /// Returns whether it changed: `false` if it was already set. Only a `succeeded`
    /// payment can be delivered.
    pub(crate) fn mark_delivered(&mut self, id: i64) -> Result<bool> {
        let changed = self
            .conn
            .execute(
                "UPDATE payments SET delivered = 1, updated_at = ?2 \
                 WHERE id = ?1 AND state = 'succeeded' AND delivered = 0",
                params![id, unix_now()],
            )
            .map_err(Error::journal("mark_delivered"))?;
        if changed == 1 {
            return Ok(true);
        }
        let entry = self.get(id)?;
        if entry.state == JournalState::Succeeded {
            Ok(false)
        } else {
            Err(Error::InvalidTransition {
                id,
                from: entry.state.as_str(),
                to: "delivered",
            })
        }
    }

    /// Remembers the merchant server's id of a payment (first answer wins).
    pub(crate) fn set_server_payment_id(&mut self, id: i64, server_id: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE payments SET server_payment_id = ?2 \
                 WHERE id = ?1 AND server_payment_id IS NULL",
                params![id, server_id],
            )
            .map_err(Error::journal("set_server_payment_id"))?;
        Ok(())
    }

    /// Remembers the order QR code the server made for an order code payment.
    pub(crate) fn set_order_code(
        &mut self,
        id: i64,
        code_value: &str,
        expires_at: i64,
    ) -> Result<Entry> {
        self.conn
            .execute(
                "UPDATE payments SET order_code = ?2, order_code_expires_at = ?3 \
                 WHERE id = ?1 AND product = 'order_code'",
                params![id, code_value, expires_at],
            )
            .map_err(Error::journal("set_order_code"))?;
        self.get(id)
    }

    /// Records a refund of a succeeded payment in state `pending`, if what is left to
    /// refund (the amount minus every refund not failed) covers it; one transaction,
    /// so concurrent requests never refund more than was paid.
    pub(crate) fn record_refund(
        &mut self,
        payment: i64,
        refund_id: &str,
        amount_minor: i64,
        reason: &str,
        part: Option<u32>,
    ) -> Result<RefundRecorded> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::journal("record_refund"))?;
        let existing = tx
            .query_row(
                "SELECT payment, refund_id, amount_minor, state, part, reason FROM refunds \
                 WHERE refund_id = ?1",
                [refund_id],
                raw_refund,
            )
            .optional()
            .map_err(Error::journal("record_refund"))?;
        if let Some(raw) = existing {
            return Ok(RefundRecorded::Existing(into_refund(raw)?));
        }
        let entry = tx
            .query_row(
                &format!("SELECT {COLUMNS} FROM payments WHERE id = ?1"),
                [payment],
                RawEntry::from_row,
            )
            .optional()
            .map_err(Error::journal("record_refund"))?
            .ok_or(Error::UnknownPayment(payment))?
            .into_entry()?;
        if entry.state != JournalState::Succeeded {
            return Ok(RefundRecorded::NotPaid);
        }
        let left = match part {
            None => entry.amount.minor().get() - entry.refund_reserved_minor,
            Some(index) => {
                // A checkout part: only a part that was paid, within its own amount.
                let Some(p) = entry
                    .server_checkout()
                    .and_then(|c| c.parts.into_iter().find(|p| p.index == index))
                    .filter(|p| p.status == scanbind_device_api::types::PaymentStatus::Succeeded)
                else {
                    return Ok(RefundRecorded::NotPaid);
                };
                let reserved: i64 = tx
                    .query_row(
                        "SELECT coalesce(sum(amount_minor), 0) FROM refunds \
                         WHERE payment = ?1 AND part = ?2 AND state != 'failed'",
                        params![payment, index],
                        |r| r.get(0),
                    )
                    .map_err(Error::journal("record_refund"))?;
                p.amount_minor - reserved
            }
        };
        if amount_minor > left {
            return Ok(RefundRecorded::TooMuch(left));
        }
        let now = unix_now();
        tx.execute(
            "INSERT INTO refunds (payment, refund_id, amount_minor, reason, state, created_at, \
             updated_at, part) VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5, ?6)",
            params![payment, refund_id, amount_minor, reason, now, part],
        )
        .map_err(Error::journal("record_refund"))?;
        tx.commit().map_err(Error::journal("record_refund"))?;
        Ok(RefundRecorded::New(RefundEntry {
            payment,
            refund_id: refund_id.to_owned(),
            amount_minor,
            state: RefundState::Pending,
            part,
            reason: reason.to_owned(),
        }))
    }

    /// Settles a pending refund; a settled one does not change (returns it as is).
    pub(crate) fn settle_refund(
        &mut self,
        refund_id: &str,
        state: RefundState,
    ) -> Result<Option<RefundEntry>> {
        self.conn
            .execute(
                "UPDATE refunds SET state = ?2, updated_at = ?3 \
                 WHERE refund_id = ?1 AND state = 'pending'",
                params![refund_id, state.as_str(), unix_now()],
            )
            .map_err(Error::journal("settle_refund"))?;
        self.conn
            .query_row(
                "SELECT payment, refund_id, amount_minor, state, part, reason FROM refunds \
                 WHERE refund_id = ?1",
                [refund_id],
                raw_refund,
            )
            .optional()
            .map_err(Error::journal("settle_refund"))?
            .map(into_refund)
            .transpose()
    }

    /// The refunds still pending, oldest first (reconciled at start).
    pub(crate) fn pending_refunds(&self) -> Result<Vec<RefundEntry>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT payment, refund_id, amount_minor, state, part, reason FROM refunds \
                 WHERE state = 'pending' ORDER BY id",
            )
            .map_err(Error::journal("pending_refunds"))?;
        let rows = stmt
            .query_map([], raw_refund)
            .map_err(Error::journal("pending_refunds"))?;
        rows.map(|r| {
            r.map_err(Error::journal("pending_refunds"))
                .and_then(into_refund)
        })
        .collect()
    }

    /// Every entry whose outcome the daemon must still learn from the server
    /// (`pending`, `sent`, `pending-unknown`), oldest first. The daemon reconciles
    /// these at start.
    pub(crate) fn open_entries(&self) -> Result<Vec<Entry>> {
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM payments \
                 WHERE state IN ('pending', 'sent', 'pending-unknown') ORDER BY id"
            ),
            params![],
        )
    }

    /// The payments a restarted daemon serves again before it takes its bus name, so a
    /// path an app holds keeps answering across a crash or restart: the open ones,
    /// the unfinished ones (a result the app has not `Finish`ed), and any that became
    /// final since `since` (Unix seconds). Older settled ones are served on demand by
    /// `ListPayments` and `Pay`.
    pub(crate) fn entries_to_serve(&self, since: i64) -> Result<Vec<Entry>> {
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM payments \
                 WHERE state IN ('pending', 'sent', 'pending-unknown') \
                 OR (delivered = 0 AND state NOT IN ('failed', 'cancelled')) \
                 OR updated_at >= ?1 ORDER BY id"
            ),
            params![since],
        )
    }

    /// The payments of one owner (an app run by one user), newest first, at most
    /// `limit`. With `unfinished`, only those the app has not `Finish`ed that are not
    /// failed or cancelled (the ones it must still act on).
    pub(crate) fn list_for_app(
        &self,
        owner: &Owner,
        unfinished: bool,
        limit: u32,
    ) -> Result<Vec<Entry>> {
        let filter = if unfinished {
            "AND delivered = 0 AND state NOT IN ('failed', 'cancelled')"
        } else {
            ""
        };
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM payments WHERE uid = ?3 AND app_id = ?1 {filter} \
                 ORDER BY id DESC LIMIT ?2"
            ),
            params![owner.app_id, limit, owner.uid],
        )
    }

    fn query(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<Entry>> {
        let mut stmt = self
            .conn
            .prepare_cached(sql)
            .map_err(Error::journal("query"))?;
        let rows = stmt
            .query_map(params, RawEntry::from_row)
            .map_err(Error::journal("query"))?;
        rows.map(|r| {
            r.map_err(Error::journal("query"))
                .and_then(RawEntry::into_entry)
        })
        .collect()
    }
}

type RawRefund = (i64, String, i64, String, Option<u32>, String);

fn raw_refund(r: &Row<'_>) -> rusqlite::Result<RawRefund> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn into_refund(
    (payment, refund_id, amount_minor, state, part, reason): RawRefund,
) -> Result<RefundEntry> {
    let state = RefundState::parse(&state).ok_or_else(|| Error::JournalCorrupt {
        id: payment,
        reason: format!("unknown refund state {state:?}"),
    })?;
    Ok(RefundEntry {
        payment,
        refund_id,
        amount_minor,
        state,
        part,
        reason,
    })
}

/// Version 5 → 6 ([`SCHEMA_V6`]): rebuilds `payments` with the owner's uid; existing
/// rows get `uid`. The `AUTOINCREMENT` counter is carried over, so no id is reused.
fn migrate_to_6(tx: &rusqlite::Transaction<'_>, uid: u32) -> rusqlite::Result<()> {
    tx.execute_batch(SCHEMA_V6[0])?;
    tx.execute(
        &format!(
            "INSERT INTO payments_v6 (uid, {V5_COLUMNS}) SELECT ?1, {V5_COLUMNS} FROM payments"
        ),
        [uid],
    )?;
    let seq: Option<i64> = tx
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'payments'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    tx.execute_batch(SCHEMA_V6[1])?;
    if let Some(seq) = seq {
        tx.execute("DELETE FROM sqlite_sequence WHERE name = 'payments'", [])?;
        tx.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES ('payments', ?1)",
            [seq],
        )?;
    }
    Ok(())
}

/// The daemon's own effective uid: the owner of payments recorded before uids were
/// (see [`SCHEMA_V6`]), and the one uid whose payments the merchant server knows under
/// the plain app id ([`Owner::server_app_id`]).
pub(crate) fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// A row as stored, before validation.
struct RawEntry {
    id: i64,
    app_id: String,
    order_id: String,
    idempotency_key: String,
    amount_minor: i64,
    currency: String,
    description: String,
    binding: String,
    state: String,
    delivered: bool,
    receipt: Option<String>,
    error: (Option<String>, Option<String>),
    created_at: i64,
    updated_at: i64,
    server_payment_id: Option<String>,
    line_items: Option<String>,
    refunded_minor: i64,
    refund_reserved_minor: i64,
    product: String,
    order_code: Option<String>,
    order_code_expires_at: Option<i64>,
    checkout: Option<String>,
    checkout_result: Option<String>,
    part_refunds: Option<String>,
    uid: u32,
}

impl RawEntry {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<RawEntry> {
        Ok(RawEntry {
            id: r.get(0)?,
            app_id: r.get(1)?,
            order_id: r.get(2)?,
            idempotency_key: r.get(3)?,
            amount_minor: r.get(4)?,
            currency: r.get(5)?,
            description: r.get(6)?,
            binding: r.get(7)?,
            state: r.get(8)?,
            delivered: r.get(9)?,
            receipt: r.get(10)?,
            error: (r.get(11)?, r.get(12)?),
            created_at: r.get(13)?,
            updated_at: r.get(14)?,
            server_payment_id: r.get(15)?,
            line_items: r.get(16)?,
            refunded_minor: r.get(17)?,
            refund_reserved_minor: r.get(18)?,
            product: r.get(19)?,
            order_code: r.get(20)?,
            order_code_expires_at: r.get(21)?,
            checkout: r.get(22)?,
            checkout_result: r.get(23)?,
            part_refunds: r.get(24)?,
            uid: r.get(25)?,
        })
    }

    fn into_entry(self) -> Result<Entry> {
        let id = self.id;
        let corrupt = |reason: String| Error::JournalCorrupt { id, reason };
        let currency = Currency::from_code(&self.currency).map_err(|e| corrupt(e.to_string()))?;
        let minor = MinorUnits::new(self.amount_minor).map_err(|e| corrupt(e.to_string()))?;
        let state = JournalState::parse(&self.state)
            .ok_or_else(|| corrupt(format!("unknown state {:?}", self.state)))?;
        let error = match self.error {
            (Some(name), Some(message)) => Some(ErrorInfo { name, message }),
            (None, None) => None,
            _ => return Err(corrupt("partial error".into())),
        };
        let part_refunds = match self.part_refunds.as_deref() {
            None => Default::default(),
            Some(text) => serde_json::from_str::<std::collections::BTreeMap<u32, i64>>(text)
                .map_err(|e| corrupt(format!("part refunds: {e}")))?,
        };
        Ok(Entry {
            id,
            uid: self.uid,
            app_id: self.app_id,
            order_id: self.order_id,
            idempotency_key: IdempotencyKey(self.idempotency_key),
            amount: Money::new(currency, minor),
            description: self.description,
            binding: self.binding,
            state,
            delivered: self.delivered,
            receipt: self.receipt,
            error,
            created_at: self.created_at,
            updated_at: self.updated_at,
            server_payment_id: self.server_payment_id,
            line_items: self.line_items,
            refunded_minor: self.refunded_minor,
            refund_reserved_minor: self.refund_reserved_minor,
            is_order_code: self.product == "order_code",
            order_code: self.order_code,
            order_code_expires_at: self.order_code_expires_at,
            checkout: self.checkout,
            checkout_result: self.checkout_result,
            part_refunds,
        })
    }
}

/// [`Journal::default_path`] from the values of `XDG_STATE_HOME` and `HOME`; a
/// relative `XDG_STATE_HOME` is ignored, as the XDG spec says.
fn default_path_from(xdg_state_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let state = xdg_state_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home.map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("scanbind").join("journal.sqlite3"))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(unix)]
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests;
