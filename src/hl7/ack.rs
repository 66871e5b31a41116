//! Acknowledgements: which ACK messages a message asks for (original or enhanced mode, MSH-15 and
//! MSH-16), and building them, including the AR for bytes that never parsed.

use crate::hl7::delimiters::Delimiters;
use crate::hl7::error::ParseError;
use crate::hl7::escape::{escape, unescape};
use crate::hl7::message::Message;
use crate::hl7::writer::MessageWriter;

/// MSA-1 acknowledgment codes (table 0008).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    AA,
    AE,
    AR,
    CA,
    CE,
    CR,
}

impl AckCode {
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::AA => "AA",
            AckCode::AE => "AE",
            AckCode::AR => "AR",
            AckCode::CA => "CA",
            AckCode::CE => "CE",
            AckCode::CR => "CR",
        }
    }
}

/// What applying the message came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// AE/CE-class: understood, could not apply.
    Error(ParseError),
    /// AR/CR-class: unreadable, unsupported type/event/version.
    Rejected(ParseError),
}

impl Outcome {
    fn application_code(&self) -> AckCode {
        match self {
            Outcome::Accepted => AckCode::AA,
            Outcome::Error(_) => AckCode::AE,
            Outcome::Rejected(_) => AckCode::AR,
        }
    }

    fn accept_code(&self) -> AckCode {
        match self {
            Outcome::Accepted => AckCode::CA,
            Outcome::Error(_) => AckCode::CE,
            Outcome::Rejected(_) => AckCode::CR,
        }
    }

    fn error(&self) -> Option<&ParseError> {
        match self {
            Outcome::Accepted => None,
            Outcome::Error(error) | Outcome::Rejected(error) => Some(error),
        }
    }
}

/// Which ACK messages to send back for `original`, honouring MSH-15/MSH-16:
/// original mode (both empty): one application ACK AA/AE/AR.
/// enhanced mode (either valued): the accept ACK CA/CE/CR per MSH-15 (AL always, NE never,
/// ER only on error, SU only on success; empty MSH-15 in enhanced mode means AL), then the
/// application ACK AA/AE/AR per MSH-16 with the same rules (empty MSH-16 = NE). May be empty.
/// Each ACK: MSH swaps sending/receiving app+facility, MSH-7 now (YYYYMMDDHHMMSS+zzzz), MSH-9 `ACK^<event>^ACK`,
/// fresh MSH-10 from `control_ids` (called once per ACK), MSH-11 and MSH-12 echoed (and MSH-18
/// when the original declared one), same delimiters;
/// MSA-1 code, MSA-2 = original MSH-10; on error an ERR segment (v2.5 style: ERR-2 location
/// `SEG^seq^field^rep^comp^sub`, ERR-3 `code^text^HL70357`, ERR-4 severity `E`, ERR-8 user message text).
pub fn acks_for(
    original: &Message,
    outcome: &Outcome,
    control_ids: &mut dyn FnMut() -> String,
) -> Vec<String> {
    let header = AckHeader::from_message(original);
    let accept_type = original.accept_ack_type().trim().to_ascii_uppercase();
    let application_type = original.app_ack_type().trim().to_ascii_uppercase();
    let error = outcome.error();
    if accept_type.is_empty() && application_type.is_empty() {
        return vec![header.write(outcome.application_code(), error, control_ids())];
    }
    let succeeded = error.is_none();
    let mut acks = Vec::new();
    if is_wanted(&accept_type, "AL", succeeded) {
        acks.push(header.write(outcome.accept_code(), error, control_ids()));
    }
    if is_wanted(&application_type, "NE", succeeded) {
        acks.push(header.write(outcome.application_code(), error, control_ids()));
    }
    acks
}

/// Table 0155 condition for sending an acknowledgment. An unknown value is answered as `AL`:
/// a sender that asked for something is better served by a reply than by silence.
fn is_wanted(condition: &str, default_when_empty: &str, succeeded: bool) -> bool {
    let condition = if condition.is_empty() {
        default_when_empty
    } else {
        condition
    };
    match condition {
        "NE" => false,
        "ER" => !succeeded,
        "SU" => succeeded,
        _ => true,
    }
}

/// Salvaged values longer than this are dropped: garbage must not be echoed back at length.
const MAX_SALVAGED_FIELD_LEN: usize = 200;

/// The reply when a message could not be parsed at all: AR with ERR, salvaging MSH-3..MSH-6,
/// MSH-9.2, MSH-10, MSH-11, MSH-12 from the raw text when the MSH line is readable enough (split
/// the first line on its 4th char), defaults otherwise (delimiters |^~\&). Never panics.
pub fn reject_unparsed(raw_text: &str, error: &ParseError, control_id: String) -> String {
    AckHeader::salvage(raw_text).write(AckCode::AR, Some(error), control_id)
}

/// What every ACK to one message shares. Values are encoded with `delimiters`.
struct AckHeader {
    delimiters: Delimiters,
    sending_application: String,
    sending_facility: String,
    receiving_application: String,
    receiving_facility: String,
    /// Plain text (escaped when written).
    event: String,
    control_id: String,
    processing_id: String,
    version: String,
    charset: String,
}

impl AckHeader {
    fn from_message(original: &Message) -> Self {
        let msh = original.segments().next();
        let raw = |n: usize| msh.map(|msh| msh.field(n).raw().to_owned()).unwrap_or_default();
        AckHeader {
            delimiters: *original.delimiters(),
            sending_application: raw(3),
            sending_facility: raw(4),
            receiving_application: raw(5),
            receiving_facility: raw(6),
            event: original.trigger_event(),
            control_id: raw(10),
            processing_id: raw(11),
            version: raw(12),
            charset: raw(18),
        }
    }

    /// Reads MSH fields from the first line of text that did not parse. With valid delimiters the
    /// values are copied as encoded; with broken ones they are re-encoded with `|^~\&`.
    fn salvage(raw_text: &str) -> Self {
        let text = raw_text.trim_start_matches(['\u{feff}', '\r', '\n']);
        let first_line = text.split(['\r', '\n']).next().unwrap_or_default();
        let field_separator = first_line
            .strip_prefix("MSH")
            .and_then(|rest| rest.chars().next())
            .filter(char::is_ascii_punctuation);
        let Some(field_separator) = field_separator else {
            return AckHeader::defaults(Delimiters::default());
        };
        // Pieces: `MSH`, MSH-2, MSH-3, ... so MSH-n is piece n - 1; nothing past MSH-12 is needed.
        let pieces: Vec<&str> = first_line.split(field_separator).take(12).collect();
        let sender_delimiters = Delimiters::read_from_msh(first_line).ok();
        let delimiters = sender_delimiters.unwrap_or_default();
        let raw_piece = |n: usize| {
            let piece = pieces.get(n - 1).copied().unwrap_or_default();
            if piece.len() > MAX_SALVAGED_FIELD_LEN {
                ""
            } else {
                piece
            }
        };
        let value = |n: usize| match sender_delimiters {
            Some(_) => raw_piece(n).to_owned(),
            None => escape(raw_piece(n), &delimiters),
        };
        let event = raw_piece(9)
            .split(delimiters.component)
            .nth(1)
            .map(|event| match sender_delimiters {
                Some(_) => unescape(event, &delimiters),
                None => event.to_owned(),
            })
            .unwrap_or_default();
        let mut header = AckHeader {
            sending_application: value(3),
            sending_facility: value(4),
            receiving_application: value(5),
            receiving_facility: value(6),
            event,
            control_id: value(10),
            processing_id: value(11),
            version: value(12),
            ..AckHeader::defaults(delimiters)
        };
        if header.processing_id.is_empty() {
            header.processing_id = "P".to_owned();
        }
        if header.version.is_empty() {
            header.version = "2.5".to_owned();
        }
        header
    }

    /// Production processing, v2.5 (the version whose ERR layout we write), nothing else known.
    fn defaults(delimiters: Delimiters) -> Self {
        AckHeader {
            delimiters,
            sending_application: String::new(),
            sending_facility: String::new(),
            receiving_application: String::new(),
            receiving_facility: String::new(),
            event: String::new(),
            control_id: String::new(),
            processing_id: "P".to_owned(),
            version: "2.5".to_owned(),
            charset: String::new(),
        }
    }

    fn write(&self, code: AckCode, error: Option<&ParseError>, control_id: String) -> String {
        let mut writer = MessageWriter::new(self.delimiters);
        writer
            .segment("MSH")
            .raw_field(3, &self.receiving_application)
            .raw_field(4, &self.receiving_facility)
            .raw_field(5, &self.sending_application)
            .raw_field(6, &self.sending_facility)
            .field(7, &[&timestamp_now()])
            .field(9, &["ACK", &self.event, "ACK"])
            .field(10, &[&control_id])
            .raw_field(11, &self.processing_id)
            .raw_field(12, &self.version);
        if !self.charset.is_empty() {
            writer.raw_field(18, &self.charset);
        }
        writer
            .segment("MSA")
            .field(1, &[code.as_str()])
            .raw_field(2, &self.control_id);
        if let Some(error) = error {
            writer.segment("ERR");
            if let Some(location) = &error.location {
                let parts = location.components();
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                writer.field(2, &parts);
            }
            writer
                .field(3, &[&error.code.code().to_string(), error.code.text(), "HL70357"])
                .field(4, &["E"])
                .field(8, &[&error.text]);
        }
        writer.finish()
    }
}

/// MSH-7 in the form HL7 DTM wants: local time with its UTC offset.
fn timestamp_now() -> String {
    chrono::Local::now().format("%Y%m%d%H%M%S%z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hl7::error::{ErrLocation, ErrorCode};

    const ADT: &str = "MSH|^~\\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|20240101120000||ADT^A08^ADT_A01|CTRL42|P|2.5\rEVN|A08\rPID|||123^^^HOSP^MR||DOE^JOHN\r";

    fn with_ack_types(accept: &str, application: &str) -> Message {
        let text = ADT.replacen("|P|2.5\r", &format!("|P|2.5|||{accept}|{application}\r"), 1);
        Message::parse_str(&text).unwrap()
    }

    fn numbered_ids() -> impl FnMut() -> String {
        let mut next = 0;
        move || {
            next += 1;
            format!("ACK{next}")
        }
    }

    fn acks(message: &Message, outcome: &Outcome) -> Vec<Message> {
        acks_for(message, outcome, &mut numbered_ids())
            .iter()
            .map(|ack| Message::parse_str(ack).unwrap())
            .collect()
    }

    fn codes(acks: &[Message]) -> Vec<String> {
        acks.iter().map(|ack| ack.get("MSA-1").unwrap()).collect()
    }

    fn error(code: ErrorCode) -> ParseError {
        let mut location = ErrLocation::at_field("PID", 1, 3);
        location.repetition = Some(1);
        location.component = Some(4);
        ParseError::new(code, Some(location), "unknown assigning authority HOSP")
    }

    #[test]
    fn original_mode_sends_one_application_ack() {
        let message = Message::parse_str(ADT).unwrap();
        let outcomes = [
            (Outcome::Accepted, "AA"),
            (Outcome::Error(error(ErrorCode::UnknownKey)), "AE"),
            (Outcome::Rejected(error(ErrorCode::UnsupportedEvent)), "AR"),
        ];
        for (outcome, code) in outcomes {
            assert_eq!(codes(&acks(&message, &outcome)), [code]);
        }
    }

    #[test]
    fn ack_header_swaps_parties_and_echoes_the_original() {
        let message = Message::parse_str(ADT).unwrap();
        let ack = &acks(&message, &Outcome::Accepted)[0];
        assert_eq!(ack.sending_application(), "RECVAPP");
        assert_eq!(ack.sending_facility(), "RECVFAC");
        assert_eq!(ack.receiving_application(), "SENDAPP");
        assert_eq!(ack.receiving_facility(), "SENDFAC");
        assert_eq!(ack.get("MSH-9").unwrap(), "ACK^A08^ACK");
        assert_eq!(ack.control_id(), "ACK1");
        assert_eq!(ack.get("MSA-2").unwrap(), "CTRL42");
        assert_eq!(ack.processing_id(), "P");
        assert_eq!(ack.version(), "2.5");
        assert!(ack.segment("ERR").is_none());
        let timestamp = ack.get("MSH-7").unwrap();
        assert_eq!(timestamp.len(), 19, "{timestamp}");
        assert!(timestamp[14..15] == *"+" || timestamp[14..15] == *"-");
        assert!(
            timestamp
                .bytes()
                .enumerate()
                .all(|(i, b)| i == 14 || b.is_ascii_digit())
        );
    }

    #[test]
    fn error_acks_carry_err_2_err_3_err_4_and_err_8() {
        let message = Message::parse_str(ADT).unwrap();
        let ack = &acks(&message, &Outcome::Error(error(ErrorCode::UnknownKey)))[0];
        assert_eq!(ack.get("MSA-1").unwrap(), "AE");
        let err = ack.segment("ERR").unwrap();
        assert_eq!(err.field(2).raw(), "PID^1^3^1^4");
        assert_eq!(err.field(3).raw(), "204^Unknown key identifier^HL70357");
        assert_eq!(err.field(4).raw(), "E");
        assert_eq!(err.field(8).text(), "unknown assigning authority HOSP");
    }

    #[test]
    fn err_2_is_left_out_without_a_location() {
        let message = Message::parse_str(ADT).unwrap();
        let failure = ParseError::new(ErrorCode::InternalError, None, "disk full");
        let ack = &acks(&message, &Outcome::Error(failure))[0];
        let err = ack.segment("ERR").unwrap();
        assert!(err.field(2).is_empty());
        assert_eq!(err.field(3).component(1).raw(), "207");
    }

    #[test]
    fn enhanced_mode_follows_msh_15_and_msh_16() {
        let failed = Outcome::Error(error(ErrorCode::UnknownKey));
        let rejected = Outcome::Rejected(error(ErrorCode::UnsupportedVersion));
        let cases: [(&str, &str, &Outcome, &[&str]); 20] = [
            ("AL", "AL", &Outcome::Accepted, &["CA", "AA"]),
            ("AL", "AL", &failed, &["CE", "AE"]),
            ("AL", "AL", &rejected, &["CR", "AR"]),
            ("NE", "AL", &Outcome::Accepted, &["AA"]),
            ("NE", "NE", &Outcome::Accepted, &[]),
            ("NE", "NE", &failed, &[]),
            ("ER", "ER", &Outcome::Accepted, &[]),
            ("ER", "ER", &failed, &["CE", "AE"]),
            ("ER", "SU", &rejected, &["CR"]),
            ("SU", "SU", &Outcome::Accepted, &["CA", "AA"]),
            ("SU", "SU", &failed, &[]),
            ("SU", "ER", &failed, &["AE"]),
            // Empty MSH-15 in enhanced mode means AL.
            ("", "AL", &Outcome::Accepted, &["CA", "AA"]),
            ("", "ER", &Outcome::Accepted, &["CA"]),
            ("", "NE", &failed, &["CE"]),
            // Empty MSH-16 means NE.
            ("AL", "", &Outcome::Accepted, &["CA"]),
            ("AL", "", &rejected, &["CR"]),
            ("ER", "", &Outcome::Accepted, &[]),
            ("SU", "", &Outcome::Accepted, &["CA"]),
            // Values are read case-insensitively, unknown values answered.
            ("al", "xx", &Outcome::Accepted, &["CA", "AA"]),
        ];
        for (accept, application, outcome, expected) in cases {
            let message = with_ack_types(accept, application);
            let acks = acks(&message, outcome);
            assert_eq!(codes(&acks), expected, "MSH-15 {accept:?} MSH-16 {application:?}");
            for (i, ack) in acks.iter().enumerate() {
                assert_eq!(ack.get("MSA-2").unwrap(), "CTRL42");
                assert_eq!(ack.control_id(), format!("ACK{}", i + 1));
                assert_eq!(ack.segment("ERR").is_some(), *outcome != Outcome::Accepted);
            }
        }
    }

    #[test]
    fn custom_delimiters_and_charset_are_kept() {
        let text = "MSH#!*$%#SEND!APP#FAC#RECV#RFAC#20240101##ADT!A01#C$F$1#P#2.5######8859/1\rPID#1\r";
        let message = Message::parse_str(text).unwrap();
        let failure = ParseError::new(
            ErrorCode::DataType,
            Some(ErrLocation::at_field("PID", 1, 1)),
            "bad # value",
        );
        let ack = acks_for(&message, &Outcome::Error(failure), &mut numbered_ids()).remove(0);
        assert!(ack.starts_with("MSH#!*$%#RECV#RFAC#SEND!APP#FAC#"), "{ack}");
        assert!(ack.contains("#ACK!A01!ACK#ACK1#P#2.5######8859/1\r"), "{ack}");
        assert!(ack.contains("\rMSA#AE#C$F$1\r"), "{ack}");
        let parsed = Message::parse_str(&ack).unwrap();
        assert_eq!(parsed.get("MSA-2").unwrap(), "C#1");
        assert_eq!(parsed.get("ERR-8").unwrap(), "bad # value");
        assert_eq!(parsed.get("ERR-2").unwrap(), "PID!1!1");
    }

    #[test]
    fn reject_unparsed_salvages_a_readable_msh() {
        let raw = "MSH|^~\\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|20240101||ADT^A04|CTRL7|T|2.3\rP@D|1\r";
        let failure = Message::parse_str(raw).unwrap_err();
        let ack = Message::parse_str(&reject_unparsed(raw, &failure, "R1".to_owned())).unwrap();
        assert_eq!(ack.get("MSA-1").unwrap(), "AR");
        assert_eq!(ack.get("MSA-2").unwrap(), "CTRL7");
        assert_eq!(ack.sending_application(), "RECVAPP");
        assert_eq!(ack.receiving_facility(), "SENDFAC");
        assert_eq!(ack.get("MSH-9").unwrap(), "ACK^A04^ACK");
        assert_eq!((ack.processing_id(), ack.version()), ("T".into(), "2.3".into()));
        assert_eq!(ack.control_id(), "R1");
        assert_eq!(ack.get("ERR-3.1").unwrap(), "100");
        assert_eq!(ack.get("ERR-2").unwrap(), "P@D^2");
    }

    #[test]
    fn reject_unparsed_handles_garbage_and_truncated_msh() {
        let failure = ParseError::new(ErrorCode::SegmentSequence, None, "unreadable");
        let inputs = [
            "",
            "garbage \u{0} bytes",
            "MSH",
            "MSH|",
            "MSH|^~",
            "MSH|^~\\&|APP|FAC",
            "MSHA^~\\&A",
            "\u{feff}\r\nMSH|^~^&|APP|F^A|R~X|RF|1||ADT^A01|99",
        ];
        for raw in inputs {
            let ack = reject_unparsed(raw, &failure, "R9".to_owned());
            let ack = Message::parse_str(&ack).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            assert_eq!(ack.get("MSA-1").unwrap(), "AR", "{raw:?}");
            assert_eq!(*ack.delimiters(), Delimiters::default());
            assert_eq!(ack.version(), "2.5");
            assert_eq!(ack.processing_id(), "P");
        }
        let truncated = reject_unparsed("MSH|^~\\&|APP|FAC", &failure, "R9".to_owned());
        let truncated = Message::parse_str(&truncated).unwrap();
        assert_eq!(truncated.receiving_application(), "APP");
        assert_eq!(truncated.receiving_facility(), "FAC");
        assert_eq!(truncated.get("MSA-2"), None);
        // Broken delimiters: values are salvaged as text and re-encoded with |^~\&.
        let broken = reject_unparsed(inputs[7], &failure, "R9".to_owned());
        let broken = Message::parse_str(&broken).unwrap();
        assert_eq!(broken.receiving_facility(), "F^A");
        assert_eq!(broken.sending_application(), "R~X");
        assert_eq!(broken.get("MSA-2").unwrap(), "99");
        assert_eq!(broken.get("MSH-9").unwrap(), "ACK^A01^ACK");
    }

    #[test]
    fn reject_unparsed_does_not_echo_huge_fields() {
        let raw = format!("MSH|^~\\&|{}|FAC\r", "A".repeat(10_000));
        let failure = ParseError::new(ErrorCode::SegmentSequence, None, "x");
        let ack = reject_unparsed(&raw, &failure, "R".to_owned());
        assert!(ack.len() < 500, "{}", ack.len());
    }
}
