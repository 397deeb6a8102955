//! `libscanbind`: the C ABI of the scanbind client, for game engines and other
//! non-Rust apps.
//!
//! The header is `clients/c/include/scanbind.h` (generated with cbindgen and checked in;
//! a test fails when it drifts from this file). The library wraps `scanbind-client`:
//! connect, bind a wallet (the QR code as a module matrix or text, the match code, the
//! outcome), pay, and follow, finish and free payments.
//!
//! - **Blocking calls with timeouts.** Every call that talks to the daemon takes
//!   `timeout_ms` and returns `SCANBIND_ERR_TIMEOUT` when it runs out. The calls run
//!   on the library's own runtime (two threads, started on first use), so the caller's
//!   thread just waits.
//! - **Callbacks and polling for results.** A payment handle watches its payment in
//!   the background from the moment it is made: poll it with
//!   [`scanbind_payment_poll`] (never blocks) or register a callback with
//!   [`scanbind_payment_on_completed`], called once, on the library's callback thread.
//! - **Errors as codes plus messages.** Every function returns a `SCANBIND_*` code;
//!   [`scanbind_last_error`] and [`scanbind_last_error_name`] describe the last
//!   failure on the calling thread.
//! - **Nothing crosses the boundary uncontrolled.** Every entry point catches panics
//!   (`SCANBIND_ERR_INTERNAL`), checks every pointer for null, checks handles by a tag
//!   (a freed or foreign pointer is refused, not used, as far as the tag can tell), and
//!   checks every string for UTF-8.

#![deny(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_void};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use scanbind_client::money::{Currency, Money};
use scanbind_client::{
    BindOptions, Binding, BindingState, Client, PayRequest, Payment, PaymentOutcome, PaymentState,
    Transport,
};

/// Success.
pub const SCANBIND_OK: i32 = 0;
/// An argument is null, not UTF-8, out of range, or a handle is not a live handle of
/// the right kind.
pub const SCANBIND_ERR_INVALID_ARGUMENT: i32 = 1;
/// The daemon cannot be reached (not running, no bus, connection lost).
pub const SCANBIND_ERR_UNREACHABLE: i32 = 2;
/// The daemon refused the call; [`scanbind_last_error_name`] gives the
/// `io.scanbind.Daemon1.Error.*` name.
pub const SCANBIND_ERR_REFUSED: i32 = 3;
/// The timeout ran out before the call completed (nothing is cancelled on the daemon:
/// a payment already recorded goes on, and its handle still reports its result).
pub const SCANBIND_ERR_TIMEOUT: i32 = 4;
/// Anything else, including a bug caught at the boundary (a panic).
pub const SCANBIND_ERR_INTERNAL: i32 = 5;

/// Payment state: recorded, being charged.
pub const SCANBIND_PAYMENT_PENDING: i32 = 0;
/// Payment state: charged; deliver, then call [`scanbind_payment_finish`].
pub const SCANBIND_PAYMENT_SUCCEEDED: i32 = 1;
/// Payment state: not charged.
pub const SCANBIND_PAYMENT_FAILED: i32 = 2;
/// Payment state: outcome not known yet; the daemon keeps asking. Not final.
pub const SCANBIND_PAYMENT_PENDING_UNKNOWN: i32 = 3;
/// Payment state: cancelled, not charged.
pub const SCANBIND_PAYMENT_CANCELLED: i32 = 4;

const CLIENT_TAG: u64 = 0x5343_4e42_434c_4e54; // "SCNBCLNT"
const PAYMENT_TAG: u64 = 0x5343_4e42_5041_594d; // "SCNBPAYM"
const BINDING_TAG: u64 = 0x5343_4e42_4249_4e44; // "SCNBBIND"

/// Binding state: the QR code is on display, waiting for the phone.
pub const SCANBIND_BINDING_PENDING: i32 = 0;
/// Binding state: bound; the wallet can be charged.
pub const SCANBIND_BINDING_BOUND: i32 = 1;
/// Binding state: declined on the phone.
pub const SCANBIND_BINDING_DENIED: i32 = 2;
/// Binding state: the QR code expired (15 minutes); start a new binding.
pub const SCANBIND_BINDING_EXPIRED: i32 = 3;
/// Binding state: failed; `scanbind_last_error` is not set, the daemon's `LastError` is.
pub const SCANBIND_BINDING_FAILED: i32 = 4;
/// Binding state: removed (unbound).
pub const SCANBIND_BINDING_UNBOUND: i32 = 5;

/// A connection to the daemon. Opaque; make with [`scanbind_client_connect`], free with
/// [`scanbind_client_free`]. Usable from any thread.
#[derive(Debug)]
pub struct ScanbindClient {
    _opaque: [u8; 0],
}

/// What a `*mut ScanbindClient` points to. `repr(C)` with the tag first: a handle of
/// the other kind passed by mistake has its tag at the same offset and is refused.
#[derive(Debug)]
#[repr(C)]
struct ClientHandle {
    tag: u64,
    client: Client,
}

/// What the background watcher of a payment knows.
#[derive(Debug, Default)]
struct Watch {
    outcome: Option<PaymentOutcome>,
    callbacks: Vec<Callback>,
}

#[derive(Debug)]
struct Callback {
    f: ScanbindCompletedCallback,
    user_data: SendPtr,
}

/// The caller's `user_data`, handed back untouched on the callback thread.
#[derive(Debug, Clone, Copy)]
struct SendPtr(*mut c_void);
// SAFETY: the library never dereferences it; passing it to the callback on another
// thread is what the caller asked for by registering a callback.
unsafe impl Send for SendPtr {}

/// A payment. Opaque; make with [`scanbind_pay`], free with [`scanbind_payment_free`].
/// Usable from any thread. From the moment it is made it watches its payment in the
/// background.
#[derive(Debug)]
pub struct ScanbindPayment {
    _opaque: [u8; 0],
}

/// What a `*mut ScanbindPayment` points to (see [`ClientHandle`]).
#[derive(Debug)]
#[repr(C)]
struct PaymentHandle {
    tag: u64,
    payment: Payment,
    path: CString,
    watch: Arc<Mutex<Watch>>,
    watcher: tokio::task::JoinHandle<()>,
}

/// A binding being made (or made). Opaque; make with [`scanbind_bind`], free with
/// [`scanbind_binding_free`]. Usable from any thread.
#[derive(Debug)]
pub struct ScanbindBinding {
    _opaque: [u8; 0],
}

/// What a `*mut ScanbindBinding` points to (see [`ClientHandle`]).
#[derive(Debug)]
#[repr(C)]
struct BindingHandle {
    tag: u64,
    binding: Binding,
}

/// Called once when a payment becomes final, on the library's callback thread:
/// `state` is a `SCANBIND_PAYMENT_*` value; `receipt` (succeeded) and `error_name`
/// (otherwise, may be empty) are valid only during the call. Blocking `scanbind_*`
/// calls are allowed inside it.
pub type ScanbindCompletedCallback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        state: i32,
        receipt: *const c_char,
        error_name: *const c_char,
    ),
>;

thread_local! {
    static LAST_ERROR: RefCell<(CString, CString)> = RefCell::new((CString::default(), CString::default()));
}

fn set_error(message: &str, name: &str) {
    let clean = |s: &str| CString::new(s.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = (clean(message), clean(name)));
}

/// A failure: its code, what to say, and the D-Bus error name if there is one.
struct Failure(i32, String, String);

impl Failure {
    fn invalid(message: impl Into<String>) -> Failure {
        Failure(SCANBIND_ERR_INVALID_ARGUMENT, message.into(), String::new())
    }
}

impl From<scanbind_client::Error> for Failure {
    fn from(e: scanbind_client::Error) -> Failure {
        use scanbind_client::Error as E;
        let code = match &e {
            E::Connect { .. } | E::NotRunning(_) | E::Bus(_) | E::Disconnected(_) => {
                SCANBIND_ERR_UNREACHABLE
            }
            E::Daemon(_) => SCANBIND_ERR_REFUSED,
            E::Money(_) => SCANBIND_ERR_INVALID_ARGUMENT,
            _ => SCANBIND_ERR_INTERNAL,
        };
        let name = e.dbus_name().unwrap_or_default();
        Failure(code, e.to_string(), name)
    }
}

/// Runs an entry point: catches panics, records the error, returns the code.
fn guard(f: impl FnOnce() -> Result<(), Failure>) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            set_error("", "");
            SCANBIND_OK
        }
        Ok(Err(Failure(code, message, name))) => {
            set_error(&message, &name);
            code
        }
        Err(_) => {
            set_error("internal error (a bug in libscanbind was caught)", "");
            SCANBIND_ERR_INTERNAL
        }
    }
}

fn runtime() -> Result<&'static tokio::runtime::Runtime, Failure> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("scanbind")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| {
        Failure(
            SCANBIND_ERR_INTERNAL,
            format!("cannot start the runtime: {e}"),
            String::new(),
        )
    })
}

/// A callback ready to run.
type Job = Box<dyn FnOnce() + Send>;

/// The callback thread: callbacks run here, outside the runtime, so they may make
/// blocking calls.
fn callbacks() -> &'static Mutex<mpsc::Sender<Job>> {
    static TX: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("scanbind-callbacks".into())
            .spawn(move || {
                for job in rx {
                    // A panic cannot come from C; keep the thread alive regardless.
                    let _ = catch_unwind(AssertUnwindSafe(job));
                }
            });
        if spawned.is_err() {
            warn_stderr("cannot start the callback thread; callbacks will not run");
        }
        Mutex::new(tx)
    })
}

fn warn_stderr(message: &str) {
    eprintln!("libscanbind: {message}");
}

/// Blocks on `fut` for at most `timeout_ms` (0: no limit).
fn block<T>(
    timeout_ms: u32,
    fut: impl Future<Output = Result<T, scanbind_client::Error>>,
) -> Result<T, Failure> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Failure::invalid(
            "blocking scanbind calls cannot be made from inside an async runtime",
        ));
    }
    let rt = runtime()?;
    let result = if timeout_ms == 0 {
        rt.block_on(fut)
    } else {
        // The timer is made inside the runtime (it needs its reactor).
        let limit = Duration::from_millis(u64::from(timeout_ms));
        rt.block_on(async move { tokio::time::timeout(limit, fut).await })
            .map_err(|_| {
                Failure(
                    SCANBIND_ERR_TIMEOUT,
                    format!("no answer within {timeout_ms} ms"),
                    String::new(),
                )
            })?
    };
    result.map_err(Failure::from)
}

/// Reads an optional C string (null → `None`).
///
/// # Safety
/// `p` is null or points to a NUL-terminated string valid for the call.
unsafe fn opt_str<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, Failure> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-null and NUL-terminated per the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map(Some)
        .map_err(|_| Failure::invalid(format!("{what} is not valid UTF-8")))
}

/// Reads a required C string.
///
/// # Safety
/// As [`opt_str`].
unsafe fn req_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    // SAFETY: forwarded contract.
    unsafe { opt_str(p, what) }?.ok_or_else(|| Failure::invalid(format!("{what} is NULL")))
}

/// Checks a client handle.
///
/// # Safety
/// `p` is null or a pointer from [`scanbind_client_connect`] or [`scanbind_pay`] (live,
/// or freed while its memory was not reused: the cleared tag refuses it).
unsafe fn client_ref<'a>(p: *const ScanbindClient) -> Result<&'a ClientHandle, Failure> {
    if p.is_null() {
        return Err(Failure::invalid("client is NULL"));
    }
    let p = p.cast::<ClientHandle>();
    // SAFETY: the tag is the first field of both handle kinds (repr(C)), so it can be
    // read through either pointer; the rest only once the tag says which kind it is.
    if unsafe { p.cast::<u64>().read() } != CLIENT_TAG {
        return Err(Failure::invalid(
            "client is not a live scanbind client handle",
        ));
    }
    // SAFETY: a live ClientHandle per the tag and the caller's contract.
    Ok(unsafe { &*p })
}

/// Checks a payment handle.
///
/// # Safety
/// As [`client_ref`].
unsafe fn payment_ref<'a>(p: *const ScanbindPayment) -> Result<&'a PaymentHandle, Failure> {
    if p.is_null() {
        return Err(Failure::invalid("payment is NULL"));
    }
    let p = p.cast::<PaymentHandle>();
    // SAFETY: as in `client_ref`.
    if unsafe { p.cast::<u64>().read() } != PAYMENT_TAG {
        return Err(Failure::invalid(
            "payment is not a live scanbind payment handle",
        ));
    }
    // SAFETY: a live PaymentHandle per the tag and the caller's contract.
    Ok(unsafe { &*p })
}

/// Checks a binding handle.
///
/// # Safety
/// As [`client_ref`].
unsafe fn binding_ref<'a>(p: *const ScanbindBinding) -> Result<&'a BindingHandle, Failure> {
    if p.is_null() {
        return Err(Failure::invalid("binding is NULL"));
    }
    let p = p.cast::<BindingHandle>();
    // SAFETY: as in `client_ref`.
    if unsafe { p.cast::<u64>().read() } != BINDING_TAG {
        return Err(Failure::invalid(
            "binding is not a live scanbind binding handle",
        ));
    }
    // SAFETY: a live BindingHandle per the tag and the caller's contract.
    Ok(unsafe { &*p })
}

/// Hands a Rust string to C as a new string for [`scanbind_string_free`].
fn c_string(s: String, out: *mut *mut c_char) -> Result<(), Failure> {
    let c = CString::new(s).map_err(|_| Failure::invalid("string with NUL"))?;
    // SAFETY: the caller checked `out` for null.
    unsafe { *out = c.into_raw() };
    Ok(())
}

fn binding_code(s: BindingState) -> i32 {
    match s {
        BindingState::Pending => SCANBIND_BINDING_PENDING,
        BindingState::Bound => SCANBIND_BINDING_BOUND,
        BindingState::Denied => SCANBIND_BINDING_DENIED,
        BindingState::Expired => SCANBIND_BINDING_EXPIRED,
        BindingState::Unbound => SCANBIND_BINDING_UNBOUND,
        // Failed, and any state a newer daemon adds.
        _ => SCANBIND_BINDING_FAILED,
    }
}

fn out_ptr<T>(p: *mut T, what: &str) -> Result<(), Failure> {
    if p.is_null() {
        Err(Failure::invalid(format!("{what} is NULL")))
    } else {
        Ok(())
    }
}

fn state_code(s: PaymentState) -> i32 {
    match s {
        PaymentState::Succeeded => SCANBIND_PAYMENT_SUCCEEDED,
        PaymentState::Failed => SCANBIND_PAYMENT_FAILED,
        PaymentState::PendingUnknown => SCANBIND_PAYMENT_PENDING_UNKNOWN,
        PaymentState::Cancelled => SCANBIND_PAYMENT_CANCELLED,
        // Pending, and any state a newer daemon adds: not final.
        _ => SCANBIND_PAYMENT_PENDING,
    }
}

/// The message of the last failed call on this thread ("" after a success). Valid
/// until the next `scanbind_*` call on this thread; never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn scanbind_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().0.as_ptr())
}

/// The D-Bus error name of the last failed call on this thread, e.g.
/// `io.scanbind.Daemon1.Error.NotBound` ("" when there is none). Valid until the next
/// `scanbind_*` call on this thread; never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn scanbind_last_error_name() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().1.as_ptr())
}

/// Connects to the daemon.
///
/// `address`: NULL or "" for the default place ($SCANBIND_SOCKET, $SCANBIND_BUS_ADDRESS,
/// the session bus, the system bus), "session", "system", "socket:PATH" for a
/// peer-to-peer socket, or a D-Bus address ("unix:path=..."). On success `*out` is a
/// new handle.
///
/// # Safety
/// `address` is NULL or a NUL-terminated string; `out` is NULL (refused) or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_client_connect(
    address: *const c_char,
    timeout_ms: u32,
    out: *mut *mut ScanbindClient,
) -> i32 {
    guard(|| {
        out_ptr(out, "out")?;
        // SAFETY: per this function's contract.
        let address = unsafe { opt_str(address, "address") }?.unwrap_or("");
        let transport = match address {
            "" => Transport::Auto,
            "session" => Transport::Session,
            "system" => Transport::System,
            a => match a.strip_prefix("socket:") {
                Some(path) if !path.is_empty() => Transport::Socket(path.into()),
                Some(_) => return Err(Failure::invalid("socket: needs a path")),
                None => Transport::Address(a.to_owned()),
            },
        };
        let client = block(timeout_ms, Client::connect(transport))?;
        let handle = Box::new(ClientHandle {
            tag: CLIENT_TAG,
            client,
        });
        // SAFETY: checked non-null above; writable per the contract.
        unsafe { *out = Box::into_raw(handle).cast::<ScanbindClient>() };
        Ok(())
    })
}

/// Frees a client (NULL is ignored). Payments made with it stay usable.
///
/// # Safety
/// `client` is NULL or a live handle from [`scanbind_client_connect`], not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_client_free(client: *mut ScanbindClient) {
    let _ = guard(|| {
        if client.is_null() {
            return Ok(());
        }
        // SAFETY: per the contract.
        unsafe { client_ref(client) }?;
        // SAFETY: a live handle made by Box::into_raw; the tag is cleared first so a
        // second free is refused while the memory is not reused.
        let mut boxed = unsafe { Box::from_raw(client.cast::<ClientHandle>()) };
        boxed.tag = 0;
        drop(boxed);
        Ok(())
    });
}

/// Whether the daemon's link to the merchant server is up (`*online` = 1) or not (0).
/// New payments fail with `io.scanbind.Daemon1.Error.Offline` while it is down.
///
/// # Safety
/// `client` is a handle from [`scanbind_client_connect`]; `online` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_client_is_online(
    client: *const ScanbindClient,
    timeout_ms: u32,
    online: *mut i32,
) -> i32 {
    guard(|| {
        out_ptr(online, "online")?;
        // SAFETY: per the contract.
        let c = unsafe { client_ref(client) }?;
        let status = block(timeout_ms, c.client.status())?;
        // SAFETY: checked non-null.
        unsafe { *online = i32::from(status.is_online()) };
        Ok(())
    })
}

/// Charges the bound wallet `amount_minor` minor units of `currency` (ISO 4217, e.g.
/// "HKD": 4900 is HK$49.00) for the app's order `order_id` (1 to 64 printable ASCII
/// characters; the same id never charges twice), shown to the user as `description`.
/// Returns once the daemon recorded it; `*out` is a new payment handle, whose result
/// comes through [`scanbind_payment_wait`], [`scanbind_payment_poll`] or
/// [`scanbind_payment_on_completed`].
///
/// # Safety
/// `client` is a handle from [`scanbind_client_connect`]; the strings are
/// NUL-terminated; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_pay(
    client: *const ScanbindClient,
    order_id: *const c_char,
    amount_minor: i64,
    currency: *const c_char,
    description: *const c_char,
    timeout_ms: u32,
    out: *mut *mut ScanbindPayment,
) -> i32 {
    // SAFETY: the same contract.
    unsafe {
        pay_with(
            client,
            order_id,
            amount_minor,
            currency,
            description,
            timeout_ms,
            out,
            false,
        )
    }
}

/// Like [`scanbind_pay`], but paid by scanning: no bound wallet is charged; the
/// merchant server makes an order QR code ([`scanbind_payment_order_code`]) that the
/// user scans with a wallet app and pays on the phone. A code not paid by its expiry
/// ends the payment `SCANBIND_PAYMENT_CANCELLED`.
///
/// # Safety
/// As [`scanbind_pay`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_pay_by_order_code(
    client: *const ScanbindClient,
    order_id: *const c_char,
    amount_minor: i64,
    currency: *const c_char,
    description: *const c_char,
    timeout_ms: u32,
    out: *mut *mut ScanbindPayment,
) -> i32 {
    // SAFETY: the same contract.
    unsafe {
        pay_with(
            client,
            order_id,
            amount_minor,
            currency,
            description,
            timeout_ms,
            out,
            true,
        )
    }
}

/// `scanbind_pay` and `scanbind_pay_by_order_code`.
///
/// # Safety
/// As [`scanbind_pay`].
#[allow(clippy::too_many_arguments)]
unsafe fn pay_with(
    client: *const ScanbindClient,
    order_id: *const c_char,
    amount_minor: i64,
    currency: *const c_char,
    description: *const c_char,
    timeout_ms: u32,
    out: *mut *mut ScanbindPayment,
    by_order_code: bool,
) -> i32 {
    guard(|| {
        out_ptr(out, "out")?;
        // SAFETY: per the contract.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: per the contract.
        let (order_id, currency, description) = unsafe {
            (
                req_str(order_id, "order_id")?,
                req_str(currency, "currency")?,
                req_str(description, "description")?,
            )
        };
        let currency = Currency::from_code(currency).map_err(|_| {
            Failure::invalid(format!("{currency:?} is not an ISO 4217 currency code"))
        })?;
        if amount_minor <= 0 {
            return Err(Failure::invalid(format!(
                "amount_minor must be positive, not {amount_minor}"
            )));
        }
        let amount = Money::from_minor(currency, amount_minor)
            .map_err(|e| Failure::invalid(e.to_string()))?;
        let mut request = PayRequest::new(order_id, amount, description);
        if by_order_code {
            request = request.by_order_code();
        }
        let payment = block(timeout_ms, c.client.pay(&request))?;
        let handle = watch(payment)?;
        // SAFETY: checked non-null.
        unsafe { *out = Box::into_raw(handle).cast::<ScanbindPayment>() };
        Ok(())
    })
}

/// For a payment made with [`scanbind_pay_by_order_code`]: waits (up to `timeout_ms`;
/// 0 waits without limit) until the server made the order QR code, then sets `*out`
/// to its text (a URL the wallet app opens; draw it as a QR code) as a new string for
/// [`scanbind_string_free`] and `*expires_at` to its expiry (Unix seconds).
/// `SCANBIND_ERR_INVALID_ARGUMENT` when the payment ended without one (it was not
/// paid by scanning).
///
/// # Safety
/// `payment` is a handle from [`scanbind_pay_by_order_code`]; `out` and `expires_at`
/// are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_payment_order_code(
    payment: *const ScanbindPayment,
    timeout_ms: u32,
    out: *mut *mut c_char,
    expires_at: *mut i64,
) -> i32 {
    guard(|| {
        out_ptr(out, "out")?;
        out_ptr(expires_at, "expires_at")?;
        // SAFETY: per the contract.
        let p = unsafe { payment_ref(payment) }?;
        let Some((code, expires)) = block(timeout_ms, p.payment.order_code())? else {
            return Err(Failure::invalid(
                "the payment ended without an order code (it was not paid by scanning)",
            ));
        };
        // SAFETY: checked non-null.
        unsafe { *expires_at = expires };
        c_string(code, out)
    })
}

/// Makes a payment handle and starts its background watcher.
fn watch(payment: Payment) -> Result<Box<PaymentHandle>, Failure> {
    let path = CString::new(payment.path().as_str())
        .map_err(|_| Failure::invalid("object path with NUL"))?;
    let watch = Arc::new(Mutex::new(Watch::default()));
    let (w, p) = (Arc::clone(&watch), payment.clone());
    let watcher = runtime()?.spawn(async move {
        let Ok(outcome) = p.wait().await else {
            // The daemon went away: the handle keeps reporting "not final"; blocking
            // calls report the error themselves.
            return;
        };
        let callbacks = {
            let mut guard = w.lock().unwrap_or_else(|e| e.into_inner());
            guard.outcome = Some(outcome.clone());
            std::mem::take(&mut guard.callbacks)
        };
        for cb in callbacks {
            dispatch(cb, &outcome);
        }
    });
    Ok(Box::new(PaymentHandle {
        tag: PAYMENT_TAG,
        payment,
        path,
        watch,
        watcher,
    }))
}

/// Queues one callback on the callback thread.
fn dispatch(cb: Callback, outcome: &PaymentOutcome) {
    let state = state_code(outcome.state);
    let receipt = CString::new(outcome.receipt.clone().unwrap_or_default()).unwrap_or_default();
    let name = CString::new(
        outcome
            .error
            .as_ref()
            .map(|e| e.name.clone())
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    let job = move || {
        let user_data = cb.user_data;
        if let Some(f) = cb.f {
            // SAFETY: the caller registered `f` for this; the strings live for the call.
            unsafe { f(user_data.0, state, receipt.as_ptr(), name.as_ptr()) };
        }
    };
    let tx = callbacks().lock().unwrap_or_else(|e| e.into_inner());
    if tx.send(Box::new(job)).is_err() {
        warn_stderr("the callback thread is gone; a callback was dropped");
    }
}

/// The payment's object path (opaque; stays the same across daemon restarts). Owned by
/// the handle; NULL if `payment` is not a valid handle.
///
/// # Safety
/// `payment` is a handle from [`scanbind_pay`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_payment_path(payment: *const ScanbindPayment) -> *const c_char {
    let mut out = std::ptr::null();
    guard(|| {
        // SAFETY: per the contract.
        out = unsafe { payment_ref(payment) }?.path.as_ptr();
        Ok(())
    });
    out
}

/// Never blocks: `*state` is the payment's state as far as the handle's watcher knows
/// (`SCANBIND_PAYMENT_PENDING` until the result arrives, then the final state).
///
/// # Safety
/// `payment` is a handle from [`scanbind_pay`]; `state` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_payment_poll(
    payment: *const ScanbindPayment,
    state: *mut i32,
) -> i32 {
    guard(|| {
        out_ptr(state, "state")?;
        // SAFETY: per the contract.
        let p = unsafe { payment_ref(payment) }?;
        let w = p.watch.lock().unwrap_or_else(|e| e.into_inner());
        let s = w
            .outcome
            .as_ref()
            .map_or(SCANBIND_PAYMENT_PENDING, |o| state_code(o.state));
        // SAFETY: checked non-null.
        unsafe { *state = s };
        Ok(())
    })
}

/// Blocks until the payment is final (or `timeout_ms` runs out:
/// `SCANBIND_ERR_TIMEOUT`; 0 waits without limit); `*state` is the final state.
///
/// # Safety
/// `payment` is a handle from [`scanbind_pay`]; `state` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_payment_wait(
    payment: *const ScanbindPayment,
    timeout_ms: u32,
    state: *mut i32,
) -> i32 {
    guard(|| {
        out_ptr(state, "state")?;
        // SAFETY: per the contract.
        let p = unsafe { payment_ref(payment) }?;
        let outcome = block(timeout_ms, p.payment.wait())?;
        // SAFETY: checked non-null.
        unsafe { *state = state_code(outcome.state) };
        Ok(())
    })
}

/// Registers `callback`, called once with the final state on the library's callback
/// thread (at once, there, if the payment is already final). `user_data` is passed
/// back untouched.
///
/// # Safety
/// `payment` is a handle from [`scanbind_pay`]; `callback` stays callable and
/// `user_data` valid until it has been called.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_payment_on_completed(
    payment: *const ScanbindPayment,
    callback: ScanbindCompletedCallback,
    user_data: *mut c_void,
) -> i32 {
    guard(|| {
        if callback.is_none() {
            return Err(Failure::invalid("callback is NULL"));
        }
        // SAFETY: per the contract.
        let p = unsafe { payment_ref(payment) }?;
        let cb = Callback {
            f: callback,
            user_data: SendPtr(user_data),
        };
        let mut w = p.watch.lock().unwrap_or_else(|e| e.into_inner());
        match &w.outcome {
            Some(o) => {
                let o = o.clone();
                drop(w);
                dispatch(cb, &o);
            }
            None => w.callbacks.push(cb),
        }
        Ok(())
    })
}

/// The signed receipt of a succeeded payment (a JWS to send to your backend and verify
/// there); `*receipt` is a new string to free with [`scanbind_string_free`], or NULL
/// when there is none yet.
///
/// # Safety
/// `payment` is a handle from [`scanbind_pay`]; `receipt` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_payment_receipt(
    payment: *const ScanbindPayment,
    timeout_ms: u32,
    receipt: *mut *mut c_char,
) -> i32 {
    guard(|| {
        out_ptr(receipt, "receipt")?;
        // SAFETY: per the contract.
        let p = unsafe { payment_ref(payment) }?;
        let r = block(timeout_ms, p.payment.receipt())?;
        let ptr = match r {
            Some(s) => CString::new(s)
                .map_err(|_| Failure::invalid("receipt with NUL"))?
                .into_raw(),
            None => std::ptr::null_mut(),
        };
        // SAFETY: checked non-null.
        unsafe { *receipt = ptr };
        Ok(())
    })
}

/// Tells the daemon the goods were delivered (only for succeeded payments; repeating
/// it does nothing).
///
/// # Safety
/// `payment` is a handle from [`scanbind_pay`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_payment_finish(
    payment: *const ScanbindPayment,
    timeout_ms: u32,
) -> i32 {
    guard(|| {
        // SAFETY: per the contract.
        let p = unsafe { payment_ref(payment) }?;
        block(timeout_ms, p.payment.finish())
    })
}

/// Frees a payment handle (NULL is ignored). The payment itself goes on in the daemon;
/// callbacks not yet called are dropped.
///
/// # Safety
/// `payment` is NULL or a live handle from [`scanbind_pay`], not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_payment_free(payment: *mut ScanbindPayment) {
    let _ = guard(|| {
        if payment.is_null() {
            return Ok(());
        }
        // SAFETY: per the contract.
        unsafe { payment_ref(payment) }?;
        // SAFETY: a live handle made by Box::into_raw; the tag is cleared first.
        let mut boxed = unsafe { Box::from_raw(payment.cast::<PaymentHandle>()) };
        boxed.tag = 0;
        boxed.watcher.abort();
        drop(boxed);
        Ok(())
    });
}

/// Starts binding `wallet` (`"ALIPAY_HK"`, `"GCASH"`, ...): `*out` is a new binding
/// handle, pending, with its QR code. Show the QR ([`scanbind_binding_qr_matrix`] or
/// [`scanbind_binding_code_value`]) **with** the match code
/// ([`scanbind_binding_match_code`]), then wait with [`scanbind_binding_wait`]. The
/// daemon's own display is not used (the app draws the QR).
///
/// # Safety
/// `client` is a handle from [`scanbind_client_connect`]; `wallet` is NUL-terminated;
/// `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_bind(
    client: *const ScanbindClient,
    wallet: *const c_char,
    timeout_ms: u32,
    out: *mut *mut ScanbindBinding,
) -> i32 {
    guard(|| {
        out_ptr(out, "out")?;
        // SAFETY: per the contract.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: per the contract.
        let wallet = unsafe { req_str(wallet, "wallet") }?;
        let options = BindOptions {
            label: None,
            display: Some(false),
        };
        let binding = block(timeout_ms, c.client.bind(wallet, options))?;
        let handle = Box::new(BindingHandle {
            tag: BINDING_TAG,
            binding,
        });
        // SAFETY: checked non-null.
        unsafe { *out = Box::into_raw(handle).cast::<ScanbindBinding>() };
        Ok(())
    })
}

/// The text the QR code encodes (a URL the wallet app opens), as a new string for
/// [`scanbind_string_free`]; empty once the binding is no longer pending.
///
/// # Safety
/// `binding` is a handle from [`scanbind_bind`]; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_binding_code_value(
    binding: *const ScanbindBinding,
    timeout_ms: u32,
    out: *mut *mut c_char,
) -> i32 {
    guard(|| {
        out_ptr(out, "out")?;
        // SAFETY: per the contract.
        let b = unsafe { binding_ref(binding) }?;
        c_string(block(timeout_ms, b.binding.code_value())?, out)
    })
}

/// The match code to show beside the QR (the phone shows it too), as a new string for
/// [`scanbind_string_free`].
///
/// # Safety
/// `binding` is a handle from [`scanbind_bind`]; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_binding_match_code(
    binding: *const ScanbindBinding,
    timeout_ms: u32,
    out: *mut *mut c_char,
) -> i32 {
    guard(|| {
        out_ptr(out, "out")?;
        // SAFETY: per the contract.
        let b = unsafe { binding_ref(binding) }?;
        c_string(block(timeout_ms, b.binding.match_code())?, out)
    })
}

/// The QR code's modules, for drawing it: `*width` is set to the modules per side, and
/// when `capacity` is at least `width * width`, `modules[y * width + x]` is 1 (dark)
/// or 0 (light). Draw 4 light modules around it. With a smaller `capacity` (or NULL
/// `modules`) only `*width` is set and `SCANBIND_ERR_INVALID_ARGUMENT` returned: call
/// again with a buffer of `width * width` bytes.
///
/// # Safety
/// `binding` is a handle from [`scanbind_bind`]; `width` is writable; `modules` is NULL
/// or writable for `capacity` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_binding_qr_matrix(
    binding: *const ScanbindBinding,
    timeout_ms: u32,
    modules: *mut u8,
    capacity: usize,
    width: *mut u32,
) -> i32 {
    guard(|| {
        out_ptr(width, "width")?;
        // SAFETY: per the contract.
        let b = unsafe { binding_ref(binding) }?;
        let qr = block(timeout_ms, b.binding.qr_matrix())?;
        // SAFETY: checked non-null.
        unsafe { *width = qr.width };
        if modules.is_null() || capacity < qr.modules.len() {
            return Err(Failure::invalid(format!(
                "the QR code needs a buffer of {} bytes",
                qr.modules.len()
            )));
        }
        // SAFETY: `modules` is writable for `capacity` >= len bytes per the contract.
        unsafe { std::ptr::copy_nonoverlapping(qr.modules.as_ptr(), modules, qr.modules.len()) };
        Ok(())
    })
}

/// Blocks until the binding leaves pending (or `timeout_ms` runs out:
/// `SCANBIND_ERR_TIMEOUT`; 0 waits without limit); `*state` is a
/// `SCANBIND_BINDING_*` value. The user has up to the QR's 15 minutes: poll with a
/// short timeout from a game loop, or wait on a thread of your own.
///
/// # Safety
/// `binding` is a handle from [`scanbind_bind`]; `state` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_binding_wait(
    binding: *const ScanbindBinding,
    timeout_ms: u32,
    state: *mut i32,
) -> i32 {
    guard(|| {
        out_ptr(state, "state")?;
        // SAFETY: per the contract.
        let b = unsafe { binding_ref(binding) }?;
        let outcome = block(timeout_ms, b.binding.wait())?;
        // SAFETY: checked non-null.
        unsafe { *state = binding_code(outcome.state) };
        Ok(())
    })
}

/// Frees a binding handle (NULL is ignored). The binding itself stays in the daemon.
///
/// # Safety
/// `binding` is NULL or a live handle from [`scanbind_bind`], not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_binding_free(binding: *mut ScanbindBinding) {
    let _ = guard(|| {
        if binding.is_null() {
            return Ok(());
        }
        // SAFETY: per the contract.
        unsafe { binding_ref(binding) }?;
        // SAFETY: a live handle made by Box::into_raw; the tag is cleared first.
        let mut boxed = unsafe { Box::from_raw(binding.cast::<BindingHandle>()) };
        boxed.tag = 0;
        drop(boxed);
        Ok(())
    });
}

/// Frees a string returned by this library (NULL is ignored).
///
/// # Safety
/// `s` is NULL or a string from this library, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn scanbind_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: made by CString::into_raw in this library.
        drop(unsafe { CString::from_raw(s) });
    }
}
