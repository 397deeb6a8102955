//! Counters for `/metrics` (Prometheus text format). Plain atomics: increments are
//! lock-free and a scrape reads a consistent-enough snapshot.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Open SSE event streams.
    pub open_streams: AtomicI64,
    /// Notifications accepted, by kind (authorization, payment, refund).
    pub notifications_ok: [AtomicU64; 3],
    /// Notifications refused (bad signature, malformed).
    pub notifications_refused: AtomicU64,
    /// Duplicate notifications.
    pub notifications_duplicate: AtomicU64,
    /// Sum of notification lag (receive time − `request-time`), milliseconds.
    pub notification_lag_ms_sum: AtomicU64,
    /// Device requests refused for authentication.
    pub auth_refused: AtomicU64,
    /// Registrations of new devices refused for their enrollment token (missing, not
    /// valid, used, revoked, expired): a rising count is someone guessing or replaying.
    pub enrollments_refused: AtomicU64,
    /// AMS call latency per endpoint path: (count, sum of ms, errors). A std mutex: held
    /// for a few instructions, never across an await.
    pub ams: Mutex<std::collections::BTreeMap<String, (u64, u64, u64)>>,
}

impl Metrics {
    /// Records one AMS call.
    pub fn ams_call(&self, path: &str, ms: u64, failed: bool) {
        if let Ok(mut map) = self.ams.lock() {
            let e = map.entry(path.to_owned()).or_default();
            e.0 += 1;
            e.1 += ms;
            if failed {
                e.2 += 1;
            }
        }
    }

    /// Renders the text exposition; `payments` are (status, count) from the database.
    pub fn render(&self, payments: &[(String, i64)], refunds: &[(String, i64)]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP scanbind_payments Payments by status.\n# TYPE scanbind_payments gauge"
        );
        for (s, n) in payments {
            let _ = writeln!(out, "scanbind_payments{{status=\"{s}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP scanbind_refunds Refunds by status.\n# TYPE scanbind_refunds gauge"
        );
        for (s, n) in refunds {
            let _ = writeln!(out, "scanbind_refunds{{status=\"{s}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP scanbind_event_streams_open Open device event streams.\n# TYPE scanbind_event_streams_open gauge"
        );
        let _ = writeln!(
            out,
            "scanbind_event_streams_open {}",
            self.open_streams.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP scanbind_notifications_total Notifications received.\n# TYPE scanbind_notifications_total counter"
        );
        for (i, kind) in ["authorization", "payment", "refund"].iter().enumerate() {
            let _ = writeln!(
                out,
                "scanbind_notifications_total{{kind=\"{kind}\",outcome=\"accepted\"}} {}",
                self.notifications_ok[i].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "scanbind_notifications_total{{kind=\"any\",outcome=\"refused\"}} {}",
            self.notifications_refused.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "scanbind_notifications_total{{kind=\"any\",outcome=\"duplicate\"}} {}",
            self.notifications_duplicate.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP scanbind_notification_lag_milliseconds_sum Sum of receive time minus request-time.\n# TYPE scanbind_notification_lag_milliseconds_sum counter"
        );
        let _ = writeln!(
            out,
            "scanbind_notification_lag_milliseconds_sum {}",
            self.notification_lag_ms_sum.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP scanbind_device_auth_refused_total Device requests refused by authentication.\n# TYPE scanbind_device_auth_refused_total counter"
        );
        let _ = writeln!(
            out,
            "scanbind_device_auth_refused_total {}",
            self.auth_refused.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP scanbind_device_enrollments_refused_total New devices refused for their enrollment token.\n# TYPE scanbind_device_enrollments_refused_total counter\nscanbind_device_enrollments_refused_total {}",
            self.enrollments_refused.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP scanbind_ams_call_duration_milliseconds AMS call latency.\n# TYPE scanbind_ams_call_duration_milliseconds summary"
        );
        if let Ok(map) = self.ams.lock() {
            for (path, (count, sum, errors)) in map.iter() {
                let _ = writeln!(
                    out,
                    "scanbind_ams_call_duration_milliseconds_count{{path=\"{path}\"}} {count}"
                );
                let _ = writeln!(
                    out,
                    "scanbind_ams_call_duration_milliseconds_sum{{path=\"{path}\"}} {sum}"
                );
                let _ = writeln!(
                    out,
                    "scanbind_ams_call_errors_total{{path=\"{path}\"}} {errors}"
                );
            }
        }
        out
    }
}
