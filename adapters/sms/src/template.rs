//! The request body template: text with `{{to}}`, `{{body}}` and `{{id}}` placeholders, parsed
//! once when the adapter is built and filled in for each message, escaped for the body format.

use crate::config::BodyFormat;

/// What a placeholder stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    To,
    Body,
    Id,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

/// The values one message fills in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Values<'a> {
    pub(crate) to: &'a str,
    pub(crate) body: &'a str,
    pub(crate) id: &'a str,
}

/// A parsed template and the format that decides how values are escaped.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
    format: BodyFormat,
}

impl Template {
    /// Parses `text`; the error says which placeholder is wrong or missing, or (for JSON) why
    /// the filled-in body would not be JSON.
    pub(crate) fn parse(text: &str, format: BodyFormat) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| {
                format!(
                    "body: `{{{{` at byte {} is not closed by `}}}}`",
                    text.len() - rest.len() + start
                )
            })?;
            let field = match after[..end].trim() {
                "to" => Field::To,
                "body" => Field::Body,
                "id" => Field::Id,
                other => {
                    return Err(format!(
                        "body: `{{{{{other}}}}}` is not a placeholder (known: {{{{to}}}}, {{{{body}}}}, {{{{id}}}})"
                    ));
                }
            };
            pieces.push(Piece::Field(field));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        for (field, name) in [(Field::To, "{{to}}"), (Field::Body, "{{body}}")] {
            if !pieces.contains(&Piece::Field(field)) {
                return Err(format!("body: the template has no {name}"));
            }
        }
        let template = Template { pieces, format };
        if format == BodyFormat::Json {
            // Values full of quotes, backslashes and line breaks: if the template is right,
            // the result is JSON whatever a message holds.
            let sample = template.render(Values {
                to: "+1 \"555\"\\\n",
                body: "a \"b\"\r\n\\c\t}",
                id: "\"id\"",
            });
            if let Err(error) = serde_json::from_str::<serde_json::Value>(&sample) {
                return Err(format!(
                    "body: not JSON once filled in ({error}); each placeholder goes inside a JSON \
                     string, e.g. {{\"to\": \"{{{{to}}}}\", \"text\": \"{{{{body}}}}\"}}"
                ));
            }
        }
        Ok(template)
    }

    /// The body for one message.
    pub(crate) fn render(&self, values: Values<'_>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Field(field) => {
                    let value = match field {
                        Field::To => values.to,
                        Field::Body => values.body,
                        Field::Id => values.id,
                    };
                    match self.format {
                        BodyFormat::Json => push_json_escaped(&mut out, value),
                        BodyFormat::Form => out.extend(form_urlencoded::byte_serialize(value.as_bytes())),
                    }
                }
            }
        }
        out
    }
}

/// `value` as the inside of a JSON string (RFC 8259 section 7): quotes, backslashes and control
/// characters escaped, everything else (Arabic included) as it is.
fn push_json_escaped(out: &mut String, value: &str) {
    let quoted = serde_json::Value::String(value.to_string()).to_string();
    out.push_str(&quoted[1..quoted.len() - 1]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: Values<'static> = Values {
        to: "+44 7700 900123",
        body: "Say \"hi\"\nمرحبا & 100% = ok\\",
        id: "d-1",
    };

    #[test]
    fn json_values_are_escaped_inside_their_strings() {
        let template = Template::parse(
            r#"{"to": "{{to}}", "text": "{{ body }}", "ref": "sms-{{id}}"}"#,
            BodyFormat::Json,
        )
        .unwrap();
        let body = template.render(VALUES);
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["to"], "+44 7700 900123");
        assert_eq!(parsed["text"], "Say \"hi\"\nمرحبا & 100% = ok\\");
        assert_eq!(parsed["ref"], "sms-d-1");
        assert!(body.contains("مرحبا"), "non-ASCII stays readable: {body}");
    }

    #[test]
    fn form_values_are_percent_encoded() {
        let template = Template::parse("To={{to}}&Body={{body}}&Ref={{id}}", BodyFormat::Form).unwrap();
        let body = template.render(VALUES);
        assert!(body.is_ascii(), "{body}");
        let fields: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        assert_eq!(
            fields,
            [
                ("To".to_string(), VALUES.to.to_string()),
                ("Body".to_string(), VALUES.body.to_string()),
                ("Ref".to_string(), "d-1".to_string()),
            ]
        );
    }

    #[test]
    fn bad_templates_are_refused_with_a_reason() {
        let refuse = |text: &str, format: BodyFormat, needle: &str| {
            let error = Template::parse(text, format).unwrap_err();
            assert!(error.contains(needle), "expected `{needle}` in: {error}");
        };
        refuse("{{to}} {{body}} {{phone}}", BodyFormat::Form, "{{phone}}");
        refuse("{{to}} {{body", BodyFormat::Form, "not closed");
        refuse("{{body}}", BodyFormat::Form, "{{to}}");
        refuse("{{to}}", BodyFormat::Form, "{{body}}");
        refuse(
            r#"{"to": {{to}}, "text": "{{body}}"}"#,
            BodyFormat::Json,
            "inside a JSON string",
        );
        refuse(
            r#"{"to": "{{to}}", "text": "{{body}}""#,
            BodyFormat::Json,
            "not JSON",
        );
    }

    #[test]
    fn text_around_and_between_placeholders_is_kept() {
        let template = Template::parse("[{{to}}|{{body}}|{{id}}]", BodyFormat::Form).unwrap();
        assert_eq!(
            template.render(Values {
                to: "a",
                body: "b c",
                id: "d"
            }),
            "[a|b+c|d]"
        );
    }
}
