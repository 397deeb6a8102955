//! Asking polkit (`org.freedesktop.PolicyKit1`) whether the sender of a call may do
//! an action: `CheckAuthorization` for the subject `system-bus-name` (the caller's
//! unique name: polkit asks the bus for its process and user itself, so nothing the
//! caller says is trusted). Used by [`super::manager`] where polkit runs on the
//! daemon's bus (the system bus).
//!
//! A hand-written proxy of the one method needed: the maintained polkit crates wrap
//! libpolkit (GLib) or pin another zbus major version.

use std::collections::HashMap;

use zbus::Connection;
use zbus::names::BusName;
use zvariant::Value;

/// polkit's bus name.
pub(crate) const POLKIT_NAME: &str = "org.freedesktop.PolicyKit1";

/// `CheckAuthorization` flag: polkit may ask the user to authenticate (through the
/// authentication agent of the caller's session) before it answers.
const ALLOW_USER_INTERACTION: u32 = 1;

#[zbus::proxy(
    interface = "org.freedesktop.PolicyKit1.Authority",
    default_service = "org.freedesktop.PolicyKit1",
    default_path = "/org/freedesktop/PolicyKit1/Authority",
    gen_blocking = false
)]
trait Authority {
    /// `CheckAuthorization((sa{sv}) subject, s action_id, a{ss} details, u flags,
    /// s cancellation_id) -> (bba{ss})`: (authorized, challenge, details).
    fn check_authorization(
        &self,
        subject: &(&str, HashMap<&str, Value<'_>>),
        action_id: &str,
        details: HashMap<&str, &str>,
        flags: u32,
        cancellation_id: &str,
    ) -> zbus::Result<(bool, bool, HashMap<String, String>)>;
}

/// Whether polkit runs on this bus (its name has an owner, or can be activated).
pub(crate) async fn runs(conn: &Connection) -> bool {
    let Ok(bus) = zbus::fdo::DBusProxy::new(conn).await else {
        return false;
    };
    let Ok(name) = BusName::from_static_str(POLKIT_NAME) else {
        return false;
    };
    if bus.name_has_owner(name).await.unwrap_or(false) {
        return true;
    }
    bus.list_activatable_names()
        .await
        .is_ok_and(|names| names.iter().any(|n| n.as_str() == POLKIT_NAME))
}

/// polkit's answer for `sender` and `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Authorized.
    Yes,
    /// Not authorized.
    No,
    /// Not authorized yet: the user could authenticate (no authentication agent
    /// answered).
    Challenge,
}

/// Asks polkit whether the connection `sender` may do `action`, letting polkit ask the
/// user to authenticate.
pub(crate) async fn check(conn: &Connection, sender: &str, action: &str) -> zbus::Result<Verdict> {
    let authority = AuthorityProxy::new(conn).await?;
    let subject = (
        "system-bus-name",
        HashMap::from([("name", Value::from(sender))]),
    );
    let (authorized, challenge, _) = authority
        .check_authorization(&subject, action, HashMap::new(), ALLOW_USER_INTERACTION, "")
        .await?;
    Ok(match (authorized, challenge) {
        (true, _) => Verdict::Yes,
        (false, true) => Verdict::Challenge,
        (false, false) => Verdict::No,
    })
}
