//! Borrowed views over one segment and its parts (field, repetition, component, subcomponent).
//! Fields come from the ranges found at parse time; the finer parts are split on demand, which is
//! exact because escaped text never contains a raw delimiter.

use std::fmt;

use crate::delimiters::{Delimiters, UNSPLIT};
use crate::escape::unescape;

/// Where a segment or field sits in the message text, as byte offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TextSpan {
    pub start: u32,
    pub end: u32,
}

impl TextSpan {
    pub fn of(self, text: &str) -> &str {
        text.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// A segment. `field(n)` uses HL7 numbering: for MSH, field(1) is the field separator itself,
/// field(2) the encoding characters, field(3) MSH-3 (sending application) ...
#[derive(Clone, Copy)]
pub struct Segment<'a> {
    text: &'a str,
    delimiters: &'a Delimiters,
    line: TextSpan,
    fields: &'a [TextSpan],
}

impl<'a> Segment<'a> {
    pub(crate) fn new(
        text: &'a str,
        delimiters: &'a Delimiters,
        line: TextSpan,
        fields: &'a [TextSpan],
    ) -> Self {
        Segment {
            text,
            delimiters,
            line,
            fields,
        }
    }

    /// The three-character segment id, e.g. `PID`.
    pub fn name(&self) -> &'a str {
        self.raw().get(..3).unwrap_or_default()
    }

    /// Field `n` (1-based); an empty field when absent.
    pub fn field(&self, n: usize) -> Field<'a> {
        let raw = n
            .checked_sub(1)
            .and_then(|index| self.fields.get(index))
            .map(|span| span.of(self.text))
            .unwrap_or_default();
        let is_msh_delimiter_field = (n == 1 || n == 2) && self.name() == "MSH";
        let delimiters = if is_msh_delimiter_field {
            &UNSPLIT
        } else {
            self.delimiters
        };
        Field { raw, delimiters }
    }

    /// The number of the last field present.
    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// The segment as written, without its terminator.
    pub fn raw(&self) -> &'a str {
        self.line.of(self.text)
    }
}

impl fmt::Debug for Segment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Segment").field(&self.raw()).finish()
    }
}

/// Piece `n` (1-based) of `raw` split on `separator`; empty when absent.
fn nth_piece(raw: &str, separator: char, n: usize) -> &str {
    let Some(mut index) = n.checked_sub(1) else {
        return "";
    };
    let separator = match u8::try_from(separator) {
        Ok(byte) if byte.is_ascii() => byte,
        _ => return raw.split(separator).nth(index).unwrap_or_default(),
    };
    // Mappings ask for components of short values many times over: a byte loop beats the
    // general `split` here. An ASCII byte is a whole character, so every cut is a boundary.
    let mut start = 0;
    for (at, &b) in raw.as_bytes().iter().enumerate() {
        if b == separator {
            if index == 0 {
                return raw.get(start..at).unwrap_or_default();
            }
            index -= 1;
            start = at + 1;
        }
    }
    if index == 0 {
        raw.get(start..).unwrap_or_default()
    } else {
        ""
    }
}

/// True when `raw` holds nothing but the given separators.
fn holds_only(raw: &str, separators: &[char]) -> bool {
    raw.chars().all(|c| separators.contains(&c))
}

/// One field, all its repetitions.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    raw: &'a str,
    delimiters: &'a Delimiters,
}

impl<'a> Field<'a> {
    /// The field as written (escaped).
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// True when the field holds no value: absent, empty, or only delimiters (`^^`, `~`).
    pub fn is_empty(&self) -> bool {
        let d = self.delimiters;
        holds_only(self.raw, &[d.repetition, d.component, d.subcomponent])
    }

    /// Every repetition; none for an empty field.
    pub fn repetitions(&self) -> impl Iterator<Item = Repetition<'a>> + use<'a> {
        let delimiters = self.delimiters;
        let pieces = (!self.raw.is_empty()).then(|| self.raw.split(delimiters.repetition));
        pieces
            .into_iter()
            .flatten()
            .map(move |raw| Repetition { raw, delimiters })
    }

    /// The first repetition (empty when the field is).
    pub fn first(&self) -> Repetition<'a> {
        Repetition {
            raw: nth_piece(self.raw, self.delimiters.repetition, 1),
            delimiters: self.delimiters,
        }
    }

    /// Component `n` (1-based) of the first repetition.
    pub fn component(&self, n: usize) -> Component<'a> {
        self.first().component(n)
    }

    /// The whole field, unescaped.
    pub fn text(&self) -> String {
        unescape(self.raw, self.delimiters)
    }
}

/// One repetition of a field.
#[derive(Debug, Clone, Copy)]
pub struct Repetition<'a> {
    raw: &'a str,
    delimiters: &'a Delimiters,
}

impl<'a> Repetition<'a> {
    /// The repetition as written (escaped).
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// True when the repetition holds no value: empty or only delimiters.
    pub fn is_empty(&self) -> bool {
        let d = self.delimiters;
        holds_only(self.raw, &[d.component, d.subcomponent])
    }

    /// Component `n` (1-based); empty when absent.
    pub fn component(&self, n: usize) -> Component<'a> {
        Component {
            raw: nth_piece(self.raw, self.delimiters.component, n),
            delimiters: self.delimiters,
        }
    }

    /// The whole repetition, unescaped.
    pub fn text(&self) -> String {
        unescape(self.raw, self.delimiters)
    }
}

/// One component of a repetition.
#[derive(Debug, Clone, Copy)]
pub struct Component<'a> {
    raw: &'a str,
    delimiters: &'a Delimiters,
}

impl<'a> Component<'a> {
    /// The component as written (escaped).
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// True when the component holds no value: empty or only subcomponent delimiters.
    pub fn is_empty(&self) -> bool {
        holds_only(self.raw, &[self.delimiters.subcomponent])
    }

    /// Subcomponent `n` (1-based) as written (escaped); empty when absent.
    pub fn subcomponent(&self, n: usize) -> &'a str {
        nth_piece(self.raw, self.delimiters.subcomponent, n)
    }

    /// Subcomponent `n` (1-based), unescaped.
    pub fn subcomponent_text(&self, n: usize) -> String {
        unescape(self.subcomponent(n), self.delimiters)
    }

    /// The whole component, unescaped.
    pub fn text(&self) -> String {
        unescape(self.raw, self.delimiters)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::nth_piece;
    use crate::Message;

    proptest! {
        #[test]
        fn nth_piece_is_split_nth(
            raw in "[a-c|^~&\u{e9}\u{65e5}]{0,16}",
            separator in prop::sample::select(vec!['|', '^', '~', '&', '\r', '\u{e9}', '\u{65e5}']),
            n in 0usize..8,
        ) {
            let expected = n.checked_sub(1).and_then(|i| raw.split(separator).nth(i)).unwrap_or_default();
            prop_assert_eq!(nth_piece(&raw, separator, n), expected);
        }
    }

    fn pid() -> Message {
        Message::parse_str("MSH|^~\\&\rPID|1||123^^^HOSP&1.2&ISO^MR~~^^||^^~|\"\"|A\\S\\B^C\r").unwrap()
    }

    #[test]
    fn repetitions_components_and_subcomponents() {
        let message = pid();
        let pid = message.segment("PID").unwrap();
        assert_eq!(pid.name(), "PID");
        assert_eq!(pid.field_count(), 7);
        let identifiers = pid.field(3);
        let repetitions: Vec<&str> = identifiers.repetitions().map(|r| r.raw()).collect();
        assert_eq!(repetitions, ["123^^^HOSP&1.2&ISO^MR", "", "^^"]);
        assert_eq!(identifiers.first().raw(), "123^^^HOSP&1.2&ISO^MR");
        let authority = identifiers.component(4);
        assert_eq!(authority.raw(), "HOSP&1.2&ISO");
        assert_eq!(authority.subcomponent(2), "1.2");
        assert_eq!(authority.subcomponent(4), "");
        assert_eq!(authority.subcomponent(0), "");
        assert_eq!(authority.subcomponent_text(3), "ISO");
        assert_eq!(identifiers.component(5).text(), "MR");
        assert_eq!(identifiers.component(9).raw(), "");
        assert_eq!(identifiers.component(0).raw(), "");
    }

    #[test]
    fn emptiness_ignores_bare_delimiters() {
        let message = pid();
        let pid = message.segment("PID").unwrap();
        assert!(pid.field(2).is_empty());
        assert!(pid.field(4).is_empty());
        assert!(!pid.field(3).is_empty());
        assert!(pid.field(3).repetitions().nth(2).unwrap().is_empty());
        assert!(pid.field(3).component(2).is_empty());
        assert!(pid.field(0).is_empty());
        assert!(pid.field(500).is_empty());
        assert_eq!(pid.field(500).raw(), "");
        assert_eq!(pid.field(2).repetitions().count(), 0);
        assert_eq!(pid.field(2).first().raw(), "");
    }

    #[test]
    fn explicit_null_is_returned_raw() {
        let message = pid();
        let pid = message.segment("PID").unwrap();
        assert_eq!(pid.field(6).text(), "\"\"");
        assert!(!pid.field(6).is_empty());
    }

    #[test]
    fn text_unescapes_at_every_level() {
        let message = pid();
        let pid = message.segment("PID").unwrap();
        assert_eq!(pid.field(7).raw(), "A\\S\\B^C");
        assert_eq!(pid.field(7).text(), "A^B^C");
        assert_eq!(pid.field(7).first().text(), "A^B^C");
        assert_eq!(pid.field(7).component(1).text(), "A^B");
        assert_eq!(pid.raw(), "PID|1||123^^^HOSP&1.2&ISO^MR~~^^||^^~|\"\"|A\\S\\B^C");
        assert_eq!(format!("{pid:?}"), format!("Segment({:?})", pid.raw()));
    }
}
