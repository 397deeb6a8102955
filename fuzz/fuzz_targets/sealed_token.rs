//! The sealed-token decoder: any text as a blob, for any device and binding: never a
//! panic, and nothing opens except what was sealed with the key, for that device and
//! binding (a blob sealed for another device never opens).
//! The check itself is `checks::sealed_token` (`fuzz/checks.rs`), shared with the stable
//! replay-and-mutate run of the test command.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::sealed_token(data));
