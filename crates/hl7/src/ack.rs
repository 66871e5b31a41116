//! Acknowledgements: which ACKs a message gets (original or enhanced mode, MSH-15 and MSH-16,
//! as the channel allows), and building them in the layout of the version the sender used,
//! including the AR for bytes that never parsed and the batch ACK for an FHS/BHS batch.
//!
//! One rule shapes this module: exactly one reply frame (or none) goes back per inbound frame.
//! A sender that reads one reply per message takes a second frame as the answer to its next
//! message, so an application ACK in enhanced mode is returned as a message of its own (the
//! engine sends it through the channel's return destination), never on the connection.

use crate::delimiters::Delimiters;
use crate::error::ParseError;
use crate::escape::{escape, unescape};
use crate::message::Message;
use crate::writer::MessageWriter;

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

/// How a channel answers, from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckSettings {
    /// Answer in original mode (one AA/AE/AR) whatever MSH-15/MSH-16 say: for senders that ask
    /// for enhanced mode but cannot take it.
    pub original_mode: bool,
    /// Answer on the connection (with the accept ACK) even when MSH-15 asks for no accept ACK
    /// (NE, ER on success, SU on failure): some senders block until a reply comes anyway.
    pub answer_unasked: bool,
    /// MSH-12 of an ACK when the message's own version is unreadable or not an HL7 v2 version.
    pub default_version: String,
}

impl Default for AckSettings {
    fn default() -> Self {
        AckSettings {
            original_mode: false,
            answer_unasked: false,
            default_version: DEFAULT_VERSION.to_owned(),
        }
    }
}

/// The version ACKs declare when nothing better is known.
pub const DEFAULT_VERSION: &str = "2.5";

/// The HL7 v2 versions an ACK can be written in (MSH-12.1).
pub const KNOWN_VERSIONS: [&str; 13] = [
    "2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2",
];

/// What one message gets back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acks {
    /// The one frame that goes back on the connection; None: the sender asked for no reply.
    pub reply: Option<String>,
    /// Enhanced mode, MSH-16 asks for it: the application ACK, a message of its own for the
    /// channel's return destination (never written on the connection).
    pub application: Option<String>,
    /// MSH-15 asked for no accept ACK for this outcome (answered anyway when the channel says so).
    pub reply_unasked: bool,
}

/// The ACKs for `original`:
/// - original mode (MSH-15 and MSH-16 both empty, or the channel forces it): one application
///   ACK AA/AE/AR on the connection;
/// - enhanced mode (either valued): on the connection the accept ACK CA/CE/CR when MSH-15 asks
///   for it (AL always, NE never, ER only on error, SU only on success; empty means AL) or the
///   channel answers unasked; the application ACK AA/AE/AR when MSH-16 asks for it (same rules,
///   empty means NE), except after a CR, which already said everything.
///
/// Each ACK: MSH swaps sending/receiving app+facility, MSH-7 now (YYYYMMDDHHMMSS+zzzz), MSH-9 as
/// the version wants it (see [`VersionLayout`]), a fresh MSH-10 from `control_ids` (called once
/// per ACK), MSH-11 and MSH-12 echoed (MSH-12 the default version when it is not an HL7 v2
/// version), MSH-18 when the original declared one, same delimiters; MSA-1 the code, MSA-2 the
/// original MSH-10; on error an ERR segment in the version's layout.
pub fn acks_for(
    original: &Message,
    outcome: &Outcome,
    settings: &AckSettings,
    control_ids: &mut dyn FnMut() -> String,
) -> Acks {
    let header = AckHeader::from_message(original, &settings.default_version);
    let accept_type = original.accept_ack_type().trim().to_ascii_uppercase();
    let application_type = original.app_ack_type().trim().to_ascii_uppercase();
    let error = outcome.error();
    if settings.original_mode || (accept_type.is_empty() && application_type.is_empty()) {
        return Acks {
            reply: Some(header.write(outcome.application_code(), error, control_ids())),
            ..Acks::default()
        };
    }
    let succeeded = error.is_none();
    let accept_wanted = is_wanted(&accept_type, "AL", succeeded);
    let mut acks = Acks {
        reply_unasked: !accept_wanted,
        ..Acks::default()
    };
    if accept_wanted || settings.answer_unasked {
        acks.reply = Some(header.write(outcome.accept_code(), error, control_ids()));
    }
    let rejected = matches!(outcome, Outcome::Rejected(_));
    if !rejected && is_wanted(&application_type, "NE", succeeded) {
        let mut application = header;
        // The application ACK is a message of its own: the sender's receiver answers it with an
        // accept ACK, and never with an application ACK of its own.
        application.ack_types = Some(("AL", "NE"));
        acks.application = Some(application.write(outcome.application_code(), error, control_ids()));
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
/// the first line on its 4th char), defaults otherwise (delimiters |^~\&, `default_version`).
/// Never panics.
pub fn reject_unparsed(
    raw_text: &str,
    error: &ParseError,
    control_id: String,
    default_version: &str,
) -> String {
    AckHeader::salvage(raw_text, default_version).write(AckCode::AR, Some(error), control_id)
}

/// How an ACK's structure differs between versions. Senders read the layout of their own
/// version: the 2.5 ERR (ERR-2 location, ERR-3 code) is empty to a 2.4 reader, and a 2.3 reader
/// refuses a three-component MSH-9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionLayout {
    /// 2.1 to 2.3: MSH-9 `ACK^<event>`; ERR-1 (segment^sequence^field^code&text&HL70357); the
    /// error text in MSA-3.
    TwoComponentType,
    /// 2.3.1 and 2.4: MSH-9 `ACK^<event>^ACK`; ERR-1 as before 2.3.1; the text in MSA-3.
    Err1,
    /// 2.5 and later: ERR-2 location, ERR-3 code, ERR-4 severity, ERR-8 the text.
    Err2,
}

impl VersionLayout {
    /// The layout of MSH-12.1 `version` (one of [`KNOWN_VERSIONS`]; anything else is 2.5's).
    pub fn of(version: &str) -> VersionLayout {
        match version {
            "2.1" | "2.2" | "2.3" => VersionLayout::TwoComponentType,
            "2.3.1" | "2.4" => VersionLayout::Err1,
            _ => VersionLayout::Err2,
        }
    }
}

/// MSA-3 (text message) is at most 80 characters in the versions that carry it.
const MSA_3_MAX: usize = 80;

/// What every ACK to one message shares. Values are encoded with `delimiters`.
#[derive(Clone)]
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
    /// MSH-12 as written (encoded); its first component is one of [`KNOWN_VERSIONS`].
    version: String,
    charset: String,
    /// MSH-15 and MSH-16 of the ACK itself (only an application ACK sent as its own message).
    ack_types: Option<(&'static str, &'static str)>,
    /// The channel's default version (see `version_or_default`).
    default_version: String,
}

/// MSH-12 as written: the sender's when its first component is a known HL7 v2 version, else the
/// default (a garbage version cannot be echoed in a reply the sender must read).
fn version_or_default(raw: &str, delimiters: &Delimiters, default_version: &str) -> String {
    let first = raw.split(delimiters.component).next().unwrap_or_default().trim();
    if KNOWN_VERSIONS.contains(&first) {
        raw.to_owned()
    } else if KNOWN_VERSIONS.contains(&default_version) {
        default_version.to_owned()
    } else {
        DEFAULT_VERSION.to_owned()
    }
}

impl AckHeader {
    fn from_message(original: &Message, default_version: &str) -> Self {
        let msh = original.segments().next();
        let raw = |n: usize| msh.map(|msh| msh.field(n).raw().to_owned()).unwrap_or_default();
        let delimiters = *original.delimiters();
        AckHeader {
            delimiters,
            sending_application: raw(3),
            sending_facility: raw(4),
            receiving_application: raw(5),
            receiving_facility: raw(6),
            event: original.trigger_event(),
            control_id: raw(10),
            processing_id: raw(11),
            version: version_or_default(&raw(12), &delimiters, default_version),
            charset: raw(18),
            ack_types: None,
            default_version: default_version.to_owned(),
        }
    }

    /// Reads MSH fields from the first line of text that did not parse. With valid delimiters the
    /// values are copied as encoded; with broken ones they are re-encoded with `|^~\&`.
    fn salvage(raw_text: &str, default_version: &str) -> Self {
        let text = raw_text.trim_start_matches(['\u{feff}', '\r', '\n']);
        let first_line = text.split(['\r', '\n']).next().unwrap_or_default();
        let field_separator = first_line
            .strip_prefix("MSH")
            .and_then(|rest| rest.chars().next())
            .filter(char::is_ascii_punctuation);
        let Some(field_separator) = field_separator else {
            return AckHeader::defaults(Delimiters::default(), default_version);
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
            version: version_or_default(&value(12), &delimiters, default_version),
            ..AckHeader::defaults(delimiters, default_version)
        };
        // Processing ID (table 0103) is D, P or T, optionally with a mode: anything else in a
        // message that did not parse is garbage, and a garbage MSH-11 makes the ACK unreadable.
        let processing = header
            .processing_id
            .split(delimiters.component)
            .next()
            .unwrap_or_default();
        if !matches!(processing, "D" | "P" | "T") {
            header.processing_id = "P".to_owned();
        }
        header
    }

    /// Production processing, the default version, nothing else known.
    fn defaults(delimiters: Delimiters, default_version: &str) -> Self {
        AckHeader {
            delimiters,
            sending_application: String::new(),
            sending_facility: String::new(),
            receiving_application: String::new(),
            receiving_facility: String::new(),
            event: String::new(),
            control_id: String::new(),
            processing_id: "P".to_owned(),
            version: version_or_default("", &delimiters, default_version),
            charset: String::new(),
            ack_types: None,
            default_version: default_version.to_owned(),
        }
    }

    fn layout(&self) -> VersionLayout {
        VersionLayout::of(
            self.version
                .split(self.delimiters.component)
                .next()
                .unwrap_or_default(),
        )
    }

    fn write(&self, code: AckCode, error: Option<&ParseError>, control_id: String) -> String {
        // From 2.6 MSH-9.2 is required: without the event (a message too broken to name it) the
        // ACK is written in the default version, whose MSH-9 may be `ACK` alone.
        let version = if self.event.is_empty() && self.layout() == VersionLayout::Err2 {
            version_or_default("", &self.delimiters, &self.default_version)
        } else {
            self.version.clone()
        };
        let header = AckHeader {
            version,
            ..self.clone()
        };
        header.write_as_is(code, error, control_id)
    }

    fn write_as_is(&self, code: AckCode, error: Option<&ParseError>, control_id: String) -> String {
        let layout = self.layout();
        let mut writer = MessageWriter::new(self.delimiters);
        // An unknown event is left out rather than written as an empty component: `ACK^^ACK`
        // reads as an acknowledgment of an event that has no name.
        let message_type: &[&str] = match (layout, self.event.is_empty()) {
            (_, true) => &["ACK"],
            (VersionLayout::TwoComponentType, false) => &["ACK", &self.event],
            (_, false) => &["ACK", &self.event, "ACK"],
        };
        writer
            .segment("MSH")
            .raw_field(3, &self.receiving_application)
            .raw_field(4, &self.receiving_facility)
            .raw_field(5, &self.sending_application)
            .raw_field(6, &self.sending_facility)
            .field(7, &[&timestamp_now()])
            .field(9, message_type)
            .field(10, &[&control_id])
            .raw_field(11, &self.processing_id)
            .raw_field(12, &self.version);
        if let Some((accept, application)) = self.ack_types {
            writer.field(15, &[accept]).field(16, &[application]);
        }
        if !self.charset.is_empty() {
            writer.raw_field(18, &self.charset);
        }
        writer
            .segment("MSA")
            .field(1, &[code.as_str()])
            .raw_field(2, &self.control_id);
        let Some(error) = error else {
            return writer.finish();
        };
        if layout == VersionLayout::Err2 {
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
        } else {
            writer.raw_field(3, &self.msa_text(&error.text));
            writer.segment("ERR").raw_field(1, &self.err_1(error));
        }
        writer.finish()
    }

    /// MSA-3 before 2.5: the error text, escaped, within its 80 characters.
    fn msa_text(&self, text: &str) -> String {
        let mut chars: Vec<char> = text.chars().take(MSA_3_MAX).collect();
        loop {
            let encoded = escape(&chars.iter().collect::<String>(), &self.delimiters);
            if encoded.chars().count() <= MSA_3_MAX {
                return encoded;
            }
            chars.pop();
        }
    }

    /// ERR-1 (ELD) before 2.5: `segment^sequence^field^code&text&HL70357`; the location's
    /// repetition and component have no place in it.
    fn err_1(&self, error: &ParseError) -> String {
        let d = &self.delimiters;
        let (segment, sequence, field) = match &error.location {
            Some(location) => (
                location.segment.clone(),
                location.sequence.to_string(),
                location.field.map(|f| f.to_string()).unwrap_or_default(),
            ),
            None => (String::new(), String::new(), String::new()),
        };
        let code = [
            error.code.code().to_string(),
            escape(error.code.text(), d),
            "HL70357".to_owned(),
        ]
        .join(&d.subcomponent.to_string());
        [escape(&segment, d), sequence, field, code].join(&d.component.to_string())
    }
}

/// The ACK of an FHS/BHS batch: `[FHS] BHS {ACK} BTS [FTS]`, one ACK per message that got one,
/// BTS-1 their count, FTS-1 one batch. `file_header` and `batch_header` are the inbound FHS and
/// BHS lines (either may be absent); their senders and receivers are swapped and their control
/// ids (FHS-11, BHS-11) referenced in FHS-12 and BHS-12. `acks` must use `delimiters`.
pub fn batch_ack(
    file_header: Option<&str>,
    batch_header: Option<&str>,
    acks: &[String],
    control_id: &str,
) -> String {
    let delimiters = file_header
        .or(batch_header)
        .and_then(|line| Delimiters::read_from_msh(&format!("MSH{}", line.get(3..).unwrap_or_default())).ok())
        .unwrap_or_default();
    let now = timestamp_now();
    let header = |name: &str, inbound: Option<&str>| {
        let fields: Vec<&str> = inbound
            .map(|line| line.split(delimiters.field).collect())
            .unwrap_or_default();
        // Pieces: name, -2, -3, ...: field n is piece n - 1.
        let piece = |n: usize| fields.get(n - 1).copied().unwrap_or_default();
        let mut writer = MessageWriter::new(delimiters);
        writer
            .segment("MSH")
            .raw_field(3, piece(5))
            .raw_field(4, piece(6))
            .raw_field(5, piece(3))
            .raw_field(6, piece(4))
            .field(7, &[&now])
            .field(11, &[control_id])
            .raw_field(12, piece(11));
        // The writer knows only MSH as a header; the name is put right afterwards.
        let text = writer.finish();
        format!(
            "{name}{}",
            text.trim_end_matches('\r').get(3..).unwrap_or_default()
        )
    };
    let mut out = String::new();
    if file_header.is_some() {
        out.push_str(&header("FHS", file_header));
        out.push('\r');
    }
    out.push_str(&header("BHS", batch_header));
    out.push('\r');
    for ack in acks {
        out.push_str(ack.trim_end_matches('\r'));
        out.push('\r');
    }
    out.push_str(&format!("BTS{}{}\r", delimiters.field, acks.len()));
    if file_header.is_some() {
        out.push_str(&format!("FTS{}1\r", delimiters.field));
    }
    out
}

/// MSH-7 in the form HL7 DTM wants: local time with its UTC offset.
fn timestamp_now() -> String {
    chrono::Local::now().format("%Y%m%d%H%M%S%z").to_string()
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrLocation, ErrorCode};

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
        let acks = acks_for(message, outcome, &AckSettings::default(), &mut numbered_ids());
        acks.reply
            .iter()
            .chain(acks.application.iter())
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
            // An AR after a CR would say nothing new.
            ("AL", "AL", &rejected, &["CR"]),
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
        let ack = acks_for(
            &message,
            &Outcome::Error(failure),
            &AckSettings::default(),
            &mut numbered_ids(),
        )
        .reply
        .unwrap();
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
        let ack = Message::parse_str(&reject_unparsed(raw, &failure, "R1".to_owned(), "2.5")).unwrap();
        assert_eq!(ack.get("MSA-1").unwrap(), "AR");
        assert_eq!(ack.get("MSA-2").unwrap(), "CTRL7");
        assert_eq!(ack.sending_application(), "RECVAPP");
        assert_eq!(ack.receiving_facility(), "SENDFAC");
        // A 2.3 sender reads MSH-9 in two components and the error in ERR-1.
        assert_eq!(ack.get("MSH-9").unwrap(), "ACK^A04");
        assert_eq!((ack.processing_id(), ack.version()), ("T".into(), "2.3".into()));
        assert_eq!(ack.control_id(), "R1");
        let err = ack.segment("ERR").unwrap();
        assert_eq!(err.field(1).raw(), "P@D^2^^100&Segment sequence error&HL70357");
        assert!(err.field(2).is_empty() && err.field(3).is_empty());
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
            let ack = reject_unparsed(raw, &failure, "R9".to_owned(), "2.5");
            let ack = Message::parse_str(&ack).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            assert_eq!(ack.get("MSA-1").unwrap(), "AR", "{raw:?}");
            assert_eq!(*ack.delimiters(), Delimiters::default());
            assert_eq!(ack.version(), "2.5");
            assert_eq!(ack.processing_id(), "P");
        }
        let truncated = reject_unparsed("MSH|^~\\&|APP|FAC", &failure, "R9".to_owned(), "2.5");
        let truncated = Message::parse_str(&truncated).unwrap();
        assert_eq!(truncated.receiving_application(), "APP");
        assert_eq!(truncated.receiving_facility(), "FAC");
        assert_eq!(truncated.get("MSA-2"), None);
        // Broken delimiters: values are salvaged as text and re-encoded with |^~\&.
        let broken = reject_unparsed(inputs[7], &failure, "R9".to_owned(), "2.5");
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
        let ack = reject_unparsed(&raw, &failure, "R".to_owned(), "2.5");
        assert!(ack.len() < 500, "{}", ack.len());
    }

    fn with_version(version: &str) -> Message {
        Message::parse_str(&ADT.replacen("|P|2.5\r", &format!("|P|{version}\r"), 1)).unwrap()
    }

    fn reply(message: &Message, outcome: &Outcome, settings: &AckSettings) -> Message {
        let acks = acks_for(message, outcome, settings, &mut numbered_ids());
        Message::parse_str(&acks.reply.expect("a reply")).unwrap()
    }

    #[test]
    fn the_ack_layout_follows_the_senders_version() {
        let failed = Outcome::Error(error(ErrorCode::UnknownKey));
        let settings = AckSettings::default();
        for version in ["2.3.1", "2.4"] {
            let ack = reply(&with_version(version), &failed, &settings);
            assert_eq!(ack.get("MSH-9").unwrap(), "ACK^A08^ACK", "{version}");
            assert_eq!(ack.version(), version);
            let err = ack.segment("ERR").unwrap();
            assert_eq!(err.field(1).raw(), "PID^1^3^204&Unknown key identifier&HL70357");
            assert!(err.field(2).is_empty() && err.field(3).is_empty(), "{version}");
            assert_eq!(ack.get("MSA-3").unwrap(), "unknown assigning authority HOSP");
        }
        for version in ["2.2", "2.3"] {
            let ack = reply(&with_version(version), &failed, &settings);
            assert_eq!(ack.get("MSH-9").unwrap(), "ACK^A08", "{version}");
            assert!(
                ack.segment("ERR")
                    .unwrap()
                    .field(1)
                    .raw()
                    .starts_with("PID^1^3^204&")
            );
        }
        for version in ["2.5", "2.5.1", "2.8"] {
            let ack = reply(&with_version(version), &failed, &settings);
            assert_eq!(ack.get("MSH-9").unwrap(), "ACK^A08^ACK", "{version}");
            assert!(ack.segment("ERR").unwrap().field(1).is_empty());
            assert_eq!(ack.get("MSA-3"), None, "MSA-3 is withdrawn after 2.5");
        }
    }

    #[test]
    fn msa_3_stays_within_80_characters() {
        let long = ParseError::new(ErrorCode::InternalError, None, "a|b ".repeat(40));
        let ack = reply(
            &with_version("2.4"),
            &Outcome::Error(long),
            &AckSettings::default(),
        );
        let msa_3 = ack.segment("MSA").unwrap().field(3).raw().to_owned();
        assert!(msa_3.chars().count() <= 80, "{msa_3}");
        assert!(msa_3.starts_with("a\\F\\b"), "{msa_3}");
        assert_eq!(
            ack.segment("ERR").unwrap().field(1).raw(),
            "^^^207&Application internal error&HL70357"
        );
    }

    #[test]
    fn a_garbage_version_is_answered_in_the_default_version() {
        let settings = AckSettings {
            default_version: "2.4".into(),
            ..AckSettings::default()
        };
        let ack = reply(&with_version("3.0"), &Outcome::Accepted, &settings);
        assert_eq!(ack.version(), "2.4");
        let failure = ParseError::new(ErrorCode::SegmentSequence, None, "x");
        let raw = "MSH|^~\\&|A|B|C|D|20240101||ADT^A04|C9|P|banana\rP@D|1\r";
        let ack = Message::parse_str(&reject_unparsed(raw, &failure, "R".into(), "2.4")).unwrap();
        assert_eq!(
            (ack.version().as_str(), ack.get("MSA-2").unwrap().as_str()),
            ("2.4", "C9")
        );
    }

    #[test]
    fn msh_9_is_never_ack_with_an_empty_event() {
        let failure = ParseError::new(ErrorCode::SegmentSequence, None, "x");
        for raw in [
            "garbage",
            "MSH|^~\\&|A|B|C|D|1||ADT|C1|P|2.5\rP@D\r",
            "MSH|^~\\&|A|B|C|D|1|||C1\rP@D\r",
        ] {
            let ack = reject_unparsed(raw, &failure, "R".into(), "2.5");
            assert!(!ack.contains("ACK^^ACK"), "{ack}");
            assert_eq!(Message::parse_str(&ack).unwrap().get("MSH-9").unwrap(), "ACK");
        }
    }

    #[test]
    fn the_channel_can_force_original_mode_or_answer_unasked() {
        let original = AckSettings {
            original_mode: true,
            ..AckSettings::default()
        };
        let acks = acks_for(
            &with_ack_types("AL", "AL"),
            &Outcome::Accepted,
            &original,
            &mut numbered_ids(),
        );
        assert_eq!(acks.application, None);
        assert_eq!(
            Message::parse_str(&acks.reply.unwrap())
                .unwrap()
                .get("MSA-1")
                .unwrap(),
            "AA"
        );

        let quiet = with_ack_types("NE", "NE");
        let acks = acks_for(
            &quiet,
            &Outcome::Accepted,
            &AckSettings::default(),
            &mut numbered_ids(),
        );
        assert_eq!((acks.reply, acks.reply_unasked), (None, true));
        let answering = AckSettings {
            answer_unasked: true,
            ..AckSettings::default()
        };
        let acks = acks_for(&quiet, &Outcome::Accepted, &answering, &mut numbered_ids());
        assert_eq!(
            Message::parse_str(&acks.reply.unwrap())
                .unwrap()
                .get("MSA-1")
                .unwrap(),
            "CA"
        );
        assert!(acks.reply_unasked);
    }

    #[test]
    fn the_application_ack_asks_for_an_accept_ack_only() {
        let acks = acks_for(
            &with_ack_types("AL", "AL"),
            &Outcome::Accepted,
            &AckSettings::default(),
            &mut numbered_ids(),
        );
        let reply = Message::parse_str(&acks.reply.unwrap()).unwrap();
        assert_eq!(
            (reply.accept_ack_type(), reply.app_ack_type()),
            (String::new(), String::new())
        );
        let application = Message::parse_str(&acks.application.unwrap()).unwrap();
        assert_eq!(application.get("MSA-1").unwrap(), "AA");
        assert_eq!(
            (application.accept_ack_type(), application.app_ack_type()),
            ("AL".into(), "NE".into())
        );
    }

    #[test]
    fn a_batch_ack_wraps_one_ack_per_message_with_counts() {
        let acks = vec![
            "MSH|^~\\&|R|F|S|G|1||ACK^A08^ACK|T1|P|2.5\rMSA|AA|C1\r".to_owned(),
            "MSH|^~\\&|R|F|S|G|1||ACK^A08^ACK|T2|P|2.5\rMSA|AA|C2\r".to_owned(),
        ];
        let text = batch_ack(
            Some("FHS|^~\\&|SA|SF|RA|RF|20240101||||F1"),
            Some("BHS|^~\\&|SA|SF|RA|RF|20240101||||B1"),
            &acks,
            "TRB7",
        );
        let lines: Vec<&str> = text.split('\r').filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 8, "{text}");
        assert!(lines[0].starts_with("FHS|^~\\&|RA|RF|SA|SF|"), "{}", lines[0]);
        assert!(lines[0].ends_with("||||TRB7|F1"), "{}", lines[0]);
        assert!(lines[1].starts_with("BHS|^~\\&|RA|RF|SA|SF|") && lines[1].ends_with("|B1"));
        assert_eq!(&lines[6..], ["BTS|2", "FTS|1"]);
        let messages = crate::split_batch(&text).unwrap();
        assert_eq!(messages.len(), 2);
        let no_file = batch_ack(None, Some("BHS|^~\\&|SA|SF|RA|RF"), &acks[..1], "TRB8");
        assert!(
            no_file.starts_with("BHS|") && no_file.ends_with("BTS|1\r"),
            "{no_file}"
        );
    }
}
