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
use std::sync::Arc;
use zbus::Connection;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;

use zbus::{fdo, interface};
use zvariant::{OwnedValue, Value};

use super::caller;
use super::payment::CallError;
use super::scope::unknown_object;
use crate::domain::binding::visible_to;
use crate::domain::model::BindingRecord;
use crate::domain::shared::Shared;
use crate::qr::{MAX_MODULE_SIZE, Qr, Style};
use crate::sync::lock;

/// One binding object: a view of its record in [`Shared::bindings`], so the same binding can
/// be served on the bus and on every peer-to-peer connection.
#[derive(Debug)]
pub(crate) struct BindingObj {
    pub(crate) shared: Arc<Shared>,
    pub(crate) binding_id: String,
}

/// The `details` of a binding's `Completed` signal.
pub(crate) fn completed_details(record: &BindingRecord) -> HashMap<&'static str, Value<'_>> {
    let mut d = HashMap::new();
    if !record.last_error.name.is_empty() {
        d.insert(
            keys::completed::ERROR_NAME,
            Value::from(record.last_error.name.as_str()),
        );
        d.insert(
            keys::completed::ERROR_MESSAGE,
            Value::from(record.last_error.message.as_str()),
        );
    }
    d
}

impl BindingObj {
    /// Reads the record.
    fn read<T>(&self, f: impl FnOnce(&BindingRecord) -> T) -> fdo::Result<T> {
        lock(&self.shared.bindings)
            .get(&self.binding_id)
            .map(f)
            .ok_or_else(|| fdo::Error::UnknownObject("the binding is gone".into()))
    }
}

impl BindingObj {
    /// Only an app whose policy lets it charge the binding's wallet (as `ListBindings`),
    /// or the app that started it, may read the binding or draw its QR code; anyone
    /// else is answered as for a path that is not served. The daemon's own reads (for `PropertiesChanged`) carry no
    /// header and pass.
    async fn guard(&self, conn: &Connection, hdr: Option<&Header<'_>>) -> fdo::Result<()> {
        let Some(hdr) = hdr else { return Ok(()) };
        let who = caller::identify(conn, hdr)
            .await
            .map_err(|e| fdo::Error::AccessDenied(e.to_string()))?;
        let (wallet, starter) = self.read(|r| (r.wallet.clone(), r.starter.clone()))?;
        let owner = who.owner();
        if visible_to(&self.shared, &owner)(&wallet) || starter.as_ref() == Some(&owner) {
            Ok(())
        } else {
            Err(unknown_object(hdr))
        }
    }

    /// [`BindingObj::guard`] for a method call.
    async fn visible(&self, conn: &Connection, hdr: &Header<'_>) -> Result<(), CallError> {
        self.guard(conn, Some(hdr)).await.map_err(CallError::Hidden)
    }

    /// The QR code of a pending binding; `Expired` once it left `pending`.
    fn qr(&self) -> Result<Qr, Wire> {
        let (state, code) = self
            .read(|r| (r.state, r.code_value.clone()))
            .map_err(|e| Wire::NotFound(e.to_string()))?;
        if state != BindingState::Pending || code.is_empty() {
            return Err(Wire::Expired(format!(
                "the binding is {}: its QR code is no longer valid",
                state.as_str()
            )));
        }
        Qr::new(&code).map_err(|e| Wire::Internal(e.to_string()))
    }
}

/// The `GetQrSvg` / `GetQrPng` options.
fn qr_style(method: &str, options: &HashMap<String, OwnedValue>) -> Result<Style, Wire> {
    let mut style = Style::default();
    for (k, v) in options {
        match (k.as_str(), &**v) {
            (keys::qr::MODULE_SIZE, Value::U32(n)) if (1..=MAX_MODULE_SIZE).contains(n) => {
                style.module_size = *n;
            }
            (keys::qr::QUIET_ZONE, Value::Bool(b)) => style.quiet_zone = *b,
            (keys::qr::MODULE_SIZE, _) => {
                return Err(Wire::InvalidArgument(format!(
                    "option module-size must be u from 1 to {MAX_MODULE_SIZE}"
                )));
            }
            (keys::qr::QUIET_ZONE, _) => {
                return Err(Wire::InvalidArgument("option quiet-zone must be b".into()));
            }
            (other, _) => {
                return Err(Wire::UnknownOption(format!(
                    "{method} does not know {other:?}"
                )));
            }
        }
    }
    Ok(style)
}

#[interface(name = "io.scanbind.Binding1")]
impl BindingObj {
    /// `GetQrSvg(a{sv} options) -> s svg`: the QR code as an SVG document.
    #[zbus(out_args("svg"))]
    async fn get_qr_svg(
        &self,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, CallError> {
        self.visible(conn, &hdr).await?;
        let style = qr_style("GetQrSvg", &options)?;
        Ok(self.qr()?.svg(style))
    }

    /// `GetQrPng(a{sv} options) -> ay png`: the QR code as a PNG image.
    #[zbus(out_args("png"))]
    async fn get_qr_png(
        &self,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<u8>, CallError> {
        self.visible(conn, &hdr).await?;
        let style = qr_style("GetQrPng", &options)?;
        Ok(self
            .qr()?
            .png(style)
            .map_err(|e| Wire::Internal(e.to_string()))?)
    }

    /// `GetQrMatrix(a{sv} options) -> (u width, ay modules)`: the QR modules.
    #[zbus(out_args("width", "modules"))]
    async fn get_qr_matrix(
        &self,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(u32, Vec<u8>), CallError> {
        self.visible(conn, &hdr).await?;
        if let Some(k) = options.keys().next() {
            return Err(Wire::UnknownOption(format!("GetQrMatrix does not know {k:?}")).into());
        }
        let qr = self.qr()?;
        Ok((qr.width(), qr.matrix()))
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
    async fn state(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.guard(conn, hdr.as_ref()).await?;
        self.read(|r| r.state.as_str().to_owned())
    }

    /// `Wallet` (`s`): the wallet (`customerBelongsTo`).
    #[zbus(property(emits_changed_signal = "const"))]
    async fn wallet(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.guard(conn, hdr.as_ref()).await?;
        self.read(|r| r.wallet.clone())
    }

    /// `Label` (`s`): what the user sees for this binding.
    #[zbus(property)]
    async fn label(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.guard(conn, hdr.as_ref()).await?;
        self.read(|r| r.label.clone())
    }

    /// `CodeValue` (`s`): the text the QR code encodes (empty once completed).
    #[zbus(property)]
    async fn code_value(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.guard(conn, hdr.as_ref()).await?;
        self.read(|r| r.code_value.clone())
    }

    /// `MatchCode` (`s`): the short code shown beside the QR and on the wallet page.
    #[zbus(property)]
    async fn match_code(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.guard(conn, hdr.as_ref()).await?;
        self.read(|r| r.match_code.clone())
    }

    /// `ExpiresAt` (`x`): when the QR code expires, Unix seconds (UTC).
    #[zbus(property)]
    async fn expires_at(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<i64> {
        self.guard(conn, hdr.as_ref()).await?;
        self.read(|r| r.expires_at)
    }

    /// `LastError` (`(ss)`): why it failed; empty strings otherwise.
    #[zbus(property)]
    async fn last_error(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<ErrorInfo> {
        self.guard(conn, hdr.as_ref()).await?;
        self.read(|r| r.last_error.clone())
    }
}
