//! Human or JSON output.
//!
//! Every key of every JSON document `scanbindctl --json` prints is camelCase
//! (`orderId`, `amountMinor`), as in the D-Bus and device APIs: [`Output::emit`]
//! renames the snake_case field names of the types it prints ([`camel_case_keys`]),
//! except the keys of maps keyed by data ([`DATA_MAPS`]: app ids, profile names,
//! currencies, D-Bus dictionaries), which are printed as they are.

use serde::Serialize;
use serde_json::Value;

/// Logs to stderr: `warn`, then `info` and `debug` for each `-v`; `SCANBIND_LOG`
/// overrides. For `scanbindctl` and the demo program alike.
pub fn init_logging(verbose: u8) {
    let filter = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SCANBIND_LOG")
                .unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// The keys whose values are maps keyed by data, not by field names: their own keys
/// stay as they are (their values' keys are renamed again).
///
/// `apps` (app ids) and `profiles` (profile names) of the payment policy, `limits`
/// (currencies), `details` (the D-Bus dictionaries the agent shows).
pub const DATA_MAPS: &[&str] = &["apps", "profiles", "limits", "details"];

/// `value` with every snake_case object key renamed to camelCase (`order_id` →
/// `orderId`), except the keys of the maps under [`DATA_MAPS`].
pub fn camel_case_keys(value: Value) -> Value {
    rename(value, false)
}

fn rename(value: Value, data_map: bool) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    if data_map {
                        (k, rename(v, false))
                    } else {
                        let inner = DATA_MAPS.contains(&k.as_str());
                        (camel(&k), rename(v, inner))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| rename(v, false)).collect()),
        other => other,
    }
}

/// `order_id` → `orderId`; a key without `_` is returned as it is.
fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// How to print results.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// JSON instead of text.
    pub json: bool,
}

impl Output {
    /// Prints `value` as one JSON line with `--json` (its keys in camelCase,
    /// [`camel_case_keys`]), else runs `human`.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce()) {
        if self.json {
            match serde_json::to_value(value)
                .and_then(|v| serde_json::to_string(&camel_case_keys(v)))
            {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("error: cannot encode the result as JSON: {e}"),
            }
        } else {
            human();
        }
    }

    /// Prints a line for people (nothing with `--json`).
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.json {
            println!("{}", line.as_ref());
        }
    }
}

/// Prints rows as a table with a header, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    indented_table("", header, rows);
}

/// [`table`], each line starting with `indent`.
pub fn indented_table(indent: &str, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{indent}{}", s.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_become_camel_case_but_data_keys_stay() {
        let doc = json!({
            "order_id": "o_1",
            "amount_minor": 5,
            "created_at": [{"device_name": "tv"}],
            "profiles": {"kids_mode": {"per_payment": 1, "limits": {"HKD": {"per_payment": 2}}}},
            "apps": {"com.game_one": {"above_cap": "refuse"}},
            "details": {"x_y": {"a_b": 1}},
            "already": {"orderId": 1},
        });
        assert_eq!(
            camel_case_keys(doc),
            json!({
                "orderId": "o_1",
                "amountMinor": 5,
                "createdAt": [{"deviceName": "tv"}],
                "profiles": {"kids_mode": {"perPayment": 1, "limits": {"HKD": {"perPayment": 2}}}},
                "apps": {"com.game_one": {"aboveCap": "refuse"}},
                "details": {"x_y": {"aB": 1}},
                "already": {"orderId": 1},
            })
        );
    }
}
