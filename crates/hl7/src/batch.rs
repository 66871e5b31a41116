//! Splitting a file or stream into messages: `[FHS] {[BHS] {MSH...} [BTS]} [FTS]` envelopes and
//! bare concatenated messages, with the counts the envelope declares checked as warnings.

use std::fmt;

use crate::error::{ErrLocation, ErrorCode, ParseError};

/// The messages found in a file or stream, and what was odd about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Each message's text, starting with MSH, segments ended by `\r`.
    pub messages: Vec<String>,
    /// Worth logging, not worth rejecting the file for.
    pub warnings: Vec<BatchWarning>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchWarning {
    /// BTS-1 (messages in the batch) or FTS-1 (batches in the file) differs from what is there.
    CountMismatch {
        segment: &'static str,
        declared: String,
        actual: usize,
    },
    /// A line outside any message (before the first MSH, or after a BTS or FTS) was skipped.
    TextOutsideMessage { line: usize, start: String },
}

impl fmt::Display for BatchWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchWarning::CountMismatch {
                segment,
                declared,
                actual,
            } => {
                let counted = if *segment == "FTS" { "batches" } else { "messages" };
                write!(
                    f,
                    "{segment}-1 declares {declared:?} {counted} but there are {actual}"
                )
            }
            BatchWarning::TextOutsideMessage { line, start } => {
                write!(f, "line {line} is outside any message and was skipped: {start:?}")
            }
        }
    }
}

/// How much of a skipped line a warning quotes.
const WARNING_QUOTE_CHARS: usize = 40;

/// Split a file or stream into messages: FHS/BHS/BTS/FTS envelopes removed, concatenated messages
/// split at each segment starting "MSH"; a UTF-8 BOM stripped; blank lines ignored. Returns the
/// message texts (each one starting with MSH). Error when there is no MSH at all.
pub fn split_batch(text: &str) -> Result<Vec<String>, ParseError> {
    read_batch(text).map(|batch| batch.messages)
}

/// [`split_batch`], plus the warnings: BTS-1 / FTS-1 declared counts that do not match, and
/// lines skipped because they belong to no message.
pub fn read_batch(text: &str) -> Result<Batch, ParseError> {
    let mut reader = BatchReader::default();
    // Segments end with CR, LF or CRLF; this reads CRLF as one break so line numbers are right.
    let lines = text
        .split('\n')
        .flat_map(|line| line.strip_suffix('\r').unwrap_or(line).split('\r'));
    for (index, line) in lines.enumerate() {
        reader.read_line(index + 1, line);
    }
    reader.finish()
}

#[derive(Default)]
struct BatchReader {
    messages: Vec<String>,
    warnings: Vec<BatchWarning>,
    current: Option<String>,
    messages_in_batch: usize,
    batch_headers: usize,
}

impl BatchReader {
    fn read_line(&mut self, number: usize, line: &str) {
        // A BOM may start any concatenated file; captured MLLP traffic keeps its frame bytes
        // (0x0B before a message, 0x1C after it).
        let line = line
            .trim_start_matches(['\u{feff}', '\u{0b}'])
            .trim_end_matches('\u{1c}');
        if line.trim().is_empty() {
            return;
        }
        match line.get(..3) {
            Some("MSH") => {
                self.end_message();
                self.messages_in_batch += 1;
                let mut message = String::with_capacity(256);
                message.push_str(line);
                message.push('\r');
                self.current = Some(message);
            }
            Some("FHS") => self.end_message(),
            Some("BHS") => {
                self.end_message();
                self.batch_headers += 1;
                self.messages_in_batch = 0;
            }
            Some("BTS") => {
                self.end_message();
                self.check_count("BTS", line, self.messages_in_batch);
                self.messages_in_batch = 0;
            }
            Some("FTS") => {
                self.end_message();
                self.check_count("FTS", line, self.batch_headers.max(1));
            }
            _ => match &mut self.current {
                Some(message) => {
                    message.push_str(line);
                    message.push('\r');
                }
                None => self.warnings.push(BatchWarning::TextOutsideMessage {
                    line: number,
                    start: line.chars().take(WARNING_QUOTE_CHARS).collect(),
                }),
            },
        }
    }

    fn end_message(&mut self) {
        if let Some(message) = self.current.take() {
            self.messages.push(message);
        }
    }

    /// Compares field 1 of a trailer segment with the count we saw. An empty field declares
    /// nothing.
    fn check_count(&mut self, segment: &'static str, line: &str, actual: usize) {
        let mut rest = line.get(3..).unwrap_or_default().chars();
        let declared = match rest.next() {
            Some(separator) => rest.as_str().split(separator).next().unwrap_or_default(),
            None => "",
        };
        let declared = declared.trim();
        if declared.is_empty() || declared.parse::<usize>() == Ok(actual) {
            return;
        }
        self.warnings.push(BatchWarning::CountMismatch {
            segment,
            declared: declared.to_owned(),
            actual,
        });
    }

    fn finish(mut self) -> Result<Batch, ParseError> {
        self.end_message();
        if self.messages.is_empty() {
            return Err(ParseError::new(
                ErrorCode::SegmentSequence,
                Some(ErrLocation::at_segment("MSH", 1)),
                "no message found: no line starts with an MSH segment",
            ));
        }
        Ok(Batch {
            messages: self.messages,
            warnings: self.warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "MSH|^~\\&|A|||||||1|P|2.5";
    const B: &str = "MSH|^~\\&|B|||||||2|P|2.5";

    #[test]
    fn splits_concatenated_messages_with_any_line_ending() {
        let text = format!("\u{feff}{A}\r\nPID|1\r\n\r\n{B}\nPID|2\n\n");
        let messages = split_batch(&text).unwrap();
        assert_eq!(messages, [format!("{A}\rPID|1\r"), format!("{B}\rPID|2\r")]);
    }

    #[test]
    fn removes_envelopes_and_checks_declared_counts() {
        let text =
            format!("FHS|^~\\&|X\rBHS|^~\\&|X\r{A}\rPID|1\r{B}\rBTS|2\rBHS|^~\\&\r{A}\rBTS|1\rFTS|2\r");
        let batch = read_batch(&text).unwrap();
        assert_eq!(batch.messages.len(), 3);
        assert!(batch.messages.iter().all(|m| m.starts_with("MSH|")));
        assert_eq!(batch.messages[0], format!("{A}\rPID|1\r"));
        assert!(batch.warnings.is_empty(), "{:?}", batch.warnings);
    }

    #[test]
    fn wrong_counts_are_warnings_not_errors() {
        let text = format!("BHS|^~\\&\r{A}\rBTS|3\rFTS|x\r");
        let batch = read_batch(&text).unwrap();
        assert_eq!(batch.messages.len(), 1);
        assert_eq!(
            batch.warnings,
            [
                BatchWarning::CountMismatch {
                    segment: "BTS",
                    declared: "3".into(),
                    actual: 1
                },
                BatchWarning::CountMismatch {
                    segment: "FTS",
                    declared: "x".into(),
                    actual: 1
                },
            ]
        );
        assert_eq!(
            batch.warnings[0].to_string(),
            "BTS-1 declares \"3\" messages but there are 1"
        );
    }

    #[test]
    fn empty_trailer_counts_declare_nothing() {
        let batch = read_batch(&format!("{A}\rBTS\rBTS|\rFTS||x\r")).unwrap();
        assert!(batch.warnings.is_empty(), "{:?}", batch.warnings);
    }

    #[test]
    fn lines_outside_messages_are_skipped_with_a_warning() {
        let text = format!("junk before\r{A}\rBTS|1\rPID|orphan\r");
        let batch = read_batch(&text).unwrap();
        assert_eq!(batch.messages, [format!("{A}\r")]);
        assert_eq!(
            batch.warnings,
            [
                BatchWarning::TextOutsideMessage {
                    line: 1,
                    start: "junk before".into()
                },
                BatchWarning::TextOutsideMessage {
                    line: 4,
                    start: "PID|orphan".into()
                },
            ]
        );
    }

    #[test]
    fn mllp_frame_bytes_in_files_are_dropped() {
        let text = format!("\u{0b}{A}\rPID|1\r\u{1c}\r\u{0b}{B}\r\u{1c}\r");
        let messages = split_batch(&text).unwrap();
        assert_eq!(messages, [format!("{A}\rPID|1\r"), format!("{B}\r")]);
    }

    #[test]
    fn no_msh_is_an_error() {
        for text in ["", "\r\n", "PID|1\r", "FHS|^~\\&\rFTS|0\r", "\u{feff}"] {
            let error = split_batch(text).unwrap_err();
            assert_eq!(error.code, ErrorCode::SegmentSequence, "{text:?}");
        }
    }
}
