//! `io.scanbind.Manager1` calls as they arrive on the wire: a sequence of calls, each
//! decoded, checked and applied to one policy as the daemon does; every change it
//! accepts leaves a policy that is written and read back as the same policy.
//! The check itself is `checks::manager_calls` (`fuzz/checks.rs`), shared with the
//! stable replay-and-mutate run of the test command.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::manager_calls(data));
