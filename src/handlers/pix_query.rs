//! PIX query over HL7 v2 (IHE ITI-9): a `QBP^Q23` is answered with an `RSP^K23` listing the
//! patient's identifiers in the domains asked for (QPD-4, all when empty).
//!
//! QAK-2 is `OK` with a PID when found, `NF` when the patient has no identifier in the domains
//! asked for, and `AE` (with MSA `AE` and an ERR naming the field) for an unknown identifier
//! (QPD-3, code 204) or an unknown domain (QPD-4, code 204). The PID carries PID-3 and, as
//! ITI TF-2a 3.9.4.2.2.5 requires, PID-5 `~^^^^^^S` (no name from any domain). Any other query
//! (a PDQ `QBP^Q22`) is refused AR 201.

use serde_json::Value;

use crate::domain::mpi::pix::{PixError, cross_reference};
use crate::hl7::{Delimiters, ErrLocation, ErrorCode, Message, MessageWriter, Outcome, ParseError, escape};
use crate::store::Store;

use super::{Early, Handler};

/// Queries (QBP): answered from the store before any channel, never a channel's business.
pub(crate) struct PixQuery;

impl Handler for PixQuery {
    fn message_type(&self) -> &'static str {
        "QBP"
    }

    fn resource_types(&self) -> &'static [&'static str] {
        &[]
    }

    fn before_routing(&self, message: &Message, store: &dyn Store) -> Option<Early> {
        if let Some(refused) = refuse_other_query(message) {
            return Some(Early::Refused(refused));
        }
        let control_id = format!(
            "K23{}",
            &message.control_id().chars().take(17).collect::<String>()
        );
        Some(Early::Answered(vec![answer(store, message, &control_id)]))
    }
}

/// True for the messages this module answers.
fn is_pix_query(message: &Message) -> bool {
    message.message_type() == "QBP" && message.trigger_event() == "Q23"
}

/// The AR 201 for a query this engine does not answer (a PDQ `QBP^Q22`, ITI-21, above all): a
/// query is never a channel's business, so without this it would be filtered and answered AA
/// with no response, which a querying system cannot read.
fn refuse_other_query(message: &Message) -> Option<Outcome> {
    if message.message_type() != "QBP" || is_pix_query(message) {
        return None;
    }
    Some(Outcome::Rejected(ParseError {
        code: ErrorCode::UnsupportedEvent,
        location: Some(ErrLocation {
            segment: "MSH".into(),
            sequence: 1,
            field: Some(9),
            repetition: Some(1),
            component: Some(2),
            subcomponent: None,
        }),
        text: format!(
            "QBP^{} is not answered here: this engine answers PIX queries (QBP^Q23, IHE ITI-9) only; patient demographics queries (PDQ, QBP^Q22) are not supported",
            message.trigger_event()
        ),
    }))
}

/// The RSP^K23 for a QBP^Q23.
fn answer(store: &dyn Store, query: &Message, control_id: &str) -> String {
    let qpd = query.segment("QPD");
    let known = qpd.as_ref().map(|q| q.field(3)).filter(|f| !f.is_empty());
    let targets: Vec<String> = qpd
        .as_ref()
        .map(|q| {
            q.field(4)
                .repetitions()
                .filter(|r| !r.is_empty())
                .filter_map(|r| {
                    system_of(
                        &r.component(4).subcomponent_text(1),
                        &r.component(4).subcomponent_text(2),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let result = match &known {
        None => Err((3, "QPD-3 (the patient identifier) is empty".to_string())),
        Some(field) => {
            let value = field.component(1).text();
            let authority = field.component(4);
            match system_of(&authority.subcomponent_text(1), &authority.subcomponent_text(2)) {
                None => Err((3, "QPD-3 has no assigning authority".to_string())),
                Some(system) => match cross_reference(store, &system, &value, &targets) {
                    Ok(found) => Ok(found.identifiers),
                    Err(e @ (PixError::UnknownSourceDomain(_) | PixError::NotFound(..))) => {
                        Err((3, e.to_string()))
                    }
                    Err(e @ PixError::UnknownTargetDomain(_)) => Err((4, e.to_string())),
                    Err(PixError::Store(e)) => Err((3, e.to_string())),
                },
            }
        }
    };
    let mut writer = MessageWriter::new(*query.delimiters());
    let msh = query.segments().next().expect("a parsed message starts with MSH");
    let now = chrono::Utc::now().format("%Y%m%d%H%M%S+0000").to_string();
    writer
        .segment("MSH")
        .raw_field(3, msh.field(5).raw())
        .raw_field(4, msh.field(6).raw())
        .raw_field(5, msh.field(3).raw())
        .raw_field(6, msh.field(4).raw())
        .field(7, &[&now])
        .field(9, &["RSP", "K23", "RSP_K23"])
        .field(10, &[control_id])
        .raw_field(11, msh.field(11).raw())
        .raw_field(12, msh.field(12).raw());
    let query_tag = qpd.as_ref().map(|q| q.field(2).raw()).unwrap_or("");
    match &result {
        Ok(identifiers) => {
            writer
                .segment("MSA")
                .field(1, &["AA"])
                .raw_field(2, msh.field(10).raw());
            let status = if identifiers.is_empty() { "NF" } else { "OK" };
            writer.segment("QAK").raw_field(1, query_tag).field(2, &[status]);
        }
        Err((field, text)) => {
            writer
                .segment("MSA")
                .field(1, &["AE"])
                .raw_field(2, msh.field(10).raw());
            writer
                .segment("ERR")
                .field(2, &["QPD", "1", &field.to_string(), "1", "1"])
                .field(3, &["204", "Unknown Key Identifier", "HL70357"])
                .field(4, &["E"])
                .field(8, &[text]);
            writer.segment("QAK").raw_field(1, query_tag).field(2, &["AE"]);
        }
    }
    if let Some(qpd) = &qpd {
        let raw = qpd.raw();
        let fields = raw
            .split_once(query.delimiters().field)
            .map(|(_, rest)| rest)
            .unwrap_or("");
        writer.segment("QPD");
        for (i, value) in fields.split(query.delimiters().field).enumerate() {
            writer.raw_field(i + 1, value);
        }
    }
    if let Ok(identifiers) = &result
        && !identifiers.is_empty()
    {
        let delimiters = query.delimiters();
        let cx: Vec<String> = identifiers.iter().map(|i| cx_of(i, delimiters)).collect();
        // ITI TF-2a 3.9.4.2.2.5: PID-5 is required; the manager returns no name of any domain
        // (they may disagree), so an empty first repetition, then one whose only component is
        // the name type S (coded pseudo-name).
        let c = delimiters.component.to_string();
        let pseudo_name = format!("{}{}S", delimiters.repetition, c.repeat(6));
        writer
            .segment("PID")
            .field(1, &["1"])
            .raw_field(3, &cx.join(&delimiters.repetition.to_string()))
            .raw_field(5, &pseudo_name);
    }
    writer.finish()
}

/// An HD (namespace, universal id) as an identifier system, as the ADT mappings make them.
fn system_of(namespace: &str, universal_id: &str) -> Option<String> {
    if !universal_id.is_empty() {
        if universal_id.contains(':') {
            return Some(universal_id.to_string());
        }
        return Some(format!("urn:oid:{universal_id}"));
    }
    (!namespace.is_empty()).then(|| format!("urn:tributary:authority:{namespace}"))
}

/// A FHIR Identifier as an encoded CX: `value^^^namespace&universal id&type^identifier type`.
fn cx_of(identifier: &Value, delimiters: &Delimiters) -> String {
    let text = |v: &Value| escape(v.as_str().unwrap_or(""), delimiters);
    let system = identifier["system"].as_str().unwrap_or("");
    let namespace = text(&identifier["assigner"]["display"]);
    let sub = delimiters.subcomponent;
    let authority = if let Some(oid) = system.strip_prefix("urn:oid:") {
        format!("{namespace}{sub}{}{sub}ISO", escape(oid, delimiters))
    } else if let Some(local) = system.strip_prefix("urn:tributary:authority:") {
        escape(local, delimiters)
    } else {
        format!("{namespace}{sub}{}{sub}URI", escape(system, delimiters))
    };
    let c = delimiters.component;
    format!(
        "{}{c}{c}{c}{authority}{c}{}",
        text(&identifier["value"]),
        text(&identifier["type"]["coding"][0]["code"])
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EmbeddedStore;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Whatever QPD holds, the answer is a readable RSP^K23 that echoes the query's control id.
        #[test]
        fn any_query_gets_a_readable_response(qpd in "[ -~]{0,80}") {
            static STORE: std::sync::LazyLock<(tempfile::TempDir, EmbeddedStore)> = std::sync::LazyLock::new(|| {
                let dir = tempfile::tempdir().unwrap();
                let store = EmbeddedStore::open(dir.path()).unwrap();
                (dir, store)
            });
            let text = format!(
                "MSH|^~\\&|A|B|C|D|20261125||QBP^Q23^QBP_Q21|Q9|P|2.5\rQPD|{}\r",
                qpd.replace(['\r', '\n'], "")
            );
            let Ok(query) = Message::parse_str(&text) else { return Ok(()) };
            let answer = answer(&STORE.1, &query, "K23Q9");
            let response = Message::parse_str(&answer).expect("the response parses");
            prop_assert_eq!(response.message_type(), "RSP");
            prop_assert_eq!(response.get("MSA-2").unwrap_or_default(), "Q9");
            prop_assert!(["OK", "NF", "AE"].contains(&response.get("QAK-2").unwrap_or_default().as_str()));
        }
    }
}
