//! The console's page frame (title, navigation, the signed-in analyst) and HTML escaping. Every
//! text a page shows goes through [`esc`]: messages carry whatever a sender put in them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `text` safe inside HTML elements and quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#212b32}\
header{background:#005eb8;color:#fff;padding:.6em 1em;display:flex;gap:1.5em;align-items:center}\
header a{color:#fff}main{padding:1em}table{border-collapse:collapse;margin:.5em 0}\
td,th{border:1px solid #d8dde0;padding:.25em .5em;text-align:left;vertical-align:top}\
.seg{font-family:monospace;white-space:pre-wrap;word-break:break-all}\
.seg span[title]:hover{background:#ffeb3b}.error{color:#b00020}.note{color:#4c6272}\
form.inline{display:inline}tr.failed{background:#fde8e8}\
a:focus,button:focus,input:focus,select:focus,summary:focus{outline:3px solid #ffb81c;outline-offset:1px}\
.skip{position:absolute;left:-999em}.skip:focus{left:1em;top:.5em;background:#fff;color:#005eb8;padding:.3em}\
svg.rate{vertical-align:middle}header nav{display:flex;gap:1.5em}";

/// A whole page: `title`, the navigation (when someone is signed in), then `body`.
pub fn page(status: StatusCode, title: &str, signed_in: Option<&str>, body: &str) -> Response {
    let nav = match signed_in {
        Some(who) => format!(
            "<nav aria-label=\"Console\"><a href=\"/console\">Channels</a><a href=\"/console/messages\">Messages</a>\
             <a href=\"/console/dead-letters\">Dead letters</a><a href=\"/console/mappings\">Mappings</a>\
             <a href=\"/console/config\">Configuration</a></nav><span>Signed in as {}</span>\
             <form class=\"inline\" method=\"post\" action=\"/console/logout\"><button>Sign out</button></form>",
            esc(who)
        ),
        None => String::new(),
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} - Tributary</title>\
         <style>{STYLE}</style></head><body><a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header><strong>Tributary</strong>{nav}</header>\
         <main id=\"main\"><h1>{}</h1>{body}</main></body></html>",
        esc(title),
        esc(title)
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Styles of its own only: no script, no frame, forms back to itself.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// A 303 to `location` (after a form's POST).
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_a_message_is_shown_not_run() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
