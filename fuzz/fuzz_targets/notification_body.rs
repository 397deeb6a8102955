//! Notification bodies: the three notification models parsed and validated from any
//! bytes, and the verifier (headers + body) with a real Alipay public key: never a
//! panic, and nothing unsigned is ever accepted.
//! The check itself is `checks::notification_body` (`fuzz/checks.rs`), shared with the stable
//! replay-and-mutate run of the test command.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::notification_body(data));
