//! Answers from the terminal: lines, and secrets (PINs) typed without echo.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use rustix::termios::{self, LocalModes, OptionalActions, Termios};
use zeroize::Zeroizing;

/// While alive, what is typed on the terminal at stdin is not echoed (Enter still
/// moves to the next line). A no-op when stdin is not a terminal. Restores the
/// terminal on drop.
#[derive(Debug)]
pub struct EchoOff {
    saved: Option<Termios>,
}

impl EchoOff {
    /// Turns echo off on stdin's terminal, if stdin is one.
    pub fn new() -> EchoOff {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return EchoOff { saved: None };
        }
        let Ok(saved) = termios::tcgetattr(&stdin) else {
            return EchoOff { saved: None };
        };
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        if termios::tcsetattr(&stdin, OptionalActions::Now, &quiet).is_err() {
            return EchoOff { saved: None };
        }
        EchoOff { saved: Some(saved) }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, saved);
        }
    }
}

/// Whether stdin is a terminal (prompts are shown and secrets are read without echo).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Reads one line from stdin without its line ending; `None` at end of input. With
/// `secret` and a terminal, the line is typed without echo. `prompt` goes to stderr
/// when stdin is a terminal.
pub fn read_line(prompt: &str, secret: bool) -> std::io::Result<Option<Zeroizing<String>>> {
    let tty = interactive();
    if tty {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
    }
    let _quiet = (secret && tty).then(EchoOff::new);
    let mut buf = Zeroizing::new(Vec::new());
    let n = std::io::stdin().lock().read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(Zeroizing::new(
        String::from_utf8_lossy(&buf)
            .trim_end_matches(['\n', '\r'])
            .to_owned(),
    )))
}

/// Whether `pin` is a parent PIN: 4 to 12 ASCII digits.
pub fn is_pin(pin: &str) -> bool {
    (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit())
}
