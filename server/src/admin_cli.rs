//! `scanbind-server admin ...`: the operator's terminal. Key management works on the
//! database directly (it needs the server's configuration); everything else is a client
//! of the `/admin/v1` API on the operator listener (`server.admin_listen`),
//! authenticated with an operator key.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use scanbind_ams::money::{Currency, Money};
use serde_json::{Value, json};

/// `admin` options and operations.
#[derive(Args, Debug)]
pub struct AdminArgs {
    /// The base URL of the server's operator listener (`server.admin_listen`).
    #[arg(
        long,
        env = "SCANBIND_ADMIN_URL",
        default_value = "http://127.0.0.1:8444",
        global = true
    )]
    url: String,
    /// A file holding the operator key (else `$SCANBIND_ADMIN_KEY`).
    #[arg(long, global = true)]
    key_file: Option<PathBuf>,
    /// Extra CA certificate (PEM) to trust, e.g. the server's self-signed certificate.
    #[arg(long, global = true)]
    ca_cert: Option<PathBuf>,
    /// Print the JSON answers instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    op: AdminOp,
}

#[derive(Subcommand, Debug)]
enum AdminOp {
    /// Operator API keys (on the database; needs --config).
    Keys {
        #[command(subcommand)]
        op: KeysOp,
    },
    /// Search payments (newest first).
    Payments {
        /// Device id.
        #[arg(long)]
        device_id: Option<String>,
        /// App id.
        #[arg(long)]
        app_id: Option<String>,
        /// App order id.
        #[arg(long)]
        app_order_id: Option<String>,
        /// pending, succeeded, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Created at or after (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Created before (RFC 3339).
        #[arg(long)]
        to: Option<String>,
        /// At most this many (1–1000).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One payment with its refunds, declarations and full history.
    Show {
        /// Payment id.
        payment_id: String,
    },
    /// Refund a payment, fully or partly (idempotent by --refund-id).
    Refund {
        /// Payment id.
        payment_id: String,
        /// Your refund id (reuse it to retry safely).
        #[arg(long)]
        refund_id: String,
        /// Amount in major units, e.g. 5.25.
        #[arg(long)]
        amount: String,
        /// Currency (default: the payment's).
        #[arg(long)]
        currency: Option<String>,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Cancel a payment within the wallet's cancel window.
    Cancel {
        /// Payment id.
        payment_id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Declare a payment (or a sub-order of it) to customs.
    Declare {
        /// Payment id.
        payment_id: String,
        /// Declaration request id (idempotency key, ≤32 characters).
        #[arg(long)]
        id: String,
        /// Customs office code, e.g. SHANGHAI_CBT.
        #[arg(long)]
        customs: String,
        /// Your registration code with that customs office.
        #[arg(long)]
        merchant_customs_code: String,
        /// Your registered name.
        #[arg(long)]
        merchant_customs_name: String,
        /// Amount in CNY, major units.
        #[arg(long)]
        amount: String,
        /// Sub-order id, for a split payment.
        #[arg(long)]
        sub_order_id: Option<String>,
    },
    /// Inquire declarations at Alipay (1–10 ids) and store the results.
    Declarations {
        /// Declaration request ids.
        #[arg(required = true, num_args = 1..=10)]
        ids: Vec<String>,
    },
    /// Revoke a binding (admin scope).
    RevokeBinding {
        /// Binding id.
        binding_id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Per-device, single-use enrollment tokens (device registration).
    EnrollmentTokens {
        #[command(subcommand)]
        op: EnrollmentOp,
    },
    /// Subscriptions: list, show, cancel, refund a period, run renewals.
    Subscriptions {
        #[command(subcommand)]
        op: SubscriptionOp,
    },
}

#[derive(Subcommand, Debug)]
enum SubscriptionOp {
    /// List subscriptions (oldest first).
    List {
        /// Device id.
        #[arg(long)]
        device_id: Option<String>,
        /// App id.
        #[arg(long)]
        app_id: Option<String>,
        /// pending, trial, active, grace, cancelled or expired.
        #[arg(long)]
        status: Option<String>,
        /// At most this many (1–1000).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One subscription with its charges.
    Show {
        /// Subscription id.
        subscription_id: String,
    },
    /// Cancel: no more charges, access until the period's end (refund scope).
    Cancel {
        /// Subscription id.
        subscription_id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Refund a paid period through its charge's refund path (refund scope).
    Refund {
        /// Subscription id.
        subscription_id: String,
        /// Period index (0 = the first charged period).
        #[arg(long)]
        period: u32,
        /// Your refund id (reuse it to retry safely).
        #[arg(long)]
        refund_id: String,
        /// Amount in major units (default: what is still refundable).
        #[arg(long)]
        amount: Option<String>,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Run a renewal pass now and wait for it (admin scope).
    Renew,
}

fn subscription_line(s: &Value) -> String {
    format!(
        "{}  {:<9}  {:>14} {}  paid {}  until {}  next {}  {}  {}/{}",
        s["subscriptionId"].as_str().unwrap_or_default(),
        s["status"].as_str().unwrap_or_default(),
        money(&s["amount"]),
        s["period"].as_str().unwrap_or_default(),
        s["periodsPaid"].as_i64().unwrap_or_default(),
        s["currentPeriodEnd"].as_str().unwrap_or("-"),
        s["nextChargeAt"].as_str().unwrap_or("-"),
        s["deviceId"].as_str().unwrap_or_default(),
        s["appId"].as_str().unwrap_or_default(),
        s["appSubscriptionId"].as_str().unwrap_or_default(),
    )
}

fn charge_line(c: &Value) -> String {
    format!(
        "  period {} attempt {}  {}  {:<9}  {:>14}  {}",
        c["periodIndex"].as_i64().unwrap_or_default(),
        c["attempt"].as_i64().unwrap_or_default(),
        c["paymentId"].as_str().unwrap_or_default(),
        c["status"].as_str().unwrap_or_default(),
        money(&c["amount"]),
        c["resultCode"].as_str().unwrap_or_default(),
    )
}

#[derive(Subcommand, Debug)]
enum EnrollmentOp {
    /// Issue a token for one device (admin scope); prints the token once (it is stored
    /// hashed). Give it to the device (`scanbindd --provisioning-token-file`).
    Issue {
        /// Which device it is for.
        #[arg(long)]
        label: Option<String>,
        /// Expiry, RFC 3339 (default: never).
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List tokens and where they stand (never the secrets).
    List,
    /// Revoke a token by id (admin scope).
    Revoke {
        /// The token id (the 16 hex digits after `sbe_`).
        token_id: String,
    },
}

fn enrollment_line(t: &Value) -> String {
    format!(
        "{}  {:<7}  {:<24}  created {}  expires {}  {}",
        t["tokenId"].as_str().unwrap_or_default(),
        t["state"].as_str().unwrap_or_default(),
        t["label"].as_str().unwrap_or("-"),
        t["createdAt"].as_str().unwrap_or_default(),
        t["expiresAt"].as_str().unwrap_or("never"),
        t["usedBy"]
            .as_str()
            .map(|d| format!("used by {d}"))
            .unwrap_or_default(),
    )
}

#[derive(Subcommand, Debug)]
enum KeysOp {
    /// Create a key; prints the key once (it is stored hashed).
    Create {
        /// Who holds it.
        #[arg(long)]
        name: String,
        /// read, refund or admin.
        #[arg(long)]
        scope: String,
    },
    /// List keys (never the secrets).
    List,
    /// Revoke a key by id.
    Revoke {
        /// The key id (the 16 hex digits after `sbk_`).
        key_id: String,
    },
}

impl AdminArgs {
    /// True when the operation needs the configuration (database access).
    pub fn needs_config(&self) -> bool {
        matches!(self.op, AdminOp::Keys { .. })
    }
}

/// Runs key management against the configured database.
pub async fn run_keys(args: &AdminArgs, config: &scanbind_server::Config) -> anyhow::Result<()> {
    let AdminOp::Keys { op } = &args.op else {
        bail!("not a keys operation");
    };
    let db = scanbind_server::db::Db::connect(&config.database_url()?, 2).await?;
    use scanbind_server::admin::{Scope, create_key, list_keys, revoke_key};
    match op {
        KeysOp::Create { name, scope } => {
            let scope = Scope::parse(scope)
                .with_context(|| format!("--scope must be read, refund or admin, not {scope:?}"))?;
            let (key, secret) = create_key(&db, name, scope).await?;
            if args.json {
                let mut v = serde_json::to_value(&key)?;
                v["key"] = json!(secret);
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{secret}");
                eprintln!(
                    "created key {} ({}, scope {}); it is shown only now",
                    key.key_id,
                    key.name,
                    key.scope.as_str()
                );
            }
        }
        KeysOp::List => {
            let keys = list_keys(&db).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                for k in keys {
                    println!(
                        "{}  {:<6}  {:<24}  created {}  {}",
                        k.key_id,
                        k.scope.as_str(),
                        k.name,
                        k.created_at,
                        k.revoked_at
                            .map(|t| format!("revoked {t}"))
                            .unwrap_or_else(|| "active".into())
                    );
                }
            }
        }
        KeysOp::Revoke { key_id } => {
            if !revoke_key(&db, key_id).await? {
                bail!("no key {key_id:?}");
            }
            if args.json {
                println!("{}", json!({"keyId": key_id, "revoked": true}));
            } else {
                println!("revoked {key_id}");
            }
        }
    }
    db.pool().close().await;
    Ok(())
}

struct Api {
    http: reqwest::Client,
    base: String,
    auth: String,
}

/// A refused request: the API's code and message.
#[derive(Debug)]
pub struct Refused {
    /// The `error.code`.
    pub code: String,
    /// The message.
    pub message: String,
    /// HTTP status.
    pub status: u16,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (HTTP {}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for Refused {}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "POST" => self.http.post(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.get(&url),
        }
        .header("authorization", &self.auth);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.context("cannot read the answer")?;
        let v: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("the answer (HTTP {status}) is not JSON"))?;
        if status >= 400 {
            return Err(Refused {
                code: v["error"]["code"].as_str().unwrap_or("unknown").to_owned(),
                message: v["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                status,
            }
            .into());
        }
        Ok(v)
    }
}

/// `path` with the parameters that are set as its query string (values encoded).
fn with_query<const N: usize>(path: &str, params: [(&str, Option<String>); N]) -> String {
    let q: Vec<String> = params
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", enc(&v))))
        .collect();
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn minor(amount: &str, currency: &str) -> anyhow::Result<i64> {
    let cur = Currency::from_code(currency)
        .map_err(|e| anyhow::anyhow!("--currency {currency:?}: {e}"))?;
    let m =
        Money::parse_major(amount, cur).map_err(|e| anyhow::anyhow!("--amount {amount:?}: {e}"))?;
    Ok(m.minor().get())
}

fn money(v: &Value) -> String {
    let cur = v["currency"].as_str().unwrap_or_default();
    let value = v["value"].as_i64().unwrap_or_default();
    match Currency::from_code(cur)
        .ok()
        .and_then(|c| Money::from_minor(c, value).ok())
    {
        Some(m) => format!("{} {cur}", m.to_major_string()),
        None => format!("{value} {cur}"),
    }
}

fn payment_line(p: &Value) -> String {
    format!(
        "{}  {:<9}  {:>14}  refunded {:>14}  {}  {}/{}  {}",
        p["paymentId"].as_str().unwrap_or_default(),
        p["status"].as_str().unwrap_or_default(),
        money(&p["amount"]),
        money(&p["refunded"]),
        p["deviceId"].as_str().unwrap_or_default(),
        p["appId"].as_str().unwrap_or_default(),
        p["appOrderId"].as_str().unwrap_or_default(),
        p["createdAt"].as_str().unwrap_or_default(),
    )
}

fn refund_line(r: &Value) -> String {
    format!(
        "refund {}  {:<9}  {}  {}  {}",
        r["refundId"].as_str().unwrap_or_default(),
        r["status"].as_str().unwrap_or_default(),
        money(&r["amount"]),
        r["resultCode"].as_str().unwrap_or_default(),
        r["reason"].as_str().unwrap_or_default(),
    )
}

fn declaration_line(d: &Value) -> String {
    format!(
        "declaration {}  {:<10}  {}  {}  {}  {}",
        d["declarationRequestId"].as_str().unwrap_or_default(),
        d["status"].as_str().unwrap_or_default(),
        money(&d["amount"]),
        d["customsCode"].as_str().unwrap_or_default(),
        d["subOrderId"].as_str().unwrap_or("-"),
        d["resultCode"].as_str().unwrap_or_default(),
    )
}

/// Runs an API operation; prints the answer.
pub async fn run_api(args: &AdminArgs) -> anyhow::Result<()> {
    let key = match &args.key_file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read {}", f.display()))?
            .trim()
            .to_owned(),
        None => std::env::var("SCANBIND_ADMIN_KEY")
            .context("no operator key: pass --key-file or set SCANBIND_ADMIN_KEY")?,
    };
    let mut roots = Vec::new();
    if let Some(ca) = &args.ca_cert {
        use rustls::pki_types::pem::PemObject as _;
        for c in rustls::pki_types::CertificateDer::pem_file_iter(ca)
            .with_context(|| format!("cannot read {}", ca.display()))?
        {
            roots.push(c.with_context(|| format!("bad certificate in {}", ca.display()))?);
        }
    }
    let http = scanbind_ams::client::http_client_builder(roots)?
        .build()
        .context("cannot build the HTTP client")?;
    let api = Api {
        http,
        base: args.url.trim_end_matches('/').to_owned(),
        auth: format!("Bearer {key}"),
    };
    let (out, text): (Value, Vec<String>) = match &args.op {
        AdminOp::Keys { .. } => bail!("keys operations need the configuration"),
        AdminOp::Payments {
            device_id,
            app_id,
            app_order_id,
            status,
            from,
            to,
            limit,
        } => {
            let path = with_query(
                "/admin/v1/payments",
                [
                    ("deviceId", device_id.clone()),
                    ("appId", app_id.clone()),
                    ("appOrderId", app_order_id.clone()),
                    ("status", status.clone()),
                    ("from", from.clone()),
                    ("to", to.clone()),
                    ("limit", limit.map(|l| l.to_string())),
                ],
            );
            let v = api.call("GET", &path, None).await?;
            let lines = v["payments"]
                .as_array()
                .into_iter()
                .flatten()
                .map(payment_line)
                .collect();
            (v, lines)
        }
        AdminOp::Show { payment_id } => {
            let v = api
                .call(
                    "GET",
                    &format!("/admin/v1/payments/{}", enc(payment_id)),
                    None,
                )
                .await?;
            let mut lines = vec![payment_line(&v["payment"])];
            lines.extend(
                v["refunds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(refund_line),
            );
            lines.extend(
                v["declarations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(declaration_line),
            );
            for h in v["history"].as_array().into_iter().flatten() {
                lines.push(format!(
                    "  {}  {:<12}  {:<10}  {}  {}",
                    h["at"].as_str().unwrap_or_default(),
                    h["source"].as_str().unwrap_or_default(),
                    h["step"].as_str().unwrap_or_default(),
                    h["outcome"].as_str().unwrap_or_default(),
                    h["subject"].as_str().unwrap_or_default(),
                ));
            }
            (v, lines)
        }
        AdminOp::Refund {
            payment_id,
            refund_id,
            amount,
            currency,
            reason,
        } => {
            let path = format!("/admin/v1/payments/{}", enc(payment_id));
            let currency = match currency {
                Some(c) => c.clone(),
                None => api.call("GET", &path, None).await?["payment"]["amount"]["currency"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            };
            let body = json!({"refundId": refund_id, "amount": {"currency": currency, "value": minor(amount, &currency)?}, "reason": reason});
            let v = api
                .call("POST", &format!("{path}/refunds"), Some(body))
                .await?;
            let line = refund_line(&v);
            (v, vec![line])
        }
        AdminOp::Cancel { payment_id, reason } => {
            let v = api
                .call(
                    "POST",
                    &format!("/admin/v1/payments/{}/cancel", enc(payment_id)),
                    Some(json!({"reason": reason})),
                )
                .await?;
            let line = payment_line(&v);
            (v, vec![line])
        }
        AdminOp::Declare {
            payment_id,
            id,
            customs,
            merchant_customs_code,
            merchant_customs_name,
            amount,
            sub_order_id,
        } => {
            let mut body = json!({"declarationRequestId": id, "customsCode": customs,
                "merchantCustomsCode": merchant_customs_code, "merchantCustomsName": merchant_customs_name,
                "amount": {"currency": "CNY", "value": minor(amount, "CNY")?}});
            if let Some(s) = sub_order_id {
                body["subOrderId"] = json!(s);
            }
            let v = api
                .call(
                    "POST",
                    &format!("/admin/v1/payments/{}/declarations", enc(payment_id)),
                    Some(body),
                )
                .await?;
            let line = declaration_line(&v);
            (v, vec![line])
        }
        AdminOp::Declarations { ids } => {
            let joined: Vec<String> = ids.iter().map(|i| enc(i)).collect();
            let v = api
                .call(
                    "GET",
                    &format!("/admin/v1/declarations?ids={}", joined.join(",")),
                    None,
                )
                .await?;
            let mut lines: Vec<String> = v["declarations"]
                .as_array()
                .into_iter()
                .flatten()
                .map(declaration_line)
                .collect();
            for id in v["notFound"].as_array().into_iter().flatten() {
                lines.push(format!("not found: {}", id.as_str().unwrap_or_default()));
            }
            (v, lines)
        }
        AdminOp::RevokeBinding { binding_id, reason } => {
            let v = api
                .call(
                    "POST",
                    &format!("/admin/v1/bindings/{}/revoke", enc(binding_id)),
                    Some(json!({"reason": reason})),
                )
                .await?;
            let line = format!(
                "binding {}  {}  {}",
                v["bindingId"].as_str().unwrap_or_default(),
                v["status"].as_str().unwrap_or_default(),
                v["reason"].as_str().unwrap_or_default()
            );
            (v, vec![line])
        }
        AdminOp::EnrollmentTokens { op } => match op {
            EnrollmentOp::Issue { label, expires_at } => {
                let mut body = json!({});
                if let Some(l) = label {
                    body["label"] = json!(l);
                }
                if let Some(e) = expires_at {
                    body["expiresAt"] = json!(e);
                }
                let v = api
                    .call("POST", "/admin/v1/enrollment-tokens", Some(body))
                    .await?;
                if !args.json {
                    eprintln!(
                        "issued enrollment token {} ({}); it is shown only now",
                        v["tokenId"].as_str().unwrap_or_default(),
                        v["label"].as_str().unwrap_or("no label")
                    );
                }
                let line = v["token"].as_str().unwrap_or_default().to_owned();
                (v, vec![line])
            }
            EnrollmentOp::List => {
                let v = api.call("GET", "/admin/v1/enrollment-tokens", None).await?;
                let lines = v["tokens"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(enrollment_line)
                    .collect();
                (v, lines)
            }
            EnrollmentOp::Revoke { token_id } => {
                let v = api
                    .call(
                        "DELETE",
                        &format!("/admin/v1/enrollment-tokens/{}", enc(token_id)),
                        None,
                    )
                    .await?;
                let line = enrollment_line(&v);
                (v, vec![line])
            }
        },
        AdminOp::Subscriptions { op } => run_subscriptions(&api, op).await?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for l in text {
            println!("{l}");
        }
    }
    Ok(())
}

async fn run_subscriptions(api: &Api, op: &SubscriptionOp) -> anyhow::Result<(Value, Vec<String>)> {
    Ok(match op {
        SubscriptionOp::List {
            device_id,
            app_id,
            status,
            limit,
        } => {
            let path = with_query(
                "/admin/v1/subscriptions",
                [
                    ("deviceId", device_id.clone()),
                    ("appId", app_id.clone()),
                    ("status", status.clone()),
                    ("limit", limit.map(|l| l.to_string())),
                ],
            );
            let v = api.call("GET", &path, None).await?;
            let lines = v["subscriptions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(subscription_line)
                .collect();
            (v, lines)
        }
        SubscriptionOp::Show { subscription_id } => {
            let v = api
                .call(
                    "GET",
                    &format!("/admin/v1/subscriptions/{}", enc(subscription_id)),
                    None,
                )
                .await?;
            let mut lines = vec![subscription_line(&v)];
            lines.extend(
                v["charges"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(charge_line),
            );
            (v, lines)
        }
        SubscriptionOp::Cancel {
            subscription_id,
            reason,
        } => {
            let v = api
                .call(
                    "POST",
                    &format!("/admin/v1/subscriptions/{}/cancel", enc(subscription_id)),
                    Some(json!({"reason": reason})),
                )
                .await?;
            let line = subscription_line(&v);
            (v, vec![line])
        }
        SubscriptionOp::Refund {
            subscription_id,
            period,
            refund_id,
            amount,
            reason,
        } => {
            let base = format!("/admin/v1/subscriptions/{}", enc(subscription_id));
            let mut body = json!({"refundId": refund_id, "reason": reason});
            if let Some(a) = amount {
                let currency = api.call("GET", &base, None).await?["amount"]["currency"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                body["amount"] = json!({"currency": currency, "value": minor(a, &currency)?});
            }
            let v = api
                .call(
                    "POST",
                    &format!("{base}/periods/{period}/refunds"),
                    Some(body),
                )
                .await?;
            let line = refund_line(&v);
            (v, vec![line])
        }
        SubscriptionOp::Renew => {
            let v = api
                .call("POST", "/admin/v1/subscriptions/renewals", None)
                .await?;
            let line = format!(
                "renewal pass at {}: {} due, {} charged, {} held by another pass",
                v["now"].as_str().unwrap_or_default(),
                v["due"].as_i64().unwrap_or_default(),
                v["charges"].as_i64().unwrap_or_default(),
                v["skipped"].as_i64().unwrap_or_default(),
            );
            (v, vec![line])
        }
    })
}
