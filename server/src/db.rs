//! Storage: one sqlx `Any` pool over SQLite or PostgreSQL, the embedded migrations, and
//! the row types. The same SQL runs on both (numbered `$n` parameters, `ON CONFLICT`,
//! `RETURNING`); only the migrations differ in dialect.
//!
//! Every idempotency rule is a unique key: `payments.payment_request_id` and
//! `(device_id, app_id, app_order_id)`, `refunds.refund_request_id` and
//! `(payment_id, refund_id)`, `bindings.auth_state`, `notifications (kind, dedup_key)`,
//! `seen_nonces (device_id, nonce)`.

use std::borrow::Cow;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::sync::Arc;

use sqlx::{AnyPool, Executor, Row};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::Result;

/// Which database engine the pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (WAL).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "back office",
        include_str!("../migrations/sqlite/0002_back_office.sql"),
    ),
    (
        3,
        "checkouts",
        include_str!("../migrations/sqlite/0003_checkouts.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "back office",
        include_str!("../migrations/postgres/0002_back_office.sql"),
    ),
    (
        3,
        "checkouts",
        include_str!("../migrations/postgres/0003_checkouts.sql"),
    ),
];

/// The database.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    relaxed: AnyPool,
    backend: Backend,
    url: String,
    writer: Arc<Mutex<()>>,
}

impl Db {
    /// Connects, configures SQLite (WAL, full sync, busy timeout, foreign keys) and runs
    /// the migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(crate::error::Error::config(
                "database.url",
                "must start with sqlite:// or postgres://",
            ));
        };
        let pool = Self::open(url, backend, max_connections.max(1), true).await?;
        // Opened after the durable pool so that the SQLite file and its WAL mode exist.
        // SQLite writes one at a time anyway; PostgreSQL runs the nonces of many requests
        // in flight side by side.
        let relaxed_max = match backend {
            Backend::Sqlite => 2,
            Backend::Postgres => (max_connections / 2).max(2),
        };
        let relaxed = Self::open(url, backend, relaxed_max, false).await?;
        let db = Db {
            pool,
            relaxed,
            backend,
            url: url.to_owned(),
            writer: Arc::new(Mutex::new(())),
        };
        db.migrate().await?;
        Ok(db)
    }

    /// One pool. `durable`: SQLite `synchronous=FULL` (every commit fsyncs the WAL) and
    /// PostgreSQL's default `synchronous_commit`; otherwise SQLite `synchronous=NORMAL`
    /// and `synchronous_commit = off`: a commit is in the WAL at once and on disk with the
    /// next durable commit (the WAL is one ordered log, so that commit's flush covers it).
    async fn open(url: &str, backend: Backend, max: u32, durable: bool) -> Result<AnyPool> {
        Ok(AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    match (backend, durable) {
                        (Backend::Sqlite, _) => {
                            conn.execute("PRAGMA journal_mode=WAL").await?;
                            conn.execute(if durable {
                                "PRAGMA synchronous=FULL"
                            } else {
                                "PRAGMA synchronous=NORMAL"
                            })
                            .await?;
                            conn.execute("PRAGMA busy_timeout=10000").await?;
                            conn.execute("PRAGMA foreign_keys=ON").await?;
                        }
                        (Backend::Postgres, false) => {
                            conn.execute("SET synchronous_commit = off").await?;
                        }
                        (Backend::Postgres, true) => {}
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?)
    }

    /// The pool for writes that need not be on disk before they are answered: a replay
    /// nonce, the record of a duplicate notification (decision D19 in
    /// `docs/decisions.md`). They become durable with the next durable commit.
    pub fn relaxed(&self) -> &AnyPool {
        &self.relaxed
    }

    /// On SQLite, the process-wide writer turn: SQLite has one writer at a time, and a
    /// writer that finds the file locked sleeps in the busy handler (1, 2, 5, 10 ms ...)
    /// instead of queueing. Taking this first makes the hot-path writers queue in order.
    /// Take it before acquiring a connection, never while holding one (the pool could
    /// otherwise be exhausted by tasks waiting for the turn). `None` on PostgreSQL.
    pub async fn write_turn(&self) -> Option<MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        }
    }

    async fn migrate(&self) -> Result<()> {
        let set = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let migrations: Vec<Migration> = set
            .iter()
            .map(|(v, d, sql)| {
                Migration::new(
                    *v,
                    Cow::Borrowed(*d),
                    MigrationType::Simple,
                    Cow::Borrowed(*sql),
                    false,
                )
            })
            .collect();
        let migrator = Migrator {
            migrations: Cow::Owned(migrations),
            ignore_missing: false,
            locking: true,
            no_tx: false,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// The pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes both pools.
    pub async fn close(&self) {
        self.pool.close().await;
        self.relaxed.close().await;
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL it was opened with (for LISTEN connections).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True when a trivial query answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Records one step of a payment or refund (audit trail).
    pub async fn step(&self, subject: &str, step: &str, outcome: &str, at: i64) -> Result<()> {
        sqlx::query("INSERT INTO steps (subject_id, step, outcome, at) VALUES ($1, $2, $3, $4)")
            .bind(subject)
            .bind(step)
            .bind(outcome)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// A `devices` row.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    /// Device id.
    pub device_id: String,
    /// Public key, base64url.
    pub public_key: String,
    /// Name.
    pub name: String,
    /// Model.
    pub model: String,
    /// Unix ms.
    pub registered_at: i64,
}

impl DeviceRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(DeviceRow {
            device_id: r.try_get("device_id")?,
            public_key: r.try_get("public_key")?,
            name: r.try_get("name")?,
            model: r.try_get("model")?,
            registered_at: r.try_get("registered_at")?,
        })
    }
}

/// A `bindings` row.
#[derive(Debug, Clone)]
pub struct BindingRow {
    /// Binding id.
    pub binding_id: String,
    /// Owner.
    pub device_id: String,
    /// Wallet code.
    pub wallet: String,
    /// The consult `authState`.
    pub auth_state: String,
    /// `pending`, `exchanging`, `active`, ...
    pub status: String,
    /// Match code.
    pub match_code: String,
    /// QR code value.
    pub code_value: String,
    /// QR expiry, Unix ms.
    pub expires_at: i64,
    /// Masked login id.
    pub user_login_id: Option<String>,
    /// Access token expiry (AMS text).
    pub access_token_expires_at: Option<String>,
    /// Refresh token expiry (AMS text).
    pub refresh_token_expires_at: Option<String>,
    /// Sealed blob awaiting pickup by the device.
    pub sealed_pending: Option<String>,
    /// Failure or cancellation reason.
    pub reason: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

/// Columns selected for [`BindingRow`].
pub const BINDING_COLUMNS: &str = "binding_id, device_id, wallet, auth_state, status, match_code, code_value, expires_at, user_login_id, access_token_expires_at, refresh_token_expires_at, sealed_pending, reason, created_at";

impl BindingRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(BindingRow {
            binding_id: r.try_get("binding_id")?,
            device_id: r.try_get("device_id")?,
            wallet: r.try_get("wallet")?,
            auth_state: r.try_get("auth_state")?,
            status: r.try_get("status")?,
            match_code: r.try_get("match_code")?,
            code_value: r.try_get("code_value")?,
            expires_at: r.try_get("expires_at")?,
            user_login_id: r.try_get("user_login_id")?,
            access_token_expires_at: r.try_get("access_token_expires_at")?,
            refresh_token_expires_at: r.try_get("refresh_token_expires_at")?,
            sealed_pending: r.try_get("sealed_pending")?,
            reason: r.try_get("reason")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

/// A `payments` row.
#[derive(Debug, Clone)]
pub struct PaymentRow {
    /// Server payment id.
    pub payment_id: String,
    /// AMS paymentRequestId.
    pub payment_request_id: String,
    /// Device.
    pub device_id: String,
    /// App.
    pub app_id: String,
    /// App order id.
    pub app_order_id: String,
    /// `agreement` or `order_code`.
    pub product: String,
    /// Binding (agreement payments).
    pub binding_id: Option<String>,
    /// Wallet code (`CONNECT_WALLET` for order codes).
    pub wallet: String,
    /// Order code QR value (order-code payments).
    pub code_value: Option<String>,
    /// ISO 4217.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
    /// Description.
    pub description: String,
    /// `pending`, `succeeded`, `failed`, `cancelled`.
    pub status: String,
    /// Engine stage: `sending`, `inquiring`, `cancelling`, `done`.
    pub stage: String,
    /// Result code.
    pub result_code: Option<String>,
    /// Result message.
    pub result_message: Option<String>,
    /// Alipay paymentId.
    pub ams_payment_id: Option<String>,
    /// Refunded so far, minor units.
    pub refunded: i64,
    /// Receipt.
    pub receipt: Option<String>,
    /// paymentExpiryTime, Unix ms.
    pub expires_at: i64,
    /// Next engine action, Unix ms.
    pub next_action_at: i64,
    /// Engine attempts so far.
    pub attempts: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// Columns selected for [`PaymentRow`].
pub const PAYMENT_COLUMNS: &str = "payment_id, payment_request_id, device_id, app_id, app_order_id, product, binding_id, wallet, code_value, currency, amount, description, status, stage, result_code, result_message, ams_payment_id, refunded, receipt, expires_at, next_action_at, attempts, created_at, updated_at";

impl PaymentRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(PaymentRow {
            payment_id: r.try_get("payment_id")?,
            payment_request_id: r.try_get("payment_request_id")?,
            device_id: r.try_get("device_id")?,
            app_id: r.try_get("app_id")?,
            app_order_id: r.try_get("app_order_id")?,
            product: r.try_get("product")?,
            binding_id: r.try_get("binding_id")?,
            wallet: r.try_get("wallet")?,
            code_value: r.try_get("code_value")?,
            currency: r.try_get("currency")?,
            amount: r.try_get("amount")?,
            description: r.try_get("description")?,
            status: r.try_get("status")?,
            stage: r.try_get("stage")?,
            result_code: r.try_get("result_code")?,
            result_message: r.try_get("result_message")?,
            ams_payment_id: r.try_get("ams_payment_id")?,
            refunded: r.try_get("refunded")?,
            receipt: r.try_get("receipt")?,
            expires_at: r.try_get("expires_at")?,
            next_action_at: r.try_get("next_action_at")?,
            attempts: r.try_get("attempts")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

/// A `refunds` row.
#[derive(Debug, Clone)]
pub struct RefundRow {
    /// AMS refundRequestId.
    pub refund_request_id: String,
    /// Server payment id.
    pub payment_id: String,
    /// App refund id.
    pub refund_id: String,
    /// ISO 4217.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
    /// Reason.
    pub reason: Option<String>,
    /// `pending`, `succeeded`, `failed`.
    pub status: String,
    /// Result code.
    pub result_code: Option<String>,
    /// Alipay refundId.
    pub ams_refund_id: Option<String>,
    /// Receipt.
    pub receipt: Option<String>,
    /// Next engine action, Unix ms.
    pub next_action_at: i64,
    /// Engine attempts.
    pub attempts: i64,
    /// Unix ms.
    pub created_at: i64,
}

/// Columns selected for [`RefundRow`].
pub const REFUND_COLUMNS: &str = "refund_request_id, payment_id, refund_id, currency, amount, reason, status, result_code, ams_refund_id, receipt, next_action_at, attempts, created_at";

impl RefundRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(RefundRow {
            refund_request_id: r.try_get("refund_request_id")?,
            payment_id: r.try_get("payment_id")?,
            refund_id: r.try_get("refund_id")?,
            currency: r.try_get("currency")?,
            amount: r.try_get("amount")?,
            reason: r.try_get("reason")?,
            status: r.try_get("status")?,
            result_code: r.try_get("result_code")?,
            ams_refund_id: r.try_get("ams_refund_id")?,
            receipt: r.try_get("receipt")?,
            next_action_at: r.try_get("next_action_at")?,
            attempts: r.try_get("attempts")?,
            created_at: r.try_get("created_at")?,
        })
    }
}
