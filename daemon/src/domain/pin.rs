//! The parent PIN of kid profiles: 4 to 12 digits, kept only as a salted
//! PBKDF2-HMAC-SHA256 hash in the OS keyring (never in a file or the journal), with a
//! limit on wrong guesses that survives restarts (counted in the journal).

use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use ring::rand::SecureRandom as _;
use zeroize::Zeroizing;

use super::error::Refusal;
use super::shared::Shared;
use crate::store::vault::SecretKind;

/// Wrong PINs in a row before approvals are locked.
pub(crate) const PIN_ATTEMPTS: u32 = 5;

/// How long approvals stay locked after [`PIN_ATTEMPTS`] wrong PINs.
pub(crate) const PIN_LOCKOUT_SECS: i64 = 300;

/// PBKDF2 iterations (OWASP's 2023 figure for HMAC-SHA256 is 600,000; a PIN is
/// guarded mostly by the attempt limit, and this runs on TV hardware).
const ITERATIONS: u32 = 100_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
const SCHEME: &str = "pbkdf2-sha256";

/// Journal meta keys.
const FAILURES: &str = "pin_failures";
const LOCKED_UNTIL: &str = "pin_locked_until";

/// A PIN must be 4 to 12 ASCII digits.
pub(crate) fn validate(pin: &str) -> Result<(), Refusal> {
    if (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Refusal::InvalidArgument("a PIN is 4 to 12 digits".into()))
    }
}

/// `pbkdf2-sha256$<iterations>$<salt>$<hash>` (base64 without padding).
fn hash(pin: &str) -> Result<String, Refusal> {
    let mut salt = [0u8; SALT_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| Refusal::Internal("no randomness for the PIN salt".into()))?;
    let mut out = [0u8; HASH_LEN];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN),
        &salt,
        pin.as_bytes(),
        &mut out,
    );
    Ok(format!(
        "{SCHEME}${ITERATIONS}${}${}",
        B64.encode(salt),
        B64.encode(out)
    ))
}

/// Whether `pin` matches a stored hash (constant time).
fn verify(stored: &str, pin: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(SCHEME), Some(iter), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(iter), Ok(salt), Ok(hash)) = (iter.parse::<u32>(), B64.decode(salt), B64.decode(hash))
    else {
        return false;
    };
    let Some(iter) = NonZeroU32::new(iter) else {
        return false;
    };
    ring::pbkdf2::verify(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iter,
        &salt,
        pin.as_bytes(),
        &hash,
    )
    .is_ok()
}

/// The stored hash, if a PIN is set.
pub(crate) async fn stored(shared: &Shared) -> Result<Option<Zeroizing<String>>, Refusal> {
    Ok(shared
        .vault
        .read(&SecretKind::ParentPin)
        .await?
        .map(|s| Zeroizing::new(String::from_utf8_lossy(s.expose()).into_owned())))
}

/// Sets (`Some`) or removes (`None`) the PIN.
pub(crate) async fn set(shared: &Shared, pin: Option<&str>) -> Result<(), Refusal> {
    match pin {
        Some(pin) => {
            let h = Zeroizing::new(hash(pin)?);
            shared
                .vault
                .store(&SecretKind::ParentPin, h.as_bytes())
                .await?;
            tracing::info!("parent PIN set");
        }
        None => {
            shared.vault.delete(&SecretKind::ParentPin).await?;
            tracing::info!("parent PIN removed");
        }
    }
    Ok(())
}

/// The result of a PIN check that did not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Wrong; this many attempts are left.
    Wrong(u32),
    /// Locked for this many more seconds.
    Locked(i64),
}

impl Refused {
    /// The error for the app (and `SetParentPin`).
    pub(crate) fn to_refusal(self) -> Refusal {
        match self {
            Refused::Wrong(left) => Refusal::Denied(format!(
                "wrong PIN ({left} attempts left); nothing was charged"
            )),
            Refused::Locked(secs) => Refusal::Denied(format!(
                "too many wrong PINs: approvals are locked for {secs} more seconds; nothing was \
                 charged"
            )),
        }
    }
}

/// Attempts left before the lock, or the lock.
pub(crate) async fn status(shared: &Shared) -> Result<Result<u32, Refused>, Refusal> {
    let now = crate::link::unix_now();
    Ok(shared
        .journal(move |j| {
            let until = j.meta(LOCKED_UNTIL)?.unwrap_or(0);
            if now < until {
                return Ok(Err(Refused::Locked(until - now)));
            }
            let failures = j.meta(FAILURES)?.unwrap_or(0);
            let used = u32::try_from(failures).unwrap_or(PIN_ATTEMPTS);
            Ok(Ok(PIN_ATTEMPTS.saturating_sub(used)))
        })
        .await?)
}

/// Checks `pin` against `stored`, counting failures in the journal (the count and the
/// lock survive restarts). `Ok` resets the count.
pub(crate) async fn check_counted(
    shared: &Shared,
    stored: &str,
    pin: &str,
) -> Result<Result<(), Refused>, Refusal> {
    if let Err(locked) = status(shared).await? {
        return Ok(Err(locked));
    }
    // PBKDF2 is CPU work: off the async workers.
    let (stored, candidate) = (
        Zeroizing::new(stored.to_owned()),
        Zeroizing::new(pin.to_owned()),
    );
    let ok = tokio::task::spawn_blocking(move || verify(&stored, &candidate))
        .await
        .unwrap_or(false);
    let now = crate::link::unix_now();
    Ok(shared
        .journal(move |j| {
            if ok {
                j.set_meta(FAILURES, 0)?;
                return Ok(Ok(()));
            }
            let failures = j.meta(FAILURES)?.unwrap_or(0) + 1;
            if failures >= i64::from(PIN_ATTEMPTS) {
                j.set_meta(FAILURES, 0)?;
                j.set_meta(LOCKED_UNTIL, now + PIN_LOCKOUT_SECS)?;
                tracing::warn!("too many wrong parent PINs: approvals locked");
                return Ok(Err(Refused::Locked(PIN_LOCKOUT_SECS)));
            }
            j.set_meta(FAILURES, failures)?;
            let left = u32::try_from(i64::from(PIN_ATTEMPTS) - failures).unwrap_or(0);
            Ok(Err(Refused::Wrong(left)))
        })
        .await?)
}

/// [`check_counted`] as an error (for `SetParentPin`).
pub(crate) async fn check(shared: &Shared, stored: &str, pin: &str) -> Result<(), Refusal> {
    check_counted(shared, stored, pin)
        .await?
        .map_err(Refused::to_refusal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_and_verify() {
        let a = hash("1234").unwrap();
        let b = hash("1234").unwrap();
        assert_ne!(a, b, "a fresh salt each time");
        assert!(a.starts_with("pbkdf2-sha256$100000$"));
        assert!(!a.contains("1234$"));
        assert!(verify(&a, "1234") && verify(&b, "1234"));
        assert!(!verify(&a, "1235") && !verify(&a, ""));
        assert!(!verify("garbage", "1234"));
        assert!(!verify("pbkdf2-sha256$0$AA$AA", "1234"));
    }

    #[test]
    fn pins_are_four_to_twelve_digits() {
        for ok in ["0000", "123456789012"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in ["", "123", "1234567890123", "12a4", "１２３４", "12 34"] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }
}
