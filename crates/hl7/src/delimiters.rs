//! The delimiters a message declares in MSH-1 and MSH-2, and the rules they must follow before we
//! trust them to split anything.

use crate::error::{ErrLocation, ErrorCode, ParseError};

/// The characters that structure a message. Each message declares its own in MSH-1 (field) and
/// MSH-2 (component, repetition, escape, subcomponent, and from v2.7 an optional truncation char).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    pub field: char,
    pub component: char,
    pub repetition: char,
    pub escape: char,
    pub subcomponent: char,
    pub truncation: Option<char>,
}

impl Delimiters {
    /// `|^~\&`, the delimiters nearly every sender uses.
    pub const STANDARD: Delimiters = Delimiters {
        field: '|',
        component: '^',
        repetition: '~',
        escape: '\\',
        subcomponent: '&',
        truncation: None,
    };
}

impl Default for Delimiters {
    /// `|^~\&`, the delimiters nearly every sender uses.
    fn default() -> Self {
        Delimiters::STANDARD
    }
}

/// Views over MSH-1 and MSH-2 use these: a segment terminator never occurs inside a segment, so
/// splitting on it yields the whole value and unescaping finds nothing to decode. That keeps
/// `MSH|^~\&` from being read as a repetition of `^` and `\&`.
pub(crate) static UNSPLIT: Delimiters = Delimiters {
    field: '\r',
    component: '\r',
    repetition: '\r',
    escape: '\r',
    subcomponent: '\r',
    truncation: None,
};

impl Delimiters {
    /// MSH-2 as it is written: `^~\&`, plus the truncation character when there is one.
    pub fn encoding_characters(&self) -> String {
        [self.component, self.repetition, self.escape, self.subcomponent]
            .into_iter()
            .chain(self.truncation)
            .collect()
    }

    /// Reads and checks MSH-1 and MSH-2 from the start of a message. Delimiters must be ASCII
    /// punctuation (so byte offsets found by splitting are always character boundaries, and a
    /// letter or digit can never be mistaken for structure) and must all differ.
    pub(crate) fn read_from_msh(text: &str) -> Result<Delimiters, ParseError> {
        let Some(after_name) = text.strip_prefix("MSH") else {
            let start: String = text.chars().take(3).collect();
            return Err(ParseError::new(
                ErrorCode::SegmentSequence,
                Some(ErrLocation::at_segment("MSH", 1)),
                format!("the message must start with an MSH segment, but it starts with {start:?}"),
            ));
        };
        let mut chars = after_name.chars();
        let field = match chars.next() {
            None | Some('\r' | '\n') => {
                return Err(ParseError::new(
                    ErrorCode::RequiredFieldMissing,
                    Some(ErrLocation::at_field("MSH", 1, 1)),
                    "the MSH segment ends before its field separator (MSH-1)",
                ));
            }
            Some(c) if !c.is_ascii_punctuation() => {
                return Err(ParseError::new(
                    ErrorCode::DataType,
                    Some(ErrLocation::at_field("MSH", 1, 1)),
                    format!("the field separator (MSH-1) is {c:?}; delimiters must be ASCII punctuation"),
                ));
            }
            Some(c) => c,
        };
        let encoding = chars
            .as_str()
            .split([field, '\r', '\n'])
            .next()
            .unwrap_or_default();
        let encoding_error = |code, text: String| {
            Err(ParseError::new(
                code,
                Some(ErrLocation::at_field("MSH", 1, 2)),
                text,
            ))
        };
        let encoding_chars: Vec<char> = encoding.chars().take(6).collect();
        if encoding_chars.len() < 4 {
            return encoding_error(
                ErrorCode::RequiredFieldMissing,
                format!(
                    "MSH-2 {encoding:?} is too short: it must hold the component, repetition, \
                     escape and subcomponent delimiters"
                ),
            );
        }
        if encoding_chars.len() > 5 {
            return encoding_error(
                ErrorCode::DataType,
                format!(
                    "MSH-2 {encoding:?} is too long: it holds 4 delimiters and an optional \
                     truncation character"
                ),
            );
        }
        if let Some(bad) = encoding_chars.iter().find(|c| !c.is_ascii_punctuation()) {
            return encoding_error(
                ErrorCode::DataType,
                format!("MSH-2 {encoding:?} holds {bad:?}; delimiters must be ASCII punctuation"),
            );
        }
        for (i, c) in encoding_chars.iter().enumerate() {
            if encoding_chars[..i].contains(c) {
                return encoding_error(
                    ErrorCode::DataType,
                    format!("MSH-2 {encoding:?} uses {c:?} twice; each delimiter must differ"),
                );
            }
        }
        Ok(Delimiters {
            field,
            component: encoding_chars[0],
            repetition: encoding_chars[1],
            escape: encoding_chars[2],
            subcomponent: encoding_chars[3],
            truncation: encoding_chars.get(4).copied(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Delimiters, ParseError> {
        Delimiters::read_from_msh(text)
    }

    fn location(error: &ParseError) -> String {
        error
            .location
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    #[test]
    fn reads_standard_custom_and_truncation_delimiters() {
        assert_eq!(read("MSH|^~\\&|A").unwrap(), Delimiters::default());
        let custom = read("MSH#!*$%#A").unwrap();
        assert_eq!(
            (custom.field, custom.component, custom.repetition),
            ('#', '!', '*')
        );
        assert_eq!((custom.escape, custom.subcomponent), ('$', '%'));
        assert_eq!(read("MSH|^~\\&#|A").unwrap().truncation, Some('#'));
        assert_eq!(read("MSH|^~\\&").unwrap(), Delimiters::default());
        assert_eq!(read("MSH|^~\\&\rPID|").unwrap(), Delimiters::default());
    }

    #[test]
    fn encoding_characters_write_msh_2_back() {
        assert_eq!(Delimiters::default().encoding_characters(), "^~\\&");
        let v27 = read("MSH|^~\\&#|").unwrap();
        assert_eq!(v27.encoding_characters(), "^~\\&#");
    }

    #[test]
    fn missing_msh_is_a_segment_sequence_error() {
        let error = read("PID|^~\\&|").unwrap_err();
        assert_eq!(error.code, ErrorCode::SegmentSequence);
        assert_eq!(location(&error), "MSH^1");
        assert!(error.text.contains("\"PID\""), "{}", error.text);
    }

    #[test]
    fn short_msh_is_a_missing_field() {
        for text in ["MSH", "MSH\r", "MSH|", "MSH|^~", "MSH|^~\\|A"] {
            let error = read(text).unwrap_err();
            assert_eq!(error.code, ErrorCode::RequiredFieldMissing, "{text:?}");
        }
        assert_eq!(location(&read("MSH").unwrap_err()), "MSH^1^1");
        assert_eq!(location(&read("MSH|^~").unwrap_err()), "MSH^1^2");
    }

    #[test]
    fn alphanumeric_or_repeated_delimiters_are_rejected() {
        let cases = [
            ("MSHA^~\\&A", "MSH^1^1"),
            ("MSH ^~\\& ", "MSH^1^1"),
            ("MSH|^~\\a|", "MSH^1^2"),
            ("MSH|^~^&|", "MSH^1^2"),
            ("MSH|^~\\&^|", "MSH^1^2"),
            ("MSH|^~\\&#!|", "MSH^1^2"),
            ("MSH|^~\\\u{e9}|", "MSH^1^2"),
        ];
        for (text, expected_location) in cases {
            let error = read(text).unwrap_err();
            assert_eq!(error.code, ErrorCode::DataType, "{text:?}");
            assert_eq!(location(&error), expected_location, "{text:?}");
        }
    }
}
