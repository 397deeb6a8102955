//! Identifiers: unguessable random codes and tokens, and Alipay-shaped sequential ids.

use ring::rand::{SecureRandom as _, SystemRandom};
use time::OffsetDateTime;

use crate::clock::UTC8;

/// `n` random bytes as lowercase hex (for QR codes, authCodes, tokens).
///
/// Panics never: if the system RNG fails, the bytes come from the current time mixed with
/// a counter, which is still unique though guessable (a sandbox, not a vault).
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    if SystemRandom::new().fill(&mut buf).is_err() {
        let seed = OffsetDateTime::now_utc().unix_timestamp_nanos();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8 ^ i as u8;
        }
    }
    let mut out = String::with_capacity(n * 2);
    for b in buf {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// An Alipay-shaped 32-digit id: `yyyyMMddHHmmss` (UTC+8), a 2-digit kind and a 16-digit
/// sequence number, e.g. `20240101120000` `11` `0000000000000042`.
pub fn sequential_id(now: OffsetDateTime, kind: u8, seq: u64) -> String {
    let t = now.to_offset(UTC8);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}{:02}{:016}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        kind % 100,
        seq
    )
}

/// Masks a login id the way AMS does (`63****1234`): keeps the first two and last four
/// characters.
pub fn mask_login_id(login: &str) -> String {
    let chars: Vec<char> = login.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len().max(4));
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(random_hex(16).len(), 32);
        assert_ne!(random_hex(16), random_hex(16));
        let t = OffsetDateTime::from_unix_timestamp(1_704_067_200).unwrap();
        assert_eq!(sequential_id(t, 11, 42), "20240101080000110000000000000042");
        assert_eq!(mask_login_id("639171234567"), "63****4567");
        assert_eq!(mask_login_id("bob"), "****");
    }
}
