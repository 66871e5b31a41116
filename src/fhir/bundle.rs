//! Searchset Bundles.

use serde_json::{Value, json};

/// A searchset Bundle of `resources` (each with `resourceType` and `id`), `base` being the FHIR
/// base URL (`http://host/fhir`) and `self_url` the search as asked.
pub fn searchset(base: &str, self_url: &str, resources: Vec<Value>) -> Value {
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|resource| {
            let full_url = format!(
                "{base}/{}/{}",
                resource["resourceType"].as_str().unwrap_or(""),
                resource["id"].as_str().unwrap_or("")
            );
            json!({ "fullUrl": full_url, "resource": resource, "search": { "mode": "match" } })
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "link": [{ "relation": "self", "url": self_url }],
        "entry": entries,
    })
}
