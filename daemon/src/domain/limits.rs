//! Per-app limits on what an app can put on the trusted display (issue 22, items 2
//! and 8), so that no app can flood the screen with QR codes or wear the user down
//! with questions until one is approved (approval fatigue). Kept per owner (uid and
//! app id, as `dbus::caller` identified it), in memory: a restart of the daemon
//! starts every count again.
//!
//! - **Prompts** (a payment's consent, confirmation or parent approval, an unbinding):
//!   one at a time per app ([`Limits::begin_prompt`]; a second one while the first
//!   waits for its answer is refused), and at most [`MAX_UNAPPROVED_PROMPTS`] prompts
//!   per app within [`PROMPT_WINDOW`] that were *not* approved (declined, unanswered,
//!   the agent went away). Past that, further prompt-needing requests of the app are
//!   refused with `Busy` and nothing is shown, until the oldest refusal leaves the
//!   window. Approved prompts never count, so an app's normal flow (one purchase at a
//!   time, each confirmed) is never cut off; a prompt that could not be shown (no
//!   agent: `NeedsConfirmation`) does not count either.
//! - **Bindings** (`StartBinding`, [`Limits::begin_binding`]): at most one pending
//!   binding per app (a QR code not yet scanned and not expired), and at most
//!   [`MAX_BINDINGS`] bindings per app within [`BINDING_WINDOW`] that did not end
//!   bound. A binding the user scanned and approved stops counting
//!   ([`Limits::binding_bound`]).
//!
//! Refusals are [`Refusal::Busy`] with a message saying when to retry.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::Refusal;
use crate::store::journal::Owner;
use crate::sync::lock;

/// The window of [`MAX_UNAPPROVED_PROMPTS`]: ten minutes.
pub(crate) const PROMPT_WINDOW: Duration = Duration::from_secs(600);
/// Prompts an app may have declined, left unanswered or lost (the agent went away)
/// within [`PROMPT_WINDOW`] before its further prompt-needing requests are refused.
pub(crate) const MAX_UNAPPROVED_PROMPTS: usize = 5;
/// The window of [`MAX_BINDINGS`]: ten minutes.
pub(crate) const BINDING_WINDOW: Duration = Duration::from_secs(600);
/// Bindings an app may start within [`BINDING_WINDOW`] that do not end bound.
pub(crate) const MAX_BINDINGS: usize = 5;

/// What one app has put on the display lately.
#[derive(Debug, Default)]
struct App {
    /// A prompt of this app is waiting for its answer.
    asking: bool,
    /// When its prompts that were not approved ended, oldest first.
    unapproved: VecDeque<Instant>,
    /// A `StartBinding` of this app is under way.
    starting: bool,
    /// Its bindings that have not ended bound: (when started, binding id), oldest
    /// first.
    bindings: VecDeque<(Instant, String)>,
}

impl App {
    /// Forgets what left its window.
    fn expire(&mut self, now: Instant) {
        while self
            .unapproved
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= PROMPT_WINDOW)
        {
            self.unapproved.pop_front();
        }
        while self
            .bindings
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) >= BINDING_WINDOW)
        {
            self.bindings.pop_front();
        }
    }

    fn is_idle(&self) -> bool {
        !self.asking && !self.starting && self.unapproved.is_empty() && self.bindings.is_empty()
    }
}

/// The per-app limits of one daemon (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Limits {
    /// A std mutex: held for a lookup and an update, never across an `.await`.
    apps: Mutex<HashMap<Owner, App>>,
}

/// Seconds until `since + window` (at least 1), for "retry in N s".
fn retry_in(since: Instant, window: Duration, now: Instant) -> u64 {
    (since + window)
        .saturating_duration_since(now)
        .as_secs()
        .max(1)
}

impl Limits {
    /// Takes the app's prompt slot, or refuses (`Busy`) when the app is already
    /// asking or ran out of unapproved prompts. Say how it ended with
    /// [`PromptSlot::ended`]; dropped without that, the prompt does not count.
    pub(crate) fn begin_prompt(
        &self,
        owner: &Owner,
        now: Instant,
    ) -> Result<PromptSlot<'_>, Refusal> {
        let mut apps = lock(&self.apps);
        let app = apps.entry(owner.clone()).or_default();
        app.expire(now);
        if app.asking {
            return Err(Refusal::Busy(format!(
                "{} is already waiting for the user's answer on the display; one question \
                 at a time per app; nothing was done",
                owner.app_id
            )));
        }
        if app.unapproved.len() >= MAX_UNAPPROVED_PROMPTS
            && let Some(oldest) = app.unapproved.front()
        {
            return Err(Refusal::Busy(format!(
                "{} asked the user {MAX_UNAPPROVED_PROMPTS} times within {} minutes without \
                 approval; it may ask again in {} s; nothing was shown or done",
                owner.app_id,
                PROMPT_WINDOW.as_secs() / 60,
                retry_in(*oldest, PROMPT_WINDOW, now)
            )));
        }
        app.asking = true;
        Ok(PromptSlot {
            limits: self,
            owner: owner.clone(),
        })
    }

    /// Checks that `owner` may start a binding now: no binding of its own pending
    /// (`still_pending` says whether a binding id still waits for its scan) and
    /// fewer than [`MAX_BINDINGS`] unbound ones in the window; `Busy` otherwise.
    /// Record the binding with [`BindingSlot::started`]; dropped without that,
    /// nothing counts.
    pub(crate) fn begin_binding(
        &self,
        owner: &Owner,
        now: Instant,
        still_pending: impl Fn(&str) -> bool,
    ) -> Result<BindingSlot<'_>, Refusal> {
        let mut apps = lock(&self.apps);
        let app = apps.entry(owner.clone()).or_default();
        app.expire(now);
        if app.starting || app.bindings.iter().any(|(_, id)| still_pending(id)) {
            return Err(Refusal::Busy(format!(
                "{} already has a binding waiting to be scanned; one at a time per app \
                 (unbind it to start another); nothing was shown",
                owner.app_id
            )));
        }
        if app.bindings.len() >= MAX_BINDINGS
            && let Some((oldest, _)) = app.bindings.front()
        {
            return Err(Refusal::Busy(format!(
                "{} started {MAX_BINDINGS} bindings within {} minutes that were not \
                 completed; it may start another in {} s; nothing was shown",
                owner.app_id,
                BINDING_WINDOW.as_secs() / 60,
                retry_in(*oldest, BINDING_WINDOW, now)
            )));
        }
        app.starting = true;
        Ok(BindingSlot {
            limits: self,
            owner: owner.clone(),
        })
    }

    /// The binding ended bound: it no longer counts against the app that started it.
    pub(crate) fn binding_bound(&self, binding_id: &str) {
        for app in lock(&self.apps).values_mut() {
            app.bindings.retain(|(_, id)| id != binding_id);
        }
    }

    /// Whether `owner` started the binding `binding_id` in this run (within the
    /// window, and it has not ended bound).
    pub(crate) fn started_by(&self, owner: &Owner, binding_id: &str) -> bool {
        lock(&self.apps)
            .get(owner)
            .is_some_and(|app| app.bindings.iter().any(|(_, id)| id == binding_id))
    }

    /// Updates `owner`'s record and forgets an app with nothing left to remember.
    fn update(&self, owner: &Owner, f: impl FnOnce(&mut App)) {
        let mut apps = lock(&self.apps);
        if let Some(app) = apps.get_mut(owner) {
            f(app);
            if app.is_idle() {
                apps.remove(owner);
            }
        }
    }
}

/// An app's prompt on the display, from [`Limits::begin_prompt`].
#[derive(Debug)]
pub(crate) struct PromptSlot<'a> {
    limits: &'a Limits,
    owner: Owner,
}

impl PromptSlot<'_> {
    /// The prompt ended: `approved` by the user, or not (declined, unanswered, the
    /// agent went away), which counts against the app.
    pub(crate) fn ended(self, approved: bool, now: Instant) {
        if !approved {
            self.limits
                .update(&self.owner, |app| app.unapproved.push_back(now));
        }
    }
}

impl Drop for PromptSlot<'_> {
    fn drop(&mut self) {
        self.limits.update(&self.owner, |app| app.asking = false);
    }
}

/// An app's `StartBinding` under way, from [`Limits::begin_binding`].
#[derive(Debug)]
pub(crate) struct BindingSlot<'a> {
    limits: &'a Limits,
    owner: Owner,
}

impl BindingSlot<'_> {
    /// The binding `binding_id` was started at `now`: it counts until it ends bound.
    pub(crate) fn started(self, binding_id: String, now: Instant) {
        self.limits.update(&self.owner, |app| {
            app.bindings.push_back((now, binding_id));
        });
    }
}

impl Drop for BindingSlot<'_> {
    fn drop(&mut self) {
        self.limits.update(&self.owner, |app| app.starting = false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(app: &str) -> Owner {
        Owner {
            uid: 1000,
            app_id: app.into(),
        }
    }

    #[test]
    fn one_prompt_at_a_time_per_app() {
        let limits = Limits::default();
        let now = Instant::now();
        let (game, other) = (owner("/usr/bin/game"), owner("/usr/bin/other"));
        let slot = limits.begin_prompt(&game, now).unwrap();
        let e = limits.begin_prompt(&game, now).unwrap_err();
        assert!(
            matches!(e, Refusal::Busy(ref m) if m.contains("one question")),
            "{e:?}"
        );
        // Another app, or the same app of another user, is not held up.
        drop(limits.begin_prompt(&other, now).unwrap());
        let theirs = Owner {
            uid: 1001,
            ..game.clone()
        };
        drop(limits.begin_prompt(&theirs, now).unwrap());
        slot.ended(true, now);
        drop(limits.begin_prompt(&game, now).unwrap());
    }

    #[test]
    fn approved_prompts_never_run_out() {
        let limits = Limits::default();
        let start = Instant::now();
        for i in 0..100 {
            let now = start + Duration::from_secs(i);
            limits
                .begin_prompt(&owner("a"), now)
                .unwrap()
                .ended(true, now);
        }
        // A prompt that could not be shown (dropped without an end) does not count.
        for _ in 0..100 {
            drop(limits.begin_prompt(&owner("a"), start).unwrap());
        }
        assert!(lock(&limits.apps).is_empty(), "nothing left to remember");
    }

    #[test]
    fn unapproved_prompts_run_out_until_the_window_passes() {
        let limits = Limits::default();
        let start = Instant::now();
        let app = owner("/usr/bin/nag");
        for i in 0..MAX_UNAPPROVED_PROMPTS {
            let now = start + Duration::from_secs(i as u64);
            limits.begin_prompt(&app, now).unwrap().ended(false, now);
        }
        let e = limits
            .begin_prompt(&app, start + Duration::from_secs(60))
            .unwrap_err();
        assert!(
            matches!(e, Refusal::Busy(ref m) if m.contains("540 s") && m.contains("/usr/bin/nag")),
            "{e:?}"
        );
        // Other apps still ask.
        drop(limits.begin_prompt(&owner("b"), start).unwrap());
        // The first refusal leaves the window: one more prompt, then refused again.
        let later = start + PROMPT_WINDOW;
        limits
            .begin_prompt(&app, later)
            .unwrap()
            .ended(false, later);
        assert!(limits.begin_prompt(&app, later).is_err());
    }

    #[test]
    fn one_pending_binding_per_app_and_a_window_of_unbound_ones() {
        let limits = Limits::default();
        let start = Instant::now();
        let app = owner("/usr/bin/qr-flood");
        let slot = limits.begin_binding(&app, start, |_| false).unwrap();
        // Two calls at once: the second is refused while the first is under way.
        assert!(limits.begin_binding(&app, start, |_| false).is_err());
        slot.started("b0".into(), start);
        assert!(limits.started_by(&app, "b0"));
        assert!(!limits.started_by(&owner("x"), "b0"));
        // Still pending: refused.
        let e = limits
            .begin_binding(&app, start, |id| id == "b0")
            .unwrap_err();
        assert!(
            matches!(e, Refusal::Busy(ref m) if m.contains("waiting to be scanned")),
            "{e:?}"
        );
        // A slot dropped without a binding (the server refused) counts nothing.
        drop(limits.begin_binding(&app, start, |_| false).unwrap());
        // Expired or abandoned ones count up to the limit.
        for i in 1..MAX_BINDINGS {
            limits
                .begin_binding(&app, start, |_| false)
                .unwrap()
                .started(format!("b{i}"), start);
        }
        let e = limits.begin_binding(&app, start, |_| false).unwrap_err();
        assert!(
            matches!(e, Refusal::Busy(ref m) if m.contains("not completed")),
            "{e:?}"
        );
        // A bound one stops counting.
        limits.binding_bound("b3");
        assert!(!limits.started_by(&app, "b3"));
        limits
            .begin_binding(&app, start, |_| false)
            .unwrap()
            .started("b5".into(), start);
        assert!(limits.begin_binding(&app, start, |_| false).is_err());
        // After the window, all is forgotten.
        let later = start + BINDING_WINDOW;
        drop(limits.begin_binding(&app, later, |_| false).unwrap());
        assert!(lock(&limits.apps).is_empty());
    }
}
