//! The caller identity's sources: `.desktop` files, `/proc/PID/stat`, `status` and
//! pidfd `fdinfo` listings, `.flatpak-info` files, AppArmor labels and executable
//! links, parsed from any bytes; what they yield stays within its documented form.
//! The check itself is `checks::identity_sources` (`fuzz/checks.rs`), shared with the
//! stable replay-and-mutate run of the test command.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::identity_sources(data));
