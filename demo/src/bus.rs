//! The demo's private bus ([`DemoBus`]): a private `dbus-daemon` when one is installed,
//! else an embedded broker in this process ([`EmbeddedBus`], `busd`), so the demo runs
//! on a machine with nothing installed but Rust.
//!
//! Either way the app and the daemon talk real D-Bus over a Unix socket in the demo's
//! temporary directory. `busd` is a dependency of this development crate only: the
//! shipped `scanbindctl` and `scanbindd` never link it (docs/decisions.md D29).

use std::path::Path;

use scanbind_testkit::{PrivateBus, on_path};

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
            Ok(DemoBus::Embedded(EmbeddedBus::start(dir).await?))
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

/// The `busd` broker serving a Unix socket, running in a task of this process.
#[derive(Debug)]
pub struct EmbeddedBus {
    address: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl EmbeddedBus {
    /// Starts the broker listening on `dir/bus.socket`. It accepts connections once
    /// this returns (the socket is bound).
    pub async fn start(dir: &Path) -> Result<EmbeddedBus> {
        let socket = dir.join("bus.socket");
        let mut bus = busd::bus::Bus::for_address(Some(&format!("unix:path={}", socket.display())))
            .await
            .map_err(|e| Error::Broker(format!("{e:#}")))?;
        let address = bus.address().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            tokio::select! {
                ran = bus.run() => {
                    if let Err(e) = ran {
                        tracing::warn!("the embedded D-Bus broker stopped: {e:#}");
                    }
                }
                _ = stopped => {}
            }
            if let Err(e) = bus.cleanup().await {
                tracing::debug!("removing the embedded broker's socket: {e:#}");
            }
        });
        Ok(EmbeddedBus {
            address,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The bus address (`unix:path=...,guid=...`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Stops accepting connections and removes the socket.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EmbeddedBus {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
