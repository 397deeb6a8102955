//! Small helpers: clock, ids, time formatting.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The environment variable that names a crash point (feature `test-util` only).
pub const CRASH_AT_ENV: &str = "SCANBIND_CRASH_AT";

/// A crash point for the kill -9 tests (feature `test-util` only): when
/// `SCANBIND_CRASH_AT` names this point, the process sends itself `SIGKILL` here —
/// exactly `kill -9`, without unwinding, flushing or a core dump. The points:
/// `pay-recorded` (the payment row and its `sent` step committed, not yet known to be on
/// the disk, the AMS call not made), `pay-answered-unsynced` (the AMS `pay` answered
/// while the record's fsync was held back, so it never ran), `pay-sent-unrecorded` (the
/// record rolled back instead of committed, as a power loss would lose it, and the AMS
/// `pay` answered), `pay-answered` (the AMS `pay` answered and the record durable,
/// nothing of the answer committed),
/// `pay-settled` (the final state and the device event committed, the device not
/// answered), `checkout-part-sent` (a part of a combined checkout sent and answered,
/// the next part not sent), `checkout-reversing` (an all-or-nothing checkout decided
/// to reverse, no reversal made), `refund-recorded` (a refund's row and its `sent` step
/// committed, the AMS `refund` not made), `refund-answered` (the AMS `refund` answered,
/// nothing of it committed), `checkout-part-sent` for the first part too (sent from
/// the checkout's own record), `subscription-charge-recorded` (a subscription charge's
/// payment, its link and the subscription's charge in flight committed, the AMS `pay`
/// not made).
///
/// Fault points ([`armed`]) name a behaviour instead of a crash: `pay-record-fails` (the
/// payment record's durable wait fails while the AMS `pay` succeeds).
pub fn crash_point(name: &str) {
    #[cfg(feature = "test-util")]
    if std::env::var(CRASH_AT_ENV).is_ok_and(|v| v == name) {
        eprintln!("scanbind-server: crash point {name}");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
    #[cfg(not(feature = "test-util"))]
    let _ = name;
}

/// Whether `SCANBIND_CRASH_AT` names `name` (feature `test-util` only; always false
/// otherwise): for the crash points that need the path before the crash changed (a
/// wait held back, a commit rolled back) and for the fault points.
pub fn armed(name: &str) -> bool {
    #[cfg(feature = "test-util")]
    if std::env::var(CRASH_AT_ENV).is_ok_and(|v| v == name) {
        eprintln!("scanbind-server: armed point {name}");
        return true;
    }
    let _ = name;
    false
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    let now = OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Unix milliseconds as RFC 3339 UTC (`2026-11-21T23:00:00.123Z`).
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Unix milliseconds as the AMS datetime form (`2026-11-21T23:00:00+00:00`, seconds).
pub fn ams_datetime(ms: i64) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+00:00");
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

/// `n` random bytes, base64url.
pub fn random_token(n: usize) -> String {
    let mut buf = vec![0_u8; n];
    // The system RNG does not fail on supported platforms; zeros would still be unique
    // enough to fail loudly on a unique key rather than silently.
    let _ = SystemRandom::new().fill(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A new id with a prefix, e.g. `bnd_…`: 12 random bytes hex.
pub fn new_id(prefix: &str) -> String {
    let mut buf = [0_u8; 12];
    let _ = SystemRandom::new().fill(&mut buf);
    format!("{prefix}_{}", hex(&buf))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A short code people compare by eye: 6 characters without look-alikes (no 0/O, 1/I/L).
pub fn match_code() -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let mut buf = [0_u8; 6];
    let _ = SystemRandom::new().fill(&mut buf);
    buf.iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// The deterministic AMS `paymentRequestId` of (device, app, app order id): `sbp_` and 20
/// bytes of SHA-256 over the three, length-prefixed, in hex. A retried request is
/// therefore always the same request.
pub fn payment_request_id(device_id: &str, app_id: &str, app_order_id: &str) -> String {
    derived_id("sbp", "scanbind-pay-v1", &[device_id, app_id, app_order_id])
}

/// The deterministic AMS `refundRequestId` of (payment, app refund id).
pub fn refund_request_id(payment_id: &str, refund_id: &str) -> String {
    derived_id("sbr", "scanbind-refund-v1", &[payment_id, refund_id])
}

/// The deterministic AMS `paymentRequestId` of part `index` of the combined checkout
/// (device, app, app order id): `sbc_` and 20 bytes of SHA-256, in hex.
pub fn checkout_part_request_id(
    device_id: &str,
    app_id: &str,
    app_order_id: &str,
    index: usize,
) -> String {
    derived_id(
        "sbc",
        "scanbind-checkout-part-v1",
        &[device_id, app_id, app_order_id, &index.to_string()],
    )
}

/// The deterministic AMS `paymentRequestId` of a subscription's charge: period
/// `period_index` (0 = the first charged period), attempt `attempt` (0, then one more
/// per retry after a final failure): `sbs_` and 20 bytes of SHA-256, in hex. A charge
/// retried or resumed after a crash is the same request; a retry in grace, which only
/// follows a final failure, is a new one.
pub fn subscription_request_id(subscription_id: &str, period_index: i64, attempt: i64) -> String {
    derived_id(
        "sbs",
        "scanbind-subscription-charge-v1",
        &[
            subscription_id,
            &period_index.to_string(),
            &attempt.to_string(),
        ],
    )
}

/// A stable digest of the fields of a request (idempotency comparison): SHA-256 over the
/// length-prefixed fields, in hex.
pub fn fingerprint(fields: &[&str]) -> String {
    derived_id("fp", "scanbind-fingerprint-v1", fields)
}

fn derived_id(prefix: &str, domain: &str, parts: &[&str]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(domain.as_bytes());
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p.as_bytes());
    }
    format!("{prefix}_{}", hex(&ctx.finish().as_ref()[..20]))
}

/// A new Ed25519 private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
pub fn ed25519_pkcs8_pem() -> crate::error::Result<String> {
    use base64::engine::general_purpose::STANDARD;
    let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| crate::error::Error::Serve("random source failed".into()))?;
    let b64 = STANDARD.encode(doc.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_unambiguous() {
        let a = payment_request_id("dev_1", "app", "order");
        assert_eq!(a, payment_request_id("dev_1", "app", "order"));
        assert_ne!(a, payment_request_id("dev_1", "appo", "rder"));
        assert_ne!(a, payment_request_id("dev_2", "app", "order"));
        assert!(a.len() <= 64 && a.starts_with("sbp_"));
        assert_ne!(refund_request_id("p", "r"), refund_request_id("pr", ""));
        let s = subscription_request_id("sub_1", 2, 0);
        assert_eq!(s, subscription_request_id("sub_1", 2, 0));
        assert_ne!(s, subscription_request_id("sub_1", 2, 1));
        assert_ne!(s, subscription_request_id("sub_1", 3, 0));
        assert!(s.len() <= 64 && s.starts_with("sbs_"));
    }

    #[test]
    fn time_formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(ams_datetime(1_000), "1970-01-01T00:00:01+00:00");
        assert_eq!(match_code().len(), 6);
    }
}
