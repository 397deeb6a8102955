//! [`Binding`]: one `io.scanbind.Binding1` object, pending or settled.

use std::collections::HashMap;

use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use scanbind_ipc::types::keys;
use scanbind_ipc::{Binding1Proxy, BindingState, ErrorInfo};
use serde::Serialize;
use zbus::proxy::CacheProperties;
use zvariant::{OwnedObjectPath, Value};

use crate::client::{Client, unknown_state};
use crate::error::{Error, Result};
use crate::watch::watch_property;

/// A binding: a wallet bound, or being bound, to this device.
#[derive(Debug, Clone)]
pub struct Binding {
    proxy: Binding1Proxy<'static>,
    path: OwnedObjectPath,
}

/// How a binding ended (its state once it left `pending`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BindingOutcome {
    /// `bound`, `denied`, `expired`, `failed` or `unbound`.
    pub state: BindingState,
    /// Why it did not bind, when it did not.
    pub error: Option<ErrorInfo>,
}

/// The QR code's modules (`GetQrMatrix`), for apps that draw it themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrMatrix {
    /// Modules per side (without the quiet zone).
    pub width: u32,
    /// `width * width` bytes, row by row, 1 dark and 0 light.
    pub modules: Vec<u8>,
}

impl QrMatrix {
    /// Whether the module at (`x`, `y`) is dark; `false` outside the code (the quiet
    /// zone).
    pub fn is_dark(&self, x: i64, y: i64) -> bool {
        let w = i64::from(self.width);
        if x < 0 || y < 0 || x >= w || y >= w {
            return false;
        }
        usize::try_from(y * w + x)
            .ok()
            .and_then(|i| self.modules.get(i))
            .is_some_and(|m| *m == 1)
    }
}

/// Options of [`Binding::qr_svg`] and [`Binding::qr_png`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QrOptions {
    /// Pixels (PNG) or user units (SVG) per module, 1 to 64 (daemon default 8).
    pub module_size: Option<u32>,
    /// Whether to draw the 4-module quiet zone (daemon default true).
    pub quiet_zone: Option<bool>,
}

impl QrOptions {
    fn to_dict(self) -> HashMap<&'static str, Value<'static>> {
        let mut m = HashMap::new();
        if let Some(s) = self.module_size {
            m.insert(keys::qr::MODULE_SIZE, Value::from(s));
        }
        if let Some(q) = self.quiet_zone {
            m.insert(keys::qr::QUIET_ZONE, Value::from(q));
        }
        m
    }
}

fn empty_as_none(e: ErrorInfo) -> Option<ErrorInfo> {
    (!e.name.is_empty()).then_some(e)
}

impl Binding {
    pub(crate) async fn open(client: &Client, path: OwnedObjectPath) -> Result<Binding> {
        let proxy = Binding1Proxy::builder(client.connection())
            .path(path.clone())?
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        Ok(Binding { proxy, path })
    }

    /// The object path (opaque; pass it to [`Client::unbind`] or
    /// [`crate::PayRequest::binding`]).
    pub fn path(&self) -> &OwnedObjectPath {
        &self.path
    }

    /// The `io.scanbind.Binding1` proxy, for calls this API does not wrap.
    pub fn proxy(&self) -> &Binding1Proxy<'static> {
        &self.proxy
    }

    /// The current state.
    #[doc(alias = "State")]
    pub async fn state(&self) -> Result<BindingState> {
        self.proxy.state().await?.parse().map_err(unknown_state)
    }

    /// The wallet (`customerBelongsTo`).
    #[doc(alias = "Wallet")]
    pub async fn wallet(&self) -> Result<String> {
        Ok(self.proxy.wallet().await?)
    }

    /// What the user sees for it: the label, or the masked wallet account once bound.
    #[doc(alias = "Label")]
    pub async fn label(&self) -> Result<String> {
        Ok(self.proxy.label().await?)
    }

    /// The text the QR code encodes (a URL the wallet app opens); empty once the
    /// binding is no longer pending.
    #[doc(alias = "CodeValue")]
    pub async fn code_value(&self) -> Result<String> {
        Ok(self.proxy.code_value().await?)
    }

    /// The short code to show beside the QR (the wallet page shows it too).
    #[doc(alias = "MatchCode")]
    pub async fn match_code(&self) -> Result<String> {
        Ok(self.proxy.match_code().await?)
    }

    /// When the QR code expires, seconds since the Unix epoch.
    #[doc(alias = "ExpiresAt")]
    pub async fn expires_at(&self) -> Result<i64> {
        Ok(self.proxy.expires_at().await?)
    }

    /// Why the binding failed, if it did.
    #[doc(alias = "LastError")]
    pub async fn last_error(&self) -> Result<Option<ErrorInfo>> {
        Ok(empty_as_none(self.proxy.last_error().await?))
    }

    /// The QR code as an SVG document.
    #[doc(alias = "GetQrSvg")]
    pub async fn qr_svg(&self, options: QrOptions) -> Result<String> {
        Ok(self.proxy.get_qr_svg(options.to_dict()).await?)
    }

    /// The QR code as a PNG image.
    #[doc(alias = "GetQrPng")]
    pub async fn qr_png(&self, options: QrOptions) -> Result<Vec<u8>> {
        Ok(self.proxy.get_qr_png(options.to_dict()).await?)
    }

    /// The QR code's modules.
    #[doc(alias = "GetQrMatrix")]
    pub async fn qr_matrix(&self) -> Result<QrMatrix> {
        let (width, modules) = self.proxy.get_qr_matrix(HashMap::new()).await?;
        Ok(QrMatrix { width, modules })
    }

    /// Waits until the binding leaves `pending` and returns how it ended. Returns at
    /// once if it already has. Bound it with a timeout of your own
    /// (`tokio::time::timeout`): the user may take up to the QR's 15 minutes.
    #[doc(alias = "Completed")]
    pub async fn wait(&self) -> Result<BindingOutcome> {
        // Subscribe first, then read the state: nothing can slip between the two.
        let mut completed = self.proxy.receive_completed().await?;
        loop {
            let state = self.proxy.state().await?;
            match state.parse::<BindingState>() {
                Ok(s) if s.is_completed() => return self.outcome(s).await,
                // Pending, or a state this version does not know: not settled yet.
                _ => {}
            }
            if completed.next().await.is_none() {
                return Err(Error::Disconnected("the binding"));
            }
        }
    }

    async fn outcome(&self, state: BindingState) -> Result<BindingOutcome> {
        let error = if state == BindingState::Bound {
            None
        } else {
            self.last_error().await?
        };
        Ok(BindingOutcome { state, error })
    }

    /// The binding's states: the current one first, then each change (a slow reader
    /// sees the latest). Ends when the daemon goes away. An unknown state is an
    /// [`Error::UnknownState`] item.
    #[doc(alias = "PropertiesChanged")]
    pub async fn receive_states(&self) -> Result<BoxStream<'static, Result<BindingState>>> {
        let stream = watch_property(self.proxy.inner(), "State").await?;
        Ok(stream
            .map(|value| {
                let s = String::try_from(value?).map_err(zbus::Error::from)?;
                s.parse::<BindingState>().map_err(unknown_state)
            })
            .boxed())
    }
}
