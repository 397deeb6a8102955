//! D-Bus option dictionaries (`a{sv}`) as they arrive on the wire: decoded from any
//! bytes in both byte orders, and every value read as the types the daemon's options
//! use. Never a panic. (The daemon's own option validation is private to `scanbindd`;
//! see docs/reliability.md.)
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use zvariant::serialized::{Context, Data};
use zvariant::{BE, LE, OwnedValue};

fuzz_target!(|data: &[u8]| {
    for ctx in [Context::new_dbus(LE, 0), Context::new_dbus(BE, 0)] {
        let d = Data::new(data, ctx);
        if let Ok((map, _)) = d.deserialize::<HashMap<String, OwnedValue>>() {
            for (_, v) in map {
                let _ = bool::try_from(&v);
                let _ = u32::try_from(&v);
                let _ = i64::try_from(&v);
                let _ = <&str>::try_from(&v);
            }
        }
    }
});
