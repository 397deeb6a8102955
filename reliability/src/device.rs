//! A simulated device: an Ed25519 key and a client that signs every request the way
//! `scanbindd` does (`x-scanbind-device`, `-time`, `-nonce`, `-signature`).

use scanbind_device_api::DeviceKey;
use scanbind_device_api::signing::new_nonce;
use serde_json::Value;

/// A device: its key and a signing HTTP client for one server.
pub struct Device {
    /// The device key.
    pub key: DeviceKey,
    /// The HTTP client.
    pub http: reqwest::Client,
    /// The server's base URL.
    pub base: String,
}

/// Unix time, seconds.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("id", &self.key.device_id())
            .field("base", &self.base)
            .finish()
    }
}

impl Device {
    /// A new device with a fresh key, for the server at `base`.
    pub fn new(base: &str) -> crate::Result<Device> {
        Ok(Device {
            key: DeviceKey::generate()?,
            http: crate::http(),
            base: base.to_owned(),
        })
    }

    /// Sends a signed request and returns the status and the JSON (or text) answer.
    pub async fn send(&self, method: &str, path: &str, body: &[u8]) -> crate::Result<(u16, Value)> {
        self.send_to(&self.base, method, path, body).await
    }

    /// A request signed now with a fresh nonce.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> crate::Result<reqwest::RequestBuilder> {
        self.request_to(&self.base, method, path, body)
    }

    /// [`Device::send`] to the server at `base` (another replica).
    pub async fn send_to(
        &self,
        base: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> crate::Result<(u16, Value)> {
        let resp = self.request_to(base, method, path, body)?.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// [`Device::request`] to the server at `base` (another replica).
    pub fn request_to(
        &self,
        base: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> crate::Result<reqwest::RequestBuilder> {
        let headers = self
            .key
            .sign_request(method, path, now_s(), &new_nonce()?, body);
        let mut rb = self
            .http
            .request(
                method
                    .parse::<reqwest::Method>()
                    .map_err(|_| crate::Error::Process(format!("bad method {method}")))?,
                format!("{base}{path}"),
            )
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers.to_pairs() {
            rb = rb.header(k, v);
        }
        Ok(rb)
    }

    /// Sends a signed request; the JSON answer, or an error for a non-2xx answer.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> crate::Result<Value> {
        let bytes = body
            .map(|b| serde_json::to_vec(&b))
            .transpose()?
            .unwrap_or_default();
        let resp = self.request(method, path, &bytes)?.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            return Err(crate::Error::Process(format!(
                "{method} {path}: HTTP {status}: {text}"
            )));
        }
        Ok(serde_json::from_str(&text)?)
    }
}
