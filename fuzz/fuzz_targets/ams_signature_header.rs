//! The AMS `signature` header parser: any text, never a panic; what parses
//! re-serialises and parses to the same value.
//! The check itself is `checks::ams_signature_header` (`fuzz/checks.rs`), shared with the stable
//! replay-and-mutate run of the test command.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::ams_signature_header(data));
