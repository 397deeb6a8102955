//! Fakes for the domain's unit tests: a [`Publisher`] and a [`Prompter`] that
//! remember what they were told, and a daemon's [`Shared`] state on a temporary
//! journal. Nothing here needs a bus, a keyring or a server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use scanbind_ipc::{BindingState, ErrorInfo};
use zvariant::OwnedObjectPath;

use super::error::Refusal;
use super::model::BindingRecord;
use super::ports::{Answer, Details, Prompter, Publisher};
use super::shared::Shared;
use crate::store::journal::{Entry, Journal, JournalState};
use crate::store::vault::Vault;
use crate::sync::lock;

/// The app every test pays as.
pub(crate) const APP: &str = "/usr/bin/game";

/// [`APP`] run by the daemon's own user (a session daemon's caller).
pub(crate) fn app_owner() -> crate::store::journal::Owner {
    crate::store::journal::Owner {
        uid: crate::store::journal::own_uid(),
        app_id: APP.to_owned(),
    }
}

/// Remembers every announcement.
#[derive(Debug, Default)]
pub(crate) struct Announced {
    /// (payment id, state, whether the state changed), in order.
    pub(crate) payments: Mutex<Vec<(i64, JournalState, bool)>>,
    /// (binding path, state, removal reason), in order.
    pub(crate) bindings: Mutex<Vec<(String, BindingState, Option<String>)>>,
}

impl Announced {
    pub(crate) fn payments(&self) -> Vec<(i64, JournalState, bool)> {
        lock(&self.payments).clone()
    }

    pub(crate) fn bindings(&self) -> Vec<(String, BindingState, Option<String>)> {
        lock(&self.bindings).clone()
    }
}

impl Publisher for Announced {
    fn payment_changed<'a>(
        &'a self,
        after: &'a Entry,
        state_changed: bool,
    ) -> BoxFuture<'a, crate::error::Result<()>> {
        lock(&self.payments).push((after.id, after.state, state_changed));
        Box::pin(async { Ok(()) })
    }

    fn binding_settled<'a>(
        &'a self,
        record: &'a BindingRecord,
        removed: Option<&'a str>,
    ) -> BoxFuture<'a, crate::error::Result<()>> {
        lock(&self.bindings).push((
            record.path.to_string(),
            record.state,
            removed.map(str::to_owned),
        ));
        Box::pin(async { Ok(()) })
    }

    fn subscription_changed<'a>(
        &'a self,
        _s: &'a scanbind_device_api::types::Subscription,
        _event: Option<&'static str>,
    ) -> BoxFuture<'a, crate::error::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// A display whose user always gives the same answer (`None`: no display at all),
/// and which remembers what it was asked and told to dismiss.
#[derive(Debug)]
pub(crate) struct Display {
    answer: Option<bool>,
    asked: Mutex<Vec<&'static str>>,
    /// The `message` of each confirmation asked.
    messages: Mutex<Vec<String>>,
    dismissed: Mutex<Vec<(String, &'static str)>>,
}

impl Display {
    pub(crate) fn answering(answer: Option<bool>) -> Arc<Display> {
        Arc::new(Display {
            answer,
            asked: Mutex::default(),
            messages: Mutex::default(),
            dismissed: Mutex::default(),
        })
    }

    /// The kinds of the confirmations asked.
    pub(crate) fn asked(&self) -> Vec<&'static str> {
        lock(&self.asked).clone()
    }

    /// The messages of the confirmations asked, in order.
    pub(crate) fn messages(&self) -> Vec<String> {
        lock(&self.messages).clone()
    }

    /// (request, outcome) of what was dismissed.
    pub(crate) fn dismissed(&self) -> Vec<(String, &'static str)> {
        lock(&self.dismissed).clone()
    }
}

impl Prompter for Display {
    fn show(&self, _: String, _: &'static str, _: Details) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn dismiss(&self, request: String, outcome: &'static str) -> BoxFuture<'_, ()> {
        lock(&self.dismissed).push((request, outcome));
        Box::pin(async {})
    }

    fn confirm<'a>(
        &'a self,
        kind: &'static str,
        details: Details,
        _: Duration,
        why: &'a str,
    ) -> BoxFuture<'a, Result<Answer, Refusal>> {
        lock(&self.asked).push(kind);
        let message = details
            .iter()
            .find(|(key, _)| *key == scanbind_ipc::types::keys::agent::MESSAGE)
            .and_then(|(_, v)| String::try_from(v.clone()).ok())
            .unwrap_or_default();
        lock(&self.messages).push(message);
        let answer = self.answer;
        Box::pin(async move {
            match answer {
                None => Err(Refusal::NeedsConfirmation(format!("{why}: no display"))),
                Some(allowed) => Ok(Answer { allowed, pin: None }),
            }
        })
    }
}

/// A daemon's state on a fresh journal, with `policy` as its policy file (if any).
/// The server link points nowhere: it is never contacted by the code under test.
pub(crate) fn daemon(
    policy: Option<&str>,
    display: Arc<Display>,
    announced: Arc<Announced>,
) -> (tempfile::TempDir, Arc<Shared>) {
    daemon_in(policy, display, announced, false)
}

/// [`daemon`] that keeps consents in its own `consents.toml` (a system daemon).
pub(crate) fn daemon_with_consents(
    policy: Option<&str>,
    display: Arc<Display>,
) -> (tempfile::TempDir, Arc<Shared>) {
    daemon_in(policy, display, Arc::default(), true)
}

fn daemon_in(
    policy: Option<&str>,
    display: Arc<Display>,
    announced: Arc<Announced>,
    consents: bool,
) -> (tempfile::TempDir, Arc<Shared>) {
    let dir = tempfile::tempdir().unwrap();
    let consents = consents.then(|| dir.path().join("consents.toml"));
    let journal = Journal::open(&dir.path().join("journal.sqlite3")).unwrap();
    let policy = policy.map(|text| {
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, text).unwrap();
        path
    });
    let key = scanbind_device_api::DeviceKey::generate().unwrap();
    let link = crate::link::ServerLink::new("http://127.0.0.1:9", key, None).unwrap();
    let shared = Shared::new(
        journal,
        Vault::with_service("scanbindd-domain-test-unused"),
        link,
        "test device".into(),
        crate::policy::PolicySource::new(policy)
            .with_consents(consents, crate::store::journal::own_uid()),
        announced,
        display,
    );
    (dir, Arc::new(shared))
}

/// Records a binding of `wallet` in `state`; its path.
pub(crate) fn binding(
    shared: &Shared,
    id: &str,
    wallet: &str,
    state: BindingState,
) -> OwnedObjectPath {
    let path = scanbind_ipc::paths::binding_path(wallet, id);
    lock(&shared.bindings).insert(
        id.to_owned(),
        BindingRecord {
            path: path.clone(),
            wallet: wallet.into(),
            label: String::new(),
            state,
            code_value: if state == BindingState::Pending {
                "https://qr.example/abc".into()
            } else {
                String::new()
            },
            match_code: String::new(),
            expires_at: 0,
            last_error: ErrorInfo::default(),
            starter: None,
        },
    );
    path
}
