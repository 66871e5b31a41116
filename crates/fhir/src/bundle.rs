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
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": matches.len(),
        "link": page_links(&format!("{base}/{resource_type}"), params, matches.len(), offset, count),
        "entry": page,
    })
}

/// The links of a page of `total` entries at `url` (a search or a history): `self`, and when
/// there is more than one page `first`, `previous`, `next` and `last`, each the same request
/// with another `_offset`.
fn page_links(
    url: &str,
    params: &[(String, String)],
    total: usize,
    offset: usize,
    count: usize,
) -> Vec<Value> {
    let link = |relation: &str, at: usize| {
        let mut query: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| k != "_offset" && k != "_count")
            .cloned()
            .collect();
        query.push(("_count".into(), count.to_string()));
        query.push(("_offset".into(), at.to_string()));
        let query = serde_urlencoded::to_string(&query).unwrap_or_default();
        json!({ "relation": relation, "url": format!("{url}?{query}") })
    };
    let mut links = vec![link("self", offset)];
    // Navigation links only when there is more than one page.
    if count > 0 && (offset > 0 || total > count) {
        links.push(link("first", 0));
        if offset > 0 {
            links.push(link("previous", offset.saturating_sub(count)));
        }
        if offset + count < total {
            links.push(link("next", offset + count));
        }
        let last = total.saturating_sub(1) / count * count;
        links.push(link("last", last));
    }
    links
}

/// One page of the history of `resource` (`Type/id`): `versions` (newest first; a deletion is
/// an entry without a resource), found at `_offset` `offset` with `_count` `count`, of `total`
/// versions in all, with paging links like a search's.
pub fn history_page(
    base: &str,
    resource: &str,
    params: &[(String, String)],
    versions: &[Value],
    total: usize,
    offset: usize,
    count: usize,
) -> Value {
    let url = format!("{base}/{resource}/_history");
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
        "total": total,
        "link": page_links(&url, params, total, offset, count),
        "entry": entries,
    })
}

pub fn full_url(base: &str, resource: &Value) -> String {
    format!(
        "{base}/{}/{}",
        resource["resourceType"].as_str().unwrap_or(""),
        resource["id"].as_str().unwrap_or("")
    )
}
