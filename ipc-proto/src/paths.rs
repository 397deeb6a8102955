//! Object path builders, one per kind of child object.
//!
//! Every child object lives under [`DAEMON_PATH`]:
//!
//! | kind | path | builder |
//! |---|---|---|
//! | binding | `/io/scanbind/Daemon1/binding/<wallet>_<n>` | [`binding_path`] |
//! | payment | `/io/scanbind/Daemon1/payment/p<n>` | [`payment_path`] |
//! | subscription | `/io/scanbind/Daemon1/subscription/<id>` | [`subscription_path`] |
//!
//! `<wallet>` is the sanitised wallet name (for readability in `busctl tree` only; apps
//! must treat paths as opaque) and `<n>` a counter the daemon never reuses. A payment
//! path carries the journal's row id, so the same payment keeps its path across daemon
//! restarts. App-chosen strings such as order ids never appear in a path: paths are
//! visible to every peer on the bus.

use zvariant::OwnedObjectPath;

use crate::names::DAEMON_PATH;

/// The longest sanitised segment kept from a caller-supplied string.
const MAX_SEGMENT: usize = 32;

/// Reduces `raw` to a valid D-Bus object path segment: ASCII letters and digits are
/// kept (lower-cased), everything else becomes `_`, and the result is at most 32
/// characters. An empty input gives `_`.
pub fn sanitize_segment(raw: &str) -> String {
    let mut out: String = raw
        .chars()
        .take(MAX_SEGMENT)
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// The path of the binding with the server's id `binding_id` for `wallet`
/// (`/io/scanbind/Daemon1/binding/<wallet>_<binding id>`): the same path in every run
/// of the daemon, so an app that holds it keeps it across a restart.
pub fn binding_path(wallet: &str, binding_id: &str) -> OwnedObjectPath {
    let path = format!(
        "{DAEMON_PATH}/binding/{}_{}",
        sanitize_segment(wallet),
        sanitize_segment(binding_id)
    );
    OwnedObjectPath::try_from(path).expect("sanitised segments always form a valid object path")
}

/// The path of the payment whose journal id is `id` (`/io/scanbind/Daemon1/payment/p<id>`).
pub fn payment_path(id: u64) -> OwnedObjectPath {
    OwnedObjectPath::try_from(format!("{DAEMON_PATH}/payment/p{id}"))
        .expect("a counter always forms a valid object path")
}

/// The path of the subscription whose server id is `subscription_id`
/// (`/io/scanbind/Daemon1/subscription/<id>`, the id sanitised): the same path in every
/// run of the daemon and after a reinstall (`ListSubscriptions`).
pub fn subscription_path(subscription_id: &str) -> OwnedObjectPath {
    OwnedObjectPath::try_from(format!(
        "{DAEMON_PATH}/subscription/{}",
        sanitize_segment(subscription_id)
    ))
    .expect("a sanitised segment always forms a valid object path")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitises_wallet_names() {
        assert_eq!(sanitize_segment("ALIPAY_HK"), "alipay_hk");
        assert_eq!(sanitize_segment("Touch 'n Go/../x"), "touch__n_go____x");
        assert_eq!(sanitize_segment(""), "_");
        assert_eq!(sanitize_segment("ä"), "_");
        assert_eq!(sanitize_segment(&"a".repeat(100)).len(), MAX_SEGMENT);
    }

    #[test]
    fn builds_valid_paths() {
        assert_eq!(
            binding_path("GCASH", "bnd_7").as_str(),
            "/io/scanbind/Daemon1/binding/gcash_bnd_7"
        );
        assert_eq!(
            binding_path("/", "..").as_str(),
            "/io/scanbind/Daemon1/binding/____"
        );
        assert_eq!(
            payment_path(42).as_str(),
            "/io/scanbind/Daemon1/payment/p42"
        );
        assert_eq!(
            subscription_path("sub_0a1b").as_str(),
            "/io/scanbind/Daemon1/subscription/sub_0a1b"
        );
    }
}
