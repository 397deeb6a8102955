//! The back office end to end: the real server binary (operator API, `admin` CLI,
//! `reconcile`) against the in-process sandbox, on SQLite and on PostgreSQL.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use scanbind_device_api::types::Event;
use serde_json::{Value, json};

/// Registers a device and binds `wallet` through the sandbox phone.
async fn bound_device(
    world: &World,
    server: &ServerProc,
    wallet: &str,
) -> (Device, String, String) {
    let device = Device::new(&server.base);
    device.register().await;
    let mut events = device.events(None).await;
    let start = device
        .ok("POST", "/v1/bindings", Some(json!({ "wallet": wallet })))
        .await;
    let binding_id = start["bindingId"].as_str().unwrap().to_owned();
    world
        .scan(start["codeValue"].as_str().unwrap(), "approve")
        .await;
    loop {
        let ev = events.next().await;
        if let Event::BindingCompleted(b) = ev.event {
            assert_eq!(b.binding_id, binding_id);
            return (device, binding_id, b.sealed_tokens.unwrap());
        }
    }
}

async fn pay(
    device: &Device,
    binding: &str,
    sealed: &str,
    order: &str,
    currency: &str,
    value: i64,
) -> Value {
    device
        .ok(
            "POST",
            "/v1/payments",
            Some(json!({"appId": "org.example.Game", "appOrderId": order, "bindingId": binding,
                "sealedTokens": sealed, "amount": {"currency": currency, "value": value}, "description": "Coins"})),
        )
        .await
}

/// Runs the server binary with the world's configuration and `args`.
fn cli(world: &World, args: &[&str], extra_env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scanbind-server"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SCANBIND_SERVER_") || k.starts_with("SCANBIND_ADMIN") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(world.server_env())
        .envs(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .env("SCANBIND_LOG", "warn")
        .args(args);
    let out = cmd.output().expect("run scanbind-server");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Creates an operator key with the CLI (straight on the database).
fn make_key(world: &World, name: &str, scope: &str) -> (String, String) {
    let (code, out, err) = cli(
        world,
        &[
            "admin", "--json", "keys", "create", "--name", name, "--scope", scope,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let key = v["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sbk_"));
    (v["keyId"].as_str().unwrap().to_owned(), key)
}

struct Ops {
    http: reqwest::Client,
    base: String,
}

impl Ops {
    async fn send(
        &self,
        key: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut req = if method == "POST" {
            self.http.post(url)
        } else {
            self.http.get(url)
        };
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn ok(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.send(Some(key), method, path, body).await;
        assert_eq!(s, 200, "{method} {path}: {v}");
        v
    }

    async fn refused(
        &self,
        key: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String, String) {
        let (s, v) = self.send(Some(key), method, path, body).await;
        assert!(s >= 400, "{method} {path} should be refused: {v}");
        (
            s,
            v["error"]["code"].as_str().unwrap_or_default().to_owned(),
            v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    }
}

async fn ledger_payment(world: &World, prid: &str) -> Value {
    let l = world.ledger().await;
    l["payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["paymentRequestId"] == prid)
        .cloned()
        .unwrap()
}

async fn advance_clock(world: &World, seconds: u64) {
    let r = world
        .http
        .post(format!(
            "{}/sandbox/v1/clock/advance",
            world.sandbox.base_url()
        ))
        .json(&json!({ "seconds": seconds }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

async fn operator_api(backend: Backend) {
    let world = world(backend).await;
    let server = world.spawn_server(&[]);
    let ops = Ops {
        http: world.http.clone(),
        base: server.admin.clone(),
    };
    let (_, read) = make_key(&world, "auditor", "read");
    let (_, refund) = make_key(&world, "support", "refund");
    let (_, admin) = make_key(&world, "lead", "admin");
    let (gone_id, gone) = make_key(&world, "leaver", "admin");
    let (code, _, err) = cli(&world, &["admin", "keys", "revoke", &gone_id], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = cli(&world, &["admin", "--json", "keys", "list"], &[]);
    assert_eq!(code, 0);
    let keys: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 4);
    assert!(
        // The secret follows `sbk_<16 hex>_` (it may itself contain `_`).
        !out.contains(&refund["sbk_0123456789abcdef_".len()..]),
        "a secret was listed"
    );

    // Authentication and scopes.
    for k in [
        None,
        Some("sbk_0000000000000000_nope"),
        Some("garbage"),
        Some(gone.as_str()),
    ] {
        let (s, v) = ops.send(k, "GET", "/admin/v1/payments", None).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (401, Some("unauthenticated")),
            "{k:?}"
        );
    }
    let me = ops.ok(&read, "GET", "/admin/v1/keys/me", None).await;
    assert_eq!(me["scope"], "read");

    let (device, binding, sealed) = bound_device(&world, &server, "ALIPAY_HK").await;
    let p1 = pay(&device, &binding, &sealed, "o-1", "HKD", 1050).await;
    let p2 = pay(&device, &binding, &sealed, "o-2", "HKD", 2000).await;
    let failed = pay(&device, &binding, &sealed, "o-3", "HKD", 9905).await;
    assert_eq!(p1["status"], "succeeded");
    assert_eq!(failed["status"], "failed");
    let id1 = p1["paymentId"].as_str().unwrap();
    let id2 = p2["paymentId"].as_str().unwrap();
    let idf = failed["paymentId"].as_str().unwrap();
    let dev = device.key.device_id();

    // Search.
    let all = ops
        .ok(
            &read,
            "GET",
            &format!("/admin/v1/payments?deviceId={dev}"),
            None,
        )
        .await;
    assert_eq!(all["payments"].as_array().unwrap().len(), 3);
    let f = ops
        .ok(&read, "GET", "/admin/v1/payments?status=failed", None)
        .await;
    assert_eq!(f["payments"].as_array().unwrap().len(), 1);
    assert_eq!(f["payments"][0]["paymentId"], idf);
    let o = ops
        .ok(
            &read,
            "GET",
            "/admin/v1/payments?appId=org.example.Game&appOrderId=o-2",
            None,
        )
        .await;
    assert_eq!(o["payments"][0]["paymentId"], id2);
    let none = ops
        .ok(
            &read,
            "GET",
            "/admin/v1/payments?from=2099-01-01T00:00:00Z",
            None,
        )
        .await;
    assert!(none["payments"].as_array().unwrap().is_empty());
    let (s, c, _) = ops
        .refused(&read, "GET", "/admin/v1/payments?status=maybe", None)
        .await;
    assert_eq!((s, c.as_str()), (400, "bad_request"));
    let (s, c, _) = ops
        .refused(&read, "GET", "/admin/v1/payments?from=yesterday", None)
        .await;
    assert_eq!((s, c.as_str()), (400, "bad_request"));

    // One payment with its history: AMS steps, the notification, the device event.
    let shown = ops
        .ok(&read, "GET", &format!("/admin/v1/payments/{id1}"), None)
        .await;
    assert_eq!(shown["payment"]["refundable"]["value"], 1050);
    let sources: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["source"].as_str().unwrap())
        .collect();
    assert!(
        sources.contains(&"step") && sources.contains(&"event"),
        "{shown}"
    );
    eventually("the payment notification in the history", || async {
        let v = ops
            .ok(&read, "GET", &format!("/admin/v1/payments/{id1}"), None)
            .await;
        v["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["source"] == "notification")
    })
    .await;
    let (s, c, _) = ops
        .refused(&read, "GET", "/admin/v1/payments/pay_nope", None)
        .await;
    assert_eq!((s, c.as_str()), (404, "not_found"));

    // Refunds: scope, bad input (each named, nothing changed), then a partial refund.
    let r1 = json!({"refundId": "ops-r1", "amount": {"currency": "HKD", "value": 500}, "reason": "customer complaint"});
    let path1 = format!("/admin/v1/payments/{id1}/refunds");
    let (s, c, _) = ops.refused(&read, "POST", &path1, Some(r1.clone())).await;
    assert_eq!((s, c.as_str()), (403, "forbidden"));
    let before = ledger_payment(&world, p1["paymentRequestId"].as_str().unwrap()).await;
    let bad_inputs = [
        (
            json!({"refundId": "x1", "amount": {"currency": "HKD", "value": 1051}, "reason": "r"}),
            400,
            "amount_invalid",
            "refundable",
        ),
        (
            json!({"refundId": "x2", "amount": {"currency": "USD", "value": 100}, "reason": "r"}),
            400,
            "amount_invalid",
            "HKD",
        ),
        (
            json!({"refundId": "x3", "amount": {"currency": "HKD", "value": 0}, "reason": "r"}),
            400,
            "amount_invalid",
            "x3",
        ),
        (
            json!({"refundId": "x4", "amount": {"currency": "HKD", "value": 100}}),
            400,
            "bad_request",
            "reason",
        ),
        (
            json!({"refundId": "x5", "amount": {"currency": "HKD", "value": 100}, "reason": ""}),
            400,
            "bad_request",
            "reason",
        ),
    ];
    for (body, status, code, needle) in &bad_inputs {
        let (s, c, m) = ops
            .refused(&refund, "POST", &path1, Some(body.clone()))
            .await;
        assert_eq!((s, c.as_str()), (*status, *code), "{body}: {m}");
        assert!(m.contains(needle), "{body}: {m}");
    }
    let (s, c, m) = ops
        .refused(
            &refund,
            "POST",
            &format!("/admin/v1/payments/{idf}/refunds"),
            Some(json!({"refundId": "x6", "amount": {"currency": "HKD", "value": 100}, "reason": "r"})),
        )
        .await;
    assert_eq!((s, c.as_str()), (409, "invalid_state"));
    assert!(m.contains(idf) && m.contains("failed"), "{m}");
    let shown = ops
        .ok(&read, "GET", &format!("/admin/v1/payments/{id1}"), None)
        .await;
    assert!(
        shown["refunds"].as_array().unwrap().is_empty(),
        "a refused refund left a row"
    );
    assert_eq!(
        ledger_payment(&world, p1["paymentRequestId"].as_str().unwrap()).await["refunded"],
        before["refunded"]
    );

    let r = ops.ok(&refund, "POST", &path1, Some(r1.clone())).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["reason"], "customer complaint");
    let again = ops.ok(&refund, "POST", &path1, Some(r1.clone())).await;
    assert_eq!(again["refundRequestId"], r["refundRequestId"]);
    let mut other = r1.clone();
    other["amount"]["value"] = json!(400);
    let (s, c, _) = ops.refused(&refund, "POST", &path1, Some(other)).await;
    assert_eq!((s, c.as_str()), (409, "idempotency_conflict"));
    let l = world.ledger().await;
    let moved: Vec<&Value> = l["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["refundRequestId"] == r["refundRequestId"])
        .collect();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0]["moneyMovements"], 1);
    let shown = ops
        .ok(&read, "GET", &format!("/admin/v1/payments/{id1}"), None)
        .await;
    assert_eq!(shown["payment"]["refunded"]["value"], 500);
    assert_eq!(shown["payment"]["refundable"]["value"], 550);
    assert!(
        shown["history"].as_array().unwrap().iter().any(
            |h| h["source"] == "operator" && h["outcome"].as_str().unwrap().contains("support")
        ),
        "{shown}"
    );

    // Cancel within the window; a failed payment has nothing to cancel.
    let c2 = ops
        .ok(
            &refund,
            "POST",
            &format!("/admin/v1/payments/{id2}/cancel"),
            Some(json!({"reason": "duplicate order"})),
        )
        .await;
    assert_eq!(c2["status"], "cancelled");
    assert_eq!(
        ledger_payment(&world, p2["paymentRequestId"].as_str().unwrap()).await["reversals"],
        1
    );
    let (s, c, _) = ops
        .refused(
            &refund,
            "POST",
            &format!("/admin/v1/payments/{idf}/cancel"),
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!((s, c.as_str()), (409, "invalid_state"));

    // Revoke the binding: admin only; afterwards the device cannot pay from it.
    let rp = format!("/admin/v1/bindings/{binding}/revoke");
    let (s, c, _) = ops
        .refused(&refund, "POST", &rp, Some(json!({"reason": "fraud"})))
        .await;
    assert_eq!((s, c.as_str()), (403, "forbidden"));
    let b = ops
        .ok(&admin, "POST", &rp, Some(json!({"reason": "fraud"})))
        .await;
    assert_eq!(b["status"], "revoked");
    assert!(b.get("sealedTokens").is_none());
    let (s, v) = device
        .send(
            "POST",
            "/v1/payments",
            Some(json!({"appId": "org.example.Game", "appOrderId": "o-4", "bindingId": binding,
                "sealedTokens": sealed, "amount": {"currency": "HKD", "value": 100}, "description": "Coins"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("invalid_state")),
        "{v}"
    );

    // The same from the terminal.
    let env = [("SCANBIND_ADMIN_KEY", refund.as_str())];
    let (code, out, err) = cli(
        &world,
        &[
            "admin",
            "--url",
            &server.admin,
            "--json",
            "payments",
            "--device-id",
            &dev,
            "--status",
            "succeeded",
        ],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["payments"].as_array().unwrap().len(), 1);
    let (code, out, err) = cli(
        &world,
        &[
            "admin",
            "--url",
            &server.admin,
            "refund",
            id1,
            "--refund-id",
            "cli-1",
            "--amount",
            "2.50",
            "--reason",
            "goodwill",
        ],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("cli-1") && out.contains("succeeded") && out.contains("2.50 HKD"),
        "{out}"
    );
    let (code, _, err) = cli(
        &world,
        &[
            "admin",
            "--url",
            &server.admin,
            "refund",
            id1,
            "--refund-id",
            "cli-2",
            "--amount",
            "99.00",
            "--reason",
            "too much",
        ],
        &env,
    );
    assert_ne!(code, 0);
    assert!(err.contains("amount_invalid") && err.contains(id1), "{err}");
    let (code, out, err) = cli(
        &world,
        &["admin", "--url", &server.admin, "show", id1],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("refund ops-r1") && out.contains("refund cli-1"),
        "{out}"
    );
}

async fn windows_and_periods(backend: Backend) {
    let world = world(backend).await;
    let server = world.spawn_server(&[]);
    let ops = Ops {
        http: world.http.clone(),
        base: server.admin.clone(),
    };
    let (_, key) = make_key(&world, "support", "refund");
    let (device, binding, sealed) = bound_device(&world, &server, "ALIPAY_HK").await;
    let p = pay(&device, &binding, &sealed, "w-1", "HKD", 3000).await;
    let id = p["paymentId"].as_str().unwrap();
    let prid = p["paymentRequestId"].as_str().unwrap();

    // The server's own check: a payment whose record says it was paid 366 days ago is
    // refused before anything is written or sent. (Its history is moved back in the
    // database, since the server's clock cannot be.)
    let old = pay(&device, &binding, &sealed, "w-2", "HKD", 4000).await;
    let old_id = old["paymentId"].as_str().unwrap();
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&world.database_url).await.unwrap();
    sqlx::query("UPDATE steps SET at = at - $2 WHERE subject_id = $1")
        .bind(old_id)
        .bind(366_i64 * 86_400_000)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (s, c, m) = ops
        .refused(
            &key,
            "POST",
            &format!("/admin/v1/payments/{old_id}/refunds"),
            Some(json!({"refundId": "old-1", "amount": {"currency": "HKD", "value": 100}, "reason": "late"})),
        )
        .await;
    assert_eq!((s, c.as_str()), (409, "refund_period_exceeded"), "{m}");
    assert!(m.contains(old_id) && m.contains("365 days"), "{m}");
    let shown = ops
        .ok(&key, "GET", &format!("/admin/v1/payments/{old_id}"), None)
        .await;
    assert!(shown["refunds"].as_array().unwrap().is_empty(), "{shown}");
    let l = world.ledger().await;
    assert!(
        l["refunds"].as_array().unwrap().is_empty(),
        "nothing reached Alipay: {l}"
    );

    // Two days later the cancel window is over: the error says to refund.
    advance_clock(&world, 2 * 86_400).await;
    let (s, c, m) = ops
        .refused(
            &key,
            "POST",
            &format!("/admin/v1/payments/{id}/cancel"),
            Some(json!({"reason": "late"})),
        )
        .await;
    assert_eq!((s, c.as_str()), (409, "cancel_window_exceeded"));
    assert!(m.contains("refund") && m.contains(id), "{m}");
    assert_eq!(ledger_payment(&world, prid).await["status"], "SUCCESS");

    // A year later the wallet's refund period is over.
    advance_clock(&world, 366 * 86_400).await;
    let (s, c, m) = ops
        .refused(
            &key,
            "POST",
            &format!("/admin/v1/payments/{id}/refunds"),
            Some(json!({"refundId": "late-1", "amount": {"currency": "HKD", "value": 100}, "reason": "late"})),
        )
        .await;
    assert_eq!((s, c.as_str()), (409, "refund_period_exceeded"), "{m}");
    assert!(m.contains(id) && m.contains("late-1"), "{m}");
    let lp = ledger_payment(&world, prid).await;
    assert_eq!(lp["refunded"]["value"], "0");
    let shown = ops
        .ok(&key, "GET", &format!("/admin/v1/payments/{id}"), None)
        .await;
    assert_eq!(shown["payment"]["refunded"]["value"], 0);
}

async fn customs_declarations(backend: Backend) {
    let world = world(backend).await;
    let server = world.spawn_server(&[]);
    let ops = Ops {
        http: world.http.clone(),
        base: server.admin.clone(),
    };
    let (_, key) = make_key(&world, "customs desk", "refund");
    let (_, read) = make_key(&world, "auditor", "read");
    let (device, binding, sealed) = bound_device(&world, &server, "ALIPAY_CN").await;
    let p = pay(&device, &binding, &sealed, "cb-1", "CNY", 10_000).await;
    assert_eq!(p["status"], "succeeded", "{p}");
    let id = p["paymentId"].as_str().unwrap();
    let path = format!("/admin/v1/payments/{id}/declarations");
    let decl = |rid: &str, code: &str, value: i64, sub: Option<&str>| {
        let mut b = json!({"declarationRequestId": rid, "customsCode": code, "merchantCustomsCode": "31222699S7",
            "merchantCustomsName": "Example Trading", "amount": {"currency": "CNY", "value": value}});
        if let Some(s) = sub {
            b["subOrderId"] = json!(s);
        }
        b
    };

    let (s, c, _) = ops
        .refused(
            &read,
            "POST",
            &path,
            Some(decl("d-a", "SHANGHAI_CBT", 6_000, Some("sub-a"))),
        )
        .await;
    assert_eq!((s, c.as_str()), (403, "forbidden"));
    let a = ops
        .ok(
            &key,
            "POST",
            &path,
            Some(decl("d-a", "SHANGHAI_CBT", 6_000, Some("sub-a"))),
        )
        .await;
    assert_eq!(a["status"], "processing", "{a}");
    assert!(a["customsPaymentId"].is_string());
    let again = ops
        .ok(
            &key,
            "POST",
            &path,
            Some(decl("d-a", "SHANGHAI_CBT", 6_000, Some("sub-a"))),
        )
        .await;
    assert_eq!(again["customsPaymentId"], a["customsPaymentId"]);
    let (s, c, _) = ops
        .refused(
            &key,
            "POST",
            &path,
            Some(decl("d-a", "SHANGHAI_CBT", 5_000, Some("sub-a"))),
        )
        .await;
    assert_eq!((s, c.as_str()), (409, "idempotency_conflict"));

    // Bad input: each refused, named, and nothing stored.
    let (s, c, m) = ops
        .refused(
            &key,
            "POST",
            &path,
            Some(decl("d-b", "ATLANTIS", 1_000, Some("sub-b"))),
        )
        .await;
    assert_eq!((s, c.as_str()), (400, "customs_invalid"));
    assert!(m.contains("ATLANTIS") && m.contains("d-b"), "{m}");
    // Hangzhou declares through ZONGSHU: its own code is not one Alipay lists.
    let (s, c, m) = ops
        .refused(
            &key,
            "POST",
            &path,
            Some(decl("d-b", "HANGZHOU", 1_000, Some("sub-b"))),
        )
        .await;
    assert_eq!((s, c.as_str()), (400, "customs_invalid"));
    assert!(m.contains("ZONGSHU"), "{m}");
    let (s, c, m) = ops
        .refused(
            &key,
            "POST",
            &path,
            Some(decl("d-c", "ZONGSHU", 4_001, Some("sub-c"))),
        )
        .await;
    assert_eq!((s, c.as_str()), (400, "amount_invalid"));
    assert!(m.contains("d-c") && m.contains(id), "{m}");
    let mut usd = decl("d-d", "ZONGSHU", 100, None);
    usd["amount"]["currency"] = json!("USD");
    let (s, c, _) = ops.refused(&key, "POST", &path, Some(usd)).await;
    assert_eq!((s, c.as_str()), (400, "amount_invalid"));
    let shown = ops
        .ok(&read, "GET", &format!("/admin/v1/payments/{id}"), None)
        .await;
    assert_eq!(
        shown["declarations"].as_array().unwrap().len(),
        1,
        "{shown}"
    );

    // The rest of the payment as a second sub-order; a third, to an office that does not
    // know the merchant, will fail at customs.
    let b = ops
        .ok(
            &key,
            "POST",
            &path,
            Some(decl("d-e", "ZONGSHU", 3_000, Some("sub-e"))),
        )
        .await;
    assert_eq!(b["status"], "processing");
    let mut unreg = decl("d-u", "NINGBO", 1_000, Some("sub-u"));
    unreg["merchantCustomsCode"] = json!("UNREG-1");
    assert_eq!(
        ops.ok(&key, "POST", &path, Some(unreg)).await["status"],
        "processing"
    );

    // Inquiry: up to 10 ids; unknown ones are listed.
    let q = ops
        .ok(
            &read,
            "GET",
            "/admin/v1/declarations?ids=d-a,d-e,d-zzz",
            None,
        )
        .await;
    assert_eq!(q["declarations"].as_array().unwrap().len(), 2, "{q}");
    assert_eq!(q["declarations"][0]["status"], "processing");
    assert_eq!(q["notFound"], json!(["d-zzz"]));
    let eleven: Vec<String> = (0..11).map(|i| format!("d{i}")).collect();
    let (s, c, _) = ops
        .refused(
            &read,
            "GET",
            &format!("/admin/v1/declarations?ids={}", eleven.join(",")),
            None,
        )
        .await;
    assert_eq!((s, c.as_str()), (400, "bad_request"));

    // A payment in another currency is not declared (paid before the sandbox clock moves:
    // a pay whose expiry is already past on the sandbox clock is refused).
    let (hk_device, hk_binding, hk_sealed) = bound_device(&world, &server, "ALIPAY_HK").await;
    let hk = pay(&hk_device, &hk_binding, &hk_sealed, "cb-2", "HKD", 500).await;
    let (s, c, m) = ops
        .refused(
            &key,
            "POST",
            &format!(
                "/admin/v1/payments/{}/declarations",
                hk["paymentId"].as_str().unwrap()
            ),
            Some(decl("d-f", "ZONGSHU", 100, None)),
        )
        .await;
    assert_eq!((s, c.as_str()), (409, "invalid_state"));
    assert!(m.contains("HKD"), "{m}");

    // Customs answers after a minute on the sandbox clock; the result is stored.
    advance_clock(&world, 61).await;
    let q = ops
        .ok(&read, "GET", "/admin/v1/declarations?ids=d-a,d-e,d-u", None)
        .await;
    let states: Vec<(&str, &str, &str)> = q["declarations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["declarationRequestId"].as_str().unwrap(),
                d["status"].as_str().unwrap(),
                d["resultCode"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("d-a", "succeeded", "SUCCESS"),
            ("d-e", "succeeded", "SUCCESS"),
            ("d-u", "failed", "MERCHANT_NOT_REGISTERED")
        ],
        "{q}"
    );
    let shown = ops
        .ok(&read, "GET", &format!("/admin/v1/payments/{id}"), None)
        .await;
    assert_eq!(shown["declarations"].as_array().unwrap().len(), 3);
    // The failed declaration's amount can be declared again, and no more.
    let (s, c, _) = ops
        .refused(
            &key,
            "POST",
            &path,
            Some(decl("d-v", "NINGBO", 1_001, Some("sub-u"))),
        )
        .await;
    assert_eq!((s, c.as_str()), (400, "amount_invalid"));
    let v = ops
        .ok(
            &key,
            "POST",
            &path,
            Some(decl("d-v", "NINGBO", 1_000, Some("sub-u"))),
        )
        .await;
    assert_eq!(v["status"], "processing");

    // From the terminal.
    let env = [("SCANBIND_ADMIN_KEY", read.as_str())];
    let (code, out, err) = cli(
        &world,
        &[
            "admin",
            "--url",
            &server.admin,
            "declarations",
            "d-a",
            "d-nope",
        ],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("declaration d-a") && out.contains("not found: d-nope"),
        "{out}"
    );
}

fn today_utc() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// Fetches the sandbox's reports of `date` into `dir`.
async fn fetch_reports(world: &World, date: &str, dir: &Path) -> Vec<String> {
    let v: Value = world
        .http
        .get(format!(
            "{}/sandbox/v1/reports?date={date}",
            world.sandbox.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let mut names = Vec::new();
    for f in v["files"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        std::fs::write(dir.join(name), f["content"].as_str().unwrap()).unwrap();
        names.push(name.to_owned());
    }
    names
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn edit(path: &Path, f: impl FnOnce(&mut Vec<String>)) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    f(&mut lines);
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// A report as its header and rows (its `<END>` line checked and put back on save).
struct Report {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Report {
    fn col(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header))
    }

    /// The row of `kind` for `request_id`.
    fn row(&mut self, kind: &str, request_id: &str) -> &mut Vec<String> {
        let (t, r) = (
            self.col("transactionType"),
            self.col("transactionRequestId"),
        );
        self.rows
            .iter_mut()
            .find(|x| x[t] == kind && x[r] == request_id)
            .unwrap_or_else(|| panic!("no {kind} {request_id}"))
    }
}

/// Edits a report by column name.
fn edit_report(path: &Path, f: impl FnOnce(&mut Report)) {
    let text = std::fs::read_to_string(path).unwrap();
    let body = text
        .strip_suffix("<END>\n")
        .unwrap_or_else(|| panic!("{} does not end with <END>", path.display()));
    let mut rdr = csv::ReaderBuilder::new().from_reader(body.as_bytes());
    let header = rdr.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = rdr
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    let mut report = Report { header, rows };
    f(&mut report);
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(&report.header).unwrap();
    for r in &report.rows {
        w.write_record(r).unwrap();
    }
    let mut out = String::from_utf8(w.into_inner().unwrap()).unwrap();
    out.push_str("<END>\n");
    std::fs::write(path, out).unwrap();
}

fn reconcile(world: &World, date: &str, dir: &Path) -> (i32, Value, String) {
    let (code, out, err) = cli(
        world,
        &[
            "reconcile",
            "--date",
            date,
            "--reports",
            dir.to_str().unwrap(),
            "--fee-bps",
            "180",
            "--json",
        ],
        &[],
    );
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
}

fn has(diffs: &Value, kind: &str, record: &str) -> bool {
    diffs["differences"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["kind"] == kind && d["record"].as_str().unwrap().contains(record))
}

/// A day of traffic in two currencies (payments, partial refunds, a cancel, a failure)
/// reconciles with zero differences; then every injected difference is reported, and
/// malformed reports are refused naming the file and line.
async fn reconcile_a_day(backend: Backend) {
    let world = world(backend).await;
    let server = world.spawn_server(&[]);
    let ops = Ops {
        http: world.http.clone(),
        base: server.admin.clone(),
    };
    let (_, key) = make_key(&world, "support", "refund");
    let date = today_utc();
    let (hk, hb, hs) = bound_device(&world, &server, "ALIPAY_HK").await;
    let (cn, cb, cs) = bound_device(&world, &server, "ALIPAY_CN").await;
    let mut ids = Vec::new();
    for (i, v) in [1050_i64, 2500, 999, 12_345].iter().enumerate() {
        let p = pay(&hk, &hb, &hs, &format!("day-hk-{i}"), "HKD", *v).await;
        assert_eq!(p["status"], "succeeded");
        ids.push(p);
    }
    let failed = pay(&hk, &hb, &hs, "day-hk-fail", "HKD", 9906).await;
    assert_eq!(failed["status"], "failed");
    let c1 = pay(&cn, &cb, &cs, "day-cn-0", "CNY", 8_800).await;
    let c2 = pay(&cn, &cb, &cs, "day-cn-1", "CNY", 100).await;
    for (p, rid, v) in [
        (&ids[0], "d-r1", 50),
        (&ids[3], "d-r2", 345),
        (&c1, "d-r3", 800),
    ] {
        let r = ops
            .ok(
                &key,
                "POST",
                &format!("/admin/v1/payments/{}/refunds", p["paymentId"].as_str().unwrap()),
                Some(json!({"refundId": rid, "amount": {"currency": p["amount"]["currency"], "value": v}, "reason": "demo"})),
            )
            .await;
        assert_eq!(r["status"], "succeeded");
    }
    // A cancel after a partial refund reverses the rest.
    ops.ok(
        &key,
        "POST",
        &format!("/admin/v1/payments/{}/refunds", ids[1]["paymentId"].as_str().unwrap()),
        Some(json!({"refundId": "d-r4", "amount": {"currency": "HKD", "value": 500}, "reason": "demo"})),
    )
    .await;
    let c = ops
        .ok(
            &key,
            "POST",
            &format!(
                "/admin/v1/payments/{}/cancel",
                ids[1]["paymentId"].as_str().unwrap()
            ),
            Some(json!({"reason": "demo"})),
        )
        .await;
    assert_eq!(c["status"], "cancelled");
    let _ = c2;

    let base = world.dir.path().join("reports");
    let names = fetch_reports(&world, &date, &base).await;
    assert_eq!(names.len(), 6, "{names:?}");
    let (code, out, err) = reconcile(&world, &date, &base);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out["differences"].as_array().unwrap().is_empty(), "{out}");
    // 6 payments, 4 refunds, 1 cancel.
    assert_eq!(out["reportTransactions"], 11, "{out}");
    assert_eq!(out["serverRecords"], 11);
    assert_eq!(out["currencies"], json!(["CNY", "HKD"]));
    // Text form too.
    let (code, text, _) = cli(
        &world,
        &[
            "reconcile",
            "--date",
            &date,
            "--reports",
            base.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0);
    assert!(text.contains("0 difference(s)"), "{text}");

    // Inject differences, each of a kind.
    let day = date.replace('-', "");
    let hkd_tx = |d: &Path| d.join(format!("transactionDetails_HKD_{day}.csv"));
    let hkd_st = |d: &Path| d.join(format!("settlementDetails_HKD_{day}.csv"));
    let hkd_sum = |d: &Path| d.join(format!("settlementSummary_HKD_{day}.csv"));
    let cny_tx = |d: &Path| d.join(format!("transactionDetails_CNY_{day}.csv"));
    let diff_dir = world.dir.path().join("diff");
    copy_dir(&base, &diff_dir);
    let p0 = ids[0]["paymentRequestId"].as_str().unwrap().to_owned();
    let p2 = ids[2]["paymentRequestId"].as_str().unwrap().to_owned();
    let fail_prid = failed["paymentRequestId"].as_str().unwrap().to_owned();
    let cny0 = c1["paymentRequestId"].as_str().unwrap().to_owned();
    // (a) Alipay does not list a payment the server has (CNY payment removed everywhere).
    edit_report(&cny_tx(&diff_dir), |r| {
        let (t, q) = (r.col("transactionType"), r.col("transactionRequestId"));
        r.rows.retain(|x| !(x[t] == "PAYMENT" && x[q] == cny0));
    });
    // (b) Alipay lists a payment the server never saw; (c) an amount differs;
    // (d) Alipay says the server's failed payment succeeded.
    edit_report(&hkd_tx(&diff_dir), |r| {
        let (id, q, v) = (
            r.col("transactionId"),
            r.col("transactionRequestId"),
            r.col("transactionAmountValue"),
        );
        let template = r.row("PAYMENT", &p2).clone();
        for (tid, rid, value) in [
            ("2099PHANTOM", "sbp_phantom", "1.00"),
            ("2099FAILED", fail_prid.as_str(), "99.06"),
        ] {
            let mut x = template.clone();
            x[id] = tid.into();
            x[q] = rid.into();
            x[v] = value.into();
            r.rows.push(x);
        }
        assert_eq!(r.row("PAYMENT", &p2)[v], "9.99");
        r.row("PAYMENT", &p2)[v] = "9.98".into();
    });
    // (e) a fee that is not the contracted rate (net kept consistent); (f) a summary fee
    // total that does not add up.
    edit_report(&hkd_st(&diff_dir), |r| {
        let (fee, net) = (
            r.col("paymentMethodFeeAmountValue"),
            r.col("settlementAmountValue"),
        );
        let row = r.row("PAYMENT", &p0);
        // 10.50 at 180 bps is 0.19; claim 0.25.
        assert_eq!((row[fee].as_str(), row[net].as_str()), ("-0.19", "10.31"));
        row[fee] = "-0.25".into();
        row[net] = "10.25".into();
    });
    edit_report(&hkd_sum(&diff_dir), |r| {
        let (t, fee) = (r.col("summaryType"), r.col("paymentMethodFeeAmountValue"));
        let row = r.rows.iter_mut().find(|x| x[t] == "TOTAL").unwrap();
        row[fee] = "0.01".into();
    });
    let (code, out, err) = reconcile(&world, &date, &diff_dir);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(has(&out, "missing_in_report", &cny0), "{out}");
    assert!(has(&out, "missing_on_server", "sbp_phantom"), "{out}");
    assert!(has(&out, "amount_mismatch", &p2), "{out}");
    assert!(has(&out, "status_mismatch", &fail_prid), "{out}");
    assert!(has(&out, "fee_mismatch", &p0), "{out}");
    assert!(
        has(&out, "fee_total_mismatch", "summary HKD TOTAL batch "),
        "{out}"
    );
    assert!(has(&out, "settlement_mismatch", "sbp_phantom"), "{out}");

    // Malformed reports: refused, naming the file and the line.
    let cases: Vec<(&str, Breakage<'_>, &str)> = vec![
        (
            "missing column",
            Box::new(|d: &Path| {
                edit_report(&hkd_tx(d), |r| {
                    let c = r.col("transactionAmountValue");
                    r.header[c] = "amount".into();
                })
            }),
            "transactionDetails_HKD_DAY.csv line 1: missing column transactionAmountValue",
        ),
        (
            "bad number",
            Box::new(|d: &Path| {
                edit_report(&hkd_st(d), |r| {
                    let c = r.col("transactionAmountValue");
                    r.rows[0][c] = "1O.00".into();
                })
            }),
            "settlementDetails_HKD_DAY.csv line 2: column transactionAmountValue: \"1O.00\" is not an amount in HKD",
        ),
        (
            "duplicate row",
            Box::new(|d: &Path| {
                edit_report(&hkd_tx(d), |r| {
                    let dup = r.rows[0].clone();
                    r.rows.push(dup);
                })
            }),
            "duplicate row",
        ),
        (
            "bad count",
            Box::new(|d: &Path| {
                edit_report(&hkd_sum(d), |r| {
                    let c = r.col("count");
                    r.rows[0][c] = "many".into();
                })
            }),
            "settlementSummary_HKD_DAY.csv line 2: column count: \"many\" is not a count",
        ),
        (
            "missing file",
            Box::new(|d: &Path| std::fs::remove_file(hkd_sum(d)).unwrap()),
            "missing",
        ),
        (
            "truncated: the <END> line is missing",
            Box::new(|d: &Path| {
                edit(&hkd_st(d), |l| {
                    assert_eq!(l.pop().as_deref(), Some("<END>"));
                })
            }),
            "settlementDetails_HKD_DAY.csv line 9: truncated: the last line is not <END>",
        ),
        (
            "truncated: cut in a row",
            Box::new(|d: &Path| {
                let text = std::fs::read_to_string(hkd_tx(d)).unwrap();
                std::fs::write(hkd_tx(d), &text[..text.len() - 40]).unwrap();
            }),
            "transactionDetails_HKD_DAY.csv line 9: truncated: the last line is not <END>",
        ),
    ];
    for (i, (what, f, needle)) in cases.iter().enumerate() {
        let d = world.dir.path().join(format!("bad-{i}"));
        copy_dir(&base, &d);
        f(&d);
        let (code, out, err) = reconcile(&world, &date, &d);
        assert_eq!(code, 2, "{what}: {err}");
        // Nothing is compared: no outcome is printed.
        assert_eq!(out, Value::Null, "{what}");
        let needle = needle.replace("DAY", &day);
        assert!(err.contains(&needle), "{what}: wanted {needle:?} in {err}");
    }
}

/// Breaks a copy of the reports in some way.
type Breakage<'a> = Box<dyn Fn(&Path) + 'a>;

macro_rules! on_both {
    ($($name:ident),*) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
    };
}

on_both!(
    operator_api,
    windows_and_periods,
    customs_declarations,
    reconcile_a_day
);

/// Round trip: whatever the sandbox writes, the reconciler's reader parses back to the
/// same transactions, fees and totals. Many days of generated traffic (several merchants,
/// currencies with 0 and 2 decimals, payments, partial refunds, cancels).
#[test]
fn sandbox_reports_parse_back() {
    use scanbind_sandbox::reports as s;
    use scanbind_sandbox::state::{PayState, Payment, Product, Refund, State};
    use scanbind_server::reconcile::{ParsedReport, ReportKind, parse_report};
    let day = s::parse_date("2026-12-07").unwrap();
    let t0 = time::OffsetDateTime::new_utc(day, time::Time::MIDNIGHT).unix_timestamp();
    // A small deterministic generator (no dependency): the same cases every run.
    let mut seed: u64 = 0x5eed_2026_1207;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    for case in 0..40 {
        let mut state = State::default();
        let mut want: Vec<(String, &str, String, i64)> = Vec::new();
        for i in 0..1 + next(8) {
            let currency = ["HKD", "KRW", "IDR", "PHP"][next(4) as usize];
            let client = format!("client-{}", next(3));
            let amount = i64::try_from(1 + next(5_000_000)).unwrap() * 100;
            let pid = format!("sbp_{case}_{i}");
            let prid = format!("pay-{case}-{i}");
            let paid = t0 + i64::try_from(next(80_000)).unwrap();
            let mut refunded = 0;
            if next(2) == 0 {
                let r = amount / 3;
                refunded = r;
                state.refunds.insert(
                    format!("sbr_{case}_{i}"),
                    Refund {
                        refund_id: format!("sbr_{case}_{i}"),
                        refund_request_id: format!("ref-{case}-{i}"),
                        client_id: client.clone(),
                        payment_id: pid.clone(),
                        currency: currency.into(),
                        amount: r,
                        status: "SUCCESS".into(),
                        created: paid + 10,
                        finished: None,
                        pending: None,
                        fail_code: None,
                        notify_url: None,
                        money_movements: 1,
                        response: String::new(),
                        actual: None,
                    },
                );
                want.push((client.clone(), "REFUND", format!("ref-{case}-{i}"), -r));
            }
            let cancelled = next(4) == 0;
            if cancelled {
                want.push((client.clone(), "CANCEL", prid.clone(), -(amount - refunded)));
            }
            want.push((client.clone(), "PAYMENT", prid.clone(), amount));
            state.payments.insert(
                pid.clone(),
                Payment {
                    payment_id: pid,
                    payment_request_id: prid,
                    client_id: client,
                    product: Product::AgreementPayment,
                    currency: currency.into(),
                    amount,
                    status: if cancelled {
                        PayState::Cancelled
                    } else {
                        PayState::Success
                    },
                    fail_code: None,
                    fail_message: None,
                    user: Some("u".into()),
                    wallet: Some("ALIPAY_HK".into()),
                    payment_method_id: None,
                    description: "Coins, \"gems\"".into(),
                    reference_order_id: format!("ord-{i}"),
                    merchant_name: "Shop".into(),
                    reference_merchant_id: None,
                    notify_url: None,
                    created: paid - 5,
                    paid: Some(paid),
                    expires: paid + 60,
                    cancelled: cancelled.then_some(paid + 20),
                    refunded,
                    money_movements: 1,
                    reversals: u32::from(cancelled),
                    order_code: None,
                    pending: None,
                    inquiries: 0,
                    notified: true,
                    actual: None,
                    actual_refunded: 0,
                },
            );
        }
        let files = s::generate(&state, None, day, s::FEE_BPS);
        let mut got = Vec::new();
        for f in &files {
            let kind = ReportKind::ALL
                .into_iter()
                .find(|k| f.name.starts_with(k.prefix()))
                .unwrap();
            let header = f.content.lines().next().unwrap();
            assert_eq!(header, kind.columns().join(","), "{}", f.name);
            assert!(f.content.ends_with("\n<END>\n"), "{}", f.name);
            match parse_report(kind, &f.name, f.content.as_bytes())
                .unwrap_or_else(|e| panic!("case {case}: {e}\n{}", f.content))
            {
                ParsedReport::Transactions(rows) => {
                    for r in rows {
                        let gross = r.settlement_amount.unwrap() - r.fee;
                        assert_eq!(gross, r.amount, "{}: {r:?}", f.name);
                        assert_eq!(r.fee, -s::fee_for(r.amount, s::FEE_BPS), "{r:?}");
                        if kind == ReportKind::TransactionDetails {
                            assert_eq!(r.status, "SUCCESS");
                            got.push((r.customer_id, r.kind, r.request_id, r.amount));
                        }
                    }
                }
                ParsedReport::Summary(rows) => {
                    let totals: Vec<_> =
                        rows.iter().filter(|r| r.summary_type == "TOTAL").collect();
                    let batches: std::collections::BTreeSet<_> =
                        rows.iter().map(|r| &r.settlement_batch_id).collect();
                    assert_eq!(totals.len(), batches.len(), "one TOTAL per batch");
                    for t in totals {
                        let parts: Vec<_> = rows
                            .iter()
                            .filter(|r| {
                                r.settlement_batch_id == t.settlement_batch_id
                                    && r.summary_type != "TOTAL"
                            })
                            .collect();
                        assert_eq!(t.count, parts.iter().map(|r| r.count).sum::<u64>());
                        assert_eq!(t.amount, parts.iter().map(|r| r.amount).sum::<i64>());
                        assert_eq!(t.fee, parts.iter().map(|r| r.fee).sum::<i64>());
                    }
                }
            }
        }
        let mut want: Vec<_> = want
            .into_iter()
            .map(|(c, k, r, a)| (c, k.to_owned(), r, a))
            .collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "case {case}");
    }
}
