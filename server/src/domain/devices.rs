//! Registered devices and the replay guard of their signed requests.

use scanbind_device_api::ErrorCode;

use crate::domain::App;
use crate::error::{Error, Result};
use crate::store::{self, DeviceRow};
use crate::util::now_ms;

/// Registers a device key (or renames a registered one). Returns the device and whether
/// it is new.
pub async fn register(
    app: &App,
    device_id: &str,
    public_key: &str,
    name: &str,
    model: &str,
) -> Result<(DeviceRow, bool)> {
    let now = now_ms();
    let inserted = store::devices::insert(&app.db, device_id, public_key, name, model, now).await?;
    if !inserted {
        store::devices::rename(&app.db, device_id, name, model).await?;
    }
    let d = store::devices::load(&app.db, device_id)
        .await?
        .ok_or_else(|| Error::api(ErrorCode::Internal, "device vanished"))?;
    Ok((d, inserted))
}

/// A registered device.
pub async fn load(app: &App, device_id: &str) -> Result<Option<DeviceRow>> {
    Ok(store::devices::load(&app.db, device_id).await?)
}

/// Accepts a request nonce once: false for a replay.
pub async fn accept_nonce(
    app: &App,
    device_id: &str,
    nonce: &str,
    expires_at: i64,
) -> Result<bool> {
    Ok(store::devices::record_nonce(&app.db, device_id, nonce, expires_at).await?)
}
