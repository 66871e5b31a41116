//! A member's documents: each DocumentReference of the patient, newest first, shaped for the
//! portal's Documents tab. Text documents are shown inline (their text decoded); others are
//! downloaded. Cancelled documents (entered-in-error) are not shown; superseded ones are, with
//! the document that replaces them.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::domain::resources::search::{self, SearchError, Sort};
use crate::domain::resources::{self, Current};
use crate::store::{Reader, Store, StoreError};

/// The patient's documents, newest first.
pub fn of_patient(store: &dyn Store, patient_id: &str) -> Result<Vec<Value>, SearchError> {
    let filters = vec![("patient".to_string(), patient_id.to_string())];
    let mut documents = search::search(store, "DocumentReference", &filters, Sort::default())?;
    documents.retain(|d| d["status"] != "entered-in-error");
    documents.sort_by(|a, b| {
        b["date"]
            .as_str()
            .unwrap_or("")
            .cmp(a["date"].as_str().unwrap_or(""))
    });
    let replaced_by = |id: &str| {
        documents.iter().find_map(|other| {
            let replaces = other["relatesTo"].as_array().into_iter().flatten().any(|r| {
                r["code"] == "replaces"
                    && r["target"]["reference"].as_str() == Some(&format!("DocumentReference/{id}"))
            });
            replaces.then(|| other["id"].clone())
        })
    };
    Ok(documents
        .iter()
        .map(|document| {
            let attachment = &document["content"][0]["attachment"];
            let content_type = attachment["contentType"].as_str().unwrap_or("");
            json!({
                "id": document["id"],
                "title": attachment["title"].as_str().or(document["type"]["text"].as_str()),
                "date": document["date"],
                "status": document["status"],
                "final": document["docStatus"] == "final",
                "author": document["author"][0]["display"],
                "content_type": content_type,
                "text": text_of(attachment),
                "relates_to": document["relatesTo"].as_array().map(|relations| relations.iter().map(|r| json!({
                    "code": r["code"],
                    "document": r["target"]["reference"].as_str().map(|t| t.trim_start_matches("DocumentReference/")),
                })).collect::<Vec<_>>()),
                "replaced_by": replaced_by(document["id"].as_str().unwrap_or("")),
            })
        })
        .collect())
}

/// The document `id` of the patient (not a cancelled one): its content type and bytes.
pub fn content_of(
    reader: &dyn Reader,
    patient_id: &str,
    id: &str,
) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    let Some(Current::Live(document)) = resources::read(reader, "DocumentReference", id)? else {
        return Ok(None);
    };
    let theirs = document["subject"]["reference"].as_str() == Some(&format!("Patient/{patient_id}"));
    if !theirs || document["status"] == "entered-in-error" {
        return Ok(None);
    }
    let attachment = &document["content"][0]["attachment"];
    let bytes = attachment["data"]
        .as_str()
        .and_then(|data| base64::engine::general_purpose::STANDARD.decode(data).ok());
    Ok(bytes.map(|bytes| {
        let content_type = attachment["contentType"]
            .as_str()
            .unwrap_or("application/octet-stream");
        (content_type.to_string(), bytes)
    }))
}

/// The text of a text attachment, to show inline; None for anything else.
fn text_of(attachment: &Value) -> Option<String> {
    let content_type = attachment["contentType"].as_str()?;
    if !content_type.starts_with("text/plain") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(attachment["data"].as_str()?)
        .ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_text_is_shown_inline() {
        let text = json!({"contentType": "text/plain; charset=utf-8", "data": "SGVsbG8="});
        assert_eq!(text_of(&text).as_deref(), Some("Hello"));
        let pdf = json!({"contentType": "application/pdf", "data": "SGVsbG8="});
        assert_eq!(text_of(&pdf), None);
        let broken = json!({"contentType": "text/plain", "data": "%%%"});
        assert_eq!(text_of(&broken), None);
    }
}
