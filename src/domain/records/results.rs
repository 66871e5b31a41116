//! A member's results: each DiagnosticReport of the patient with the Observations it lists,
//! shaped for the portal's Results tab. A numeric value is placed against its reference range
//! (`below`, `within`, `above`), which is what the portal's meters draw; a result without a
//! number or without a numeric range has no position.

use serde_json::{Value, json};

use crate::config::RecordSwitches;
use crate::domain::records::site;
use crate::domain::resources::search::{self, SearchError, Sort};
use crate::domain::resources::{self, Current};
use crate::store::{Reader, Store, StoreError};

/// Which results a member asks for.
#[derive(Debug, Default, Clone)]
pub struct ResultsQuery {
    /// Words the report's or a result's name starts with (case-insensitive).
    pub name: Option<String>,
    /// Reports dated on or after this date (`YYYY-MM-DD`, compared with the report's date).
    pub from: Option<String>,
    /// Reports dated on or before this date.
    pub to: Option<String>,
    /// `laboratory` or `imaging`.
    pub category: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Search(#[from] SearchError),
}

/// The patient's reports, newest first, each with its results, as `query` narrows them and of
/// the categories the site shows (each result with its info button's link when it shows them).
pub fn of_patient(
    store: &dyn Store,
    patient_id: &str,
    query: &ResultsQuery,
    switches: &RecordSwitches,
) -> Result<Vec<Value>, ResultsError> {
    let filters = vec![("patient".to_string(), patient_id.to_string())];
    let mut reports = search::search(store, "DiagnosticReport", &filters, Sort::default())?;
    reports.sort_by(|a, b| date_of(b).cmp(date_of(a)));
    let mut shown = vec![];
    for report in &reports {
        let day = date_of(report).get(..10).unwrap_or("");
        if query.from.as_deref().is_some_and(|from| day < from)
            || query.to.as_deref().is_some_and(|to| day > to)
        {
            continue;
        }
        let results = results_of(store, report, switches)?;
        let category = results
            .iter()
            .find_map(|r| r["category"].as_str().map(str::to_string))
            .unwrap_or_else(|| "laboratory".to_string());
        let shown_here = switches.result_categories.contains(&category);
        if !shown_here || query.category.as_deref().is_some_and(|c| c != category) {
            continue;
        }
        let name = report["code"]["text"].as_str().unwrap_or("");
        if let Some(words) = &query.name
            && !starts_a_word(name, words)
            && !results
                .iter()
                .any(|r| starts_a_word(r["name"].as_str().unwrap_or(""), words))
        {
            continue;
        }
        shown.push(json!({
            "id": report["id"],
            "name": name,
            "category": category,
            "status": report["status"],
            "date": report["effectiveDateTime"],
            "issued": report["issued"],
            "report_attached": report["presentedForm"].as_array().is_some_and(|f| !f.is_empty()),
            "results": results,
        }));
    }
    Ok(shown)
}

/// The report `report_id` of the patient, if it is theirs.
pub fn report_of(
    reader: &dyn Reader,
    patient_id: &str,
    report_id: &str,
) -> Result<Option<Value>, StoreError> {
    let Some(Current::Live(report)) = resources::read(reader, "DiagnosticReport", report_id)? else {
        return Ok(None);
    };
    let theirs = report["subject"]["reference"].as_str() == Some(&format!("Patient/{patient_id}"));
    Ok(theirs.then_some(report))
}

fn results_of(
    reader: &dyn Reader,
    report: &Value,
    switches: &RecordSwitches,
) -> Result<Vec<Value>, StoreError> {
    let mut results = vec![];
    for listed in report["result"].as_array().into_iter().flatten() {
        let Some(id) = listed["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Observation/"))
        else {
            continue;
        };
        if let Some(Current::Live(observation)) = resources::read(reader, "Observation", id)? {
            let mut shown = view(&observation);
            if let Some(url) = site::info_url(switches, &observation["code"]) {
                shown["info_url"] = Value::String(url);
            }
            results.push(shown);
        }
    }
    Ok(results)
}

/// One result as the portal shows it.
fn view(observation: &Value) -> Value {
    let quantity = &observation["valueQuantity"];
    let value = quantity["value"].as_f64();
    let range = &observation["referenceRange"][0];
    let (low, high) = (range["low"]["value"].as_f64(), range["high"]["value"].as_f64());
    let interpretation = &observation["interpretation"][0];
    json!({
        "id": observation["id"],
        "name": observation["code"]["text"],
        "code": observation["code"]["coding"][0]["code"],
        "category": observation["category"][0]["coding"][0]["code"],
        "status": observation["status"],
        "date": observation["effectiveDateTime"],
        "value": quantity["value"],
        "unit": quantity["unit"],
        "text": observation["valueString"].as_str()
            .or(observation["valueCodeableConcept"]["text"].as_str()),
        "range": { "low": low, "high": high, "text": range["text"] },
        "position": value.and_then(|v| position(v, low, high)),
        "flag": interpretation["coding"][0]["display"].as_str().or(interpretation["text"].as_str()),
        "notes": observation["note"].as_array().map(|notes| notes.iter().filter_map(|n| n["text"].as_str()).collect::<Vec<_>>()),
    })
}

/// Where `value` falls against a range with at least one numeric bound.
pub fn position(value: f64, low: Option<f64>, high: Option<f64>) -> Option<&'static str> {
    if low.is_none() && high.is_none() {
        return None;
    }
    if low.is_some_and(|low| value < low) {
        Some("below")
    } else if high.is_some_and(|high| value > high) {
        Some("above")
    } else {
        Some("within")
    }
}

/// The date a report is listed by: when the specimen was taken, else when it was issued.
fn date_of(report: &Value) -> &str {
    report["effectiveDateTime"]
        .as_str()
        .or(report["issued"].as_str())
        .unwrap_or("")
}

/// True when a word of `text` starts with each word of `words`, ignoring case.
fn starts_a_word(text: &str, words: &str) -> bool {
    let text = text.to_lowercase();
    let parts: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).collect();
    words
        .to_lowercase()
        .split_whitespace()
        .all(|word| parts.iter().any(|part| part.starts_with(word)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_value_falls_below_within_or_above_its_range() {
        assert_eq!(position(5.6, Some(3.9), Some(5.5)), Some("above"));
        assert_eq!(position(3.8, Some(3.9), Some(5.5)), Some("below"));
        assert_eq!(
            position(3.9, Some(3.9), Some(5.5)),
            Some("within"),
            "bounds are in range"
        );
        assert_eq!(position(5.5, Some(3.9), Some(5.5)), Some("within"));
        assert_eq!(position(100.0, None, Some(90.0)), Some("above"));
        assert_eq!(position(1.0, None, None), None);
    }

    #[test]
    fn names_match_from_the_start_of_a_word() {
        assert!(starts_a_word("Comprehensive metabolic panel", "metab"));
        assert!(starts_a_word("Hepatitis B surface Ag", "hep surf"));
        assert!(!starts_a_word("Glucose", "cose"));
    }

    proptest! {
        #[test]
        fn a_position_agrees_with_the_bounds(v in -1e6f64..1e6, a in -1e6f64..1e6, b in -1e6f64..1e6) {
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            let want = if v < low { "below" } else if v > high { "above" } else { "within" };
            prop_assert_eq!(position(v, Some(low), Some(high)), Some(want));
        }
    }
}
