//! Fuzz target: the HL7 v2 reader on any bytes.
//!
//! What MLLP hands the engine goes through `Message::parse` (charset detection, delimiters from
//! MSH, the segment scanner); files and streams go through `read_batch`/`split_batch` first. The
//! reader promises never to panic or hang on any input (README, "What works today"); this target
//! holds it to that and checks, for every message that parses:
//! - every field, repetition, component and subcomponent can be read back, raw and unescaped;
//! - the MSH conveniences and path lookups (`Message::get`) answer;
//! - escaping any field's text with the message's delimiters and unescaping it gives it back;
//! - every ACK built for it (accepted, error, rejected), and the reject for a message that does
//!   not parse, is itself a message the reader accepts: a peer must be able to read our replies.
//!
//! Input: the message bytes. A NUL byte, if present, splits off what follows it as one more path
//! for `Message::get`, so path syntax is fuzzed too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary::hl7::{
    self, AckSettings, Delimiters, ErrorCode, Message, Outcome, ParseError, acks_for, reject_unparsed,
};

/// Paths a mapping or a tool commonly reads; they walk occurrences, repetitions and components.
const PATHS: [&str; 8] = [
    "MSH-9.2",
    "MSH-10",
    "PID-3[2].4.2",
    "PID-5.1",
    "PID-11[1].1",
    "OBX[2]-5",
    "MRG-1.1",
    "ZZZ-99[9].9.9",
];

fuzz_target!(|data: &[u8]| {
    let (bytes, extra_path) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], std::str::from_utf8(&data[nul + 1..]).ok()),
        None => (data, None),
    };

    match Message::parse(bytes) {
        Ok(message) => check_message(&message, extra_path),
        Err(error) => {
            let (text, _) = hl7::decode(bytes);
            let reject = reject_unparsed(&text, &error, "FUZZ1".into(), hl7::DEFAULT_VERSION);
            assert_readable_reply(&reject);
        }
    }

    // Files and streams: decode, split, then each message on its own.
    let (text, _) = hl7::decode(bytes);
    if let Ok(batch) = hl7::read_batch(&text) {
        for warning in &batch.warnings {
            let _ = warning.to_string();
        }
        for text in &batch.messages {
            assert!(text.starts_with("MSH"), "a batch message must start with MSH");
            if let Ok(message) = Message::parse_str(text) {
                check_message(&message, None);
            }
        }
    }

    // The escape decoder on the raw text, with the standard delimiters and round trip.
    let delims = Delimiters::default();
    let plain = hl7::unescape(&text, &delims);
    assert_eq!(hl7::unescape(&hl7::escape(&plain, &delims), &delims), plain);
});

fn check_message(message: &Message, extra_path: Option<&str>) {
    let delims = *message.delimiters();
    for segment in message.segments() {
        let _ = segment.name();
        let _ = segment.raw();
        // One past the last field: an absent field must read as empty, not panic.
        for n in 0..=segment.field_count() + 1 {
            let field = segment.field(n);
            let text = field.first().text();
            assert_eq!(
                hl7::unescape(&hl7::escape(&text, &delims), &delims),
                text,
                "escape then unescape must give the text back"
            );
            for repetition in field.repetitions() {
                let _ = repetition.text();
                for c in 0..=3 {
                    let component = repetition.component(c);
                    let _ = component.text();
                    let _ = component.raw();
                    for s in 0..=2 {
                        let _ = component.subcomponent(s);
                        let _ = component.subcomponent_text(s);
                    }
                }
            }
        }
    }
    let _ = (
        message.sending_application(),
        message.sending_facility(),
        message.receiving_application(),
        message.receiving_facility(),
        message.message_type(),
        message.trigger_event(),
        message.control_id(),
        message.processing_id(),
        message.version(),
        message.charset(),
    );
    for path in PATHS.into_iter().chain(extra_path) {
        let _ = message.get(path);
    }

    let error = ParseError::new(ErrorCode::DataType, None, "fuzz");
    let outcomes = [
        Outcome::Accepted,
        Outcome::Error(error.clone()),
        Outcome::Rejected(error),
    ];
    let mut next_id = 0u32;
    let mut control_ids = || {
        next_id += 1;
        format!("ACK{next_id}")
    };
    // Every channel setting: enhanced or forced original mode, answering unasked or not.
    for (original_mode, answer_unasked) in [(false, false), (true, false), (false, true)] {
        let settings = AckSettings {
            original_mode,
            answer_unasked,
            ..AckSettings::default()
        };
        for outcome in &outcomes {
            let acks = acks_for(message, outcome, &settings, &mut control_ids);
            for ack in acks.reply.iter().chain(acks.application.iter()) {
                assert_readable_reply(ack);
            }
        }
    }
}

/// A reply we send must parse, be an ACK, and answer with an MSA.
fn assert_readable_reply(ack: &str) {
    let parsed = match Message::parse_str(ack) {
        Ok(parsed) => parsed,
        Err(e) => panic!("our own ACK does not parse: {e:?}\n{ack:?}"),
    };
    assert_eq!(parsed.message_type(), "ACK", "{ack:?}");
    assert!(parsed.segment("MSA").is_some(), "{ack:?}");
}
