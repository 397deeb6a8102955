//! Operator API keys: `sbk_<key id>_<secret>`, made by `scanbind-server admin keys create`
//! and shown once; the database keeps only a SHA-256 hash of the secret. Each key has one
//! scope, and scopes are ordered: `read` < `refund` < `admin`.

use ring::digest::{SHA256, digest};
use serde::Serialize;

use crate::error::{Error, OperatorCode, Result};
use crate::store::{self, Db, OperatorKeyRow};
use crate::util::{hex, now_ms, rfc3339};

fn op_err(code: OperatorCode, message: impl Into<String>) -> Error {
    Error::operator(code, message)
}

pub use crate::store::Scope;

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

fn key_view(r: OperatorKeyRow) -> OperatorKey {
    OperatorKey {
        key_id: r.key_id,
        name: r.name,
        scope: r.scope,
        created_at: rfc3339(r.created_at),
        last_used_at: r.last_used_at.map(rfc3339),
        revoked_at: r.revoked_at.map(rfc3339),
    }
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
    store::operator_keys::insert(db, &key_id, name, scope, &secret_hash(&secret), now_ms()).await?;
    let key = list_keys(db)
        .await?
        .into_iter()
        .find(|k| k.key_id == key_id)
        .ok_or_else(|| op_err(OperatorCode::Internal, "key vanished"))?;
    Ok((key, format!("sbk_{key_id}_{secret}")))
}

/// Every key, oldest first.
pub async fn list_keys(db: &Db) -> Result<Vec<OperatorKey>> {
    Ok(store::operator_keys::list(db)
        .await?
        .into_iter()
        .map(key_view)
        .collect())
}

/// Revokes a key (idempotent). False when there is no such key.
pub async fn revoke_key(db: &Db, key_id: &str) -> Result<bool> {
    Ok(store::operator_keys::revoke(db, key_id, now_ms()).await?)
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
    let Some((row, stored)) = store::operator_keys::with_secret(db, key_id).await? else {
        return Err(refuse());
    };
    let given = secret_hash(secret);
    let same = stored.len() == given.len()
        && stored
            .bytes()
            .zip(given.bytes())
            .fold(0_u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    let key = key_view(row);
    if !same || key.revoked_at.is_some() {
        return Err(refuse());
    }
    store::operator_keys::touch(db, key_id, now_ms()).await?;
    Ok(key)
}
