//! One JSON style: every key of every JSON document `scanbindctl --json` prints is
//! camelCase (clients/scanbindctl/README.md), except the keys of maps keyed by data
//! (`scanbindctl::output::DATA_MAPS`: app ids, profile names, currencies, D-Bus
//! dictionaries). Every test that parses a document checks it through here.

use serde_json::Value;

/// Panics if a key of `doc` (outside the data maps) contains `_`.
pub fn assert_camel_case(doc: &Value) {
    let mut bad = Vec::new();
    walk(doc, "", false, &mut bad);
    assert!(
        bad.is_empty(),
        "snake_case keys {bad:?} in a --json document (keys are camelCase): {doc}"
    );
}

fn walk(value: &Value, at: &str, data_map: bool, bad: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{at}/{k}");
                if !data_map && k.contains('_') {
                    bad.push(here.clone());
                }
                let inner = !data_map && scanbindctl::output::DATA_MAPS.contains(&k.as_str());
                walk(v, &here, inner, bad);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &format!("{at}/{i}"), false, bad);
            }
        }
        _ => {}
    }
}
