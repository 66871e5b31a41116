//! Code tables: `mappings/tables/<name>.csv`, read once when a mapping loads.
//!
//! Format: a header line `from,to`, then one pair per line. Blank lines and lines starting with
//! `#` are skipped. A field may be quoted (`"a, b"`, with `""` for a quote inside); unquoted
//! fields are trimmed. An empty `to` maps the code to nothing (the lookup is absent). A `from`
//! given twice is an error, so a table never silently means two things.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// One loaded table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pairs: HashMap<String, String, BuildHasherDefault<Fnv>>,
}

/// FNV-1a. Lookups run for every message and their keys are short codes, for which SipHash (the
/// standard map's hash, there to resist keys chosen to collide) costs more than the lookup
/// itself. Nothing a message sends adds a key: a table is fixed once loaded, so colliding keys
/// could at worst make a lookup walk the table's few entries.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A problem in a table file, with its line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    pub line: usize,
    pub message: String,
}

impl Table {
    /// The `to` of `from`; `None` when the table does not have it (or maps it to nothing).
    pub fn get(&self, from: &str) -> Option<&str> {
        self.pairs
            .get(from)
            .map(String::as_str)
            .filter(|to| !to.is_empty())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Reads a table file's text.
    pub fn parse(text: &str) -> Result<Table, TableError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut pairs = HashMap::default();
        let mut first_seen: HashMap<String, usize> = HashMap::new();
        let mut header_seen = false;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let error = |message: String| TableError { line, message };
            let fields = split_line(raw).map_err(error)?;
            if fields.len() != 2 {
                return Err(error(format!(
                    "expected 2 fields (from,to), found {}; quote a value that holds a comma",
                    fields.len()
                )));
            }
            if !header_seen {
                if !(fields[0].eq_ignore_ascii_case("from") && fields[1].eq_ignore_ascii_case("to")) {
                    return Err(error(format!(
                        "the first line must be the header `from,to`, not `{}`",
                        raw.trim()
                    )));
                }
                header_seen = true;
                continue;
            }
            let [from, to]: [String; 2] = fields.try_into().map_err(|_| error("two fields".into()))?;
            if from.is_empty() {
                return Err(error("empty `from` value".into()));
            }
            if let Some(first) = first_seen.get(&from) {
                return Err(error(format!(
                    "`from` value {from:?} is given twice (first on line {first})"
                )));
            }
            first_seen.insert(from.clone(), line);
            pairs.insert(from, to);
        }
        if !header_seen {
            return Err(TableError {
                line: 1,
                message: "the table is empty: it needs at least the header line `from,to`".into(),
            });
        }
        Ok(Table { pairs })
    }
}

/// Splits one CSV line into its fields.
fn split_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => {
                        return Err("unclosed quote: a field that starts with `\"` must end with one".into());
                    }
                }
            }
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => return Err(format!("unexpected {c:?} after a quoted field; expected `,`")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim().to_owned());
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => {
                        return Err(
                            "a quote inside an unquoted field; quote the whole field and double the quote"
                                .into(),
                        );
                    }
                    Some(c) => field.push(c),
                }
            }
            fields.push(field.trim().to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Writes one field so that `split_line` reads it back unchanged.
    fn quote_field(field: &str) -> String {
        let needs_quotes = field.is_empty() || field.contains([',', '"', '#']) || field.trim() != field;
        if needs_quotes {
            format!("\"{}\"", field.replace('"', "\"\""))
        } else {
            field.to_owned()
        }
    }

    #[test]
    fn reads_pairs_comments_quotes_and_blank_lines() {
        let table = Table::parse(
            "\u{feff}# HL7 table 0001\r\nfrom,to\r\n\r\nM,male\n F , female \n\"O,x\",\"other \"\"kind\"\"\"\n  # indented comment\nU,\n\"#\",hash\n",
        )
        .unwrap();
        assert_eq!(table.get("M"), Some("male"));
        assert_eq!(table.get("F"), Some("female"));
        assert_eq!(table.get("O,x"), Some("other \"kind\""));
        assert_eq!(table.get("U"), None);
        assert_eq!(table.get("#"), Some("hash"));
        assert_eq!(table.get("X"), None);
        assert_eq!(table.len(), 5);
    }

    #[test]
    fn errors_name_the_line() {
        for (text, line, why) in [
            ("", 1, "empty"),
            ("# only a comment\n", 1, "empty"),
            ("code,display\nM,male\n", 1, "header"),
            ("from,to\nM,male\nF\n", 3, "found 1"),
            ("from,to\nM,male,extra\n", 2, "found 3"),
            (
                "from,to\nM,male\nF,female\nM,man\n",
                4,
                "given twice (first on line 2)",
            ),
            ("from,to\n\"M,male\n", 2, "unclosed quote"),
            ("from,to\n\"M\"x,male\n", 2, "after a quoted field"),
            ("from,to\nM\"x,male\n", 2, "quote inside"),
            ("from,to\n,male\n", 2, "empty `from`"),
        ] {
            let e = Table::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e:?}");
            assert!(e.message.contains(why), "{text:?}: {e:?}");
        }
    }

    proptest! {
        #[test]
        fn any_text_is_a_table_or_an_error_on_one_of_its_lines(text in "(?s).{0,300}") {
            match Table::parse(&text) {
                Ok(_) => {}
                Err(e) => {
                    let lines = text.lines().count().max(1);
                    prop_assert!(e.line >= 1 && e.line <= lines, "{:?}", e);
                }
            }
        }

        #[test]
        fn csv_like_text_never_panics(text in "[a-z,\" #\r\n]{0,200}") {
            let _ = Table::parse(&format!("from,to\n{text}"));
        }

        #[test]
        fn written_pairs_read_back(pairs in prop::collection::btree_map("[^\r\n]{1,12}", "[^\r\n]{0,12}", 0..20)) {
            let mut text = String::from("from,to\n");
            for (from, to) in &pairs {
                text.push_str(&format!("{},{}\n", quote_field(from), quote_field(to)));
            }
            let table = Table::parse(&text).unwrap();
            prop_assert_eq!(table.len(), pairs.len());
            for (from, to) in &pairs {
                let expected = (!to.is_empty()).then_some(to.as_str());
                prop_assert_eq!(table.get(from), expected);
            }
        }
    }
}
