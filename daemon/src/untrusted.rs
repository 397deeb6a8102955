//! The daemon's parsers of untrusted input, as pure functions over bytes and text, for
//! the fuzz targets (`fuzz/checks.rs`: `manager_calls`, `identity_sources`) and
//! nothing else. Each is a thin door to the very function the daemon uses; none
//! touches the bus, the file system or the keyring. The layers stay one-way: this
//! module sits on top, beside `runtime`, and nothing in the daemon imports it.

use crate::dbus::{caller, manager};
use crate::domain::desktop;
use crate::policy::PolicyFile;

/// The `io.scanbind.Manager1` members [`manager_call`] takes, by index.
pub const MANAGER_MEMBERS: &[&str] = manager::MEMBERS;

/// A `Manager1` call without the bus: `body` (D-Bus wire format, little-endian) is
/// decoded as the arguments of `MANAGER_MEMBERS[member]` and checked by the functions
/// the method uses, and the change is applied to `policy` as the method applies it
/// once the caller is authorized (`GetPolicy` and `Unbind` only check their
/// arguments). The error is the one the caller would get; a body that does not decode
/// is `InvalidArgument` (the bus refuses such a call before the method runs).
pub fn manager_call(
    policy: &mut PolicyFile,
    member: usize,
    body: &[u8],
) -> Result<(), scanbind_ipc::Error> {
    manager::apply_call(policy, member, body)
}

/// The `Name=` and the programs (`Exec=`, `TryExec=`, first word, quotes removed) of
/// a `.desktop` file's text, as the prompts' app names read them; `None` when the file
/// names no application.
pub fn desktop_entry(text: &str) -> Option<(String, Vec<String>)> {
    desktop::name_and_programs(text)
}

/// `starttime` (field 22) of a `/proc/PID/stat` line (the command name may hold
/// anything, `)` and spaces included).
pub fn proc_stat_start_time(stat: &[u8]) -> Option<u64> {
    caller::stat_start_time(stat)
}

/// The real and effective uids of a `/proc/PID/status` listing.
pub fn proc_status_uids(status: &[u8]) -> Option<(u32, u32)> {
    caller::status_uids(status)
}

/// The pid of a pidfd's `/proc/self/fdinfo` listing (`None` for an exited process or
/// one in another pid namespace).
pub fn pidfd_info_pid(info: &str) -> Option<u32> {
    caller::fdinfo_pid(info)
}

/// The application id of a Flatpak sandbox's `.flatpak-info` key file.
pub fn flatpak_info_app_id(info: &str) -> Option<String> {
    caller::flatpak_app_id(info)
}

/// The snap name of an AppArmor label (`/proc/PID/attr/current`, `SO_PEERSEC`).
pub fn apparmor_snap_name(label: &[u8]) -> Option<String> {
    caller::snap_name(label)
}

/// The app id of an executable link (`/proc/PID/exe`; ` (deleted)` removed).
pub fn exe_link_identity(link: &str) -> String {
    caller::exe_identity(link)
}
