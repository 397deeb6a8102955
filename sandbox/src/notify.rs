//! The notification engine: notifyAuthorization, notifyPayment and notifyRefund, signed
//! with the sandbox key and retried until the merchant acknowledges.
//!
//! - Signature: `POST <merchant's notify path>\n<client-id>.<request-time>.<body>` with the
//!   sandbox's private key (ams-api.md §2.3); a new `request-time` per attempt.
//! - Retries: attempts at 0 s, 2 min, 10 min, 10 min, 1 h, 2 h, 6 h and 15 h after the
//!   previous one (ams-api.md §6.4), each multiplied by the time scale.
//! - Only HTTP 200 with a JSON body whose `result` is `SUCCESS` / `S` stops the retries.
//! - Faults (drop, duplicate, delay, reorder) come from [`crate::faults`].
//! - Every attempt is recorded in a delivery log served at `GET /sandbox/v1/notifications`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use scanbind_ams::PrivateKey;
use serde::Serialize;
use tokio::sync::watch;

use crate::clock::{Clock, ams_time};
use crate::error::{Error, Result};
use crate::faults::{Faults, NotifyFault};
use crate::state::Outgoing;

/// The real retry schedule in seconds: the wait before each attempt.
pub const SCHEDULE_SECS: [u64; 8] = [0, 120, 600, 600, 3600, 7200, 21600, 54000];

/// Per-attempt HTTP timeout (not scaled).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// One delivery attempt.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    /// 1-based.
    pub attempt: u32,
    /// The `request-time` sent.
    pub request_time: String,
    /// The HTTP status, when an answer came.
    pub http_status: Option<u16>,
    /// Transport error kind, when no answer came.
    pub error: Option<String>,
    /// Whether this answer was the exact SUCCESS acknowledgement.
    pub acknowledged: bool,
}

/// One notification and what happened to it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    /// Sequence number in the log.
    pub id: u64,
    /// `notifyAuthorization`, `notifyPayment` or `notifyRefund`.
    pub kind: &'static str,
    /// Merchant client id.
    pub client_id: String,
    /// The merchant's URL.
    pub url: String,
    /// The body sent (the same on every attempt).
    pub body: serde_json::Value,
    /// `pending`, `acknowledged`, `gave_up`, `dropped` or `stopped` (sandbox shut down).
    pub status: &'static str,
    /// The fault applied, if any.
    pub fault: Option<NotifyFault>,
    /// Attempts so far.
    pub attempts: Vec<AttemptRecord>,
}

/// Sends notifications. Shared by the API handlers through `Arc`.
#[derive(Debug)]
pub struct Notifier {
    client: reqwest::Client,
    key: Arc<PrivateKey>,
    clock: Arc<Clock>,
    time_scale: f64,
    faults: Arc<Faults>,
    /// The delivery log. A std mutex: each access appends or reads, never across an `.await`.
    log: Mutex<Vec<DeliveryRecord>>,
    /// A notification held back by a `reorder` fault, sent after the next one.
    held: Mutex<Option<(Outgoing, u64)>>,
    shutdown: watch::Receiver<bool>,
}

/// Builds the HTTP client: plain HTTP needs no TLS, HTTPS uses rustls with ring and the
/// platform's trust store.
pub fn http_client() -> Result<reqwest::Client> {
    scanbind_ams::client::http_client_builder(Vec::new())
        .map_err(|e| Error::HttpClient(e.to_string()))?
        .redirect(reqwest::redirect::Policy::none())
        .timeout(ATTEMPT_TIMEOUT)
        .build()
        .map_err(|e| Error::HttpClient(e.to_string()))
}

impl Notifier {
    /// A notifier signing with `key`.
    pub fn new(
        key: Arc<PrivateKey>,
        clock: Arc<Clock>,
        time_scale: f64,
        faults: Arc<Faults>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self> {
        Ok(Notifier {
            client: http_client()?,
            key,
            clock,
            time_scale: if time_scale.is_finite() && time_scale >= 0.0 {
                time_scale
            } else {
                1.0
            },
            faults,
            log: Mutex::new(Vec::new()),
            held: Mutex::new(None),
            shutdown,
        })
    }

    /// The delivery log.
    pub fn log(&self) -> Vec<DeliveryRecord> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Starts delivering `outgoing` (in order), applying armed notification faults.
    pub fn dispatch(self: &Arc<Self>, outgoing: Vec<Outgoing>) {
        for out in outgoing {
            let fault = self.faults.take_notification();
            let id = self.record(&out, fault);
            match fault {
                Some(NotifyFault::Drop) => self.set_status(id, "dropped"),
                Some(NotifyFault::Reorder) => {
                    let previous = self
                        .held
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .replace((out, id));
                    if let Some((prev, prev_id)) = previous {
                        self.spawn(prev, prev_id, Duration::ZERO, None);
                    }
                }
                Some(NotifyFault::Duplicate) => {
                    let copy_id = self.record(&out, fault);
                    self.spawn(out.clone(), id, Duration::ZERO, self.take_held());
                    self.spawn(out, copy_id, Duration::ZERO, None);
                }
                Some(NotifyFault::Delay { ms }) => {
                    self.spawn(out, id, Duration::from_millis(ms), self.take_held())
                }
                None => self.spawn(out, id, Duration::ZERO, self.take_held()),
            }
        }
    }

    fn take_held(&self) -> Option<(Outgoing, u64)> {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn record(&self, out: &Outgoing, fault: Option<NotifyFault>) -> u64 {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let id = log.len() as u64 + 1;
        log.push(DeliveryRecord {
            id,
            kind: out.kind,
            client_id: out.client_id.clone(),
            url: out.url.clone(),
            body: serde_json::from_str(&out.body).unwrap_or(serde_json::Value::Null),
            status: "pending",
            fault,
            attempts: Vec::new(),
        });
        id
    }

    fn set_status(&self, id: u64, status: &'static str) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rec) = log.iter_mut().find(|r| r.id == id) {
            rec.status = status;
        }
    }

    fn push_attempt(&self, id: u64, attempt: AttemptRecord) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rec) = log.iter_mut().find(|r| r.id == id) {
            rec.attempts.push(attempt);
        }
    }

    /// The wait before attempt `index` (0-based), scaled.
    pub fn wait_before(&self, index: usize) -> Duration {
        let secs = SCHEDULE_SECS.get(index).copied().unwrap_or(0) as f64 * self.time_scale;
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::ZERO)
    }

    /// Delivers `out` in a task; `then` is started after this one's first attempt
    /// (reorder).
    fn spawn(
        self: &Arc<Self>,
        out: Outgoing,
        id: u64,
        delay: Duration,
        then: Option<(Outgoing, u64)>,
    ) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut shutdown = me.shutdown.clone();
            let mut then = then;
            if !delay.is_zero() && !me.sleep(delay, &mut shutdown).await {
                me.set_status(id, "stopped");
                return;
            }
            for index in 0..SCHEDULE_SECS.len() {
                let wait = me.wait_before(index);
                if !wait.is_zero() && !me.sleep(wait, &mut shutdown).await {
                    me.set_status(id, "stopped");
                    return;
                }
                let acked = me.attempt(&out, id, index as u32 + 1).await;
                if let Some((next, next_id)) = then.take() {
                    me.spawn(next, next_id, Duration::ZERO, None);
                }
                if acked {
                    me.set_status(id, "acknowledged");
                    return;
                }
            }
            me.set_status(id, "gave_up");
        });
    }

    /// Sleeps `d` unless the sandbox stops first; returns false on shutdown.
    async fn sleep(&self, d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            _ = shutdown.wait_for(|stopped| *stopped) => false,
        }
    }

    /// One signed POST; returns whether it was acknowledged.
    async fn attempt(&self, out: &Outgoing, id: u64, attempt: u32) -> bool {
        let request_time = ams_time(self.clock.now());
        let mut record = AttemptRecord {
            attempt,
            request_time: request_time.clone(),
            http_status: None,
            error: None,
            acknowledged: false,
        };
        let path = match reqwest::Url::parse(&out.url) {
            Ok(url) => match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_owned(),
            },
            Err(_) => {
                record.error = Some("invalid notify URL".into());
                self.push_attempt(id, record);
                return false;
            }
        };
        let signature = match scanbind_ams::signature::sign(
            &self.key,
            1,
            "POST",
            &path,
            &out.client_id,
            &request_time,
            out.body.as_bytes(),
        ) {
            Ok(s) => s,
            Err(err) => {
                record.error = Some(err.to_string());
                self.push_attempt(id, record);
                return false;
            }
        };
        let sent = self
            .client
            .post(&out.url)
            .header("content-type", "application/json; charset=UTF-8")
            .header("client-id", &out.client_id)
            .header("request-time", &request_time)
            .header("signature", signature)
            .body(out.body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                record.http_status = Some(status);
                let body = resp.bytes().await.unwrap_or_default();
                record.acknowledged = status == 200 && is_success_ack(&body);
            }
            Err(err) => {
                record.error = Some(if err.is_timeout() {
                    "timeout".into()
                } else if err.is_connect() {
                    "connect".into()
                } else {
                    "io".into()
                });
            }
        }
        tracing::debug!(
            kind = out.kind,
            attempt,
            status = ?record.http_status,
            acknowledged = record.acknowledged,
            "notification attempt"
        );
        let acked = record.acknowledged;
        self.push_attempt(id, record);
        acked
    }
}

/// Whether an acknowledgement body is `{"result":{"resultCode":"SUCCESS","resultStatus":"S",...}}`.
pub fn is_success_ack(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let result = &value["result"];
    result["resultCode"] == "SUCCESS" && result["resultStatus"] == "S"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_must_be_exact_success() {
        assert!(is_success_ack(
            br#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#
        ));
        assert!(!is_success_ack(
            br#"{"result":{"resultCode":"SUCCESS","resultStatus":"U"}}"#
        ));
        assert!(!is_success_ack(b"OK"));
        assert!(!is_success_ack(
            br#"{"resultCode":"SUCCESS","resultStatus":"S"}"#
        ));
    }
}
