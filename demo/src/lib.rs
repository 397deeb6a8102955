//! `scanbind-demo`: the whole-system walk-through behind `scanbindctl demo` (the
//! `scanbind-demo` binary, `src/main.rs`) and the embedded stack it runs on
//! ([`Embedded`]: sandbox, merchant server and `scanbindd` in one process), which the
//! clients' tests use too, and the demo's private bus ([`DemoBus`]: a private
//! `dbus-daemon`, or the embedded broker `busd` when none is installed).
//!
//! A development tool, never shipped: `scanbindctl`, which ships, runs this program and
//! carries no daemon, server or sandbox itself.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod bus;
pub mod embedded;

pub use bus::{DemoBus, EmbeddedBus};
pub use embedded::{Embedded, Error, Result};
