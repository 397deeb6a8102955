//! Well-known names: the bus name, the interface names and the entry-point path.

/// The well-known bus name the daemon owns. Unversioned: it only changes if the whole
/// API is rewritten.
///
/// Since 0.1.
pub const BUS_NAME: &str = "io.scanbind.Daemon";

/// The daemon's entry-point interface: status, bindings, payments.
///
/// Since 0.1.
pub const DAEMON_INTERFACE: &str = "io.scanbind.Daemon1";

/// The interface of one binding (a wallet bound, or being bound, to this device).
///
/// Since 0.1.
pub const BINDING_INTERFACE: &str = "io.scanbind.Binding1";

/// The interface of one payment job.
///
/// Since 0.1.
pub const PAYMENT_INTERFACE: &str = "io.scanbind.Payment1";

/// The interface of one subscription (a recurring charge the merchant server makes
/// each period), at [`crate::paths::subscription_path`].
///
/// Since 0.4.
pub const SUBSCRIPTION_INTERFACE: &str = "io.scanbind.Subscription1";

/// Where display agents register (and the parent PIN is set), on the entry-point
/// object beside [`DAEMON_INTERFACE`].
///
/// Since 0.2.
pub const AGENT_MANAGER_INTERFACE: &str = "io.scanbind.AgentManager1";

/// The interface a display agent implements at the path it registered; only the
/// daemon calls it.
///
/// Since 0.2.
pub const AGENT_INTERFACE: &str = "io.scanbind.Agent1";

/// The prefix of every error name the daemon returns (see [`crate::Error`]).
///
/// Since 0.1.
pub const ERROR_PREFIX: &str = "io.scanbind.Daemon1.Error";

/// The entry-point object path; it implements [`DAEMON_INTERFACE`]. Versioned with the
/// interface, never `/`.
///
/// Since 0.1.
pub const DAEMON_PATH: &str = "/io/scanbind/Daemon1";

/// The management interface: the device owner reads and changes the payment policy
/// and unbinds wallets (`scanbindctl apps`, `profiles`, `unbind`). Served at
/// [`MANAGER_PATH`]; every call is authorized (polkit where it runs, else uid 0, the
/// admin group, or the session's own user; never a sandboxed app).
///
/// Since 0.3.
pub const MANAGER_INTERFACE: &str = "io.scanbind.Manager1";

/// The management object's path; it implements [`MANAGER_INTERFACE`].
///
/// Since 0.3.
pub const MANAGER_PATH: &str = "/io/scanbind/Manager1";

/// The polkit action that reads the payment policy (`GetPolicy`).
///
/// Since 0.3.
pub const ACTION_READ_POLICY: &str = "io.scanbind.read-policy";

/// The polkit action that changes the payment policy (every `Manager1` method that
/// writes it).
///
/// Since 0.3.
pub const ACTION_MANAGE_POLICY: &str = "io.scanbind.manage-policy";

/// The polkit action that unbinds a wallet directly (`Manager1.Unbind`).
///
/// Since 0.3.
pub const ACTION_UNBIND: &str = "io.scanbind.unbind";
