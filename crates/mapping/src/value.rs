//! The values a running mapping passes around: absent, HL7's explicit null, text, or JSON from a
//! FHIR source. Text borrows from the message or the compiled mapping whenever it can, so reading
//! a field that needs no unescaping copies nothing.

use std::borrow::Cow;

use serde_json::Value;

/// One value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    /// Nothing there (an empty field, a missing element, a lookup that found nothing).
    Absent,
    /// HL7's `""`: the sender says "no value"; written as JSON null (the store removes the element)
    /// or as `""` in HL7 v2.
    Null,
    /// Never empty: empty text is `Absent`.
    Text(Cow<'a, str>),
    /// A number from `decimal(E)`: text in FHIR's decimal form (`-?(0|[1-9][0-9]*)(\.[0-9]+)?`),
    /// written into FHIR as a JSON number and into HL7 v2 as the text.
    Number(Cow<'a, str>),
    /// A JSON value from a FHIR source or a literal (borrowed: values stay small and cheap to
    /// move); never `null` (that is `Null`) and never `""`.
    Json(&'a Value),
}

impl<'a> Val<'a> {
    /// Text, or `Absent` when it is empty.
    pub fn text(text: impl Into<Cow<'a, str>>) -> Val<'a> {
        let text = text.into();
        if text.is_empty() {
            Val::Absent
        } else {
            Val::Text(text)
        }
    }

    /// A borrowed JSON value, normalised: `null` is `Null`, `""` is `Absent`.
    pub fn json(value: &'a Value) -> Val<'a> {
        match value {
            Value::Null => Val::Null,
            Value::String(s) if s.is_empty() => Val::Absent,
            other => Val::Json(other),
        }
    }

    /// True for a real value: not absent, not null. This is `exists(E)`.
    pub fn exists(&self) -> bool {
        matches!(self, Val::Text(_) | Val::Number(_) | Val::Json(_))
    }

    pub fn is_absent(&self) -> bool {
        matches!(self, Val::Absent)
    }

    /// The value as text: JSON strings as they are, numbers and booleans as written; `None` for
    /// absent, null, objects and arrays.
    pub fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Val::Text(text) | Val::Number(text) => Some(Cow::Borrowed(text)),
            Val::Json(json) => match json {
                Value::String(s) => Some(Cow::Borrowed(s)),
                Value::Number(n) => Some(Cow::Owned(n.to_string())),
                Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
                _ => None,
            },
            Val::Absent | Val::Null => None,
        }
    }

    /// The JSON to write; `None` for absent.
    pub fn into_json(self) -> Option<Value> {
        match self {
            Val::Absent => None,
            Val::Null => Some(Value::Null),
            Val::Text(text) => Some(Value::String(text.into_owned())),
            // `decimal` made it in a form JSON reads as a number.
            Val::Number(text) => Some(
                serde_json::from_str::<serde_json::Number>(&text)
                    .map_or_else(|_| Value::String(text.into_owned()), Value::Number),
            ),
            Val::Json(json) => Some((*json).clone()),
        }
    }

    /// `E == E`: both null, or both real and equal (as text when both read as text).
    pub fn equals(&self, other: &Val<'_>) -> bool {
        match (self, other) {
            (Val::Null, Val::Null) => true,
            (Val::Absent, _) | (_, Val::Absent) | (Val::Null, _) | (_, Val::Null) => false,
            _ => match (self.as_text(), other.as_text()) {
                (Some(a), Some(b)) => a == b,
                _ => match (self, other) {
                    (Val::Json(a), Val::Json(b)) => a == b,
                    _ => false,
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn normalises_empty_and_null() {
        assert_eq!(Val::text(""), Val::Absent);
        assert_eq!(Val::json(&Value::Null), Val::Null);
        assert_eq!(Val::json(&json!("")), Val::Absent);
        assert!(Val::text("x").exists());
        assert!(!Val::Null.exists());
        assert!(!Val::Absent.exists());
    }

    #[test]
    fn equality() {
        let one = json!(1);
        let text_one = json!("1");
        let object = json!({"a": 1});
        assert!(Val::text("1").equals(&Val::json(&one)));
        assert!(Val::json(&text_one).equals(&Val::text("1")));
        assert!(Val::Null.equals(&Val::Null));
        assert!(!Val::Absent.equals(&Val::Absent));
        assert!(!Val::Null.equals(&Val::Absent));
        assert!(!Val::text("a").equals(&Val::Null));
        assert!(Val::json(&object).equals(&Val::json(&object)));
        assert!(!Val::json(&object).equals(&Val::text("a")));
    }

    #[test]
    fn json_conversion_of_numbers() {
        assert_eq!(Val::Number("5.25".into()).into_json(), Some(json!(5.25)));
        assert_eq!(Val::Number("-12".into()).into_json(), Some(json!(-12)));
        assert!(Val::Number("7".into()).equals(&Val::text("7")));
    }

    #[test]
    fn json_conversion() {
        assert_eq!(Val::text("a").into_json(), Some(json!("a")));
        assert_eq!(Val::Null.into_json(), Some(Value::Null));
        assert_eq!(Val::Absent.into_json(), None);
        assert_eq!(Val::json(&json!(true)).as_text().as_deref(), Some("true"));
        assert_eq!(Val::json(&json!([1])).as_text(), None);
    }
}
