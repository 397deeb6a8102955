//! [`SecretString`]: a bearer secret that never reaches a log.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A bearer secret (`accessToken`, `refreshToken`, `authCode`, `paymentMethodId`).
///
/// Serialized as a plain JSON string; `Debug` prints `<redacted>` so no model ever leaks
/// one into logs. There is deliberately no `Display`: use [`SecretString::expose`].
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        SecretString(secret.into())
    }

    /// The secret text. Every call site is a place where the secret leaves the type.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Unwraps the secret text.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        SecretString(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        SecretString(s.to_owned())
    }
}
