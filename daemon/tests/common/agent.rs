//! A display agent played by the test process: it serves `io.scanbind.Agent1` on a
//! connection of its own and hands every request to the test, which answers
//! confirmations itself (`daemon/tests/agents.rs`, `hostile_apps.rs`).

use std::collections::HashMap;

use scanbind_ipc::Error as Wire;
use scanbind_ipc::proxy::AgentManager1Proxy;
use scanbindd::test_util::PrivateBus;
use tokio::sync::{mpsc, oneshot};
use zvariant::OwnedValue;

use super::GUARD;

pub const AGENT_PATH: &str = "/io/scanbind/TestAgent";

pub type Reply = (bool, HashMap<String, OwnedValue>);

/// What the daemon asked the agent.
#[derive(Debug)]
pub enum Ev {
    /// `Show(request, kind, details)`.
    Show(String, String, HashMap<String, OwnedValue>),
    /// `Dismiss(request, outcome)`.
    Dismiss(String, String),
    /// `Confirm`: its details (with `kind`) and where the answer goes.
    Confirm(HashMap<String, OwnedValue>, oneshot::Sender<Reply>),
}

/// A display agent whose answers come from the test.
pub struct TestAgent(pub mpsc::UnboundedSender<Ev>);

#[zbus::interface(name = "io.scanbind.Agent1")]
impl TestAgent {
    fn show(&self, _request: String, kind: String, details: HashMap<String, OwnedValue>) {
        let _ = self.0.send(Ev::Show(_request, kind, details));
    }

    fn dismiss(&self, request: String, outcome: String) {
        let _ = self.0.send(Ev::Dismiss(request, outcome));
    }

    async fn confirm(
        &self,
        _request: String,
        kind: String,
        mut details: HashMap<String, OwnedValue>,
    ) -> Reply {
        let (tx, rx) = oneshot::channel();
        details.insert("kind".into(), OwnedValue::from(zvariant::Str::from(kind)));
        let _ = self.0.send(Ev::Confirm(details, tx));
        // A test that never answers drops the sender: reply "no" late (the daemon has
        // given up by then).
        rx.await.unwrap_or((false, HashMap::new()))
    }
}

pub fn text(d: &HashMap<String, OwnedValue>, k: &str) -> String {
    d.get(k)
        .and_then(|v| String::try_from(v.clone()).ok())
        .unwrap_or_default()
}

pub async fn next(events: &mut mpsc::UnboundedReceiver<Ev>) -> Ev {
    tokio::time::timeout(GUARD, events.recv())
        .await
        .expect("the agent was asked nothing within the guard time")
        .expect("agent channel open")
}

/// The next `Confirm`, skipping shows and dismissals.
pub async fn next_confirm(
    events: &mut mpsc::UnboundedReceiver<Ev>,
) -> (HashMap<String, OwnedValue>, oneshot::Sender<Reply>) {
    loop {
        if let Ev::Confirm(d, tx) = next(events).await {
            return (d, tx);
        }
    }
}

/// A connection serving the test agent, and the receiver of what it is asked.
pub async fn agent_connection(bus: &PrivateBus) -> (zbus::Connection, mpsc::UnboundedReceiver<Ev>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let conn = zbus::connection::Builder::address(bus.address())
        .unwrap()
        .method_timeout(GUARD)
        .serve_at(AGENT_PATH, TestAgent(tx))
        .unwrap()
        .build()
        .await
        .unwrap();
    (conn, rx)
}

pub async fn register(conn: &zbus::Connection) -> Result<(), Wire> {
    let m = AgentManager1Proxy::new(conn).await.unwrap();
    m.register_agent(&AGENT_PATH.try_into().unwrap(), HashMap::new())
        .await
}
