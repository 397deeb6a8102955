//! The sealed-token decoder and sealer: any text as a blob, for any device and binding,
//! never panics and opens nothing; and a blob sealed from the input (device, binding and
//! tokens taken from its lines) opens for its own device and binding with exactly what
//! was sealed, and for no other device or binding, swapped ids, or a changed, truncated
//! or extended copy of itself.
//! The check itself is `checks::sealed_token` (`fuzz/checks.rs`), shared with the stable
//! replay-and-mutate run of the test command.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::sealed_token(data));
