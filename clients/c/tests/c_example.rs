//! `examples/pay.c`, built with the system C compiler against `libscanbind.so`, pays
//! through the real daemon: a private `dbus-daemon`, the session's gnome-keyring,
//! the embedded sandbox and merchant server, and `scanbindd` in this process (the
//! demo's embedded stack, `scanbind_demo::Embedded`). Then the C API's refusals of
//! bad input.
//!
//! Needs `KEYRING_SS_TEST=1` and a C compiler (`cc`, or `$CC`): run it through
//! `scripts/test`.

use std::ffi::{CStr, CString, c_char};
use std::path::{Path, PathBuf};
use std::process::Command;

use scanbind::*;
use scanbind_client::ReceiptVerifier;
use scanbind_client::money::{Currency, Money};
use scanbind_demo::Embedded;
use scanbind_testkit::{PrivateBus, require_secret_service};

/// The directory holding the `libscanbind.so` of this build: `cargo test` builds the
/// library's `cdylib` into `deps/`, next to this test binary.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().to_owned();
    assert!(
        dir.join("libscanbind.so").exists(),
        "no libscanbind.so in {}",
        dir.display()
    );
    dir
}

/// How `pay.c` is linked.
#[derive(Clone, Copy)]
enum Link {
    /// Against `libscanbind.so` (found through the rpath).
    Shared,
    /// Against `libscanbind.a` and the system libraries Rust's std needs.
    Static,
}

/// Builds `examples/pay.c` into `out` with the system C compiler.
fn build_example(out: &Path, link: Link) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = lib_dir();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let mut cmd = Command::new(&cc);
    cmd.args([
        "-std=c99",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-D_POSIX_C_SOURCE=200809L",
    ])
    .arg(manifest.join("examples/pay.c"))
    .arg("-I")
    .arg(manifest.join("include"));
    let exe = match link {
        Link::Shared => {
            let exe = out.join("pay");
            cmd.arg("-L")
                .arg(&lib)
                .arg(format!("-Wl,-rpath,{}", lib.display()))
                .args(["-lscanbind", "-lpthread", "-o"])
                .arg(&exe);
            exe
        }
        Link::Static => {
            let exe = out.join("pay-static");
            cmd.arg(lib.join("libscanbind.a"))
                .args([
                    "-lpthread",
                    "-ldl",
                    "-lm",
                    "-lrt",
                    "-lutil",
                    "-lgcc_s",
                    "-lc",
                    "-o",
                ])
                .arg(&exe);
            exe
        }
    };
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?} (install gcc): {e}"));
    assert!(
        output.status.success(),
        "pay.c does not compile and link:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

async fn run_example(exe: &Path, bus: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .env("SCANBIND_BUS_ADDRESS", bus)
        .env_remove("SCANBIND_SOCKET")
        // cargo's LD_LIBRARY_PATH may hold an older libscanbind.so (target/debug);
        // the example finds this build's through its rpath.
        .env_remove("LD_LIBRARY_PATH");
    // Blocking wait off the runtime: the daemon serving it runs in this process.
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn ledger(sandbox: &str) -> serde_json::Value {
    scanbind_ams::client::http_client_builder(Vec::new())
        .unwrap()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{sandbox}/sandbox/v1/ledger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn scan(sandbox: &str, code: &str) {
    let r = scanbind_ams::client::http_client_builder(Vec::new())
        .unwrap()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{sandbox}/sandbox/v1/scan"))
        .json(&serde_json::json!({"codeValue": code, "decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

/// Runs `f` on a plain thread, as a game's: outside any async runtime (blocking calls
/// from a runtime thread are refused).
async fn on_plain_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(move || std::thread::spawn(f).join())
        .await
        .unwrap()
        .unwrap()
}

/// A library handle carried to another thread.
struct Ptr<T>(*mut T);
// SAFETY: the handles are made to be used from any thread.
unsafe impl<T> Send for Ptr<T> {}

/// Binds ALIPAY_HK through the C API, the phone played through the sandbox.
async fn bind_through_the_c_api(bus: &str, sandbox: &str) {
    let bus = CString::new(bus).unwrap();
    let (client, binding, code) = on_plain_thread(move || {
        let mut client = std::ptr::null_mut();
        // SAFETY: valid string and out pointer.
        let rc = unsafe { scanbind_client_connect(bus.as_ptr(), 10_000, &mut client) };
        assert_eq!(rc, SCANBIND_OK, "{}", last_error());
        let mut online = 0;
        // SAFETY: a live client, a writable int.
        let rc = unsafe { scanbind_client_is_online(client, 10_000, &mut online) };
        assert_eq!((rc, online), (SCANBIND_OK, 1), "{}", last_error());
        let wallet = CString::new("ALIPAY_HK").unwrap();
        let mut binding = std::ptr::null_mut();
        // SAFETY: a live client, a valid string, a writable out pointer.
        let rc = unsafe { scanbind_bind(client, wallet.as_ptr(), 10_000, &mut binding) };
        assert_eq!(rc, SCANBIND_OK, "{}", last_error());
        // The QR: first ask for the size, then fetch the modules.
        let mut width = 0_u32;
        // SAFETY: a live binding; NULL modules asks for the size.
        let rc = unsafe {
            scanbind_binding_qr_matrix(binding, 10_000, std::ptr::null_mut(), 0, &mut width)
        };
        assert_eq!(rc, SCANBIND_ERR_INVALID_ARGUMENT);
        assert!(width >= 21, "{width}");
        let mut modules = vec![0_u8; (width * width) as usize];
        // SAFETY: the buffer holds width * width bytes.
        let rc = unsafe {
            scanbind_binding_qr_matrix(
                binding,
                10_000,
                modules.as_mut_ptr(),
                modules.len(),
                &mut width,
            )
        };
        assert_eq!(rc, SCANBIND_OK, "{}", last_error());
        assert_eq!(modules[0], 1, "the finder pattern's corner is dark");
        let mut code = std::ptr::null_mut();
        let mut matched = std::ptr::null_mut();
        // SAFETY: a live binding, writable out pointers.
        unsafe {
            assert_eq!(
                scanbind_binding_code_value(binding, 10_000, &mut code),
                SCANBIND_OK
            );
            assert_eq!(
                scanbind_binding_match_code(binding, 10_000, &mut matched),
                SCANBIND_OK
            );
        }
        // SAFETY: strings from the library, read then freed once.
        let (code_text, match_text) = unsafe {
            let t = (
                CStr::from_ptr(code).to_str().unwrap().to_owned(),
                CStr::from_ptr(matched).to_str().unwrap().to_owned(),
            );
            scanbind_string_free(code);
            scanbind_string_free(matched);
            t
        };
        assert_eq!(match_text.len(), 6);
        // Still pending: a short wait times out.
        let mut state = -1;
        // SAFETY: a live binding, a writable int.
        let rc = unsafe { scanbind_binding_wait(binding, 1, &mut state) };
        assert_eq!(rc, SCANBIND_ERR_TIMEOUT, "{}", last_error());
        (Ptr(client), Ptr(binding), code_text)
    })
    .await;
    scan(sandbox, &code).await;
    on_plain_thread(move || {
        let (client, binding) = (client, binding);
        let mut state = -1;
        // SAFETY: a live binding, a writable int.
        let rc = unsafe { scanbind_binding_wait(binding.0, 60_000, &mut state) };
        assert_eq!(rc, SCANBIND_OK, "{}", last_error());
        assert_eq!(state, SCANBIND_BINDING_BOUND);
        // SAFETY: live handles, freed once.
        unsafe {
            scanbind_binding_free(binding.0);
            scanbind_client_free(client.0);
        }
    })
    .await;
}

/// Pays `order` (HK$25.00) by an order QR code through the C API, the phone played
/// through the sandbox; returns the receipt.
async fn pay_by_order_code_through_the_c_api(bus: &str, sandbox: &str, order: &str) -> String {
    let bus = CString::new(bus).unwrap();
    let order = CString::new(order).unwrap();
    let (client, payment, code) = on_plain_thread(move || {
        let mut client = std::ptr::null_mut();
        // SAFETY: valid string and out pointer.
        let rc = unsafe { scanbind_client_connect(bus.as_ptr(), 10_000, &mut client) };
        assert_eq!(rc, SCANBIND_OK, "{}", last_error());
        let (cur, desc) = (
            CString::new("HKD").unwrap(),
            CString::new("Season pass").unwrap(),
        );
        let mut payment = std::ptr::null_mut();
        // SAFETY: a live client, valid strings, a writable out pointer.
        let rc = unsafe {
            scanbind_pay_by_order_code(
                client,
                order.as_ptr(),
                2500,
                cur.as_ptr(),
                desc.as_ptr(),
                10_000,
                &mut payment,
            )
        };
        assert_eq!(rc, SCANBIND_OK, "{}", last_error());
        let (mut code, mut expires) = (std::ptr::null_mut(), 0_i64);
        // SAFETY: a live payment; a NULL out pointer is refused.
        let rc = unsafe {
            scanbind_payment_order_code(payment, 10_000, &mut code, std::ptr::null_mut())
        };
        assert_eq!(rc, SCANBIND_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("expires_at"), "{}", last_error());
        // SAFETY: a live payment, writable out pointers.
        let rc = unsafe { scanbind_payment_order_code(payment, 30_000, &mut code, &mut expires) };
        assert_eq!(rc, SCANBIND_OK, "{}", last_error());
        // SAFETY: a string from the library, read then freed once.
        let text = unsafe {
            let t = CStr::from_ptr(code).to_str().unwrap().to_owned();
            scanbind_string_free(code);
            t
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(
            expires > now,
            "the code expires in the future: {expires} vs {now}"
        );
        let mut state = -1;
        // SAFETY: a live payment, a writable int.
        unsafe { scanbind_payment_poll(payment, &mut state) };
        assert_eq!(state, SCANBIND_PAYMENT_PENDING, "not paid before the scan");
        (Ptr(client), Ptr(payment), text)
    })
    .await;
    assert!(code.contains("/wallet/"), "{code}");
    let r: serde_json::Value = scanbind_ams::client::http_client_builder(Vec::new())
        .unwrap()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{sandbox}/sandbox/v1/scan"))
        .json(&serde_json::json!({"codeValue": code, "decision": "approve"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["outcome"], "paid", "{r}");
    on_plain_thread(move || {
        let (client, payment) = (client, payment);
        let mut state = -1;
        // SAFETY: a live payment, a writable int.
        let rc = unsafe { scanbind_payment_wait(payment.0, 60_000, &mut state) };
        assert_eq!(rc, SCANBIND_OK, "{}", last_error());
        assert_eq!(state, SCANBIND_PAYMENT_SUCCEEDED);
        let mut receipt = std::ptr::null_mut();
        // SAFETY: a live payment, a writable out pointer; the string freed once.
        unsafe {
            assert_eq!(
                scanbind_payment_receipt(payment.0, 10_000, &mut receipt),
                SCANBIND_OK
            );
            assert!(!receipt.is_null(), "a succeeded payment has a receipt");
            let t = CStr::from_ptr(receipt).to_str().unwrap().to_owned();
            scanbind_string_free(receipt);
            scanbind_payment_free(payment.0);
            scanbind_client_free(client.0);
            t
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_c_pays_once_through_the_real_daemon() {
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let bus = PrivateBus::start(dir.path()).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let vault = format!("io.scanbind.Daemon.test.c.{}", std::process::id());
    let embedded = Embedded::start(bus.address(), &state, &vault)
        .await
        .unwrap();
    bind_through_the_c_api(bus.address(), embedded.sandbox_url()).await;
    let exe = build_example(dir.path(), Link::Shared);
    let static_exe = build_example(dir.path(), Link::Static);

    let (code, stdout, stderr) = run_example(
        &exe,
        bus.address(),
        &["c-order-1", "4900", "HKD", "500 gems"],
    )
    .await;
    assert_eq!(code, 0, "pay failed:\n{stdout}\n{stderr}");
    for line in [
        "recorded",
        "state: succeeded",
        "callback: state 1",
        "delivered",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    let receipt = stdout
        .lines()
        .find_map(|l| l.strip_prefix("receipt: "))
        .expect("a receipt line");
    let verifier = ReceiptVerifier::fetch(embedded.server_url()).await.unwrap();
    let amount = Money::from_minor(Currency::from_code("HKD").unwrap(), 4900).unwrap();
    let claims = verifier
        .verify_payment(receipt, "c-order-1", amount)
        .unwrap();
    assert_eq!(
        Path::new(&claims.app_id),
        std::fs::canonicalize(&exe).unwrap(),
        "the daemon identified the C program as the app"
    );

    // The same order again: the same payment, still one charge.
    let (code, again, stderr) = run_example(
        &exe,
        bus.address(),
        &["c-order-1", "4900", "HKD", "500 gems"],
    )
    .await;
    assert_eq!(code, 0, "{again}\n{stderr}");
    let path = |s: &str| {
        s.lines()
            .find(|l| l.ends_with("recorded"))
            .map(str::to_owned)
    };
    assert_eq!(path(&stdout), path(&again));
    let ledger_now = ledger(embedded.sandbox_url()).await;
    let payments = ledger_now["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 1, "{ledger_now}");
    assert_eq!(payments[0]["moneyMovements"], 1, "{ledger_now}");

    // The statically linked build is another app (another executable): its own order.
    let (code, stdout, stderr) = run_example(
        &static_exe,
        bus.address(),
        &["c-order-2", "100", "HKD", "1 gem"],
    )
    .await;
    assert_eq!(code, 0, "pay-static failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("state: succeeded"), "{stdout}");
    let ledger_now = ledger(embedded.sandbox_url()).await;
    let moved: Vec<&serde_json::Value> = ledger_now["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["moneyMovements"])
        .collect();
    assert_eq!(moved, [1, 1], "{ledger_now}");

    // A refusal by the daemon arrives as SCANBIND_ERR_REFUSED with its error name.
    let (code, _, stderr) = run_example(
        &exe,
        bus.address(),
        &["c-order-1", "5000", "HKD", "500 gems"],
    )
    .await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("io.scanbind.Daemon1.Error.Duplicate"),
        "{stderr}"
    );

    // Paid by scanning an order code, through the C API: one more charge, in store.
    let receipt =
        pay_by_order_code_through_the_c_api(bus.address(), embedded.sandbox_url(), "c-scan-1")
            .await;
    let amount = Money::from_minor(Currency::from_code("HKD").unwrap(), 2500).unwrap();
    verifier
        .verify_payment(&receipt, "c-scan-1", amount)
        .unwrap();
    let ledger_now = ledger(embedded.sandbox_url()).await;
    let in_store: Vec<&serde_json::Value> = ledger_now["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["productCode"] == "IN_STORE_PAYMENT")
        .collect();
    assert_eq!(in_store.len(), 1, "{ledger_now}");
    assert_eq!(in_store[0]["moneyMovements"], 1, "{ledger_now}");
    assert_eq!(in_store[0]["amount"]["value"], "2500", "{ledger_now}");

    bad_input_with_a_live_client(bus.address()).await;
    embedded.shutdown().await.unwrap();
}

fn last_error() -> String {
    // SAFETY: the library returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(scanbind_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Bad arguments after a successful connect: refused with codes and messages.
async fn bad_input_with_a_live_client(bus: &str) {
    let bus = CString::new(bus).unwrap();
    on_plain_thread(move || {
        let mut client = std::ptr::null_mut();
        // SAFETY: valid strings and out pointer.
        let rc = unsafe { scanbind_client_connect(bus.as_ptr(), 10_000, &mut client) };
        assert_eq!(rc, SCANBIND_OK, "{}", last_error());
        let order = CString::new("c-bad").unwrap();
        let hkd = CString::new("HKD").unwrap();
        let desc = CString::new("x").unwrap();
        let mut payment = std::ptr::null_mut();
        let pay =
            |order: *const c_char, amount: i64, cur: *const c_char, desc: *const c_char, out| {
                // SAFETY: the pointers are valid or null, as each case intends.
                unsafe { scanbind_pay(client, order, amount, cur, desc, 10_000, out) }
            };
        assert_eq!(
            pay(order.as_ptr(), 0, hkd.as_ptr(), desc.as_ptr(), &mut payment),
            SCANBIND_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("positive"), "{}", last_error());
        assert_eq!(
            pay(
                order.as_ptr(),
                -5,
                hkd.as_ptr(),
                desc.as_ptr(),
                &mut payment
            ),
            SCANBIND_ERR_INVALID_ARGUMENT
        );
        let xxx = CString::new("XXX").unwrap();
        assert_eq!(
            pay(
                order.as_ptr(),
                100,
                xxx.as_ptr(),
                desc.as_ptr(),
                &mut payment
            ),
            SCANBIND_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("ISO 4217"), "{}", last_error());
        assert_eq!(
            pay(
                std::ptr::null(),
                100,
                hkd.as_ptr(),
                desc.as_ptr(),
                &mut payment
            ),
            SCANBIND_ERR_INVALID_ARGUMENT
        );
        assert!(
            last_error().contains("order_id is NULL"),
            "{}",
            last_error()
        );
        let bad_utf8 = [0xff_u8, 0xfe, 0];
        assert_eq!(
            pay(
                order.as_ptr(),
                100,
                hkd.as_ptr(),
                bad_utf8.as_ptr().cast(),
                &mut payment
            ),
            SCANBIND_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("UTF-8"), "{}", last_error());
        assert_eq!(
            pay(
                order.as_ptr(),
                100,
                hkd.as_ptr(),
                desc.as_ptr(),
                std::ptr::null_mut()
            ),
            SCANBIND_ERR_INVALID_ARGUMENT
        );
        // An order id the daemon refuses: its error name comes through.
        let long = CString::new("x".repeat(65)).unwrap();
        assert_eq!(
            pay(
                long.as_ptr(),
                100,
                hkd.as_ptr(),
                desc.as_ptr(),
                &mut payment
            ),
            SCANBIND_ERR_REFUSED
        );
        // SAFETY: the library returns a valid NUL-terminated string.
        let name = unsafe { CStr::from_ptr(scanbind_last_error_name()) };
        assert_eq!(
            name.to_str().unwrap(),
            "io.scanbind.Daemon1.Error.InvalidArgument"
        );
        assert!(payment.is_null(), "no handle on failure");
        // A client handle passed as a payment handle is refused by its tag.
        let mut state = 0;
        // SAFETY: a valid pointer to the wrong kind of handle: what the tag check is for.
        let rc = unsafe { scanbind_payment_poll(client.cast::<ScanbindPayment>(), &mut state) };
        assert_eq!(rc, SCANBIND_ERR_INVALID_ARGUMENT);
        // SAFETY: the live handle, freed once.
        unsafe { scanbind_client_free(client) };
    })
    .await;
}

#[test]
fn null_and_invalid_arguments_are_error_codes_not_crashes() {
    // SAFETY: every call passes null or valid pointers, as each case intends.
    unsafe {
        let mut client = std::ptr::null_mut();
        assert_eq!(
            scanbind_client_connect(std::ptr::null(), 1000, std::ptr::null_mut()),
            SCANBIND_ERR_INVALID_ARGUMENT
        );
        let bad = [b'u', 0xc3, 0x28, 0];
        assert_eq!(
            scanbind_client_connect(bad.as_ptr().cast(), 1000, &mut client),
            SCANBIND_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("UTF-8"), "{}", last_error());
        let nowhere = CString::new("socket:/nonexistent/scanbind.sock").unwrap();
        assert_eq!(
            scanbind_client_connect(nowhere.as_ptr(), 1000, &mut client),
            SCANBIND_ERR_UNREACHABLE
        );
        assert!(
            last_error().contains("/nonexistent/scanbind.sock"),
            "{}",
            last_error()
        );
        assert!(client.is_null());
        let mut out = std::ptr::null_mut();
        let s = CString::new("x").unwrap();
        assert_eq!(
            scanbind_pay(
                std::ptr::null(),
                s.as_ptr(),
                1,
                s.as_ptr(),
                s.as_ptr(),
                1000,
                &mut out
            ),
            SCANBIND_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("client is NULL"), "{}", last_error());
        let mut state = 0;
        assert_eq!(
            scanbind_payment_poll(std::ptr::null(), &mut state),
            SCANBIND_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            scanbind_payment_wait(std::ptr::null(), 10, &mut state),
            SCANBIND_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            scanbind_payment_finish(std::ptr::null(), 10),
            SCANBIND_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            scanbind_payment_on_completed(std::ptr::null(), None, std::ptr::null_mut()),
            SCANBIND_ERR_INVALID_ARGUMENT
        );
        assert!(scanbind_payment_path(std::ptr::null()).is_null());
        let mut online = 0;
        assert_eq!(
            scanbind_client_is_online(std::ptr::null(), 10, &mut online),
            SCANBIND_ERR_INVALID_ARGUMENT
        );
        // Freeing null is a no-op; so is a string free of null.
        scanbind_client_free(std::ptr::null_mut());
        scanbind_payment_free(std::ptr::null_mut());
        scanbind_string_free(std::ptr::null_mut());
    }
}
