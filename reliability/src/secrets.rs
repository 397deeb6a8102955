//! The secrets audit: what counts as a secret (tokens, private keys, signatures), in
//! every form it could be written in (text, percent-encoded, Base64, raw bytes), and a
//! scanner that looks for all of them in every byte of a set of files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// The shortest needle: shorter byte strings could occur by chance.
pub const MIN_NEEDLE: usize = 16;

/// One form of one secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needle {
    /// What kind of secret (`access-token`, `private-key`, `ams-signature`, …).
    pub kind: &'static str,
    /// Which one, and in which form (never the secret itself).
    pub label: String,
    /// The bytes looked for.
    pub bytes: Vec<u8>,
    /// A file allowed to hold it (the key's own file).
    pub home: Option<PathBuf>,
}

/// A needle found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The file.
    pub file: PathBuf,
    /// The needle's kind.
    pub kind: &'static str,
    /// The needle's label.
    pub label: String,
    /// Byte offset of the first occurrence.
    pub offset: usize,
}

/// A set of needles.
#[derive(Debug, Default, Clone)]
pub struct Needles {
    /// Every needle.
    pub all: Vec<Needle>,
}

impl Needles {
    fn push(&mut self, kind: &'static str, label: String, bytes: Vec<u8>, home: Option<&Path>) {
        if bytes.len() >= MIN_NEEDLE && !self.all.iter().any(|n| n.bytes == bytes) {
            self.all.push(Needle {
                kind,
                label,
                bytes,
                home: home.map(Path::to_owned),
            });
        }
    }

    /// A text secret (a token): as is, and percent-encoded when that differs.
    pub fn text(&mut self, kind: &'static str, label: &str, secret: &str) {
        self.push(kind, format!("{label} (text)"), secret.into(), None);
        let enc = percent(secret);
        if enc != secret {
            self.push(kind, format!("{label} (percent-encoded)"), enc.into(), None);
        }
    }

    /// A Base64 secret (a sealing key, a signature): the text in standard and URL-safe
    /// alphabets, percent-encoded, and the decoded bytes.
    pub fn base64(&mut self, kind: &'static str, label: &str, b64: &str, home: Option<&Path>) {
        let b64 = b64.trim();
        let Some(raw) = STANDARD
            .decode(b64)
            .ok()
            .or_else(|| URL_SAFE_NO_PAD.decode(b64.trim_end_matches('=')).ok())
        else {
            self.push(kind, format!("{label} (text)"), b64.into(), home);
            return;
        };
        for (form, text) in [
            ("base64", STANDARD.encode(&raw)),
            ("base64url", URL_SAFE_NO_PAD.encode(&raw)),
        ] {
            // Without its padding: the same key may be written unpadded.
            let bare = text.trim_end_matches('=').to_owned();
            self.push(kind, format!("{label} ({form})"), bare.clone().into(), home);
            let enc = percent(&bare);
            if enc != bare {
                self.push(
                    kind,
                    format!("{label} ({form}, percent-encoded)"),
                    enc.into(),
                    home,
                );
            }
        }
        self.push(kind, format!("{label} (raw bytes)"), raw, home);
    }

    /// A PEM private key: each full Base64 line of its body, and a 32-byte slice of
    /// the DER from its middle (the start is a header every key shares).
    pub fn pem_key(&mut self, label: &str, pem: &str, home: Option<&Path>) {
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect();
        for (i, line) in pem.lines().filter(|l| !l.starts_with("-----")).enumerate() {
            let line = line.trim();
            // A key's last line may be short; the others are full 64-character lines.
            if line.len() >= 40 {
                self.push(
                    "private-key",
                    format!("{label} (PEM line {})", i + 1),
                    line.into(),
                    home,
                );
            }
        }
        // A body on one line (as the fixtures write Ed25519 keys): its middle.
        if body.len() >= 2 * MIN_NEEDLE + 8 {
            let mid = body.len() / 2;
            self.push(
                "private-key",
                format!("{label} (Base64 middle)"),
                body[mid - MIN_NEEDLE..mid + MIN_NEEDLE].into(),
                home,
            );
        }
        if let Ok(der) = STANDARD.decode(&body) {
            let mid = der.len() / 2;
            if der.len() >= 2 * MIN_NEEDLE + 16 {
                self.push(
                    "private-key",
                    format!("{label} (DER middle)"),
                    der[mid..mid + 2 * MIN_NEEDLE].to_vec(),
                    home,
                );
            } else if der.len() >= 48 {
                // A small key (Ed25519 PKCS#8 is 48+ bytes): its last 32 bytes (the seed
                // sits at the end of the private part).
                self.push(
                    "private-key",
                    format!("{label} (DER tail)"),
                    der[16..48].to_vec(),
                    home,
                );
            }
        }
    }

    /// How many needles of `kind`.
    pub fn count(&self, kind: &str) -> usize {
        self.all.iter().filter(|n| n.kind == kind).count()
    }
}

fn percent(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The values of every header `name` (case-insensitive) in captured HTTP streams.
pub fn header_values(streams: &[Vec<u8>], name: &str) -> Vec<String> {
    let want = format!("{}:", name.to_ascii_lowercase());
    let mut out = Vec::new();
    for s in streams {
        let text = String::from_utf8_lossy(s);
        for line in text.split("\r\n") {
            if line.len() > want.len() && line[..want.len()].eq_ignore_ascii_case(&want) {
                out.push(line[want.len()..].trim().to_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The signature of an AMS `signature` header
/// (`algorithm=RSA256,keyVersion=1,signature=<percent-encoded Base64>`), decoded.
pub fn ams_signature_value(header: &str) -> Option<String> {
    let enc = header
        .split(',')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("signature="))?;
    percent_encoding::percent_decode_str(enc)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Every regular file under `roots` (recursively; symlinks are not followed).
pub fn files_under(roots: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = roots.to_vec();
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&p) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.is_file() {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Looks for every needle in every file (each needle outside its own home file).
pub fn scan(files: &[PathBuf], needles: &Needles) -> Vec<Hit> {
    // Index by the first MIN_NEEDLE bytes: one hash lookup per haystack position.
    let mut index: HashMap<&[u8], Vec<&Needle>> = HashMap::new();
    for n in &needles.all {
        index.entry(&n.bytes[..MIN_NEEDLE]).or_default().push(n);
    }
    let mut hits = Vec::new();
    for file in files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        let mut seen: Vec<&str> = Vec::new();
        for i in 0..bytes.len().saturating_sub(MIN_NEEDLE - 1) {
            let Some(candidates) = index.get(&bytes[i..i + MIN_NEEDLE]) else {
                continue;
            };
            for n in candidates {
                if bytes[i..].starts_with(&n.bytes)
                    && n.home.as_deref() != Some(file.as_path())
                    && !seen.contains(&n.label.as_str())
                {
                    seen.push(&n.label);
                    hits.push(Hit {
                        file: file.clone(),
                        kind: n.kind,
                        label: n.label.clone(),
                        offset: i,
                    });
                }
            }
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_form_and_respects_the_home_file() {
        let dir = tempfile::tempdir().unwrap();
        let sig = STANDARD.encode([0xfb_u8; 64]);
        let mut needles = Needles::default();
        needles.text("access-token", "t1", "0123456789abcdef0123456789abcdef");
        needles.base64("ams-signature", "s1", &sig, None);
        let home = dir.path().join("key.pem");
        needles.base64(
            "sealing-key",
            "k1",
            &STANDARD.encode([9_u8; 32]),
            Some(&home),
        );
        std::fs::write(&home, STANDARD.encode([9_u8; 32])).unwrap();
        let log = dir.path().join("a.log");
        let mut text = b"x token=0123456789abcdef0123456789abcdef y ".to_vec();
        text.extend_from_slice(percent(&sig).as_bytes());
        text.extend_from_slice(&[0xfb_u8; 64]);
        text.extend_from_slice(STANDARD.encode([9_u8; 32]).as_bytes());
        std::fs::write(&log, text).unwrap();
        let clean = dir.path().join("b.log");
        std::fs::write(&clean, b"nothing here 0123456789abcde").unwrap();
        let hits = scan(&files_under(&[dir.path().to_owned()]), &needles);
        let labels: Vec<&str> = hits.iter().map(|h| h.label.as_str()).collect();
        assert!(labels.contains(&"t1 (text)"), "{labels:?}");
        assert!(
            labels.contains(&"s1 (base64, percent-encoded)"),
            "{labels:?}"
        );
        assert!(labels.contains(&"s1 (raw bytes)"), "{labels:?}");
        assert!(labels.contains(&"k1 (base64)"), "{labels:?}");
        assert!(hits.iter().all(|h| h.file == log), "{hits:?}");
    }

    #[test]
    fn reads_ams_signature_headers() {
        let streams = vec![
            b"POST /x HTTP/1.1\r\nSignature: algorithm=RSA256,keyVersion=1,signature=ab%2Bc%3D\r\n\r\n"
                .to_vec(),
        ];
        let v = header_values(&streams, "signature");
        assert_eq!(v, ["algorithm=RSA256,keyVersion=1,signature=ab%2Bc%3D"]);
        assert_eq!(ams_signature_value(&v[0]).as_deref(), Some("ab+c="));
    }
}
