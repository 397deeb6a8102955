//! Sealed tokens: access and refresh tokens encrypted with ChaCha20-Poly1305 (ring),
//! bound to one device and one binding.
//!
//! Blob format: `sbt1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The additional
//! authenticated data is `sbt1|<key id>|<device id>|<binding id>`, so a blob opens only
//! for the device and binding it was made for. The key id names which sealing key made
//! it: new blobs use the current key, and retired keys still open old blobs until they
//! are removed from `tokens.sealing_keys`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use scanbind_ams::model::SecretString;
use scanbind_device_api::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const VERSION: &str = "sbt1";

/// The tokens of one binding, in the clear: exists only inside the server process while
/// a call is made. `Debug` shows no token.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenSet {
    /// The access token (`paymentMethodId`).
    #[serde(rename = "a")]
    pub access_token: SecretString,
    /// The refresh token, if the wallet issued one.
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<SecretString>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSet(..)")
    }
}

/// The version tag of a subscription grant (issue 27).
const GRANT_VERSION: &str = "sbg1";
/// HKDF salt that derives a grant key from a sealing key: grants and device blobs never
/// share a key.
const GRANT_SALT: &[u8] = b"scanbind-subscription-grant-v1";

/// The sealing keys: the current one first, then retired ones; beside each, the grant key
/// derived from it.
pub struct Sealer {
    keys: Vec<(String, LessSafeKey)>,
    grant_keys: Vec<(String, LessSafeKey)>,
    rng: SystemRandom,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Sealer").field("key_ids", &ids).finish()
    }
}

/// Parses a sealing key file: 32 bytes as base64 text (what `scanbind-server keygen
/// sealing` writes), or 32 raw bytes.
pub fn parse_sealing_key(bytes: &[u8]) -> Option<[u8; 32]> {
    if let Ok(raw) = <[u8; 32]>::try_from(bytes) {
        return Some(raw);
    }
    let text = std::str::from_utf8(bytes).ok()?.trim();
    STANDARD
        .decode(text)
        .ok()
        .or_else(|| URL_SAFE_NO_PAD.decode(text).ok())
        .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
}

/// The key id of a sealing key: `k` and 4 bytes of SHA-256 of the key, in hex.
pub fn key_id(key: &[u8; 32]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, key);
    let hex: String = d.as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("k{hex}")
}

impl Sealer {
    /// A sealer from raw keys, current first.
    pub fn new(keys: &[[u8; 32]]) -> Result<Sealer> {
        if keys.is_empty() {
            return Err(Error::config(
                "tokens.sealing_keys",
                "needs at least one key",
            ));
        }
        let mut out = Vec::new();
        let mut grants = Vec::new();
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, GRANT_SALT);
        for k in keys {
            let unbound = UnboundKey::new(&CHACHA20_POLY1305, k)
                .map_err(|_| Error::config("tokens.sealing_keys", "bad key"))?;
            out.push((key_id(k), LessSafeKey::new(unbound)));
            let prk = salt.extract(k);
            let info = [GRANT_VERSION.as_bytes()];
            let okm = prk
                .expand(&info, &CHACHA20_POLY1305)
                .map_err(|_| Error::config("tokens.sealing_keys", "bad key"))?;
            grants.push((key_id(k), LessSafeKey::new(UnboundKey::from(okm))));
        }
        Ok(Sealer {
            keys: out,
            grant_keys: grants,
            rng: SystemRandom::new(),
        })
    }

    /// The current key id.
    pub fn current_key_id(&self) -> &str {
        &self.keys[0].0
    }

    fn aad(kid: &str, device_id: &str, binding_id: &str) -> String {
        format!("{VERSION}|{kid}|{device_id}|{binding_id}")
    }

    /// Seals `tokens` for (`device_id`, `binding_id`) with the current key.
    pub fn seal(&self, device_id: &str, binding_id: &str, tokens: &TokenSet) -> Result<String> {
        let (kid, key) = &self.keys[0];
        self.seal_with(
            VERSION,
            kid,
            key,
            Self::aad(kid, device_id, binding_id).as_bytes(),
            tokens,
        )
    }

    /// `<version>.<kid>.<base64url(nonce ‖ AEAD(tokens, aad))>` under `key`.
    fn seal_with(
        &self,
        version: &str,
        kid: &str,
        key: &LessSafeKey,
        aad: &[u8],
        tokens: &TokenSet,
    ) -> Result<String> {
        let mut nonce = [0_u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| Error::api(ErrorCode::Internal, "random source failed"))?;
        let mut buf = serde_json::to_vec(tokens)
            .map_err(|_| Error::api(ErrorCode::Internal, "cannot encode tokens"))?;
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| Error::api(ErrorCode::Internal, "sealing failed"))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&buf);
        Ok(format!("{version}.{kid}.{}", URL_SAFE_NO_PAD.encode(blob)))
    }

    /// Opens a blob made for (`device_id`, `binding_id`). Any failure is `token_invalid`.
    pub fn open(&self, device_id: &str, binding_id: &str, blob: &str) -> Result<TokenSet> {
        open_with(&self.keys, VERSION, blob, |kid| {
            Self::aad(kid, device_id, binding_id).into_bytes()
        })
        .map(|(tokens, _)| tokens)
        .ok_or_else(|| {
            Error::api(
                ErrorCode::TokenInvalid,
                "the sealed tokens do not open for this device and binding",
            )
        })
    }
}

/// Opens `<version>.<kid>.<data>` with the key named `kid` among `keys` and the additional
/// data `aad(kid)`: the tokens, and whether the key is a retired one (not the first);
/// `None` for anything that does not open.
fn open_with(
    keys: &[(String, LessSafeKey)],
    version: &str,
    blob: &str,
    aad: impl FnOnce(&str) -> Vec<u8>,
) -> Option<(TokenSet, bool)> {
    let mut parts = blob.splitn(3, '.');
    let (Some(v), Some(kid), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    if v != version {
        return None;
    }
    let idx = keys.iter().position(|(id, _)| id == kid)?;
    let raw = URL_SAFE_NO_PAD.decode(data).ok()?;
    if raw.len() < NONCE_LEN + 16 {
        return None;
    }
    let (nonce, sealed) = raw.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut sealed = sealed.to_vec();
    let plain = keys[idx]
        .1
        .open_in_place(nonce, Aad::from(aad(kid)), &mut sealed)
        .ok()?;
    Some((serde_json::from_slice(plain).ok()?, idx != 0))
}

/// Whom a subscription grant is for: it opens only for this binding, app and
/// subscription.
#[derive(Debug, Clone, Copy)]
pub struct GrantScope<'a> {
    /// The binding whose tokens it holds.
    pub binding_id: &'a str,
    /// The app that subscribed.
    pub app_id: &'a str,
    /// The server's subscription id.
    pub subscription_id: &'a str,
}

impl GrantScope<'_> {
    fn aad(&self, kid: &str) -> Vec<u8> {
        // Length-prefixed: no choice of ids can make two scopes read the same.
        let mut out = format!("{GRANT_VERSION}|{kid}").into_bytes();
        for part in [self.binding_id, self.app_id, self.subscription_id] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

impl Sealer {
    /// Seals `tokens` as a subscription grant (`sbg1.<key id>.<...>`) with the grant key
    /// derived from the current sealing key, bound to `scope`.
    pub fn seal_grant(&self, scope: GrantScope<'_>, tokens: &TokenSet) -> Result<String> {
        let (kid, key) = &self.grant_keys[0];
        self.seal_with(GRANT_VERSION, kid, key, &scope.aad(kid), tokens)
    }

    /// Opens a subscription grant made for `scope`; any failure is `token_invalid`.
    /// Also says whether it was sealed with a retired key (then seal it again).
    pub fn open_grant(&self, scope: GrantScope<'_>, blob: &str) -> Result<(TokenSet, bool)> {
        open_with(&self.grant_keys, GRANT_VERSION, blob, |kid| scope.aad(kid)).ok_or_else(|| {
            Error::api(
                ErrorCode::TokenInvalid,
                "the subscription's token grant does not open",
            )
        })
    }
}

/// The fingerprint stored for an access token: hex SHA-256. Tokens are long random
/// strings, so this identifies a token (for `TOKEN_CANCELED`) without revealing it.
pub fn token_fingerprint(access_token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> TokenSet {
        TokenSet {
            access_token: SecretString::new("access-123"),
            refresh_token: Some(SecretString::new("refresh-456")),
        }
    }

    #[test]
    fn seal_open_bound_and_rotated() {
        let old = Sealer::new(&[[1; 32]]).unwrap();
        let blob = old.seal("dev_a", "bnd_1", &tokens()).unwrap();
        assert!(!blob.contains("access-123"));
        assert_eq!(
            old.open("dev_a", "bnd_1", &blob)
                .unwrap()
                .access_token
                .expose(),
            "access-123"
        );
        // Bound to device and binding.
        assert!(old.open("dev_b", "bnd_1", &blob).is_err());
        assert!(old.open("dev_a", "bnd_2", &blob).is_err());
        // Tampering is detected.
        let mut t = blob.clone().into_bytes();
        let n = t.len() - 3;
        t[n] = if t[n] == b'A' { b'B' } else { b'A' };
        assert!(
            old.open("dev_a", "bnd_1", std::str::from_utf8(&t).unwrap())
                .is_err()
        );
        // Rotation: the new current key seals, the retired one still opens.
        let rotated = Sealer::new(&[[2; 32], [1; 32]]).unwrap();
        assert_ne!(rotated.current_key_id(), old.current_key_id());
        assert!(rotated.open("dev_a", "bnd_1", &blob).is_ok());
        let fresh = rotated.seal("dev_a", "bnd_1", &tokens()).unwrap();
        assert!(fresh.contains(rotated.current_key_id()));
        // Once the old key is removed, old blobs no longer open.
        let dropped = Sealer::new(&[[2; 32]]).unwrap();
        assert!(dropped.open("dev_a", "bnd_1", &blob).is_err());
        assert!(dropped.open("dev_a", "bnd_1", "garbage").is_err());
        assert!(format!("{:?}", tokens()).find("access").is_none());
    }

    #[test]
    fn grants_are_scoped_and_apart_from_device_blobs() {
        let sealer = Sealer::new(&[[1; 32]]).unwrap();
        let scope = GrantScope {
            binding_id: "bnd_1",
            app_id: "org.example.Tv",
            subscription_id: "sub_1",
        };
        let grant = sealer.seal_grant(scope, &tokens()).unwrap();
        assert!(grant.starts_with("sbg1.") && !grant.contains("access-123"));
        let (t, stale) = sealer.open_grant(scope, &grant).unwrap();
        assert_eq!(t.access_token.expose(), "access-123");
        assert!(!stale);
        // Another subscription, app or binding: does not open.
        for other in [
            GrantScope {
                subscription_id: "sub_2",
                ..scope
            },
            GrantScope {
                app_id: "org.example.Other",
                ..scope
            },
            GrantScope {
                binding_id: "bnd_2",
                ..scope
            },
            // Length-prefixed fields: moving a character across a boundary changes it.
            GrantScope {
                binding_id: "bnd_1o",
                app_id: "rg.example.Tv",
                ..scope
            },
        ] {
            assert!(sealer.open_grant(other, &grant).is_err());
        }
        // A grant is no device blob and a device blob no grant.
        let blob = sealer.seal("dev_a", "bnd_1", &tokens()).unwrap();
        assert!(sealer.open_grant(scope, &blob).is_err());
        assert!(sealer.open("dev_a", "bnd_1", &grant).is_err());
        let forged = grant.replacen("sbg1", "sbt1", 1);
        assert!(sealer.open("dev_a", "bnd_1", &forged).is_err());
        // Rotation: a retired key still opens, and says so; removed, it does not.
        let rotated = Sealer::new(&[[2; 32], [1; 32]]).unwrap();
        assert!(rotated.open_grant(scope, &grant).unwrap().1);
        assert!(
            Sealer::new(&[[2; 32]])
                .unwrap()
                .open_grant(scope, &grant)
                .is_err()
        );
    }

    #[test]
    fn key_files() {
        let k = [7_u8; 32];
        assert_eq!(parse_sealing_key(&k), Some(k));
        assert_eq!(
            parse_sealing_key(format!("{}\n", STANDARD.encode(k)).as_bytes()),
            Some(k)
        );
        assert_eq!(parse_sealing_key(b"short"), None);
    }
}
