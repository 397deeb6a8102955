//! Asking the user before a payment is recorded, as the policy wants it: an app's
//! first charge (consent), a confirmation, a parent's approval with the PIN (kid
//! profiles). The questions are put through the
//! [`Prompter`](super::ports::Prompter) (the display agent);
//! a PIN is checked here (`pin`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use scanbind_ipc::types::keys::agent as keys;
use zvariant::{OwnedObjectPath, OwnedValue, Value};

use super::error::Refusal;
use super::pin;
use super::ports::Details;
use super::shared::Shared;

/// How long a prompt waits for an answer unless `prompt_timeout_secs` says otherwise.
pub(crate) const DEFAULT_PROMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the prompt timeout comes from: the policy, else the default.
pub(crate) fn prompt_timeout(shared: &Shared) -> Duration {
    shared
        .policy
        .current()
        .ok()
        .and_then(|p| p.prompt_timeout_secs)
        .map_or(DEFAULT_PROMPT_TIMEOUT, |s| {
            Duration::from_secs(u64::from(s))
        })
}

/// The app as people call it ([`app_label`]'s name; show [`AppLabel::exe`] beside it).
#[allow(dead_code)] // for prompts that show only the name in a title
pub(crate) fn app_name(app_id: &str) -> String {
    app_label(app_id).name
}

/// How a prompt names an app (issue 22 item 7): a name from the system's metadata for
/// the verified app id, and the executable beside it, so the user can tell two apps
/// apart that give themselves the same name. Never a name the app gives at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppLabel {
    /// `app-name`: the `Name=` of the `.desktop` file the system installed for the app
    /// ([`super::desktop`]), else the executable's file name, the Flatpak id's last
    /// part or the snap name; "Unverified program" for an unverified caller.
    pub(crate) name: String,
    /// `app-exe`: the executable's path; for a Flatpak or snap app its verified id
    /// (`flatpak:…`, `snap:…`), the path inside its sandbox meaning nothing outside.
    pub(crate) exe: String,
}

impl AppLabel {
    /// The `app-name` and `app-exe` details of a prompt.
    pub(crate) fn details(&self) -> [(&'static str, OwnedValue); 2] {
        [
            (keys::APP_NAME, str_value(self.name.clone())),
            (keys::APP_EXE, str_value(self.exe.clone())),
        ]
    }

    /// `name (exe)`, for a message.
    pub(crate) fn text(&self) -> String {
        format!("{} ({})", self.name, self.exe)
    }
}

/// The [`AppLabel`] of the app whose verified id is `app_id`.
pub(crate) fn app_label(app_id: &str) -> AppLabel {
    use super::desktop;
    let last = |id: &str| {
        id.rsplit(['/', '.'])
            .find(|s| !s.is_empty())
            .unwrap_or(id)
            .to_owned()
    };
    if let Some(id) = app_id.strip_prefix("flatpak:") {
        return AppLabel {
            name: desktop::name_for_flatpak(id, None).unwrap_or_else(|| last(id)),
            exe: app_id.to_owned(),
        };
    }
    if let Some(snap) = app_id.strip_prefix("snap:") {
        return AppLabel {
            name: desktop::name_for_snap(snap, None).unwrap_or_else(|| snap.to_owned()),
            exe: app_id.to_owned(),
        };
    }
    if let Some(exe) = app_id.strip_prefix(scanbind_policy::UNVERIFIED_PREFIX) {
        return AppLabel {
            name: "Unverified program".to_owned(),
            exe: exe.to_owned(),
        };
    }
    AppLabel {
        name: desktop::name_for_exe(&desktop::data_dirs(), std::path::Path::new(app_id))
            .unwrap_or_else(|| last(app_id)),
        exe: app_id.to_owned(),
    }
}

/// The wallet as people call it (`AlipayHK` for `ALIPAY_HK`).
pub(crate) fn wallet_name(wallet: &str) -> String {
    scanbind_ams::wallet::Wallet::parse(wallet)
        .scan_to_bind()
        .map_or_else(|| wallet.to_owned(), |p| p.display_name.to_owned())
}

/// What a payment prompt shows.
pub(crate) struct PaymentPrompt<'a> {
    /// Who asks to pay.
    pub(crate) owner: &'a crate::store::journal::Owner,
    /// Empty for an order code.
    pub(crate) wallet: &'a str,
    pub(crate) amount: scanbind_money::Money,
    pub(crate) description: &'a str,
}

impl PaymentPrompt<'_> {
    pub(crate) fn details(&self, message: String, title: &str) -> Details {
        let mut d: Details = vec![
            (
                keys::TITLE,
                OwnedValue::from(zvariant::Str::from(title.to_owned())),
            ),
            (keys::MESSAGE, str_value(message)),
            (keys::APP_ID, str_value(self.owner.app_id.clone())),
            (keys::AMOUNT_TEXT, str_value(self.amount.to_string())),
            (
                keys::AMOUNT_MINOR,
                OwnedValue::from(self.amount.minor().get()),
            ),
            (
                keys::CURRENCY,
                str_value(self.amount.currency().code().to_owned()),
            ),
            (keys::DESCRIPTION, str_value(self.description.to_owned())),
        ];
        d.extend(app_label(&self.owner.app_id).details());
        if !self.wallet.is_empty() {
            d.push((keys::WALLET, str_value(self.wallet.to_owned())));
            d.push((keys::WALLET_NAME, str_value(wallet_name(self.wallet))));
        }
        d
    }

    fn wallet_text(&self) -> String {
        if self.wallet.is_empty() {
            "a wallet".to_owned()
        } else {
            format!("your {} wallet", wallet_name(self.wallet))
        }
    }
}

/// An object path value for `details`.
pub(crate) fn path_value(path: &OwnedObjectPath) -> OwnedValue {
    Value::from(path.as_ref())
        .try_to_owned()
        .unwrap_or_else(|_| str_value(path.to_string()))
}

/// A string value for `details`, as [`display_text`]: every string an agent shows goes
/// through here.
pub(crate) fn str_value(s: String) -> OwnedValue {
    OwnedValue::from(zvariant::Str::from(display_text(&s)))
}

/// Whether `c` may not reach a display: control characters (C0, DEL, C1, so no line
/// breaks or terminal escapes) and the bidirectional marks, embeddings, overrides and
/// isolates (U+200E/U+200F, U+061C, U+202A–U+202E, U+2066–U+2069) with which a
/// description could reorder what the user reads (e.g. move the amount).
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` without the characters an app could use to disguise a prompt ([`hidden`]). The
/// amount and the payee are never taken from such text: they have their own detail keys
/// (`amount-text`, `app-name`, ...).
pub(crate) fn display_text(s: &str) -> String {
    s.chars().filter(|c| !hidden(*c)).collect()
}

/// Asks what the policy wants asked before a payment is recorded; `Ok` to go on.
/// A consent that is given is kept for this user and app only, with the `[consent]`
/// limits ([`PolicySource::grant`](crate::policy::PolicySource::grant): the daemon's
/// consents file, or a session daemon's own policy file); the caller decides again
/// with the new rule.
pub(crate) async fn ask(
    shared: &Arc<Shared>,
    prompt: &crate::policy::Prompt,
    p: &PaymentPrompt<'_>,
) -> Result<(), Refusal> {
    use crate::policy::Prompt;
    let timeout = prompt_timeout(shared);
    // The name with the executable beside it, in the message too.
    let app = app_label(&p.owner.app_id).text();
    match prompt {
        Prompt::Consent => limited(shared, p.owner, consent(shared, p, &app, timeout)).await,
        Prompt::Confirm => limited(shared, p.owner, confirm(shared, p, &app, timeout)).await,
        Prompt::ParentApproval => parent_approval(shared, p, &app, timeout).await,
    }
}

/// Runs `asked` (a question on the display, `Ok` when approved) within the app's
/// prompt limits ([`super::limits`]): refused with `Busy`, nothing shown, when the app
/// is already asking or asked too often without approval; an answer other than
/// approval (`Denied`: declined, unanswered, the agent went away) counts against the
/// app; a question that was not shown (`NeedsConfirmation`, other errors) does not.
pub(crate) async fn limited<T>(
    shared: &Shared,
    owner: &crate::store::journal::Owner,
    asked: impl std::future::Future<Output = Result<T, Refusal>>,
) -> Result<T, Refusal> {
    let slot = shared.limits.begin_prompt(owner, Instant::now())?;
    let result = asked.await;
    match &result {
        Ok(_) => slot.ended(true, Instant::now()),
        Err(Refusal::Denied(_)) => slot.ended(false, Instant::now()),
        Err(_) => drop(slot),
    }
    result
}

/// The first-use consent: allowed, the consent is kept (see [`ask`]).
async fn consent(
    shared: &Arc<Shared>,
    p: &PaymentPrompt<'_>,
    app: &str,
    timeout: Duration,
) -> Result<(), Refusal> {
    let policy = shared.policy.current().map_err(Refusal::NotAllowed)?;
    let limit = policy
        .consent_limits(p.amount.currency())
        .and_then(|l| l.daily)
        .map(|d| {
            format!(
                " up to {} a day",
                crate::policy::money_text(p.amount.currency(), d)
            )
        })
        .unwrap_or_else(|| " with no daily limit".to_owned());
    let message = format!(
        "Allow {app} to charge {}{limit}? It asks to pay {} now.",
        p.wallet_text(),
        p.amount
    );
    let answer = shared
        .prompter
        .confirm(
            keys::KIND_CONSENT,
            p.details(message, "A new app wants to charge"),
            timeout,
            &format!("{} has not been allowed yet", p.owner.app_id),
        )
        .await?;
    if !answer.allowed {
        return Err(Refusal::Denied(format!(
            "the user did not allow {app} to charge; nothing was charged"
        )));
    }
    shared
        .policy
        .grant(
            p.owner.uid,
            &p.owner.app_id,
            p.wallet,
            policy.consent.limits.clone(),
        )
        .map_err(|e| Refusal::Internal(format!("could not save the consent: {e}")))?;
    tracing::info!(app = %p.owner.app_id, uid = p.owner.uid, "the user allowed a new app to charge");
    Ok(())
}

/// A charge the policy wants confirmed.
async fn confirm(
    shared: &Arc<Shared>,
    p: &PaymentPrompt<'_>,
    app: &str,
    timeout: Duration,
) -> Result<(), Refusal> {
    let message = format!(
        "Pay {} to {app} from {}? ({})",
        p.amount,
        p.wallet_text(),
        p.description
    );
    let answer = shared
        .prompter
        .confirm(
            keys::KIND_PAYMENT,
            p.details(message, "Confirm the payment"),
            timeout,
            &format!(
                "each charge by {} needs the user's confirmation",
                p.owner.app_id
            ),
        )
        .await?;
    if answer.allowed {
        Ok(())
    } else {
        Err(Refusal::Denied(
            "the user declined the payment; nothing was charged".into(),
        ))
    }
}

/// A kid profile's charge: the parent types the PIN on the agent; wrong PINs are
/// asked again until the attempts run out (then approvals lock for a while).
async fn parent_approval(
    shared: &Arc<Shared>,
    p: &PaymentPrompt<'_>,
    app: &str,
    timeout: Duration,
) -> Result<(), Refusal> {
    let Some(stored) = pin::stored(shared).await? else {
        return Err(Refusal::NeedsConfirmation(
            "the kid profile's charges need a parent's approval, and no parent PIN is set \
             (scanbindctl profiles set-pin); nothing was charged"
                .into(),
        ));
    };
    let left = pin::status(shared)
        .await?
        .map_err(pin::Refused::to_refusal)?;
    // Asked until the PIN is right or refused: one prompt as the limits count it.
    limited(
        shared,
        p.owner,
        ask_parent(shared, p, app, timeout, &stored, left),
    )
    .await
}

/// Asks for the parent PIN until it is right, the parent declines or the attempts run
/// out.
async fn ask_parent(
    shared: &Arc<Shared>,
    p: &PaymentPrompt<'_>,
    app: &str,
    timeout: Duration,
    stored: &str,
    mut left: u32,
) -> Result<(), Refusal> {
    loop {
        let message = format!(
            "{app} asks to pay {} ({}). A parent can approve with the PIN.",
            p.amount, p.description
        );
        let mut details = p.details(message, "A parent's approval is needed");
        details.push((keys::PIN_REQUIRED, OwnedValue::from(true)));
        details.push((keys::ATTEMPTS_LEFT, OwnedValue::from(left)));
        let answer = shared
            .prompter
            .confirm(
                keys::KIND_PARENT_APPROVAL,
                details,
                timeout,
                "the kid profile's charges need a parent's approval",
            )
            .await?;
        if !answer.allowed {
            return Err(Refusal::Denied(
                "the parent did not approve the payment; nothing was charged".into(),
            ));
        }
        let typed = answer.pin.unwrap_or_default();
        match pin::check_counted(shared, stored, &typed).await? {
            Ok(()) => {
                tracing::info!(app = %p.owner.app_id, uid = p.owner.uid, "a parent approved a kid profile's payment");
                return Ok(());
            }
            Err(pin::Refused::Wrong(n)) => left = n,
            Err(locked @ pin::Refused::Locked(_)) => return Err(locked.to_refusal()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_labels_name_the_verified_app_with_its_executable() {
        let l = app_label("flatpak:com.example.Game");
        assert_eq!(l.exe, "flatpak:com.example.Game");
        let l = app_label("snap:tv-game");
        assert_eq!(l.exe, "snap:tv-game");
        let l = app_label("unverified:/usr/bin/game");
        assert_eq!(l.name, "Unverified program");
        assert_eq!(l.exe, "/usr/bin/game");
        assert_eq!(l.text(), "Unverified program (/usr/bin/game)");
        let l = app_label("/opt/nowhere/space-miner");
        assert_eq!(
            (l.name.as_str(), l.exe.as_str()),
            ("space-miner", "/opt/nowhere/space-miner")
        );
    }

    #[test]
    fn hostile_text_loses_controls_and_bidi_overrides() {
        let hostile = "Coins\u{202E}00.001 DKH\u{202C}\r\n\u{1b}[2J\u{7}Pay \u{2066}0.01\u{2069}\u{200F}\u{200E}\u{061C}\u{202A}\u{202B}\u{202D}\u{2067}\u{2068}\u{85}\u{9b}\t";
        let shown = display_text(hostile);
        assert_eq!(shown, "Coins00.001 DKH[2JPay 0.01");
        assert!(shown.chars().all(|c| !hidden(c)));
        // Ordinary text, other scripts and emoji stay.
        for fine in ["Season pass", "季票 ×2", "مرحبا", "Pass 🎮", "a\u{200D}b"] {
            assert_eq!(display_text(fine), fine);
        }
    }

    #[test]
    fn the_amount_and_payee_keep_their_own_keys() {
        let owner = crate::store::journal::Owner {
            uid: 1000,
            app_id: "/usr/games/space-miner".into(),
        };
        let amount =
            scanbind_money::Money::parse_major("12.50", scanbind_money::Currency::HKD).unwrap();
        let p = PaymentPrompt {
            owner: &owner,
            wallet: "ALIPAY_HK",
            amount,
            description: "\u{202E}Free\nAmount: HKD 0.01",
        };
        let d = p.details(format!("Pay {} ({})", p.amount, p.description), "t");
        let get = |k: &str| {
            let v = &d.iter().find(|(key, _)| *key == k).unwrap().1;
            String::try_from(v.clone()).unwrap()
        };
        assert_eq!(get(keys::DESCRIPTION), "FreeAmount: HKD 0.01");
        assert_eq!(get(keys::AMOUNT_TEXT), amount.to_string());
        assert_eq!(get(keys::APP_NAME), "space-miner");
        assert_eq!(get(keys::APP_EXE), "/usr/games/space-miner");
        assert!(!get(keys::MESSAGE).contains('\n'));
        assert!(!get(keys::MESSAGE).contains('\u{202E}'));
    }
}
