//! Simulated wallets and their users: which wallets exist (the Scan to Bind table of
//! ams-api.md §4, from `scanbind_ams::wallet`), default users, balances and limit usage.

use scanbind_ams::wallet::{Wallet, WalletProfile};
use time::OffsetDateTime;

use crate::clock::UTC8;
use crate::state::{State, User};

/// Major units given to a user created without an explicit balance.
pub const DEFAULT_BALANCE_MAJOR: i64 = 1_000_000;

/// The Scan to Bind profile of a `customerBelongsTo` value, if the sandbox simulates it.
pub fn profile(wallet: &str) -> Option<(Wallet, WalletProfile)> {
    let w = Wallet::parse(wallet);
    let p = w.scan_to_bind()?;
    Some((w, p))
}

/// The login id of the user a wallet uses when no user is named.
pub fn default_user_id(wallet: &str) -> String {
    format!("{}_user", wallet.to_ascii_lowercase())
}

/// The default balance of a wallet in minor units.
pub fn default_balance(profile: &WalletProfile) -> i64 {
    let mut v = DEFAULT_BALANCE_MAJOR;
    for _ in 0..profile.currency.exponent() {
        v = v.saturating_mul(10);
    }
    v
}

/// Returns the login id of `user` in `wallet`, creating the wallet's default user when
/// `user` is `None`. Errors are messages for people (phone page, control API).
pub fn resolve_user(state: &mut State, wallet: &str, user: Option<&str>) -> Result<String, String> {
    let Some((_, profile)) = profile(wallet) else {
        return Err(format!("{wallet} is not a wallet the sandbox simulates"));
    };
    match user {
        Some(login) => match state.users.get(login) {
            Some(u) if u.wallet == wallet => Ok(login.to_owned()),
            Some(u) => Err(format!(
                "user {login} has a {} wallet, but this code is for {wallet}",
                u.wallet
            )),
            None => Err(format!("there is no wallet user {login}")),
        },
        None => {
            let login = default_user_id(wallet);
            state.users.entry(login.clone()).or_insert_with(|| User {
                login_id: login.clone(),
                wallet: wallet.to_owned(),
                currency: profile.currency.code().to_owned(),
                balance: default_balance(&profile),
            });
            Ok(login)
        }
    }
}

/// The usage keys (day and year, in UTC+8) of a payment by `user` at `t`.
pub fn usage_keys(user: &str, t: OffsetDateTime) -> (String, String) {
    let t = t.to_offset(UTC8);
    (
        format!(
            "{user}|{:04}-{:02}-{:02}",
            t.year(),
            u8::from(t.month()),
            t.day()
        ),
        format!("{user}|{:04}", t.year()),
    )
}

/// Why a payment of `amount` minor units by `user` at `t` is not allowed by the wallet's
/// limits, if it is not: `(result code text, message)`.
pub fn check_limits(
    state: &State,
    profile: &WalletProfile,
    user: &str,
    amount: i64,
    t: OffsetDateTime,
) -> Option<&'static str> {
    if let Some(limit) = profile.per_transaction_limit
        && amount > limit.get()
    {
        return Some("the amount exceeds the wallet's per-transaction limit");
    }
    let (day, year) = usage_keys(user, t);
    let used_day = state.usage.get(&day).copied().unwrap_or(0);
    let used_year = state.usage.get(&year).copied().unwrap_or(0);
    if let Some(limit) = profile.daily_limit
        && used_day.saturating_add(amount) > limit.get()
    {
        return Some("the amount exceeds the wallet's daily limit");
    }
    if let Some(limit) = profile.yearly_limit
        && used_year.saturating_add(amount) > limit.get()
    {
        return Some("the amount exceeds the wallet's yearly limit");
    }
    None
}

/// Records `amount` against the user's daily and yearly usage.
pub fn add_usage(state: &mut State, user: &str, amount: i64, t: OffsetDateTime) {
    let (day, year) = usage_keys(user, t);
    let day = state.usage.entry(day).or_insert(0);
    *day = day.saturating_add(amount);
    let year = state.usage.entry(year).or_insert(0);
    *year = year.saturating_add(amount);
}
