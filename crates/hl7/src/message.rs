//! One parsed HL7 v2 message: its decoded text plus the segment and field ranges found by one
//! pass of our own scanner, checked so that a message is either read whole or rejected with a
//! reason.

use crate::charset::{Charset, decode};
use crate::delimiters::Delimiters;
use crate::error::{ErrLocation, ErrorCode, ParseError};
use crate::path::ValuePath;
use crate::segment::{Field, Segment, TextSpan};

/// The most delimiters (field, component, repetition and subcomponent separators) a message may
/// hold. Real messages hold a few thousand (a large ORU some tens of thousands). The scanner costs
/// only 8 bytes per field, but everything downstream that walks fields, repetitions and
/// components is linear in this number too, so a hostile frame (1 MB of `|`) is refused before
/// any of that runs; the scanner stops as soon as the count passes the limit, so its field and
/// segment indexes stay within about this many entries whatever the input.
pub const MAX_DELIMITERS: usize = 100_000;

/// Where one segment's line and fields are; `fields` indexes `Message::fields`.
#[derive(Debug, Clone)]
struct SegmentIndex {
    line: TextSpan,
    fields: std::ops::Range<usize>,
}

/// One parsed HL7 v2 message. Owns its text (after decoding). Cheap accessors over ranges.
#[derive(Debug, Clone)]
pub struct Message {
    text: String,
    charset: Charset,
    delimiters: Delimiters,
    segments: Vec<SegmentIndex>,
    /// Every field of every segment, in order: one vector for the message, not one per segment.
    fields: Vec<TextSpan>,
}

impl Message {
    /// decode (charset.rs) + parse. Size is bounded by the caller (MLLP frame cap); this must
    /// still never panic, never hang, never recurse without bound, on ANY bytes.
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        let (text, charset) = decode(bytes);
        Message::parse_owned(text, charset)
    }

    /// Parse text. Segment ends CR, LF or CRLF. Must start with "MSH" (a BOM and blank lines
    /// before it are skipped). Every later segment must be a 3-character name [A-Z0-9] followed
    /// by the field separator; the first one that is not is reported by its number. Trailing
    /// segment terminators are fine; blank lines between segments are dropped.
    pub fn parse_str(text: &str) -> Result<Message, ParseError> {
        Message::parse_owned(text.to_owned(), Charset::Utf8)
    }

    fn parse_owned(text: String, charset: Charset) -> Result<Message, ParseError> {
        let text = tidy_line_breaks(text);
        let delimiters = Delimiters::read_from_msh(&text)?;
        if u32::try_from(text.len()).is_err() {
            return Err(ParseError::new(
                ErrorCode::InternalError,
                None,
                "the message is larger than 4 GiB",
            ));
        }
        let (segments, fields) = Scanner::new(&text, &delimiters).scan()?;
        Ok(Message {
            text,
            charset,
            delimiters,
            segments,
            fields,
        })
    }

    /// The decoded message text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The character set the bytes were decoded with; encode replies the same way.
    pub fn charset(&self) -> Charset {
        self.charset
    }

    pub fn delimiters(&self) -> &Delimiters {
        &self.delimiters
    }

    pub fn segments(&self) -> impl Iterator<Item = Segment<'_>> {
        self.segments.iter().map(|index| self.view(index))
    }

    /// The first segment with that name.
    pub fn segment(&self, name: &str) -> Option<Segment<'_>> {
        self.segments().find(|segment| segment.name() == name)
    }

    pub fn segments_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Segment<'a>> {
        self.segments().filter(move |segment| segment.name() == name)
    }

    fn view<'a>(&'a self, index: &SegmentIndex) -> Segment<'a> {
        let fields = self.fields.get(index.fields.clone()).unwrap_or_default();
        Segment::new(&self.text, &self.delimiters, index.line, fields)
    }

    fn msh_field(&self, n: usize) -> Field<'_> {
        // parse guarantees the first segment is MSH, so the fallback is never used.
        let msh = match self.segments.first() {
            Some(index) => self.view(index),
            None => Segment::new("", &self.delimiters, TextSpan { start: 0, end: 0 }, &[]),
        };
        msh.field(n)
    }

    /// MSH-3, the whole field unescaped.
    pub fn sending_application(&self) -> String {
        self.msh_field(3).text()
    }

    /// MSH-4, the whole field unescaped.
    pub fn sending_facility(&self) -> String {
        self.msh_field(4).text()
    }

    /// MSH-5, the whole field unescaped.
    pub fn receiving_application(&self) -> String {
        self.msh_field(5).text()
    }

    /// MSH-6, the whole field unescaped.
    pub fn receiving_facility(&self) -> String {
        self.msh_field(6).text()
    }

    /// MSH-9.1, e.g. `ADT`.
    pub fn message_type(&self) -> String {
        self.msh_field(9).component(1).text()
    }

    /// MSH-9.2, e.g. `A08`.
    pub fn trigger_event(&self) -> String {
        self.msh_field(9).component(2).text()
    }

    /// MSH-10.
    pub fn control_id(&self) -> String {
        self.msh_field(10).text()
    }

    /// MSH-11.1, e.g. `P`.
    pub fn processing_id(&self) -> String {
        self.msh_field(11).component(1).text()
    }

    /// MSH-12.1, e.g. `2.5`.
    pub fn version(&self) -> String {
        self.msh_field(12).component(1).text()
    }

    /// MSH-15 accept acknowledgment type (`AL`, `NE`, `ER`, `SU` or empty).
    pub fn accept_ack_type(&self) -> String {
        self.msh_field(15).text()
    }

    /// MSH-16 application acknowledgment type (`AL`, `NE`, `ER`, `SU` or empty).
    pub fn app_ack_type(&self) -> String {
        self.msh_field(16).text()
    }

    /// Path lookup for tests and tools: "PID-3", "PID-5.1", "PID-3[2].4.2", "MSH-9.2",
    /// "OBX[2]-5"; the first repetition when none is given; unescaped text; None when absent or
    /// empty.
    pub fn get(&self, path: &str) -> Option<String> {
        let path = ValuePath::parse(path)?;
        let segment = self.segments_named(path.segment).nth(path.occurrence - 1)?;
        let field = segment.field(path.field);
        let repetition = field.repetitions().nth(path.repetition - 1)?;
        let text = match (path.component, path.subcomponent) {
            (None, _) => repetition.text(),
            (Some(component), None) => repetition.component(component).text(),
            (Some(component), Some(subcomponent)) => {
                repetition.component(component).subcomponent_text(subcomponent)
            }
        };
        (!text.is_empty()).then_some(text)
    }
}

/// What a byte means to the scanner. Delimiters and line breaks are ASCII (delimiters are
/// checked when read), so a byte that matches one is a whole character and every offset the
/// scanner records is a character boundary.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ByteClass {
    Text,
    FieldSeparator,
    /// Component, repetition or subcomponent separator: counted, split later on demand.
    Delimiter,
    LineBreak,
}

/// One pass over the text: segment lines, the field ranges of each, and the delimiter count.
struct Scanner<'t> {
    text: &'t str,
    field_separator: u8,
    truncation: bool,
    classes: [ByteClass; 256],
    delimiter_count: usize,
    segments: Vec<SegmentIndex>,
    fields: Vec<TextSpan>,
}

/// The scan stopped early; what to report once every delimiter has been counted.
enum Stop {
    TooManyDelimiters,
    BadSegment(ParseError),
}

impl<'t> Scanner<'t> {
    fn new(text: &'t str, delimiters: &Delimiters) -> Self {
        let mut classes = [ByteClass::Text; 256];
        classes[usize::from(b'\r')] = ByteClass::LineBreak;
        classes[usize::from(b'\n')] = ByteClass::LineBreak;
        for c in [
            delimiters.component,
            delimiters.repetition,
            delimiters.subcomponent,
        ] {
            classes[c as usize & 0xff] = ByteClass::Delimiter;
        }
        let field_separator = delimiters.field as u8;
        classes[usize::from(field_separator)] = ByteClass::FieldSeparator;
        // About one field per 8 bytes and one segment per 80 in real messages; a guess that
        // saves most regrowth without reserving much for short input.
        Scanner {
            text,
            field_separator,
            truncation: delimiters.truncation.is_some(),
            classes,
            delimiter_count: 0,
            segments: Vec::with_capacity(text.len() / 80 + 2),
            fields: Vec::with_capacity((text.len() / 8 + 4).min(MAX_DELIMITERS + 1)),
        }
    }

    /// Call after `Delimiters::read_from_msh` accepted the text, which guarantees that it starts
    /// with `MSH`, the field separator and 4 or 5 distinct ASCII encoding characters.
    fn scan(mut self) -> Result<(Vec<SegmentIndex>, Vec<TextSpan>), ParseError> {
        let stop = match self.scan_segments() {
            Ok(()) if self.delimiter_count <= MAX_DELIMITERS => {
                return Ok((self.segments, self.fields));
            }
            Ok(()) => Stop::TooManyDelimiters,
            Err(stop) => stop,
        };
        // The scan may have stopped early: count every delimiter, since too many of them is
        // reported in preference to a bad segment.
        let classes = &self.classes;
        let delimiter_count = self
            .text
            .bytes()
            .filter(|&b| {
                matches!(
                    classes[usize::from(b)],
                    ByteClass::FieldSeparator | ByteClass::Delimiter
                )
            })
            .count();
        match stop {
            Stop::BadSegment(error) if delimiter_count <= MAX_DELIMITERS => Err(error),
            _ => Err(ParseError::new(
                ErrorCode::InternalError,
                None,
                format!(
                    "the message holds {delimiter_count} delimiters; we read at most \
                     {MAX_DELIMITERS} per message"
                ),
            )),
        }
    }

    fn scan_segments(&mut self) -> Result<(), Stop> {
        let bytes = self.text.as_bytes();
        let content_end = self.text.trim_end_matches(['\r', '\n']).len();
        let mut line_end = self.scan_msh()?;
        loop {
            let start = after_line_break(bytes, line_end);
            if start >= content_end {
                return Ok(());
            }
            let sequence = self.segments.len() + 1;
            let header = bytes.get(start..start + 4).unwrap_or_default();
            let is_segment_start = header.len() == 4
                && header[..3]
                    .iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                && header[3] == self.field_separator;
            if !is_segment_start {
                let line = self.text.get(start..).unwrap_or_default();
                return Err(Stop::BadSegment(segment_header_error(
                    line,
                    sequence,
                    char::from(self.field_separator),
                )));
            }
            if &header[..3] == b"MSH" {
                return Err(Stop::BadSegment(ParseError::new(
                    ErrorCode::SegmentSequence,
                    Some(ErrLocation::at_segment("MSH", sequence as u32)),
                    format!(
                        "segment {sequence} starts a second message; split batches and \
                         concatenated messages before parsing"
                    ),
                )));
            }
            // The separator after the name.
            self.count_field_separator()?;
            let first_field = self.fields.len();
            line_end = self.scan_fields(start + 4)?;
            self.segments.push(SegmentIndex {
                line: span(start, line_end),
                fields: first_field..self.fields.len(),
            });
        }
    }

    /// MSH-1 and MSH-2 are the delimiters themselves, not split; fields from MSH-3 on are
    /// scanned like any other segment's. Returns where the MSH line ends.
    fn scan_msh(&mut self) -> Result<usize, Stop> {
        // `MSH`, MSH-1, then four encoding characters and maybe a truncation character.
        let msh_2_end = 4 + 4 + usize::from(self.truncation);
        // MSH-1 and the component, repetition and subcomponent separators in MSH-2.
        self.delimiter_count += 4;
        self.fields.push(span(3, 4));
        self.fields.push(span(4, msh_2_end));
        let has_msh_3 = self.text.as_bytes().get(msh_2_end) == Some(&self.field_separator);
        let line_end = if has_msh_3 {
            self.delimiter_count += 1;
            self.scan_fields(msh_2_end + 1)?
        } else {
            // read_from_msh has checked that MSH-2 ends the line or the text here.
            msh_2_end
        };
        self.segments.push(SegmentIndex {
            line: span(0, line_end),
            fields: 0..self.fields.len(),
        });
        Ok(line_end)
    }

    /// Every segment starts after a field separator: stopping as soon as there are too many keeps
    /// the segment index within the limit whatever the input.
    fn count_field_separator(&mut self) -> Result<(), Stop> {
        self.delimiter_count += 1;
        if self.delimiter_count > MAX_DELIMITERS {
            return Err(Stop::TooManyDelimiters);
        }
        Ok(())
    }

    /// Records the fields of one line, the first starting at `start`, and counts its delimiters.
    /// Returns where the line ends (its line break, or the end of the text).
    fn scan_fields(&mut self, start: usize) -> Result<usize, Stop> {
        let bytes = self.text.as_bytes();
        let classes = &self.classes;
        let mut delimiter_count = self.delimiter_count;
        let mut field_start = start;
        let mut at = start;
        loop {
            // Most bytes are text: step over a run of them before deciding anything.
            while bytes
                .get(at)
                .is_some_and(|&b| classes[usize::from(b)] == ByteClass::Text)
            {
                at += 1;
            }
            match bytes.get(at).map(|&b| classes[usize::from(b)]) {
                Some(ByteClass::Delimiter) => delimiter_count += 1,
                Some(ByteClass::FieldSeparator) => {
                    delimiter_count += 1;
                    // Keeps the field index within the limit whatever the input.
                    if delimiter_count > MAX_DELIMITERS {
                        return Err(Stop::TooManyDelimiters);
                    }
                    self.fields.push(span(field_start, at));
                    field_start = at + 1;
                }
                // A line break or the end of the text.
                _ => break,
            }
            at += 1;
        }
        self.delimiter_count = delimiter_count;
        self.fields.push(span(field_start, at));
        Ok(at)
    }
}

/// Steps over one segment terminator (CRLF, CR or LF) at `at`, if there is one.
fn after_line_break(bytes: &[u8], at: usize) -> usize {
    match bytes.get(at..at + 2) {
        Some(b"\r\n") => at + 2,
        _ if matches!(bytes.get(at), Some(b'\r' | b'\n')) => at + 1,
        _ => at,
    }
}

fn span(start: usize, end: usize) -> TextSpan {
    // parse_owned has checked that the text fits in u32.
    TextSpan {
        start: start as u32,
        end: end as u32,
    }
}

/// Skips a BOM and blank lines before MSH, and drops blank lines between segments (files and
/// hand-edited messages have them). Untouched, and not copied, when there is nothing to tidy,
/// which is the usual case.
fn tidy_line_breaks(mut text: String) -> String {
    let leading = text.len() - text.trim_start_matches(['\u{feff}', '\r', '\n']).len();
    if leading > 0 {
        text.drain(..leading);
    }
    let content = text.trim_end_matches(['\r', '\n']);
    // Any run of line breaks other than a single CR, LF or CRLF contains one of these pairs.
    let has_blank_line = content.contains("\r\r") || content.contains("\n\n") || content.contains("\n\r");
    if !has_blank_line {
        return text;
    }
    let mut tidy = String::with_capacity(text.len());
    for line in text.split(['\r', '\n']).filter(|line| !line.is_empty()) {
        tidy.push_str(line);
        tidy.push('\r');
    }
    tidy
}

fn is_valid_segment_name(name: &str) -> bool {
    name.len() == 3 && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn invalid_segment_name(name: &str, sequence: usize) -> ParseError {
    ParseError::new(
        ErrorCode::SegmentSequence,
        Some(ErrLocation::at_segment(name, sequence as u32)),
        format!("segment {sequence} has an invalid name {name:?}: names are 3 characters A-Z 0-9"),
    )
}

/// Segment `sequence` (the start of `rest`) does not begin with a name and the field
/// separator: say what is wrong with it.
fn segment_header_error(rest: &str, sequence: usize, field_separator: char) -> ParseError {
    let line = rest.split(['\r', '\n']).next().unwrap_or_default();
    let name: String = line
        .chars()
        .take_while(|&c| c != field_separator)
        .take(3)
        .collect();
    if !is_valid_segment_name(&name) {
        return invalid_segment_name(&name, sequence);
    }
    let found = match line.chars().nth(3) {
        Some(c) => format!(" but by {c:?}"),
        None => " but the line ends".to_owned(),
    };
    ParseError::new(
        ErrorCode::SegmentSequence,
        Some(ErrLocation::at_segment(&name, sequence as u32)),
        format!(
            "segment {sequence} ({name}) must be followed by the field separator \
             {field_separator:?}{found}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADT: &str = "MSH|^~\\&|SENDAPP^sys.oid^ISO|SENDFAC|RECVAPP|RECVFAC|20240101120000||ADT^A08^ADT_A01|CTRL42|P^T|2.5^^VER|||AL|NE\rEVN|A08|20240101120000\rPID|1||123^^^HOSP^MR~456^^^SSA^SS||DOE^JOHN^Q||19700101|M|||1 MAIN ST^^TOWN^ST^12345\rPV1|1|O\r";

    fn location(error: &ParseError) -> String {
        error
            .location
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    #[test]
    fn reads_msh_conveniences() {
        let message = Message::parse_str(ADT).unwrap();
        assert_eq!(message.sending_application(), "SENDAPP^sys.oid^ISO");
        assert_eq!(message.sending_facility(), "SENDFAC");
        assert_eq!(message.receiving_application(), "RECVAPP");
        assert_eq!(message.receiving_facility(), "RECVFAC");
        assert_eq!(message.message_type(), "ADT");
        assert_eq!(message.trigger_event(), "A08");
        assert_eq!(message.control_id(), "CTRL42");
        assert_eq!(message.processing_id(), "P");
        assert_eq!(message.version(), "2.5");
        assert_eq!(message.accept_ack_type(), "AL");
        assert_eq!(message.app_ack_type(), "NE");
        assert_eq!(message.charset(), Charset::Utf8);
        assert_eq!(message.text(), ADT);
    }

    #[test]
    fn absent_msh_values_are_empty_strings() {
        let message = Message::parse_str("MSH|^~\\&").unwrap();
        assert_eq!(message.sending_application(), "");
        assert_eq!(message.trigger_event(), "");
        assert_eq!(message.accept_ack_type(), "");
        assert_eq!(message.segment("MSH").unwrap().field_count(), 2);
    }

    #[test]
    fn msh_fields_follow_hl7_numbering() {
        let message = Message::parse_str(ADT).unwrap();
        let msh = message.segment("MSH").unwrap();
        assert_eq!(msh.field(1).raw(), "|");
        assert_eq!(msh.field(2).raw(), "^~\\&");
        assert_eq!(msh.field(2).text(), "^~\\&");
        assert_eq!(msh.field(2).repetitions().count(), 1);
        assert_eq!(msh.field(2).component(1).raw(), "^~\\&");
        assert_eq!(msh.field(3).component(2).raw(), "sys.oid");
        assert_eq!(msh.field(16).raw(), "NE");
        assert_eq!(msh.field_count(), 16);
        assert_eq!(message.get("MSH-1").unwrap(), "|");
        assert_eq!(message.get("MSH-2").unwrap(), "^~\\&");
    }

    #[test]
    fn truncation_character_is_part_of_msh_2() {
        let message = Message::parse_str("MSH|^~\\&#|APP|FAC\rPID|1\r").unwrap();
        assert_eq!(message.delimiters().truncation, Some('#'));
        let msh = message.segment("MSH").unwrap();
        assert_eq!(msh.field(2).raw(), "^~\\&#");
        assert_eq!(msh.field(3).raw(), "APP");
        assert_eq!(msh.field(4).raw(), "FAC");
        assert_eq!(msh.field_count(), 4);
        let bare = Message::parse_str("MSH|^~\\&#").unwrap();
        assert_eq!(bare.segment("MSH").unwrap().field_count(), 2);
    }

    #[test]
    fn get_follows_paths() {
        let message = Message::parse_str(ADT).unwrap();
        assert_eq!(message.get("PID-3").unwrap(), "123^^^HOSP^MR");
        assert_eq!(message.get("PID-3[2]").unwrap(), "456^^^SSA^SS");
        assert_eq!(message.get("PID-3[2].4").unwrap(), "SSA");
        assert_eq!(message.get("PID-5.2").unwrap(), "JOHN");
        assert_eq!(message.get("MSH-9.2").unwrap(), "A08");
        assert_eq!(message.get("PID-3[3]"), None);
        assert_eq!(message.get("PID-3.2"), None);
        assert_eq!(message.get("PID-4"), None);
        assert_eq!(message.get("PID-99"), None);
        assert_eq!(message.get("ZZZ-1"), None);
        assert_eq!(message.get("PID[2]-1"), None);
        assert_eq!(message.get("not a path"), None);
    }

    #[test]
    fn get_decodes_escapes_and_subcomponents() {
        let text = "MSH|^~\\&\rPID|1||7^^^A&1.2.3&ISO||O\\T\\BRIEN^REN\\XE9\\E\r";
        let message = Message::parse_str(text).unwrap();
        assert_eq!(message.get("PID-3.4.2").unwrap(), "1.2.3");
        assert_eq!(message.get("PID-3.4.4"), None);
        assert_eq!(message.get("PID-5.1").unwrap(), "O&BRIEN");
        assert_eq!(message.get("PID-5.2").unwrap(), "REN\u{e9}E");
    }

    #[test]
    fn second_occurrence_of_a_segment() {
        let text = "MSH|^~\\&\rOBX|1|ST|A||first\rOBX|2|ST|B||second\r";
        let message = Message::parse_str(text).unwrap();
        assert_eq!(message.get("OBX[2]-5").unwrap(), "second");
        assert_eq!(message.segments_named("OBX").count(), 2);
        assert_eq!(message.segment("OBX").unwrap().field(5).raw(), "first");
        let names: Vec<&str> = message.segments().map(|s| s.name()).collect();
        assert_eq!(names, ["MSH", "OBX", "OBX"]);
    }

    #[test]
    fn line_endings_bom_and_blank_lines_are_tolerated() {
        let variants = [
            ADT.replace('\r', "\n"),
            ADT.replace('\r', "\r\n"),
            format!("\u{feff}{ADT}"),
            format!("\r\n\r\n{ADT}\r\n\r\n"),
            ADT.replace('\r', "\r\n\r\n"),
            ADT.replace('\r', "\n\n"),
            ADT.trim_end().to_owned(),
        ];
        for text in variants {
            let message = Message::parse_str(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(message.segments().count(), 4, "{text:?}");
            assert_eq!(message.get("PID-5.1").unwrap(), "DOE");
            assert_eq!(message.segment("PV1").unwrap().raw(), "PV1|1|O");
        }
    }

    #[test]
    fn custom_delimiters_split_fields() {
        let text = "MSH#!*$%#APP#FAC#####ADT!A01#1\rPID#1##7!!!A%B*8#|^~\\&$F$\r";
        let message = Message::parse_str(text).unwrap();
        assert_eq!(message.trigger_event(), "A01");
        assert_eq!(message.get("PID-3[2]").unwrap(), "8");
        assert_eq!(message.get("PID-3.4.2").unwrap(), "B");
        assert_eq!(message.get("PID-4").unwrap(), "|^~\\&#");
    }

    #[test]
    fn invalid_segment_names_are_rejected_with_their_number() {
        for (text, sequence, name) in [
            ("MSH|^~\\&\rEVN|1\rP@D|1\r", 3, "P@D"),
            ("MSH|^~\\&\rpid|1\r", 2, "pid"),
            ("MSH|^~\\&\r\u{c9}VN|1\r", 2, "\u{c9}VN"),
            ("MSH|^~\\&\rPI|1\r", 2, "PI"),
            ("MSH|^~\\&\r |1\r", 2, " "),
            ("MSH|^~\\&\r|1\r", 2, ""),
        ] {
            let error = Message::parse_str(text).unwrap_err();
            assert_eq!(error.code, ErrorCode::SegmentSequence, "{text:?}");
            assert_eq!(location(&error), format!("{name}^{sequence}"), "{text:?}");
            assert!(
                error
                    .text
                    .contains(&format!("segment {sequence} has an invalid name")),
                "{}",
                error.text
            );
        }
    }

    #[test]
    fn a_segment_must_continue_with_the_field_separator() {
        let error = Message::parse_str("MSH|^~\\&\rEVN|1\rPIDX|1\r").unwrap_err();
        assert_eq!(location(&error), "PID^3");
        assert!(error.text.contains("segment 3 (PID)"), "{}", error.text);
        assert!(error.text.contains("'X'"), "{}", error.text);
        let error = Message::parse_str("MSH|^~\\&\rNTE\r").unwrap_err();
        assert!(error.text.contains("the line ends"), "{}", error.text);
    }

    #[test]
    fn a_second_msh_is_reported() {
        let error = Message::parse_str("MSH|^~\\&|A\rPID|1\rMSH|^~\\&|B\r").unwrap_err();
        assert_eq!(location(&error), "MSH^3");
        assert!(error.text.contains("second message"), "{}", error.text);
    }

    #[test]
    fn missing_or_broken_msh_is_rejected() {
        assert_eq!(
            Message::parse_str("PID|1\r").unwrap_err().code,
            ErrorCode::SegmentSequence
        );
        assert_eq!(
            Message::parse_str("").unwrap_err().code,
            ErrorCode::SegmentSequence
        );
        assert_eq!(
            Message::parse_str("MSH|^~").unwrap_err().code,
            ErrorCode::RequiredFieldMissing
        );
        assert_eq!(
            Message::parse_str("MSH|^^\\&|").unwrap_err().code,
            ErrorCode::DataType
        );
    }

    #[test]
    fn bytes_are_decoded_by_declared_charset() {
        let latin1 = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A08|1|P|2.5||||||8859/1\rPID|1||1||REN\xC9^Ren\xE9e\r";
        let message = Message::parse(latin1).unwrap();
        assert_eq!(message.charset(), Charset::Latin1);
        assert_eq!(message.get("PID-5.1").unwrap(), "REN\u{c9}");
        assert_eq!(message.get("PID-5.2").unwrap(), "Ren\u{e9}e");

        let utf8 = "MSH|^~\\&|A|B|C|D|20240101||ADT^A08|1|P|2.5||||||UNICODE UTF-8\rPID|1||1||Ren\u{e9}e\r";
        let message = Message::parse(utf8.as_bytes()).unwrap();
        assert_eq!(message.charset(), Charset::Utf8);
        assert_eq!(message.get("PID-5").unwrap(), "Ren\u{e9}e");
    }

    #[test]
    fn too_many_delimiters_are_refused_before_parsing() {
        // `MSH|^~\&|` already holds five.
        let at_limit = format!("MSH|^~\\&|{}", "^".repeat(MAX_DELIMITERS - 5));
        assert!(Message::parse_str(&at_limit).is_ok());
        let over = format!("MSH|^~\\&|{}", "^".repeat(MAX_DELIMITERS - 4));
        let error = Message::parse_str(&over).unwrap_err();
        assert_eq!(error.code, ErrorCode::InternalError);
        assert!(error.text.contains("100001 delimiters"), "{}", error.text);
    }

    #[test]
    fn the_first_bad_segment_is_reported() {
        for (text, expected) in [
            ("MSH|^~\\&\rpid|1\rP@D|1\r", "pid^2"),
            ("MSH|^~\\&\rEVN|1\rMSH|^~\\&\rNTE\r", "MSH^3"),
            ("MSH|^~\\&\r\u{e9}VN|1\rPIDX|1\r", "\u{e9}VN^2"),
            ("MSH|^~\\&\rNTE\rpid|1\r", "NTE^2"),
        ] {
            let error = Message::parse_str(text).unwrap_err();
            assert_eq!(error.code, ErrorCode::SegmentSequence, "{text:?}");
            assert_eq!(location(&error), expected, "{text:?}");
        }
    }

    #[test]
    fn a_multibyte_name_stops_at_the_field_separator() {
        let error = Message::parse_str("MSH|^~\\&\r\u{b2}1||N\r").unwrap_err();
        assert_eq!(location(&error), "\u{b2}1^2");
    }

    #[test]
    fn empty_fields_and_segments_keep_their_places() {
        let message = Message::parse_str("MSH|^~\\&|\r\nPID|\nNTE|||x\r\n\r\n").unwrap();
        let msh = message.segment("MSH").unwrap();
        assert_eq!(msh.field_count(), 3);
        assert_eq!(msh.field(3).raw(), "");
        assert_eq!(msh.raw(), "MSH|^~\\&|");
        let pid = message.segment("PID").unwrap();
        assert_eq!((pid.raw(), pid.field_count()), ("PID|", 1));
        let nte = message.segment("NTE").unwrap();
        assert_eq!((nte.raw(), nte.field_count()), ("NTE|||x", 3));
        assert_eq!(nte.field(3).raw(), "x");
    }

    #[test]
    fn the_delimiter_limit_counts_every_segment() {
        // `MSH|^~\&|A` holds five; each `NTE|` one more.
        let at_limit = format!("MSH|^~\\&|A\r{}", "NTE|\r".repeat(MAX_DELIMITERS - 5));
        let message = Message::parse_str(&at_limit).unwrap();
        assert_eq!(message.segments().count(), MAX_DELIMITERS - 4);
        let over = format!("MSH|^~\\&|A\r{}", "NTE|\r".repeat(MAX_DELIMITERS - 4));
        let error = Message::parse_str(&over).unwrap_err();
        assert_eq!(error.code, ErrorCode::InternalError);
        assert!(error.text.contains("100001 delimiters"), "{}", error.text);
    }

    #[test]
    fn too_many_delimiters_outranks_a_bad_segment() {
        let text = format!("MSH|^~\\&|A\rP@D|1\rNTE|{}\r", "^".repeat(MAX_DELIMITERS));
        let error = Message::parse_str(&text).unwrap_err();
        assert_eq!(error.code, ErrorCode::InternalError);
        assert!(error.text.contains("100007 delimiters"), "{}", error.text);
        let bad = Message::parse_str("MSH|^~\\&|A\rP@D|1\r").unwrap_err();
        assert_eq!(bad.code, ErrorCode::SegmentSequence);
    }

    #[test]
    fn hex_escapes_decode_inside_fields() {
        let text = "MSH|^~\\&\rNTE|1||Ren\\XE9\\e \\XC3A9\\ \\X0D0A\\end\r";
        let message = Message::parse_str(text).unwrap();
        assert_eq!(message.get("NTE-3").unwrap(), "Ren\u{e9}e \u{e9} \r\nend");
    }
}
