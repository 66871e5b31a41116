//! Bundles the endpoint answers with: a page of search results (searchset, with paging links)
//! and a resource's history.

use serde_json::{Value, json};

/// One page of `matches`: `count` of them from `offset`, with `total` and the link `self`, and
/// when there is more than one page `first`, `previous`, `next` and `last` (each the same search
/// with another `_offset`).
pub fn searchset_page(
    base: &str,
    resource_type: &str,
    params: &[(String, String)],
    matches: &[Value],
    offset: usize,
    count: usize,
) -> Value {
    let page: Vec<Value> = matches
        .iter()
        .skip(offset)
        .take(count)
        .map(|resource| {
            json!({
                "fullUrl": full_url(base, resource),
                "resource": resource,
                "search": { "mode": "match" },
            })
        })
        .collect();
    let link = |relation: &str, at: usize| {
        let mut query: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| k != "_offset" && k != "_count")
            .cloned()
            .collect();
        query.push(("_count".into(), count.to_string()));
        query.push(("_offset".into(), at.to_string()));
        let query = serde_urlencoded::to_string(&query).unwrap_or_default();
        json!({ "relation": relation, "url": format!("{base}/{resource_type}?{query}") })
    };
    let mut links = vec![link("self", offset)];
    // Navigation links only when there is more than one page.
    if count > 0 && (offset > 0 || matches.len() > count) {
        links.push(link("first", 0));
        if offset > 0 {
            links.push(link("previous", offset.saturating_sub(count)));
        }
        if offset + count < matches.len() {
            links.push(link("next", offset + count));
        }
        let last = matches.len().saturating_sub(1) / count * count;
        links.push(link("last", last));
    }
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": matches.len(),
        "link": links,
        "entry": page,
    })
}

/// A history Bundle of `versions` (newest first); a deletion is an entry without a resource.
pub fn history_bundle(base: &str, versions: &[Value]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|version| {
            let deleted = version.get("deleted").is_some();
            let method = if deleted {
                "DELETE"
            } else if version["meta"]["versionId"] == "1" {
                "POST"
            } else {
                "PUT"
            };
            let url = format!(
                "{}/{}",
                version["resourceType"].as_str().unwrap_or(""),
                version["id"].as_str().unwrap_or("")
            );
            let mut entry = json!({
                "fullUrl": full_url(base, version),
                "request": { "method": method, "url": url },
                "response": {
                    "status": if deleted { "204" } else if method == "POST" { "201" } else { "200" },
                    "etag": format!("W/\"{}\"", version["meta"]["versionId"].as_str().unwrap_or("")),
                    "lastModified": version["meta"]["lastUpdated"],
                },
            });
            if !deleted {
                entry["resource"] = version.clone();
            }
            entry
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "history",
        "total": entries.len(),
        "entry": entries,
    })
}

fn full_url(base: &str, resource: &Value) -> String {
    format!(
        "{base}/{}/{}",
        resource["resourceType"].as_str().unwrap_or(""),
        resource["id"].as_str().unwrap_or("")
    )
}
