//! `steps`: the history of every payment, refund, checkout, binding and declaration (AMS
//! calls and their answers, final states, operator actions).

use sqlx::Row;

use super::Db;
use super::error::Result;

/// One step.
#[derive(Debug, Clone)]
pub struct StepRow {
    /// Row id (order of writing).
    pub id: i64,
    /// The step (`pay`, `inquiry`, `final`, `operator`, ...).
    pub step: String,
    /// Its outcome.
    pub outcome: String,
    /// Unix ms.
    pub at: i64,
}

/// Records a step inside the caller's transaction.
pub async fn insert(
    conn: &mut sqlx::AnyConnection,
    subject: &str,
    step: &str,
    outcome: &str,
    at: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO steps (subject_id, step, outcome, at) VALUES ($1, $2, $3, $4)")
        .bind(subject)
        .bind(step)
        .bind(outcome)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records a step that is history only on the relaxed pool (D19), taking the writer
/// turn.
pub async fn insert_relaxed(
    db: &Db,
    subject: &str,
    step: &str,
    outcome: &str,
    at: i64,
) -> Result<()> {
    let _turn = db.write_turn().await;
    sqlx::query("INSERT INTO steps (subject_id, step, outcome, at) VALUES ($1, $2, $3, $4)")
        .bind(subject)
        .bind(step)
        .bind(outcome)
        .bind(at)
        .execute(db.relaxed())
        .await?;
    Ok(())
}

/// Records the step `final` (outcome: the final status) inside the caller's
/// transaction.
pub async fn insert_final(
    conn: &mut sqlx::AnyConnection,
    subject: &str,
    status: &str,
    at: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO steps (subject_id, step, outcome, at) VALUES ($1, 'final', $2, $3)")
        .bind(subject)
        .bind(status)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records the step `pay` / `sent` (the AMS `pay` is about to be sent) inside the
/// caller's transaction.
pub async fn insert_pay_sent(conn: &mut sqlx::AnyConnection, subject: &str, at: i64) -> Result<()> {
    sqlx::query("INSERT INTO steps (subject_id, step, outcome, at) VALUES ($1, 'pay', 'sent', $2)")
        .bind(subject)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records the step `checkout` inside the caller's transaction.
pub async fn insert_checkout(
    conn: &mut sqlx::AnyConnection,
    subject: &str,
    outcome: &str,
    at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO steps (subject_id, step, outcome, at) VALUES ($1, 'checkout', $2, $3)",
    )
    .bind(subject)
    .bind(outcome)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The steps of a subject, in order.
pub async fn of_subject(db: &Db, subject: &str) -> Result<Vec<StepRow>> {
    let rows =
        sqlx::query("SELECT id, step, outcome, at FROM steps WHERE subject_id = $1 ORDER BY id")
            .bind(subject)
            .fetch_all(db.pool())
            .await?;
    rows.iter()
        .map(|r| {
            Ok(StepRow {
                id: r.try_get("id")?,
                step: r.try_get("step")?,
                outcome: r.try_get("outcome")?,
                at: r.try_get("at")?,
            })
        })
        .collect()
}

/// When the payment first succeeded (Unix ms), from its history.
pub async fn paid_at(db: &Db, payment_id: &str) -> Result<Option<i64>> {
    let row = sqlx::query(
        "SELECT MIN(at) AS t FROM steps WHERE subject_id = $1 AND step = 'final' AND outcome = 'succeeded'",
    )
    .bind(payment_id)
    .fetch_one(db.pool())
    .await?;
    Ok(row.try_get::<Option<i64>, _>("t")?)
}
