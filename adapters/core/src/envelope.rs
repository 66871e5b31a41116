//! The envelope: one message crossing the edge outward, with the id that makes retries safe.

use bytes::Bytes;

/// One message crossing the edge, with a stable id so a retried delivery is recognisable downstream.
///
/// The id is chosen by the outbox when the delivery is first queued and never changes across
/// retries: a receiver that saw the first attempt can tell the second one is the same message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub id: String,
    pub payload: Bytes,
    /// MIME type of `payload`, e.g. `x-application/hl7-v2+er7` or `application/fhir+json`.
    pub content_type: String,
    /// Adapter-specific extras (HTTP headers, an e-mail subject, ...), in order.
    pub headers: Vec<(String, String)>,
}

impl Envelope {
    /// An envelope without headers.
    pub fn new(id: impl Into<String>, payload: impl Into<Bytes>, content_type: impl Into<String>) -> Self {
        Envelope {
            id: id.into(),
            payload: payload.into(),
            content_type: content_type.into(),
            headers: Vec::new(),
        }
    }

    /// The first header with this name (compared ASCII case-insensitively, as HTTP does).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_ignores_case_and_takes_the_first() {
        let mut envelope = Envelope::new("d-1", "body", "text/plain");
        envelope.headers.push(("Subject".into(), "first".into()));
        envelope.headers.push(("subject".into(), "second".into()));
        assert_eq!(envelope.header("SUBJECT"), Some("first"));
        assert_eq!(envelope.header("missing"), None);
    }
}
