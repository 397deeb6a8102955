//! An embedded D-Bus broker ([`EmbeddedBus`], `busd`, by the zbus authors) for machines
//! without a `dbus-daemon`: `scanbindd --dev --embedded-bus` and the demo serve on it.
//! Apps still talk real D-Bus, over a Unix socket. The shipped daemon is built without
//! this crate (docs/decisions.md D24, D29).

use std::path::Path;

use crate::{Error, Result};

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
