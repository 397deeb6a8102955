//! The demo's private bus ([`DemoBus`]): a private `dbus-daemon` when one is installed,
//! else an embedded broker in this process ([`EmbeddedBus`], `busd`, from the
//! development stack), so the demo runs
//! on a machine with nothing installed but Rust.
//!
//! Either way the app and the daemon talk real D-Bus over a Unix socket in the demo's
//! temporary directory. `busd` is a dependency of this development crate only: the
//! shipped `scanbindctl` and `scanbindd` never link it (docs/decisions.md D29).

use std::path::Path;

use scanbind_testkit::{PrivateBus, on_path};

pub use scanbindd::dev::EmbeddedBus;

use crate::{Error, Result};

/// The demo's private bus, whichever kind it is. Stopped on drop.
#[derive(Debug)]
pub enum DemoBus {
    /// A private `dbus-daemon` process (it was on `PATH`).
    DbusDaemon(PrivateBus),
    /// The embedded broker, in this process (no `dbus-daemon` on `PATH`).
    Embedded(EmbeddedBus),
}

impl DemoBus {
    /// Starts a private `dbus-daemon` with its socket in `dir` if `dbus-daemon` is on
    /// `PATH`, else the embedded broker on `dir/bus.socket`. Returns once the bus
    /// accepts connections. Needs a Tokio runtime (the embedded broker runs in a task).
    pub async fn start(dir: &Path) -> Result<DemoBus> {
        if on_path("dbus-daemon") {
            Ok(DemoBus::DbusDaemon(
                PrivateBus::start(dir).map_err(Error::DbusDaemon)?,
            ))
        } else {
            Ok(DemoBus::Embedded(
                EmbeddedBus::start(dir)
                    .await
                    .map_err(|e| Error::Broker(e.to_string()))?,
            ))
        }
    }

    /// The bus address, for `DBUS_SESSION_BUS_ADDRESS` and zbus.
    pub fn address(&self) -> &str {
        match self {
            DemoBus::DbusDaemon(b) => b.address(),
            DemoBus::Embedded(b) => b.address(),
        }
    }

    /// What it is, for people: one line of the demo's step 0.
    pub fn describe(&self) -> &'static str {
        match self {
            DemoBus::DbusDaemon(_) => "private dbus-daemon",
            DemoBus::Embedded(_) => "embedded broker (busd; no dbus-daemon found)",
        }
    }

    /// Whether it is the embedded broker.
    pub fn is_embedded(&self) -> bool {
        matches!(self, DemoBus::Embedded(_))
    }

    /// Stops the bus: kills the `dbus-daemon`, or stops the broker and removes its
    /// socket.
    pub async fn stop(self) {
        match self {
            DemoBus::DbusDaemon(b) => drop(b),
            DemoBus::Embedded(b) => b.stop().await,
        }
    }
}
