//! Operator API keys: `sbk_<key id>_<secret>`, made by `scanbind-server admin keys create`
//! and shown once; the database keeps only a SHA-256 hash of the secret. Each key has one
//! scope, and scopes are ordered: `read` < `refund` < `admin`.

use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::{Error, OperatorCode, Result};
use crate::store::Db;
use crate::util::{hex, now_ms, rfc3339};

fn op_err(code: OperatorCode, message: impl Into<String>) -> Error {
    Error::operator(code, message)
}

/// What a key may do. Ordered: a higher scope includes the lower ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Search payments, look at one, inquire declarations.
    Read,
    /// Also refund, cancel and declare to customs.
    Refund,
    /// Also revoke bindings.
    Admin,
}

impl Scope {
    /// The wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Refund => "refund",
            Scope::Admin => "admin",
        }
    }

    /// Parses `read`, `refund` or `admin`.
    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "read" => Some(Scope::Read),
            "refund" => Some(Scope::Refund),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// An operator key as stored (never the secret).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorKey {
    /// Public id (`sbk_<key id>_…`).
    pub key_id: String,
    /// Who or what holds it.
    pub name: String,
    /// Its scope.
    pub scope: Scope,
    /// Created, RFC 3339.
    pub created_at: String,
    /// Last accepted use, RFC 3339.
    pub last_used_at: Option<String>,
    /// Revoked, RFC 3339.
    pub revoked_at: Option<String>,
}

fn secret_hash(secret: &str) -> String {
    let mut input = b"scanbind-operator-key-v1\n".to_vec();
    input.extend_from_slice(secret.as_bytes());
    hex(digest(&SHA256, &input).as_ref())
}

fn key_from_row(r: &sqlx::any::AnyRow) -> Result<OperatorKey> {
    let scope: String = r.try_get("scope")?;
    Ok(OperatorKey {
        key_id: r.try_get("key_id")?,
        name: r.try_get("name")?,
        scope: Scope::parse(&scope).unwrap_or(Scope::Read),
        created_at: rfc3339(r.try_get("created_at")?),
        last_used_at: r.try_get::<Option<i64>, _>("last_used_at")?.map(rfc3339),
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(rfc3339),
    })
}

/// Creates a key. Returns it and the full secret text, which is shown once and never
/// stored.
pub async fn create_key(db: &Db, name: &str, scope: Scope) -> Result<(OperatorKey, String)> {
    if name.trim().is_empty() || name.len() > 64 {
        return Err(op_err(
            OperatorCode::BadRequest,
            "the key name must be 1 to 64 characters",
        ));
    }
    let mut id = [0_u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id)
        .map_err(|_| op_err(OperatorCode::Internal, "random source failed"))?;
    let key_id = hex(&id);
    let secret = crate::util::random_token(32);
    sqlx::query(
        "INSERT INTO operator_keys (key_id, name, scope, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&key_id)
    .bind(name)
    .bind(scope.as_str())
    .bind(secret_hash(&secret))
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    let key = list_keys(db)
        .await?
        .into_iter()
        .find(|k| k.key_id == key_id)
        .ok_or_else(|| op_err(OperatorCode::Internal, "key vanished"))?;
    Ok((key, format!("sbk_{key_id}_{secret}")))
}

/// Every key, oldest first.
pub async fn list_keys(db: &Db) -> Result<Vec<OperatorKey>> {
    let rows = sqlx::query("SELECT key_id, name, scope, created_at, last_used_at, revoked_at FROM operator_keys ORDER BY created_at, key_id")
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(key_from_row).collect()
}

/// Revokes a key (idempotent). False when there is no such key.
pub async fn revoke_key(db: &Db, key_id: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE operator_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE key_id = $1",
    )
    .bind(key_id)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Checks an `Authorization` header value and returns the key.
pub async fn authenticate(db: &Db, header_value: Option<&str>) -> Result<OperatorKey> {
    let refuse = || {
        op_err(
            OperatorCode::Unauthenticated,
            "send Authorization: Bearer <operator key> (scanbind-server admin keys create)",
        )
    };
    let token = header_value
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(refuse)?;
    let (key_id, secret) = token
        .strip_prefix("sbk_")
        .and_then(|t| t.split_once('_'))
        .ok_or_else(refuse)?;
    if key_id.len() != 16 || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refuse());
    }
    let Some(row) = sqlx::query("SELECT key_id, name, scope, secret_hash, created_at, last_used_at, revoked_at FROM operator_keys WHERE key_id = $1")
        .bind(key_id)
        .fetch_optional(db.pool())
        .await?
    else {
        return Err(refuse());
    };
    let stored: String = row.try_get("secret_hash")?;
    let given = secret_hash(secret);
    let same = stored.len() == given.len()
        && stored
            .bytes()
            .zip(given.bytes())
            .fold(0_u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    let key = key_from_row(&row)?;
    if !same || key.revoked_at.is_some() {
        return Err(refuse());
    }
    sqlx::query("UPDATE operator_keys SET last_used_at = $2 WHERE key_id = $1")
        .bind(key_id)
        .bind(now_ms())
        .execute(db.pool())
        .await?;
    Ok(key)
}
