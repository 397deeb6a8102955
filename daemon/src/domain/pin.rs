//! The parent PIN of kid profiles: 4 to 12 digits, kept only as a salted
//! PBKDF2-HMAC-SHA256 hash in the OS keyring (never in a file or the journal), with a
//! limit on wrong guesses that survives restarts (counted in the journal).
//!
//! Every check reserves its attempt in the journal transaction that checks the limit,
//! before the (slow) PBKDF2 verification, so a burst of concurrent guesses can never
//! verify more PINs than the attempts left. After [`PIN_ATTEMPTS`] wrong PINs approvals
//! lock for [`PIN_LOCKOUT_SECS`] doubled after every further lockout
//! ([`lockout_secs`], at most [`PIN_LOCKOUT_MAX_SECS`]); only a correct PIN outside a
//! lock clears the counters. A correct PIN while the lock is engaged is refused and
//! does not lift the lock.

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

/// How long approvals stay locked after the first [`PIN_ATTEMPTS`] wrong PINs; each
/// further lockout before a correct PIN doubles it ([`lockout_secs`]).
pub(crate) const PIN_LOCKOUT_SECS: i64 = 300;

/// The longest lock (a day).
pub(crate) const PIN_LOCKOUT_MAX_SECS: i64 = 86_400;

/// PBKDF2 iterations (OWASP's 2023 figure for HMAC-SHA256 is 600,000; a PIN is
/// guarded mostly by the attempt limit, and this runs on TV hardware).
const ITERATIONS: u32 = 100_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
const SCHEME: &str = "pbkdf2-sha256";

/// Journal meta keys.
const FAILURES: &str = "pin_failures";
const LOCKED_UNTIL: &str = "pin_locked_until";
/// Lockouts since the last correct PIN (the exponent of the back-off).
const LOCKOUTS: &str = "pin_lockouts";

/// The length of the `lockouts`-th lock in a row: `PIN_LOCKOUT_SECS * 2^(lockouts-1)`,
/// at most [`PIN_LOCKOUT_MAX_SECS`].
pub(crate) fn lockout_secs(lockouts: i64) -> i64 {
    let doublings = u32::try_from(lockouts.saturating_sub(1).clamp(0, 32)).unwrap_or(32);
    PIN_LOCKOUT_SECS
        .saturating_mul(2_i64.saturating_pow(doublings))
        .min(PIN_LOCKOUT_MAX_SECS)
}

/// PBKDF2 verifications performed by [`check_counted`] (unit tests count them).
#[cfg(test)]
static VERIFIED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

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
            if failures >= i64::from(PIN_ATTEMPTS) {
                // The last attempts are being verified: the lock follows if they are wrong.
                return Ok(Err(Refused::Locked(lockout_secs(
                    j.meta(LOCKOUTS)?.unwrap_or(0) + 1,
                ))));
            }
            let used = u32::try_from(failures).unwrap_or(PIN_ATTEMPTS);
            Ok(Ok(PIN_ATTEMPTS.saturating_sub(used)))
        })
        .await?)
}

/// Checks `pin` against `stored`, counting failures in the journal (the count, the
/// lock and the number of lockouts survive restarts).
///
/// The attempt is reserved (counted as a failure) in the same journal transaction that
/// checks the lock and the limit, before the PBKDF2 work: concurrent checks can never
/// verify more PINs than the attempts left. A correct PIN then clears the counters,
/// unless a lock engaged meanwhile: then it is refused too and the lock stays. A wrong
/// one that used the last attempt engages the lock ([`lockout_secs`]).
pub(crate) async fn check_counted(
    shared: &Shared,
    stored: &str,
    pin: &str,
) -> Result<Result<(), Refused>, Refusal> {
    let now = crate::link::unix_now();
    let reserved = shared
        .journal(move |j| {
            let until = j.meta(LOCKED_UNTIL)?.unwrap_or(0);
            if now < until {
                return Ok(Err(Refused::Locked(until - now)));
            }
            let failures = j.meta(FAILURES)?.unwrap_or(0);
            if failures >= i64::from(PIN_ATTEMPTS) {
                // The last attempts are being verified right now; the lock follows if
                // they are wrong.
                let next = lockout_secs(j.meta(LOCKOUTS)?.unwrap_or(0) + 1);
                return Ok(Err(Refused::Locked(next)));
            }
            j.set_meta(FAILURES, failures + 1)?;
            Ok(Ok(()))
        })
        .await?;
    if let Err(refused) = reserved {
        return Ok(Err(refused));
    }
    // PBKDF2 is CPU work: off the async workers.
    let (stored, candidate) = (
        Zeroizing::new(stored.to_owned()),
        Zeroizing::new(pin.to_owned()),
    );
    #[cfg(test)]
    VERIFIED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let ok = tokio::task::spawn_blocking(move || verify(&stored, &candidate))
        .await
        .unwrap_or(false);
    let now = crate::link::unix_now();
    Ok(shared
        .journal(move |j| {
            let until = j.meta(LOCKED_UNTIL)?.unwrap_or(0);
            if now < until {
                // Locked while this one was verified: refused, right or wrong.
                return Ok(Err(Refused::Locked(until - now)));
            }
            if ok {
                j.set_meta(FAILURES, 0)?;
                j.set_meta(LOCKOUTS, 0)?;
                return Ok(Ok(()));
            }
            // The failure was counted when the attempt was reserved.
            let failures = j.meta(FAILURES)?.unwrap_or(0);
            if failures >= i64::from(PIN_ATTEMPTS) {
                let lockouts = j.meta(LOCKOUTS)?.unwrap_or(0).saturating_add(1);
                let secs = lockout_secs(lockouts);
                j.set_meta(FAILURES, 0)?;
                j.set_meta(LOCKOUTS, lockouts)?;
                j.set_meta(LOCKED_UNTIL, now + secs)?;
                tracing::warn!(
                    lockouts,
                    secs,
                    "too many wrong parent PINs: approvals locked"
                );
                return Ok(Err(Refused::Locked(secs)));
            }
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
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::domain::testing;

    /// Ends the current lock, as if its time had passed.
    async fn expire(shared: &Shared) {
        shared
            .journal(|j| j.set_meta(LOCKED_UNTIL, 0))
            .await
            .unwrap();
    }

    /// A burst of concurrent guesses verifies at most the attempts left; the lock that
    /// follows refuses even the right PIN and survives it; every lockout in a row
    /// doubles the next one; the counters survive a restart (they are in the journal).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_never_verifies_more_than_the_limit() {
        let (dir, shared) =
            testing::daemon(None, testing::Display::answering(None), Arc::default());
        let stored = hash("2468").unwrap();
        VERIFIED.store(0, Ordering::SeqCst);
        let burst: Vec<_> = (0..40)
            .map(|i| {
                let (shared, stored) = (Arc::clone(&shared), stored.clone());
                tokio::spawn(async move {
                    let guess = format!("{:04}", 1000 + i);
                    check_counted(&shared, &stored, &guess).await.unwrap()
                })
            })
            .collect();
        let mut wrong = 0;
        let mut locked = 0;
        for task in burst {
            match task.await.unwrap() {
                Ok(()) => panic!("a wrong PIN passed"),
                Err(Refused::Wrong(_)) => wrong += 1,
                Err(Refused::Locked(_)) => locked += 1,
            }
        }
        let verified = VERIFIED.load(Ordering::SeqCst);
        assert!(
            verified <= PIN_ATTEMPTS,
            "{verified} PINs verified, the limit is {PIN_ATTEMPTS}"
        );
        assert!(verified > 0 && wrong < PIN_ATTEMPTS as usize && locked > 0);
        assert_eq!(wrong + locked, 40);
        // Locked: the right PIN is refused and does not lift the lock.
        assert!(matches!(
            status(&shared).await.unwrap(),
            Err(Refused::Locked(_))
        ));
        let before = VERIFIED.load(Ordering::SeqCst);
        assert!(matches!(
            check_counted(&shared, &stored, "2468").await.unwrap(),
            Err(Refused::Locked(s)) if s > 0 && s <= PIN_LOCKOUT_SECS
        ));
        assert_eq!(
            VERIFIED.load(Ordering::SeqCst),
            before,
            "nothing verified while locked"
        );
        assert!(matches!(
            status(&shared).await.unwrap(),
            Err(Refused::Locked(_))
        ));

        // The second lockout in a row lasts twice as long.
        expire(&shared).await;
        let mut last = None;
        for _ in 0..PIN_ATTEMPTS {
            last = Some(check_counted(&shared, &stored, "0000").await.unwrap());
        }
        assert_eq!(last, Some(Err(Refused::Locked(2 * PIN_LOCKOUT_SECS))));

        // The counters are in the journal: a restarted daemon sees them.
        let reopened =
            crate::store::journal::Journal::open(&dir.path().join("journal.sqlite3")).unwrap();
        assert_eq!(reopened.meta(LOCKOUTS).unwrap(), Some(2));
        assert!(reopened.meta(LOCKED_UNTIL).unwrap().unwrap() > crate::link::unix_now());
        drop(reopened);

        // After the lock, the right PIN passes and clears the counters.
        expire(&shared).await;
        assert_eq!(
            check_counted(&shared, &stored, "2468").await.unwrap(),
            Ok(())
        );
        assert_eq!(status(&shared).await.unwrap(), Ok(PIN_ATTEMPTS));
        let lockouts = shared.journal(|j| j.meta(LOCKOUTS)).await.unwrap();
        assert_eq!(lockouts, Some(0));
    }

    #[test]
    fn lockouts_double_up_to_a_cap() {
        assert_eq!(lockout_secs(1), PIN_LOCKOUT_SECS);
        assert_eq!(lockout_secs(2), 2 * PIN_LOCKOUT_SECS);
        assert_eq!(lockout_secs(3), 4 * PIN_LOCKOUT_SECS);
        assert_eq!(lockout_secs(9), 256 * PIN_LOCKOUT_SECS);
        assert_eq!(lockout_secs(10), PIN_LOCKOUT_MAX_SECS);
        assert_eq!(lockout_secs(i64::MAX), PIN_LOCKOUT_MAX_SECS);
        assert_eq!(lockout_secs(0), PIN_LOCKOUT_SECS);
    }

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
