//! The phone: server-rendered, mobile-friendly wallet pages that QR code values point at.
//!
//! - `GET /wallet/authorize/<code>`: a binding request — merchant, device name and match
//!   code when the merchant sent them (consult `extendInfo`), scopes, Approve / Deny.
//! - `GET /wallet/pay/<code>`: an order code — merchant, order, amount, Pay / Decline.
//! - `GET /wallet/account/<user>`: the merchants a user has authorized, each with Unbind
//!   (which revokes the binding and sends TOKEN_CANCELED).
//!
//! Plain HTML forms, inline CSS, no scripts or external assets; every piece of text is
//! HTML-escaped. An optional `?user=<login>` picks the wallet user (the wallet's default
//! user otherwise).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

use crate::api::{auth, payments};
use crate::app::App;
use crate::clock::ams_time;
use crate::state::{PayState, QrStatus, from_ts};

const STYLE: &str = "body{font-family:system-ui,-apple-system,sans-serif;margin:0;background:#f2f4f7;color:#1c1e21}\
main{max-width:28rem;margin:0 auto;padding:1.25rem}\
.card{background:#fff;border-radius:14px;padding:1.25rem;box-shadow:0 1px 4px rgba(0,0,0,.08);margin-bottom:1rem}\
h1{font-size:1.3rem;margin:.2rem 0 1rem}.muted{color:#65676b;font-size:.9rem}\
.match{font-size:2rem;letter-spacing:.3rem;font-weight:700;text-align:center;margin:.5rem 0}\
.amount{font-size:2rem;font-weight:700;margin:.5rem 0}\
dl{display:grid;grid-template-columns:auto 1fr;gap:.4rem .8rem}dt{color:#65676b}dd{margin:0;word-break:break-word}\
button{width:100%;padding:.9rem;font-size:1.05rem;border:0;border-radius:10px;margin-top:.6rem;cursor:pointer}\
.primary{background:#1677ff;color:#fff}.secondary{background:#e4e6eb;color:#1c1e21}\
.banner{padding:.8rem;border-radius:10px;background:#fff4e5}.ok{background:#e6f4ea}";

fn page(title: &str, content: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{}</title><style>{STYLE}</style></head><body><main>\
<p class=\"muted\">scanbind sandbox wallet</p>{content}</main></body></html>",
        text(title)
    ))
}

fn message(status: StatusCode, title: &str, body: &str, ok: bool) -> Response {
    let class = if ok { "banner ok" } else { "banner" };
    (
        status,
        page(
            title,
            &format!(
                "<div class=\"card\"><h1>{}</h1><p id=\"outcome\" class=\"{class}\">{}</p></div>",
                text(title),
                text(body)
            ),
        ),
    )
        .into_response()
}

fn user_field(user: Option<&String>) -> String {
    match user {
        Some(u) => format!(
            "<input type=\"hidden\" name=\"user\" value=\"{}\">",
            attr(u)
        ),
        None => String::new(),
    }
}

/// `GET /wallet/authorize/<code>`.
/// The image form of a binding QR (`codeDetails` with `displayType` `BIGIMAGE`): a PNG
/// of the code's URL while the code is known; 404 otherwise.
pub(crate) async fn authorize_qr_png(
    State(app): State<Arc<App>>,
    Path(code): Path<String>,
) -> Response {
    let known = app.store.read(|s| s.qrs.contains_key(&code));
    let image = known
        .then(|| crate::qr_image::png(&format!("{}/wallet/authorize/{code}", app.public_url)))
        .flatten();
    match image {
        Some(bytes) => ([(axum::http::header::CONTENT_TYPE, "image/png")], bytes).into_response(),
        None => message(
            StatusCode::NOT_FOUND,
            "Unknown code",
            "This QR code is not known to the sandbox.",
            false,
        ),
    }
}

pub(crate) async fn authorize_page(
    State(app): State<Arc<App>>,
    Path(code): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let now = app.now_ts();
    let Some(qr) = app.store.read(|s| s.qrs.get(&code).cloned()) else {
        return message(
            StatusCode::NOT_FOUND,
            "Unknown code",
            "This QR code is not known to the sandbox.",
            false,
        );
    };
    if qr.status != QrStatus::Pending {
        return message(
            StatusCode::GONE,
            "Code already used",
            "This QR code has already been used. Ask for a new one.",
            false,
        );
    }
    if now >= qr.expires {
        return message(
            StatusCode::GONE,
            "Code expired",
            "This QR code has expired. Ask for a new one.",
            false,
        );
    }
    let mut details = format!(
        "<dt>Merchant</dt><dd id=\"merchant\">{}</dd><dt>Wallet</dt><dd>{}</dd>",
        text(&qr.merchant_name),
        text(&qr.wallet)
    );
    if let Some(device) = &qr.device_name {
        details.push_str(&format!(
            "<dt>Device</dt><dd id=\"device\">{}</dd>",
            text(device)
        ));
    }
    details.push_str(&format!(
        "<dt>Allows</dt><dd>{}</dd><dt>Valid until</dt><dd>{}</dd>",
        text(&qr.scopes.join(", ")),
        text(&ams_time(from_ts(qr.expires)))
    ));
    let match_code = qr
        .match_code
        .as_ref()
        .map(|m| {
            format!(
                "<p class=\"muted\">Check that your screen shows this code:</p><p class=\"match\" id=\"match-code\">{}</p>",
                text(m)
            )
        })
        .unwrap_or_default();
    let content = format!(
        "<div class=\"card\"><h1>Link your wallet?</h1>{match_code}<dl>{details}</dl>\
<form method=\"post\" action=\"/wallet/authorize/{code}\">{user}\
<button class=\"primary\" id=\"approve\" name=\"decision\" value=\"approve\">Approve</button>\
<button class=\"secondary\" id=\"deny\" name=\"decision\" value=\"deny\">Deny</button></form></div>",
        code = attr(&code),
        user = user_field(q.get("user")),
    );
    page("Link your wallet", &content).into_response()
}

/// `POST /wallet/authorize/<code>` (form: `decision`, optional `user`).
pub(crate) async fn authorize_submit(
    State(app): State<Arc<App>>,
    Path(code): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let approve = form.get("decision").map(String::as_str) == Some("approve");
    let user = form
        .get("user")
        .map(String::as_str)
        .filter(|u| !u.is_empty());
    match auth::scan_authorize(&app, &code, approve, user) {
        Ok(auth::ScanResult::Approved { user }) => {
            let content = format!(
                "<div class=\"card\"><h1>Approved</h1><p id=\"outcome\" class=\"banner ok\">\
Your wallet is linked. You can return to your screen.</p>\
<p><a href=\"/wallet/account/{}\">Manage linked merchants</a></p></div>",
                attr(&user)
            );
            page("Approved", &content).into_response()
        }
        Ok(auth::ScanResult::Denied) => message(
            StatusCode::OK,
            "Denied",
            "You declined. Nothing was linked.",
            false,
        ),
        Err(msg) => message(StatusCode::CONFLICT, "Could not link", &msg, false),
    }
}

/// `GET /wallet/pay/<code>`.
pub(crate) async fn pay_page(
    State(app): State<Arc<App>>,
    Path(code): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(order) = payments::order_view(&app, &code) else {
        return message(
            StatusCode::NOT_FOUND,
            "Unknown code",
            "This payment code is not known to the sandbox.",
            false,
        );
    };
    if order.status != PayState::Processing || order.expired {
        let what = if order.status == PayState::Success {
            "paid"
        } else {
            "closed"
        };
        return message(
            StatusCode::GONE,
            "Order closed",
            &format!("This order is already {what}."),
            false,
        );
    }
    let shown = match scanbind_ams::Currency::from_code(&order.currency)
        .ok()
        .and_then(|c| scanbind_ams::Money::from_minor(c, order.amount).ok())
    {
        Some(m) => m.to_string(),
        None => format!("{} {}", order.currency, order.amount),
    };
    let content = format!(
        "<div class=\"card\"><h1>Pay {merchant}</h1><p class=\"amount\" id=\"amount\">{amount}</p>\
<dl><dt>Order</dt><dd id=\"order\">{desc}</dd></dl>\
<form method=\"post\" action=\"/wallet/pay/{code}\">{user}\
<button class=\"primary\" id=\"pay\" name=\"decision\" value=\"pay\">Pay</button>\
<button class=\"secondary\" id=\"decline\" name=\"decision\" value=\"decline\">Decline</button></form></div>",
        merchant = text(&order.merchant),
        amount = text(&shown),
        desc = text(&order.description),
        code = attr(&code),
        user = user_field(q.get("user")),
    );
    page("Pay", &content).into_response()
}

/// `POST /wallet/pay/<code>` (form: `decision` = pay | decline, optional `user`).
pub(crate) async fn pay_submit(
    State(app): State<Arc<App>>,
    Path(code): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let approve = form.get("decision").map(String::as_str) == Some("pay");
    let user = form
        .get("user")
        .map(String::as_str)
        .filter(|u| !u.is_empty());
    match payments::scan_pay(&app, &code, approve, user) {
        Ok(true) => message(StatusCode::OK, "Paid", "Payment complete.", true),
        Ok(false) => message(
            StatusCode::OK,
            "Declined",
            "You declined this payment.",
            false,
        ),
        Err(msg) => message(StatusCode::CONFLICT, "Payment failed", &msg, false),
    }
}

/// `GET /wallet/account/<user>`.
pub(crate) async fn account_page(
    State(app): State<Arc<App>>,
    Path(user): Path<String>,
) -> Response {
    let found = app.store.read(|s| {
        let u = s.users.get(&user).cloned()?;
        let bindings: Vec<_> = s
            .authorizations
            .values()
            .filter(|a| a.user == user && a.revoked.is_none())
            .cloned()
            .collect();
        Some((u, bindings))
    });
    let Some((u, bindings)) = found else {
        return message(
            StatusCode::NOT_FOUND,
            "Unknown user",
            "There is no such wallet user.",
            false,
        );
    };
    let balance = scanbind_ams::Currency::from_code(&u.currency)
        .ok()
        .and_then(|c| scanbind_ams::Money::from_minor(c, u.balance).ok())
        .map(|m| m.to_string())
        .unwrap_or_else(|| format!("{} {}", u.currency, u.balance));
    let mut list = String::new();
    for a in &bindings {
        list.push_str(&format!(
            "<div class=\"card\"><h1>{name}</h1><p class=\"muted\">Linked {since} · {scopes}</p>\
<form method=\"post\" action=\"/wallet/account/{user}/unbind\">\
<input type=\"hidden\" name=\"authorization\" value=\"{id}\">\
<button class=\"secondary\" id=\"unbind-{id}\">Unbind</button></form></div>",
            name = text(&a.merchant_name),
            since = text(&auth::show_time(a.created)),
            scopes = text(&a.scopes.join(", ")),
            user = attr(&user),
            id = attr(&a.id),
        ));
    }
    if bindings.is_empty() {
        list.push_str("<div class=\"card\"><p class=\"muted\">No linked merchants.</p></div>");
    }
    let content = format!(
        "<div class=\"card\"><h1>{}</h1><p class=\"muted\">{} wallet · balance {}</p></div>{list}",
        text(&u.login_id),
        text(&u.wallet),
        text(&balance)
    );
    page("Linked merchants", &content).into_response()
}

/// `POST /wallet/account/<user>/unbind` (form: `authorization`).
pub(crate) async fn unbind_submit(
    State(app): State<Arc<App>>,
    Path(user): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(id) = form.get("authorization") else {
        return message(
            StatusCode::BAD_REQUEST,
            "Unbind failed",
            "No authorization given.",
            false,
        );
    };
    match auth::unbind(&app, &user, id) {
        Ok(()) => message(
            StatusCode::OK,
            "Unbound",
            "The merchant can no longer charge this wallet.",
            true,
        ),
        Err(msg) => message(StatusCode::CONFLICT, "Unbind failed", &msg, false),
    }
}
