//! Token refresh: one timer per bound binding, set for a while before its access
//! token expires. No polling: between refreshes the task sleeps until the one instant
//! it must act.
//!
//! When the timer fires, the sealed tokens are sent to the server
//! (`POST /v1/bindings/{id}/refresh`), the new blob is stored in the keyring and the
//! timer is set again from the new expiry. A transport error retries with the event
//! stream's capped back-off; a refusal (the refresh token expired or was revoked)
//! deletes the tokens and removes the binding (`BindingRemoved(expired)`).

use std::sync::Arc;
use std::time::Duration;

use scanbind_device_api::types::Binding;
use scanbind_ipc::BindingState;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use super::binding::settle_binding;
use super::shared::Shared;
use crate::error::{Error, Result};
use crate::link::backoff;
use crate::store::vault::SecretKind;
use crate::sync::lock;

/// Refresh when this fraction of the remaining lifetime is left ...
const LEAD_FRACTION: u32 = 5;
/// ... but at least this long before expiry ...
const MIN_LEAD: Duration = Duration::from_secs(60);
/// ... and at most this long before it.
const MAX_LEAD: Duration = Duration::from_secs(24 * 3600);

/// How long to wait before refreshing a token that expires in `left`: a fifth of
/// `left` before expiry, clamped to [`MIN_LEAD`, `MAX_LEAD`], never negative. A very
/// short-lived token (tests) is refreshed at half its life.
pub(crate) fn wait_before_refresh(left: Duration) -> Duration {
    let lead = (left / LEAD_FRACTION).clamp(MIN_LEAD, MAX_LEAD);
    if lead >= left {
        return left / 2;
    }
    left - lead
}

/// The time left until an RFC 3339 instant (zero when past or unreadable).
fn time_left(expires_at: &str) -> Option<Duration> {
    let at = OffsetDateTime::parse(expires_at, &Rfc3339).ok()?;
    let left = at - OffsetDateTime::now_utc();
    Some(left.try_into().unwrap_or(Duration::ZERO))
}

/// Starts (or restarts) the refresh timer of `binding` from its access token expiry.
/// A binding without an expiry needs no refresh.
pub(crate) fn schedule(shared: &Arc<Shared>, binding: &Binding) {
    let Some(left) = binding
        .access_token_expires_at
        .as_deref()
        .and_then(time_left)
    else {
        return;
    };
    let (shared2, id) = (Arc::clone(shared), binding.binding_id.clone());
    let task = tokio::spawn(async move {
        tokio::time::sleep(wait_before_refresh(left)).await;
        run(shared2, id).await;
    });
    if let Some(old) = lock(&shared.refreshers).insert(binding.binding_id.clone(), task) {
        old.abort();
    }
}

/// Stops the refresh timer of a binding (unbound or cancelled).
pub(crate) fn cancel(shared: &Shared, binding_id: &str) {
    if let Some(task) = lock(&shared.refreshers).remove(binding_id) {
        task.abort();
    }
}

async fn run(shared: Arc<Shared>, binding_id: String) {
    let mut attempt = 0_u32;
    loop {
        match refresh_once(&shared, &binding_id).await {
            Ok(Some(b)) => {
                tracing::info!(binding = %binding_id, "tokens refreshed");
                // The new timer replaces this task's handle; this task then ends.
                schedule(&shared, &b);
                return;
            }
            Ok(None) => return,
            Err(Error::ServerRejected { status, code, .. }) if (400..500).contains(&status) => {
                tracing::warn!(binding = %binding_id, %code, "the wallet refused to refresh the tokens; removing the binding");
                let kind = SecretKind::SealedTokens {
                    binding_id: binding_id.clone(),
                };
                if let Err(e) = shared.vault.delete(&kind).await {
                    tracing::error!(cause = %e, "deleting expired tokens failed");
                }
                if let Err(e) = settle_binding(
                    &shared,
                    &binding_id,
                    BindingState::Unbound,
                    None,
                    Some("expired"),
                )
                .await
                {
                    tracing::error!(cause = %e, "announcing the expired binding failed");
                }
                lock(&shared.refreshers).remove(&binding_id);
                return;
            }
            Err(e) => {
                let wait = backoff(attempt, 0);
                attempt = attempt.saturating_add(1);
                tracing::warn!(binding = %binding_id, cause = %e, ?wait, "token refresh failed; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// One refresh: the new binding (its sealed tokens already stored), or `None` when
/// the binding has no tokens any more.
async fn refresh_once(shared: &Shared, binding_id: &str) -> Result<Option<Binding>> {
    let kind = SecretKind::SealedTokens {
        binding_id: binding_id.to_owned(),
    };
    let Some(tokens) = shared.vault.read(&kind).await? else {
        return Ok(None);
    };
    let sealed = Zeroizing::new(String::from_utf8_lossy(tokens.expose()).into_owned());
    drop(tokens);
    let b = shared.link.refresh(binding_id, &sealed).await?;
    if let Some(new) = &b.sealed_tokens {
        let new = Zeroizing::new(new.clone());
        shared.vault.store(&kind, new.as_bytes()).await?;
    }
    Ok(Some(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_waits_for_most_of_the_lifetime() {
        let hour = Duration::from_secs(3600);
        // 1 h left: refresh 12 min before expiry.
        assert_eq!(wait_before_refresh(hour), hour - hour / 5);
        // 30 days left: at most a day before.
        let month = Duration::from_secs(30 * 86400);
        assert_eq!(wait_before_refresh(month), month - MAX_LEAD);
        // 2 min left: a minute before.
        assert_eq!(
            wait_before_refresh(Duration::from_secs(120)),
            Duration::from_secs(60)
        );
        // 4 s left (tests): at half-life.
        assert_eq!(
            wait_before_refresh(Duration::from_secs(4)),
            Duration::from_secs(2)
        );
        assert_eq!(wait_before_refresh(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn time_left_reads_rfc3339_and_clamps_the_past() {
        assert_eq!(time_left("2000-01-01T00:00:00Z"), Some(Duration::ZERO));
        assert!(time_left("2999-01-01T00:00:00Z").unwrap() > Duration::from_secs(1));
        assert_eq!(time_left("not a date"), None);
    }
}
