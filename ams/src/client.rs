//! The AMS HTTP client: signs requests, verifies responses, retries only where allowed.
//!
//! One [`Client`] talks to one AMS gateway as one merchant. [`Client::call`] posts a typed
//! request and returns the verified typed response whatever its result status (S, F or
//! U), after the retries that [`decide`] allows: a retry is always
//! the byte-identical request (same idempotency key, same body), with capped, jittered
//! back-off and a per-attempt timeout. An `Err` means no trustworthy answer arrived; for
//! a payment that means the outcome is unknown and the caller must inquire.
//!
//! Tracing spans carry the endpoint, the idempotency key and the attempt number; never a
//! body, token, key or signature.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use tracing::{Instrument, debug, info_span, warn};

use crate::error::{Error, Result, TransportKind};
use crate::keys::{PrivateKey, PublicKey};
use crate::model::{AmsRequest, AmsResponse};
use crate::result::{Attempt, Endpoint, Next, ResultStatus, decide};
use crate::signature;

/// Largest response body accepted.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The AMS gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Region {
    /// Asia: `https://open-sea-global.alipay.com`.
    Sea,
    /// North America: `https://open-na-global.alipay.com`.
    Na,
    /// Europe: `https://open-de-global.alipay.com`.
    De,
    /// US-registered merchants: `https://open.antglobal-us.com`.
    Us,
}

impl Region {
    /// The gateway's base URL.
    pub fn base_url(self) -> &'static str {
        match self {
            Region::Sea => "https://open-sea-global.alipay.com",
            Region::Na => "https://open-na-global.alipay.com",
            Region::De => "https://open-de-global.alipay.com",
            Region::Us => "https://open.antglobal-us.com",
        }
    }

    /// Parses `sea`, `na`, `de` or `us` (any case).
    pub fn parse(name: &str) -> Result<Region> {
        match name.to_ascii_lowercase().as_str() {
            "sea" => Ok(Region::Sea),
            "na" => Ok(Region::Na),
            "de" => Ok(Region::De),
            "us" => Ok(Region::Us),
            _ => Err(Error::Config(format!(
                "unknown AMS region {name:?} (expected sea, na, de or us)"
            ))),
        }
    }
}

/// Where `request-time` comes from. The default sends epoch milliseconds, as the Java
/// and Go SDKs do; tests inject fixed or skewed clocks.
pub trait RequestClock: Send + Sync + fmt::Debug {
    /// The value of the next `request-time` header.
    fn request_time(&self) -> String;
}

/// The system clock, as epoch milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl RequestClock for SystemClock {
    fn request_time(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        now.as_millis().to_string()
    }
}

/// Retry and timeout policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first (at least 1).
    pub max_attempts: u32,
    /// Timeout of one attempt, connect to last body byte.
    pub attempt_timeout: Duration,
    /// First back-off; doubles each retry.
    pub backoff_base: Duration,
    /// Largest back-off.
    pub backoff_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            attempt_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Back-off before retry number `retry` (1-based): full jitter over
    /// `min(cap, base * 2^(retry-1))`.
    pub fn backoff(&self, retry: u32, rng: &dyn SecureRandom) -> Duration {
        let exp = self
            .backoff_base
            .saturating_mul(1_u32 << retry.saturating_sub(1).min(16));
        let ceiling = exp.min(self.backoff_cap);
        let mut bytes = [0_u8; 4];
        let fraction = match rng.fill(&mut bytes) {
            Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
            Err(_) => 1.0,
        };
        ceiling.mul_f64(fraction)
    }
}

/// Builds a [`Client`].
#[derive(Debug)]
pub struct ClientBuilder {
    base_url: String,
    client_id: String,
    key_version: u32,
    private_key: Arc<PrivateKey>,
    alipay_public_key: PublicKey,
    clock: Arc<dyn RequestClock>,
    retry: RetryPolicy,
    extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl ClientBuilder {
    /// Uses a region's gateway (the default is [`Region::Sea`]).
    pub fn region(mut self, region: Region) -> Self {
        self.base_url = region.base_url().to_owned();
        self
    }

    /// Uses any base URL, e.g. a local sandbox `http://127.0.0.1:8100`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Sets the `keyVersion` sent in the signature header (default 1).
    pub fn key_version(mut self, version: u32) -> Self {
        self.key_version = version;
        self
    }

    /// Sets the clock that produces `request-time`.
    pub fn clock(mut self, clock: Arc<dyn RequestClock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Trusts an extra root certificate (DER), e.g. a development gateway's self-signed one.
    pub fn add_root_certificate(mut self, der: Vec<u8>) -> Self {
        self.extra_roots
            .push(rustls::pki_types::CertificateDer::from(der));
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client> {
        let base_url = self.base_url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base_url)
            .map_err(|e| Error::Config(format!("base URL {base_url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.path() != "/"
            || parsed.query().is_some()
        {
            return Err(Error::Config(format!(
                "base URL {base_url:?} must be http(s)://host[:port] with no path"
            )));
        }
        if self.client_id.is_empty()
            || self.client_id.len() > 64
            || !self.client_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Error::Config(
                "client id must be 1 to 64 visible ASCII characters".into(),
            ));
        }
        if self.retry.max_attempts == 0 {
            return Err(Error::Config("max_attempts must be at least 1".into()));
        }
        let http = http_client_builder(self.extra_roots)?
            .timeout(self.retry.attempt_timeout)
            .no_proxy()
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base_url,
                client_id: self.client_id,
                key_version: self.key_version,
                private_key: self.private_key,
                alipay_public_key: self.alipay_public_key,
                clock: self.clock,
                retry: self.retry,
                rng: SystemRandom::new(),
            }),
        })
    }
}

/// An AMS client for one merchant and one gateway. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    client_id: String,
    key_version: u32,
    private_key: Arc<PrivateKey>,
    alipay_public_key: PublicKey,
    clock: Arc<dyn RequestClock>,
    retry: RetryPolicy,
    rng: SystemRandom,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .field("client_id", &self.inner.client_id)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// One attempt's outcome, before the retry decision.
enum Raw<T> {
    Answer(T),
    NotSent(TransportKind),
    NoAnswer(Error),
}

impl Client {
    /// Starts a builder for `client_id`, signing with `private_key` and verifying
    /// responses with `alipay_public_key`. The gateway defaults to [`Region::Sea`].
    pub fn builder(
        client_id: impl Into<String>,
        private_key: Arc<PrivateKey>,
        alipay_public_key: PublicKey,
    ) -> ClientBuilder {
        ClientBuilder {
            base_url: Region::Sea.base_url().to_owned(),
            client_id: client_id.into(),
            key_version: 1,
            private_key,
            alipay_public_key,
            clock: Arc::new(SystemClock),
            retry: RetryPolicy::default(),
            extra_roots: Vec::new(),
        }
    }

    /// The merchant client id.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The path actually requested for `endpoint`: a `SANDBOX_` client id moves the first
    /// `/ams/api` to `/ams/sandbox/api`, as every official SDK does, before signing.
    pub fn request_path(&self, endpoint: Endpoint) -> String {
        sandbox_path(&self.inner.client_id, endpoint.path())
    }

    /// Posts `request` and returns the verified response, whatever its result status.
    ///
    /// Retries (the identical bytes) where [`decide`] says `RetrySame`. Returns `Err` when
    /// no trustworthy answer arrived within the attempts: a transport failure, an HTTP
    /// status other than 200, or a response whose signature is missing (on success) or
    /// does not verify. The request is validated first and never sent when invalid.
    pub async fn call<R: AmsRequest>(&self, request: &R) -> Result<R::Response> {
        request
            .validate()
            .map_err(|e| Error::Config(format!("invalid {} request: {e}", R::ENDPOINT.path())))?;
        let body = serde_json::to_vec(request).map_err(|source| Error::Json {
            what: "request",
            source,
        })?;
        let path = self.request_path(R::ENDPOINT);
        let span = info_span!("ams.call", path = %path, key = request.idempotency_key().unwrap_or(""), attempt = tracing::field::Empty, result = tracing::field::Empty);
        self.call_raw::<R::Response>(R::ENDPOINT, &path, body)
            .instrument(span)
            .await
    }

    async fn call_raw<T: AmsResponse>(
        &self,
        endpoint: Endpoint,
        path: &str,
        body: Vec<u8>,
    ) -> Result<T> {
        let retry = self.inner.retry;
        let mut attempt = 1;
        loop {
            tracing::Span::current().record("attempt", attempt);
            let raw = self.attempt::<T>(path, &body).await;
            let last = attempt >= retry.max_attempts;
            let (next, outcome) = match raw {
                Raw::Answer(resp) => {
                    tracing::Span::current().record("result", resp.result().result_code.as_str());
                    (decide(endpoint, Attempt::Answered(resp.result())), Ok(resp))
                }
                Raw::NotSent(kind) => (
                    decide(endpoint, Attempt::NotSent),
                    Err(Error::Transport {
                        path: path.to_owned(),
                        kind,
                    }),
                ),
                Raw::NoAnswer(Error::HttpStatus { status, path }) if status < 500 => (
                    decide(endpoint, Attempt::Rejected(status)),
                    Err(Error::HttpStatus { status, path }),
                ),
                Raw::NoAnswer(err) => (decide(endpoint, Attempt::NoAnswer), Err(err)),
            };
            if next != Next::RetrySame || last {
                if let Err(e) = &outcome {
                    warn!(cause = %e, "AMS call failed");
                }
                return outcome;
            }
            let pause = retry.backoff(attempt, &self.inner.rng);
            debug!(?pause, "retrying the identical request");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    async fn attempt<T: AmsResponse>(&self, path: &str, body: &[u8]) -> Raw<T> {
        let inner = &self.inner;
        let time = inner.clock.request_time();
        let sig = match signature::sign(
            &inner.private_key,
            inner.key_version,
            "POST",
            path,
            &inner.client_id,
            &time,
            body,
        ) {
            Ok(sig) => sig,
            Err(e) => return Raw::NoAnswer(e),
        };
        let sent = inner
            .http
            .post(format!("{}{}", inner.base_url, path))
            .header("content-type", "application/json; charset=UTF-8")
            .header("client-id", &inner.client_id)
            .header("request-time", &time)
            .header("signature", sig)
            .body(body.to_vec())
            .send()
            .await;
        let transport = |kind| Error::Transport {
            path: path.to_owned(),
            kind,
        };
        let mut response = match sent {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Raw::NotSent(TransportKind::Connect),
            Err(e) if e.is_timeout() => return Raw::NoAnswer(transport(TransportKind::Timeout)),
            Err(_) => return Raw::NoAnswer(transport(TransportKind::Io)),
        };
        let status = response.status().as_u16();
        if status != 200 {
            return Raw::NoAnswer(Error::HttpStatus {
                path: path.to_owned(),
                status,
            });
        }
        let header = |name: &'static str| -> Result<Option<String>> {
            match response.headers().get(name) {
                None => Ok(None),
                Some(v) => v
                    .to_str()
                    .map(|s| Some(s.to_owned()))
                    .map_err(|_| Error::InvalidHeader(name)),
            }
        };
        let (sig, response_time, client_id) = match (
            header("signature"),
            header("response-time"),
            header("client-id"),
        ) {
            (Ok(s), Ok(t), Ok(c)) => (s, t, c),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                return Raw::NoAnswer(unverified(path, e));
            }
        };
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Raw::NoAnswer(transport(TransportKind::BodyTooLarge));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => {
                    return Raw::NoAnswer(transport(TransportKind::Timeout));
                }
                Err(_) => return Raw::NoAnswer(transport(TransportKind::Io)),
            }
        }
        let parsed: T = match serde_json::from_slice(&bytes) {
            Ok(p) => p,
            Err(source) => {
                return Raw::NoAnswer(Error::Json {
                    what: "response",
                    source,
                });
            }
        };
        if let Some(cid) = &client_id
            && cid != &inner.client_id
        {
            return Raw::NoAnswer(unverified(
                path,
                Error::Config("response client-id differs from ours".into()),
            ));
        }
        match sig {
            Some(sig) => {
                let time = match response_time {
                    Some(t) => t,
                    None => {
                        return Raw::NoAnswer(unverified(
                            path,
                            Error::MissingHeader("response-time"),
                        ));
                    }
                };
                let cid = client_id.as_deref().unwrap_or(&inner.client_id);
                match signature::verify(
                    &inner.alipay_public_key,
                    &sig,
                    "POST",
                    path,
                    cid,
                    &time,
                    &bytes,
                ) {
                    Ok(()) => Raw::Answer(parsed),
                    Err(e) => Raw::NoAnswer(unverified(path, e)),
                }
            }
            // Unsigned F/U answers are accepted, as the official SDKs do (AMS omits the
            // signature on INVALID_SIGNATURE); an unsigned success is never trusted.
            None if parsed.result().result_status != ResultStatus::S => Raw::Answer(parsed),
            None => Raw::NoAnswer(unverified(path, Error::MissingSignature)),
        }
    }
}

fn unverified(path: &str, reason: Error) -> Error {
    Error::UnverifiedResponse {
        path: path.to_owned(),
        reason: Box::new(reason),
    }
}

/// A rustls client configuration with the ring provider and the platform verifier,
/// trusting `extra_roots` as well (e.g. a development server's self-signed certificate).
pub fn tls_config(
    extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())
            .map_err(|e| Error::Config(format!("TLS roots: {e}")))?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// A `reqwest` client builder with [`tls_config`] already set.
///
/// The workspace builds reqwest without a default crypto provider (no aws-lc-rs), so a
/// bare `reqwest::Client::builder().build()` panics; every HTTP client in scanbind starts
/// from this builder instead.
pub fn http_client_builder(
    extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> Result<reqwest::ClientBuilder> {
    Ok(reqwest::Client::builder().tls_backend_preconfigured(tls_config(extra_roots)?))
}

/// Applies the `SANDBOX_` client-id rule to a production path.
pub fn sandbox_path(client_id: &str, path: &str) -> String {
    if client_id.starts_with("SANDBOX_") {
        path.replacen("/ams/api", "/ams/sandbox/api", 1)
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_and_paths() {
        assert_eq!(
            Region::parse("SEA").unwrap().base_url(),
            "https://open-sea-global.alipay.com"
        );
        assert!(Region::parse("mars").is_err());
        assert_eq!(
            sandbox_path("SANDBOX_X", "/ams/api/v1/payments/pay"),
            "/ams/sandbox/api/v1/payments/pay"
        );
        assert_eq!(
            sandbox_path("2188X", "/ams/api/v1/payments/pay"),
            "/ams/api/v1/payments/pay"
        );
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let policy = RetryPolicy {
            max_attempts: 5,
            attempt_timeout: Duration::from_secs(1),
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_millis(300),
        };
        let rng = SystemRandom::new();
        let mut distinct = std::collections::HashSet::new();
        for retry in 1..=30 {
            let d = policy.backoff(retry, &rng);
            assert!(d <= Duration::from_millis(300));
            if retry == 1 {
                assert!(d <= Duration::from_millis(100));
            }
            distinct.insert(d);
        }
        assert!(distinct.len() > 1, "jitter must vary");
    }
}
