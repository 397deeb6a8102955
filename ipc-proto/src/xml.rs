//! The introspection XML of each interface, as checked in under `ipc-proto/xml/`.
//!
//! These files are the contract: `docs/dbus-api.md` is checked against them by this
//! crate's tests, and the daemon's live introspection is to be compared with them.
//! Install them to `/usr/share/dbus-1/interfaces/`.

/// `io.scanbind.Daemon1`.
pub const DAEMON1: &str = include_str!("../xml/io.scanbind.Daemon1.xml");
/// `io.scanbind.Binding1`.
pub const BINDING1: &str = include_str!("../xml/io.scanbind.Binding1.xml");
/// `io.scanbind.Payment1`.
pub const PAYMENT1: &str = include_str!("../xml/io.scanbind.Payment1.xml");

/// `io.scanbind.Subscription1`.
pub const SUBSCRIPTION1: &str = include_str!("../xml/io.scanbind.Subscription1.xml");

/// `io.scanbind.AgentManager1` (served by the daemon beside `Daemon1`).
pub const AGENT_MANAGER1: &str = include_str!("../xml/io.scanbind.AgentManager1.xml");
/// `io.scanbind.Agent1` (served by display agents, called by the daemon).
pub const AGENT1: &str = include_str!("../xml/io.scanbind.Agent1.xml");

/// `io.scanbind.Manager1` (the device owner's management interface).
pub const MANAGER1: &str = include_str!("../xml/io.scanbind.Manager1.xml");

/// Every interface: `(interface name, XML)`.
pub const ALL: &[(&str, &str)] = &[
    (crate::names::DAEMON_INTERFACE, DAEMON1),
    (crate::names::BINDING_INTERFACE, BINDING1),
    (crate::names::PAYMENT_INTERFACE, PAYMENT1),
    (crate::names::AGENT_MANAGER_INTERFACE, AGENT_MANAGER1),
    (crate::names::AGENT_INTERFACE, AGENT1),
    (crate::names::MANAGER_INTERFACE, MANAGER1),
    (crate::names::SUBSCRIPTION_INTERFACE, SUBSCRIPTION1),
];
