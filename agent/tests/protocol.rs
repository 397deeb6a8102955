//! The D-Bus side of the agent in process, without a display: a private bus, the
//! stand-in daemon, and a headless "UI" that reads the command channel. Covers who may
//! call the agent (the owner of the daemon's name, running as the daemon's uid), typed
//! refusals of bad details, the Confirm round trip, the fresh
//! code action, a refused registration, and re-registration when the daemon returns.

mod common;

use std::collections::HashMap;

use common::{FakeDaemon, GUARD, PrivateBus};
use scanbind_agent::request::{Answer, Display};
use scanbind_agent::service::{self, ServiceConfig};
use scanbind_agent::state::{Action, UiCommand};
use scanbind_ipc::types::keys::agent as keys;
use tokio::sync::{mpsc, oneshot};
use zvariant::Value;

/// The agent's service on its own connection, its UI commands forwarded to a tokio
/// channel.
struct Headless {
    commands: mpsc::UnboundedReceiver<UiCommand>,
    /// Why the agent did not register with an owner of the daemon's name, each time.
    impostors: mpsc::UnboundedReceiver<String>,
    /// The agent's unique name.
    name: zbus::names::OwnedUniqueName,
    actions: mpsc::UnboundedSender<Action>,
    registered: oneshot::Receiver<()>,
    service: tokio::task::JoinHandle<Result<(), scanbind_agent::Error>>,
}

/// The agent, for which this test process (which plays the daemon) runs the daemon's
/// executable.
async fn start_agent(bus: &PrivateBus) -> Headless {
    start_agent_with(
        bus,
        ServiceConfig {
            daemon_exe: Some(std::env::current_exe().unwrap()),
            ..ServiceConfig::default()
        },
    )
    .await
}

async fn start_agent_with(bus: &PrivateBus, config: ServiceConfig) -> Headless {
    let (ui, inbox) = service::ui_channel();
    let (tx, commands) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while let Some(cmd) = inbox.recv() {
            if tx.send(cmd).is_err() {
                break;
            }
        }
    });
    let (actions, actions_rx) = mpsc::unbounded_channel();
    let (reg_tx, registered) = oneshot::channel();
    let (impostor_tx, impostors) = mpsc::unbounded_channel();
    let conn = bus.connect().await.unwrap();
    let name = conn.unique_name().unwrap().to_owned();
    let service = tokio::spawn(service::run(
        conn,
        config,
        ui,
        actions_rx,
        move || {
            let _ = reg_tx.send(());
        },
        move |why| {
            let _ = impostor_tx.send(why.to_owned());
        },
    ));
    Headless {
        commands,
        impostors,
        name,
        actions,
        registered,
        service,
    }
}

impl Headless {
    async fn next(&mut self) -> UiCommand {
        tokio::time::timeout(GUARD, self.commands.recv())
            .await
            .expect("no UI command in time")
            .expect("UI channel closed")
    }

    /// Why the agent did not register, the next time it refuses an owner.
    async fn refused_owner(&mut self) -> String {
        tokio::time::timeout(GUARD, self.impostors.recv())
            .await
            .expect("the agent did not refuse the owner in time")
            .expect("the service ended")
    }

    /// `io.scanbind.Agent1` of this agent, called from `conn`.
    async fn proxy_from(&self, conn: &zbus::Connection) -> scanbind_ipc::Agent1Proxy<'static> {
        scanbind_ipc::Agent1Proxy::builder(conn)
            .destination(self.name.clone())
            .unwrap()
            .path(service::DEFAULT_AGENT_PATH)
            .unwrap()
            .build()
            .await
            .unwrap()
    }
}

/// Every Agent1 method called by `impostor` is refused with AccessDenied whose message
/// contains `why`.
async fn all_refused(impostor: &scanbind_ipc::Agent1Proxy<'_>, why: &str) {
    let err = impostor
        .show(
            "evil",
            keys::KIND_BINDING_QR,
            qr_details("https://evil.test/"),
        )
        .await
        .unwrap_err();
    let zbus::Error::MethodError(name, Some(text), _) = &err else {
        panic!("not a method error: {err}");
    };
    assert_eq!(name.as_str(), "org.freedesktop.DBus.Error.AccessDenied");
    assert!(text.contains(why), "{text}");
    let err = impostor
        .confirm(
            "evil",
            keys::KIND_PARENT_APPROVAL,
            HashMap::from([(
                keys::MESSAGE,
                Value::from("Parent PIN to approve HK$9999.00?"),
            )]),
        )
        .await
        .unwrap_err();
    assert_eq!(error_name(err), "org.freedesktop.DBus.Error.AccessDenied");
    let err = impostor.dismiss("evil", "answered").await.unwrap_err();
    assert_eq!(error_name(err), "org.freedesktop.DBus.Error.AccessDenied");
}

fn error_name(e: zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, _, _) => name.to_string(),
        other => panic!("not a method error: {other}"),
    }
}

fn qr_details(code: &str) -> HashMap<&'static str, Value<'static>> {
    HashMap::from([
        (keys::CODE_VALUE, Value::from(code.to_owned())),
        (keys::MATCH_CODE, Value::from("42")),
        (keys::WALLET, Value::from("ALIPAY_HK")),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_daemon_is_heard_and_bad_details_are_refused() {
    let bus = PrivateBus::without_services().unwrap();
    let mut daemon = FakeDaemon::start(&bus).await;
    let mut agent = start_agent(&bus).await;
    let reg = daemon.next_registration().await;
    (&mut agent.registered).await.unwrap();
    let proxy = daemon.agent(&reg).await;

    // A stranger on the bus is refused, and nothing reaches the screen.
    let stranger = bus.connect().await.unwrap();
    let stranger_proxy = scanbind_ipc::Agent1Proxy::builder(&stranger)
        .destination(reg.sender.clone())
        .unwrap()
        .path(reg.path.clone())
        .unwrap()
        .build()
        .await
        .unwrap();
    let err = stranger_proxy
        .show(
            "evil",
            keys::KIND_BINDING_QR,
            qr_details("https://evil.test/"),
        )
        .await
        .unwrap_err();
    assert_eq!(error_name(err), "org.freedesktop.DBus.Error.AccessDenied");
    let err = stranger_proxy
        .confirm(
            "evil",
            keys::KIND_PAYMENT,
            HashMap::from([(keys::MESSAGE, Value::from("Pay?"))]),
        )
        .await
        .unwrap_err();
    assert_eq!(error_name(err), "org.freedesktop.DBus.Error.AccessDenied");

    // Bad details: typed refusals, nothing shown.
    for (kind, details) in [
        ("dance", qr_details("x")),
        (keys::KIND_BINDING_QR, HashMap::new()),
        (
            keys::KIND_BINDING_QR,
            HashMap::from([
                (keys::CODE_VALUE, Value::from("x")),
                (keys::EXPIRES_AT, Value::from("tomorrow")),
            ]),
        ),
    ] {
        let err = proxy.show("bad", kind, details).await.unwrap_err();
        assert_eq!(error_name(err), "org.freedesktop.DBus.Error.InvalidArgs");
    }
    let err = proxy
        .confirm("bad", keys::KIND_PAYMENT, HashMap::new())
        .await
        .unwrap_err();
    assert_eq!(error_name(err), "org.freedesktop.DBus.Error.InvalidArgs");

    // The daemon is heard: the first command the UI sees is its Show.
    proxy
        .show(
            "b1",
            keys::KIND_BINDING_QR,
            qr_details("https://example.test/qr/1"),
        )
        .await
        .unwrap();
    match agent.next().await {
        UiCommand::Show {
            request,
            display: Display::BindingQr(b),
        } => {
            assert_eq!(request, "b1");
            assert_eq!(b.code_value, "https://example.test/qr/1");
            assert_eq!(b.match_code.as_deref(), Some("42"));
        }
        other => panic!("unexpected {other:?}"),
    }
    proxy.dismiss("b1", "expired").await.unwrap();
    assert!(matches!(
        agent.next().await,
        UiCommand::Dismiss { request, outcome } if request == "b1" && outcome == "expired"
    ));

    // Confirm replies with what the UI answers.
    let p = proxy.clone();
    let call = tokio::spawn(async move {
        p.confirm(
            "k1",
            keys::KIND_PARENT_APPROVAL,
            HashMap::from([(keys::MESSAGE, Value::from("Approve?"))]),
        )
        .await
    });
    let UiCommand::Confirm {
        request,
        prompt,
        reply,
    } = agent.next().await
    else {
        panic!("expected a Confirm");
    };
    assert_eq!(request, "k1");
    assert!(prompt.pin_required);
    reply
        .send(Answer {
            allowed: true,
            pin: Some("2468".into()),
        })
        .unwrap();
    let (allowed, answer) = call.await.unwrap().unwrap();
    assert!(allowed);
    assert_eq!(
        <&str>::try_from(&*answer[keys::ANSWER_PIN]).unwrap(),
        "2468"
    );

    // A prompt the UI drops (dismissed, reset) answers "denied".
    let p = proxy.clone();
    let call = tokio::spawn(async move {
        p.confirm(
            "p1",
            keys::KIND_PAYMENT,
            HashMap::from([(keys::MESSAGE, Value::from("Pay HK$49.00 to Game X?"))]),
        )
        .await
    });
    let UiCommand::Confirm { reply, .. } = agent.next().await else {
        panic!("expected a Confirm");
    };
    drop(reply);
    let (allowed, answer) = call.await.unwrap().unwrap();
    assert!(!allowed && answer.is_empty());

    // The user asks for a fresh code: the daemon gets StartBinding(wallet).
    agent
        .actions
        .send(Action::StartBinding {
            wallet: "ALIPAY_HK".into(),
        })
        .unwrap();
    let wallet = tokio::time::timeout(GUARD, daemon.bindings.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(wallet, "ALIPAY_HK");

    // Closing the UI's action channel ends the service cleanly.
    drop(agent.actions);
    tokio::time::timeout(GUARD, agent.service)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_registers_again_when_the_daemon_comes_back() {
    let bus = PrivateBus::without_services().unwrap();
    // No daemon yet (or just appearing): the agent waits for it.
    let mut agent = start_agent(&bus).await;
    let mut daemon = FakeDaemon::start(&bus).await;
    let reg = daemon.next_registration().await;
    (&mut agent.registered).await.unwrap();
    let proxy = daemon.agent(&reg).await;
    proxy
        .show(
            "b1",
            keys::KIND_BINDING_QR,
            qr_details("https://example.test/qr/1"),
        )
        .await
        .unwrap();
    // Whether the daemon's name appeared before or after the agent's first attempt
    // is a race, so a Reset (sent when the name appears) may come first.
    let mut cmd = agent.next().await;
    if matches!(cmd, UiCommand::Reset) {
        cmd = agent.next().await;
    }
    assert!(matches!(cmd, UiCommand::Show { .. }), "got {cmd:?}");

    // The daemon goes away: the screen is cleared.
    drop(proxy);
    drop(daemon);
    assert!(matches!(agent.next().await, UiCommand::Reset));

    // A new daemon process (another unique name): registered again and heard.
    let mut daemon = FakeDaemon::start(&bus).await;
    let reg2 = daemon.next_registration().await;
    assert_eq!(reg2.sender, reg.sender, "the same agent connection");
    assert!(matches!(agent.next().await, UiCommand::Reset));
    let proxy = daemon.agent(&reg2).await;
    proxy.dismiss("b1", "unbound").await.unwrap();
    assert!(matches!(agent.next().await, UiCommand::Dismiss { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registration_is_an_error() {
    let bus = PrivateBus::without_services().unwrap();
    let mut daemon = FakeDaemon::start_refusing(&bus).await;
    let agent = start_agent(&bus).await;
    daemon.next_registration().await;
    let result = tokio::time::timeout(GUARD, agent.service)
        .await
        .unwrap()
        .unwrap();
    match result {
        Err(scanbind_agent::Error::Daemon(scanbind_ipc::Error::NotAllowed(_))) => {}
        other => panic!("expected NotAllowed, got {other:?}"),
    }
    assert!(agent.registered.await.is_err(), "never reported registered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_of_the_daemons_name_with_another_uid_is_refused_and_nothing_is_shown() {
    let bus = PrivateBus::without_services().unwrap();
    // This test process (root) owns io.scanbind.Daemon, but the agent expects the
    // daemon to run as `nobody`: it only pretends to be the daemon.
    let nobody = scanbind_agent::service::daemon_uid("nobody").unwrap();
    let me = ServiceConfig::default().daemon_uid;
    assert_ne!(nobody, me, "the test needs a uid other than its own");
    let daemon = FakeDaemon::start(&bus).await;
    let mut agent = start_agent_with(
        &bus,
        ServiceConfig {
            daemon_uid: nobody,
            daemon_exe: Some(std::env::current_exe().unwrap()),
            ..ServiceConfig::default()
        },
    )
    .await;
    let why = agent.refused_owner().await;
    assert!(why.contains(&format!("uid {me}")), "{why}");
    assert!(why.contains(&format!("daemon's uid {nobody}")), "{why}");
    impostor_gets_nothing(&bus, daemon, agent, &format!("daemon's uid {nobody}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_of_the_daemons_name_running_another_program_is_refused() {
    let bus = PrivateBus::without_services().unwrap();
    // This test process has the daemon's uid (the agent's own: a session bus) but is
    // not scanbindd: a program of the user that took the name while the daemon was
    // not running.
    let daemon = FakeDaemon::start(&bus).await;
    let mut agent = start_agent_with(&bus, ServiceConfig::default()).await;
    let why = agent.refused_owner().await;
    let me = std::env::current_exe().unwrap();
    assert!(
        why.contains(&format!("runs {}", me.display())) && why.contains("scanbindd"),
        "{why}"
    );
    impostor_gets_nothing(&bus, daemon, agent, "not the daemon").await;
}

/// After the agent refused to register with `daemon` (the owner of the daemon's name):
/// it did not register, the impostor's calls are refused with `why`, and nothing
/// reached the screen.
async fn impostor_gets_nothing(
    bus: &PrivateBus,
    mut daemon: FakeDaemon,
    mut agent: Headless,
    why: &str,
) {
    // The owner really is the impostor (the first check passes).
    let owner = zbus::fdo::DBusProxy::new(&daemon.conn)
        .await
        .unwrap()
        .get_name_owner(scanbind_ipc::BUS_NAME.try_into().unwrap())
        .await
        .unwrap();
    assert_eq!(
        Some(owner.as_str()),
        daemon.conn.unique_name().map(|n| n.as_str())
    );
    // The refusal came before any RegisterAgent would have.
    assert!(
        daemon.registrations.try_recv().is_err(),
        "the agent registered with the impostor"
    );
    let impostor = agent.proxy_from(&daemon.conn).await;
    all_refused(&impostor, why).await;

    // Nothing reached the screen: when the name changes hands (the impostor leaves, it
    // comes back), the first command the UI sees is the Reset that follows, and the
    // agent refuses the new owner too.
    drop(impostor);
    drop(daemon);
    let mut again = FakeDaemon::start(bus).await;
    let cmd = agent.next().await;
    assert!(matches!(cmd, UiCommand::Reset), "got {cmd:?}");
    agent.refused_owner().await;
    assert!(again.registrations.try_recv().is_err());
}

#[test]
fn an_unknown_daemon_user_stops_the_agent_before_it_shows_anything() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scanbind-agent"))
        .args(["--system", "--daemon-user", "no-such-user-scanbind-test"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no user \"no-such-user-scanbind-test\"") && err.contains("--daemon-user"),
        "{err}"
    );
}
