//! RSA keys in the forms Alipay merchants meet them.
//!
//! - Merchant private key: PKCS#8 PEM (`BEGIN PRIVATE KEY`), PKCS#1 PEM (`BEGIN RSA PRIVATE
//!   KEY`, what the Python SDK wraps its text in), or the bare Base64 of either.
//! - Alipay / sandbox public key: SPKI PEM (`BEGIN PUBLIC KEY`), PKCS#1 PEM (`BEGIN RSA
//!   PUBLIC KEY`), or the bare Base64 SPKI the Antom Dashboard shows.
//!
//! Key material is never printed: `Debug` shows only the modulus size.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair as _, RsaKeyPair};
use spki::der::{Decode, Encode, Reader, SliceReader, asn1::UintRef};

use crate::error::{Error, Result};

/// rsaEncryption, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION: spki::ObjectIdentifier =
    spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// An RSA private key that signs AMS messages (RSASSA-PKCS1-v1_5 / SHA-256).
pub struct PrivateKey {
    pair: RsaKeyPair,
    rng: SystemRandom,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateKey(RSA-{}, redacted)",
            self.pair.public().modulus_len() * 8
        )
    }
}

impl PrivateKey {
    const WHAT: &'static str = "private key";

    /// Reads a key from PEM text or bare Base64 (PKCS#8 or PKCS#1).
    pub fn from_text(text: &str) -> Result<Self> {
        let text = text.trim();
        let der = if text.starts_with("-----BEGIN") {
            let (label, der) = pem_rfc7468::decode_vec(text.as_bytes())
                .map_err(|e| invalid(Self::WHAT, format!("bad PEM: {e}")))?;
            if !matches!(label, "PRIVATE KEY" | "RSA PRIVATE KEY") {
                return Err(invalid(
                    Self::WHAT,
                    format!("PEM label {label:?} is not a private key"),
                ));
            }
            der
        } else {
            decode_base64(Self::WHAT, text)?
        };
        Self::from_der(&der)
    }

    /// Reads a key file (PEM or bare Base64).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = read_key_file(Self::WHAT, path)?;
        Self::from_text(&text)
    }

    /// Reads PKCS#8 or PKCS#1 DER.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let pair = match RsaKeyPair::from_pkcs8(der) {
            Ok(pair) => pair,
            Err(pkcs8_err) => RsaKeyPair::from_der(der).map_err(|pkcs1_err| {
                invalid(
                    Self::WHAT,
                    format!("not an RSA key of 2048 to 4096 bits in PKCS#8 ({pkcs8_err}) or PKCS#1 ({pkcs1_err}) form"),
                )
            })?,
        };
        Ok(PrivateKey {
            pair,
            rng: SystemRandom::new(),
        })
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_pkcs1_der(self.pair.public_key().as_ref())
            .expect("ring produces valid PKCS#1 public keys")
    }

    /// Signs `content` with RSASSA-PKCS1-v1_5 SHA-256; returns the raw signature bytes.
    pub fn sign(&self, content: &[u8]) -> Result<Vec<u8>> {
        let mut sig = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(&signature::RSA_PKCS1_SHA256, &self.rng, content, &mut sig)
            .map_err(|_| Error::SigningFailed)?;
        Ok(sig)
    }
}

/// An RSA public key that verifies AMS signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// PKCS#1 `RSAPublicKey` DER (what ring verifies with).
    pkcs1: Vec<u8>,
    modulus_bits: usize,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(RSA-{})", self.modulus_bits)
    }
}

impl PublicKey {
    const WHAT: &'static str = "public key";

    /// Reads a key from PEM text (SPKI or PKCS#1) or bare Base64 (SPKI or PKCS#1).
    pub fn from_text(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            let (label, der) = pem_rfc7468::decode_vec(text.as_bytes())
                .map_err(|e| invalid(Self::WHAT, format!("bad PEM: {e}")))?;
            match label {
                "PUBLIC KEY" => Self::from_spki_der(&der),
                "RSA PUBLIC KEY" => Self::from_pkcs1_der(&der),
                other => Err(invalid(
                    Self::WHAT,
                    format!("PEM label {other:?} is not a public key"),
                )),
            }
        } else {
            let der = decode_base64(Self::WHAT, text)?;
            Self::from_spki_der(&der)
                .or_else(|spki_err| Self::from_pkcs1_der(&der).map_err(|_| spki_err))
        }
    }

    /// Reads a key file (PEM or bare Base64).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = read_key_file(Self::WHAT, path)?;
        Self::from_text(&text)
    }

    /// Reads X.509 SubjectPublicKeyInfo DER with the rsaEncryption algorithm.
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        let info = spki::SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| invalid(Self::WHAT, format!("not a SubjectPublicKeyInfo: {e}")))?;
        if info.algorithm.oid != RSA_ENCRYPTION {
            return Err(invalid(
                Self::WHAT,
                format!("algorithm {} is not rsaEncryption", info.algorithm.oid),
            ));
        }
        let bits = info
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| invalid(Self::WHAT, "public key bit string has unused bits".into()))?;
        Self::from_pkcs1_der(bits)
    }

    /// Reads PKCS#1 `RSAPublicKey` DER.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self> {
        let parse = || -> spki::der::Result<usize> {
            let mut reader = SliceReader::new(der)?;
            let bits = reader.sequence(|seq| {
                let n = UintRef::decode(seq)?;
                let _e = UintRef::decode(seq)?;
                Ok::<_, spki::der::Error>(
                    n.as_bytes().len() * 8
                        - n.as_bytes()
                            .first()
                            .map_or(8, |b| b.leading_zeros() as usize),
                )
            })?;
            reader.finish()?;
            Ok(bits)
        };
        let modulus_bits = parse()
            .map_err(|e| invalid(Self::WHAT, format!("not a PKCS#1 RSA public key: {e}")))?;
        if !(2048..=8192).contains(&modulus_bits) {
            return Err(invalid(
                Self::WHAT,
                format!("RSA modulus has {modulus_bits} bits; 2048 to 8192 are accepted"),
            ));
        }
        Ok(PublicKey {
            pkcs1: der.to_vec(),
            modulus_bits,
        })
    }

    /// Verifies an RSASSA-PKCS1-v1_5 SHA-256 signature over `content`.
    pub fn verify(&self, content: &[u8], signature_bytes: &[u8]) -> Result<()> {
        signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.pkcs1)
            .verify(content, signature_bytes)
            .map_err(|_| Error::BadSignature)
    }

    /// The SPKI DER encoding.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let info = spki::SubjectPublicKeyInfoOwned {
            algorithm: spki::AlgorithmIdentifierOwned {
                oid: RSA_ENCRYPTION,
                parameters: Some(spki::der::asn1::Null.into()),
            },
            subject_public_key: spki::der::asn1::BitString::from_bytes(&self.pkcs1)
                .expect("byte-aligned"),
        };
        info.to_der().expect("SPKI encodes")
    }

    /// The SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn to_pem(&self) -> String {
        pem_rfc7468::encode_string(
            "PUBLIC KEY",
            pem_rfc7468::LineEnding::LF,
            &self.to_spki_der(),
        )
        .expect("PEM encodes")
    }

    /// The bare Base64 SPKI, the form the Antom Dashboard shows.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.to_spki_der())
    }

    /// Size of the modulus in bits.
    pub fn modulus_bits(&self) -> usize {
        self.modulus_bits
    }
}

fn invalid(what: &'static str, reason: String) -> Error {
    Error::InvalidKey { what, reason }
}

fn decode_base64(what: &'static str, text: &str) -> Result<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(invalid(what, "empty".into()));
    }
    STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| invalid(what, format!("neither PEM nor valid Base64 ({e})")))
}

fn read_key_file(what: &'static str, path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| Error::KeyFile {
        what,
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| {
        invalid(
            what,
            format!("{} is not text (PEM or Base64 expected)", path.display()),
        )
    })
}
