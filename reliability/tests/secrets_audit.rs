//! Issue 10 §4, the secrets audit: the whole flow (bind, token refresh, pay, refund,
//! unbind, bind again, the user unbinds in the wallet) through the sandbox, the
//! `scanbind-server` binary on SQLite and the `scanbindd` binary, both at `trace` log
//! level; then every log, the daemon's journal, the server database (with its WAL),
//! config and key files, and the keyring's files are scanned for every access token,
//! refresh token and authCode the wallet issued (from the sandbox's state file), every
//! private key (merchant, receipt, sealing), the device's enrollment token (the server
//! runs with token registration) and every request, response and notification
//! signature that went over the wire (recorded by proxies between the processes).
//! Expected: 0 hits.
//!
//! Needs `KEYRING_SS_TEST=1` (run through `scripts/test`).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt as _;

use common::{
    PrivateBus, bind, connect, eventually, require_secret_service, settle, spawn_daemon_logged,
};
use scanbind_ipc::Daemon1Proxy;
use scanbind_reliability::secrets::{self, Needles};
use scanbind_reliability::tee::{Tee, addr_of};
use scanbind_reliability::world::{self, World};

#[tokio::test(flavor = "multi_thread")]
async fn no_token_key_or_signature_is_written_anywhere() {
    require_secret_service();
    let mut world = World::new(
        world::options()
            // Short-lived access tokens: the daemon refreshes, so refresh tokens travel too.
            .access_ttl(Some(Duration::from_secs(4)))
            .sandbox_state_file(true),
    )
    .await;
    // Recording proxies on every hop: server → AMS, AMS → server (notifications),
    // daemon → server (device requests and the event stream).
    let ams = Tee::start(Some(addr_of(world.sandbox.base_url())))
        .await
        .unwrap();
    world.set_ams_base_url(ams.url());
    let notify = Tee::start(None).await.unwrap();
    let server = world.spawn_server_logged(
        &[
            ("SCANBIND_SERVER_SERVER_PUBLIC_BASE_URL", &notify.url()),
            ("SCANBIND_SERVER_DEVICES_REGISTRATION", "token"),
        ],
        "trace",
    );
    notify.set_target(Some(addr_of(&server.base)));
    let device = Tee::start(Some(addr_of(&server.base))).await.unwrap();
    // The device's enrollment token, given to the daemon as a systemd credential, in a
    // directory of its own outside the scanned ones (its one legitimate home).
    let enrollment = world
        .enrollment_token(&server, "secrets audit")
        .await
        .unwrap();
    let credentials = tempfile::tempdir().unwrap();
    std::fs::write(credentials.path().join("provisioning-token"), &enrollment).unwrap();
    let credentials_dir = credentials.path().to_str().unwrap().to_owned();

    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let daemon = spawn_daemon_logged(
        bus.address(),
        &device.url(),
        state.path(),
        &[("CREDENTIALS_DIRECTORY", &credentials_dir)],
        "trace",
    );
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();

    // The flow.
    let path = bind(&world, &conn, &d).await;
    eventually("a token refresh", || async {
        daemon.logs().contains("tokens refreshed")
    })
    .await;
    let p = d
        .pay("audit-1", 4900, "HKD", "Coins", HashMap::new())
        .await
        .unwrap();
    let (payment, st) = settle(&conn, &p).await;
    assert_eq!(st, "succeeded", "{}", daemon.logs());
    let (_, refund) = payment
        .request_refund(1000, "one returned", HashMap::new())
        .await
        .unwrap();
    assert_eq!(refund, "succeeded");
    let mut removed = d.receive_binding_removed().await.unwrap();
    common::unbind_approved(&bus, &d, &path).await;
    let first = tokio::time::timeout(common::GUARD, removed.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.args().unwrap().reason, "unbound");
    bind(&world, &conn, &d).await;
    let user = "alipay_hk_user";
    assert!(world.unbind_in_wallet(user).await >= 1);
    let second = tokio::time::timeout(common::GUARD, removed.next())
        .await
        .expect("no BindingRemoved after the wallet unbound")
        .unwrap();
    assert_eq!(
        second.args().unwrap().reason,
        "token-canceled",
        "{}",
        daemon.logs()
    );
    drop(daemon);
    drop(server);

    // The secrets: every token and authCode the wallet issued.
    let sandbox_state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(world.sandbox_state_file()).unwrap()).unwrap();
    let mut needles = Needles::default();
    let tokens = sandbox_state["tokens"]
        .as_object()
        .expect("tokens in the state file");
    for (token, t) in tokens {
        let kind = match t["kind"].as_str() {
            Some("ACCESS") => "access-token",
            _ => "refresh-token",
        };
        needles.text(kind, &format!("{kind} {}…", &token[..6]), token);
    }
    for code in sandbox_state["authCodes"].as_object().into_iter().flatten() {
        needles.text("auth-code", &format!("authCode {}…", &code.0[..6]), code.0);
    }
    let (access, refresh) = (
        needles.count("access-token"),
        needles.count("refresh-token"),
    );
    assert!(
        access >= 3 && refresh >= 3,
        "{access} access, {refresh} refresh tokens"
    );

    needles.text(
        "enrollment-token",
        "the device's enrollment token",
        &enrollment,
    );

    // The keys, each allowed in its own file only.
    let dir = world.dir.path().to_owned();
    for (label, file) in [
        ("merchant key", "merchant.pem"),
        ("receipt key", "receipt.pem"),
    ] {
        let f = dir.join(file);
        needles.pem_key(label, &std::fs::read_to_string(&f).unwrap(), Some(&f));
    }
    let seal = dir.join("seal.key");
    needles.base64(
        "sealing-key",
        "sealing key",
        &std::fs::read_to_string(&seal).unwrap(),
        Some(&seal),
    );

    // The signatures that went over the wire, in every direction.
    let mut wire = ams.captured();
    wire.extend(notify.captured());
    let device_wire = device.captured();
    // The needle is real: the daemon sent the token when it registered.
    assert!(
        device_wire.iter().any(|c| c
            .windows(enrollment.len())
            .any(|w| w == enrollment.as_bytes())),
        "the enrollment token never went over the wire"
    );
    let mut ams_sigs = 0;
    for h in secrets::header_values(&wire, "signature") {
        if let Some(sig) = secrets::ams_signature_value(&h) {
            needles.base64(
                "ams-signature",
                &format!("AMS signature {}…", &sig[..8]),
                &sig,
                None,
            );
            ams_sigs += 1;
        }
    }
    let mut device_sigs = 0;
    for sig in secrets::header_values(&device_wire, "x-scanbind-signature") {
        needles.base64(
            "device-signature",
            &format!("device signature {}…", &sig[..8]),
            &sig,
            None,
        );
        device_sigs += 1;
    }
    assert!(ams_sigs >= 10, "only {ams_sigs} AMS signatures recorded");
    assert!(
        device_sigs >= 5,
        "only {device_sigs} device signatures recorded"
    );

    // The needles are real: every token went over the wire (so a leak would be found).
    let wire_file = state
        .path()
        .join("..")
        .join(format!("wire-{}.bin", std::process::id()));
    std::fs::write(&wire_file, wire.concat()).unwrap();
    let seen = secrets::scan(std::slice::from_ref(&wire_file), &needles);
    std::fs::remove_file(&wire_file).unwrap();
    for kind in ["access-token", "refresh-token"] {
        let on_wire = seen
            .iter()
            .filter(|h| h.kind == kind && h.label.ends_with("(text)"))
            .count();
        assert_eq!(
            on_wire,
            needles
                .all
                .iter()
                .filter(|n| n.kind == kind && n.label.ends_with("(text)"))
                .count(),
            "every {kind} is on the wire"
        );
    }

    // Scan everything the product wrote.
    let mut roots: Vec<PathBuf> = vec![dir.clone(), state.path().to_owned()];
    if let Some(data) = std::env::var_os("XDG_DATA_HOME") {
        roots.push(PathBuf::from(data).join("keyrings"));
    }
    let files = secrets::files_under(&roots);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for must in [
        "server.db",
        "journal.sqlite3",
        "scanbindd.log",
        "server-0.log",
    ] {
        assert!(
            names.iter().any(|n| n == must),
            "{must} not scanned: {names:?}"
        );
    }
    let bytes: u64 = files
        .iter()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum();
    let hits = secrets::scan(&files, &needles);
    eprintln!(
        "secrets audit: {} needles ({access} access tokens, {refresh} refresh tokens, {} authCodes, {} key forms, {} AMS + {device_sigs} device signatures) over {} files, {bytes} bytes: {} hits",
        needles.all.len(),
        needles.count("auth-code"),
        needles.count("private-key") + needles.count("sealing-key"),
        ams_sigs,
        files.len(),
        hits.len()
    );
    let report: Vec<String> = hits
        .iter()
        .map(|h| format!("{} at {} in {}", h.label, h.offset, h.file.display()))
        .collect();
    assert!(
        hits.is_empty(),
        "secrets written to disk:\n{}",
        report.join("\n")
    );
}
