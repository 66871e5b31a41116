//! Reading the receiver's answer: the MSA segment's acknowledgment code, and what the outbox
//! should make of it. Deliberately minimal (this crate knows no HL7 beyond MSH and MSA): the
//! field separator is MSH's fourth byte, segments end at `\r` or `\n`.

use serde::Deserialize;
use tributary_adapter_core::DeliveryError;

/// How much of MSA-3 (the text message) is quoted in an error.
const TEXT_CHARS: usize = 200;

/// What a negative acknowledgment becomes for the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    /// Retried later.
    Transient,
    /// Sent to the dead-letter list.
    Permanent,
}

/// Which acknowledgment codes fail a delivery, and how. AA and CA always succeed; a reply with
/// no MSA segment, or an unknown code, is always Transient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckPolicy {
    /// For AE and CE (application or commit error): Transient by default, since the receiver
    /// often had a passing problem (a lock, a database down).
    pub on_error: Disposition,
    /// For AR and CR (application or commit reject): Permanent by default, since the receiver
    /// refused the message itself.
    pub on_reject: Disposition,
}

impl Default for AckPolicy {
    fn default() -> Self {
        AckPolicy {
            on_error: Disposition::Transient,
            on_reject: Disposition::Permanent,
        }
    }
}

/// The parts of an ACK the policy reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// MSA-1: `AA`, `AE`, `AR`, `CA`, `CE`, `CR` (or whatever the receiver wrote).
    pub code: String,
    /// MSA-3, the receiver's explanation, when present.
    pub text: Option<String>,
}

/// Finds MSH (for the field separator) and MSA in `reply`; `None` when the reply is not an ACK.
pub fn parse_ack(reply: &[u8]) -> Option<Ack> {
    let mut segments = reply
        .split(|&b| b == b'\r' || b == b'\n')
        .map(|segment| segment.trim_ascii_start())
        .filter(|segment| !segment.is_empty());
    let msh = segments.find(|segment| segment.starts_with(b"MSH") && segment.len() > 3)?;
    let separator = msh[3];
    // A separator that is alphanumeric or whitespace would make field splitting meaningless.
    if separator.is_ascii_alphanumeric() || separator.is_ascii_whitespace() {
        return None;
    }
    let msa = segments.find(|segment| segment.starts_with(b"MSA") && segment.get(3) == Some(&separator))?;
    let mut fields = msa.split(|&b| b == separator).skip(1);
    let code = String::from_utf8_lossy(fields.next()?)
        .trim()
        .to_ascii_uppercase();
    if code.is_empty() {
        return None;
    }
    let text = fields
        .nth(1)
        .map(|text| String::from_utf8_lossy(text).trim().to_string())
        .filter(|text| !text.is_empty());
    Some(Ack { code, text })
}

impl AckPolicy {
    /// Ok for AA and CA; otherwise the error the outbox should see.
    pub fn check(&self, reply: &[u8]) -> Result<(), DeliveryError> {
        let Some(ack) = parse_ack(reply) else {
            return Err(DeliveryError::Transient(format!(
                "the reply is not an HL7 ACK (no MSH and MSA segments): {}",
                excerpt(&String::from_utf8_lossy(reply))
            )));
        };
        let because = match &ack.text {
            Some(text) => format!(": {}", excerpt(text)),
            None => String::new(),
        };
        let disposition = match ack.code.as_str() {
            "AA" | "CA" => return Ok(()),
            "AE" | "CE" => self.on_error,
            "AR" | "CR" => self.on_reject,
            other => {
                return Err(DeliveryError::Transient(format!(
                    "the receiver answered the unknown acknowledgment code `{}`{because}",
                    excerpt(other)
                )));
            }
        };
        let message = format!("the receiver answered {}{because}", ack.code);
        Err(match disposition {
            Disposition::Transient => DeliveryError::Transient(message),
            Disposition::Permanent => DeliveryError::Permanent(message),
        })
    }
}

/// At most `TEXT_CHARS` characters on one line.
fn excerpt(text: &str) -> String {
    let mut line: String = text
        .chars()
        .take(TEXT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > TEXT_CHARS {
        line.push('…');
    }
    line.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(code: &str) -> Vec<u8> {
        format!(
            "MSH|^~\\&|RCV|FAC|TRIB|PORTAL|20261125||ACK^A08^ACK|A1|P|2.5\rMSA|{code}|M1|text for {code}\r"
        )
        .into_bytes()
    }

    #[test]
    fn the_code_and_text_are_read_from_msa() {
        assert_eq!(
            parse_ack(&ack("AE")),
            Some(Ack {
                code: "AE".into(),
                text: Some("text for AE".into())
            })
        );
        let bare = b"MSH|^~\\&|R\nMSA|aa\n";
        assert_eq!(
            parse_ack(bare).unwrap(),
            Ack {
                code: "AA".into(),
                text: None
            }
        );
    }

    #[test]
    fn the_separator_comes_from_msh() {
        let reply = b"MSH#^~\\&#R#F\r\nMSA#AR#M1#no such patient|really\r\n";
        assert_eq!(
            parse_ack(reply),
            Some(Ack {
                code: "AR".into(),
                text: Some("no such patient|really".into())
            })
        );
        // An MSA written with another separator than MSH's is not found.
        assert_eq!(parse_ack(b"MSH#^~\\&#R\rMSA|AA|M1\r"), None);
    }

    #[test]
    fn replies_that_are_not_acks_give_none() {
        for reply in [
            &b""[..],
            b"garbage",
            b"MSH|^~\\&|R\rPID|1\r",
            b"MSA|AA|M1\r",
            b"MSH",
            b"MSH|^~\\&|R\rMSA|",
            b"MSH|^~\\&|R\rMSA||M1",
            b"MSHA^~\\&\rMSAAAA",
            b"\xff\xfe\x00MSH",
        ] {
            assert_eq!(parse_ack(reply), None, "{:?}", String::from_utf8_lossy(reply));
        }
    }

    #[test]
    fn the_default_policy_retries_errors_and_dead_letters_rejects() {
        let policy = AckPolicy::default();
        assert!(policy.check(&ack("AA")).is_ok());
        assert!(policy.check(&ack("CA")).is_ok());
        for code in ["AE", "CE"] {
            let error = policy.check(&ack(code)).unwrap_err();
            assert!(
                matches!(&error, DeliveryError::Transient(m) if m.contains(code) && m.contains("text for"))
            );
        }
        for code in ["AR", "CR"] {
            assert!(
                matches!(policy.check(&ack(code)), Err(DeliveryError::Permanent(_))),
                "{code}"
            );
        }
        assert!(matches!(policy.check(&ack("XX")), Err(DeliveryError::Transient(m)) if m.contains("XX")));
        assert!(matches!(policy.check(b"hello"), Err(DeliveryError::Transient(m)) if m.contains("hello")));
    }

    #[test]
    fn the_policy_can_be_turned_around() {
        let policy = AckPolicy {
            on_error: Disposition::Permanent,
            on_reject: Disposition::Transient,
        };
        assert!(matches!(
            policy.check(&ack("AE")),
            Err(DeliveryError::Permanent(_))
        ));
        assert!(matches!(
            policy.check(&ack("CR")),
            Err(DeliveryError::Transient(_))
        ));
    }

    #[test]
    fn a_long_explanation_is_cut() {
        let reply = format!("MSH|^~\\&|R\rMSA|AE|M1|{}\r", "x".repeat(10_000));
        let DeliveryError::Transient(message) = AckPolicy::default().check(reply.as_bytes()).unwrap_err()
        else {
            panic!("expected Transient");
        };
        assert!(message.len() < 300, "{}", message.len());
    }
}
