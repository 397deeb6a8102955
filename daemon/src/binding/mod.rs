//! `io.scanbind.Binding1`: one binding, pending or settled, at
//! `/io/scanbind/Daemon1/binding/<wallet>_<n>`.
//!
//! The object is created by `StartBinding` (state `pending`, with the QR code's text
//! value, match code and expiry) and settled by the server's event stream
//! (`binding.completed` → `bound`, `binding.failed` → `failed`, `binding.expired` →
//! `expired`). `Completed` is emitted once, when the state leaves `pending`.

use std::collections::HashMap;

use scanbind_ipc::types::keys;
use scanbind_ipc::{BindingState, Error as Wire, ErrorInfo};
use zbus::object_server::SignalEmitter;
use zbus::{fdo, interface};
use zvariant::{OwnedValue, Value};

/// One binding object.
#[derive(Debug)]
pub(crate) struct BindingObj {
    pub(crate) wallet: String,
    pub(crate) label: String,
    pub(crate) state: BindingState,
    pub(crate) code_value: String,
    pub(crate) match_code: String,
    pub(crate) expires_at: i64,
    pub(crate) last_error: ErrorInfo,
}

impl BindingObj {
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

    /// The `details` of the `Completed` signal.
    pub(crate) fn completed_details(&self) -> HashMap<&'static str, Value<'_>> {
        let mut d = HashMap::new();
        if !self.last_error.name.is_empty() {
            d.insert(
                keys::completed::ERROR_NAME,
                Value::from(self.last_error.name.as_str()),
            );
            d.insert(
                keys::completed::ERROR_MESSAGE,
                Value::from(self.last_error.message.as_str()),
            );
        }
        d
    }
}

/// The QR images are not rendered yet (issue 5): `NotSupported`, never a wrong image.
fn not_yet(what: &str) -> Wire {
    Wire::ZBus(zbus::Error::FDO(Box::new(fdo::Error::NotSupported(
        format!("{what} is not implemented yet; render CodeValue as a QR code"),
    ))))
}

#[interface(name = "io.scanbind.Binding1")]
impl BindingObj {
    /// `GetQrSvg(a{sv} options) -> s svg`: the QR code as an SVG document.
    #[zbus(out_args("svg"))]
    async fn get_qr_svg(&self, options: HashMap<String, OwnedValue>) -> Result<String, Wire> {
        let _ = options;
        Err(not_yet("GetQrSvg"))
    }

    /// `GetQrPng(a{sv} options) -> ay png`: the QR code as a PNG image.
    #[zbus(out_args("png"))]
    async fn get_qr_png(&self, options: HashMap<String, OwnedValue>) -> Result<Vec<u8>, Wire> {
        let _ = options;
        Err(not_yet("GetQrPng"))
    }

    /// `GetQrMatrix(a{sv} options) -> (u width, ay modules)`: the QR modules.
    #[zbus(out_args("width", "modules"))]
    async fn get_qr_matrix(
        &self,
        options: HashMap<String, OwnedValue>,
    ) -> Result<(u32, Vec<u8>), Wire> {
        let _ = options;
        Err(not_yet("GetQrMatrix"))
    }

    /// `Completed(s state, a{sv} details)`: emitted once, when `State` leaves `pending`.
    #[zbus(signal)]
    pub(crate) async fn completed(
        emitter: &SignalEmitter<'_>,
        state: &str,
        details: HashMap<&str, Value<'_>>,
    ) -> zbus::Result<()>;

    /// `State` (`s`): the binding's state.
    #[zbus(property)]
    fn state(&self) -> String {
        self.state.as_str().to_owned()
    }

    /// `Wallet` (`s`): the wallet (`customerBelongsTo`).
    #[zbus(property(emits_changed_signal = "const"))]
    fn wallet(&self) -> String {
        self.wallet.clone()
    }

    /// `Label` (`s`): what the user sees for this binding.
    #[zbus(property)]
    fn label(&self) -> String {
        self.label.clone()
    }

    /// `CodeValue` (`s`): the text the QR code encodes (empty once completed).
    #[zbus(property)]
    fn code_value(&self) -> String {
        self.code_value.clone()
    }

    /// `MatchCode` (`s`): the short code shown beside the QR and on the wallet page.
    #[zbus(property)]
    fn match_code(&self) -> String {
        self.match_code.clone()
    }

    /// `ExpiresAt` (`x`): when the QR code expires, Unix seconds (UTC).
    #[zbus(property)]
    fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// `LastError` (`(ss)`): why it failed; empty strings otherwise.
    #[zbus(property)]
    fn last_error(&self) -> ErrorInfo {
        self.last_error.clone()
    }
}
