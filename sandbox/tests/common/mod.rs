//! Shared test fixtures: a sandbox process, a signing merchant client, a notification
//! receiver.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scanbind_ams::{PrivateKey, PublicKey};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The merchant used by the tests.
pub const CLIENT_ID: &str = "SANDBOX_5YEXAMPLE00001";

/// A generous limit so a broken sandbox fails the test instead of hanging it.
pub const WAIT: Duration = Duration::from_secs(30);

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn merchant_key() -> PrivateKey {
    PrivateKey::from_file(&fixture("merchant_key.pem")).unwrap()
}

/// A running `scanbind-sandbox serve` process.
pub struct SandboxProc {
    pub child: Child,
    pub url: String,
    pub public_key: PublicKey,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

impl SandboxProc {
    pub async fn start(extra: &[&str]) -> SandboxProc {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra).await
    }

    /// Starts with the test merchant, the fixture signing key and time scale 0.001.
    pub async fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> SandboxProc {
        let merchant = format!("{CLIENT_ID}={}", fixture("merchant_pub.pem").display());
        let other = format!("PLAIN_CLIENT_01={}", fixture("merchant_pub.pem").display());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_scanbind-sandbox"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--time-scale", "0.001"])
            .args(["--merchant", &merchant, "--merchant", &other])
            .arg("--signing-key")
            .arg(fixture("sandbox_key.pem"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("start scanbind-sandbox");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("sandbox did not start")
            .unwrap()
            .expect("sandbox exited before printing its URL");
        let url = line
            .split_whitespace()
            .last()
            .expect("a URL on the ready line")
            .to_owned();
        assert!(url.starts_with("http://"), "ready line: {line}");
        let http = scanbind_sandbox::notify::http_client().unwrap();
        let pem = http
            .get(format!("{url}/sandbox/v1/public-key"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let public_key = PublicKey::from_text(&pem).unwrap();
        SandboxProc {
            child,
            url,
            public_key,
            http,
            dir,
        }
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill().await;
        self.dir
    }

    pub async fn get(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn ledger(&self) -> Value {
        self.get("/sandbox/v1/ledger").await
    }

    pub async fn advance(&self, seconds: u64) {
        let (s, _) = self
            .post("/sandbox/v1/clock/advance", json!({ "seconds": seconds }))
            .await;
        assert_eq!(s, 200);
    }

    pub async fn arm(&self, fault: Value) {
        let (s, v) = self.post("/sandbox/v1/faults", fault).await;
        assert_eq!(s, 200, "{v}");
    }

    pub async fn notifications(&self) -> Vec<Value> {
        self.get("/sandbox/v1/notifications").await["notifications"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn merchant(&self) -> Merchant {
        Merchant {
            url: self.url.clone(),
            client_id: CLIENT_ID.into(),
            key: Arc::new(merchant_key()),
            sandbox_key: self.public_key.clone(),
            http: self.http.clone(),
            prefix: "/ams/api/v1".into(),
        }
    }
}

/// A raw AMS answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub raw: Vec<u8>,
    pub body: Value,
    /// Whether the signature header verified (None: no signature header).
    pub verified: Option<bool>,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["result"]["resultCode"].as_str().unwrap_or("")
    }
    pub fn status_letter(&self) -> &str {
        self.body["result"]["resultStatus"].as_str().unwrap_or("")
    }
    pub fn message(&self) -> &str {
        self.body["result"]["resultMessage"].as_str().unwrap_or("")
    }
}

/// A merchant that signs its requests.
#[derive(Clone)]
pub struct Merchant {
    pub url: String,
    pub client_id: String,
    pub key: Arc<PrivateKey>,
    pub sandbox_key: PublicKey,
    pub http: reqwest::Client,
    pub prefix: String,
}

impl Merchant {
    /// Signs and sends `body` to `<prefix>/<action>`; verifies the response signature.
    pub async fn call(&self, action: &str, body: &Value) -> Answer {
        let path = format!("{}/{action}", self.prefix);
        self.raw(&path, body.to_string().as_bytes(), true).await
    }

    /// Sends raw bytes to `path`, signed or not.
    pub async fn raw(&self, path: &str, bytes: &[u8], sign: bool) -> Answer {
        let time = "2024-01-01T00:00:00+00:00";
        let mut req = self
            .http
            .post(format!("{}{path}", self.url))
            .header("Content-Type", "application/json; charset=UTF-8")
            .header("Client-Id", &self.client_id)
            .header("Request-Time", time);
        if sign {
            let sig = scanbind_ams::signature::sign(
                &self.key,
                1,
                "POST",
                path,
                &self.client_id,
                time,
                bytes,
            )
            .unwrap();
            req = req.header("Signature", sig);
        }
        let resp = req.body(bytes.to_vec()).send().await.unwrap();
        self.answer(path, resp).await
    }

    pub async fn answer(&self, path: &str, resp: reqwest::Response) -> Answer {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let raw = resp.bytes().await.unwrap().to_vec();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        let verified = headers.get("signature").map(|sig| {
            let client = headers.get("client-id").unwrap().to_str().unwrap();
            let time = headers.get("response-time").unwrap().to_str().unwrap();
            scanbind_ams::signature::verify(
                &self.sandbox_key,
                sig.to_str().unwrap(),
                "POST",
                path,
                client,
                time,
                &raw,
            )
            .is_ok()
        });
        Answer {
            status,
            headers,
            raw,
            body,
            verified,
        }
    }
}

/// One notification as the merchant received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub client_id: String,
    pub request_time: String,
    pub signature: String,
    pub raw: Vec<u8>,
    pub body: Value,
}

/// A merchant notification endpoint: answers the first `fail_first` posts with a wrong
/// ack, then the exact SUCCESS ack.
pub struct Receiver {
    pub url: String,
    pub rx: mpsc::UnboundedReceiver<Received>,
    fail_first: Arc<Mutex<u32>>,
}

impl Receiver {
    pub async fn start(fail_first: u32) -> Receiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let fail = Arc::new(Mutex::new(fail_first));
        let fail2 = Arc::clone(&fail);
        let app = axum_like::router(tx, fail2);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum_like::serve(listener, app).await });
        Receiver {
            url: format!("http://{addr}"),
            rx,
            fail_first: fail,
        }
    }

    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("no notification arrived")
            .expect("receiver closed")
    }

    /// Waits for the next notification whose body has `field` == `value`.
    pub async fn next_where(&mut self, field: &str, value: &str) -> Received {
        loop {
            let n = self.next().await;
            if n.body[field] == value {
                return n;
            }
        }
    }

    pub fn verify(&self, n: &Received, key: &PublicKey) -> bool {
        scanbind_ams::signature::verify(
            key,
            &n.signature,
            "POST",
            &n.path,
            &n.client_id,
            &n.request_time,
            &n.raw,
        )
        .is_ok()
    }
}

/// A minimal HTTP/1.1 notification server on tokio (no extra dependencies).
mod axum_like {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    pub struct App {
        tx: mpsc::UnboundedSender<Received>,
        fail: Arc<Mutex<u32>>,
    }

    pub fn router(tx: mpsc::UnboundedSender<Received>, fail: Arc<Mutex<u32>>) -> Arc<App> {
        Arc::new(App { tx, fail })
    }

    pub async fn serve(listener: tokio::net::TcpListener, app: Arc<App>) {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, content_length) = loop {
                    let n = match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_string();
                        let len = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.trim()
                                    .eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        break (i + 4, len);
                    }
                };
                while buf.len() < head_end + content_length {
                    let n = match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let raw = buf[head_end..head_end + content_length].to_vec();
                let mut lines = head.lines();
                let path = lines
                    .next()
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap_or("")
                    .to_owned();
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.trim()
                                .eq_ignore_ascii_case(name)
                                .then(|| v.trim().to_owned())
                        })
                        .unwrap_or_default()
                };
                let received = Received {
                    path,
                    client_id: header("client-id"),
                    request_time: header("request-time"),
                    signature: header("signature"),
                    body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
                    raw,
                };
                let fail = {
                    let mut f = app.fail.lock().unwrap();
                    if *f > 0 {
                        *f -= 1;
                        true
                    } else {
                        false
                    }
                };
                let _ = app.tx.send(received);
                let body = if fail {
                    r#"{"result":{"resultCode":"SUCCESS","resultStatus":"U","resultMessage":"not yet"}}"#
                } else {
                    r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    }
}

/// consult → scan approve → AUTHCODE_CREATED → applyToken; returns (access, refresh, authCode).
pub async fn bind(
    sb: &SandboxProc,
    m: &Merchant,
    rx: &mut Receiver,
    wallet: &str,
    user: Option<&str>,
) -> (String, String) {
    let state = format!("st_{}", rand_suffix());
    let consult = m
        .call(
            "authorizations/consult",
            &json!({
                "customerBelongsTo": wallet,
                "authRedirectUrl": "https://merchant.example/return",
                "authNotifyUrl": format!("{}/notify/auth", rx.url),
                "scopes": ["AGREEMENT_PAY"],
                "authState": state,
                "terminalType": "WEB",
                "env": {"terminalType": "WEB"}
            }),
        )
        .await;
    assert_eq!(consult.code(), "SUCCESS", "{:?}", consult.body);
    let code_value = consult.body["authCodeForm"]["codeDetails"][0]["codeValue"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut scan = json!({"codeValue": code_value, "decision": "approve"});
    if let Some(u) = user {
        scan["user"] = u.into();
    }
    let (s, v) = sb.post("/sandbox/v1/scan", scan).await;
    assert_eq!(s, 200, "{v}");
    let n = rx.next_where("authState", &state).await;
    assert_eq!(n.body["authorizationNotifyType"], "AUTHCODE_CREATED");
    let auth_code = n.body["authCode"].as_str().unwrap().to_owned();
    let token = m
        .call(
            "authorizations/applyToken",
            &json!({"grantType": "AUTHORIZATION_CODE", "customerBelongsTo": wallet, "authCode": auth_code}),
        )
        .await;
    assert_eq!(token.code(), "SUCCESS", "{:?}", token.body);
    (
        token.body["accessToken"].as_str().unwrap().to_owned(),
        token.body["refreshToken"].as_str().unwrap().to_owned(),
    )
}

pub fn rand_suffix() -> String {
    scanbind_sandbox::ids::random_hex(6)
}

/// An agreement pay body.
pub fn pay_body(
    request_id: &str,
    currency: &str,
    value: &str,
    token: &str,
    wallet: &str,
    notify: Option<&str>,
) -> Value {
    let mut b = json!({
        "productCode": "AGREEMENT_PAYMENT",
        "paymentRequestId": request_id,
        "order": {
            "referenceOrderId": format!("ord_{request_id}"),
            "orderDescription": "In-game coins",
            "orderAmount": {"currency": currency, "value": value},
            "env": {"terminalType": "WEB"}
        },
        "paymentAmount": {"currency": currency, "value": value},
        "paymentMethod": {"paymentMethodType": wallet, "paymentMethodId": token},
        "env": {"terminalType": "WEB"}
    });
    if let Some(n) = notify {
        b["paymentNotifyUrl"] = n.into();
    }
    b
}

/// Finds a payment in the ledger by request id.
pub fn ledger_payment<'a>(ledger: &'a Value, request_id: &str) -> Option<&'a Value> {
    ledger["payments"]
        .as_array()?
        .iter()
        .find(|p| p["paymentRequestId"] == request_id)
}
