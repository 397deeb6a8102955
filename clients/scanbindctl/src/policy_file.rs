//! The payment policy as `apps` and `profiles` change it: through the daemon's
//! management interface (`io.scanbind.Manager1`, which checks and writes the file),
//! read back with the daemon's own parser (`scanbind-policy`), and amounts in major
//! units.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use scanbind_client::ipc::Error as Wire;
use scanbind_client::ipc::proxy::Manager1Proxy;
use scanbind_client::{Client, Transport};
use scanbind_policy::{Limits, PolicyFile};

use crate::commands::parse_amount;
use crate::exit;

/// Connects to the daemon's management interface (`io.scanbind.Manager1`). An
/// unreachable daemon is said plainly (exit 3): the policy is changed through the
/// daemon only.
pub async fn manager(transport: &Transport) -> anyhow::Result<(Client, Manager1Proxy<'static>)> {
    let client = Client::connect(transport.clone()).await.context(
        "the payment policy is read and changed through scanbindd (io.scanbind.Manager1), \
         which cannot be reached: start it (systemctl start scanbindd, or --user), or \
         pass --address / --socket / --system",
    )?;
    let proxy = Manager1Proxy::new(client.connection())
        .await
        .map_err(scanbind_client::Error::from)?;
    Ok((client, proxy))
}

/// The policy in effect and the file it is read from, through the daemon.
pub async fn current(manager: &Manager1Proxy<'_>) -> anyhow::Result<(String, PolicyFile)> {
    let (path, text) = manager.get_policy(HashMap::new()).await.map_err(refused)?;
    let policy = PolicyFile::parse(&text, Path::new(&path)).map_err(|e| {
        anyhow::anyhow!("the daemon sent a policy this scanbindctl cannot read: {e}")
    })?;
    Ok((path, policy))
}

/// A refusal of the daemon as scanbindctl reports it: bad input (an unknown profile,
/// app or agent, a bad amount or name) is a usage error (exit 2) with the daemon's
/// message; `NotAllowed` and the rest exit 4 (3 when the daemon went away).
pub fn refused(e: Wire) -> anyhow::Error {
    use zbus::DBusError as _;
    match &e {
        Wire::InvalidArgument(m)
        | Wire::InvalidAmount(m)
        | Wire::UnknownCurrency(m)
        | Wire::UnknownOption(m)
        | Wire::NotFound(m) => exit::usage(m.clone()),
        Wire::NotAllowed(_) => {
            let m = e.description().unwrap_or_default().to_owned();
            anyhow::Error::from(scanbind_client::Error::from(e)).context(format!(
                "the daemon refused ({m}); changing the policy needs root, polkit's \
                 authorization or, without polkit, the admin group (docs/policy.md)"
            ))
        }
        _ => scanbind_client::Error::from(e).into(),
    }
}

/// Limits given in major units on the command line.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct LimitArgs {
    /// The most per payment, in major units (e.g. 100.00).
    #[arg(long, value_name = "AMOUNT", allow_negative_numbers = true)]
    pub per_payment: Option<String>,
    /// The most per UTC day, in major units.
    #[arg(long, value_name = "AMOUNT", allow_negative_numbers = true)]
    pub daily: Option<String>,
    /// The most per UTC month, in major units.
    #[arg(long, value_name = "AMOUNT", allow_negative_numbers = true)]
    pub monthly: Option<String>,
}

impl LimitArgs {
    /// Whether no limit was given.
    pub fn is_empty(&self) -> bool {
        self.per_payment.is_none() && self.daily.is_none() && self.monthly.is_none()
    }

    /// Checks the amounts against `currency` (a known ISO 4217 code, its decimals, more
    /// than zero) and merges them into `limits` (limits not given are kept). Nothing
    /// changes on an error.
    pub fn apply(&self, currency: &str, limits: &mut Limits) -> anyhow::Result<()> {
        let minor = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<i64>> {
            let Some(v) = v.as_deref() else {
                return Ok(None);
            };
            if v.trim_start().starts_with('-') {
                return Err(exit::usage(format!(
                    "--{flag} {v}: a limit must be a positive amount of {currency}"
                )));
            }
            let money = parse_amount(v, currency)
                .map_err(|e| exit::usage(format!("--{flag} {v}: {e:#}")))?;
            Ok(Some(money.minor().get()))
        };
        let (p, d, m) = (
            minor("per-payment", &self.per_payment)?,
            minor("daily", &self.daily)?,
            minor("monthly", &self.monthly)?,
        );
        limits.per_payment = p.or(limits.per_payment);
        limits.daily = d.or(limits.daily);
        limits.monthly = m.or(limits.monthly);
        Ok(())
    }
}

/// Checks a currency code (exit 2 with examples when unknown) and returns it upper-case.
pub fn currency_code(currency: &str) -> anyhow::Result<String> {
    let code = currency.to_ascii_uppercase();
    scanbind_client::money::Currency::from_code(&code).map_err(|_| {
        exit::usage(format!(
            "{currency:?} is not an ISO 4217 currency code (e.g. HKD, PHP, IDR, KRW, MYR, THB, CNY)"
        ))
    })?;
    Ok(code)
}

/// One line for people: `per payment HKD 100.00 · daily HKD 500.00 · monthly -`.
pub fn limits_text(currency: &str, l: &Limits) -> String {
    let f = |v: Option<i64>| v.map_or("-".to_owned(), |v| crate::commands::money_text(v, currency));
    format!(
        "per payment {} · daily {} · monthly {}",
        f(l.per_payment),
        f(l.daily),
        f(l.monthly)
    )
}

/// `SetLimits`' `a{sx}` from limits in minor units.
pub fn limits_dict(l: &Limits) -> HashMap<&'static str, i64> {
    [
        ("per-payment", l.per_payment),
        ("daily", l.daily),
        ("monthly", l.monthly),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect()
}
