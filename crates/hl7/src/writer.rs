//! Writing messages from plain values: each value escaped exactly once with the message's own
//! delimiters (the builder of `hl7-parser`, the crate we used before our scanner, escapes twice on
//! a round trip).

use crate::delimiters::Delimiters;
use crate::escape::escape;

struct DraftSegment {
    name: String,
    /// Encoded fields by HL7 number: `fields[0]` is field 1.
    fields: Vec<String>,
}

/// Builds a message from unescaped values.
pub struct MessageWriter {
    delimiters: Delimiters,
    segments: Vec<DraftSegment>,
}

impl MessageWriter {
    pub fn new(delims: Delimiters) -> Self {
        MessageWriter {
            delimiters: delims,
            segments: Vec::new(),
        }
    }

    /// Start a segment; then set fields by HL7 number (MSH-1/MSH-2 handled automatically).
    pub fn segment(&mut self, name: &str) -> &mut Self {
        let fields = if name == "MSH" {
            vec![
                self.delimiters.field.to_string(),
                self.delimiters.encoding_characters(),
            ]
        } else {
            Vec::new()
        };
        self.segments.push(DraftSegment {
            name: name.to_owned(),
            fields,
        });
        self
    }

    /// Set field n of the current segment from components (each component escaped; empty trailing
    /// components trimmed). `&["ACK","A01","ACK"]` -> `ACK^A01^ACK`.
    pub fn field(&mut self, n: usize, components: &[&str]) -> &mut Self {
        let encoded = self.encode_repetition(components);
        self.set(n, encoded)
    }

    /// Set field n to several repetitions, each given as its components (escaped and trimmed as
    /// in [`MessageWriter::field`]).
    pub fn repeated_field(&mut self, n: usize, repetitions: &[&[&str]]) -> &mut Self {
        let separator = self.delimiters.repetition.to_string();
        let encoded = repetitions
            .iter()
            .map(|components| self.encode_repetition(components))
            .collect::<Vec<_>>()
            .join(&separator);
        self.set(n, encoded)
    }

    /// Set field n to a raw, already-encoded value (e.g. an ERR-2 location built from parts).
    pub fn raw_field(&mut self, n: usize, raw: &str) -> &mut Self {
        self.set(n, raw.to_owned())
    }

    /// Segments joined by '\r', trailing '\r' after the last.
    pub fn finish(self) -> String {
        let field_separator = self.delimiters.field;
        let mut text = String::new();
        for segment in &self.segments {
            text.push_str(&segment.name);
            let mut fields = segment.fields.iter();
            if segment.name == "MSH" {
                // MSH-1 is the separator that precedes MSH-2; it is not also a value.
                fields.next();
            }
            for field in fields {
                text.push(field_separator);
                text.push_str(field);
            }
            if segment.fields.is_empty() {
                // A bare segment name would not parse back: a name is followed by a separator.
                text.push(field_separator);
            }
            text.push('\r');
        }
        text
    }

    fn encode_repetition(&self, components: &[&str]) -> String {
        let used = components
            .iter()
            .rposition(|component| !component.is_empty())
            .map_or(0, |last| last + 1);
        let separator = self.delimiters.component.to_string();
        components[..used]
            .iter()
            .map(|component| escape(component, &self.delimiters))
            .collect::<Vec<_>>()
            .join(&separator)
    }

    fn set(&mut self, n: usize, encoded: String) -> &mut Self {
        let Some(segment) = self.segments.last_mut() else {
            debug_assert!(false, "MessageWriter: set a field before starting a segment");
            return self;
        };
        // Field 0 does not exist, and MSH-1/MSH-2 are the delimiters the writer was made with.
        let is_delimiter_field = segment.name == "MSH" && n <= 2;
        if n == 0 || is_delimiter_field {
            return self;
        }
        if segment.fields.len() < n {
            segment.fields.resize(n, String::new());
        }
        segment.fields[n - 1] = encoded;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    #[test]
    fn writes_msh_delimiters_and_fields_by_number() {
        let mut writer = MessageWriter::new(Delimiters::default());
        writer
            .segment("MSH")
            .field(3, &["APP"])
            .field(9, &["ACK", "A01", "ACK"])
            .field(10, &["1"]);
        writer.segment("MSA").field(1, &["AA"]).field(2, &["1"]);
        assert_eq!(writer.finish(), "MSH|^~\\&|APP||||||ACK^A01^ACK|1\rMSA|AA|1\r");
    }

    #[test]
    fn escapes_values_and_trims_trailing_empty_components() {
        let mut writer = MessageWriter::new(Delimiters::default());
        writer
            .segment("PID")
            .field(5, &["O|Brien^", "Ann&Co", "", ""])
            .field(2, &["", ""]);
        assert_eq!(writer.finish(), "PID|||||O\\F\\Brien\\S\\^Ann\\T\\Co\r");
    }

    #[test]
    fn repeated_and_raw_fields() {
        let mut writer = MessageWriter::new(Delimiters::default());
        writer
            .segment("PID")
            .repeated_field(3, &[&["1", "", "", "A"], &["2~x"]])
            .raw_field(4, "a&b^c");
        assert_eq!(writer.finish(), "PID|||1^^^A~2\\R\\x|a&b^c\r");
    }

    #[test]
    fn msh_1_and_2_cannot_be_overwritten_and_custom_delimiters_are_used() {
        let delims = Delimiters {
            field: '#',
            component: '!',
            repetition: '*',
            escape: '$',
            subcomponent: '%',
            truncation: Some('@'),
        };
        let mut writer = MessageWriter::new(delims);
        writer
            .segment("MSH")
            .field(1, &["x"])
            .field(2, &["y"])
            .field(3, &["A#B", "C"]);
        writer.segment("EVN");
        assert_eq!(writer.finish(), "MSH#!*$%@#A$F$B!C\rEVN#\r");
    }

    #[test]
    fn output_parses_back_to_the_same_values() {
        let values = ["plain", "a|b", "c^d~e&f\\g", "line\rbreak\nhere", "é日😀"];
        let mut writer = MessageWriter::new(Delimiters::default());
        writer.segment("MSH").field(3, &["APP"]);
        for value in values {
            writer.segment("NTE").field(3, &[value]);
        }
        let message = Message::parse_str(&writer.finish()).unwrap();
        let read: Vec<String> = message
            .segments_named("NTE")
            .map(|segment| segment.field(3).text())
            .collect();
        assert_eq!(read, values);
    }
}
