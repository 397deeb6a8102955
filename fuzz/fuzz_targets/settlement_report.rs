//! Settlement reports as `scanbind-server reconcile` reads them (Antom's layout: header,
//! rows, `<END>`): any bytes as each of the three reports: never a panic, nothing accepted
//! without its `<END>` line, every refusal names the file.
//! The check itself is `checks::settlement_report` (`fuzz/checks.rs`), shared with the
//! stable replay-and-mutate run of the test command.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::settlement_report(data));
