//! Device API request bodies and signing headers: every request type parsed from any
//! bytes; a public key and signature decoded from any text and checked over the body:
//! never a panic, (the key is part of the input, so a valid triple is possible).
//! The check itself is `checks::device_request_body` (`fuzz/checks.rs`), shared with the stable
//! replay-and-mutate run of the test command.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::device_request_body(data));
