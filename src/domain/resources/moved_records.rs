//! A merge (ADT A40) retires a patient into a survivor. Every record that refers to the retired
//! patient (an Observation's subject, an Appointment's participant, a Task's owner: any
//! reference parameter whose value is that Patient) is re-pointed at the survivor in the same
//! commit, so the member's results, documents and appointments follow their record instead of
//! staying with one nobody signs in to.

use serde_json::Value;

use super::params::{self, Kind};
use super::search::MAX_MATCHES;
use super::{Current, index_prefix};
use crate::store::{Keyspace, Overlay, Reader, StoreError};

/// Re-points every record that refers to `Patient/<retired>` at `Patient/<survivor>`; returns
/// the records it wrote (`Type/id`), each once.
pub(crate) fn move_to_survivor(
    tx: &mut Overlay<'_>,
    retired: &str,
    survivor: &str,
    now: &str,
) -> Result<Vec<String>, StoreError> {
    let from = format!("Patient/{retired}");
    let to = format!("Patient/{survivor}");
    let mut moved: Vec<String> = vec![];
    for param in params::PARAMS.iter().filter(|p| p.kind == Kind::Reference) {
        let mut prefix = index_prefix(param.resource, param.name);
        prefix.extend_from_slice(from.as_bytes());
        prefix.push(0);
        let ids: Vec<String> = tx
            .scan_prefix(Keyspace::SearchIndex, &prefix, MAX_MATCHES)?
            .into_iter()
            .map(|(key, _)| String::from_utf8_lossy(&key[prefix.len()..]).into_owned())
            .collect();
        for id in ids {
            let record = format!("{}/{id}", param.resource);
            if moved.contains(&record) {
                continue;
            }
            let Some(Current::Live(mut resource)) = super::read(tx, param.resource, &id)? else {
                continue;
            };
            repoint(&mut resource, &from, &to);
            super::put(tx, param.resource, &id, resource, now)?;
            moved.push(record);
        }
    }
    Ok(moved)
}

/// Replaces every `reference` that is `from` with `to`, wherever it is in `value`.
fn repoint(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                if key == "reference" && child.as_str() == Some(from) {
                    *child = Value::String(to.to_string());
                } else {
                    repoint(child, from, to);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| repoint(item, from, to)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_reference_to_the_retired_patient_and_no_other_is_repointed() {
        let mut appointment = json!({
            "participant": [
                { "actor": { "reference": "Patient/old", "display": "Kept" } },
                { "actor": { "reference": "Practitioner/old" } },
                { "actor": { "reference": "Patient/older" } }
            ]
        });
        repoint(&mut appointment, "Patient/old", "Patient/new");
        assert_eq!(
            appointment,
            json!({
                "participant": [
                    { "actor": { "reference": "Patient/new", "display": "Kept" } },
                    { "actor": { "reference": "Practitioner/old" } },
                    { "actor": { "reference": "Patient/older" } }
                ]
            })
        );
    }
}
