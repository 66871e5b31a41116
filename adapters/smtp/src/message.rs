//! Turning an envelope into an e-mail: recipients and subject from its headers, the payload as
//! the body, and a Message-ID derived from the envelope id so every retry carries the same one.

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, Mailboxes};
use tributary_adapter_core::{DeliveryError, Envelope};

/// What every message from one destination shares.
#[derive(Debug, Clone)]
pub(crate) struct Composer {
    pub(crate) from: Mailbox,
    pub(crate) message_id_domain: String,
}

impl Composer {
    /// The e-mail for `envelope`. Everything wrong here is in the envelope, so Permanent.
    pub(crate) fn compose(&self, envelope: &Envelope) -> Result<Message, DeliveryError> {
        let to = envelope
            .header("To")
            .map(str::trim)
            .filter(|to| !to.is_empty())
            .ok_or_else(|| DeliveryError::Permanent("the envelope has no `To` header".into()))?;
        let recipients: Mailboxes = to
            .parse()
            .map_err(|e| DeliveryError::Permanent(format!("`To` is not a valid address list ({e})")))?;
        if recipients.iter().next().is_none() {
            return Err(DeliveryError::Permanent("`To` names no recipient".into()));
        }
        let body = std::str::from_utf8(&envelope.payload)
            .map_err(|_| DeliveryError::Permanent("the payload is not UTF-8 text".into()))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .message_id(Some(message_id(&envelope.id, &self.message_id_domain)))
            .header(content_type(&envelope.content_type));
        for recipient in recipients {
            builder = builder.to(recipient);
        }
        if let Some(subject) = envelope.header("Subject") {
            // A line break in a header value would start a new header: fold it to a space.
            let subject: String = subject
                .chars()
                .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
                .collect();
            builder = builder.subject(subject);
        }
        builder
            .body(encode_body(body))
            .map_err(|e| DeliveryError::Permanent(format!("cannot build the message: {e}")))
    }
}

/// The body in the transfer encoding lettre finds best, less one trap: lettre ends DATA with
/// `CRLF . CRLF` whatever the body ends with, so a line-preserving encoding (7bit, 8bit,
/// quoted-printable) of text that already ends in a line break would arrive with an extra empty
/// line. Such text goes without its last line break, which the terminator then restores.
fn encode_body(text: &str) -> Body {
    let body = Body::new(text.to_string());
    let line_preserving = matches!(
        body.encoding(),
        ContentTransferEncoding::SevenBit
            | ContentTransferEncoding::EightBit
            | ContentTransferEncoding::QuotedPrintable
    );
    let without_last_break = text
        .strip_suffix('\n')
        .map(|rest| rest.strip_suffix('\r').unwrap_or(rest));
    match without_last_break {
        Some(shorter) if line_preserving => {
            Body::new_with_encoding(shorter.to_string(), body.encoding()).unwrap_or(body)
        }
        _ => body,
    }
}

/// `text/html` when the envelope says so, otherwise `text/plain`; UTF-8 either way (lettre
/// chooses quoted-printable or base64 for non-ASCII text, so it passes any relay).
fn content_type(given: &str) -> ContentType {
    let essence = given.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("text/html") {
        ContentType::TEXT_HTML
    } else {
        ContentType::TEXT_PLAIN
    }
}

/// `<id@domain>`, the same for every attempt at one envelope. An id that is not a valid
/// `dot-atom` (RFC 5322 section 3.6.4) is written as `=` and its bytes in hex, so distinct ids
/// still give distinct Message-IDs.
pub(crate) fn message_id(id: &str, domain: &str) -> String {
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let dot_atom = !id.is_empty()
        && !id.starts_with('.')
        && !id.ends_with('.')
        && !id.contains("..")
        && !id.starts_with('=')
        && id.chars().all(|c| c == '.' || atext(c));
    if dot_atom {
        format!("<{id}@{domain}>")
    } else {
        let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
        format!("<={hex}@{domain}>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn composer() -> Composer {
        Composer {
            from: "Portal <noreply@portal.example>".parse().unwrap(),
            message_id_domain: "portal.example".into(),
        }
    }

    fn envelope(headers: &[(&str, &str)], payload: &'static [u8]) -> Envelope {
        let mut envelope = Envelope::new("d-1", payload, "text/plain");
        envelope.headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        envelope
    }

    fn permanent(result: Result<Message, DeliveryError>) -> String {
        match result {
            Err(DeliveryError::Permanent(message)) => message,
            Err(other) => panic!("expected Permanent, got {other}"),
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn message_ids_are_stable_and_valid() {
        assert_eq!(message_id("d-42", "p.example"), "<d-42@p.example>");
        assert_eq!(message_id("d-42", "p.example"), message_id("d-42", "p.example"));
        assert_eq!(message_id("a b", "p.example"), "<=612062@p.example>");
        assert_eq!(message_id("<x>", "p.example"), "<=3c783e@p.example>");
        assert_eq!(message_id("", "p.example"), "<=@p.example>");
        assert_ne!(message_id("=6162", "p"), message_id("ab", "p"));
        assert_ne!(message_id("a..b", "p"), message_id("a.b", "p"));
    }

    /// What a receiver stores between DATA and the final `.`: the message plus the line break
    /// that lettre's terminator puts before the dot.
    fn as_stored(body: &Body) -> String {
        format!("{}\r\n", String::from_utf8(body.as_ref().to_vec()).unwrap())
    }

    #[test]
    fn a_final_line_break_is_not_doubled() {
        let seven_bit = encode_body("Hello\nBye\n");
        assert_eq!(seven_bit.encoding(), ContentTransferEncoding::SevenBit);
        assert_eq!(as_stored(&seven_bit), "Hello\r\nBye\r\n");
        let crlf = encode_body("Hello\r\n");
        assert_eq!(as_stored(&crlf), "Hello\r\n");
        let no_break = encode_body("Hello");
        assert_eq!(as_stored(&no_break), "Hello\r\n");
        let quoted = encode_body("Dear Jürgen, your appointment is confirmed.\n");
        assert_eq!(quoted.encoding(), ContentTransferEncoding::QuotedPrintable);
        assert_eq!(
            as_stored(&quoted),
            "Dear J=C3=BCrgen, your appointment is confirmed.\r\n"
        );
        let base64 = encode_body("مرحبا\n");
        assert_eq!(base64.encoding(), ContentTransferEncoding::Base64);
    }

    #[test]
    fn html_is_kept_and_everything_else_is_plain_text() {
        assert_eq!(content_type("text/html; charset=utf-8"), ContentType::TEXT_HTML);
        assert_eq!(content_type("TEXT/HTML"), ContentType::TEXT_HTML);
        assert_eq!(content_type("text/plain"), ContentType::TEXT_PLAIN);
        assert_eq!(content_type("application/fhir+json"), ContentType::TEXT_PLAIN);
    }

    #[test]
    fn a_missing_or_bad_recipient_is_permanent() {
        assert!(permanent(composer().compose(&envelope(&[], b"hi"))).contains("To"));
        assert!(permanent(composer().compose(&envelope(&[("To", "  ")], b"hi"))).contains("To"));
        assert!(permanent(composer().compose(&envelope(&[("To", "not an address")], b"hi"))).contains("To"));
        assert!(
            permanent(composer().compose(&envelope(&[("To", "a@b.example")], b"\xff"))).contains("UTF-8")
        );
    }

    #[test]
    fn a_line_break_in_the_subject_cannot_add_a_header() {
        let message = composer()
            .compose(&envelope(
                &[("To", "a@b.example"), ("Subject", "hi\r\nBcc: evil@x.example")],
                b"x",
            ))
            .unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(!text.contains("\r\nBcc:"), "{text}");
    }

    #[test]
    fn several_recipients_are_all_addressed() {
        let message = composer()
            .compose(&envelope(&[("To", "a@b.example, Ann <ann@c.example>")], b"x"))
            .unwrap();
        let recipients: Vec<String> = message.envelope().to().iter().map(|a| a.to_string()).collect();
        assert_eq!(recipients, ["a@b.example", "ann@c.example"]);
    }
}
