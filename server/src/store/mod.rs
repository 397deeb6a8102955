//! The store layer: every SQL statement of the server. One sqlx `Any` pool over SQLite
//! or PostgreSQL, the embedded migrations, the row types ([`rows`]) with their statuses
//! and stages typed ([`status`]), and one module of queries per table. The same SQL runs
//! on both (numbered `$n` parameters, `ON CONFLICT`, `RETURNING`); only the migrations
//! differ in dialect. Nothing here knows HTTP, AMS or the domain rules: a function runs
//! its statements and says what happened (`true` when a conditional `UPDATE` matched).
//!
//! Every idempotency rule is a unique key: `payments.payment_request_id` and
//! `(device_id, app_id, app_order_id)`, `refunds.refund_request_id` and
//! `(payment_id, refund_id)`, `bindings.auth_state`, `notifications (kind, dedup_key)`,
//! `seen_nonces (device_id, nonce)`.

use std::borrow::Cow;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{AnyPool, Executor, Row};
use tokio::sync::{Mutex, MutexGuard};

pub mod bindings;
pub mod checkouts;
pub mod declarations;
pub mod devices;
pub mod enrollment_tokens;
pub mod error;
pub mod events;
pub mod notifications;
pub mod operator_keys;
pub mod payments;
pub mod refunds;
pub mod reports;
pub mod rows;
pub mod status;
pub mod steps;
pub mod subscriptions;
pub mod work;

pub use error::{Result, StoreError};
pub use rows::{
    BINDING_COLUMNS, BindingRow, CHECKOUT_COLUMNS, CheckoutRow, DECLARATION_COLUMNS,
    DeclarationRow, DeviceRow, OperatorKeyRow, PAYMENT_COLUMNS, PartRow, PaymentRow,
    REFUND_COLUMNS, RefundRow,
};
pub use status::{
    BindingState, CheckoutState, DeclarationStatus, PaymentStage, PaymentStatus, Product,
    RefundStatus, Reversal, Scope,
};

/// A pool transaction (not a durable one: see [`DurableTx`]).
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// `text` with `\`, `%` and `_` escaped for `LIKE ... ESCAPE '\'`.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

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
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "back office",
        include_str!("../../migrations/sqlite/0002_back_office.sql"),
    ),
    (
        3,
        "checkouts",
        include_str!("../../migrations/sqlite/0003_checkouts.sql"),
    ),
    (
        4,
        "enrollment tokens",
        include_str!("../../migrations/sqlite/0004_enrollment_tokens.sql"),
    ),
    (
        5,
        "payment quotes",
        include_str!("../../migrations/sqlite/0005_payment_quotes.sql"),
    ),
    (
        6,
        "checkout tokens",
        include_str!("../../migrations/sqlite/0006_checkout_tokens.sql"),
    ),
    (
        7,
        "subscriptions",
        include_str!("../../migrations/sqlite/0007_subscriptions.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "back office",
        include_str!("../../migrations/postgres/0002_back_office.sql"),
    ),
    (
        3,
        "checkouts",
        include_str!("../../migrations/postgres/0003_checkouts.sql"),
    ),
    (
        4,
        "enrollment tokens",
        include_str!("../../migrations/postgres/0004_enrollment_tokens.sql"),
    ),
    (
        5,
        "payment quotes",
        include_str!("../../migrations/postgres/0005_payment_quotes.sql"),
    ),
    (
        6,
        "checkout tokens",
        include_str!("../../migrations/postgres/0006_checkout_tokens.sql"),
    ),
    (
        7,
        "subscriptions",
        include_str!("../../migrations/postgres/0007_subscriptions.sql"),
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
    /// SQLite: the pool of [`Db::begin_durable`] and the WAL fsync its commits share.
    group: Option<Arc<GroupCommit>>,
}

/// Group commit on SQLite (decision D24): a hot-path write transaction commits on a
/// `synchronous=NORMAL` connection (into the WAL, no fsync, the writer turn held only
/// for the statements), then waits until an `fdatasync` of the WAL file that began
/// after its commit has finished. One fsync thus covers every commit made while the
/// previous one ran. This is what `synchronous=FULL` gives each commit on its own (the
/// WAL fsync'd up to and including it before the caller goes on), shared.
#[derive(Debug)]
struct GroupCommit {
    pool: AnyPool,
    /// The WAL file (`<database>-wal`).
    wal: std::path::PathBuf,
    /// Commits finished so far (a ticket is taken after the commit returns).
    committed: AtomicU64,
    /// The highest ticket known to be on the disk; its lock is the one fsync in flight.
    synced: Mutex<u64>,
    /// WAL fsyncs made.
    syncs: AtomicU64,
}

impl GroupCommit {
    /// Returns once the commit that just finished on this pool is on the disk.
    async fn sync(&self) -> Result<()> {
        let mine = self.committed.fetch_add(1, Ordering::SeqCst) + 1;
        let mut synced = self.synced.lock().await;
        if *synced >= mine {
            return Ok(());
        }
        // Every ticket up to here belongs to a commit finished before this fsync starts.
        let upto = self.committed.load(Ordering::SeqCst);
        let wal = self.wal.clone();
        let io = |source| StoreError::Sync {
            path: self.wal.clone(),
            source,
        };
        tokio::task::spawn_blocking(move || match std::fs::File::open(&wal) {
            Ok(f) => f.sync_data(),
            // No WAL: SQLite checkpointed it into the database file (and synced that)
            // and removed it, so everything committed is on the disk already.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        })
        .await
        .map_err(|e| io(std::io::Error::other(e)))?
        .map_err(io)?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        *synced = upto;
        Ok(())
    }
}

/// A durable write transaction of the hot path: [`DurableTx::commit`] returns once the
/// commit is on the disk (on SQLite through the group commit, holding the writer turn
/// only until the commit; on PostgreSQL on the durable pool, whose WAL flushes group
/// concurrent commits by themselves). Statements run on it as on a transaction:
/// `query.execute(&mut *tx)`.
pub struct DurableTx<'a> {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    turn: Option<MutexGuard<'a, ()>>,
    group: Option<&'a GroupCommit>,
    backend: Backend,
}

impl std::fmt::Debug for DurableTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableTx")
            .field("group_commit", &self.group.is_some())
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for DurableTx<'_> {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for DurableTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl<'a> DurableTx<'a> {
    /// Commits, gives up the writer turn, and returns once the commit is durable.
    pub async fn commit(self) -> Result<()> {
        let DurableTx {
            tx, turn, group, ..
        } = self;
        tx.commit().await?;
        drop(turn);
        match group {
            Some(g) => g.sync().await,
            None => Ok(()),
        }
    }

    /// Rolls back and gives up the writer turn.
    pub async fn rollback(self) -> Result<()> {
        let DurableTx { tx, turn, .. } = self;
        tx.rollback().await?;
        drop(turn);
        Ok(())
    }

    /// Commits without waiting for the disk (D34): the commit is visible to every
    /// connection at once and kept by a crash of the server process (SQLite: in the WAL,
    /// in the page cache; PostgreSQL: `synchronous_commit = off` for this transaction, in
    /// its WAL), but an OS crash or power loss, or on PostgreSQL a crash of the database
    /// itself, may still lose it until [`Unsynced::durable`] has returned. The caller
    /// runs that wait side by side with other work (the AMS call it records).
    ///
    /// `then`: a step of the history that follows this commit (`(subject, step,
    /// outcome, at)`). On SQLite it is written in this transaction and the WAL fsync of
    /// the group commit makes both durable; on PostgreSQL it is written by the
    /// synchronous commit that makes this one durable (PostgreSQL flushes its WAL in
    /// order up to that commit, and so up to this one; a commit that wrote nothing
    /// would not flush).
    pub async fn commit_unsynced<'s>(
        mut self,
        then: (&'s str, &'s str, &'s str, i64),
    ) -> Result<Unsynced<'a>> {
        let (subject, step, outcome, at) = then;
        let pg = self.backend == Backend::Postgres;
        if pg {
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut *self.tx)
                .await?;
        } else {
            steps::insert(&mut self.tx, subject, step, outcome, at).await?;
        }
        let DurableTx {
            tx, turn, group, ..
        } = self;
        tx.commit().await?;
        drop(turn);
        Ok(match (group, pg) {
            (Some(g), _) => Unsynced(Pending::Group(g)),
            (None, true) => Unsynced(Pending::Flush {
                step: (subject.to_owned(), step.to_owned(), outcome.to_owned(), at),
            }),
            // SQLite without a group commit (in memory): committed `synchronous=FULL`.
            (None, false) => Unsynced(Pending::Done),
        })
    }
}

/// A commit made by [`DurableTx::commit_unsynced`], visible but maybe not yet on the
/// disk.
#[must_use = "the commit is not known to be durable until `durable` returns"]
#[derive(Debug)]
pub struct Unsynced<'a>(Pending<'a>);

#[derive(Debug)]
enum Pending<'a> {
    /// SQLite: the group commit's WAL fsync.
    Group(&'a GroupCommit),
    /// PostgreSQL: the step to commit synchronously after it.
    Flush { step: (String, String, String, i64) },
    /// Already durable.
    Done,
}

impl Unsynced<'_> {
    /// Returns once the commit (and the step given with it) is on the disk. An error
    /// means it is not known to be: whoever acts on the commit must not tell anyone it
    /// is durable.
    pub async fn durable(self, db: &Db) -> Result<()> {
        match self.0 {
            Pending::Group(g) => g.sync().await,
            Pending::Flush {
                step: (subject, step, outcome, at),
            } => {
                let mut tx = db.begin_durable().await?;
                steps::insert(&mut tx, &subject, &step, &outcome, at).await?;
                tx.commit().await
            }
            Pending::Done => Ok(()),
        }
    }
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
            return Err(StoreError::Url);
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
        let group = match backend {
            Backend::Sqlite => Self::group_commit(url, &pool).await?.map(Arc::new),
            Backend::Postgres => None,
        };
        let db = Db {
            pool,
            relaxed,
            backend,
            url: url.to_owned(),
            writer: Arc::new(Mutex::new(())),
            group,
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

    /// The group commit of a SQLite database in a file: its own `synchronous=NORMAL`
    /// pool (one connection: the writer turn lets one writer in at a time anyway) and
    /// the WAL's path. `None` for an in-memory database (nothing to sync).
    async fn group_commit(url: &str, pool: &AnyPool) -> Result<Option<GroupCommit>> {
        let file: String = sqlx::query("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(pool)
            .await?
            .try_get("file")?;
        if file.is_empty() {
            return Ok(None);
        }
        Ok(Some(GroupCommit {
            pool: Self::open(url, Backend::Sqlite, 1, false).await?,
            wal: std::path::PathBuf::from(format!("{file}-wal")),
            committed: AtomicU64::new(0),
            synced: Mutex::new(0),
            syncs: AtomicU64::new(0),
        }))
    }

    /// Begins a durable write transaction of the hot path (a payment's record, its
    /// final state): see [`DurableTx`]. Takes the writer turn on SQLite first.
    pub async fn begin_durable(&self) -> Result<DurableTx<'_>> {
        let turn = self.write_turn().await;
        let group = self.group.as_deref();
        let tx = match group {
            Some(g) => g.pool.begin().await?,
            None => self.pool.begin().await?,
        };
        Ok(DurableTx {
            tx,
            turn,
            group,
            backend: self.backend,
        })
    }

    /// `(commits, WAL fsyncs)` of the group commit so far; `None` without one
    /// (PostgreSQL, in-memory SQLite).
    pub fn group_commit_counts(&self) -> Option<(u64, u64)> {
        self.group.as_ref().map(|g| {
            (
                g.committed.load(Ordering::SeqCst),
                g.syncs.load(Ordering::Relaxed),
            )
        })
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

    /// Closes the pools.
    pub async fn close(&self) {
        if let Some(g) = &self.group {
            g.pool.close().await;
        }
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

    /// Begins a transaction on the pool (durable commit, no writer turn).
    pub async fn begin(&self) -> Result<Tx> {
        Ok(self.pool.begin().await?)
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

/// The one row `sql` selects with its only parameter bound to `key`, decoded by
/// `decode`: the lookups by id of every table.
async fn one_by_key<T>(
    db: &Db,
    sql: &str,
    key: &str,
    decode: fn(&sqlx::any::AnyRow) -> Result<T>,
) -> Result<Option<T>> {
    let row = sqlx::query(sql).bind(key).fetch_optional(db.pool()).await?;
    row.as_ref().map(decode).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
        let db = Db::connect(&url, 4).await.unwrap();
        (dir, db)
    }

    async fn insert_step(db: &Db, subject: String) {
        let mut tx = db.begin_durable().await.unwrap();
        sqlx::query(
            "INSERT INTO steps (subject_id, step, outcome, at) VALUES ($1, 'test', 'ok', 0)",
        )
        .bind(subject)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn durable_commits_are_visible_at_once_and_each_waits_for_a_wal_fsync() {
        let (_dir, db) = sqlite().await;
        insert_step(&db, "a".into()).await;
        insert_step(&db, "b".into()).await;
        // One after the other: each commit waits for its own fsync.
        assert_eq!(db.group_commit_counts(), Some((2, 2)));
        let n: i64 = sqlx::query("SELECT count(*) AS n FROM steps WHERE step = 'test'")
            .fetch_one(db.pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        assert_eq!(n, 2);
        // A rolled back transaction leaves nothing and syncs nothing.
        let mut tx = db.begin_durable().await.unwrap();
        sqlx::query(
            "INSERT INTO steps (subject_id, step, outcome, at) VALUES ('c', 'test', 'ok', 0)",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(db.group_commit_counts(), Some((2, 2)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_made_during_an_fsync_share_the_next_one() {
        let (_dir, db) = sqlite().await;
        let group = db.group.clone().unwrap();
        // Stand in for an fsync in flight: hold its lock while 16 writers commit.
        let in_flight = group.synced.lock().await;
        let writers: Vec<_> = (0..16)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move { insert_step(&db, format!("w{i}")).await })
            })
            .collect();
        // Wait (on the counter the writers bump after their commits) until all committed.
        while group.committed.load(Ordering::SeqCst) < 16 {
            tokio::task::yield_now().await;
        }
        assert!(
            writers.iter().all(|w| !w.is_finished()),
            "no writer returns before its fsync"
        );
        drop(in_flight);
        for w in writers {
            w.await.unwrap();
        }
        // Sixteen commits, one fsync.
        assert_eq!(db.group_commit_counts(), Some((16, 1)));
    }

    #[tokio::test]
    async fn an_in_memory_database_has_no_group_commit() {
        let db = Db::connect("sqlite::memory:", 1).await.unwrap();
        assert_eq!(db.group_commit_counts(), None);
    }

    #[tokio::test]
    async fn an_unknown_status_or_stage_is_a_typed_error() {
        let (_dir, db) = sqlite().await;
        sqlx::query(
            "INSERT INTO devices (device_id, public_key, name, model, registered_at) VALUES ('d', 'k', 'n', 'm', 0)",
        )
        .execute(db.pool())
        .await
        .unwrap();
        let mut tx = db.begin_durable().await.unwrap();
        let inserted = payments::insert_agreement(
            &mut tx,
            &payments::NewPayment {
                payment_id: "p",
                payment_request_id: "sbp_p",
                device_id: "d",
                app_id: "a",
                app_order_id: "o",
                binding_id: None,
                wallet: "ALIPAY_HK",
                currency: "HKD",
                amount: 1,
                description: "x",
                expires_at: 0,
                next_action_at: 0,
                now: 0,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert!(inserted);
        let p = payments::load(&db, "p").await.unwrap().unwrap();
        assert_eq!(p.status, PaymentStatus::Pending);
        assert_eq!(p.stage, PaymentStage::Sending);
        assert_eq!(p.product, Product::Agreement);
        // The stored texts are the historical ones, byte for byte.
        let raw = sqlx::query("SELECT status, stage, product FROM payments WHERE payment_id = 'p'")
            .fetch_one(db.pool())
            .await
            .unwrap();
        let texts: (String, String, String) = (
            raw.try_get("status").unwrap(),
            raw.try_get("stage").unwrap(),
            raw.try_get("product").unwrap(),
        );
        assert_eq!(
            texts,
            ("pending".into(), "sending".into(), "agreement".into())
        );
        sqlx::query("UPDATE payments SET stage = 'teleporting' WHERE payment_id = 'p'")
            .execute(db.pool())
            .await
            .unwrap();
        match payments::load(&db, "p").await {
            Err(StoreError::Unknown { column, value }) => {
                assert_eq!((column, value.as_str()), ("stage", "teleporting"));
            }
            other => panic!("expected an unknown-value error, got {other:?}"),
        }
    }
}
