//! The de-duplication record of AMS notifications: a notification is processed once per
//! `(kind, key)`; a claim is released when processing failed, so Alipay's resend is
//! processed.

use crate::domain::App;
use crate::error::Result;
use crate::store;
use crate::util::now_ms;

/// Records a notification on the relaxed pool (D19): false if it was already recorded.
///
/// Processing either commits a state change durably after the record (which carries
/// the record to disk with it) or changes nothing, and the answer comes after
/// processing.
pub async fn record(app: &App, kind: &str, key: &str) -> Result<bool> {
    Ok(store::notifications::record(&app.db, kind, key, now_ms()).await?)
}

/// Releases a claim after processing failed, so Alipay's resend is processed.
pub async fn release(app: &App, kind: &str, key: &str) -> Result<()> {
    Ok(store::notifications::release(&app.db, kind, key).await?)
}
