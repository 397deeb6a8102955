//! `scanbindctl agent` (the terminal display agent) and `profiles set-pin` against the
//! display agent protocol (`io.scanbind.AgentManager1` / `io.scanbind.Agent1`,
//! docs/dbus-api.md). The test plays the daemon on a private `dbus-daemon`: it owns
//! `io.scanbind.Daemon`, serves a recording `AgentManager1` (and `Daemon1.StartBinding`)
//! at `/io/scanbind/Daemon1`, and calls the real `scanbindctl agent` process through
//! `Agent1Proxy`, answering on its stdin. Every wait is on a line or a D-Bus call, and
//! bounded.

mod common;
mod json_style;

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use scanbind_client::ipc::proxy::Agent1Proxy;
use scanbind_client::ipc::types::keys::agent as keys;
use scanbind_client::ipc::{BUS_NAME, DAEMON_PATH, Error as Wire};
use scanbind_testkit::PrivateBus;
use serde_json::Value as Json;
use tokio::sync::mpsc;
use zbus::Connection;
use zbus::message::Header;
use zvariant::{OwnedObjectPath, OwnedValue, Value};

use common::{AgentProcess, CTL, WAIT};

/// What the fake daemon was asked.
#[derive(Debug, PartialEq, Eq)]
enum Call {
    Register { agent: String, sender: String },
    Unregister { agent: String },
    SetPin { old: String, new: String },
    StartBinding { wallet: String },
}

struct FakeManager {
    log: mpsc::UnboundedSender<Call>,
    refuse: bool,
    pin: Arc<Mutex<String>>,
}

#[zbus::interface(name = "io.scanbind.AgentManager1")]
impl FakeManager {
    async fn register_agent(
        &self,
        #[zbus(header)] header: Header<'_>,
        agent: OwnedObjectPath,
        _options: HashMap<String, OwnedValue>,
    ) -> scanbind_client::ipc::Result<()> {
        if self.refuse {
            return Err(Wire::NotAllowed(
                "this program is not a trusted display agent".into(),
            ));
        }
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        let _ = self.log.send(Call::Register {
            agent: agent.to_string(),
            sender,
        });
        Ok(())
    }

    async fn unregister_agent(
        &self,
        agent: OwnedObjectPath,
        _options: HashMap<String, OwnedValue>,
    ) -> scanbind_client::ipc::Result<()> {
        let _ = self.log.send(Call::Unregister {
            agent: agent.to_string(),
        });
        Ok(())
    }

    async fn set_parent_pin(
        &self,
        old_pin: String,
        new_pin: String,
        _options: HashMap<String, OwnedValue>,
    ) -> scanbind_client::ipc::Result<()> {
        let _ = self.log.send(Call::SetPin {
            old: old_pin.clone(),
            new: new_pin.clone(),
        });
        let mut pin = self.pin.lock().unwrap();
        if *pin != old_pin {
            return Err(Wire::Denied("wrong PIN".into()));
        }
        *pin = new_pin;
        Ok(())
    }

    #[zbus(property)]
    fn agent_registered(&self) -> bool {
        false
    }
}

struct FakeDaemon1 {
    log: mpsc::UnboundedSender<Call>,
}

#[zbus::interface(name = "io.scanbind.Daemon1")]
impl FakeDaemon1 {
    async fn start_binding(
        &self,
        wallet: String,
        _options: HashMap<String, OwnedValue>,
    ) -> OwnedObjectPath {
        let _ = self.log.send(Call::StartBinding { wallet });
        OwnedObjectPath::try_from("/io/scanbind/Daemon1/binding/fresh").unwrap()
    }
}

/// The test as the daemon: a private bus, the well-known name, the recording objects.
struct FakeWorld {
    bus: PrivateBus,
    conn: Connection,
    calls: mpsc::UnboundedReceiver<Call>,
}

impl FakeWorld {
    async fn start(refuse: bool) -> FakeWorld {
        let bus = PrivateBus::without_services().unwrap();
        let (log, calls) = mpsc::unbounded_channel();
        let conn = zbus::connection::Builder::address(bus.address())
            .unwrap()
            .serve_at(
                DAEMON_PATH,
                FakeManager {
                    log: log.clone(),
                    refuse,
                    pin: Arc::default(),
                },
            )
            .unwrap()
            .serve_at(DAEMON_PATH, FakeDaemon1 { log })
            .unwrap()
            .name(BUS_NAME)
            .unwrap()
            .build()
            .await
            .unwrap();
        FakeWorld { bus, conn, calls }
    }

    async fn next_call(&mut self) -> Call {
        tokio::time::timeout(WAIT, self.calls.recv())
            .await
            .expect("the fake daemon got no call in time")
            .expect("the call log closed")
    }

    /// The calls of one `profiles set-pin`: it registers as the display agent, sets the
    /// PIN and unregisters; the `SetParentPin` call.
    async fn set_pin_call(&mut self) -> Call {
        let agent = match self.next_call().await {
            Call::Register { agent, .. } => agent,
            other => panic!("set-pin did not register as the agent first: {other:?}"),
        };
        assert!(agent.starts_with("/io/scanbind/ctl/pin"), "{agent}");
        let set = self.next_call().await;
        assert_eq!(self.next_call().await, Call::Unregister { agent });
        set
    }

    /// The agent at `path`, as the daemon calls it.
    async fn agent(&self, owner: &str, path: &str) -> Agent1Proxy<'static> {
        Agent1Proxy::builder(&self.conn)
            .destination(owner.to_owned())
            .unwrap()
            .path(path.to_owned())
            .unwrap()
            .build()
            .await
            .unwrap()
    }
}

fn details(pairs: Vec<(&'static str, Value<'static>)>) -> HashMap<&'static str, Value<'static>> {
    pairs.into_iter().collect()
}

fn binding_qr(code: &str) -> HashMap<&'static str, Value<'static>> {
    details(vec![
        (keys::TITLE, Value::from("Link your wallet")),
        (keys::CODE_VALUE, Value::from(code.to_owned())),
        (keys::MATCH_CODE, Value::from("123456")),
        (keys::EXPIRES_AT, Value::from(4_102_444_800_i64)),
        (keys::DEVICE_NAME, Value::from("Living room TV")),
        (keys::WALLET, Value::from("ALIPAY_HK")),
        (keys::WALLET_NAME, Value::from("AlipayHK")),
    ])
}

fn payment(message: &str) -> HashMap<&'static str, Value<'static>> {
    details(vec![
        (keys::TITLE, Value::from("Confirm payment")),
        (keys::MESSAGE, Value::from(message.to_owned())),
        (keys::APP_NAME, Value::from("Game X")),
        (keys::AMOUNT_TEXT, Value::from("HK$49.00")),
        (keys::AMOUNT_MINOR, Value::from(4900_i64)),
        (keys::CURRENCY, Value::from("HKD")),
        (keys::TIMEOUT_SECS, Value::from(60_u32)),
    ])
}

type ConfirmReply = zbus::Result<(bool, HashMap<String, OwnedValue>)>;

/// Calls `Confirm` without waiting for the answer.
fn confirm(
    agent: &Agent1Proxy<'static>,
    request: &'static str,
    kind: &'static str,
    d: HashMap<&'static str, Value<'static>>,
) -> tokio::task::JoinHandle<ConfirmReply> {
    let agent = agent.clone();
    tokio::spawn(async move { agent.confirm(request, kind, d).await })
}

async fn reply(call: tokio::task::JoinHandle<ConfirmReply>) -> (bool, HashMap<String, OwnedValue>) {
    tokio::time::timeout(WAIT, call)
        .await
        .expect("Confirm got no reply in time")
        .unwrap()
        .expect("Confirm failed")
}

fn pin_of(answer: &HashMap<String, OwnedValue>) -> Option<String> {
    answer
        .get(keys::ANSWER_PIN)
        .and_then(|v| String::try_from(v.clone()).ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_agent_shows_asks_and_answers() {
    let mut world = FakeWorld::start(false).await;
    let mut agent = AgentProcess::start(world.bus.address(), true);
    let registered = agent.expect("registered").await;
    let path = registered["agent"].as_str().unwrap().to_owned();
    let Call::Register { agent: at, sender } = world.next_call().await else {
        panic!("the first call is not RegisterAgent");
    };
    assert_eq!(at, path);
    let proxy = world.agent(&sender, &path).await;

    // Show: the binding QR, with its code value in the event.
    proxy
        .show(
            "b1",
            keys::KIND_BINDING_QR,
            binding_qr("https://sandbox.test/wallet/authorize/abc"),
        )
        .await
        .unwrap();
    let shown = agent.expect("show").await;
    assert_eq!(shown["request"], "b1");
    assert_eq!(shown["kind"], "binding-qr");
    assert_eq!(
        shown["codeValue"],
        "https://sandbox.test/wallet/authorize/abc"
    );
    assert_eq!(shown["expiresAt"], 4_102_444_800_i64);
    assert_eq!(shown["details"]["match-code"], "123456");

    // Confirm: a wrong answer is asked again; y allows.
    let call = confirm(
        &proxy,
        "c1",
        keys::KIND_PAYMENT,
        payment("Pay HK$49.00 to Game X?"),
    );
    let asked = agent.expect("confirm").await;
    assert_eq!(asked["request"], "c1");
    assert_eq!(asked["message"], "Pay HK$49.00 to Game X?");
    assert_eq!(asked["pinRequired"], false);
    agent.answer("maybe");
    assert_eq!(agent.expect("retry").await["request"], "c1");
    agent.answer("y");
    let answered = agent.expect("answered").await;
    assert_eq!(answered["allowed"], true, "{answered}");
    let (allowed, answer) = reply(call).await;
    assert!(allowed);
    assert!(answer.is_empty());

    // n denies.
    let call = confirm(
        &proxy,
        "c2",
        keys::KIND_CONSENT,
        payment("Allow Game X to charge?"),
    );
    assert_eq!(agent.expect("confirm").await["kind"], "consent");
    agent.answer("n");
    assert_eq!(agent.expect("answered").await["allowed"], false);
    assert!(!reply(call).await.0);

    // One prompt at a time: the second waits until the first is answered.
    let first = confirm(&proxy, "q1", keys::KIND_PAYMENT, payment("First?"));
    assert_eq!(agent.expect("confirm").await["request"], "q1");
    let second = confirm(&proxy, "q2", keys::KIND_PAYMENT, payment("Second?"));
    // The agent queues q2 without an event; answering goes to q1.
    agent.answer("n");
    let a1 = agent.expect("answered").await;
    assert_eq!(
        (a1["request"].as_str(), a1["allowed"].as_bool()),
        (Some("q1"), Some(false))
    );
    assert_eq!(agent.expect("confirm").await["request"], "q2");
    agent.answer("yes");
    let a2 = agent.expect("answered").await;
    assert_eq!(
        (a2["request"].as_str(), a2["allowed"].as_bool()),
        (Some("q2"), Some(true))
    );
    assert!(!reply(first).await.0);
    assert!(reply(second).await.0);

    // Parent approval: the PIN in the answer; not a PIN is asked again.
    let mut kid = payment("Approve HK$49.00 for Game X (kids profile)?");
    kid.insert(keys::PIN_REQUIRED, Value::from(true));
    kid.insert(keys::ATTEMPTS_LEFT, Value::from(3_u32));
    let call = confirm(&proxy, "p1", keys::KIND_PARENT_APPROVAL, kid.clone());
    let asked = agent.expect("confirm").await;
    assert_eq!(asked["pinRequired"], true);
    assert_eq!(asked["attemptsLeft"], 3);
    agent.answer("12");
    assert_eq!(agent.expect("retry").await["request"], "p1");
    agent.answer("4321");
    assert_eq!(agent.expect("answered").await["allowed"], true);
    let (allowed, answer) = reply(call).await;
    assert!(allowed);
    assert_eq!(pin_of(&answer).as_deref(), Some("4321"));
    // An empty line denies a parent approval, without a PIN.
    let call = confirm(&proxy, "p2", keys::KIND_PARENT_APPROVAL, kid);
    agent.expect("confirm").await;
    agent.answer("");
    agent.expect("answered").await;
    let (allowed, answer) = reply(call).await;
    assert!(!allowed);
    assert_eq!(pin_of(&answer), None);

    // A prompt the daemon dismisses (timed out) is taken off and denied.
    let call = confirm(&proxy, "t1", keys::KIND_PAYMENT, payment("Too slow?"));
    agent.expect("confirm").await;
    proxy.dismiss("t1", "timed-out").await.unwrap();
    let gone = agent.expect("answered").await;
    assert_eq!(gone["reason"], "timed-out", "{gone}");
    assert!(!reply(call).await.0);

    // A binding QR that expired: Enter asks the daemon for a fresh code.
    proxy.dismiss("b1", "expired").await.unwrap();
    let dismissed = agent.expect("dismiss").await;
    assert_eq!(dismissed["outcome"], "expired");
    assert_eq!(dismissed["freshCodeOffer"], true);
    agent.answer("");
    assert_eq!(
        world.next_call().await,
        Call::StartBinding {
            wallet: "ALIPAY_HK".into()
        }
    );
    let fresh = agent.expect("fresh-code").await;
    assert_eq!(fresh["binding"], "/io/scanbind/Daemon1/binding/fresh");
    // An order code, dismissed as paid.
    let order = details(vec![
        (
            keys::CODE_VALUE,
            Value::from("https://sandbox.test/wallet/pay/xyz"),
        ),
        (keys::APP_NAME, Value::from("Game X")),
        (keys::AMOUNT_TEXT, Value::from("HK$500.00")),
        (keys::DESCRIPTION, Value::from("Season pass")),
    ]);
    proxy
        .show("o1", keys::KIND_ORDER_CODE, order)
        .await
        .unwrap();
    assert_eq!(
        agent.expect("show").await["codeValue"],
        "https://sandbox.test/wallet/pay/xyz"
    );
    proxy.dismiss("o1", "succeeded").await.unwrap();
    let done = agent.expect("dismiss").await;
    assert_eq!(
        (done["kind"].as_str(), done["outcome"].as_str()),
        (Some("order-code"), Some("succeeded"))
    );
    assert_eq!(done["freshCodeOffer"], false);

    // Nobody but the daemon may call the agent.
    let stranger = zbus::connection::Builder::address(world.bus.address())
        .unwrap()
        .build()
        .await
        .unwrap();
    let spoof = Agent1Proxy::builder(&stranger)
        .destination(sender.clone())
        .unwrap()
        .path(path.clone())
        .unwrap()
        .build()
        .await
        .unwrap();
    let refused = spoof
        .confirm("x", keys::KIND_PAYMENT, payment("Spoofed?"))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, zbus::Error::MethodError(name, _, _) if name.as_str() == "org.freedesktop.DBus.Error.AccessDenied"),
        "{refused:?}"
    );

    // The daemon leaves (a pending prompt is denied) and comes back: registered again.
    let call = confirm(
        &proxy,
        "r1",
        keys::KIND_PAYMENT,
        payment("Before the restart?"),
    );
    agent.expect("confirm").await;
    world.conn.release_name(BUS_NAME).await.unwrap();
    agent.expect("daemon-gone").await;
    let denied = agent.expect("answered").await;
    assert_eq!(
        (denied["request"].as_str(), denied["allowed"].as_bool()),
        (Some("r1"), Some(false))
    );
    assert!(!reply(call).await.0);
    world.conn.request_name(BUS_NAME).await.unwrap();
    assert_eq!(agent.expect("registered").await["agent"], path.as_str());
    assert!(matches!(world.next_call().await, Call::Register { agent, .. } if agent == path));

    // The end of input denies at once.
    drop(agent.stdin.take());
    agent.expect("input-closed").await;
    let call = confirm(&proxy, "e1", keys::KIND_PAYMENT, payment("Anyone?"));
    let denied = agent.expect("answered").await;
    assert_eq!(denied["allowed"], false);
    assert!(
        denied["reason"].as_str().unwrap().contains("no input"),
        "{denied}"
    );
    assert!(!reply(call).await.0);

    // Ctrl-C: unregisters and exits 0.
    let pid = agent.child.as_ref().unwrap().id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(world.next_call().await, Call::Unregister { agent: path });
    agent.expect("unregistered").await;
    let (code, stderr) = agent.exit_code().await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("scanbindctl agent: registered"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_agent_draws_the_code_and_reads_y() {
    let mut world = FakeWorld::start(false).await;
    let mut agent = AgentProcess::start(world.bus.address(), false);
    assert_eq!(agent.line().await, "scanbindctl agent: registered");
    let Call::Register {
        agent: path,
        sender,
    } = world.next_call().await
    else {
        panic!("the first call is not RegisterAgent");
    };
    let proxy = world.agent(&sender, &path).await;
    proxy
        .show(
            "b1",
            keys::KIND_BINDING_QR,
            binding_qr("https://sandbox.test/wallet/authorize/abc"),
        )
        .await
        .unwrap();
    let screen = agent.line_with("Match code: 123456").await.join("\n");
    assert!(screen.contains("== Link your wallet =="), "{screen}");
    assert!(screen.contains('█') && screen.contains('▀'), "{screen}");
    assert!(
        screen.contains("Scan with the AlipayHK app to link it to Living room TV."),
        "{screen}"
    );
    let call = confirm(
        &proxy,
        "c1",
        keys::KIND_PAYMENT,
        payment("Pay HK$49.00 to Game X?"),
    );
    agent.line_with("Pay HK$49.00 to Game X?").await;
    agent.answer("y");
    let line = agent.line_with("→").await.join("\n");
    assert!(
        line.contains("Allow? [y/n]") && line.contains("→ allowed"),
        "{line}"
    );
    assert!(reply(call).await.0);
    proxy.dismiss("b1", "bound").await.unwrap();
    agent.line_with("The binding code is done: bound.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_agent_is_told_why_and_exits_4() {
    let world = FakeWorld::start(true).await;
    let agent = AgentProcess::start(world.bus.address(), false);
    let (code, stderr) = agent.exit_code().await;
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("not a trusted display agent"), "{stderr}");
    assert!(stderr.contains("NotAllowed"), "{stderr}");
}

/// Runs `scanbindctl --json --address A profiles set-pin [extra]` with `input` on stdin.
async fn set_pin(address: &str, extra: &[&str], input: &str) -> (i32, String, String) {
    let (address, input) = (address.to_owned(), input.to_owned());
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(CTL)
            .env(common::DAEMON_EXE_ENV, common::this_test())
            .args(["--json", "--address", &address, "profiles", "set-pin"])
            .args(&extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_pin_sends_the_pins_to_the_daemon_only() {
    let mut world = FakeWorld::start(false).await;
    let a = world.bus.address().to_owned();
    // First PIN: no current one (an empty line).
    let (code, out, err) = set_pin(&a, &[], "\n1234\n1234\n").await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), r#"{"parentPin":"set"}"#);
    assert_eq!(
        world.set_pin_call().await,
        Call::SetPin {
            old: String::new(),
            new: "1234".into()
        }
    );
    // Checked before anything is sent: exit 2.
    for (input, expected) in [
        ("1234\n5678\n5679\n", "the two new PINs differ"),
        ("1234\n12\n12\n", "4 to 12 digits"),
        ("1234\nabcd\nabcd\n", "4 to 12 digits"),
        ("1234\n", "the input ended"),
    ] {
        let (code, _, err) = set_pin(&a, &[], input).await;
        assert_eq!(code, 2, "{input:?}: {err}");
        assert!(
            err.contains(expected),
            "{input:?}: {expected:?} not in {err}"
        );
        assert!(
            !err.contains("5678") && !err.contains("1234"),
            "a PIN in {err}"
        );
    }
    // A wrong current PIN: the daemon's Denied, exit 4.
    let (code, out, err) = set_pin(&a, &[], "9999\n5678\n5678\n").await;
    assert_eq!(code, 4, "{out}{err}");
    let report: Json = serde_json::from_str(out.trim()).unwrap();
    json_style::assert_camel_case(&report);
    assert_eq!(report["errorName"], "io.scanbind.Daemon1.Error.Denied");
    assert_eq!(
        world.set_pin_call().await,
        Call::SetPin {
            old: "9999".into(),
            new: "5678".into()
        }
    );
    // Nothing was sent for the refused inputs above: the next call is this one.
    let (code, out, err) = set_pin(&a, &["--remove"], "1234\n").await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), r#"{"parentPin":"removed"}"#);
    assert_eq!(
        world.set_pin_call().await,
        Call::SetPin {
            old: "1234".into(),
            new: String::new()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_over_a_peer_to_peer_socket() {
    // The test as a daemon serving a peer-to-peer socket (scanbindd --p2p PATH).
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("scanbindd.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let mut agent = AgentProcess::start_with(&["--socket", socket.to_str().unwrap()], true);
    let (stream, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("the agent did not connect in time")
        .unwrap();
    let (log, mut calls) = mpsc::unbounded_channel();
    let conn = zbus::connection::Builder::unix_stream(stream)
        .server(zbus::Guid::generate())
        .unwrap()
        .p2p()
        .serve_at(
            DAEMON_PATH,
            FakeManager {
                log: log.clone(),
                refuse: false,
                pin: Arc::default(),
            },
        )
        .unwrap()
        .serve_at(DAEMON_PATH, FakeDaemon1 { log })
        .unwrap()
        .build()
        .await
        .unwrap();
    let path = agent.expect("registered").await["agent"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = tokio::time::timeout(WAIT, calls.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        call,
        Call::Register {
            agent: path.clone(),
            sender: String::new()
        }
    );
    // No bus: the destination is ignored; the peer is the daemon.
    let proxy = Agent1Proxy::builder(&conn)
        .destination("io.scanbind.Agent")
        .unwrap()
        .path(path)
        .unwrap()
        .build()
        .await
        .unwrap();
    let call = confirm(
        &proxy,
        "c1",
        keys::KIND_PAYMENT,
        payment("Over the socket?"),
    );
    assert_eq!(agent.expect("confirm").await["request"], "c1");
    agent.answer("y");
    agent.expect("answered").await;
    assert!(reply(call).await.0);
    // The daemon goes away: the agent says so and exits 3.
    drop(proxy);
    drop(conn);
    let (code, stderr) = agent.exit_code().await;
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("the daemon closed the connection"),
        "{stderr}"
    );
}

/// Reads what the terminal shows (its echo) on a channel.
fn terminal_echo(master: std::fs::File) -> mpsc::UnboundedReceiver<Vec<u8>> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::Read as _;
        let mut master = master;
        let mut buf = [0_u8; 256];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Collects the terminal's echo until it contains `marker`; returns all of it.
async fn echo_until(echo: &mut mpsc::UnboundedReceiver<Vec<u8>>, marker: &str) -> String {
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains(marker) {
        let chunk = tokio::time::timeout(WAIT, echo.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the terminal never showed {marker:?}; it showed {:?}",
                    String::from_utf8_lossy(&seen)
                )
            })
            .expect("the terminal closed");
        seen.extend(chunk);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pin_is_read_without_echo_on_a_terminal() {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    let mut keyboard = std::fs::File::from(master);
    let mut echo = terminal_echo(keyboard.try_clone().unwrap());

    let mut world = FakeWorld::start(false).await;
    let mut agent = AgentProcess::start_full(
        &["--address", world.bus.address()],
        false,
        Stdio::from(terminal),
    );
    assert_eq!(agent.line().await, "scanbindctl agent: registered");
    let Call::Register {
        agent: path,
        sender,
    } = world.next_call().await
    else {
        panic!("the first call is not RegisterAgent");
    };
    let proxy = world.agent(&sender, &path).await;

    // A y/n answer is echoed as usual.
    let call = confirm(&proxy, "c1", keys::KIND_PAYMENT, payment("Pay HK$49.00?"));
    agent.line_with("Pay HK$49.00?").await;
    keyboard.write_all(b"yes\n").unwrap();
    agent.line_with("→ allowed").await;
    assert!(reply(call).await.0);
    echo_until(&mut echo, "yes").await;

    // The PIN is not; echo is back afterwards.
    let mut kid = payment("Approve HK$49.00 for Game X?");
    kid.insert(keys::PIN_REQUIRED, Value::from(true));
    let call = confirm(&proxy, "p1", keys::KIND_PARENT_APPROVAL, kid);
    agent.line_with("Approve HK$49.00 for Game X?").await;
    keyboard.write_all(b"97531\n").unwrap();
    agent.line_with("→ allowed").await;
    let (allowed, answer) = reply(call).await;
    assert!(allowed);
    assert_eq!(pin_of(&answer).as_deref(), Some("97531"));
    keyboard.write_all(b"after\n").unwrap();
    let shown = echo_until(&mut echo, "after").await;
    assert!(!shown.contains("97531"), "the PIN was echoed: {shown:?}");
}

/// The unique name of the bus connection of process `pid`.
async fn name_of_process(conn: &Connection, pid: u32) -> String {
    let dbus = zbus::fdo::DBusProxy::new(conn).await.unwrap();
    for name in dbus.list_names().await.unwrap() {
        if !name.starts_with(':') {
            continue;
        }
        if dbus
            .get_connection_unix_process_id(name.clone().into())
            .await
            .is_ok_and(|p| p == pid)
        {
            return name.to_string();
        }
    }
    panic!("process {pid} has no connection to the bus");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_owning_the_daemons_name_gets_no_registration_and_no_answer() {
    // This test process owns io.scanbind.Daemon with the agent's own uid, as any program
    // of the user can while the daemon is idle-exited; it is not scanbindd, and the
    // agent is not told to accept it ($SCANBIND_DAEMON_EXE unset).
    let mut world = FakeWorld::start(false).await;
    let mut agent = AgentProcess::start_for(
        &["--address", world.bus.address()],
        true,
        Stdio::piped(),
        None,
    );
    scanbind_testkit::eventually("the agent to refuse the impostor", || async {
        agent.stderr().contains("not registering")
    })
    .await;
    let stderr = agent.stderr();
    assert!(
        stderr.contains(&format!("runs {}", common::this_test().display())),
        "{stderr}"
    );
    // It did not register: the refusal comes before any RegisterAgent would.
    assert!(
        world.calls.try_recv().is_err(),
        "the agent registered with the impostor"
    );

    // The impostor asks the agent for the parent PIN, and for a consent: refused.
    let pid = agent.child.as_ref().unwrap().id();
    let name = name_of_process(&world.conn, pid).await;
    let proxy = world
        .agent(&name, &format!("/io/scanbind/ctl/agent{pid}"))
        .await;
    for (kind, d) in [
        (
            keys::KIND_PARENT_APPROVAL,
            payment("Parent PIN to approve HK$49.00?"),
        ),
        (
            keys::KIND_CONSENT,
            payment("Let Game X charge your wallet?"),
        ),
    ] {
        let err = proxy.confirm("evil", kind, d).await.unwrap_err();
        let zbus::Error::MethodError(name, Some(text), _) = &err else {
            panic!("not a method error: {err}");
        };
        assert_eq!(name.as_str(), "org.freedesktop.DBus.Error.AccessDenied");
        assert!(text.contains("not the daemon"), "{text}");
    }
    let err = proxy
        .show(
            "evil",
            keys::KIND_BINDING_QR,
            binding_qr("https://evil.test/"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("AccessDenied"), "{err}");

    // Nothing reached the terminal: stopped, the first thing it prints is that it stops
    // (no "registered", no prompt).
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let first = agent.event().await;
    assert_eq!(first["event"], "unregistered", "{first}");
    assert!(world.calls.try_recv().is_err());
}
