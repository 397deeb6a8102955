//! Per-device enrollment tokens (decision D30): in `devices.registration = "token"`
//! mode a new device registers with a token the operator issued for it through the
//! operator API. A token is `sbe_<token id>_<secret>`, shown once at issue; the database
//! keeps only a SHA-256 hash of the secret. It is single-use (the first registration
//! presenting it consumes it, in the same transaction that stores the device), it can
//! be revoked, and it may expire. Refusals are `registration_refused` with a message
//! that says why, never the token.

use ring::digest::{SHA256, digest};
use scanbind_device_api::ErrorCode;
use serde::Serialize;

use crate::error::{Error, OperatorCode, Result};
use crate::store::enrollment_tokens::{self, EnrollmentTokenRow, NewDevice};
use crate::store::{self, Db};
use crate::util::{hex, now_ms, rfc3339};

/// The longest label.
pub const MAX_LABEL: usize = 64;

/// Where a token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    /// Not used yet, not revoked, not expired: a device may enroll with it.
    Active,
    /// A device enrolled with it.
    Used,
    /// The operator revoked it before use.
    Revoked,
    /// Its expiry passed before use.
    Expired,
}

impl TokenState {
    /// Every state, for the API description.
    pub const ALL: &'static [TokenState] = &[
        TokenState::Active,
        TokenState::Used,
        TokenState::Revoked,
        TokenState::Expired,
    ];

    /// The wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Used => "used",
            TokenState::Revoked => "revoked",
            TokenState::Expired => "expired",
        }
    }

    fn of(r: &EnrollmentTokenRow, now: i64) -> TokenState {
        if r.used_at.is_some() {
            TokenState::Used
        } else if r.revoked_at.is_some() {
            TokenState::Revoked
        } else if r.expires_at.is_some_and(|e| e <= now) {
            TokenState::Expired
        } else {
            TokenState::Active
        }
    }
}

/// An enrollment token as the operator API shows it (never the secret).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentToken {
    /// Public id (`sbe_<token id>_…`).
    pub token_id: String,
    /// The operator's label (which device it is meant for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Where it stands.
    pub state: TokenState,
    /// The operator key that issued it.
    pub created_by: String,
    /// Issued, RFC 3339.
    pub created_at: String,
    /// Expiry, RFC 3339 (none: never).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Revoked, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// Used, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_at: Option<String>,
    /// The device that enrolled with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_by: Option<String>,
}

fn view(r: EnrollmentTokenRow, now: i64) -> EnrollmentToken {
    EnrollmentToken {
        state: TokenState::of(&r, now),
        token_id: r.token_id,
        label: r.label,
        created_by: r.created_by,
        created_at: rfc3339(r.created_at),
        expires_at: r.expires_at.map(rfc3339),
        revoked_at: r.revoked_at.map(rfc3339),
        used_at: r.used_at.map(rfc3339),
        used_by: r.used_by,
    }
}

fn secret_hash(secret: &str) -> String {
    let mut input = b"scanbind-enrollment-token-v1\n".to_vec();
    input.extend_from_slice(secret.as_bytes());
    hex(digest(&SHA256, &input).as_ref())
}

fn op_err(code: OperatorCode, message: impl Into<String>) -> Error {
    Error::operator(code, message)
}

fn plausible_token_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Issues a token for one device. `expires_at` (Unix ms) may lie in the past: such a
/// token is refused at once (drills and tests). Returns the token and its full text,
/// shown once and never stored.
pub async fn issue(
    db: &Db,
    label: Option<&str>,
    expires_at: Option<i64>,
    issued_by: &str,
) -> Result<(EnrollmentToken, String)> {
    if let Some(l) = label
        && (l.trim().is_empty() || l.chars().count() > MAX_LABEL || l.chars().any(char::is_control))
    {
        return Err(op_err(
            OperatorCode::BadRequest,
            format!("label must be 1 to {MAX_LABEL} printable characters"),
        ));
    }
    let mut id = [0_u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id)
        .map_err(|_| op_err(OperatorCode::Internal, "random source failed"))?;
    let token_id = hex(&id);
    let secret = crate::util::random_token(32);
    let now = now_ms();
    enrollment_tokens::insert(
        db,
        &token_id,
        &secret_hash(&secret),
        label,
        issued_by,
        now,
        expires_at,
    )
    .await?;
    let row = enrollment_tokens::with_secret(db, &token_id)
        .await?
        .ok_or_else(|| op_err(OperatorCode::Internal, "token vanished"))?
        .0;
    Ok((view(row, now), format!("sbe_{token_id}_{secret}")))
}

/// Every token, oldest first (never the secrets).
pub async fn list(db: &Db) -> Result<Vec<EnrollmentToken>> {
    let now = now_ms();
    Ok(enrollment_tokens::list(db)
        .await?
        .into_iter()
        .map(|r| view(r, now))
        .collect())
}

/// Revokes a token (idempotent) and returns it; `not_found` when there is no such
/// token. A device that already enrolled with it stays registered.
pub async fn revoke(db: &Db, token_id: &str) -> Result<EnrollmentToken> {
    let missing = || {
        op_err(
            OperatorCode::NotFound,
            format!("no enrollment token {token_id:?}"),
        )
    };
    if !plausible_token_id(token_id) || !enrollment_tokens::revoke(db, token_id, now_ms()).await? {
        return Err(missing());
    }
    let row = enrollment_tokens::with_secret(db, token_id)
        .await?
        .ok_or_else(missing)?
        .0;
    Ok(view(row, now_ms()))
}

fn refused(message: &str) -> Error {
    Error::api(ErrorCode::RegistrationRefused, message)
}

/// Registers a new device with `token`, consuming the token. Returns whether the
/// device's row is new. Every refusal is `registration_refused`; the message says
/// whether the token is missing, not valid, used by another device, revoked or expired
/// (the last three only to the holder of the token's secret).
pub async fn enroll(db: &Db, token: Option<&str>, device: NewDevice<'_>) -> Result<bool> {
    let Some(token) = token else {
        return Err(refused(
            "a new device must send its own enrollment token from the operator as its provisioning token (scanbindd --provisioning-token-file); none was sent",
        ));
    };
    let invalid = || refused("the enrollment token is not valid");
    let (token_id, secret) = token
        .trim()
        .strip_prefix("sbe_")
        .and_then(|t| t.split_once('_'))
        .ok_or_else(invalid)?;
    if !plausible_token_id(token_id) || secret.is_empty() || secret.len() > 128 {
        return Err(invalid());
    }
    let given = secret_hash(secret);
    let now = now_ms();
    let known = store::devices::load(db, device.device_id).await?.is_some();
    if enrollment_tokens::enroll(db, token_id, &given, device, now).await? {
        return Ok(!known);
    }
    // Refused: say why, but only to someone holding the secret.
    let Some((row, stored)) = enrollment_tokens::with_secret(db, token_id).await? else {
        return Err(invalid());
    };
    let same = stored.len() == given.len()
        && stored
            .bytes()
            .zip(given.bytes())
            .fold(0_u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err(invalid());
    }
    Err(match TokenState::of(&row, now) {
        TokenState::Used => refused(
            "the enrollment token was already used by another device; ask the operator for a new one",
        ),
        TokenState::Revoked => refused("the enrollment token was revoked"),
        TokenState::Expired => refused("the enrollment token has expired"),
        // Taken by a concurrent registration of the same device between the two reads,
        // or changed since: the caller may simply retry.
        TokenState::Active => refused("the enrollment token could not be used; try again"),
    })
}
