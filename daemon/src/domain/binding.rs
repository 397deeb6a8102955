//! Bindings: starting one (the server's QR code, shown on the display), unbinding, and
//! settling one from the server's events or a refresh refusal. The records live in
//! [`Shared::bindings`]; the D-Bus objects are views of them.

use scanbind_ipc::paths::binding_path;
use scanbind_ipc::types::keys::agent as k;
use scanbind_ipc::{BindingState, ErrorInfo};
use zvariant::{OwnedObjectPath, OwnedValue};

use super::error::Refusal;
use super::model::BindingRecord;
use super::prompt::{path_value, str_value, wallet_name};
use super::shared::Shared;
use crate::error::{Error, Result};
use crate::store::journal::Owner;
use crate::store::vault::SecretKind;
use crate::sync::lock;

/// Starts binding `wallet` with the server, shows the QR code on the display (when
/// `display`) and records the binding as `pending`. Returns its path and binding id;
/// the caller serves its object.
pub(crate) async fn start(
    shared: &Shared,
    wallet: String,
    label: String,
    display: bool,
) -> std::result::Result<(OwnedObjectPath, String), Refusal> {
    let started = shared.link.start_binding(&wallet).await?;
    let expires_at = time::OffsetDateTime::parse(
        &started.expires_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map(|t| t.unix_timestamp())
    .map_err(|e| Refusal::ServerError(format!("bad expiresAt from the server: {e}")))?;
    let path = binding_path(&wallet, &started.binding_id);
    if display {
        let details: Vec<(&'static str, OwnedValue)> = vec![
            (
                k::TITLE,
                str_value(format!("Bind {}", wallet_name(&wallet))),
            ),
            (
                k::MESSAGE,
                str_value(format!(
                    "Scan with the {} app to pay from this device with one click. Check \
                     that the phone shows the match code {}.",
                    wallet_name(&wallet),
                    started.match_code
                )),
            ),
            (k::CODE_VALUE, str_value(started.code_value.clone())),
            (k::MATCH_CODE, str_value(started.match_code.clone())),
            (k::EXPIRES_AT, OwnedValue::from(expires_at)),
            (k::DEVICE_NAME, str_value(shared.device_name.clone())),
            (k::WALLET, str_value(wallet.clone())),
            (k::WALLET_NAME, str_value(wallet_name(&wallet))),
            (k::OBJECT, path_value(&path)),
        ];
        shared
            .prompter
            .show(path.to_string(), k::KIND_BINDING_QR, details)
            .await;
    }
    lock(&shared.bindings).insert(
        started.binding_id.clone(),
        BindingRecord {
            path: path.clone(),
            wallet,
            label,
            state: BindingState::Pending,
            code_value: started.code_value,
            match_code: started.match_code,
            expires_at,
            last_error: ErrorInfo::default(),
        },
    );
    Ok((path, started.binding_id))
}

/// Revokes a bound binding with the wallet (through the server), deletes its tokens
/// from the keyring and moves it to `unbound`; a pending binding is abandoned.
/// Offline: nothing changes. `caller` is who asked (for the log).
pub(crate) async fn unbind(
    shared: &Shared,
    binding: &OwnedObjectPath,
    caller: &Owner,
) -> std::result::Result<(), Refusal> {
    let found = lock(&shared.bindings)
        .iter()
        .find(|(_, b)| b.path == *binding)
        .map(|(id, b)| (id.clone(), b.state));
    let Some((binding_id, state)) = found else {
        return Err(Refusal::NotFound(format!(
            "no binding at {}",
            binding.as_str()
        )));
    };
    let kind = SecretKind::SealedTokens {
        binding_id: binding_id.clone(),
    };
    match state {
        BindingState::Bound => {
            if let Some(tokens) = shared.vault.read(&kind).await? {
                let sealed = String::from_utf8_lossy(tokens.expose()).into_owned();
                let sealed = zeroize::Zeroizing::new(sealed);
                match shared.link.revoke(&binding_id, &sealed).await {
                    Ok(_) => {}
                    // Already revoked or cancelled on the server: finish locally.
                    Err(Error::ServerRejected { status, .. }) if status == 404 || status == 409 => {
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            shared.vault.delete(&kind).await?;
            super::refresh::cancel(shared, &binding_id);
        }
        BindingState::Pending => {}
        _ => return Ok(()),
    }
    tracing::info!(binding = %binding, app = %caller.app_id, uid = caller.uid, "unbinding");
    settle_binding(
        shared,
        &binding_id,
        BindingState::Unbound,
        None,
        Some("unbound"),
    )
    .await?;
    Ok(())
}

/// Moves a binding to `state` (record, display, announcement). Returns whether it
/// changed; `Completed` is announced on a change, and `BindingRemoved(reason)` too
/// when `removed` is given.
pub(crate) async fn settle_binding(
    shared: &Shared,
    binding_id: &str,
    state: BindingState,
    error: Option<ErrorInfo>,
    removed: Option<&str>,
) -> Result<bool> {
    let (path, changed) = {
        let mut bindings = lock(&shared.bindings);
        let Some(record) = bindings.get_mut(binding_id) else {
            tracing::debug!("event for a binding this run did not start");
            return Ok(false);
        };
        (record.path.clone(), record.settle(state, error))
    };
    if !changed {
        return Ok(false);
    }
    tracing::info!(binding = %path, state = state.as_str(), "binding completed");
    shared
        .prompter
        .dismiss(path.to_string(), state.as_str())
        .await;
    let record = lock(&shared.bindings).get(binding_id).cloned();
    if let Some(record) = record {
        shared.publisher.binding_settled(&record, removed).await?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
