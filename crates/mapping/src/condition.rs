//! A condition in the mapping language standing on its own, for channel filters
//! (`PID-3[1].4.1 == "UCRMPI"`): compiled once, evaluated for every message.
//!
//! It is compiled as a one-rule mapping (`name = "take" when <condition>`), so a filter means
//! exactly what the same condition means in a mapping file, with no second evaluator to drift.

use std::path::Path;

use tributary_hl7::Message;

use super::{Input, Mapping};

pub struct Condition {
    mapping: Mapping,
}

impl Condition {
    /// Compiles `text`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Condition, String> {
        if text.contains(['\n', '\r']) {
            return Err("a condition is one line".into());
        }
        let source =
            format!("mapping condition\nsource hl7v2\ntarget fhir Parameters\nname = \"take\" when {text}\n");
        Mapping::parse(&source, Path::new("condition.map"), Path::new("."))
            .map(|mapping| Condition { mapping })
            .map_err(|e| e.message)
    }

    /// Whether the condition holds for `message` (a condition that cannot be evaluated does not).
    pub fn holds(&self, message: &Message) -> bool {
        self.mapping
            .run(&Input::Hl7(message), "")
            .is_ok_and(|output| output.resource.is_some_and(|r| r["name"] == "take"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_reads_the_message() {
        let message =
            Message::parse(b"MSH|^~\\&|UCR|UCRHIE|||20260101||ADT^A08|1|P|2.5\rPID|1||42^^^UCRMPI\r")
                .unwrap();
        assert!(
            Condition::parse(r#"PID-3[1].4.1 == "UCRMPI""#)
                .unwrap()
                .holds(&message)
        );
        assert!(
            !Condition::parse(r#"MSH-4 in ("TCHOSP", "OTHER")"#)
                .unwrap()
                .holds(&message)
        );
        assert!(
            Condition::parse(r#"exists(PID-3) and not (MSH-9.2 == "A40")"#)
                .unwrap()
                .holds(&message)
        );
    }

    #[test]
    fn a_bad_condition_says_why() {
        assert!(Condition::parse("PID-3 ==").is_err());
        assert!(Condition::parse("nosuchfunction(PID-3)").is_err());
        assert!(Condition::parse("PID-3 == \"a\"\n@action = \"x\"").is_err());
    }
}
