//! The FHIRPath subset a fhir-source mapping reads with: `Patient.name[0].family`,
//! `Patient.identifier.value` (collections flatten), `.where(field='literal')`,
//! `.where(field!='literal')`, `.first()` and `.exists()`. Parsed once when the mapping is
//! compiled; evaluated over borrowed JSON, nothing copied.
//!
//! One departure from FHIRPath: `.where(use!='old')` keeps items that have no `use` at all
//! (FHIRPath's empty-propagation would drop them, which is never what a mapping means).

use serde_json::Value;

use crate::path::MAX_NUMBER;

/// One step after the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FStep {
    /// `.name`: that member of every item; arrays flatten.
    Member(String),
    /// `[n]`: the n-th item (0-based) of the collection.
    Index(usize),
    /// `.where(a.b='x')` / `.where(a.b!='x')`.
    Where {
        path: Vec<String>,
        negate: bool,
        literal: String,
    },
    /// `.first()`
    First,
    /// `.exists()`: a boolean; only as the last step.
    Exists,
}

/// What a path gives: items, or the boolean of `.exists()`.
#[derive(Debug)]
pub enum Collection<'a> {
    Items(Vec<&'a Value>),
    Bool(bool),
}

/// Splits `Patient.name.where(use='official').family` into its root (`Patient`, or a variable)
/// and its steps.
pub fn parse(text: &str) -> Result<(&str, Vec<FStep>), String> {
    let root_len = text.find(['.', '[']).unwrap_or(text.len());
    let root = &text[..root_len];
    if !is_member_name(root) {
        return Err(format!(
            "`{text}` is not a FHIRPath: it must start with a resource type or a variable"
        ));
    }
    let mut rest = &text[root_len..];
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if steps.last() == Some(&FStep::Exists) {
            return Err(format!("`{text}`: `.exists()` must be the last step"));
        }
        if let Some(inner) = rest.strip_prefix('[') {
            let close = inner
                .find(']')
                .ok_or_else(|| format!("`{text}`: `[` without `]`"))?;
            let n = inner[..close]
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= MAX_NUMBER && inner[..close].bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("`{text}`: an index is a number from 0 to {MAX_NUMBER}"))?;
            steps.push(FStep::Index(n));
            rest = &inner[close + 1..];
            continue;
        }
        let Some(after_dot) = rest.strip_prefix('.') else {
            return Err(format!("`{text}`: unexpected `{rest}`"));
        };
        let name_len = after_dot.find(['.', '[', '(']).unwrap_or(after_dot.len());
        let name = &after_dot[..name_len];
        if !is_member_name(name) {
            return Err(format!("`{text}`: `{name}` is not an element name"));
        }
        rest = &after_dot[name_len..];
        let Some(args) = rest.strip_prefix('(') else {
            steps.push(FStep::Member(name.to_owned()));
            continue;
        };
        // The lexer has checked that the parentheses balance; `where` holds no nested ones.
        let close = closing_paren(args).ok_or_else(|| format!("`{text}`: `(` without `)`"))?;
        let inner = args[..close].trim();
        rest = &args[close + 1..];
        steps.push(match (name, inner) {
            ("first", "") => FStep::First,
            ("exists", "") => FStep::Exists,
            ("where", _) => parse_where(inner).map_err(|e| format!("`{text}`: {e}"))?,
            _ => {
                return Err(format!(
                    "`{text}`: `{name}({inner})` is not in the FHIRPath subset (where, first, exists)"
                ));
            }
        });
    }
    Ok((root, steps))
}

/// Where the `)` closing an argument list is, skipping quoted text.
fn closing_paren(args: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in args.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '\'' => quoted = !quoted,
            ')' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// `a.b='x'` or `a.b!='x'`.
fn parse_where(inner: &str) -> Result<FStep, String> {
    let bad = || format!("`.where({inner})` must be `.where(element='text')` or `.where(element!='text')`");
    let (left, right, negate) = match inner.split_once("!=") {
        Some((l, r)) => (l, r, true),
        None => {
            let (l, r) = inner.split_once('=').ok_or_else(bad)?;
            (l, r, false)
        }
    };
    let path: Vec<String> = left.trim().split('.').map(str::to_owned).collect();
    if !path.iter().all(|p| is_member_name(p)) {
        return Err(bad());
    }
    let right = right.trim();
    let quoted = right
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .filter(|_| right.len() >= 2)
        .ok_or_else(bad)?;
    let mut literal = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => literal.push(chars.next().ok_or_else(bad)?),
            '\'' => return Err(bad()),
            c => literal.push(c),
        }
    }
    Ok(FStep::Where {
        path,
        negate,
        literal,
    })
}

fn is_member_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Appends `value` to the collection, an array's items one by one, leaving out nulls.
fn push_flat<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => out.extend(items.iter().filter(|v| !v.is_null())),
        Value::Null => {}
        other => out.push(other),
    }
}

fn member<'a>(items: &[&'a Value], name: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for item in items {
        if let Some(value) = item.get(name) {
            push_flat(value, &mut out);
        }
    }
    out
}

/// The items of `start` after `steps`.
pub fn eval<'a>(start: Vec<&'a Value>, steps: &[FStep]) -> Collection<'a> {
    let mut items = start;
    for step in steps {
        items = match step {
            FStep::Member(name) => member(&items, name),
            FStep::Index(n) => items.get(*n).copied().into_iter().collect(),
            FStep::First => items.first().copied().into_iter().collect(),
            FStep::Exists => return Collection::Bool(!items.is_empty()),
            FStep::Where {
                path,
                negate,
                literal,
            } => items
                .into_iter()
                .filter(|item| {
                    let mut values = vec![*item];
                    for name in path {
                        values = member(&values, name);
                    }
                    let matches = values.iter().any(|v| v.as_str() == Some(literal.as_str()));
                    matches != *negate
                })
                .collect(),
        };
    }
    Collection::Items(items)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patient() -> Value {
        json!({
            "resourceType": "Patient",
            "name": [
                {"use": "official", "family": "Doe", "given": ["Jane", "Q"]},
                {"use": "maiden", "family": "Hartley"},
                {"family": "Nouse", "given": [null, "X"]}
            ],
            "identifier": [{"system": "a", "value": "1"}, {"system": "b", "value": "2"}],
            "active": true
        })
    }

    fn items(text: &str) -> Vec<Value> {
        let p = patient();
        let (_, steps) = parse(text).unwrap();
        match eval(vec![&p], &steps) {
            Collection::Items(items) => items.into_iter().cloned().collect(),
            Collection::Bool(b) => vec![json!(b)],
        }
    }

    #[test]
    fn members_flatten_and_index() {
        assert_eq!(
            items("Patient.name.family"),
            [json!("Doe"), json!("Hartley"), json!("Nouse")]
        );
        assert_eq!(items("Patient.name[0].family"), [json!("Doe")]);
        assert_eq!(
            items("Patient.name.given"),
            [json!("Jane"), json!("Q"), json!("X")]
        );
        assert_eq!(items("Patient.name.given[1]"), [json!("Q")]);
        assert_eq!(items("Patient.name[7].family"), Vec::<Value>::new());
        assert_eq!(items("Patient.identifier.value.first()"), [json!("1")]);
        assert_eq!(items("Patient.active"), [json!(true)]);
    }

    #[test]
    fn where_first_exists() {
        assert_eq!(items("Patient.name.where(use='official').family"), [json!("Doe")]);
        assert_eq!(
            items("Patient.name.where(use != 'official').family"),
            [json!("Hartley"), json!("Nouse")]
        );
        assert_eq!(items("Patient.identifier.where(system='b').value"), [json!("2")]);
        assert_eq!(items("Patient.name.where(use='nope').exists()"), [json!(false)]);
        assert_eq!(items("Patient.name.exists()"), [json!(true)]);
        assert_eq!(items("Patient.name.where(use='it\\'s').exists()"), [json!(false)]);
    }

    #[test]
    fn parse_errors() {
        for (text, why) in [
            ("Patient.name.exists().family", "last step"),
            ("Patient.name.count()", "not in the FHIRPath subset"),
            ("Patient.name.where(use)", "must be"),
            ("Patient.name.where(use=official)", "must be"),
            ("Patient.name[x]", "index"),
            ("Patient..name", "element name"),
            ("1atient.name", "must start"),
            ("Patient.name[0", "without"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
        assert_eq!(parse("n.given").unwrap().0, "n");
    }
}
