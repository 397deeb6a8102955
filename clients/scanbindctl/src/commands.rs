//! The device commands: `status`, `bind`, `unbind`, `pay`, `payments`, `finish`,
//! `refund`, `sandbox scan`. Each goes through `scanbind-client`, as an app would.

use std::time::Duration;

use anyhow::Context as _;
use scanbind_client::money::{Currency, Money};
use scanbind_client::{
    BindOptions, BindingState, Client, ListOptions, PayRequest, Payment, PaymentState, SellerPart,
    Transport,
};
use serde_json::json;

use crate::exit::{self, NOT_SUCCEEDED};
use crate::output::{Output, table};
pub use crate::show::{check_wallet, money_text, show_qr, time_text, wait_refunded, with_progress};

/// Options of `bind`.
#[derive(Debug, clap::Args)]
pub struct BindArgs {
    /// The wallet (customerBelongsTo): ALIPAY_HK, ALIPAY_CN, GCASH, DANA, KAKAOPAY, TNG, TRUEMONEY.
    #[arg(long)]
    wallet: String,
    /// A label for the binding (at most 64 characters).
    #[arg(long)]
    label: Option<String>,
    /// Print the QR code and return without waiting for the phone.
    #[arg(long)]
    no_wait: bool,
    /// Give up waiting after this many seconds (the QR itself expires after 15 minutes).
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    timeout: u64,
}

/// Options of `unbind`.
#[derive(Debug, clap::Args)]
pub struct UnbindArgs {
    /// The binding's object path (see `status`); default: the only bound binding.
    binding: Option<String>,
    /// Unbind the bound binding of this wallet instead.
    #[arg(long, conflicts_with = "binding")]
    wallet: Option<String>,
}

/// Options of `pay`.
#[derive(Debug, clap::Args)]
pub struct PayArgs {
    /// The amount in major units, e.g. 49.00 (HKD) or 5000 (KRW, no decimals).
    amount: String,
    /// The ISO 4217 currency code, e.g. HKD.
    currency: String,
    /// What is bought, shown to the user (1 to 256 characters).
    #[arg(long)]
    description: String,
    /// Your order id (1 to 64 printable ASCII characters), the idempotency key:
    /// paying again with the same id never charges twice. Default: a new one.
    #[arg(long)]
    order_id: Option<String>,
    /// The binding to charge (object path), when several are bound.
    #[arg(long, conflicts_with = "scan")]
    binding: Option<String>,
    /// Pay by scanning: show an order QR code for a wallet app instead of charging a
    /// bound wallet (no binding needed).
    #[arg(long)]
    scan: bool,
    /// A combined checkout: one seller's part, as SELLER:AMOUNT or
    /// SELLER:AMOUNT:DESCRIPTION (amount in major units; the description defaults to
    /// the payment's). Repeat for each seller (2 to 20, 6 all-or-nothing); the parts
    /// must add up to AMOUNT.
    #[arg(
        long = "seller",
        value_name = "SELLER:AMOUNT[:DESCRIPTION]",
        conflicts_with = "scan"
    )]
    sellers: Vec<String>,
    /// With --seller: parts succeed or fail on their own (default: all or nothing).
    #[arg(long, requires = "sellers")]
    independent: bool,
    /// Return once the payment is recorded, without waiting for the result.
    #[arg(long)]
    no_wait: bool,
    /// Give up waiting for the result after this many seconds.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    timeout: u64,
}

/// Options of `payments`.
#[derive(Debug, clap::Args)]
pub struct PaymentsArgs {
    /// Only those still to act on (not finished, not failed or cancelled).
    #[arg(long)]
    unfinished: bool,
    /// At most this many, newest first (1 to 1000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: Option<u32>,
}

/// Options of `finish`.
#[derive(Debug, clap::Args)]
pub struct FinishArgs {
    /// The payment: its order id or object path.
    payment: String,
}

/// Options of `refund`.
#[derive(Debug, clap::Args)]
pub struct RefundArgs {
    /// The payment: its order id or object path.
    payment: String,
    /// How much, in major units of the payment's currency; default: all that is left.
    amount: Option<String>,
    /// For a combined checkout: which seller's part (its index, from 0).
    #[arg(long)]
    part: Option<u32>,
    /// Why (kept in the records).
    #[arg(long, default_value = "refund requested with scanbindctl")]
    reason: String,
    /// Return once the refund is requested, without waiting for it to complete.
    #[arg(long)]
    no_wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    timeout: u64,
}

/// `sandbox` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SandboxCommand {
    /// Scan a sandbox QR code value as the phone and approve it (or deny it).
    Scan {
        /// The QR code's text (a sandbox /wallet/... URL); the sandbox is at its origin.
        code_value: String,
        /// Deny instead of approving.
        #[arg(long)]
        deny: bool,
    },
}

async fn connect(transport: &Transport) -> anyhow::Result<Client> {
    Client::connect(transport.clone())
        .await
        .context("connecting to scanbindd")
}

/// `status`.
pub async fn status(transport: &Transport, out: Output) -> anyhow::Result<()> {
    let client = connect(transport).await?;
    let status = client.status().await?;
    let bindings = client.bindings().await?;
    out.emit(&json!({"status": status, "bindings": bindings}), || {
        println!("scanbindd {}", status.version);
        println!("merchant server: {}", status.connectivity);
        println!("device name:     {}", status.device_name);
        if bindings.is_empty() {
            println!("bindings:        none (bind one with `scanbindctl bind --wallet W`)");
        } else {
            println!();
            let rows: Vec<Vec<String>> = bindings
                .iter()
                .map(|b| {
                    vec![
                        b.wallet.clone(),
                        b.state.to_string(),
                        b.label.clone(),
                        b.binding.to_string(),
                    ]
                })
                .collect();
            table(&["WALLET", "STATE", "LABEL", "BINDING"], &rows);
        }
    });
    Ok(())
}

/// `bind`.
pub async fn bind(transport: &Transport, args: BindArgs, out: Output) -> anyhow::Result<()> {
    check_wallet(&args.wallet)?;
    if args.label.as_ref().is_some_and(|l| l.chars().count() > 64) {
        return Err(exit::usage("--label is longer than 64 characters"));
    }
    let client = connect(transport).await?;
    let binding = client
        .bind(
            &args.wallet,
            BindOptions {
                label: args.label.clone(),
                display: None,
            },
        )
        .await?;
    let expires = binding.expires_at().await?;
    out.emit(
        &json!({
            "binding": binding.path(),
            "state": "pending",
            "codeValue": binding.code_value().await?,
            "matchCode": binding.match_code().await?,
            "expiresAt": expires,
        }),
        || {},
    );
    if !out.json {
        show_qr(&binding).await?;
    }
    if args.no_wait {
        out.say(format!("binding {} is pending", binding.path()));
        return Ok(());
    }
    let outcome = with_progress(
        "waiting for the phone",
        Some(expires),
        Duration::from_secs(args.timeout),
        binding.wait(),
    )
    .await??;
    let label = binding.label().await?;
    out.emit(
        &json!({"binding": binding.path(), "state": outcome.state, "label": label, "error": outcome.error}),
        || match &outcome.error {
            None => println!("bound: {} {label} ({})", args.wallet, binding.path()),
            Some(e) => println!("{}: {} ({})", outcome.state, e.message, e.name),
        },
    );
    if outcome.state != BindingState::Bound {
        return Err(exit::with_code(NOT_SUCCEEDED, ""));
    }
    Ok(())
}

/// `unbind`.
pub async fn unbind(transport: &Transport, args: UnbindArgs, out: Output) -> anyhow::Result<()> {
    let client = connect(transport).await?;
    let bindings = client.bindings().await?;
    let bound: Vec<_> = bindings
        .iter()
        .filter(|b| b.state == BindingState::Bound)
        .filter(|b| args.wallet.as_ref().is_none_or(|w| &b.wallet == w))
        .collect();
    let path = match (&args.binding, bound.as_slice()) {
        (Some(p), _) => zvariant::OwnedObjectPath::try_from(p.as_str())
            .map_err(|e| exit::usage(format!("{p:?} is not an object path: {e}")))?,
        (None, [one]) => one.binding.clone(),
        (None, []) => return Err(exit::with_code(exit::FAILURE, "no bound binding to remove")),
        (None, _) => {
            return Err(exit::usage(
                "several bindings are bound: name one (see `scanbindctl status`)",
            ));
        }
    };
    // As the device owner (io.scanbind.Manager1): unbinds at once, authorized like a
    // policy change; an app's own Daemon1.Unbind asks on the display instead.
    let manager = scanbind_client::ipc::proxy::Manager1Proxy::new(client.connection())
        .await
        .map_err(scanbind_client::Error::from)?;
    manager
        .unbind(&path.as_ref(), std::collections::HashMap::new())
        .await
        .map_err(crate::policy_file::refused)?;
    out.emit(&json!({"binding": path, "state": "unbound"}), || {
        println!("unbound {path}");
    });
    Ok(())
}

/// Checks an order id as the daemon does: 1 to 64 printable ASCII characters.
pub fn check_order_id(id: &str) -> anyhow::Result<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(exit::usage(format!(
            "order id {id:?} must be 1 to 64 printable ASCII characters without spaces"
        )));
    }
    Ok(())
}

/// Parses an amount in major units of a currency code, with messages for people.
pub fn parse_amount(amount: &str, currency: &str) -> anyhow::Result<Money> {
    let currency = Currency::from_code(&currency.to_ascii_uppercase()).map_err(|_| {
        exit::usage(format!(
            "{currency:?} is not an ISO 4217 currency code (e.g. HKD, PHP, IDR, KRW, MYR, THB, CNY)"
        ))
    })?;
    let money = Money::parse_major(amount, currency).map_err(|e| exit::usage(e.to_string()))?;
    if money.minor().get() == 0 {
        return Err(exit::usage("the amount must be more than zero"));
    }
    Ok(money)
}

/// `pay`.
pub async fn pay(transport: &Transport, args: PayArgs, out: Output) -> anyhow::Result<()> {
    let amount = parse_amount(&args.amount, &args.currency)?;
    let n = args.description.chars().count();
    if n == 0 || n > 256 {
        return Err(exit::usage("--description must be 1 to 256 characters"));
    }
    let order_id = match args.order_id {
        Some(id) => id,
        None => format!(
            "ctl-{}-{}",
            time::OffsetDateTime::now_utc().unix_timestamp(),
            std::process::id()
        ),
    };
    check_order_id(&order_id)?;
    let mut request = PayRequest::new(order_id.clone(), amount, args.description);
    if let Some(b) = &args.binding {
        let path = zvariant::OwnedObjectPath::try_from(b.as_str())
            .map_err(|e| exit::usage(format!("--binding {b:?} is not an object path: {e}")))?;
        request = request.binding(path);
    }
    if args.scan {
        request = request.by_order_code();
    }
    if !args.sellers.is_empty() {
        let mut parts = Vec::with_capacity(args.sellers.len());
        for spec in &args.sellers {
            let mut fields = spec.splitn(3, ':');
            let (Some(seller), Some(value)) = (fields.next(), fields.next()) else {
                return Err(exit::usage(format!(
                    "--seller {spec:?}: give SELLER:AMOUNT[:DESCRIPTION]"
                )));
            };
            let part_amount = parse_amount(value, &args.currency)?;
            let description = fields.next().unwrap_or(request.description());
            parts.push(SellerPart::new(seller, part_amount, description));
        }
        request = request.sellers(parts).all_or_nothing(!args.independent);
    }
    let client = connect(transport).await?;
    let payment = client.pay(&request).await?;
    if args.scan {
        let code = tokio::time::timeout(Duration::from_secs(args.timeout), payment.order_code())
            .await
            .map_err(|_| exit::with_code(exit::TIMEOUT, "no order code from the server"))??;
        if let Some((code, expires_at)) = code {
            let left = expires_at - time::OffsetDateTime::now_utc().unix_timestamp();
            out.emit(
                &json!({"payment": payment.path(), "orderId": order_id, "orderCode": code, "expiresAt": expires_at}),
                || {
                    if let Ok(qr) = crate::qr::render_text(&code) {
                        println!("{qr}");
                    }
                    println!("Scan to pay {amount} with a wallet app: {code}");
                    println!("(the code expires in {} s)", left.max(0));
                },
            );
        }
    }
    if args.no_wait {
        out.emit(
            &json!({"payment": payment.path(), "orderId": order_id, "state": payment.state().await?}),
            || println!("payment {} ({order_id}) recorded", payment.path()),
        );
        return Ok(());
    }
    let outcome = with_progress(
        "paying",
        None,
        Duration::from_secs(args.timeout),
        payment.wait(),
    )
    .await??;
    let parts = payment.parts().await?;
    out.emit(
        &json!({
            "payment": payment.path(),
            "orderId": order_id,
            "amountMinor": amount.minor().get(),
            "currency": amount.currency().code(),
            "state": outcome.state,
            "receipt": outcome.receipt,
            "error": outcome.error,
            "parts": parts,
        }),
        || {
            match &outcome.error {
                None => println!(
                    "{}: {amount} for order {order_id} ({})",
                    outcome.state,
                    payment.path()
                ),
                Some(e) => println!("{}: {} ({})", outcome.state, e.message, e.name),
            }
            if !parts.is_empty() {
                let rows: Vec<Vec<String>> = parts
                    .iter()
                    .map(|p| {
                        vec![
                            p.index.to_string(),
                            p.seller.clone(),
                            money_text(p.amount_minor, amount.currency().code()),
                            p.state.clone(),
                            if p.reversed { "reversed" } else { "" }.to_owned(),
                            p.result_code.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                table(&["PART", "SELLER", "AMOUNT", "STATE", "", "CODE"], &rows);
            }
        },
    );
    if outcome.state != PaymentState::Succeeded {
        return Err(exit::with_code(NOT_SUCCEEDED, ""));
    }
    Ok(())
}

/// `payments`.
pub async fn payments(
    transport: &Transport,
    args: PaymentsArgs,
    out: Output,
) -> anyhow::Result<()> {
    let client = connect(transport).await?;
    let list = client
        .payments(ListOptions {
            unfinished: args.unfinished,
            limit: args.limit,
        })
        .await?;
    out.emit(&list, || {
        if list.is_empty() {
            println!("no payments");
            return;
        }
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|p| {
                vec![
                    p.order_id.clone(),
                    money_text(p.amount_minor, &p.currency),
                    p.state.to_string(),
                    if p.delivered { "yes" } else { "no" }.to_owned(),
                    time_text(p.created_at),
                    p.payment.to_string(),
                ]
            })
            .collect();
        table(
            &[
                "ORDER ID",
                "AMOUNT",
                "STATE",
                "DELIVERED",
                "CREATED (UTC)",
                "PAYMENT",
            ],
            &rows,
        );
    });
    Ok(())
}

/// Finds a payment by object path or by the caller's order id.
async fn find_payment(client: &Client, which: &str) -> anyhow::Result<Payment> {
    if which.starts_with('/') {
        let path = zvariant::OwnedObjectPath::try_from(which)
            .map_err(|e| exit::usage(format!("{which:?} is not an object path: {e}")))?;
        return Ok(client.payment(path).await?);
    }
    let list = client
        .payments(ListOptions {
            unfinished: false,
            limit: Some(1000),
        })
        .await?;
    let found = list
        .into_iter()
        .find(|p| p.order_id == which)
        .ok_or_else(|| {
            exit::with_code(
                exit::FAILURE,
                format!("no payment with order id {which:?} (see `scanbindctl payments`)"),
            )
        })?;
    Ok(client.payment(found.payment).await?)
}

/// `finish`.
pub async fn finish(transport: &Transport, args: FinishArgs, out: Output) -> anyhow::Result<()> {
    let client = connect(transport).await?;
    let payment = find_payment(&client, &args.payment).await?;
    payment.finish().await?;
    out.emit(
        &json!({"payment": payment.path(), "delivered": true}),
        || {
            println!("delivered: {}", payment.path());
        },
    );
    Ok(())
}

/// `refund`.
pub async fn refund(transport: &Transport, args: RefundArgs, out: Output) -> anyhow::Result<()> {
    let client = connect(transport).await?;
    let payment = find_payment(&client, &args.payment).await?;
    let mut paid = payment.amount().await?;
    let before = payment.refunded().await?;
    let mut left = paid
        .checked_sub(before)
        .map_err(|e| exit::with_code(exit::FAILURE, e.to_string()))?;
    if let Some(index) = args.part {
        let parts = payment.parts().await?;
        let Some(p) = parts.iter().find(|p| p.index == index) else {
            return Err(exit::usage(format!(
                "--part {index}: this payment has {} part(s)",
                parts.len()
            )));
        };
        paid = Money::from_minor(paid.currency(), p.amount_minor)?;
        left = Money::from_minor(paid.currency(), p.amount_minor - p.refunded_minor)?;
    }
    let amount = match &args.amount {
        Some(a) => parse_amount(a, paid.currency().code())?,
        None => left,
    };
    let refund = match args.part {
        Some(index) => payment.refund_part(index, amount, &args.reason).await?,
        None => payment.refund(amount, &args.reason).await?,
    };
    let target = before.checked_add(amount)?;
    if !args.no_wait && refund.state != "failed" {
        with_progress(
            "refunding",
            None,
            Duration::from_secs(args.timeout),
            wait_refunded(&payment, target),
        )
        .await??;
    }
    let refunded = payment.refunded().await?;
    out.emit(
        &json!({
            "payment": payment.path(),
            "refundId": refund.id,
            "state": if refunded.minor() >= target.minor() { "succeeded" } else { refund.state.as_str() },
            "refundedMinor": refunded.minor().get(),
            "currency": refunded.currency().code(),
        }),
        || println!("refund {} of {amount}: {} (refunded so far: {refunded})", refund.id, refund.state),
    );
    if refund.state == "failed" {
        return Err(exit::with_code(NOT_SUCCEEDED, ""));
    }
    Ok(())
}

/// `sandbox scan`.
pub async fn sandbox(command: SandboxCommand, out: Output) -> anyhow::Result<()> {
    let SandboxCommand::Scan { code_value, deny } = command;
    let url = reqwest::Url::parse(&code_value)
        .map_err(|e| exit::usage(format!("{code_value:?} is not a URL: {e}")))?;
    if !url.path().contains("/wallet/") {
        return Err(exit::usage(format!(
            "{code_value:?} is not a sandbox QR code value (…/wallet/authorize/… or …/wallet/pay/…)"
        )));
    }
    let origin = url.origin().ascii_serialization();
    let http = scanbind_ams::client::http_client_builder(Vec::new())?
        .no_proxy()
        .build()?;
    let decision = if deny { "deny" } else { "approve" };
    let resp = http
        .post(format!("{origin}/sandbox/v1/scan"))
        .json(&json!({"codeValue": code_value, "decision": decision}))
        .send()
        .await
        .with_context(|| format!("reaching the sandbox at {origin}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        return Err(exit::with_code(
            exit::REFUSED,
            format!("the sandbox refused the scan ({status}): {body}"),
        ));
    }
    out.emit(&body, || {
        println!(
            "phone: {} {}",
            body["kind"].as_str().unwrap_or("?"),
            body["outcome"].as_str().unwrap_or("?")
        );
    });
    Ok(())
}
