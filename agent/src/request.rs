//! Typed requests, parsed from the `details` of `Show` and `Confirm`.
//!
//! Keys are those of [`scanbind_ipc::types::keys::agent`]; unknown keys are ignored,
//! a documented key with another type is an [`Error::WrongType`].

use std::collections::HashMap;

use qrcode::{Color, EcLevel, QrCode};
use scanbind_ipc::types::keys::agent as keys;
use zvariant::{OwnedValue, Value};

use crate::Error;

/// The `details` dictionary as received.
pub type Details = HashMap<String, OwnedValue>;

/// A QR code's module matrix, ready to draw (without the quiet zone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrMatrix {
    width: usize,
    dark: Vec<bool>,
}

impl QrMatrix {
    /// Encodes `text` with error correction level M (what a phone camera reads best
    /// from across a room at this size).
    pub fn encode(text: &str) -> Result<QrMatrix, Error> {
        let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)?;
        let width = code.width();
        let dark = code
            .to_colors()
            .into_iter()
            .map(|c| c == Color::Dark)
            .collect();
        Ok(QrMatrix { width, dark })
    }

    /// Modules per side.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether the module at column `x`, row `y` is dark.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        self.dark[y * self.width + x]
    }
}

/// `Show` kind `binding-qr`: a binding QR code to scan with the wallet app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingQr {
    /// The text the QR encodes.
    pub code_value: String,
    /// Its modules.
    pub qr: QrMatrix,
    /// The match code shown beside the QR and on the phone.
    pub match_code: Option<String>,
    /// This device's name, as the wallet page shows it.
    pub device_name: Option<String>,
    /// The wallet id (`ALIPAY_HK`), for a fresh code.
    pub wallet: Option<String>,
    /// The wallet as people call it.
    pub wallet_name: Option<String>,
    /// When the code expires, Unix seconds.
    pub expires_at: Option<i64>,
    /// A short title.
    pub title: Option<String>,
    /// The app that asked for this binding, as people call it.
    pub app_name: Option<String>,
}

/// `Show` kind `order-code`: an order QR code to pay by scanning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderCode {
    /// The text the QR encodes.
    pub code_value: String,
    /// Its modules.
    pub qr: QrMatrix,
    /// The app as people call it (from the system's metadata, never from the app).
    pub app_name: Option<String>,
    /// The app's executable (or verified Flatpak / snap id), shown beside its name.
    pub app_exe: Option<String>,
    /// The amount formatted for people (`HK$49.00`).
    pub amount_text: Option<String>,
    /// The payment's description.
    pub description: Option<String>,
    /// When the code expires, Unix seconds.
    pub expires_at: Option<i64>,
    /// A short title.
    pub title: Option<String>,
}

/// What `Show` puts on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Display {
    /// A binding QR code.
    BindingQr(BindingQr),
    /// An order QR code.
    OrderCode(OrderCode),
}

impl Display {
    /// Parses a `Show(request, kind, details)`.
    pub fn parse(kind: &str, details: &Details) -> Result<Display, Error> {
        match kind {
            keys::KIND_BINDING_QR => {
                let code_value = required_str(details, keys::CODE_VALUE)?;
                Ok(Display::BindingQr(BindingQr {
                    qr: QrMatrix::encode(&code_value)?,
                    code_value,
                    match_code: opt_str(details, keys::MATCH_CODE)?,
                    device_name: opt_str(details, keys::DEVICE_NAME)?,
                    wallet: opt_str(details, keys::WALLET)?,
                    wallet_name: opt_str(details, keys::WALLET_NAME)?,
                    expires_at: opt_i64(details, keys::EXPIRES_AT)?,
                    title: opt_str(details, keys::TITLE)?,
                    app_name: opt_str(details, keys::APP_NAME)?,
                }))
            }
            keys::KIND_ORDER_CODE => {
                let code_value = required_str(details, keys::CODE_VALUE)?;
                Ok(Display::OrderCode(OrderCode {
                    qr: QrMatrix::encode(&code_value)?,
                    code_value,
                    app_name: opt_str(details, keys::APP_NAME)?,
                    app_exe: opt_str(details, keys::APP_EXE)?,
                    amount_text: opt_str(details, keys::AMOUNT_TEXT)?,
                    description: opt_str(details, keys::DESCRIPTION)?,
                    expires_at: opt_i64(details, keys::EXPIRES_AT)?,
                    title: opt_str(details, keys::TITLE)?,
                }))
            }
            other => Err(Error::UnknownKind {
                kind: other.to_owned(),
            }),
        }
    }
}

/// The kind of a `Confirm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// `consent`: the first charge of an app the policy does not know.
    Consent,
    /// `payment`: a charge the policy wants confirmed.
    Payment,
    /// `parent-approval`: a kid profile's charge, approved with the parent PIN.
    ParentApproval,
    /// `unbind`: an app asks to unbind a wallet from this device.
    Unbind,
}

/// A `Confirm` to put to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// Which kind of question.
    pub kind: PromptKind,
    /// The whole question, shown as is.
    pub message: String,
    /// A short title.
    pub title: Option<String>,
    /// The app that asks (its name from the system's metadata), if the daemon says.
    pub app_name: Option<String>,
    /// The app's executable (or verified Flatpak / snap id), shown beside its name.
    pub app_exe: Option<String>,
    /// Whether the answer must carry the PIN.
    pub pin_required: bool,
    /// Wrong PINs left before approvals are locked.
    pub attempts_left: Option<u32>,
    /// Seconds the daemon waits for the answer.
    pub timeout_secs: Option<u32>,
}

/// `name — exe` (either alone when the other is missing), for the screen.
pub fn app_line(name: Option<&str>, exe: Option<&str>) -> Option<String> {
    match (name, exe) {
        (Some(n), Some(e)) => Some(format!("{n} — {e}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
        (None, None) => None,
    }
}

impl Prompt {
    /// The app line of the prompt ([`app_line`]).
    pub fn app_line(&self) -> Option<String> {
        app_line(self.app_name.as_deref(), self.app_exe.as_deref())
    }

    /// Parses a `Confirm(request, kind, details)`.
    pub fn parse(kind: &str, details: &Details) -> Result<Prompt, Error> {
        let kind = match kind {
            keys::KIND_CONSENT => PromptKind::Consent,
            keys::KIND_PAYMENT => PromptKind::Payment,
            keys::KIND_PARENT_APPROVAL => PromptKind::ParentApproval,
            keys::KIND_UNBIND => PromptKind::Unbind,
            other => {
                return Err(Error::UnknownKind {
                    kind: other.to_owned(),
                });
            }
        };
        let pin_required =
            opt_bool(details, keys::PIN_REQUIRED)?.unwrap_or(kind == PromptKind::ParentApproval);
        Ok(Prompt {
            kind,
            message: required_str(details, keys::MESSAGE)?,
            title: opt_str(details, keys::TITLE)?,
            app_name: opt_str(details, keys::APP_NAME)?,
            app_exe: opt_str(details, keys::APP_EXE)?,
            pin_required,
            attempts_left: opt_u32(details, keys::ATTEMPTS_LEFT)?,
            timeout_secs: opt_u32(details, keys::TIMEOUT_SECS)?,
        })
    }
}

/// The user's answer to a [`Prompt`]. Its `Debug` never shows the PIN.
#[derive(Clone, PartialEq, Eq)]
pub struct Answer {
    /// Whether the charge may proceed.
    pub allowed: bool,
    /// The PIN typed, when the prompt asked for one.
    pub pin: Option<String>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("allowed", &self.allowed)
            .field(
                "pin",
                &self.pin.as_ref().map(|p| format!("<{} digits>", p.len())),
            )
            .finish()
    }
}

impl Answer {
    /// A refusal (Escape, Deny, or the prompt went away unanswered).
    pub fn denied() -> Answer {
        Answer {
            allowed: false,
            pin: None,
        }
    }

    /// The `(allowed, answer)` reply of `Confirm`.
    pub fn into_reply(self) -> (bool, HashMap<String, OwnedValue>) {
        let mut answer = HashMap::new();
        if let Some(pin) = self.pin {
            answer.insert(
                keys::ANSWER_PIN.to_owned(),
                OwnedValue::from(zvariant::Str::from(pin)),
            );
        }
        (self.allowed, answer)
    }
}

fn get<'a>(details: &'a Details, key: &str) -> Option<&'a Value<'static>> {
    details.get(key).map(|v| {
        let v: &Value<'static> = v;
        // A variant inside the variant (`v` holding `v`) is unwrapped once.
        match v {
            Value::Value(inner) => &**inner,
            other => other,
        }
    })
}

fn opt_str(details: &Details, key: &'static str) -> Result<Option<String>, Error> {
    get(details, key)
        .map(|v| {
            <&str>::try_from(v)
                .map(str::to_owned)
                .map_err(|_| Error::WrongType { key, expected: "s" })
        })
        .transpose()
}

fn required_str(details: &Details, key: &'static str) -> Result<String, Error> {
    opt_str(details, key)?.ok_or(Error::MissingKey { key })
}

fn opt_i64(details: &Details, key: &'static str) -> Result<Option<i64>, Error> {
    get(details, key)
        .map(|v| i64::try_from(v).map_err(|_| Error::WrongType { key, expected: "x" }))
        .transpose()
}

fn opt_u32(details: &Details, key: &'static str) -> Result<Option<u32>, Error> {
    get(details, key)
        .map(|v| u32::try_from(v).map_err(|_| Error::WrongType { key, expected: "u" }))
        .transpose()
}

fn opt_bool(details: &Details, key: &'static str) -> Result<Option<bool>, Error> {
    get(details, key)
        .map(|v| bool::try_from(v).map_err(|_| Error::WrongType { key, expected: "b" }))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(pairs: &[(&str, Value<'static>)]) -> Details {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OwnedValue::try_from(v.clone()).unwrap()))
            .collect()
    }

    #[test]
    fn binding_qr_parses_every_documented_key_and_ignores_others() {
        let d = details(&[
            (
                keys::CODE_VALUE,
                Value::from("https://example.test/qr/ABC123"),
            ),
            (keys::MATCH_CODE, Value::from("42")),
            (keys::DEVICE_NAME, Value::from("Living room TV")),
            (keys::WALLET, Value::from("ALIPAY_HK")),
            (keys::WALLET_NAME, Value::from("AlipayHK")),
            (keys::EXPIRES_AT, Value::from(1_900_000_000_i64)),
            (keys::APP_NAME, Value::from("space-miner")),
            ("some-future-key", Value::from(7_u32)),
        ]);
        let Display::BindingQr(b) = Display::parse(keys::KIND_BINDING_QR, &d).unwrap() else {
            panic!("not a binding QR");
        };
        assert_eq!(b.code_value, "https://example.test/qr/ABC123");
        assert_eq!(b.match_code.as_deref(), Some("42"));
        assert_eq!(b.wallet.as_deref(), Some("ALIPAY_HK"));
        assert_eq!(b.expires_at, Some(1_900_000_000));
        assert_eq!(b.app_name.as_deref(), Some("space-miner"));
        assert_eq!(
            b.qr,
            QrMatrix::encode("https://example.test/qr/ABC123").unwrap()
        );
        assert!(b.qr.width() >= 21);
    }

    #[test]
    fn bad_details_are_typed_errors() {
        let missing = Display::parse(keys::KIND_ORDER_CODE, &details(&[])).unwrap_err();
        assert!(matches!(missing, Error::MissingKey { key } if key == keys::CODE_VALUE));
        let wrong = Display::parse(
            keys::KIND_BINDING_QR,
            &details(&[
                (keys::CODE_VALUE, Value::from("x")),
                (keys::EXPIRES_AT, Value::from("soon")),
            ]),
        )
        .unwrap_err();
        assert!(
            matches!(wrong, Error::WrongType { key, expected: "x" } if key == keys::EXPIRES_AT)
        );
        let unknown = Prompt::parse("launch-missiles", &details(&[])).unwrap_err();
        assert!(matches!(unknown, Error::UnknownKind { .. }));
        let too_long = "9".repeat(8_000);
        let qr = Display::parse(
            keys::KIND_BINDING_QR,
            &details(&[(keys::CODE_VALUE, Value::from(too_long))]),
        )
        .unwrap_err();
        assert!(matches!(qr, Error::Qr(_)));
        assert!(matches!(
            zbus::fdo::Error::from(qr),
            zbus::fdo::Error::InvalidArgs(_)
        ));
    }

    #[test]
    fn parent_approval_requires_a_pin_by_default() {
        let p = Prompt::parse(
            keys::KIND_PARENT_APPROVAL,
            &details(&[
                (keys::MESSAGE, Value::from("Approve HK$10.00 for Game X?")),
                (keys::ATTEMPTS_LEFT, Value::from(3_u32)),
            ]),
        )
        .unwrap();
        assert!(p.pin_required);
        assert_eq!(p.attempts_left, Some(3));
        let p = Prompt::parse(
            keys::KIND_PAYMENT,
            &details(&[(keys::MESSAGE, Value::from("Pay HK$49.00 to Game X?"))]),
        )
        .unwrap();
        assert!(!p.pin_required);
        assert_eq!(p.kind, PromptKind::Payment);
        let p = Prompt::parse(
            keys::KIND_UNBIND,
            &details(&[(
                keys::MESSAGE,
                Value::from("busctl asks to unbind your AlipayHK wallet"),
            )]),
        )
        .unwrap();
        assert_eq!(p.kind, PromptKind::Unbind);
        assert!(!p.pin_required);
        assert_eq!(p.app_line(), None);
    }

    #[test]
    fn the_app_is_shown_with_its_executable() {
        let p = Prompt::parse(
            keys::KIND_CONSENT,
            &details(&[
                (keys::MESSAGE, Value::from("Allow?")),
                (keys::APP_NAME, Value::from("Space Miner")),
                (keys::APP_EXE, Value::from("/usr/games/space-miner")),
            ]),
        )
        .unwrap();
        assert_eq!(
            p.app_line().as_deref(),
            Some("Space Miner — /usr/games/space-miner")
        );
        assert_eq!(app_line(None, Some("/x")).as_deref(), Some("/x"));
    }

    #[test]
    fn the_answer_carries_the_pin_only_when_typed() {
        let (allowed, answer) = Answer {
            allowed: true,
            pin: Some("1234".into()),
        }
        .into_reply();
        assert!(allowed);
        assert_eq!(
            <&str>::try_from(&*answer[keys::ANSWER_PIN]).unwrap(),
            "1234"
        );
        let (allowed, answer) = Answer::denied().into_reply();
        assert!(!allowed && answer.is_empty());
    }
}
