//! The checked-in XML, `docs/dbus-api.md`, the error enum and the wire types must
//! agree. These tests fail when one of them changes without the others.

use std::collections::BTreeSet;

use zbus::DBusError;
use zbus_xml::{ArgDirection, Node};
use zvariant::Type;

use crate::{error::tests::error_names, names, types, xml};

const DOCS: &str = include_str!("../../docs/dbus-api.md");

fn node(xml: &str) -> Node<'_> {
    Node::from_reader(xml.as_bytes()).expect("checked-in XML parses")
}

fn args(args: &[zbus_xml::Arg], dir: Option<ArgDirection>) -> Vec<String> {
    args.iter()
        .filter(|a| dir.is_none() || a.direction() == dir)
        .map(|a| format!("{} {}", a.ty().inner(), a.name().unwrap_or("?")))
        .collect()
}

/// `(heading, signature line)` for every member in the XML, in the doc's format:
/// `### Method \`Name\`` followed somewhere in its section by the signature in
/// backticks.
fn xml_members() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (iface_name, text) in xml::ALL {
        let node = node(text);
        assert_eq!(node.interfaces().len(), 1, "one interface per XML file");
        let iface = &node.interfaces()[0];
        assert_eq!(iface.name().as_str(), *iface_name);
        for m in iface.methods() {
            let ins = args(m.args(), Some(ArgDirection::In)).join(", ");
            let outs = args(m.args(), Some(ArgDirection::Out));
            let outs = match outs.len() {
                0 => "()".to_owned(),
                1 => outs[0].clone(),
                _ => format!("({})", outs.join(", ")),
            };
            out.push((
                iface_name.to_string(),
                format!("Method `{}`", m.name()),
                format!("`{}({ins}) → {outs}`", m.name()),
            ));
        }
        for s in iface.signals() {
            let a = args(s.args(), None).join(", ");
            out.push((
                iface_name.to_string(),
                format!("Signal `{}`", s.name()),
                format!("`{}({a})`", s.name()),
            ));
        }
        for p in iface.properties() {
            assert!(
                p.access().read() && !p.access().write(),
                "properties are read-only"
            );
            out.push((
                iface_name.to_string(),
                format!("Property `{}`", p.name()),
                format!("`{}: {}`", p.name(), p.ty().inner()),
            ));
        }
    }
    out
}

/// `(interface or "Errors", heading, section text)` for every `###` section of the doc.
fn doc_sections() -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut h2 = String::new();
    for line in DOCS.lines() {
        if let Some(rest) = line.strip_prefix("## ") {
            h2 = rest
                .strip_prefix("Interface `")
                .and_then(|r| r.strip_suffix('`'))
                .unwrap_or(rest)
                .to_owned();
        } else if let Some(rest) = line.strip_prefix("### ") {
            out.push((h2.clone(), rest.to_owned(), String::new()));
        } else if let Some(last) = out.last_mut() {
            last.2.push_str(line);
            last.2.push('\n');
        }
    }
    out
}

#[test]
fn every_xml_member_is_documented_with_its_signature() {
    let sections = doc_sections();
    for (iface, heading, sig) in xml_members() {
        let Some((_, _, body)) = sections
            .iter()
            .find(|(i, h, _)| *i == iface && *h == heading)
        else {
            panic!("docs/dbus-api.md has no `### {heading}` under `## Interface `{iface}``");
        };
        assert!(
            body.contains(&sig),
            "docs/dbus-api.md: {iface} {heading} must show {sig}"
        );
        assert!(
            body.lines().filter(|l| !l.trim().is_empty()).count() >= 2,
            "{iface} {heading}: say what it means"
        );
    }
}

#[test]
fn every_documented_member_is_in_the_xml() {
    let xml: BTreeSet<(String, String)> =
        xml_members().into_iter().map(|(i, h, _)| (i, h)).collect();
    for (iface, heading, _) in doc_sections() {
        if iface == "Errors" || !iface.starts_with("io.scanbind.") {
            continue;
        }
        assert!(
            xml.contains(&(iface.clone(), heading.clone())),
            "docs/dbus-api.md documents {iface} {heading}, which the XML does not have"
        );
    }
}

#[test]
fn every_error_name_is_documented_and_nothing_else() {
    let documented: Vec<String> = doc_sections()
        .into_iter()
        .filter(|(h2, _, _)| h2 == "Errors")
        .map(|(_, h3, _)| h3.trim_matches('`').to_owned())
        .collect();
    assert_eq!(
        documented,
        error_names(),
        "the Errors section lists every name, in order"
    );
}

#[test]
fn interface_constants_match_the_xml() {
    let ifaces: Vec<&str> = xml::ALL.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        ifaces,
        [
            names::DAEMON_INTERFACE,
            names::BINDING_INTERFACE,
            names::PAYMENT_INTERFACE,
            names::AGENT_MANAGER_INTERFACE,
            names::AGENT_INTERFACE,
            names::MANAGER_INTERFACE,
            names::SUBSCRIPTION_INTERFACE,
        ]
    );
    assert!(DOCS.contains(names::MANAGER_PATH));
    let policy = include_str!("../../packaging/polkit/io.scanbind.policy");
    for action in [
        names::ACTION_READ_POLICY,
        names::ACTION_MANAGE_POLICY,
        names::ACTION_UNBIND,
    ] {
        assert!(
            policy.contains(&format!("<action id=\"{action}\">")),
            "packaging/polkit/io.scanbind.policy defines {action}"
        );
        assert!(DOCS.contains(action), "docs/dbus-api.md names {action}");
    }
    assert!(DOCS.contains(names::BUS_NAME) && DOCS.contains(names::DAEMON_PATH));
    let e = crate::Error::NotFound(String::new());
    assert!(e.name().starts_with(names::ERROR_PREFIX));
}

fn interface_xml(iface: &str) -> &'static str {
    xml::ALL
        .iter()
        .find(|(n, _)| *n == iface)
        .expect("known interface")
        .1
}

fn method_arg_type(iface: &str, method: &str, arg: &str) -> String {
    let node = node(interface_xml(iface));
    let m = node.interfaces()[0]
        .methods()
        .iter()
        .find(|m| m.name() == method)
        .expect("method in XML");
    m.args()
        .iter()
        .find(|a| a.name() == Some(arg))
        .expect("arg in XML")
        .ty()
        .inner()
        .to_string()
}

fn property_type(iface: &str, property: &str) -> String {
    let node = node(interface_xml(iface));
    let p = node.interfaces()[0]
        .properties()
        .iter()
        .find(|p| p.name() == property)
        .expect("property in XML");
    p.ty().inner().to_string()
}

#[test]
fn typed_records_match_the_xml_signatures() {
    use names::{BINDING_INTERFACE, DAEMON_INTERFACE, PAYMENT_INTERFACE};
    assert_eq!(
        method_arg_type(DAEMON_INTERFACE, "ListBindings", "bindings"),
        Vec::<types::BindingSummary>::SIGNATURE.to_string()
    );
    assert_eq!(
        method_arg_type(DAEMON_INTERFACE, "ListPayments", "payments"),
        Vec::<types::PaymentSummary>::SIGNATURE.to_string()
    );
    assert_eq!(
        method_arg_type(
            names::MANAGER_INTERFACE,
            "ListSubscriptions",
            "subscriptions"
        ),
        Vec::<types::SubscriptionSummary>::SIGNATURE.to_string()
    );
    assert_eq!(
        property_type(PAYMENT_INTERFACE, "LastError"),
        types::ErrorInfo::SIGNATURE.to_string()
    );
    assert_eq!(
        property_type(BINDING_INTERFACE, "LastError"),
        types::ErrorInfo::SIGNATURE.to_string()
    );
}
