//! [`approving_agent`]: a display agent (`io.scanbind.Agent1`) whose user approves
//! every question, for tests in which an app's request needs the user's approval on
//! the trusted display (an app's `Daemon1.Unbind`) but the approval is not what they
//! test. The daemon accepts it only when its policy trusts this process:
//! [`trusted_agent_toml`]; [`unregister_agent`] takes it off again.

use std::collections::HashMap;

use zbus::zvariant::{ObjectPath, OwnedValue, Value};

/// The object path the agent serves.
pub const AGENT_PATH: &str = "/io/scanbind/TestkitAgent";

/// A `[[trusted_agents]]` table of `policy.toml` naming this process (its uid and
/// executable): the daemon then lets it register as the display agent.
pub fn trusted_agent_toml() -> String {
    use std::os::unix::fs::MetadataExt as _;
    let exe = std::fs::read_link("/proc/self/exe").expect("/proc/self/exe");
    let uid = std::fs::metadata("/proc/self").expect("/proc/self").uid();
    format!(
        "\n[[trusted_agents]]\nuid = {uid}\nexe = \"{}\"\n",
        exe.display()
    )
}

/// The agent: shows nothing, approves every `Confirm`.
#[derive(Debug)]
struct Approving;

#[zbus::interface(name = "io.scanbind.Agent1")]
impl Approving {
    fn show(&self, _request: String, _kind: String, _details: HashMap<String, OwnedValue>) {}

    fn dismiss(&self, _request: String, _outcome: String) {}

    fn confirm(
        &self,
        _request: String,
        _kind: String,
        _details: HashMap<String, OwnedValue>,
    ) -> (bool, HashMap<String, OwnedValue>) {
        (true, HashMap::new())
    }
}

/// Serves an approving agent on a new connection to the bus at `address` and
/// registers it with the daemon (`io.scanbind.Daemon`); it stays registered while the
/// returned connection lives. The daemon's refusal (an untrusted agent, another
/// agent registered) is the error.
pub async fn approving_agent(address: &str) -> zbus::Result<zbus::Connection> {
    let conn = zbus::connection::Builder::address(address)?
        .serve_at(AGENT_PATH, Approving)?
        .build()
        .await?;
    let options: HashMap<&str, Value<'_>> = HashMap::new();
    conn.call_method(
        Some("io.scanbind.Daemon"),
        "/io/scanbind/Daemon1",
        Some("io.scanbind.AgentManager1"),
        "RegisterAgent",
        &(ObjectPath::try_from(AGENT_PATH)?, options),
    )
    .await?;
    Ok(conn)
}

/// Unregisters the agent of [`approving_agent`] at once (the daemon would otherwise
/// forget it only when it sees the connection go, and refuse a new agent until then).
pub async fn unregister_agent(conn: &zbus::Connection) -> zbus::Result<()> {
    let options: HashMap<&str, Value<'_>> = HashMap::new();
    conn.call_method(
        Some("io.scanbind.Daemon"),
        "/io/scanbind/Daemon1",
        Some("io.scanbind.AgentManager1"),
        "UnregisterAgent",
        &(ObjectPath::try_from(AGENT_PATH)?, options),
    )
    .await?;
    Ok(())
}
