//! The path syntax tests and tools use to name one value in a message: `PID-3`, `PID-5.1`,
//! `PID-3[2].4.2`, `OBX[2]-5` (second OBX). Numbers are 1-based, as in the HL7 standard.

/// A parsed path. Unset repetition and occurrence mean the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValuePath<'p> {
    pub segment: &'p str,
    pub occurrence: usize,
    pub field: usize,
    pub repetition: usize,
    pub component: Option<usize>,
    pub subcomponent: Option<usize>,
}

impl<'p> ValuePath<'p> {
    /// None when the path does not follow the syntax.
    pub fn parse(path: &'p str) -> Option<ValuePath<'p>> {
        let segment = path.get(..3)?;
        let (occurrence, rest) = bracketed_number(&path[3..])?;
        let rest = rest.strip_prefix(['-', '.'])?;
        let (field, rest) = leading_number(rest)?;
        let (repetition, rest) = bracketed_number(rest)?;
        let (component, rest) = dotted_number(rest)?;
        let (subcomponent, rest) = dotted_number(rest)?;
        if !rest.is_empty() {
            return None;
        }
        Some(ValuePath {
            segment,
            occurrence,
            field,
            repetition,
            component,
            subcomponent,
        })
    }
}

/// A number of at least 1 at the start of `text`, and what follows it.
fn leading_number(text: &str) -> Option<(usize, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let number: usize = text[..digits].parse().ok()?;
    (number >= 1).then(|| (number, &text[digits..]))
}

/// An optional `[n]`; 1 when absent.
fn bracketed_number(text: &str) -> Option<(usize, &str)> {
    let Some(inner) = text.strip_prefix('[') else {
        return Some((1, text));
    };
    let (number, rest) = leading_number(inner)?;
    Some((number, rest.strip_prefix(']')?))
}

/// An optional `.n`.
fn dotted_number(text: &str) -> Option<(Option<usize>, &str)> {
    let Some(inner) = text.strip_prefix('.') else {
        return Some((None, text));
    };
    let (number, rest) = leading_number(inner)?;
    Some((Some(number), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let path = ValuePath::parse("PID-3[2].4.2").unwrap();
        assert_eq!(
            path,
            ValuePath {
                segment: "PID",
                occurrence: 1,
                field: 3,
                repetition: 2,
                component: Some(4),
                subcomponent: Some(2),
            }
        );
        let path = ValuePath::parse("MSH-9.2").unwrap();
        assert_eq!((path.field, path.component), (9, Some(2)));
        let path = ValuePath::parse("OBX[2]-5").unwrap();
        assert_eq!((path.occurrence, path.field, path.repetition), (2, 5, 1));
        assert_eq!(ValuePath::parse("PID.5.1").unwrap().component, Some(1));
    }

    #[test]
    fn rejects_malformed_paths() {
        for path in [
            "",
            "PI",
            "PID",
            "PID-",
            "PID-0",
            "PID-x",
            "PID-3.",
            "PID-3.0",
            "PID-3[",
            "PID-3[0]",
            "PID-3[2",
            "PID-3.1.2.3",
            "PID-3 ",
            "PID[x]-3",
            "é-3",
            "PIDé-3",
            "PID-99999999999999999999999",
        ] {
            assert_eq!(ValuePath::parse(path), None, "{path:?}");
        }
    }
}
