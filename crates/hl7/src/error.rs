//! Why a message could not be read or applied, in the terms an HL7 ERR segment needs: an error
//! condition code from table 0357, the ERR-2 location and a sentence for a person.

use std::fmt;

/// Why a message could not be read, with what an ERR segment needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// HL7 table 0357 error condition (ERR-3).
    pub code: ErrorCode,
    /// Where the problem is (ERR-2), when it can be pinned down.
    pub location: Option<ErrLocation>,
    /// Human readable, e.g. `segment 3 has an invalid name "P@D"` (ERR-8).
    pub text: String,
}

impl ParseError {
    pub fn new(code: ErrorCode, location: Option<ErrLocation>, text: impl Into<String>) -> Self {
        ParseError {
            code,
            location,
            text: text.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (HL7 error {} {}",
            self.text,
            self.code.code(),
            self.code.text()
        )?;
        if let Some(location) = &self.location {
            write!(f, " at {location}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for ParseError {}

/// HL7 table 0357 message error condition codes we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    SegmentSequence,
    RequiredFieldMissing,
    DataType,
    TableValueNotFound,
    UnsupportedMessageType,
    UnsupportedEvent,
    UnsupportedVersion,
    UnknownKey,
    DuplicateKey,
    InternalError,
}

impl ErrorCode {
    /// The numeric code that goes in ERR-3.1.
    pub fn code(self) -> u16 {
        match self {
            ErrorCode::SegmentSequence => 100,
            ErrorCode::RequiredFieldMissing => 101,
            ErrorCode::DataType => 102,
            ErrorCode::TableValueNotFound => 103,
            ErrorCode::UnsupportedMessageType => 200,
            ErrorCode::UnsupportedEvent => 201,
            ErrorCode::UnsupportedVersion => 203,
            ErrorCode::UnknownKey => 204,
            ErrorCode::DuplicateKey => 205,
            ErrorCode::InternalError => 207,
        }
    }

    /// The table 0357 description that goes in ERR-3.2.
    pub fn text(self) -> &'static str {
        match self {
            ErrorCode::SegmentSequence => "Segment sequence error",
            ErrorCode::RequiredFieldMissing => "Required field missing",
            ErrorCode::DataType => "Data type error",
            ErrorCode::TableValueNotFound => "Table value not found",
            ErrorCode::UnsupportedMessageType => "Unsupported message type",
            ErrorCode::UnsupportedEvent => "Unsupported event code",
            ErrorCode::UnsupportedVersion => "Unsupported version id",
            ErrorCode::UnknownKey => "Unknown key identifier",
            ErrorCode::DuplicateKey => "Duplicate key identifier",
            ErrorCode::InternalError => "Application internal error",
        }
    }
}

/// ERR-2 error location: segment id, segment sequence (1-based), field, repetition, component,
/// sub-component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrLocation {
    pub segment: String,
    pub sequence: u32,
    pub field: Option<u32>,
    pub repetition: Option<u32>,
    pub component: Option<u32>,
    pub subcomponent: Option<u32>,
}

impl ErrLocation {
    /// A whole segment: `PID^1`.
    pub fn at_segment(segment: &str, sequence: u32) -> Self {
        ErrLocation {
            segment: segment.to_owned(),
            sequence,
            field: None,
            repetition: None,
            component: None,
            subcomponent: None,
        }
    }

    /// One field of a segment: `MSH^1^12`.
    pub fn at_field(segment: &str, sequence: u32, field: u32) -> Self {
        ErrLocation {
            field: Some(field),
            ..ErrLocation::at_segment(segment, sequence)
        }
    }

    /// The ERR-2 components in order, empty where unknown, trailing empties dropped.
    pub fn components(&self) -> Vec<String> {
        let numbers = [
            Some(self.sequence),
            self.field,
            self.repetition,
            self.component,
            self.subcomponent,
        ];
        let mut parts: Vec<String> = std::iter::once(self.segment.clone())
            .chain(
                numbers
                    .iter()
                    .map(|n| n.map(|n| n.to_string()).unwrap_or_default()),
            )
            .collect();
        while parts.last().is_some_and(String::is_empty) {
            parts.pop();
        }
        parts
    }
}

impl fmt::Display for ErrLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.components().join("^"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_drops_trailing_unknown_parts_but_keeps_inner_gaps() {
        let mut location = ErrLocation::at_field("PID", 1, 3);
        assert_eq!(location.to_string(), "PID^1^3");
        location.component = Some(4);
        assert_eq!(location.to_string(), "PID^1^3^^4");
        assert_eq!(ErrLocation::at_segment("MSH", 1).to_string(), "MSH^1");
    }

    #[test]
    fn display_names_code_text_and_location() {
        let error = ParseError::new(
            ErrorCode::DataType,
            Some(ErrLocation::at_field("MSH", 1, 2)),
            "bad delimiters",
        );
        assert_eq!(
            error.to_string(),
            "bad delimiters (HL7 error 102 Data type error at MSH^1^2)"
        );
    }

    #[test]
    fn codes_follow_table_0357() {
        let codes = [
            (ErrorCode::SegmentSequence, 100),
            (ErrorCode::RequiredFieldMissing, 101),
            (ErrorCode::DataType, 102),
            (ErrorCode::TableValueNotFound, 103),
            (ErrorCode::UnsupportedMessageType, 200),
            (ErrorCode::UnsupportedEvent, 201),
            (ErrorCode::UnsupportedVersion, 203),
            (ErrorCode::UnknownKey, 204),
            (ErrorCode::DuplicateKey, 205),
            (ErrorCode::InternalError, 207),
        ];
        for (code, number) in codes {
            assert_eq!(code.code(), number);
            assert!(!code.text().is_empty());
        }
    }
}
