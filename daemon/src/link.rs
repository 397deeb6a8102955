//! The device's client of the merchant server (`docs/server.md`, "Device API").
//!
//! Every request is signed with the device key ([`DeviceKey::sign_request`]: time,
//! single-use nonce, Ed25519 over the canonical string). The event stream
//! (`GET /v1/events`, Server-Sent Events) is read by [`EventStream`]; [`run_events`]
//! keeps it open, resumes after the last sequence number it saw and reconnects with a
//! capped, jittered back-off. Nothing here polls: between events the task sleeps on
//! the socket.
//!
//! Sealed token blobs and keys never reach a log: request bodies are not logged, and
//! [`ServerLink`]'s `Debug` shows only the base URL.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scanbind_device_api::DeviceKey;
use scanbind_device_api::signing::new_nonce;
use scanbind_device_api::types::{
    Binding, Checkout, CheckoutRequest, EventEnvelope, OrderCodePayRequest, PayRequest, Payment,
    Refund, RefundRequest, RegisterDeviceRequest, SealedTokensRequest, StartBindingRequest,
    StartBindingResponse, SubscribeRequest, Subscription, SubscriptionList,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::error::{Error, Result};

/// The longest wait between two reconnection attempts of the event stream.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The first wait after the event stream broke.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// How long one request (not the event stream) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A signing client of one merchant server. Cheap to clone.
#[derive(Clone)]
pub(crate) struct ServerLink {
    http: reqwest::Client,
    base: Arc<str>,
    key: Arc<DeviceKey>,
    provisioning_token: Option<Arc<zeroize::Zeroizing<String>>>,
    /// Seconds to add to this device's clock to get the server's, learnt from the
    /// server's `Date` header when it refused a request as `stale_request` (a TV's
    /// clock may be far off; requests are signed with the server's time).
    clock_offset: Arc<std::sync::atomic::AtomicI64>,
}

impl fmt::Debug for ServerLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerLink")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ServerLink {
    /// A client of the server at `base` (e.g. `https://pay.example.com`), signing with
    /// `key`.
    pub(crate) fn new(
        base: &str,
        key: DeviceKey,
        provisioning_token: Option<String>,
    ) -> Result<ServerLink> {
        let http = scanbind_ams::client::http_client_builder(Vec::new())
            .map_err(Error::HttpClient)?
            // A server or network that vanished is found by the kernel's probes on the
            // idle event stream, without waking the daemon (the server sends no
            // keep-alive traffic by default).
            .tcp_keepalive(Duration::from_secs(60))
            .tcp_keepalive_interval(Duration::from_secs(10))
            .tcp_keepalive_retries(6)
            .build()
            .map_err(Error::ServerUnreachable)?;
        Ok(ServerLink {
            http,
            base: base.trim_end_matches('/').into(),
            key: Arc::new(key),
            provisioning_token: provisioning_token.map(|t| Arc::new(zeroize::Zeroizing::new(t))),
            clock_offset: Arc::default(),
        })
    }

    /// The device id the server knows this device by.
    pub(crate) fn device_id(&self) -> String {
        self.key.device_id()
    }

    /// `POST /v1/devices`: registers the device (idempotent: the id derives from the key).
    pub(crate) async fn register(&self, name: &str, model: &str) -> Result<()> {
        let body = RegisterDeviceRequest {
            public_key: self.key.public_key().to_base64(),
            name: name.to_owned(),
            model: model.to_owned(),
            provisioning_token: self.provisioning_token.as_ref().map(|t| t.to_string()),
        };
        let _: serde_json::Value = self.call("POST", "/v1/devices", Some(&body)).await?;
        Ok(())
    }

    /// `POST /v1/bindings`: starts binding `wallet`.
    pub(crate) async fn start_binding(&self, wallet: &str) -> Result<StartBindingResponse> {
        let body = StartBindingRequest {
            wallet: wallet.to_owned(),
        };
        self.call("POST", "/v1/bindings", Some(&body)).await
    }

    /// `GET /v1/bindings`: every binding of this device.
    pub(crate) async fn bindings(&self) -> Result<Vec<Binding>> {
        self.call::<(), _>("GET", "/v1/bindings", None).await
    }

    /// `POST /v1/payments`: pays (idempotent per app id and app order id).
    pub(crate) async fn pay(&self, req: &PayRequest) -> Result<Payment> {
        self.call("POST", "/v1/payments", Some(req)).await
    }

    /// `POST /v1/checkouts`: a combined checkout (idempotent per app id and app order
    /// id; the answer is final unless a part's outcome is still unknown).
    pub(crate) async fn checkout(&self, req: &CheckoutRequest) -> Result<Checkout> {
        self.call("POST", "/v1/checkouts", Some(req)).await
    }

    /// `POST /v1/payments/order-code`: an order QR code for the user to scan
    /// (idempotent per app id and app order id).
    pub(crate) async fn pay_order_code(&self, req: &OrderCodePayRequest) -> Result<Payment> {
        self.call("POST", "/v1/payments/order-code", Some(req))
            .await
    }

    /// `POST /v1/bindings/{id}/revoke`: revokes the binding's tokens with the wallet.
    pub(crate) async fn revoke(&self, binding_id: &str, sealed_tokens: &str) -> Result<Binding> {
        let body = SealedTokensRequest {
            sealed_tokens: sealed_tokens.to_owned(),
        };
        let path = format!("/v1/bindings/{binding_id}/revoke");
        self.call("POST", &path, Some(&body)).await
    }

    /// `POST /v1/bindings/{id}/refresh`: new tokens for the binding (in
    /// `sealedTokens` of the answer).
    pub(crate) async fn refresh(&self, binding_id: &str, sealed_tokens: &str) -> Result<Binding> {
        let body = SealedTokensRequest {
            sealed_tokens: sealed_tokens.to_owned(),
        };
        let path = format!("/v1/bindings/{binding_id}/refresh");
        self.call("POST", &path, Some(&body)).await
    }

    /// `POST /v1/payments/{id}/refunds` (idempotent per refund id).
    pub(crate) async fn refund(&self, payment_id: &str, req: &RefundRequest) -> Result<Refund> {
        let path = format!("/v1/payments/{payment_id}/refunds");
        self.call("POST", &path, Some(req)).await
    }

    /// `POST /v1/subscriptions`: subscribes (idempotent per app id and app
    /// subscription id; other terms: `idempotency_conflict`).
    pub(crate) async fn subscribe(&self, req: &SubscribeRequest) -> Result<Subscription> {
        self.call("POST", "/v1/subscriptions", Some(req)).await
    }

    /// `GET /v1/subscriptions?appId=`: this device's subscriptions of one app.
    pub(crate) async fn subscriptions(&self, app_id: &str) -> Result<Vec<Subscription>> {
        let path = format!("/v1/subscriptions?appId={}", query_value(app_id));
        let list: SubscriptionList = self.call::<(), _>("GET", &path, None).await?;
        Ok(list.subscriptions)
    }

    /// `GET /v1/subscriptions`: every subscription of this device (every app's).
    pub(crate) async fn all_subscriptions(&self) -> Result<Vec<Subscription>> {
        let list: SubscriptionList = self.call::<(), _>("GET", "/v1/subscriptions", None).await?;
        Ok(list.subscriptions)
    }

    /// `POST /v1/subscriptions/{id}/cancel?appId=`: cancels one of `app_id`'s
    /// subscriptions (another app's is `not_found`).
    pub(crate) async fn cancel_subscription(
        &self,
        subscription_id: &str,
        app_id: &str,
    ) -> Result<Subscription> {
        let path = format!(
            "/v1/subscriptions/{}/cancel?appId={}",
            query_value(subscription_id),
            query_value(app_id)
        );
        self.call::<(), _>("POST", &path, None).await
    }

    /// `GET /v1/payments/{id}`.
    #[allow(dead_code)]
    pub(crate) async fn payment(&self, payment_id: &str) -> Result<Payment> {
        let path = format!("/v1/payments/{payment_id}");
        self.call::<(), _>("GET", &path, None).await
    }

    /// `GET /v1/events`, resuming after `after` when given. Returns once the server
    /// answered 200: from then on no event is missed.
    pub(crate) async fn events(&self, after: Option<i64>) -> Result<EventStream> {
        let path = match after {
            Some(seq) => format!("/v1/events?after={seq}"),
            None => "/v1/events".to_owned(),
        };
        let resp = self
            .send_adjusting_clock(|| self.signed("GET", &path, Vec::new()))
            .await?;
        let resume_after = resp
            .headers()
            .get("x-scanbind-resume-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok());
        Ok(EventStream {
            resp,
            buf: Vec::new(),
            resume_after,
        })
    }

    fn signed(&self, method: &str, path: &str, body: Vec<u8>) -> Result<reqwest::RequestBuilder> {
        let nonce = new_nonce().map_err(Error::DeviceKey)?;
        let headers = self.key.sign_request(
            method,
            path,
            unix_now() + self.clock_offset.load(std::sync::atomic::Ordering::Relaxed),
            &nonce,
            &body,
        );
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| Error::ServerProtocol(format!("bad method {method}")))?;
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers.to_pairs() {
            rb = rb.header(name, value);
        }
        Ok(rb)
    }

    /// Sends a request (built fresh for each try: new time, new nonce); when the server
    /// refuses it as `stale_request`, learns the clock offset from its `Date` header
    /// and tries once more.
    async fn send_adjusting_clock(
        &self,
        build: impl Fn() -> Result<reqwest::RequestBuilder>,
    ) -> Result<reqwest::Response> {
        let mut adjusted = false;
        loop {
            let resp = build()?.send().await.map_err(Error::ServerUnreachable)?;
            let server_time = resp
                .headers()
                .get(reqwest::header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok())
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .and_then(|d| i64::try_from(d.as_secs()).ok());
            match check(resp).await {
                Err(Error::ServerRejected { code, .. })
                    if code == "stale_request" && !adjusted && server_time.is_some() =>
                {
                    let offset = server_time.unwrap_or_default() - unix_now();
                    self.clock_offset
                        .store(offset, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(
                        offset_seconds = offset,
                        "this device's clock is off the server's; signing with the server's time"
                    );
                    adjusted = true;
                }
                other => return other,
            }
        }
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(b)
                .map_err(|e| Error::ServerProtocol(format!("encoding {path}: {e}")))?,
            None => Vec::new(),
        };
        let resp = self
            .send_adjusting_clock(|| {
                Ok(self
                    .signed(method, path, bytes.clone())?
                    .timeout(REQUEST_TIMEOUT))
            })
            .await?;
        let text = resp.bytes().await.map_err(Error::ServerUnreachable)?;
        serde_json::from_slice(&text)
            .map_err(|e| Error::ServerProtocol(format!("{method} {path}: {e}")))
    }
}

/// `value` percent-encoded for a path segment or query value (app ids are paths:
/// `/usr/bin/app`, `uid:1001:/usr/bin/app`).
fn query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Turns a non-2xx answer into [`Error::ServerRejected`].
async fn check(resp: reqwest::Response) -> Result<reqwest::Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let text = resp.bytes().await.map_err(Error::ServerUnreachable)?;
    let (code, message) = match serde_json::from_slice::<serde_json::Value>(&text) {
        Ok(v) => (
            v["error"]["code"].as_str().unwrap_or("unknown").to_owned(),
            v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ),
        Err(_) => ("unknown".to_owned(), String::new()),
    };
    Err(Error::ServerRejected {
        status: status.as_u16(),
        code,
        message,
    })
}

/// An open `GET /v1/events` stream.
#[derive(Debug)]
pub(crate) struct EventStream {
    resp: reqwest::Response,
    buf: Vec<u8>,
    /// The sequence number the server started the stream after
    /// (`x-scanbind-resume-after`), if it said.
    resume_after: Option<i64>,
}

impl EventStream {
    /// The next event; `Ok(None)` when the server closed the stream.
    pub(crate) async fn next(&mut self) -> Result<Option<EventEnvelope>> {
        loop {
            if let Some(block) = take_block(&mut self.buf) {
                match parse_block(&block) {
                    Ok(Some(ev)) => return Ok(Some(ev)),
                    Ok(None) => continue,
                    Err(e) => {
                        // An event type this version does not know: skip it.
                        tracing::debug!(cause = %e, "skipping an event this version cannot read");
                        continue;
                    }
                }
            }
            match self.resp.chunk().await.map_err(Error::ServerUnreachable)? {
                Some(chunk) => self.buf.extend_from_slice(&chunk),
                None => return Ok(None),
            }
        }
    }
}

/// Removes and returns one complete SSE block (up to a blank line) from `buf`.
fn take_block(buf: &mut Vec<u8>) -> Option<String> {
    let text = buf.windows(2).position(|w| w == b"\n\n")?;
    let block: Vec<u8> = buf.drain(..text + 2).collect();
    Some(String::from_utf8_lossy(&block).into_owned())
}

/// The event in one SSE block; `None` for a keep-alive comment.
fn parse_block(block: &str) -> std::result::Result<Option<EventEnvelope>, serde_json::Error> {
    let data: Vec<&str> = block
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim_start)
        .collect();
    if data.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&data.join("\n")).map(Some)
}

/// The link state reported by [`run_events`].
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// The stream is open.
    Online,
    /// The stream broke; reconnecting.
    Connecting,
    /// One event from the server.
    Event(Box<EventEnvelope>),
}

/// The wait before reconnection attempt `attempt` (0-based): doubling from 250 ms,
/// capped at [`MAX_BACKOFF`], with up to 25 % jitter taken from `jitter` (0..=255).
pub(crate) fn backoff(attempt: u32, jitter: u8) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1_u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX))
        .min(MAX_BACKOFF);
    let extra = base.mul_f64(f64::from(jitter) / 255.0 / 4.0);
    (base + extra).min(MAX_BACKOFF)
}

/// Keeps the event stream open until `tx` is closed: starts from `first` (already
/// open), resumes after the last sequence number seen, and reconnects with
/// [`backoff`].
pub(crate) async fn run_events(link: ServerLink, first: EventStream, tx: mpsc::Sender<LinkEvent>) {
    // Resume from where the first stream started even before any event arrived, so
    // an event sent while reconnecting is never missed.
    let mut last_seq: Option<i64> = first.resume_after;
    let mut stream = Some(first);
    let mut attempt: u32 = 0;
    loop {
        let mut current = match stream.take() {
            Some(s) => s,
            None => match link.events(last_seq).await {
                Ok(s) => {
                    attempt = 0;
                    if tx.send(LinkEvent::Online).await.is_err() {
                        return;
                    }
                    s
                }
                Err(e) => {
                    let wait = backoff(attempt, jitter_byte());
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(cause = %e, attempt, ?wait, "event stream: reconnect failed");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => continue,
                        () = tx.closed() => return,
                    }
                }
            },
        };
        loop {
            let next = tokio::select! {
                n = current.next() => n,
                () = tx.closed() => return,
            };
            match next {
                Ok(Some(ev)) => {
                    last_seq = Some(ev.seq);
                    if tx.send(LinkEvent::Event(Box::new(ev))).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {
                    tracing::info!("event stream closed by the server; reconnecting");
                    break;
                }
                Err(e) => {
                    tracing::warn!(cause = %e, "event stream broke; reconnecting");
                    break;
                }
            }
        }
        if tx.send(LinkEvent::Connecting).await.is_err() {
            return;
        }
    }
}

/// One byte of jitter from the clock's sub-second part (not security relevant).
fn jitter_byte() -> u8 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| (d.subsec_nanos() % 256) as u8)
        .unwrap_or(0)
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(0, 0), Duration::from_millis(250));
        assert_eq!(backoff(1, 0), Duration::from_millis(500));
        assert_eq!(backoff(3, 0), Duration::from_secs(2));
        assert_eq!(backoff(10, 0), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX, 255), MAX_BACKOFF);
        assert!(backoff(0, 255) <= Duration::from_millis(313));
    }

    #[test]
    fn sse_blocks_are_split_and_parsed() {
        let mut buf = b": keep-alive\n\nevent: binding.expired\nid: 7\ndata: {\"seq\":7,\"createdAt\":\"2026-01-01T00:00:00Z\",\"type\":\"binding.expired\",\"data\":{\"bindingId\":\"b1\",\"wallet\":\"GCASH\",\"status\":\"expired\",\"createdAt\":\"2026-01-01T00:00:00Z\"}}\n\npartial".to_vec();
        let first = take_block(&mut buf).unwrap();
        assert_eq!(parse_block(&first).unwrap(), None);
        let second = take_block(&mut buf).unwrap();
        let ev = parse_block(&second).unwrap().unwrap();
        assert_eq!(ev.seq, 7);
        assert_eq!(ev.event.kind(), "binding.expired");
        assert_eq!(take_block(&mut buf), None);
        assert_eq!(buf, b"partial");
    }
}
