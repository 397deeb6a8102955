//! The server's operator surface as a hostile device or LAN peer sees it (issue 22,
//! item 9), with the real server binary on SQLite and on PostgreSQL:
//!
//! - `/metrics` and the back office `/admin/v1` answer only on the operator listener;
//!   the devices' public listener answers `404 not_found`, even to a valid operator key;
//! - devices enroll with per-device, single-use enrollment tokens issued by the
//!   operator API: a token used twice, revoked, expired or guessed is refused and
//!   changes nothing; of two devices racing with one token exactly one gets in;
//! - the removed shared provisioning token is a configuration error.

mod common;

use std::process::Command;

use common::*;
use serde_json::{Value, json};

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

/// Creates an operator key with the CLI (straight on the database); its full text.
fn make_key(world: &World, name: &str, scope: &str) -> String {
    let (code, out, err) = cli(
        world,
        &[
            "admin", "--json", "keys", "create", "--name", name, "--scope", scope,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["key"].as_str().unwrap().to_owned()
}

/// A plain HTTP call with an optional operator key: (status, JSON or text).
async fn call(
    world: &World,
    key: Option<&str>,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = world.http.request(method.parse().unwrap(), url);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

fn message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or_default()
}

/// `POST /v1/devices` from `device` with `token` (none: no `provisioningToken`).
async fn register_with(device: &Device, token: Option<&str>) -> (u16, Value) {
    let mut body =
        json!({"publicKey": device.key.public_key().to_base64(), "name": "TV", "model": "TV-1"});
    if let Some(t) = token {
        body["provisioningToken"] = json!(t);
    }
    device.send("POST", "/v1/devices", Some(body)).await
}

/// Whether the server knows `device` (a signed `GET /v1/devices/me`).
async fn registered(device: &Device) -> bool {
    let (status, v) = device.send("GET", "/v1/devices/me", None).await;
    match status {
        200 => true,
        401 if code(&v) == "unknown_device" => false,
        other => panic!("GET /v1/devices/me: {other} {v}"),
    }
}

/// Issues a token on the operator listener; (token text, token id).
async fn issue(world: &World, server: &ServerProc, key: &str, body: Value) -> (String, String) {
    let (status, v) = call(
        world,
        Some(key),
        "POST",
        &format!("{}/admin/v1/enrollment-tokens", server.admin),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    let id = v["tokenId"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&format!("sbe_{id}_")), "{v}");
    (token, id)
}

/// The listed token `id`.
async fn listed(world: &World, server: &ServerProc, key: &str, id: &str) -> Value {
    let (status, v) = call(
        world,
        Some(key),
        "GET",
        &format!("{}/admin/v1/enrollment-tokens", server.admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tokenId"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("token {id} is not listed: {v}"))
}

async fn operator_routes_only_on_the_operator_listener(backend: Backend) {
    let world = world(backend).await;
    let server = world.spawn_server(&[]);
    let admin = make_key(&world, "lead", "admin");
    assert_ne!(server.admin, server.base);
    assert!(
        server.admin.starts_with("http://127.0.0.1:"),
        "{}",
        server.admin
    );

    // The operator listener serves metrics and the back office, with its keys.
    let (status, m) = call(
        &world,
        None,
        "GET",
        &format!("{}/metrics", server.admin),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        m.as_str().unwrap_or_default().contains("scanbind_payments"),
        "{m}"
    );
    let whoami = format!("{}/admin/v1/keys/me", server.admin);
    let (status, v) = call(&world, Some(&admin), "GET", &whoami, None).await;
    assert_eq!((status, v["name"].as_str()), (200, Some("lead")), "{v}");
    let (status, v) = call(&world, None, "GET", &whoami, None).await;
    assert_eq!((status, code(&v)), (401, "unauthenticated"), "{v}");
    let (status, v) = call(
        &world,
        Some("sbk_0123456789abcdef_guess"),
        "GET",
        &whoami,
        None,
    )
    .await;
    assert_eq!((status, code(&v)), (401, "unauthenticated"), "{v}");

    // The public listener: 404 for every operator route, even with a valid admin key,
    // and nothing done.
    for (method, path, body) in [
        ("GET", "/metrics", None),
        ("GET", "/admin/v1/keys/me", None),
        ("GET", "/admin/v1/payments", None),
        ("GET", "/admin/v1/enrollment-tokens", None),
        (
            "POST",
            "/admin/v1/enrollment-tokens",
            Some(json!({"label": "sneaky"})),
        ),
        (
            "POST",
            "/admin/v1/bindings/bnd_0123456789abcdef01234567/revoke",
            Some(json!({"reason": "x"})),
        ),
    ] {
        for key in [None, Some(admin.as_str())] {
            let url = format!("{}{path}", server.base);
            let (status, v) = call(&world, key, method, &url, body.clone()).await;
            assert_eq!(
                (status, code(&v)),
                (404, "not_found"),
                "{method} {path}: {v}"
            );
        }
    }
    let (status, v) = call(
        &world,
        Some(&admin),
        "GET",
        &format!("{}/admin/v1/enrollment-tokens", server.admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["tokens"], json!([]), "the public listener issued a token");

    // And the operator listener serves no device API.
    let device = Device::new(&server.admin);
    let (status, _) = register_with(&device, None).await;
    assert_eq!(status, 404);
    // Health answers on both.
    for base in [&server.base, &server.admin] {
        let (status, _) = call(&world, None, "GET", &format!("{base}/healthz"), None).await;
        assert_eq!(status, 200);
    }
}

async fn enrollment_tokens_are_single_use(backend: Backend) {
    let world = world(backend).await;
    let server = world.spawn_server(&[("SCANBIND_SERVER_DEVICES_REGISTRATION", "token")]);
    let admin = make_key(&world, "lead", "admin");
    let read = make_key(&world, "auditor", "read");
    let tokens = format!("{}/admin/v1/enrollment-tokens", server.admin);

    // Only an admin key issues; the token is shown once and never listed.
    let (status, v) = call(&world, Some(&read), "POST", &tokens, Some(json!({}))).await;
    assert_eq!((status, code(&v)), (403, "forbidden"), "{v}");
    let (token, id) = issue(&world, &server, &admin, json!({"label": "Living room TV"})).await;
    let (status, list) = call(&world, Some(&read), "GET", &tokens, None).await;
    assert_eq!(status, 200);
    let secret = &token[format!("sbe_{id}_").len()..];
    assert!(!list.to_string().contains(secret), "a secret was listed");
    let t = listed(&world, &server, &read, &id).await;
    assert_eq!(
        (t["state"].as_str(), t["label"].as_str()),
        (Some("active"), Some("Living room TV"))
    );

    // No token, a guessed one (right id, wrong secret), made-up ones: refused, and the
    // real token is not worn by the guesses.
    let first = Device::new(&server.base);
    let guessed = format!("sbe_{id}_{}", "A".repeat(secret.len()));
    for attempt in [
        None,
        Some(guessed.as_str()),
        Some("sbe_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        Some("provisioning-token-0123456789"),
        Some(""),
    ] {
        let (status, v) = register_with(&first, attempt).await;
        assert_eq!(
            (status, code(&v)),
            (403, "registration_refused"),
            "{attempt:?}: {v}"
        );
        assert!(!message(&v).contains(secret), "{v}");
    }
    let (_, v) = register_with(&first, Some(&guessed)).await;
    assert!(message(&v).contains("not valid"), "{v}");
    assert!(!registered(&first).await);
    assert_eq!(listed(&world, &server, &read, &id).await["state"], "active");
    let (_, m) = call(
        &world,
        None,
        "GET",
        &format!("{}/metrics", server.admin),
        None,
    )
    .await;
    assert!(
        m.as_str()
            .unwrap_or_default()
            .contains("scanbind_device_enrollments_refused_total 6"),
        "{m}"
    );

    // The first device enrolls; registering again (a restart) still works.
    let (status, v) = register_with(&first, Some(&token)).await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = register_with(&first, Some(&token)).await;
    assert_eq!(status, 200, "{v}");
    assert!(registered(&first).await);
    let t = listed(&world, &server, &read, &id).await;
    assert_eq!(t["state"], "used");
    assert_eq!(t["usedBy"].as_str(), Some(first.key.device_id().as_str()));

    // A second device with the same token: refused, nothing changes.
    let second = Device::new(&server.base);
    let (status, v) = register_with(&second, Some(&token)).await;
    assert_eq!((status, code(&v)), (403, "registration_refused"), "{v}");
    assert!(message(&v).contains("already used"), "{v}");
    assert!(!registered(&second).await);
    assert_eq!(listed(&world, &server, &read, &id).await, t);
    assert!(registered(&first).await);

    // A revoked token: refused. Revoking is idempotent and needs the admin scope.
    let (revoked, revoked_id) = issue(&world, &server, &admin, json!({})).await;
    let one = format!("{tokens}/{revoked_id}");
    let (status, v) = call(&world, Some(&read), "DELETE", &one, None).await;
    assert_eq!((status, code(&v)), (403, "forbidden"), "{v}");
    let (status, v) = call(&world, Some(&admin), "DELETE", &one, None).await;
    assert_eq!((status, v["state"].as_str()), (200, Some("revoked")), "{v}");
    let at = v["revokedAt"].clone();
    let (status, v) = call(&world, Some(&admin), "DELETE", &one, None).await;
    assert_eq!((status, &v["revokedAt"]), (200, &at), "{v}");
    let third = Device::new(&server.base);
    let (status, v) = register_with(&third, Some(&revoked)).await;
    assert_eq!((status, code(&v)), (403, "registration_refused"), "{v}");
    assert!(message(&v).contains("revoked"), "{v}");
    assert!(!registered(&third).await);
    let (status, v) = call(
        &world,
        Some(&admin),
        "DELETE",
        &format!("{tokens}/0123456789abcdef"),
        None,
    )
    .await;
    assert_eq!((status, code(&v)), (404, "not_found"), "{v}");

    // An expired token (issued already expired): refused.
    let (expired, expired_id) = issue(
        &world,
        &server,
        &admin,
        json!({"label": "late", "expiresAt": "2000-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(
        listed(&world, &server, &read, &expired_id).await["state"],
        "expired"
    );
    let (status, v) = register_with(&third, Some(&expired)).await;
    assert_eq!((status, code(&v)), (403, "registration_refused"), "{v}");
    assert!(message(&v).contains("expired"), "{v}");
    assert!(!registered(&third).await);

    // Bad issue requests are typed refusals.
    for body in [
        json!({"expiresAt": "tomorrow"}),
        json!({"label": "x".repeat(65)}),
        json!({"label": "bell\u{7}"}),
        json!({"colour": "blue"}),
    ] {
        let (status, v) = call(&world, Some(&admin), "POST", &tokens, Some(body.clone())).await;
        assert_eq!((status, code(&v)), (400, "bad_request"), "{body}: {v}");
    }

    // The same from the terminal.
    let env = [("SCANBIND_ADMIN_KEY", admin.as_str())];
    let (status, out, err) = cli(
        &world,
        &[
            "admin",
            "--url",
            &server.admin,
            "enrollment-tokens",
            "issue",
            "--label",
            "Bedroom console",
        ],
        &env,
    );
    assert_eq!(status, 0, "{err}");
    let from_cli = out.trim().to_owned();
    assert!(from_cli.starts_with("sbe_"), "{out}");
    let fourth = Device::new(&server.base);
    let (status, v) = register_with(&fourth, Some(&from_cli)).await;
    assert_eq!(status, 201, "{v}");
    let (status, out, err) = cli(
        &world,
        &["admin", "--url", &server.admin, "enrollment-tokens", "list"],
        &env,
    );
    assert_eq!(status, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.contains("Bedroom console"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("used") && line.contains(&fourth.key.device_id()),
        "{line}"
    );
    assert!(
        !out.contains(&from_cli["sbe_0123456789abcdef_".len()..]),
        "a secret was listed: {out}"
    );
    // The CLI's default URL is the operator listener's default, not the public one.
    let (status, out, err) = cli(&world, &["admin", "--help"], &[]);
    assert_eq!(status, 0, "{err}");
    assert!(out.contains("http://127.0.0.1:8444"), "{out}");
}

async fn one_token_two_devices_at_once(backend: Backend) {
    let world = world(backend).await;
    let server = world.spawn_server(&[("SCANBIND_SERVER_DEVICES_REGISTRATION", "token")]);
    let admin = make_key(&world, "lead", "admin");
    for round in 0..5 {
        let (token, id) = issue(&world, &server, &admin, json!({})).await;
        let a = Device::new(&server.base);
        let b = Device::new(&server.base);
        let ((sa, va), (sb, vb)) = tokio::join!(
            register_with(&a, Some(&token)),
            register_with(&b, Some(&token))
        );
        let mut statuses = [sa, sb];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 403], "round {round}: {va} {vb}");
        let (winner, loser, refusal) = if sa == 201 {
            (&a, &b, &vb)
        } else {
            (&b, &a, &va)
        };
        assert_eq!(code(refusal), "registration_refused", "{refusal}");
        assert!(registered(winner).await);
        assert!(!registered(loser).await);
        let t = listed(&world, &server, &admin, &id).await;
        assert_eq!(t["usedBy"].as_str(), Some(winner.key.device_id().as_str()));
    }
}

macro_rules! on_both {
    ($($name:ident),*) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
    };
}

on_both!(
    operator_routes_only_on_the_operator_listener,
    enrollment_tokens_are_single_use,
    one_token_two_devices_at_once
);

/// The shared provisioning token of older versions is refused at start, naming the key
/// and its replacement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_provisioning_token_is_refused() {
    let world = world(Backend::Sqlite).await;
    let file = world.dir.path().join("provisioning.token");
    std::fs::write(&file, "provisioning-token-0123456789\n").unwrap();
    let err = world
        .try_spawn_server(
            &[
                ("SCANBIND_SERVER_DEVICES_REGISTRATION", "token"),
                (
                    "SCANBIND_SERVER_DEVICES_PROVISIONING_TOKEN",
                    file.to_str().unwrap(),
                ),
            ],
            "info",
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("devices.provisioning_token") && err.contains("enrollment token"),
        "{err}"
    );
}
