//! Options parsing: the `a{sv}` dictionaries and `aa{sv}` lists apps pass, turned
//! into the domain's values or a typed error.

use std::collections::{HashMap, HashSet};

use scanbind_ipc::Error as Wire;
use scanbind_ipc::types::keys;
use zvariant::{OwnedValue, Value};

use crate::domain::checkout::{
    CheckoutSpec, MAX_DESCRIPTION, MAX_PARTS, MAX_PARTS_ALL_OR_NOTHING, MAX_SELLER, SellerPart,
};
use crate::domain::model::LineItem;
use crate::domain::validate::{MAX_ITEM_NAME, MAX_LINE_ITEMS};

/// `UnknownOption` for the first key of `options`, if any.
pub(crate) fn no_options(
    method: &str,
    options: &HashMap<String, OwnedValue>,
) -> std::result::Result<(), Wire> {
    match options.keys().next() {
        Some(k) => Err(Wire::UnknownOption(format!("{method} does not know {k:?}"))),
        None => Ok(()),
    }
}

/// Parses and checks the `line-items` option (`aa{sv}`): names, quantities, unit
/// prices, and that they add up to `total` exactly (checked arithmetic, no overflow).
pub(crate) fn parse_line_items(
    v: &Value<'_>,
    total: i64,
) -> std::result::Result<Vec<LineItem>, Wire> {
    use scanbind_ipc::types::keys::line_item as k;
    let bad = |m: String| Wire::InvalidArgument(format!("line-items: {m}"));
    let Value::Array(items) = v else {
        return Err(bad("must be aa{sv}".into()));
    };
    if items.is_empty() || items.len() > MAX_LINE_ITEMS {
        return Err(bad(format!("give 1 to {MAX_LINE_ITEMS} items")));
    }
    let mut out = Vec::with_capacity(items.len());
    let mut sum: i64 = 0;
    for (i, item) in items.inner().iter().enumerate() {
        let Value::Dict(d) = item else {
            return Err(bad(format!("item {i} must be a{{sv}}")));
        };
        let (mut name, mut quantity, mut amount) = (None, None, None);
        for (key, val) in d.iter() {
            let Value::Str(key) = key else {
                return Err(bad(format!("item {i}: keys must be strings")));
            };
            let val = match val {
                Value::Value(inner) => &**inner,
                other => other,
            };
            match (key.as_str(), val) {
                (k::NAME, Value::Str(n)) if !n.is_empty() && n.chars().count() <= MAX_ITEM_NAME => {
                    name = Some(n.to_string());
                }
                (k::QUANTITY, Value::U32(q)) if *q >= 1 => quantity = Some(*q),
                (k::AMOUNT_MINOR, Value::I64(a)) if *a > 0 => amount = Some(*a),
                (k::NAME, _) => {
                    return Err(bad(format!(
                        "item {i}: name must be s of 1 to {MAX_ITEM_NAME} characters"
                    )));
                }
                (k::QUANTITY, _) => return Err(bad(format!("item {i}: quantity must be u ≥ 1"))),
                (k::AMOUNT_MINOR, _) => {
                    return Err(bad(format!("item {i}: amount-minor must be x > 0")));
                }
                (other, _) => {
                    return Err(Wire::UnknownOption(format!(
                        "line item {i} has an unknown key {other:?}"
                    )));
                }
            }
        }
        let (Some(name), Some(quantity), Some(amount_minor)) = (name, quantity, amount) else {
            return Err(bad(format!(
                "item {i} needs name, quantity and amount-minor"
            )));
        };
        sum = amount_minor
            .checked_mul(i64::from(quantity))
            .and_then(|line| sum.checked_add(line))
            .ok_or_else(|| Wire::InvalidAmount("line-items: the total overflows".into()))?;
        out.push(LineItem {
            name,
            quantity,
            amount_minor,
        });
    }
    if sum != total {
        return Err(Wire::InvalidAmount(format!(
            "line-items add up to {sum}, not amount_minor {total}"
        )));
    }
    Ok(out)
}

/// Parses and checks the `sellers` option (`aa{sv}`): 2 to [`MAX_PARTS`] parts (at
/// most [`MAX_PARTS_ALL_OR_NOTHING`] when all-or-nothing), each seller once, each
/// amount positive, adding up to `total` exactly (checked arithmetic).
pub(crate) fn parse_sellers(
    v: &Value<'_>,
    total: i64,
    all_or_nothing: bool,
) -> std::result::Result<CheckoutSpec, Wire> {
    use keys::seller as k;
    let bad = |m: String| Wire::InvalidArgument(format!("sellers: {m}"));
    let Value::Array(items) = v else {
        return Err(bad("must be aa{sv}".into()));
    };
    let max = if all_or_nothing {
        MAX_PARTS_ALL_OR_NOTHING
    } else {
        MAX_PARTS
    };
    if items.len() < 2 || items.len() > max {
        return Err(bad(format!(
            "give 2 to {max} parts{}",
            if all_or_nothing {
                " in an all-or-nothing checkout (20 with all-or-nothing false)"
            } else {
                ""
            }
        )));
    }
    let mut parts = Vec::with_capacity(items.len());
    let mut seen = HashSet::new();
    let mut sum: i64 = 0;
    for (i, item) in items.inner().iter().enumerate() {
        let Value::Dict(d) = item else {
            return Err(bad(format!("part {i} must be a{{sv}}")));
        };
        let (mut seller, mut amount, mut description) = (None, None, None);
        for (key, val) in d.iter() {
            let Value::Str(key) = key else {
                return Err(bad(format!("part {i}: keys must be strings")));
            };
            let val = match val {
                Value::Value(inner) => &**inner,
                other => other,
            };
            match (key.as_str(), val) {
                (k::SELLER, Value::Str(s))
                    if (1..=MAX_SELLER).contains(&s.len())
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) =>
                {
                    seller = Some(s.to_string());
                }
                (k::AMOUNT_MINOR, Value::I64(a)) if *a > 0 => amount = Some(*a),
                (k::DESCRIPTION, Value::Str(s))
                    if !s.is_empty() && s.chars().count() <= MAX_DESCRIPTION =>
                {
                    description = Some(s.to_string());
                }
                (k::SELLER, _) => {
                    return Err(bad(format!(
                        "part {i}: seller must be s of 1 to {MAX_SELLER} of A-Z a-z 0-9 _ . -"
                    )));
                }
                (k::AMOUNT_MINOR, _) => {
                    return Err(Wire::InvalidAmount(format!(
                        "sellers: part {i}: amount-minor must be x > 0"
                    )));
                }
                (k::DESCRIPTION, _) => {
                    return Err(bad(format!(
                        "part {i}: description must be s of 1 to {MAX_DESCRIPTION} characters"
                    )));
                }
                (other, _) => {
                    return Err(Wire::UnknownOption(format!(
                        "seller part {i} has an unknown key {other:?}"
                    )));
                }
            }
        }
        let (Some(seller), Some(amount_minor), Some(description)) = (seller, amount, description)
        else {
            return Err(bad(format!(
                "part {i} needs seller, amount-minor and description"
            )));
        };
        if !seen.insert(seller.clone()) {
            return Err(bad(format!("seller {seller:?} appears twice")));
        }
        sum = sum
            .checked_add(amount_minor)
            .ok_or_else(|| Wire::InvalidAmount("sellers: the total overflows".into()))?;
        parts.push(SellerPart {
            seller,
            amount_minor,
            description,
        });
    }
    if sum != total {
        return Err(Wire::InvalidAmount(format!(
            "the sellers' parts add up to {sum}, not amount_minor {total}"
        )));
    }
    Ok(CheckoutSpec {
        all_or_nothing,
        parts,
    })
}

#[cfg(test)]
mod tests {
    use zbus::DBusError as _;

    use super::*;
    use zvariant::Array;

    fn part(seller: &str, amount: i64) -> HashMap<String, Value<'static>> {
        HashMap::from([
            ("seller".to_owned(), Value::from(seller.to_owned())),
            ("amount-minor".to_owned(), Value::from(amount)),
            ("description".to_owned(), Value::from("thing")),
        ])
    }

    fn sellers(parts: Vec<HashMap<String, Value<'static>>>) -> Value<'static> {
        let mut a = Array::new(&zvariant::Signature::static_dict(
            &zvariant::Signature::Str,
            &zvariant::Signature::Variant,
        ));
        for p in parts {
            a.append(Value::from(p)).unwrap();
        }
        Value::Array(a)
    }

    #[test]
    fn good_parts_parse_in_order() {
        let v = sellers(vec![part("SELLER_A", 100), part("SELLER_B", 250)]);
        let spec = parse_sellers(&v, 350, true).unwrap();
        assert!(spec.all_or_nothing);
        assert_eq!(
            spec.parts
                .iter()
                .map(|p| (p.seller.as_str(), p.amount_minor))
                .collect::<Vec<_>>(),
            [("SELLER_A", 100), ("SELLER_B", 250)]
        );
        assert_eq!(spec.sellers_text(), "SELLER_A and SELLER_B");
        let back: CheckoutSpec = serde_json::from_str(&spec.to_json().unwrap()).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn bad_parts_get_typed_errors() {
        let name = |r: std::result::Result<CheckoutSpec, Wire>| r.unwrap_err().name().to_string();
        let seven: Vec<_> = (0..7).map(|i| part(&format!("S{i}"), 1)).collect();
        assert!(name(parse_sellers(&sellers(seven.clone()), 7, true)).ends_with("InvalidArgument"));
        assert!(
            parse_sellers(&sellers(seven), 7, false).is_ok(),
            "20 when independent"
        );
        let many: Vec<_> = (0..21).map(|i| part(&format!("S{i}"), 1)).collect();
        assert!(name(parse_sellers(&sellers(many), 21, false)).ends_with("InvalidArgument"));
        let one = sellers(vec![part("A", 5)]);
        assert!(name(parse_sellers(&one, 5, true)).ends_with("InvalidArgument"));
        let twice = sellers(vec![part("A", 5), part("A", 5)]);
        assert!(name(parse_sellers(&twice, 10, true)).ends_with("InvalidArgument"));
        let wrong_sum = sellers(vec![part("A", 5), part("B", 5)]);
        assert!(name(parse_sellers(&wrong_sum, 11, true)).ends_with("InvalidAmount"));
        let negative = sellers(vec![part("A", -5), part("B", 15)]);
        assert!(name(parse_sellers(&negative, 10, true)).ends_with("InvalidAmount"));
        let overflow = sellers(vec![part("A", i64::MAX), part("B", 1)]);
        assert!(name(parse_sellers(&overflow, 1, true)).ends_with("InvalidAmount"));
        let bad_id = sellers(vec![part("has space", 5), part("B", 5)]);
        assert!(name(parse_sellers(&bad_id, 10, true)).ends_with("InvalidArgument"));
        let mut extra = part("A", 5);
        extra.insert("colour".into(), Value::from("red"));
        let unknown = sellers(vec![extra, part("B", 5)]);
        assert!(name(parse_sellers(&unknown, 10, true)).ends_with("UnknownOption"));
        assert!(name(parse_sellers(&Value::from("x"), 10, true)).ends_with("InvalidArgument"));
    }
}
