//! The AMS client against a scripted HTTP server: signing, verification, retries.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use scanbind_ams::client::{Client, RequestClock, RetryPolicy};
use scanbind_ams::error::TransportKind;
use scanbind_ams::model::{AmsRequest, AmsResponse, FieldError};
use scanbind_ams::result::Endpoint;
use scanbind_ams::{AmsResult, Error, PrivateKey, PublicKey, ResultCode, ResultStatus, signature};
use serde::{Deserialize, Serialize};

const CLIENT_ID: &str = "2188120000000001";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestPay {
    payment_request_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestConsult {
    auth_state: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TestResponse {
    result: AmsResult,
}

impl AmsResponse for TestResponse {
    fn result(&self) -> &AmsResult {
        &self.result
    }
    fn from_result(result: AmsResult) -> Self {
        TestResponse { result }
    }
}

impl AmsRequest for TestPay {
    const ENDPOINT: Endpoint = Endpoint::Pay;
    type Response = TestResponse;
    fn idempotency_key(&self) -> Option<&str> {
        Some(&self.payment_request_id)
    }
    fn validate(&self) -> Result<(), FieldError> {
        if self.payment_request_id.is_empty() {
            return Err(FieldError::new("paymentRequestId", "empty"));
        }
        Ok(())
    }
}

impl AmsRequest for TestConsult {
    const ENDPOINT: Endpoint = Endpoint::Consult;
    type Response = TestResponse;
    fn validate(&self) -> Result<(), FieldError> {
        Ok(())
    }
}

#[derive(Debug)]
struct FixedClock;
impl RequestClock for FixedClock {
    fn request_time(&self) -> String {
        "2024-01-01T00:00:00+00:00".into()
    }
}

#[derive(Clone, Copy)]
enum Reply {
    Signed(&'static str, &'static str),
    Unsigned(&'static str, &'static str),
    BadSignature,
    Status(u16),
    Hang,
}

struct Seen {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
struct Fake {
    script: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    alipay_key: Arc<PrivateKey>,
}

async fn handle(
    axum::extract::State(fake): axum::extract::State<Fake>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = fake
        .script
        .lock()
        .unwrap()
        .pop_front()
        .expect("script exhausted");
    let path = uri.path().to_owned();
    let client_id = headers
        .get("client-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    fake.seen.lock().unwrap().push(Seen {
        path: path.clone(),
        headers,
        body,
    });
    let json = |status: &str, code: &str| {
        format!(
            r#"{{"result":{{"resultCode":"{code}","resultStatus":"{status}","resultMessage":"m"}}}}"#
        )
    };
    let signed = |body: String, tamper: bool| {
        let time = "2024-01-01T00:00:01+00:00";
        let sig = signature::sign(
            &fake.alipay_key,
            1,
            "POST",
            &path,
            &client_id,
            time,
            body.as_bytes(),
        )
        .unwrap();
        let body = if tamper {
            body.replace("\"m\"", "\"n\"")
        } else {
            body
        };
        (
            [
                ("client-id", client_id.as_str()),
                ("response-time", time),
                ("signature", sig.as_str()),
            ],
            body,
        )
            .into_response()
    };
    match reply {
        Reply::Signed(s, c) => signed(json(s, c), false),
        Reply::BadSignature => signed(json("S", "SUCCESS"), true),
        Reply::Unsigned(s, c) => json(s, c).into_response(),
        Reply::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Reply::Hang => std::future::pending().await,
    }
}

async fn start(script: Vec<Reply>) -> (Fake, String) {
    let fake = Fake {
        script: Arc::new(Mutex::new(script.into())),
        seen: Arc::default(),
        alipay_key: Arc::new(PrivateKey::from_text(&fixture("other_rsa2048.pem")).unwrap()),
    };
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, url)
}

fn client(url: &str, client_id: &str, fake: &Fake) -> Client {
    let merchant = Arc::new(PrivateKey::from_text(&fixture("vector_private_pkcs8.pem")).unwrap());
    Client::builder(client_id, merchant, fake.alipay_key.public_key())
        .base_url(url)
        .clock(Arc::new(FixedClock))
        .retry(RetryPolicy {
            max_attempts: 3,
            attempt_timeout: Duration::from_millis(300),
            backoff_base: Duration::from_millis(1),
            backoff_cap: Duration::from_millis(5),
        })
        .build()
        .unwrap()
}

fn pay() -> TestPay {
    TestPay {
        payment_request_id: "pay_0001".into(),
    }
}

#[tokio::test]
async fn signs_requests_and_verifies_responses() {
    let (fake, url) = start(vec![Reply::Signed("S", "SUCCESS")]).await;
    let resp = client(&url, CLIENT_ID, &fake).call(&pay()).await.unwrap();
    assert_eq!(resp.result.result_code, ResultCode::Success);
    let seen = fake.seen.lock().unwrap();
    let req = &seen[0];
    assert_eq!(req.path, "/ams/api/v1/payments/pay");
    assert_eq!(req.headers["client-id"], CLIENT_ID);
    assert_eq!(req.headers["request-time"], "2024-01-01T00:00:00+00:00");
    let merchant_public = PublicKey::from_text(&fixture("vector_public_spki.pem")).unwrap();
    signature::verify(
        &merchant_public,
        req.headers["signature"].to_str().unwrap(),
        "POST",
        &req.path,
        CLIENT_ID,
        "2024-01-01T00:00:00+00:00",
        &req.body,
    )
    .unwrap();
    assert_eq!(&req.body[..], br#"{"paymentRequestId":"pay_0001"}"#);
}

#[tokio::test]
async fn sandbox_client_id_rewrites_the_path_before_signing() {
    let (fake, url) = start(vec![Reply::Signed("S", "SUCCESS")]).await;
    let sandbox = client(&url, "SANDBOX_5YEXAMPLE00001", &fake);
    assert!(sandbox.call(&pay()).await.unwrap().result.is_success());
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen[0].path, "/ams/sandbox/api/v1/payments/pay");
    let merchant_public = PublicKey::from_text(&fixture("vector_public_spki.pem")).unwrap();
    signature::verify(
        &merchant_public,
        seen[0].headers["signature"].to_str().unwrap(),
        "POST",
        "/ams/sandbox/api/v1/payments/pay",
        "SANDBOX_5YEXAMPLE00001",
        "2024-01-01T00:00:00+00:00",
        &seen[0].body,
    )
    .unwrap();
}

#[tokio::test]
async fn unknown_results_are_retried_with_identical_bytes() {
    let (fake, url) = start(vec![
        Reply::Signed("U", "UNKNOWN_EXCEPTION"),
        Reply::Status(503),
        Reply::Signed("S", "SUCCESS"),
    ])
    .await;
    let resp = client(&url, CLIENT_ID, &fake).call(&pay()).await.unwrap();
    assert!(resp.result.is_success());
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.body == seen[0].body));
}

#[tokio::test]
async fn payment_in_process_is_returned_for_inquiry_not_retried() {
    let (fake, url) = start(vec![Reply::Signed("U", "PAYMENT_IN_PROCESS")]).await;
    let resp = client(&url, CLIENT_ID, &fake).call(&pay()).await.unwrap();
    assert_eq!(resp.result.result_status, ResultStatus::U);
    assert_eq!(resp.result.result_code, ResultCode::PaymentInProcess);
    assert_eq!(fake.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn failures_are_final_and_not_retried() {
    let (fake, url) = start(vec![Reply::Signed("F", "USER_BALANCE_NOT_ENOUGH")]).await;
    let resp = client(&url, CLIENT_ID, &fake).call(&pay()).await.unwrap();
    assert_eq!(resp.result.result_code, ResultCode::UserBalanceNotEnough);
    assert_eq!(fake.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_after_all_attempts_is_returned_as_u() {
    let (fake, url) = start(vec![Reply::Signed("U", "UNKNOWN_EXCEPTION"); 3]).await;
    let resp = client(&url, CLIENT_ID, &fake).call(&pay()).await.unwrap();
    assert_eq!(resp.result.result_status, ResultStatus::U);
    assert_eq!(fake.seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn server_errors_exhaust_attempts() {
    let (fake, url) = start(vec![Reply::Status(500); 3]).await;
    let err = client(&url, CLIENT_ID, &fake)
        .call(&pay())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::HttpStatus { status: 500, .. }),
        "{err:?}"
    );
    assert_eq!(fake.seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (fake, url) = start(vec![Reply::Status(404)]).await;
    let err = client(&url, CLIENT_ID, &fake)
        .call(&pay())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::HttpStatus { status: 404, .. }),
        "{err:?}"
    );
    assert_eq!(fake.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn hangs_time_out_per_attempt_then_report_unknown() {
    let (fake, url) = start(vec![Reply::Hang, Reply::Hang, Reply::Hang]).await;
    let err = client(&url, CLIENT_ID, &fake)
        .call(&pay())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(fake.seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn broken_response_signature_is_never_trusted() {
    let (fake, url) = start(vec![Reply::BadSignature; 3]).await;
    let err = client(&url, CLIENT_ID, &fake)
        .call(&pay())
        .await
        .unwrap_err();
    match err {
        Error::UnverifiedResponse { reason, .. } => assert!(matches!(*reason, Error::BadSignature)),
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn unsigned_failure_is_accepted_unsigned_success_is_not() {
    let (fake, url) = start(vec![Reply::Unsigned("F", "INVALID_SIGNATURE")]).await;
    let resp = client(&url, CLIENT_ID, &fake).call(&pay()).await.unwrap();
    assert_eq!(resp.result.result_code, ResultCode::InvalidSignature);

    let (fake, url) = start(vec![Reply::Unsigned("S", "SUCCESS"); 3]).await;
    let err = client(&url, CLIENT_ID, &fake)
        .call(&pay())
        .await
        .unwrap_err();
    match err {
        Error::UnverifiedResponse { reason, .. } => {
            assert!(matches!(*reason, Error::MissingSignature))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn consult_is_not_repeated_after_an_unknown_outcome() {
    let (fake, url) = start(vec![Reply::Signed("U", "UNKNOWN_EXCEPTION")]).await;
    let resp = client(&url, CLIENT_ID, &fake)
        .call(&TestConsult {
            auth_state: "s1".into(),
        })
        .await
        .unwrap();
    assert_eq!(resp.result.result_status, ResultStatus::U);
    assert_eq!(fake.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn refused_connection_is_reported_as_not_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let (fake, _) = start(vec![]).await;
    let err = client(&url, CLIENT_ID, &fake)
        .call(&pay())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportKind::Connect,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn invalid_requests_are_never_sent() {
    let (fake, url) = start(vec![]).await;
    let err = client(&url, CLIENT_ID, &fake)
        .call(&TestPay {
            payment_request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("paymentRequestId"), "{err}");
    assert!(fake.seen.lock().unwrap().is_empty());
}

#[test]
fn bad_configuration_is_refused() {
    let key = Arc::new(PrivateKey::from_text(&fixture("vector_private_pkcs8.pem")).unwrap());
    let public = key.public_key();
    for url in [
        "ftp://x",
        "not a url",
        "http://host/path",
        "http://host?q=1",
    ] {
        let err = Client::builder(CLIENT_ID, key.clone(), public.clone())
            .base_url(url)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{url}");
    }
    assert!(
        Client::builder("", key.clone(), public.clone())
            .build()
            .is_err()
    );
    assert!(Client::builder(CLIENT_ID, key, public).build().is_ok());
}
