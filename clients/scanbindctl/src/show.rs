//! What the device commands and the demo show while they run: money and times for
//! people, the binding's QR code, a progress line while waiting, and the wait for a
//! refund. Shared by `scanbindctl` and the demo program (`scanbind-demo`).

use std::io::IsTerminal as _;
use std::time::Duration;

use futures_util::StreamExt as _;
use scanbind_client::money::{Currency, Money};
use scanbind_client::{Binding, Payment};

use crate::exit::{self, TIMEOUT};

/// Formats minor units of a currency code for people ("HKD 49.00"); the raw numbers
/// when the code is unknown.
pub fn money_text(minor: i64, currency: &str) -> String {
    Currency::from_code(currency)
        .ok()
        .and_then(|c| Money::from_minor(c, minor).ok())
        .map_or_else(
            || format!("{currency} {minor} (minor units)"),
            |m| m.to_string(),
        )
}

/// An RFC 3339 UTC time from Unix seconds.
pub fn time_text(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Checks a wallet name: a Scan to Bind wallet, or a usage error naming them.
pub fn check_wallet(wallet: &str) -> anyhow::Result<Currency> {
    match scanbind_money::wallet::scan_to_bind(wallet) {
        Some(profile) => Ok(profile.currency),
        None => {
            let names = scanbind_money::wallet::SCAN_TO_BIND;
            Err(exit::usage(format!(
                "{wallet} is not a Scan to Bind wallet (try one of {})",
                names.join(", ")
            )))
        }
    }
}

/// Draws a binding's QR code (from `GetQrMatrix`, or from `CodeValue` on a daemon
/// without it) with its match code and expiry.
pub async fn show_qr(binding: &Binding) -> anyhow::Result<()> {
    let drawing = match binding.qr_matrix().await {
        Ok(m) => crate::qr::render_matrix(m.width, &m.modules),
        Err(scanbind_client::Error::Bus(_)) => {
            crate::qr::render_text(&binding.code_value().await?)?
        }
        Err(e) => return Err(e.into()),
    };
    print!("{drawing}");
    println!(
        "  Scan with the {} app. Match code: {}   (expires {})",
        binding.wallet().await?,
        binding.match_code().await?,
        time_text(binding.expires_at().await?)
    );
    Ok(())
}

/// Waits for `fut`, showing a spinner and the time left on stderr when it is a
/// terminal (display only: the wait itself is on the daemon's signal).
pub async fn with_progress<T>(
    what: &str,
    deadline_unix: Option<i64>,
    timeout: Duration,
    fut: impl std::future::Future<Output = T>,
) -> anyhow::Result<T> {
    let show = std::io::stderr().is_terminal();
    let fut = tokio::time::timeout(timeout, fut);
    tokio::pin!(fut);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let mut n = 0_usize;
    loop {
        tokio::select! {
            r = &mut fut => {
                if show {
                    eprint!("\r\x1b[2K");
                }
                return r.map_err(|_| exit::with_code(
                    TIMEOUT,
                    format!("gave up {what} after {} s", timeout.as_secs()),
                ));
            }
            _ = tick.tick(), if show => {
                let left = deadline_unix.map(|d| {
                    let s = (d - time::OffsetDateTime::now_utc().unix_timestamp()).max(0);
                    format!("  {}:{:02} left", s / 60, s % 60)
                }).unwrap_or_default();
                eprint!("\r\x1b[2K{} {what}…{left}", frames[n % frames.len()]);
                n += 1;
            }
        }
    }
}

/// Waits until the payment's `RefundedMinor` reaches `target`.
pub async fn wait_refunded(payment: &Payment, target: Money) -> anyhow::Result<()> {
    let mut states = payment.receive_refunded().await?;
    while let Some(r) = states.next().await {
        if r?.minor() >= target.minor() {
            return Ok(());
        }
    }
    Err(scanbind_client::Error::Disconnected("the refund").into())
}
