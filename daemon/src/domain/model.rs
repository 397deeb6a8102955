//! The domain's records: a binding as this run knows it, a payment's line items.
//! (A payment's record is its journal entry, [`crate::store::journal::Entry`].)

use scanbind_ipc::{BindingState, ErrorInfo};
use zvariant::OwnedObjectPath;

/// One validated line item (stored in the journal as JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LineItem {
    pub(crate) name: String,
    pub(crate) quantity: u32,
    pub(crate) amount_minor: i64,
}

/// Everything the daemon knows about one binding; its objects are views of it.
#[derive(Debug, Clone)]
pub(crate) struct BindingRecord {
    pub(crate) path: OwnedObjectPath,
    pub(crate) wallet: String,
    pub(crate) label: String,
    pub(crate) state: BindingState,
    pub(crate) code_value: String,
    pub(crate) match_code: String,
    pub(crate) expires_at: i64,
    pub(crate) last_error: ErrorInfo,
    /// The app that started it in this run (it may always see it); `None` for a
    /// binding restored at start.
    pub(crate) starter: Option<crate::store::journal::Owner>,
}

impl BindingRecord {
    /// Settles the binding; returns whether the state changed (and so whether
    /// `Completed` must be emitted).
    pub(crate) fn settle(&mut self, state: BindingState, error: Option<ErrorInfo>) -> bool {
        if self.state == state || self.state.is_completed() && state != BindingState::Unbound {
            return false;
        }
        self.state = state;
        self.code_value.clear();
        if let Some(e) = error {
            self.last_error = e;
        }
        true
    }
}
