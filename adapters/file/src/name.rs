//! File names: the extension a content type gets, and the ids that may become a file name.

/// Longest id accepted, in bytes: with the extension and the temporary file's decorations it
/// stays under the 255-byte name limit of common file systems.
pub const MAX_ID_BYTES: usize = 200;

/// The extension for a MIME type: `hl7`, `json`, `xml`, `eml`, `txt`, or `bin` for anything else.
pub fn extension_for(content_type: &str) -> &'static str {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence.contains("hl7-v2") || essence == "application/edi-hl7" {
        "hl7"
    } else if essence == "application/json" || essence == "text/json" || essence.ends_with("+json") {
        "json"
    } else if essence == "application/xml" || essence == "text/xml" || essence.ends_with("+xml") {
        "xml"
    } else if essence == "message/rfc822" {
        "eml"
    } else if essence.starts_with("text/") {
        "txt"
    } else {
        "bin"
    }
}

/// Why `id` cannot name a file, if it cannot: it must stay inside the folder (no separators,
/// no `..`), not be hidden (temporary files start with `.`), and be a plain, short name.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("the envelope id is empty".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!("the envelope id is longer than {MAX_ID_BYTES} bytes"));
    }
    if id.contains('/') || id.contains('\\') {
        return Err(format!("the envelope id `{id}` holds a path separator"));
    }
    if id.contains("..") {
        return Err(format!("the envelope id `{id}` holds `..`"));
    }
    if id.starts_with('.') {
        return Err(format!("the envelope id `{id}` starts with `.`"));
    }
    if id.chars().any(char::is_control) {
        return Err("the envelope id holds a control character".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_map_to_extensions() {
        for (content_type, extension) in [
            ("x-application/hl7-v2+er7", "hl7"),
            ("application/hl7-v2; charset=utf-8", "hl7"),
            ("application/fhir+json", "json"),
            ("application/json", "json"),
            ("application/fhir+xml", "xml"),
            ("text/xml", "xml"),
            ("message/rfc822", "eml"),
            ("text/plain; charset=utf-8", "txt"),
            ("TEXT/PLAIN", "txt"),
            ("application/pdf", "bin"),
            ("", "bin"),
        ] {
            assert_eq!(extension_for(content_type), extension, "{content_type}");
        }
    }

    #[test]
    fn ids_that_would_leave_the_folder_or_hide_are_refused() {
        for id in ["", "../x", "a/b", "a\\b", "..", "x..y", ".hidden", "a\0b", "a\nb"] {
            assert!(check_id(id).is_err(), "{id:?}");
        }
        assert!(check_id(&"x".repeat(MAX_ID_BYTES + 1)).is_err());
        for id in [
            "d-1",
            "ADT.A08.123",
            "2026-11-25T10:00:00Z_7",
            "مريض-1",
            &"x".repeat(MAX_ID_BYTES),
        ] {
            assert!(check_id(id).is_ok(), "{id:?}");
        }
    }
}
