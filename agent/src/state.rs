//! What is on screen and what keys do, without any toolkit: the UI draws
//! [`AgentState::top`] and feeds [`Key`]s to [`AgentState::key`].
//!
//! Screens stack: the newest request is on top, and [`UiCommand::Dismiss`] removes a
//! request wherever it is. A prompt's reply channel lives in its screen, so a prompt
//! that is dismissed (the daemon gave up) or reset (the daemon left) replies "denied"
//! by dropping it.

use tokio::sync::oneshot;
use zeroize::Zeroizing;

use crate::request::{Answer, Display, Prompt};

/// A command from the D-Bus side to the UI.
#[derive(Debug)]
pub enum UiCommand {
    /// `Show`: put `display` on screen until dismissed.
    Show {
        /// The daemon's request id.
        request: String,
        /// What to show.
        display: Display,
    },
    /// `Dismiss`: take `request` off the screen.
    Dismiss {
        /// The daemon's request id.
        request: String,
        /// Why (`bound`, `expired`, `timed-out`, ...).
        outcome: String,
    },
    /// `Confirm`: ask, and send the answer on `reply`.
    Confirm {
        /// The daemon's request id.
        request: String,
        /// The question.
        prompt: Prompt,
        /// Where the answer goes.
        reply: oneshot::Sender<Answer>,
    },
    /// The daemon left the bus: everything it asked for is void.
    Reset,
}

/// A key of a keyboard or TV remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Left arrow.
    Left,
    /// Right arrow.
    Right,
    /// Enter / OK.
    Enter,
    /// Escape / Back.
    Escape,
    /// Backspace.
    Backspace,
    /// A digit key, 0 to 9.
    Digit(u8),
}

/// Something the user asked for that the D-Bus side must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Call `Daemon1.StartBinding(wallet, {})` (a fresh binding code).
    StartBinding {
        /// The wallet of the code that expired.
        wallet: String,
    },
}

/// The button a prompt has selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Refuse (left, selected first: a stray Enter never pays).
    Deny,
    /// Allow (right).
    Allow,
}

/// The longest PIN the field takes (the daemon accepts 4 to 12 digits).
pub const MAX_PIN_DIGITS: usize = 12;

/// The digits typed into a PIN field: wiped from memory when dropped, never printed
/// (its `Debug` shows only the length).
#[derive(Default)]
pub struct PinEntry(Zeroizing<String>);

impl PinEntry {
    /// How many digits were typed.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing was typed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn push(&mut self, digit: u8) {
        if self.0.len() < MAX_PIN_DIGITS {
            self.0.push(char::from(b'0' + digit.min(9)));
        }
    }

    fn pop(&mut self) {
        self.0.pop();
    }

    fn take(&mut self) -> String {
        std::mem::take(&mut *self.0)
    }
}

impl std::fmt::Debug for PinEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PinEntry({} digits)", self.len())
    }
}

/// One screen.
#[derive(Debug)]
pub enum Screen {
    /// A `Show`n QR code.
    Display {
        /// The request id.
        request: String,
        /// What to draw.
        display: Display,
    },
    /// A binding code expired: offer a fresh one.
    Expired {
        /// The request id of the expired code.
        request: String,
        /// The wallet to bind (none: nothing to offer, Escape closes).
        wallet: Option<String>,
        /// The wallet as people call it.
        wallet_name: Option<String>,
    },
    /// A `Confirm` waiting for the user.
    Prompt {
        /// The request id.
        request: String,
        /// The question.
        prompt: Prompt,
        /// The selected button (prompts without a PIN).
        selected: Choice,
        /// The digits typed so far (prompts with a PIN).
        pin: PinEntry,
        /// Where the answer goes.
        reply: oneshot::Sender<Answer>,
    },
}

impl Screen {
    /// The request id.
    pub fn request(&self) -> &str {
        match self {
            Screen::Display { request, .. }
            | Screen::Expired { request, .. }
            | Screen::Prompt { request, .. } => request,
        }
    }

    /// What the agent prints when the screen was first presented: `request`, with
    /// ` expired` for the fresh-code offer.
    pub fn marker(&self) -> String {
        match self {
            Screen::Expired { request, .. } => format!("{request} expired"),
            other => other.request().to_owned(),
        }
    }
}

/// The screens, newest on top.
#[derive(Debug, Default)]
pub struct AgentState {
    screens: Vec<Screen>,
}

impl AgentState {
    /// The screen to draw, if any (none: the idle screen).
    pub fn top(&self) -> Option<&Screen> {
        self.screens.last()
    }

    /// Every screen, bottom first.
    pub fn screens(&self) -> impl Iterator<Item = &Screen> {
        self.screens.iter()
    }

    /// How many screens are stacked.
    pub fn len(&self) -> usize {
        self.screens.len()
    }

    /// Whether nothing is on screen.
    pub fn is_empty(&self) -> bool {
        self.screens.is_empty()
    }

    /// Applies a command from the D-Bus side.
    pub fn apply(&mut self, cmd: UiCommand) {
        match cmd {
            UiCommand::Show { request, display } => {
                self.screens.retain(|s| s.request() != request);
                if matches!(display, Display::BindingQr(_)) {
                    // A fresh binding code replaces the offer to get one.
                    self.screens
                        .retain(|s| !matches!(s, Screen::Expired { .. }));
                }
                self.screens.push(Screen::Display { request, display });
            }
            UiCommand::Confirm {
                request,
                prompt,
                reply,
            } => {
                self.screens.retain(|s| s.request() != request);
                self.screens.push(Screen::Prompt {
                    request,
                    prompt,
                    selected: Choice::Deny,
                    pin: PinEntry::default(),
                    reply,
                });
            }
            UiCommand::Dismiss { request, outcome } => {
                let Some(i) = self.screens.iter().position(|s| s.request() == request) else {
                    return;
                };
                let screen = self.screens.remove(i);
                if outcome == "expired"
                    && let Screen::Display {
                        request,
                        display: Display::BindingQr(b),
                    } = screen
                {
                    self.screens.insert(
                        i,
                        Screen::Expired {
                            request,
                            wallet: b.wallet,
                            wallet_name: b.wallet_name,
                        },
                    );
                }
                // A dismissed prompt drops its reply sender: `Confirm` answers "denied".
            }
            UiCommand::Reset => self.screens.clear(),
        }
    }

    /// Handles a key on the top screen; returns what the D-Bus side must do.
    pub fn key(&mut self, key: Key) -> Option<Action> {
        let top = self.screens.last_mut()?;
        match top {
            Screen::Display { .. } => None,
            Screen::Expired { wallet, .. } => match key {
                Key::Enter => {
                    let wallet = wallet.take();
                    if wallet.is_some() {
                        self.screens.pop();
                    }
                    wallet.map(|wallet| Action::StartBinding { wallet })
                }
                Key::Escape => {
                    self.screens.pop();
                    None
                }
                _ => None,
            },
            Screen::Prompt {
                prompt,
                selected,
                pin,
                ..
            } => {
                let answer = if prompt.pin_required {
                    match key {
                        Key::Digit(d) => {
                            pin.push(d);
                            None
                        }
                        Key::Backspace => {
                            pin.pop();
                            None
                        }
                        Key::Enter if !pin.is_empty() => Some(Answer {
                            allowed: true,
                            pin: Some(pin.take()),
                        }),
                        Key::Escape => Some(Answer::denied()),
                        _ => None,
                    }
                } else {
                    match key {
                        Key::Left => {
                            *selected = Choice::Deny;
                            None
                        }
                        Key::Right => {
                            *selected = Choice::Allow;
                            None
                        }
                        Key::Enter => Some(Answer {
                            allowed: *selected == Choice::Allow,
                            pin: None,
                        }),
                        Key::Escape => Some(Answer::denied()),
                        _ => None,
                    }
                };
                if let Some(answer) = answer
                    && let Some(Screen::Prompt { reply, .. }) = self.screens.pop()
                {
                    // The daemon may have given up meanwhile: nobody to tell.
                    let _ = reply.send(answer);
                }
                None
            }
        }
    }

    /// Clicks a prompt button (pointer or touch).
    pub fn click(&mut self, choice: Choice) {
        if let Some(Screen::Prompt { selected, .. }) = self.screens.last_mut() {
            *selected = choice;
            self.key(Key::Enter);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{BindingQr, PromptKind, QrMatrix};

    fn qr(request: &str, wallet: Option<&str>) -> UiCommand {
        UiCommand::Show {
            request: request.into(),
            display: Display::BindingQr(BindingQr {
                code_value: "https://example.test/qr/1".into(),
                qr: QrMatrix::encode("https://example.test/qr/1").unwrap(),
                match_code: Some("42".into()),
                device_name: None,
                wallet: wallet.map(Into::into),
                wallet_name: Some("AlipayHK".into()),
                expires_at: None,
                title: None,
                app_name: None,
            }),
        }
    }

    fn prompt(
        state: &mut AgentState,
        request: &str,
        pin_required: bool,
    ) -> oneshot::Receiver<Answer> {
        let (reply, rx) = oneshot::channel();
        state.apply(UiCommand::Confirm {
            request: request.into(),
            prompt: Prompt {
                kind: if pin_required {
                    PromptKind::ParentApproval
                } else {
                    PromptKind::Payment
                },
                message: "Pay HK$49.00 to Game X?".into(),
                title: None,
                app_name: Some("Game X".into()),
                app_exe: Some("/usr/games/game-x".into()),
                pin_required,
                attempts_left: None,
                timeout_secs: None,
            },
            reply,
        });
        rx
    }

    #[test]
    fn deny_is_selected_first_and_right_enter_allows() {
        let mut s = AgentState::default();
        let mut rx = prompt(&mut s, "p1", false);
        s.key(Key::Enter);
        assert_eq!(rx.try_recv().unwrap(), Answer::denied());
        assert!(s.is_empty());

        let mut rx = prompt(&mut s, "p2", false);
        s.key(Key::Right);
        s.key(Key::Left);
        s.key(Key::Right);
        s.key(Key::Enter);
        assert_eq!(
            rx.try_recv().unwrap(),
            Answer {
                allowed: true,
                pin: None
            }
        );

        let mut rx = prompt(&mut s, "p3", false);
        s.key(Key::Right);
        s.key(Key::Escape);
        assert_eq!(rx.try_recv().unwrap(), Answer::denied());
    }

    #[test]
    fn pin_field_takes_digits_and_backspace() {
        let mut s = AgentState::default();
        let mut rx = prompt(&mut s, "p", true);
        s.key(Key::Enter); // empty: ignored
        for k in [1, 2, 9] {
            s.key(Key::Digit(k));
        }
        s.key(Key::Backspace);
        s.key(Key::Digit(3));
        s.key(Key::Digit(4));
        s.key(Key::Left); // no buttons: ignored
        s.key(Key::Enter);
        assert_eq!(
            rx.try_recv().unwrap(),
            Answer {
                allowed: true,
                pin: Some("1234".into())
            }
        );
        let mut rx = prompt(&mut s, "q", true);
        for _ in 0..20 {
            s.key(Key::Digit(7));
        }
        s.key(Key::Enter);
        assert_eq!(rx.try_recv().unwrap().pin.unwrap().len(), MAX_PIN_DIGITS);
    }

    #[test]
    fn dismissing_a_prompt_drops_its_reply() {
        let mut s = AgentState::default();
        s.apply(qr("b1", Some("ALIPAY_HK")));
        let mut rx = prompt(&mut s, "p", false);
        assert_eq!(s.top().unwrap().request(), "p");
        s.apply(UiCommand::Dismiss {
            request: "p".into(),
            outcome: "timed-out".into(),
        });
        assert!(matches!(
            rx.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
        assert_eq!(s.top().unwrap().request(), "b1");
        s.apply(UiCommand::Dismiss {
            request: "unknown".into(),
            outcome: "bound".into(),
        });
        assert_eq!(s.len(), 1);
        s.apply(UiCommand::Dismiss {
            request: "b1".into(),
            outcome: "bound".into(),
        });
        assert!(s.is_empty());
    }

    #[test]
    fn an_expired_binding_code_offers_a_fresh_one() {
        let mut s = AgentState::default();
        s.apply(qr("b1", Some("ALIPAY_HK")));
        assert_eq!(s.key(Key::Enter), None, "a QR on screen ignores keys");
        s.apply(UiCommand::Dismiss {
            request: "b1".into(),
            outcome: "expired".into(),
        });
        assert_eq!(s.top().unwrap().marker(), "b1 expired");
        assert_eq!(
            s.key(Key::Enter),
            Some(Action::StartBinding {
                wallet: "ALIPAY_HK".into()
            })
        );
        assert!(s.is_empty());

        s.apply(qr("b2", Some("ALIPAY_HK")));
        s.apply(UiCommand::Dismiss {
            request: "b2".into(),
            outcome: "expired".into(),
        });
        s.apply(qr("b3", Some("ALIPAY_HK")));
        assert_eq!(s.len(), 1, "the fresh code replaces the offer");

        s.apply(qr("b4", None));
        s.apply(UiCommand::Dismiss {
            request: "b4".into(),
            outcome: "expired".into(),
        });
        assert_eq!(s.key(Key::Enter), None, "no wallet: nothing to offer");
        s.key(Key::Escape);
        assert_eq!(s.top().unwrap().request(), "b3");
        s.apply(UiCommand::Reset);
        assert!(s.is_empty());
    }
}
