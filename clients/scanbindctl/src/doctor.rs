//! `doctor`: checks the bus, the daemon, the keyring, the merchant server and the
//! clock, each with a fix when it fails.

use std::time::Duration;

use scanbind_client::{Client, Transport};
use serde::Serialize;

use crate::exit;
use crate::output::Output;

/// Options of `doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The merchant server's base URL (to check reachability and clock skew).
    #[arg(long, env = "SCANBIND_SERVER_URL", value_name = "URL")]
    server: Option<String>,
    /// The largest clock difference to the server that passes, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    max_skew: u64,
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    Ok,
    Failed,
    Skipped,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    verdict: Verdict,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

fn ok(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        verdict: Verdict::Ok,
        detail: detail.into(),
        fix: None,
    }
}

fn failed(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name,
        verdict: Verdict::Failed,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

fn skipped(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        verdict: Verdict::Skipped,
        detail: detail.into(),
        fix: None,
    }
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// The well-known name of the Secret Service.
const SECRETS_NAME: &str = "org.freedesktop.secrets";

async fn check_bus(transport: &Transport) -> Check {
    let result = match transport {
        Transport::Socket(p) => {
            return match std::fs::metadata(p) {
                Ok(_) => ok("bus", format!("peer-to-peer socket {}", p.display())),
                Err(e) => failed(
                    "bus",
                    format!("{}: {e}", p.display()),
                    "start scanbindd with --p2p on that path, or check the path",
                ),
            };
        }
        Transport::System => zbus::Connection::system().await,
        Transport::Address(a) => match zbus::connection::Builder::address(a.as_str()) {
            Ok(b) => b.build().await,
            Err(e) => Err(e),
        },
        Transport::Auto | Transport::Session | _ => zbus::Connection::session().await,
    };
    match result {
        Ok(conn) => ok(
            "bus",
            format!(
                "connected ({})",
                conn.unique_name()
                    .map_or("p2p".to_owned(), |n| n.to_string())
            ),
        ),
        Err(e) => failed(
            "bus",
            format!("cannot connect to the D-Bus bus: {e}"),
            "run inside a desktop or `dbus-run-session` session (DBUS_SESSION_BUS_ADDRESS), \
             or install the bus: sudo apt install dbus-daemon",
        ),
    }
}

async fn check_daemon(transport: &Transport) -> (Check, Option<String>) {
    let status = tokio::time::timeout(TIMEOUT, async {
        let client = Client::connect(transport.clone()).await?;
        client.status().await
    })
    .await;
    match status {
        Ok(Ok(s)) => (
            ok(
                "daemon",
                format!(
                    "scanbindd {} ({}), merchant server link {}, {} bound wallet(s)",
                    s.version,
                    s.device_name,
                    s.connectivity,
                    s.bindings.len()
                ),
            ),
            Some(s.connectivity),
        ),
        Ok(Err(e)) => (
            failed(
                "daemon",
                e.to_string(),
                "start it: `systemctl --user start scanbindd` (installed package) or \
                 `scanbindd --server URL`; to try everything without installing, run \
                 `scanbindctl demo`",
            ),
            None,
        ),
        Err(_) => (
            failed(
                "daemon",
                format!("no answer within {} s", TIMEOUT.as_secs()),
                "the daemon is hung: restart it (`systemctl --user restart scanbindd`)",
            ),
            None,
        ),
    }
}

async fn check_keyring() -> Check {
    const FIX: &str = "install and start a Secret Service: sudo apt install gnome-keyring \
                       (a desktop session starts it; headless: \
                       `gnome-keyring-daemon --unlock --components=secrets`)";
    let probe = async {
        let conn = zbus::Connection::session().await?;
        let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
        let name = zbus::names::BusName::try_from(SECRETS_NAME)?;
        if dbus.name_has_owner(name).await? {
            return Ok::<_, zbus::Error>(Some("running"));
        }
        let activatable = dbus.list_activatable_names().await?;
        Ok(activatable
            .iter()
            .any(|n| n.as_str() == SECRETS_NAME)
            .then_some("activatable"))
    };
    match tokio::time::timeout(TIMEOUT, probe).await {
        Ok(Ok(Some(how))) => ok(
            "keyring",
            format!(
                "Secret Service ({}) on the session bus: {how}",
                SECRETS_NAME
            ),
        ),
        Ok(Ok(None)) => failed("keyring", "no Secret Service on the session bus", FIX),
        Ok(Err(e)) => failed("keyring", format!("cannot ask the session bus: {e}"), FIX),
        Err(_) => failed("keyring", "the session bus did not answer", FIX),
    }
}

/// Parses an HTTP `Date` header (IMF-fixdate).
fn parse_http_date(s: &str) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(s, format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

async fn check_server(
    server: Option<&str>,
    connectivity: Option<&str>,
    max_skew: u64,
) -> [Check; 2] {
    let Some(server) = server else {
        return [
            skipped(
                "server",
                match connectivity {
                    Some(c) => format!(
                        "the daemon reports its link as {c}; pass --server URL (or set SCANBIND_SERVER_URL) to check from here"
                    ),
                    None => "pass --server URL (or set SCANBIND_SERVER_URL)".to_owned(),
                },
            ),
            skipped("clock", "needs --server URL"),
        ];
    };
    let http = match scanbind_ams::client::http_client_builder(Vec::new())
        .map_err(anyhow::Error::from)
        .and_then(|b| Ok(b.timeout(TIMEOUT).build()?))
    {
        Ok(h) => h,
        Err(e) => {
            return [
                failed(
                    "server",
                    format!("no HTTP client: {e}"),
                    "report this as a bug",
                ),
                skipped("clock", "needs the server"),
            ];
        }
    };
    let url = format!("{}/healthz", server.trim_end_matches('/'));
    let sent = time::OffsetDateTime::now_utc();
    let resp = match http.get(&url).send().await {
        Ok(r) => r,
        Err(e) => {
            return [
                failed(
                    "server",
                    format!("{url}: {e}"),
                    "check the URL, the network and the server (`scanbind-server`; docs/server.md)",
                ),
                skipped("clock", "needs the server"),
            ];
        }
    };
    let received = time::OffsetDateTime::now_utc();
    let status = resp.status();
    let server_check = if status.is_success() {
        ok("server", format!("{url}: {status}"))
    } else {
        failed(
            "server",
            format!("{url}: {status}"),
            "the server answers but is not healthy: see its log",
        )
    };
    let date = resp
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date);
    let clock = match date {
        None => skipped("clock", "the server sent no Date header"),
        Some(server_time) => {
            // The server stamped its Date between our send and receive.
            let midpoint: time::OffsetDateTime = sent + (received - sent) / 2;
            let skew: i64 = (midpoint - server_time).whole_seconds();
            // A Date header has whole seconds: allow one more.
            if skew.unsigned_abs() <= max_skew + 1 {
                ok("clock", format!("{skew:+} s from the server"))
            } else {
                failed(
                    "clock",
                    format!("{skew:+} s from the server (more than {max_skew} s)"),
                    "signed device requests are refused outside the freshness window: turn on \
                     time sync (`timedatectl set-ntp true`)",
                )
            }
        }
    };
    [server_check, clock]
}

/// Runs every check; fails (exit 1) if any failed.
pub async fn run(transport: &Transport, args: DoctorArgs, out: Output) -> anyhow::Result<()> {
    let mut checks = vec![check_bus(transport).await];
    let (daemon, connectivity) = check_daemon(transport).await;
    checks.push(daemon);
    checks.push(check_keyring().await);
    checks.extend(
        check_server(
            args.server.as_deref(),
            connectivity.as_deref(),
            args.max_skew,
        )
        .await,
    );
    let failures = checks
        .iter()
        .filter(|c| c.verdict == Verdict::Failed)
        .count();
    out.emit(
        &serde_json::json!({"checks": checks, "failed": failures}),
        || {
            for c in &checks {
                let mark = match c.verdict {
                    Verdict::Ok => "ok     ",
                    Verdict::Failed => "FAILED ",
                    Verdict::Skipped => "skipped",
                };
                println!("{mark} {:<8} {}", c.name, c.detail);
                if let Some(fix) = &c.fix {
                    println!("        fix:     {fix}");
                }
            }
        },
    );
    if failures > 0 {
        return Err(exit::with_code(
            exit::FAILURE,
            format!("{failures} check(s) failed"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_parse() {
        let t = parse_http_date("Sun, 22 Nov 2026 01:02:03 GMT").unwrap();
        assert_eq!(t.unix_timestamp(), 1_795_309_323);
        assert!(parse_http_date("yesterday").is_none());
    }
}
