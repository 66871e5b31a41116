//! Paths into HL7 v2 messages (read and written) and into FHIR resources (written), parsed once
//! when a mapping is compiled. FHIRPath source paths are in `fhirpath`.
//!
//! HL7 v2 numbers are 1-based as in the standard: `PID-3[2].4.1` is segment PID, field 3,
//! repetition 2, component 4, subcomponent 1; `OBX[2]-5` is field 5 of the second OBX. FHIR
//! indexes are 0-based as in FHIRPath: `name[0].given[]`.

use std::fmt;

/// The largest number a path may hold (a field, repetition, component, index...): real messages
/// stay far below, and a writer must not be asked to fill millions of empty places.
pub const MAX_NUMBER: usize = 9_999;

/// Which of several: one (1-based), or every one (`[*]`, only as a `for` source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sel {
    Nth(usize),
    All,
}

/// Where a value is read in a message: `SEG[occ]-F[rep].C.S`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hl7Path {
    pub segment: String,
    pub occurrence: Sel,
    pub field: FieldPath,
}

/// The part after the segment: `F[rep].C.S`. Also a segment item's path (`o-5.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldPath {
    pub field: usize,
    pub repetition: Sel,
    pub component: ComponentPath,
}

/// `.C.S` within a repetition; a repetition item's path (`cx.4.2`). Both `None`: the whole
/// repetition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ComponentPath {
    pub component: Option<usize>,
    pub subcomponent: Option<usize>,
}

impl Hl7Path {
    /// True when the path selects several things (`[*]`).
    pub fn is_multiple(&self) -> bool {
        self.occurrence == Sel::All || self.field.repetition == Sel::All
    }
}

impl fmt::Display for Sel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sel::Nth(n) => write!(f, "[{n}]"),
            Sel::All => f.write_str("[*]"),
        }
    }
}

impl fmt::Display for ComponentPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = self.component {
            write!(f, ".{c}")?;
        }
        if let Some(s) = self.subcomponent {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.field)?;
        if self.repetition != Sel::Nth(1) {
            write!(f, "{}", self.repetition)?;
        }
        write!(f, "{}", self.component)
    }
}

impl fmt::Display for Hl7Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segment)?;
        if self.occurrence != Sel::Nth(1) {
            write!(f, "{}", self.occurrence)?;
        }
        write!(f, "-{}", self.field)
    }
}

/// True for a word that starts like an HL7 v2 path: a segment name then `-` or `[`.
pub fn looks_like_hl7_path(word: &str) -> bool {
    let bytes = word.as_bytes();
    bytes.len() > 4 && is_segment_name(&word[..3]) && matches!(bytes[3], b'-' | b'[')
}

/// `PID`, `ZPI`, `OBX`: an uppercase letter, then two uppercase letters or digits.
pub fn is_segment_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 3
        && b[0].is_ascii_uppercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// A number from 1 to `MAX_NUMBER` at the start of `text`, and the rest.
fn number(text: &str) -> Result<(usize, &str), String> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("expected a number at `{text}`"));
    }
    match text[..digits].parse::<usize>() {
        Ok(n) if (1..=MAX_NUMBER).contains(&n) => Ok((n, &text[digits..])),
        _ => Err(format!(
            "`{}` is out of range: numbers go from 1 to {MAX_NUMBER}",
            &text[..digits]
        )),
    }
}

/// An optional `[n]` or `[*]` (`[*]` only when `star`); `Nth(1)` when absent.
fn selector(text: &str, star: bool) -> Result<(Sel, &str), String> {
    let Some(inner) = text.strip_prefix('[') else {
        return Ok((Sel::Nth(1), text));
    };
    if star && let Some(rest) = inner.strip_prefix("*]") {
        return Ok((Sel::All, rest));
    }
    let (n, rest) = number(inner)?;
    let rest = rest
        .strip_prefix(']')
        .ok_or_else(|| format!("expected `]` at `{rest}`"))?;
    Ok((Sel::Nth(n), rest))
}

/// An optional `.n`.
fn dotted(text: &str) -> Result<(Option<usize>, &str), String> {
    match text.strip_prefix('.') {
        Some(inner) => {
            let (n, rest) = number(inner)?;
            Ok((Some(n), rest))
        }
        None => Ok((None, text)),
    }
}

/// `SEG[occ]-F[rep].C.S` as read from a source message.
pub fn parse_hl7_path(text: &str) -> Result<Hl7Path, String> {
    let segment = text.get(..3).filter(|s| is_segment_name(s)).ok_or_else(|| {
        format!("`{text}` is not an HL7 v2 path: it must start with a segment name like `PID`")
    })?;
    let (occurrence, rest) = selector(&text[3..], true)?;
    let rest = rest
        .strip_prefix('-')
        .ok_or_else(|| format!("`{text}`: expected `-` and a field number after the segment"))?;
    Ok(Hl7Path {
        segment: segment.to_owned(),
        occurrence,
        field: parse_field_path(rest)?,
    })
}

/// `F[rep].C.S`.
pub fn parse_field_path(text: &str) -> Result<FieldPath, String> {
    let (field, rest) = number(text)?;
    let (repetition, rest) = selector(rest, true)?;
    Ok(FieldPath {
        field,
        repetition,
        component: parse_component_path(rest)?,
    })
}

/// `.C.S`, `.C` or nothing.
pub fn parse_component_path(text: &str) -> Result<ComponentPath, String> {
    let (component, rest) = dotted(text)?;
    let (subcomponent, rest) = dotted(rest)?;
    if !rest.is_empty() {
        return Err(format!("unexpected `{rest}` at the end of the path"));
    }
    Ok(ComponentPath {
        component,
        subcomponent,
    })
}

/// An index in a written path: `[n]` (that one, made if missing) or `[]` (a new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TIdx {
    At(usize),
    Append,
}

/// Where a value is written in an HL7 v2 message. Absolute targets name the segment; inside a
/// `for ... -> OBX[]` block a target is relative to the new segment (`5`, `3[2].1`), inside
/// `-> PID-3[]` to the new repetition (`1`, `4.2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hl7Target {
    /// Segment name and occurrence (1-based); `None` in a relative target.
    pub segment: Option<(String, TIdx)>,
    /// Field number and repetition (1-based); `None` for a segment or a component-relative path.
    pub field: Option<(usize, TIdx)>,
    pub component: Option<usize>,
    pub subcomponent: Option<usize>,
}

/// An optional `[n]` or `[]`; `At(1)` when absent.
fn target_index(text: &str) -> Result<(TIdx, &str), String> {
    let Some(inner) = text.strip_prefix('[') else {
        return Ok((TIdx::At(1), text));
    };
    if let Some(rest) = inner.strip_prefix(']') {
        return Ok((TIdx::Append, rest));
    }
    let (n, rest) = number(inner)?;
    let rest = rest
        .strip_prefix(']')
        .ok_or_else(|| format!("expected `]` at `{rest}`"))?;
    Ok((TIdx::At(n), rest))
}

/// `SEG[occ|]` optionally followed by `-F[rep|].C.S`.
pub fn parse_hl7_target(text: &str) -> Result<Hl7Target, String> {
    let segment = text.get(..3).filter(|s| is_segment_name(s)).ok_or_else(|| {
        format!("`{text}` is not an HL7 v2 target: it must start with a segment name like `PID`")
    })?;
    let (occurrence, rest) = target_index(&text[3..])?;
    if rest.is_empty() {
        return Ok(Hl7Target {
            segment: Some((segment.to_owned(), occurrence)),
            field: None,
            component: None,
            subcomponent: None,
        });
    }
    let rest = rest
        .strip_prefix('-')
        .ok_or_else(|| format!("`{text}`: expected `-` and a field number after the segment"))?;
    let mut target = parse_relative_field_target(rest)?;
    target.segment = Some((segment.to_owned(), occurrence));
    Ok(target)
}

/// `F[rep|].C.S`, relative to a segment.
pub fn parse_relative_field_target(text: &str) -> Result<Hl7Target, String> {
    let (field, rest) = number(text)?;
    let (repetition, rest) = target_index(rest)?;
    let components = parse_component_path(rest)?;
    Ok(Hl7Target {
        segment: None,
        field: Some((field, repetition)),
        component: components.component,
        subcomponent: components.subcomponent,
    })
}

/// `C.S`, relative to a repetition.
pub fn parse_relative_component_target(text: &str) -> Result<Hl7Target, String> {
    let (component, rest) = number(text)?;
    let (subcomponent, rest) = dotted(rest)?;
    if !rest.is_empty() {
        return Err(format!("unexpected `{rest}` at the end of the target"));
    }
    Ok(Hl7Target {
        segment: None,
        field: None,
        component: Some(component),
        subcomponent,
    })
}

/// One step of a FHIR target: a member name and maybe an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub key: String,
    pub index: Index,
}

/// `name` (no index), `name[]` (append) or `name[n]` (0-based, made if missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    None,
    Append,
    At(usize),
}

/// `name[0].given[]`, `@previous[]`: members separated by dots, each with an optional index.
/// `@` may only start the first member (the metadata targets).
pub fn parse_fhir_target(text: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for (i, part) in text.split('.').enumerate() {
        let (key, index) = match part.find('[') {
            Some(open) => {
                let inner = &part[open + 1..];
                let index = if inner == "]" {
                    Index::Append
                } else {
                    let n = inner
                        .strip_suffix(']')
                        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|n| n.parse::<usize>().ok())
                        .filter(|n| *n <= MAX_NUMBER)
                        .ok_or_else(|| {
                            format!("`{part}` in `{text}`: an index is `[]` or `[n]` with n from 0 to {MAX_NUMBER}")
                        })?;
                    Index::At(n)
                };
                (&part[..open], index)
            }
            None => (part, Index::None),
        };
        let name = if i == 0 {
            key.strip_prefix('@').unwrap_or(key)
        } else {
            key
        };
        let is_member = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !is_member {
            return Err(format!(
                "`{text}` is not a FHIR target path: `{part}` should be an element name like `name`, \
                 `given[]` or `coding[0]`"
            ));
        }
        steps.push(Step {
            key: key.to_owned(),
            index,
        });
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hl7_source_paths() {
        let p = parse_hl7_path("PID-3[2].4.1").unwrap();
        assert_eq!(p.segment, "PID");
        assert_eq!(p.occurrence, Sel::Nth(1));
        assert_eq!(
            p.field,
            FieldPath {
                field: 3,
                repetition: Sel::Nth(2),
                component: ComponentPath {
                    component: Some(4),
                    subcomponent: Some(1)
                }
            }
        );
        assert_eq!(p.to_string(), "PID-3[2].4.1");
        let p = parse_hl7_path("OBX[2]-5").unwrap();
        assert_eq!((p.occurrence, p.field.field), (Sel::Nth(2), 5));
        assert_eq!(p.to_string(), "OBX[2]-5");
        let p = parse_hl7_path("PID-3[*]").unwrap();
        assert!(p.is_multiple());
        assert!(parse_hl7_path("OBX[*]-5").unwrap().is_multiple());
        assert_eq!(parse_hl7_path("MSH-9.2").unwrap().to_string(), "MSH-9.2");
        assert_eq!(parse_hl7_path("ZP1-1").unwrap().segment, "ZP1");
    }

    #[test]
    fn bad_hl7_paths_say_why() {
        for (path, why) in [
            ("pid-3", "segment name"),
            ("PID3", "expected `-`"),
            ("PID-", "expected a number"),
            ("PID-0", "out of range"),
            ("PID-10000", "out of range"),
            ("PID-3[0]", "out of range"),
            ("PID-3[2", "expected `]`"),
            ("PID-3.", "expected a number"),
            ("PID-3.1.2.3", "unexpected `.3`"),
            ("PID-3x", "unexpected `x`"),
            ("PID-3[x]", "expected a number"),
            ("PI", "segment name"),
            ("1ID-3", "segment name"),
        ] {
            let e = parse_hl7_path(path).unwrap_err();
            assert!(e.contains(why), "{path}: {e}");
        }
    }

    #[test]
    fn looks_like() {
        assert!(looks_like_hl7_path("PID-3"));
        assert!(looks_like_hl7_path("OBX[2]-5"));
        assert!(!looks_like_hl7_path("Patient.name"));
        assert!(!looks_like_hl7_path("cx.1"));
        assert!(!looks_like_hl7_path("PID"));
        assert!(!looks_like_hl7_path("name-use"));
    }

    #[test]
    fn hl7_targets() {
        assert_eq!(
            parse_hl7_target("OBX[]").unwrap(),
            Hl7Target {
                segment: Some(("OBX".into(), TIdx::Append)),
                field: None,
                component: None,
                subcomponent: None
            }
        );
        assert_eq!(
            parse_hl7_target("PID-3[].4.1").unwrap(),
            Hl7Target {
                segment: Some(("PID".into(), TIdx::At(1))),
                field: Some((3, TIdx::Append)),
                component: Some(4),
                subcomponent: Some(1)
            }
        );
        assert_eq!(
            parse_relative_field_target("5[2]").unwrap().field,
            Some((5, TIdx::At(2)))
        );
        assert_eq!(
            parse_relative_component_target("4.2").unwrap().subcomponent,
            Some(2)
        );
        assert!(parse_relative_component_target("4[]").is_err());
        assert!(parse_hl7_target("PID-3[*]").is_err());
        assert!(parse_hl7_target("PID+3").is_err());
    }

    #[test]
    fn fhir_targets() {
        assert_eq!(
            parse_fhir_target("name[0].given[]").unwrap(),
            [
                Step {
                    key: "name".into(),
                    index: Index::At(0)
                },
                Step {
                    key: "given".into(),
                    index: Index::Append
                }
            ]
        );
        assert_eq!(parse_fhir_target("@previous[]").unwrap()[0].key, "@previous");
        assert_eq!(parse_fhir_target("_birthDate.extension[]").unwrap().len(), 2);
        for bad in [
            "", "a..b", "a.@b", "a[x]", "a[-1]", "a[", "PID-3", "a[0][1]", "a[99999]", "1a",
        ] {
            assert!(parse_fhir_target(bad).is_err(), "{bad}");
        }
    }
}
