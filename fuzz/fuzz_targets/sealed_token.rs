//! The sealed-token decoder: any text as a blob, for any device and binding: never a
//! panic, and nothing opens except what was sealed with the key, for that device and
//! binding (a blob sealed for another device never opens).
#![no_main]
use libfuzzer_sys::fuzz_target;
use scanbind_server::seal::Sealer;
use std::sync::OnceLock;

fn sealer() -> &'static Sealer {
    static S: OnceLock<Sealer> = OnceLock::new();
    S.get_or_init(|| Sealer::new(&[[7_u8; 32], [9_u8; 32]]).expect("sealer"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\n');
    let (Some(device), Some(binding), Some(blob)) = (parts.next(), parts.next(), parts.next())
    else {
        let _ = sealer().open("dev_a", "bind_a", text);
        return;
    };
    let _ = sealer().open(device, binding, blob);
    // Fuzzed text never opens as a blob of a device it was not sealed for.
    assert!(sealer().open("dev_other", "bind_other", blob).is_err());
});
