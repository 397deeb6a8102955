//! Bindings: starting one (the server's QR code, shown on the display), unbinding, and
//! settling one from the server's events or a refresh refusal. The records live in
//! [`Shared::bindings`]; the D-Bus objects are views of them.

use scanbind_ipc::paths::binding_path;
use scanbind_ipc::types::keys::agent as k;
use scanbind_ipc::{BindingState, ErrorInfo};
use zvariant::{OwnedObjectPath, OwnedValue};

use super::error::Refusal;
use super::model::BindingRecord;
use super::prompt::{app_label, path_value, prompt_timeout, str_value, wallet_name};
use super::shared::Shared;
use crate::error::{Error, Result};
use crate::store::journal::Owner;
use crate::store::vault::SecretKind;
use crate::sync::lock;

/// Starts binding `wallet` for `owner` (the app that asks) with the server, shows the
/// QR code on the display (when `display`), naming the app, and records the binding as
/// `pending`. Returns its path and binding id; the caller serves its object.
///
/// Within the app's binding limits ([`super::limits`]): one pending binding per app,
/// a few per window that do not end bound; past them `Busy`, and nothing is asked of
/// the server or shown.
pub(crate) async fn start(
    shared: &Shared,
    owner: &Owner,
    wallet: String,
    label: String,
    display: bool,
) -> std::result::Result<(OwnedObjectPath, String), Refusal> {
    let now = std::time::Instant::now();
    let slot = shared.limits.begin_binding(owner, now, |id| {
        let unix = crate::link::unix_now();
        lock(&shared.bindings)
            .get(id)
            .is_some_and(|b| b.state == BindingState::Pending && b.expires_at > unix)
    })?;
    let started = shared.link.start_binding(&wallet).await?;
    let expires_at = time::OffsetDateTime::parse(
        &started.expires_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map(|t| t.unix_timestamp())
    .map_err(|e| Refusal::ServerError(format!("bad expiresAt from the server: {e}")))?;
    slot.started(started.binding_id.clone(), now);
    let path = binding_path(&wallet, &started.binding_id);
    if display {
        let label = app_label(&owner.app_id);
        let app = label.text();
        let mut details: Vec<(&'static str, OwnedValue)> = vec![
            (
                k::TITLE,
                str_value(format!("Bind {} for {}", wallet_name(&wallet), label.name)),
            ),
            (
                k::MESSAGE,
                str_value(format!(
                    "{app} asks to bind your {} wallet. Scan with the {} app to pay from \
                     this device with one click. Check that the phone shows the match \
                     code {}.",
                    wallet_name(&wallet),
                    wallet_name(&wallet),
                    started.match_code
                )),
            ),
            (k::APP_ID, str_value(owner.app_id.clone())),
            (k::CODE_VALUE, str_value(started.code_value.clone())),
            (k::MATCH_CODE, str_value(started.match_code.clone())),
            (k::EXPIRES_AT, OwnedValue::from(expires_at)),
            (k::DEVICE_NAME, str_value(shared.device_name.clone())),
            (k::WALLET, str_value(wallet.clone())),
            (k::WALLET_NAME, str_value(wallet_name(&wallet))),
            (k::OBJECT, path_value(&path)),
        ];
        details.extend(label.details());
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
            starter: Some(owner.clone()),
        },
    );
    Ok((path, started.binding_id))
}

/// Revokes a bound binding with the wallet (through the server), deletes its tokens
/// from the keyring and moves it to `unbound`; a pending binding is abandoned.
/// Offline: nothing changes. `caller` is who asked (for the log).
///
/// No question is asked here: this is the manager's path (the device owner, already
/// authorized). An app's `Unbind` goes through [`unbind_confirmed`].
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

/// An app's `Unbind`: the user confirms on the trusted display (kind `unbind`, naming
/// the app, the wallet and the account), within the app's prompt limits
/// ([`super::prompt::limited`]), and only then is the binding unbound ([`unbind`]).
/// Without a display agent: `NeedsConfirmation`; declined or unanswered: `Denied`;
/// nothing changes either way. An app cancels a pending binding it started itself
/// without a question; a binding already settled (failed, expired, unbound) needs
/// none either (nothing changes).
pub(crate) async fn unbind_confirmed(
    shared: &Shared,
    binding: &OwnedObjectPath,
    caller: &Owner,
) -> std::result::Result<(), Refusal> {
    let found = lock(&shared.bindings)
        .iter()
        .find(|(_, b)| b.path == *binding)
        .map(|(id, b)| (id.clone(), b.clone()));
    let Some((binding_id, record)) = found else {
        return Err(Refusal::NotFound(format!(
            "no binding at {}",
            binding.as_str()
        )));
    };
    let own_pending =
        record.state == BindingState::Pending && shared.limits.started_by(caller, &binding_id);
    let settled = !matches!(record.state, BindingState::Pending | BindingState::Bound);
    if own_pending || settled {
        return unbind(shared, binding, caller).await;
    }
    let label = app_label(&caller.app_id);
    let app = label.text();
    let wallet = wallet_name(&record.wallet);
    let account = if record.label.is_empty() {
        String::new()
    } else {
        format!(" ({})", record.label)
    };
    let message = if record.state == BindingState::Pending {
        format!("{app} asks to cancel the pending binding of a {wallet} wallet on this device.")
    } else {
        format!(
            "{app} asks to unbind your {wallet} wallet{account} from this device. No app on \
             this device can charge it until it is bound again."
        )
    };
    let mut details: Vec<(&'static str, OwnedValue)> = vec![
        (k::TITLE, str_value(format!("Unbind {wallet}?"))),
        (k::MESSAGE, str_value(message)),
        (k::APP_ID, str_value(caller.app_id.clone())),
        (k::WALLET, str_value(record.wallet.clone())),
        (k::WALLET_NAME, str_value(wallet.clone())),
        (k::ACCOUNT, str_value(record.label.clone())),
        (k::OBJECT, path_value(binding)),
    ];
    details.extend(label.details());
    let asked = async {
        let answer = shared
            .prompter
            .confirm(
                k::KIND_UNBIND,
                details,
                prompt_timeout(shared),
                "unbinding a wallet from an app needs the user's confirmation",
            )
            .await
            .map_err(|e| match e {
                Refusal::NeedsConfirmation(_) => Refusal::NeedsConfirmation(format!(
                    "unbinding {wallet} needs the user's confirmation and no trusted display \
                     agent is running (start scanbind-agent or scanbindctl agent); the \
                     binding was not changed"
                )),
                Refusal::Denied(m) => Refusal::Denied(format!(
                    "{}; the binding was not changed",
                    m.trim_end_matches("; nothing was charged")
                )),
                other => other,
            })?;
        if answer.allowed {
            Ok(())
        } else {
            Err(Refusal::Denied(format!(
                "the user did not allow {app} to unbind {wallet}; the binding was not changed"
            )))
        }
    };
    super::prompt::limited(shared, caller, asked).await?;
    tracing::info!(binding = %binding, app = %caller.app_id, uid = caller.uid, "the user allowed an app to unbind");
    unbind(shared, binding, caller).await
}

/// Whether `owner` may see the bindings of `wallet` (`ListBindings`): those its policy
/// lets it charge ([`crate::policy::PolicyFile::may_charge`], with the user's consent
/// for it). An invalid policy or consents file shows nothing.
pub(crate) fn visible_to(shared: &Shared, owner: &Owner) -> impl Fn(&str) -> bool {
    let policy = shared.policy.current().ok();
    let granted = shared.policy.granted(owner.uid, &owner.app_id);
    let app = owner.app_id.clone();
    move |wallet: &str| match (&policy, &granted) {
        (Some(p), Ok(g)) => p.may_charge(&app, g.as_ref(), wallet),
        _ => false,
    }
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
    if state == BindingState::Bound {
        shared.limits.binding_bound(binding_id);
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
