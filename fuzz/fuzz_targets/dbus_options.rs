//! D-Bus option dictionaries (`a{sv}`) as they arrive on the wire: decoded from any
//! bytes in both byte orders, and every value read as the types the daemon's options
//! use. Never a panic. (The daemon's own option validation is private to `scanbindd`;
//! see docs/reliability.md.)
//! The check itself is `checks::dbus_options` (`fuzz/checks.rs`), shared with the stable
//! replay-and-mutate run of the test command.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::dbus_options(data));
