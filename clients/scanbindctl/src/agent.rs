//! `scanbindctl agent`: the terminal display agent, for headless boxes and SSH sessions.
//!
//! It serves `io.scanbind.Agent1` at an object path of its own and registers it with
//! the daemon's `io.scanbind.AgentManager1` (`docs/dbus-api.md`). The daemon then calls
//! it: `Show` (a binding QR with its match code, an order code), `Dismiss` and
//! `Confirm` (consent, payment, parent approval with the PIN, an app's unbinding).
//! Confirmations are asked one at a time, in the order they came; the answer is a
//! `y`/`n` line (a PIN line for a parent approval, typed without echo on a terminal).
//! The end of input denies.
//!
//! With `--json`, every event is one JSON object on stdout (`registered`, `show`,
//! `dismiss`, `confirm`, `retry`, `answered`, `fresh-code`, `daemon-gone`,
//! `input-closed`, `unregistered`) and the answers are lines on stdin: for scripts and tests.
//!
//! Only the daemon may call the agent, and the agent registers only with the daemon:
//! the owner of `io.scanbind.Daemon` running as this user or as the system-mode
//! daemon's user (`scanbind`), and running the daemon's executable (the installed
//! `scanbindd`, the one beside `scanbindctl`, or `$SCANBIND_DAEMON_EXE` for
//! development and tests; `scanbind_ipc::agent_guard`). Calls from any other bus peer
//! are refused; an impostor owning the name gets no registration (the agent says so on
//! stderr and waits for the name to change hands).
//!
//! The daemon trusts the answers of `scanbindctl agent` only when they come from a
//! terminal: started with its standard input on a pipe or a file, it is refused as a
//! display agent unless `policy.toml` names it under `[[trusted_agents]]`
//! (docs/policy.md), so a program cannot start it and answer its own prompts.
//! When the daemon's bus name goes away the agent waits for it to come back and
//! registers again. Ctrl-C or SIGTERM unregisters and exits 0.

use std::collections::{HashMap, VecDeque};

use anyhow::Context as _;
use futures_util::StreamExt as _;
use scanbind_client::ipc::BUS_NAME;
use scanbind_client::ipc::accounts;
use scanbind_client::ipc::agent_guard::DaemonGuard;
use scanbind_client::ipc::proxy::{AgentManager1Proxy, Daemon1Proxy};
use scanbind_client::ipc::types::keys::agent as keys;
use scanbind_client::{Client, Transport};
use serde_json::{Value as Json, json};
use tokio::sync::{mpsc, oneshot};
use zbus::message::Header;
use zbus::{Connection, fdo};
use zvariant::{OwnedObjectPath, OwnedValue, Value};

use crate::exit;
use crate::output::Output;
use crate::tty;

/// The `details` and `answer` dictionaries.
type Dict = HashMap<String, OwnedValue>;

/// What the D-Bus side hands to the terminal side.
enum Event {
    Show {
        request: String,
        kind: String,
        details: Dict,
    },
    Dismiss {
        request: String,
        outcome: String,
    },
    Confirm {
        request: String,
        kind: String,
        details: Dict,
        reply: oneshot::Sender<(bool, Dict)>,
    },
    /// The daemon left the bus: nothing it asked is pending any more.
    DaemonGone,
    /// Stop (Ctrl-C): deny what is pending and restore the terminal.
    Quit,
}

/// The `io.scanbind.Agent1` object.
struct AgentObject {
    events: mpsc::UnboundedSender<Event>,
    /// Answers only the daemon.
    guard: std::sync::Arc<DaemonGuard>,
}

impl AgentObject {
    fn send(&self, event: Event) -> fdo::Result<()> {
        self.events
            .send(event)
            .map_err(|_| fdo::Error::Failed("the agent is shutting down".into()))
    }
}

/// The environment variable naming one more executable the daemon may run, besides
/// the installed `scanbindd` and the one beside `scanbindctl` (development and tests).
pub const DAEMON_EXE_ENV: &str = "SCANBIND_DAEMON_EXE";

/// Refuses a call that does not come from the daemon ([`DaemonGuard`]): on a bus, the
/// owner of `io.scanbind.Daemon` running as this user (a session daemon) or as the
/// system-mode daemon's user (`scanbind`, when that user exists), and running the
/// daemon's executable; on a peer-to-peer connection, the only peer.
pub(crate) fn daemon_guard() -> DaemonGuard {
    use std::os::unix::fs::MetadataExt as _;
    let own = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let system = accounts::user_by_name(accounts::DAEMON_USER)
        .ok()
        .flatten()
        .map(|u| u.uid);
    let extra = std::env::var_os(DAEMON_EXE_ENV)
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    DaemonGuard::new(
        own.into_iter().chain(system),
        DaemonGuard::expected_daemons(extra.as_deref()),
    )
}

/// The daemon's `AgentManager1`, at the unique name of the verified owner of
/// `io.scanbind.Daemon` (started by bus activation when nobody owns it; on a
/// peer-to-peer connection, the peer). `Ok(Err(why))` when the owner is not the daemon.
pub(crate) async fn verified_manager(
    conn: &Connection,
    guard: &DaemonGuard,
) -> anyhow::Result<Result<AgentManager1Proxy<'static>, String>> {
    if conn.unique_name().is_none() {
        let manager = AgentManager1Proxy::new(conn)
            .await
            .map_err(scanbind_client::Error::from)?;
        return Ok(Ok(manager));
    }
    let mut owner = guard.verified_owner(conn).await;
    if matches!(owner, Ok(None)) {
        let dbus = fdo::DBusProxy::new(conn).await?;
        let name = zbus::names::WellKnownName::try_from(BUS_NAME)?;
        match dbus.start_service_by_name(name, 0).await {
            Ok(_) => owner = guard.verified_owner(conn).await,
            Err(fdo::Error::ServiceUnknown(e)) => {
                return Err(exit::with_code(
                    exit::UNREACHABLE,
                    format!("the daemon is not running and cannot be started: {e}"),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let owner = match owner {
        Ok(Some(owner)) => owner,
        Ok(None) => {
            return Err(exit::with_code(
                exit::UNREACHABLE,
                format!("nobody owns {BUS_NAME}"),
            ));
        }
        Err(fdo::Error::AccessDenied(why)) => return Ok(Err(why)),
        Err(e) => return Err(e.into()),
    };
    let manager = AgentManager1Proxy::builder(conn)
        .destination(owner)?
        .build()
        .await
        .map_err(scanbind_client::Error::from)?;
    Ok(Ok(manager))
}

#[zbus::interface(name = "io.scanbind.Agent1")]
impl AgentObject {
    /// `Show(s request, s kind, a{sv} details)`.
    async fn show(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
        request: String,
        kind: String,
        details: Dict,
    ) -> fdo::Result<()> {
        self.guard.check(conn, &header).await?;
        self.send(Event::Show {
            request,
            kind,
            details,
        })
    }

    /// `Dismiss(s request, s outcome)`.
    async fn dismiss(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
        request: String,
        outcome: String,
    ) -> fdo::Result<()> {
        self.guard.check(conn, &header).await?;
        self.send(Event::Dismiss { request, outcome })
    }

    /// `Confirm(s request, s kind, a{sv} details) -> (b allowed, a{sv} answer)`.
    async fn confirm(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
        request: String,
        kind: String,
        details: Dict,
    ) -> fdo::Result<(bool, Dict)> {
        self.guard.check(conn, &header).await?;
        let (reply, answer) = oneshot::channel();
        self.send(Event::Confirm {
            request,
            kind,
            details,
            reply,
        })?;
        // A prompt dropped unanswered (dismissed, agent stopping) is a denial.
        Ok(answer.await.unwrap_or_else(|_| (false, Dict::new())))
    }
}

/// How long leaving may take before the agent exits anyway (the daemon forgets an agent
/// whose connection closed).
const UNREGISTER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The object path the agent serves, unique per process.
fn agent_path() -> anyhow::Result<OwnedObjectPath> {
    OwnedObjectPath::try_from(format!("/io/scanbind/ctl/agent{}", std::process::id()))
        .context("building the agent's object path")
}

/// `agent`.
pub async fn run(transport: &Transport, out: Output) -> anyhow::Result<()> {
    let client = Client::connect(transport.clone()).await?;
    let conn = client.connection().clone();
    let p2p = client.is_p2p();
    let path = agent_path()?;
    let (events, rx) = mpsc::unbounded_channel();
    let guard = std::sync::Arc::new(daemon_guard());
    conn.object_server()
        .at(
            &path,
            AgentObject {
                events: events.clone(),
                guard: guard.clone(),
            },
        )
        .await
        .context("serving io.scanbind.Agent1")?;
    let daemon = Daemon1Proxy::new(&conn)
        .await
        .map_err(scanbind_client::Error::from)?;
    // Watch the daemon's name before registering, so no departure is missed.
    // On a peer-to-peer socket the daemon is the connection: its end is the stream's.
    let mut peer = p2p.then(|| zbus::MessageStream::from(&conn));
    let mut owners = if p2p {
        None
    } else {
        let dbus = fdo::DBusProxy::new(&conn).await?;
        Some(
            dbus.receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
                .await?,
        )
    };
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("watching SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("watching SIGTERM")?;
    // The manager the agent registered with (to unregister from).
    let mut manager = register(&conn, &guard, &path).await?;
    if manager.is_some() {
        announce_registered(out, &path);
    }
    let mut registered = manager.is_some();

    let ui = tokio::spawn(Terminal::new(out, daemon).run(rx));
    let result = loop {
        tokio::select! {
            _ = interrupt.recv() => break Ok(()),
            _ = terminate.recv() => break Ok(()),
            () = async {
                match peer.as_mut() {
                    Some(s) => while let Some(Ok(_)) = s.next().await {},
                    None => std::future::pending().await,
                }
            } => break Err(exit::with_code(exit::UNREACHABLE, "the daemon closed the connection")),
            change = async {
                match owners.as_mut() {
                    Some(s) => s.next().await,
                    None => std::future::pending().await,
                }
            } => {
                let Some(change) = change else {
                    break Err(exit::with_code(exit::UNREACHABLE, "the bus connection closed"));
                };
                let Ok(args) = change.args() else { continue };
                if args.new_owner().is_none() {
                    registered = false;
                    let _ = events.send(Event::DaemonGone);
                    continue;
                }
                // A daemon that appears while registered was started by the
                // registration itself (bus activation): nothing to do.
                if registered && args.old_owner().is_none() {
                    continue;
                }
                match register(&conn, &guard, &path).await {
                    Ok(Some(m)) => {
                        registered = true;
                        manager = Some(m);
                        announce_registered(out, &path);
                    }
                    Ok(None) => registered = false,
                    Err(e) => {
                        registered = false;
                        eprintln!("scanbindctl agent: registering again failed: {e:#}");
                    }
                }
            }
        }
    };
    // Nothing reads these any more: they must not hold up the connection.
    drop(peer);
    drop(owners);
    if result.is_ok() {
        // Leave politely; a daemon that is gone has nothing to unregister (and calling
        // it would start it again).
        if registered && let Some(manager) = &manager {
            let _ = tokio::time::timeout(
                UNREGISTER_TIMEOUT,
                manager.unregister_agent(&path, HashMap::new()),
            )
            .await;
        }
        out.emit(&json!({"event": "unregistered"}), || {
            println!("scanbindctl agent: unregistered");
        });
    }
    let _ = events.send(Event::Quit);
    let _ = ui.await;
    result
}

/// Registers with the verified daemon: its manager, or `None` when the owner of the
/// daemon's name is not the daemon (said on stderr; the agent waits for the name to
/// change hands).
async fn register(
    conn: &Connection,
    guard: &DaemonGuard,
    path: &OwnedObjectPath,
) -> anyhow::Result<Option<AgentManager1Proxy<'static>>> {
    let manager = match verified_manager(conn, guard).await? {
        Ok(manager) => manager,
        Err(why) => {
            eprintln!("scanbindctl agent: not registering: {why}; waiting for the daemon");
            return Ok(None);
        }
    };
    manager
        .register_agent(&path.as_ref(), HashMap::new())
        .await
        .map_err(scanbind_client::Error::from)
        .context("registering with the daemon as its display agent")?;
    Ok(Some(manager))
}

fn announce_registered(out: Output, path: &OwnedObjectPath) {
    if out.json {
        println!("{}", json!({"event": "registered", "agent": path.as_str()}));
        eprintln!("scanbindctl agent: registered");
    } else {
        println!("scanbindctl agent: registered");
    }
}

/// A `Confirm` waiting for (or getting) its answer.
struct Prompt {
    request: String,
    kind: String,
    details: Dict,
    reply: oneshot::Sender<(bool, Dict)>,
}

impl Prompt {
    fn pin_required(&self) -> bool {
        flag(&self.details, keys::PIN_REQUIRED) || self.kind == keys::KIND_PARENT_APPROVAL
    }
}

/// What a line typed for a prompt means.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Allow(Option<String>),
    Deny,
    Again(&'static str),
}

fn interpret(line: &str, pin_required: bool) -> Answer {
    let line = line.trim();
    if pin_required {
        return match line {
            "" | "n" | "N" | "no" => Answer::Deny,
            pin if tty::is_pin(pin) => Answer::Allow(Some(pin.to_owned())),
            _ => Answer::Again("the parent PIN is 4 to 12 digits (or n to deny)"),
        };
    }
    match line.to_ascii_lowercase().as_str() {
        "y" | "yes" => Answer::Allow(None),
        "n" | "no" => Answer::Deny,
        _ => Answer::Again("answer y or n"),
    }
}

/// The terminal side: shows what the daemon sends and asks one question at a time.
struct Terminal {
    out: Output,
    daemon: Daemon1Proxy<'static>,
    /// Shown requests: request → (kind, wallet).
    shown: HashMap<String, (String, Option<String>)>,
    current: Option<Prompt>,
    queue: VecDeque<Prompt>,
    /// The wallet of an expired binding QR, while Enter asks for a fresh code.
    fresh_offer: Option<String>,
    input_closed: bool,
    /// Echo is off while a PIN is typed on a terminal.
    echo_off: Option<tty::EchoOff>,
}

impl Terminal {
    fn new(out: Output, daemon: Daemon1Proxy<'static>) -> Terminal {
        Terminal {
            out,
            daemon,
            shown: HashMap::new(),
            current: None,
            queue: VecDeque::new(),
            fresh_offer: None,
            input_closed: false,
            echo_off: None,
        }
    }

    async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>) {
        let mut lines = spawn_stdin_reader();
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    None | Some(Event::Quit) => break,
                    Some(event) => self.event(event),
                },
                line = lines.recv(), if !self.input_closed => match line {
                    Some(line) => self.line(&line).await,
                    None => self.input_ended(),
                },
            }
        }
        self.deny_all("the agent stopped");
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Show {
                request,
                kind,
                details,
            } => self.show(request, kind, &details),
            Event::Dismiss { request, outcome } => self.dismiss(&request, &outcome),
            Event::Confirm {
                request,
                kind,
                details,
                reply,
            } => {
                let prompt = Prompt {
                    request,
                    kind,
                    details,
                    reply,
                };
                if self.input_closed {
                    self.answer(prompt, false, None, Some("no input (stdin is closed)"));
                } else {
                    self.queue.push_back(prompt);
                    if self.current.is_none() {
                        self.next_prompt();
                    }
                }
            }
            Event::DaemonGone => {
                self.out.emit(&json!({"event": "daemon-gone"}), || {
                    println!("scanbindctl agent: the daemon left; waiting for it to come back");
                });
                self.shown.clear();
                self.fresh_offer = None;
                self.deny_all("the daemon left");
            }
            Event::Quit => {}
        }
    }

    fn show(&mut self, request: String, kind: String, details: &Dict) {
        let code = text(details, keys::CODE_VALUE).unwrap_or_default();
        let expires = int(details, keys::EXPIRES_AT);
        self.out.emit(
            &json!({
                "event": "show",
                "request": request,
                "kind": kind,
                "codeValue": code,
                "expiresAt": expires,
                "details": dict_json(details),
            }),
            || {
                println!();
                if let Some(title) = text(details, keys::TITLE) {
                    println!("== {title} ==");
                }
                if !code.is_empty() {
                    match crate::qr::render_text(code) {
                        Ok(qr) => print!("{qr}"),
                        Err(e) => println!("(cannot draw the QR code: {e}) {code}"),
                    }
                }
                let get = |k: &str| text(details, k).unwrap_or("?").to_owned();
                match kind.as_str() {
                    keys::KIND_BINDING_QR => {
                        if let Some(app) = text(details, keys::APP_NAME) {
                            println!("  Asked for by {app}");
                        }
                        println!(
                            "  Scan with the {} app to link it to {}.",
                            get(keys::WALLET_NAME),
                            get(keys::DEVICE_NAME)
                        );
                        println!(
                            "  Match code: {}  (check that the phone shows the same)",
                            get(keys::MATCH_CODE)
                        );
                    }
                    keys::KIND_ORDER_CODE => {
                        println!(
                            "  {}: {} for {}",
                            app_text(details).unwrap_or_else(|| "?".into()),
                            get(keys::AMOUNT_TEXT),
                            get(keys::DESCRIPTION)
                        );
                        println!("  Scan with a wallet app to pay.");
                    }
                    _ => {
                        if let Some(m) = text(details, keys::MESSAGE) {
                            println!("  {m}");
                        }
                    }
                }
                if let Some(at) = expires {
                    let left = at - time::OffsetDateTime::now_utc().unix_timestamp();
                    println!(
                        "  Expires at {} (in {} min {:02} s)",
                        crate::commands::time_text(at),
                        left.max(0) / 60,
                        left.max(0) % 60
                    );
                }
            },
        );
        let wallet = text(details, keys::WALLET).map(str::to_owned);
        self.shown.insert(request, (kind, wallet));
        self.reprompt();
    }

    fn dismiss(&mut self, request: &str, outcome: &str) {
        if self.current.as_ref().is_some_and(|p| p.request == request) {
            self.echo_off = None;
            if let Some(prompt) = self.current.take() {
                self.answer(prompt, false, None, Some(outcome));
            }
            self.next_prompt();
            return;
        }
        if let Some(i) = self.queue.iter().position(|p| p.request == request) {
            if let Some(prompt) = self.queue.remove(i) {
                self.answer(prompt, false, None, Some(outcome));
            }
            return;
        }
        // Requests already answered (the daemon dismisses those as `answered`) or never
        // shown: nothing on screen to take off.
        let Some((kind, wallet)) = self.shown.remove(request) else {
            tracing::debug!(request, outcome, "dismissed a request not on screen");
            return;
        };
        let offer = wallet.filter(|_| {
            kind == keys::KIND_BINDING_QR && outcome == "expired" && !self.input_closed
        });
        self.out.emit(
            &json!({
                "event": "dismiss",
                "request": request,
                "kind": kind,
                "outcome": outcome,
                "freshCodeOffer": offer.is_some(),
            }),
            || {
                let what = match kind.as_str() {
                    keys::KIND_BINDING_QR => "binding code",
                    keys::KIND_ORDER_CODE => "order code",
                    _ => "request",
                };
                println!("  The {what} is done: {outcome}.");
                if offer.is_some() {
                    println!("  Press Enter for a fresh code.");
                }
            },
        );
        if offer.is_some() {
            self.fresh_offer = offer;
        }
        self.reprompt();
    }

    /// Makes the next queued prompt (still wanted by the daemon) the current one.
    fn next_prompt(&mut self) {
        while let Some(prompt) = self.queue.pop_front() {
            if prompt.reply.is_closed() {
                continue;
            }
            self.present(&prompt, None);
            self.current = Some(prompt);
            return;
        }
    }

    fn present(&mut self, prompt: &Prompt, retry: Option<&str>) {
        let pin = prompt.pin_required();
        if pin && self.echo_off.is_none() {
            // Off before the question is out, so no key typed in answer is echoed (a
            // no-op unless stdin is a terminal).
            self.echo_off = Some(tty::EchoOff::new());
        }
        let message = text(&prompt.details, keys::MESSAGE).unwrap_or("Allow this?");
        let attempts = uint(&prompt.details, keys::ATTEMPTS_LEFT);
        if let Some(reason) = retry {
            self.out.emit(
                &json!({"event": "retry", "request": prompt.request, "reason": reason}),
                || println!("  ({reason})"),
            );
        } else {
            self.out.emit(
                &json!({
                    "event": "confirm",
                    "request": prompt.request,
                    "kind": prompt.kind,
                    "message": message,
                    "pinRequired": pin,
                    "attemptsLeft": attempts,
                    "timeoutSecs": uint(&prompt.details, keys::TIMEOUT_SECS),
                    "details": dict_json(&prompt.details),
                }),
                || {
                    println!();
                    if let Some(title) = text(&prompt.details, keys::TITLE) {
                        println!("== {title} ==");
                    }
                    // Who asks: its name from the system's metadata, its executable
                    // beside it (never a name the app gave).
                    if let Some(app) = app_text(&prompt.details) {
                        println!("App: {app}");
                    }
                    println!("{message}");
                    if prompt.kind == keys::KIND_UNBIND {
                        // The facts in their own lines, whatever the message says.
                        let get = |k: &str| text(&prompt.details, k).unwrap_or("?");
                        println!("  App:    {} ({})", get(keys::APP_NAME), get(keys::APP_ID));
                        let account = text(&prompt.details, keys::ACCOUNT).unwrap_or("");
                        println!("  Wallet: {} {account}", get(keys::WALLET_NAME));
                    }
                    if let Some(a) = attempts {
                        println!("({a} wrong PINs left before approvals are locked for a while)");
                    }
                    if let Some(t) = uint(&prompt.details, keys::TIMEOUT_SECS) {
                        println!("(answer within {t} s)");
                    }
                },
            );
        }
        ask_line(self.out, pin);
    }

    /// After other output in text mode, the question of the current prompt again.
    fn reprompt(&self) {
        if let Some(p) = &self.current {
            ask_line(self.out, p.pin_required());
        }
    }

    async fn line(&mut self, line: &str) {
        let Some(prompt) = self.current.take() else {
            if line.trim().is_empty()
                && let Some(wallet) = self.fresh_offer.take()
            {
                self.fresh_code(&wallet).await;
            }
            return;
        };
        let answer = if prompt.reply.is_closed() {
            None
        } else {
            match interpret(line, prompt.pin_required()) {
                Answer::Allow(pin) => Some((true, pin)),
                Answer::Deny => Some((false, None)),
                Answer::Again(reason) => {
                    // Echo stays off for another PIN.
                    self.present(&prompt, Some(reason));
                    self.current = Some(prompt);
                    return;
                }
            }
        };
        self.echo_off = None;
        if let Some((allowed, pin)) = answer {
            self.answer(prompt, allowed, pin, None);
        }
        self.next_prompt();
    }

    /// Replies to `prompt`; `why` is set when the user did not answer it.
    fn answer(&mut self, prompt: Prompt, allowed: bool, pin: Option<String>, why: Option<&str>) {
        let mut answer = Dict::new();
        if let Some(pin) = pin
            && let Ok(v) = Value::from(pin).try_into_owned()
        {
            answer.insert(keys::ANSWER_PIN.to_owned(), v);
        }
        let delivered = prompt.reply.send((allowed, answer)).is_ok();
        self.out.emit(
            &json!({
                "event": "answered",
                "request": prompt.request,
                "allowed": allowed,
                "reason": why,
                "delivered": delivered,
            }),
            || match why {
                None if allowed => println!("  → allowed"),
                None => println!("  → denied"),
                Some(why) => println!("  → not answered ({why}): denied"),
            },
        );
    }

    fn deny_all(&mut self, why: &str) {
        self.echo_off = None;
        if let Some(p) = self.current.take() {
            self.answer(p, false, None, Some(why));
        }
        while let Some(p) = self.queue.pop_front() {
            self.answer(p, false, None, Some(why));
        }
    }

    fn input_ended(&mut self) {
        self.input_closed = true;
        if self.out.json {
            println!("{}", json!({"event": "input-closed"}));
        } else {
            eprintln!("scanbindctl agent: the input ended; confirmations are denied from now on");
        }
        self.fresh_offer = None;
        self.deny_all("no input (stdin is closed)");
    }

    async fn fresh_code(&mut self, wallet: &str) {
        match self.daemon.start_binding(wallet, HashMap::new()).await {
            Ok(binding) => self.out.emit(
                &json!({"event": "fresh-code", "wallet": wallet, "binding": binding.as_str()}),
                || println!("  Asked for a fresh {wallet} code."),
            ),
            Err(e) => {
                let e = scanbind_client::Error::from(e);
                self.out.emit(
                    &json!({"event": "fresh-code", "wallet": wallet, "error": e.to_string()}),
                    || println!("  No fresh code: {e}"),
                );
            }
        }
    }
}

/// The question line of a prompt (text mode only), without a line end.
fn ask_line(out: Output, pin: bool) {
    if out.json {
        return;
    }
    if pin {
        print!("Parent PIN to approve (n to deny): ");
    } else {
        print!("Allow? [y/n] ");
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
}

/// Lines of stdin on a channel (a thread blocks on the reads); closed at the end of
/// input. Invalid UTF-8 is replaced, so it is just a wrong answer.
fn spawn_stdin_reader() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        let stdin = std::io::stdin();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match stdin.lock().read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\n', '\r'])
                        .to_owned();
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// `name (executable)` of the app a request is about, from `app-name` and `app-exe`.
fn app_text(details: &Dict) -> Option<String> {
    match (text(details, keys::APP_NAME), text(details, keys::APP_EXE)) {
        (Some(name), Some(exe)) => Some(format!("{name} ({exe})")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
        (None, None) => None,
    }
}

fn text<'a>(details: &'a Dict, key: &str) -> Option<&'a str> {
    match details.get(key).map(|v| &**v) {
        Some(Value::Str(s)) => Some(s.as_str()),
        _ => None,
    }
}

fn int(details: &Dict, key: &str) -> Option<i64> {
    match details.get(key).map(|v| &**v) {
        Some(Value::I64(v)) => Some(*v),
        Some(Value::I32(v)) => Some(i64::from(*v)),
        Some(Value::U32(v)) => Some(i64::from(*v)),
        _ => None,
    }
}

fn uint(details: &Dict, key: &str) -> Option<u32> {
    match details.get(key).map(|v| &**v) {
        Some(Value::U32(v)) => Some(*v),
        Some(Value::I32(v)) => u32::try_from(*v).ok(),
        Some(Value::I64(v)) => u32::try_from(*v).ok(),
        _ => None,
    }
}

fn flag(details: &Dict, key: &str) -> bool {
    matches!(details.get(key).map(|v| &**v), Some(Value::Bool(true)))
}

/// `details` as JSON: strings, numbers, booleans and object paths as such, anything
/// else as its D-Bus text form.
fn dict_json(details: &Dict) -> Json {
    let mut map = serde_json::Map::new();
    for (k, v) in details {
        map.insert(k.clone(), value_json(v));
    }
    Json::Object(map)
}

fn value_json(v: &Value<'_>) -> Json {
    match v {
        Value::Str(s) => Json::from(s.as_str()),
        Value::ObjectPath(p) => Json::from(p.as_str()),
        Value::Bool(b) => Json::from(*b),
        Value::U8(n) => Json::from(*n),
        Value::I16(n) => Json::from(*n),
        Value::U16(n) => Json::from(*n),
        Value::I32(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::I64(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        Value::Value(inner) => value_json(inner),
        other => Json::from(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        assert_eq!(interpret("y", false), Answer::Allow(None));
        assert_eq!(interpret(" YES ", false), Answer::Allow(None));
        assert_eq!(interpret("n", false), Answer::Deny);
        assert!(matches!(interpret("", false), Answer::Again(_)));
        assert!(matches!(interpret("maybe", false), Answer::Again(_)));
        assert_eq!(
            interpret("1234", true),
            Answer::Allow(Some("1234".to_owned()))
        );
        assert_eq!(interpret("", true), Answer::Deny);
        assert_eq!(interpret("n", true), Answer::Deny);
        assert!(matches!(interpret("12", true), Answer::Again(_)));
        assert!(matches!(interpret("y", true), Answer::Again(_)));
        assert!(matches!(interpret("12a4", true), Answer::Again(_)));
    }

    #[test]
    fn details_become_json() {
        let mut d = Dict::new();
        d.insert("a".into(), Value::from("x").try_into_owned().unwrap());
        d.insert("n".into(), Value::from(5_i64).try_into_owned().unwrap());
        d.insert("b".into(), Value::from(true).try_into_owned().unwrap());
        assert_eq!(dict_json(&d), json!({"a": "x", "n": 5, "b": true}));
        assert_eq!(text(&d, "a"), Some("x"));
        assert_eq!(int(&d, "n"), Some(5));
        assert!(flag(&d, "b"));
        assert!(!flag(&d, "a"));
        assert_eq!(app_text(&d), None);
        d.insert(
            keys::APP_NAME.into(),
            Value::from("Space Miner").try_into_owned().unwrap(),
        );
        d.insert(
            keys::APP_EXE.into(),
            Value::from("/usr/games/space-miner")
                .try_into_owned()
                .unwrap(),
        );
        assert_eq!(
            app_text(&d).as_deref(),
            Some("Space Miner (/usr/games/space-miner)")
        );
    }
}
