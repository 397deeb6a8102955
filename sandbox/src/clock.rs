//! The sandbox clock: real time plus an offset that tests move forward.
//!
//! Every time limit in the sandbox (QR life, authCode life, token expiry, order-code
//! expiry, cancel and refund windows, declaration progress) is measured on this clock,
//! so a test can jump 15 minutes or 366 days ahead with `POST /sandbox/v1/clock/advance`
//! instead of sleeping. Notification retry delays are *not* on this clock: they run in
//! real time multiplied by the time scale (see the notifier, `notify.rs`).

use std::sync::Mutex;
use std::time::Duration;

use time::{OffsetDateTime, UtcOffset};

/// UTC+8, the offset AMS uses in its examples and for the cancel window.
pub const UTC8: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// The largest offset the clock accepts (about 100 years), so time arithmetic never
/// overflows whatever a caller asks for.
pub const MAX_OFFSET: Duration = Duration::from_secs(100 * 366 * 24 * 3600);

/// A clock that reads the system time plus an adjustable forward offset.
#[derive(Debug, Default)]
pub struct Clock {
    /// Seconds added to the system time. A std mutex: held only to read or add one number,
    /// never across an `.await`.
    offset: Mutex<Duration>,
}

impl Clock {
    /// A clock with no offset.
    pub fn new() -> Self {
        Clock::default()
    }

    /// A clock that starts with `offset` already added (restored from the state file).
    pub fn with_offset(offset: Duration) -> Self {
        Clock {
            offset: Mutex::new(offset.min(MAX_OFFSET)),
        }
    }

    /// The current sandbox time.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.offset()
    }

    /// The offset currently added to the system time.
    pub fn offset(&self) -> Duration {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the clock forward by `by` (up to [`MAX_OFFSET`] in total) and returns the new
    /// time. The clock never goes back.
    pub fn advance(&self, by: Duration) -> OffsetDateTime {
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *offset = offset.saturating_add(by).min(MAX_OFFSET);
        OffsetDateTime::now_utc() + *offset
    }
}

/// Formats a time the way AMS writes datetimes: ISO 8601 with the UTC+8 offset and whole
/// seconds, e.g. `2024-01-01T12:00:00+08:00`.
pub fn ams_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(UTC8);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+08:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses an ISO 8601 / RFC 3339 datetime such as `2024-01-01T12:10:00+08:00`.
pub fn parse_ams_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_forward_only() {
        let clock = Clock::new();
        let before = clock.now();
        let after = clock.advance(Duration::from_secs(3600));
        assert!(after - before >= time::Duration::seconds(3600));
        assert_eq!(clock.offset(), Duration::from_secs(3600));
        clock.advance(Duration::MAX);
        assert_eq!(clock.offset(), MAX_OFFSET);
        let _ = clock.now();
    }

    #[test]
    fn formats_in_utc8() {
        let t = OffsetDateTime::from_unix_timestamp(1_704_067_200).unwrap(); // 2024-01-01T00:00:00Z
        assert_eq!(ams_time(t), "2024-01-01T08:00:00+08:00");
        assert_eq!(parse_ams_time("2024-01-01T08:00:00+08:00"), Some(t));
        assert_eq!(parse_ams_time("yesterday"), None);
    }
}
