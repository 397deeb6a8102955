//! Lenient scalar deserializers.
//!
//! The AMS pages say every non-array scalar is a JSON string (`"20"`, `"true"`), while the
//! official SDKs send Booleans and numbers natively. These helpers accept both forms and
//! keep one Rust type. Serialization sends scalars as strings where the docs say so, and
//! Booleans natively, as the SDKs do.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// Accepts a JSON string or an integer and yields its text (`"30000"` or `30000` → `"30000"`).
/// Floats are refused: money and counts are whole numbers. (The money crate's rule, so
/// `Amount.value` and the other fields read alike.)
pub use scanbind_money::string_or_integer as string_or_number;

/// Like [`string_or_number`] for an optional field (use with `#[serde(default)]`).
pub fn opt_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("null, a string or an integer")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            string_or_number(d).map(Some)
        }
    }
    d.deserialize_option(V)
}

/// Accepts `true`/`false` or the strings `"true"`/`"false"` (any case).
pub fn bool_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a Boolean or \"true\"/\"false\"")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            if v.eq_ignore_ascii_case("true") {
                Ok(true)
            } else if v.eq_ignore_ascii_case("false") {
                Ok(false)
            } else {
                Err(E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
    }
    d.deserialize_any(V)
}

/// Like [`bool_or_string`] for an optional field (use with `#[serde(default)]`).
pub fn opt_bool_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("null, a Boolean or \"true\"/\"false\"")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            bool_or_string(d).map(Some)
        }
    }
    d.deserialize_option(V)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct T {
        #[serde(deserialize_with = "super::string_or_number")]
        n: String,
        #[serde(deserialize_with = "super::bool_or_string")]
        b: bool,
        #[serde(default, deserialize_with = "super::opt_bool_or_string")]
        ob: Option<bool>,
        #[serde(default, deserialize_with = "super::opt_string_or_number")]
        on: Option<String>,
    }

    #[test]
    fn both_forms() {
        let t: T = serde_json::from_str(r#"{"n":"20","b":"true"}"#).unwrap();
        assert_eq!((t.n.as_str(), t.b, t.ob, t.on), ("20", true, None, None));
        let t: T = serde_json::from_str(r#"{"n":20,"b":false,"ob":"FALSE","on":7}"#).unwrap();
        assert_eq!(
            (t.n.as_str(), t.b, t.ob, t.on.as_deref()),
            ("20", false, Some(false), Some("7"))
        );
        let t: T = serde_json::from_str(r#"{"n":"1","b":true,"ob":null,"on":null}"#).unwrap();
        assert_eq!((t.ob, t.on), (None, None));
        assert!(serde_json::from_str::<T>(r#"{"n":1.5,"b":true}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"n":"1","b":"yes"}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"n":[],"b":true}"#).is_err());
    }
}
