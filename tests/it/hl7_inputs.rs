//! The hl7 module against inputs it did not choose: the shared corpus (real sample messages and
//! the inputs that crashed or hung other HL7 parsers) and generated garbage. Whatever comes in,
//! reading it must end in Ok or a clear Err, quickly, without a panic.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tributary::hl7::{
    AckSettings, Delimiters, ErrorCode, MAX_DELIMITERS, Message, MessageWriter, Outcome, ParseError,
    acks_for, decode, escape, read_batch, reject_unparsed, split_batch, unescape,
};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus/hl7v2");

/// Every file under `dir`, sorted; None when the corpus is not there.
fn corpus_files(dir: &str) -> Option<Vec<PathBuf>> {
    let root = Path::new(CORPUS).join(dir);
    if !root.is_dir() {
        println!("skipped: corpus absent ({})", root.display());
        return None;
    }
    let mut files = Vec::new();
    let mut pending = vec![root];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("corpus folder is readable") {
            let path = entry.expect("corpus entry is readable").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Some(files)
}

/// Everything the engine does with bytes it did not choose; panics only on a broken promise.
fn read_every_way(bytes: &[u8]) {
    let parsed = Message::parse(bytes);
    let text = String::from_utf8_lossy(bytes);
    let _ = split_batch(&text);
    let _ = unescape(&text, &Delimiters::default());
    match parsed {
        Ok(message) => {
            let failure = ParseError::new(ErrorCode::InternalError, None, "test");
            let outcomes = [
                Outcome::Accepted,
                Outcome::Error(failure.clone()),
                Outcome::Rejected(failure),
            ];
            for outcome in &outcomes {
                let acks = acks_for(&message, outcome, &AckSettings::default(), &mut || {
                    "ACK1".to_owned()
                });
                for ack in acks.reply.iter().chain(acks.application.iter()) {
                    if let Err(error) = Message::parse_str(ack) {
                        panic!("our ACK does not parse: {error}\n{ack:?}\nfor {text:?}");
                    }
                }
            }
            check_structure(&message);
            for segment in message.segments() {
                for n in 0..=segment.field_count() + 1 {
                    let field = segment.field(n);
                    let _ = field.text();
                    for repetition in field.repetitions() {
                        let _ = repetition.component(2).subcomponent_text(2);
                    }
                }
            }
        }
        Err(error) => {
            assert!(!error.text.is_empty(), "an error must say what is wrong");
            let ack = reject_unparsed(&text, &error, "R1".to_owned(), "2.5");
            if let Err(error) = Message::parse_str(&ack) {
                panic!("our AR does not parse: {error}\n{ack:?}\nfor {text:?}");
            }
        }
    }
}

/// What the scanner promises about any message it accepts: the segments are the text's lines in
/// order, each a valid name and its fields, which join back into the line.
fn check_structure(message: &Message) {
    let text = message.text();
    let lines: Vec<&str> = text.split(['\r', '\n']).filter(|line| !line.is_empty()).collect();
    let segments: Vec<&str> = message.segments().map(|segment| segment.raw()).collect();
    assert_eq!(segments, lines, "segments are not the lines of {text:?}");
    let separator = message.delimiters().field.to_string();
    for (index, segment) in message.segments().enumerate() {
        let name = segment.name();
        assert!(
            name.len() == 3 && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            "segment name {name:?} in {text:?}"
        );
        assert_eq!(
            index == 0,
            name == "MSH",
            "MSH must come first and only once in {text:?}"
        );
        let fields: Vec<&str> = (1..=segment.field_count())
            .map(|n| segment.field(n).raw())
            .collect();
        let rebuilt = if index == 0 {
            let mut msh = format!("MSH{}{}", fields[0], fields[1]);
            if fields.len() > 2 {
                msh.push_str(&separator);
                msh.push_str(&fields[2..].join(&separator));
            }
            msh
        } else {
            format!("{name}{separator}{}", fields.join(&separator))
        };
        assert_eq!(
            rebuilt,
            segment.raw(),
            "fields do not rebuild the segment in {text:?}"
        );
    }
}

#[test]
fn inputs_that_broke_other_parsers_end_in_ok_or_err_quickly() {
    let Some(files) = corpus_files("nhapi/BadInputs") else {
        return;
    };
    assert!(!files.is_empty());
    for file in &files {
        let bytes = fs::read(file).unwrap();
        let started = Instant::now();
        let outcome = Message::parse(&bytes);
        read_every_way(&bytes);
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(1),
            "{} took {elapsed:?}",
            file.display()
        );
        match outcome {
            Ok(_) => println!("ok  {}", file.display()),
            Err(error) => println!("err {}: {error}", file.display()),
        }
    }
}

/// Files in the corpus that are not valid HL7 v2 and must be rejected, with why.
const EXPECTED_FAILURES: &[(&str, &str)] = &[];

#[test]
fn sample_messages_parse() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for dir in ["fhir-converter", "santedb-hl7"] {
        let Some(files) = corpus_files(dir) else {
            return;
        };
        for file in files {
            let bytes = fs::read(&file).unwrap();
            let (text, _) = decode(&bytes);
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let batch = read_batch(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            for warning in &batch.warnings {
                println!("{name}: {warning}");
            }
            for message in &batch.messages {
                checked += 1;
                match Message::parse_str(message) {
                    Ok(parsed) => {
                        assert!(!parsed.message_type().is_empty(), "{name}: no MSH-9");
                        read_every_way(message.as_bytes());
                    }
                    Err(error) => failures.push((name.clone(), error)),
                }
            }
        }
    }
    for (name, error) in &failures {
        println!("does not parse: {name}: {error}");
    }
    let failed: Vec<&str> = failures.iter().map(|(name, _)| name.as_str()).collect();
    let expected: Vec<&str> = EXPECTED_FAILURES.iter().map(|(name, _)| *name).collect();
    assert_eq!(failed, expected, "{failures:#?}");
    println!("{checked} sample messages parsed");
}

const ADT: &str = "MSH|^~\\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|20240101120000||ADT^A08^ADT_A01|CTRL42|P|2.5|||AL|ER||8859/1\rEVN|A08|20240101120000\rPID|1||123^^^HOSP&1.2.3&ISO^MR~456||O\\T\\BRIEN^REN\\XE9\\E||19700101|M\rNTE|1||line\\.br\\two \\H\\x\\N\\\rPV1|1|O\r";

/// Text built from the characters that matter to a parser.
fn hl7ish_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("MSH".to_owned()),
        Just("|^~\\&".to_owned()),
        Just("PID".to_owned()),
        Just("\\X".to_owned()),
        Just("\\.br\\".to_owned()),
        "[A-Z0-9|^~&#\\\\\\r\\n .\u{e9}\u{65e5}\u{1f600}\u{feff}]{0,12}",
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// Valid messages to mutate: the fixed one above plus every sample message in the corpus.
static VALID_MESSAGES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let mut messages = vec![ADT.as_bytes().to_vec()];
    for dir in ["fhir-converter", "santedb-hl7"] {
        for file in corpus_files(dir).unwrap_or_default() {
            messages.push(fs::read(file).unwrap());
        }
    }
    messages
});

/// A small edit to valid bytes: replace, insert or delete one byte.
fn mutation() -> impl Strategy<Value = (usize, u8, u8)> {
    (any::<usize>(), 0u8..3, any::<u8>())
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(position, kind, byte) in edits {
        let at = position % (bytes.len() + 1);
        match kind {
            0 if at < bytes.len() => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => bytes.push(byte),
        }
    }
    bytes
}

/// Valid delimiter sets: ASCII punctuation, all different.
fn delimiters() -> impl Strategy<Value = Delimiters> {
    let punctuation: Vec<char> = (0u8..128)
        .map(char::from)
        .filter(char::is_ascii_punctuation)
        .collect();
    proptest::sample::subsequence(punctuation, 6)
        .prop_shuffle()
        .prop_map(|chars| Delimiters {
            field: chars[0],
            component: chars[1],
            repetition: chars[2],
            escape: chars[3],
            subcomponent: chars[4],
            truncation: Some(chars[5]),
        })
}

proptest! {
    // Failures print the shrunk input; persisting them would write files into the source tree.
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        read_every_way(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_an_msh_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut input = b"MSH|^~\\&|".to_vec();
        input.extend(bytes);
        read_every_way(&input);
    }

    #[test]
    fn hl7ish_text_never_panics(text in hl7ish_text()) {
        read_every_way(text.as_bytes());
    }

    #[test]
    fn mutated_messages_never_panic(
        which in any::<proptest::sample::Index>(),
        edits in proptest::collection::vec(mutation(), 1..8),
    ) {
        let original = which.get(&VALID_MESSAGES).clone();
        read_every_way(&mutate(original, &edits));
    }

    #[test]
    fn unescape_undoes_escape(text in any::<String>(), delims in delimiters()) {
        prop_assert_eq!(unescape(&escape(&text, &delims), &delims), text);
    }

    #[test]
    fn plain_text_is_left_alone(text in "[^|^~\\\\&#\\r\\n]*") {
        let delims = Delimiters { truncation: Some('#'), ..Delimiters::default() };
        prop_assert_eq!(&escape(&unescape(&text, &delims), &delims), &text);
        prop_assert_eq!(&unescape(&text, &delims), &text);
    }

    #[test]
    fn unescape_any_text_with_any_delimiters(text in any::<String>(), delims in delimiters()) {
        let _ = unescape(&text, &delims);
    }

    #[test]
    fn field_values_survive_a_write_and_parse(value in any::<String>(), delims in delimiters()) {
        let mut writer = MessageWriter::new(delims);
        writer.segment("MSH").field(3, &["APP"]);
        writer.segment("NTE").field(3, &[&value]);
        let message = Message::parse_str(&writer.finish()).unwrap();
        prop_assert_eq!(message.segment("NTE").unwrap().field(3).text(), value);
    }
}

#[test]
fn large_inputs_stay_fast() {
    let many_fields = format!("MSH|^~\\&|{}\r", "|".repeat(MAX_DELIMITERS - 10));
    let too_many_fields = format!("MSH|^~\\&|{}\r", "|".repeat(1_000_000));
    let many_segments = format!("MSH|^~\\&|A\r{}", "NTE|1|x\r".repeat(40_000));
    let many_escapes = format!("MSH|^~\\&|A\rNTE|{}\r", "\\".repeat(200_000));
    let bad_at_the_end = format!("MSH|^~\\&|A\r{}P@D|1\r", "NTE|1|x\r".repeat(40_000));
    let inputs = [
        many_fields,
        too_many_fields,
        many_segments,
        many_escapes,
        bad_at_the_end,
    ];
    for input in inputs {
        let started = Instant::now();
        read_every_way(input.as_bytes());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
