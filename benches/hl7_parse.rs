//! How fast one core reads ADT messages: `Message::parse` alone, then `Message::parse` plus the
//! shipped UCR ADT-to-Patient mapping file (`mappings/ucr-adt-patient.map`), over a varied
//! in-memory corpus. DESIGN.md asks for at least 100,000 ADT
//! messages/s parse + map on one core.
//!
//! Run with `cargo bench --bench hl7_parse` (optionally `-- --messages N --passes N`). Prints
//! messages/s for the best and the median pass of each measurement.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tributary::hl7::Message;
use tributary::mapping::{Input, MappingSet};

const DEFAULT_MESSAGES: usize = 10_000;
const DEFAULT_PASSES: usize = 9;

fn main() {
    let (messages, passes) = options();
    let mappings = MappingSet::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mappings"
    )))
    .expect("the shipped mappings load");
    let mapping = mappings.get("ucr-adt-patient").expect("the UCR ADT mapping");
    let now = "20260101000000+0000";
    let corpus = adt_corpus(messages);
    let bytes: usize = corpus.iter().map(Vec::len).sum();
    let mapped = corpus
        .iter()
        .filter(|m| Message::parse(m).is_ok_and(|m| mapping.run(&Input::Hl7(&m), now).is_ok()))
        .count();
    assert_eq!(mapped, corpus.len(), "every corpus message must parse and map");
    println!(
        "corpus: {} ADT messages, {} bytes on average, all parse and map; {passes} passes, one thread",
        corpus.len(),
        bytes / corpus.len().max(1),
    );

    report(
        "parse",
        &corpus,
        measure(&corpus, passes, |m| {
            black_box(Message::parse(black_box(m)).is_ok());
        }),
    );
    report(
        "parse+map",
        &corpus,
        measure(&corpus, passes, |m| {
            let message = Message::parse(black_box(m)).expect("parses");
            black_box(mapping.run(&Input::Hl7(&message), now).is_ok());
        }),
    );
}

/// `--messages N` and `--passes N`; anything else (cargo passes `--bench`) is ignored.
fn options() -> (usize, usize) {
    let mut messages = DEFAULT_MESSAGES;
    let mut passes = DEFAULT_PASSES;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let target = match arg.as_str() {
            "--messages" => &mut messages,
            "--passes" => &mut passes,
            _ => continue,
        };
        match args.next().and_then(|v| v.parse().ok()) {
            Some(value) if value > 0 => *target = value,
            _ => panic!("{arg} needs a positive number"),
        }
    }
    (messages, passes)
}

/// One warm-up pass, then `passes` timed passes over the whole corpus; the time of each.
fn measure(corpus: &[Vec<u8>], passes: usize, mut each: impl FnMut(&[u8])) -> Vec<Duration> {
    for message in corpus {
        each(message);
    }
    let mut times: Vec<Duration> = (0..passes)
        .map(|_| {
            let started = Instant::now();
            for message in corpus {
                each(message);
            }
            started.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn report(name: &str, corpus: &[Vec<u8>], sorted_times: Vec<Duration>) {
    let rate = |time: Duration| corpus.len() as f64 / time.as_secs_f64();
    let best = sorted_times[0];
    let median = sorted_times[sorted_times.len() / 2];
    println!(
        "{name:<10} best {:>9.0} msg/s ({:.2} µs/msg)   median {:>9.0} msg/s ({:.2} µs/msg)",
        rate(best),
        best.as_secs_f64() * 1e6 / corpus.len() as f64,
        rate(median),
        median.as_secs_f64() * 1e6 / corpus.len() as f64,
    );
}

/// A small deterministic generator, so every run measures the same corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Family names as senders write them: apostrophes, hyphens, non-ASCII letters and escapes.
const FAMILIES: &[&str] = &[
    "OKAFOR",
    "LINDQVIST",
    "HADDAD",
    "Moreau",
    "TANAKA",
    "O'BRIEN",
    "Novák",
    "SILVA-PEREIRA",
    "KOWALSKI",
    "Nguyễn",
    "MÜLLER",
    "GARCÍA",
    "SMITH\\T\\JONES",
    "D'ARCY",
    "VAN DER BERG",
    "REN\\XC9\\",
    "HARGREAVES",
    "Ó MÁILLE",
    "ZHANG",
    "MARTINEZ",
];
const GIVENS: &[&str] = &[
    "AMARA",
    "Johan",
    "LAYLA",
    "Louis",
    "YUKI",
    "Siobhán",
    "PETR",
    "Ana",
    "MARTA",
    "Minh",
    "José",
    "Zoë",
    "THOMAS",
    "Anne-Marie",
    "Chloé",
];
const SECOND_GIVENS: &[&str] = &["", "", "Q", "WILLIAM", "Elena", "J", "Marie"];
const PREFIXES: &[&str] = &["", "", "", "Mr", "Mrs", "Ms", "Dr"];
const STREETS: &[&str] = &[
    "12 Harbour Rd",
    "4 Elm St\\T\\Main",
    "77 Riverside Ave",
    "9 Hill Ln",
    "310 Station Sq",
    "12 Smith \\T\\ Jones Lane^Bldg 2\\S\\Rear",
    "14 Orchard Close^Headingley",
    "1 Rue de l'Église",
    "221B Baker St^Flat 2",
    "5 Beacon Terrace",
];
const CITIES: &[&str] = &[
    "Boston^MA^02118^USA",
    "Cambridge^MA^02139^USA",
    "Leeds^West Yorkshire^LS6 2QX^GBR",
    "Brookline^MA^02446^USA",
    "Montréal^QC^H2X 1Y4^CAN",
    "Springfield^IL^62701^USA",
];
const LANGUAGES: &[&str] = &[
    "en^English^ISO639",
    "en^English^ISO639",
    "es^Spanish^ISO639",
    "ar^Arabic^ISO639",
    "fr^French^ISO639",
    "",
];
const SENDERS: &[&str] = &[
    "UCR|UCRHIE",
    "TRAKCARE|TCHOSP",
    "EPIC^1.2.840.114350^ISO|EPICADT",
    "CERNER|MAINHOSP",
];
const EVENTS: &[(&str, &str)] = &[
    ("A01", "ADT_A01"),
    ("A04", "ADT_A01"),
    ("A08", "ADT_A01"),
    ("A08", "ADT_A01"),
    ("A08", "ADT_A01"),
    ("A28", "ADT_A05"),
    ("A31", "ADT_A05"),
    ("A40", "ADT_A39"),
    ("A47", "ADT_A30"),
];

/// A varied ADT corpus: senders, events, names, identifiers, addresses, phones, emails, escapes,
/// optional segments and a few Latin-1 messages differ per message.
fn adt_corpus(messages: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..messages).map(|n| adt_message(n, &mut rng)).collect()
}

fn adt_message(n: usize, rng: &mut Rng) -> Vec<u8> {
    let (event, structure) = EVENTS[rng.below(EVENTS.len())];
    let patient = rng.below(1_000_000);
    let latin1 = rng.chance(5);
    let mut segments = Vec::with_capacity(8);
    segments.push(format!(
        "MSH|^~\\&|{}|TRIBUTARY|PORTAL|2026{:02}{:02}{:02}{:02}{:02}{}||ADT^{event}^{structure}|MSG{n:08}|P|{}{}",
        rng.pick(SENDERS),
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        if rng.chance(50) { "-0400" } else { "" },
        rng.pick(&["2.5", "2.5.1", "2.4", "2.3"]),
        if latin1 { "||||||8859/1" } else { "" },
    ));
    segments.push(format!(
        "EVN|{event}|2026112512{:02}{:02}|||user{:03}^Registrar^Ursula||UCRHIE",
        rng.below(60),
        rng.below(60),
        rng.below(1000)
    ));

    let mut identifiers = vec![format!(
        "{patient:010}^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI"
    )];
    for _ in 0..rng.below(4) {
        identifiers.push(match rng.below(3) {
            0 => format!(
                "MRN{:08}^^^HOSPA&2.16.840.1.113883.3.9999.2&ISO^MR",
                rng.below(100_000_000)
            ),
            1 => format!("{:09}^^^SSA^SS", rng.below(1_000_000_000)),
            _ => format!("999{:07}^^^NHS^NH", rng.below(10_000_000)),
        });
    }
    let mut names = vec![format!(
        "{}^{}^{}^^{}^^L",
        rng.pick(FAMILIES),
        rng.pick(GIVENS),
        rng.pick(SECOND_GIVENS),
        rng.pick(PREFIXES)
    )];
    if rng.chance(15) {
        names.push(format!("{}^^^^^^M", rng.pick(FAMILIES)));
    }
    let mut addresses = vec![format!("{}^{}^H", street_with_second_line(rng), rng.pick(CITIES))];
    if rng.chance(20) {
        addresses.push(format!("PO Box {}^^{}^M", rng.below(9999), rng.pick(CITIES)));
    }
    let mut home = Vec::new();
    if rng.chance(80) {
        home.push(format!("^PRN^PH^^1^617^555{:04}", rng.below(10_000)));
    }
    if rng.chance(40) {
        home.push(format!("^PRN^CP^^1^857^{:07}", rng.below(10_000_000)));
    }
    if rng.chance(60) {
        home.push(format!(
            "^NET^Internet^{}.{}{}@example.org",
            rng.pick(&["amara", "johan", "layla", "yuki", "ana"]),
            rng.pick(&["okafor", "novak", "silva", "obrien"]),
            rng.below(1000)
        ));
    }
    let work = if rng.chance(30) {
        format!("^WPN^PH^^1^617^777{:04}", rng.below(10_000))
    } else {
        String::new()
    };
    segments.push(format!(
        "PID|1||{}||{}|{}|19{:02}{:02}{:02}|{}|||{}||{}|{}|{}|{}|||||||||||{}",
        identifiers.join("~"),
        names.join("~"),
        if rng.chance(30) { "SMITH^MARY" } else { "" },
        20 + rng.below(80),
        1 + rng.below(12),
        1 + rng.below(28),
        rng.pick(&["F", "M", "F", "M", "U", "O"]),
        addresses.join("~"),
        home.join("~"),
        work,
        rng.pick(LANGUAGES),
        rng.pick(&["M^Married", "S^Single", "", "W^Widowed"]),
        if rng.chance(2) { "Y" } else { "" },
    ));
    if rng.chance(30) {
        segments.push(format!(
            "PD1|||Meadow Lane Surgery^^B{:05}|G{:07}^PATEL^Anita^^^Dr",
            rng.below(100_000),
            rng.below(10_000_000)
        ));
    }
    if rng.chance(25) {
        segments.push(format!(
            "NK1|1|{}^{}|SPO^Spouse^HL70063||^PRN^PH^^1^617^555{:04}",
            rng.pick(FAMILIES),
            rng.pick(GIVENS),
            rng.below(10_000)
        ));
    }
    if event == "A40" || event == "A47" {
        segments.push(format!(
            "MRG|MRN{:08}^^^HOSPA&2.16.840.1.113883.3.9999.2&ISO^MR",
            rng.below(100_000_000)
        ));
    }
    segments.push(if structure == "ADT_A05" || rng.chance(30) {
        "PV1||N".to_owned()
    } else {
        format!(
            "PV1|1|{}|{}^{}^{}^HOSPA|R|||C{:07}^WHITFIELD^James^^^Dr|||MED||||||||OP|V{:08}^^^HOSPA^VN|||||||||||||||||||||||||2026112510{:02}00",
            rng.pick(&["O", "I", "E"]),
            rng.pick(&["OPD", "WARD4", "ER"]),
            rng.below(40),
            rng.below(4),
            rng.below(10_000_000),
            rng.below(100_000_000),
            rng.below(60)
        )
    });
    for k in 0..rng.below(3) {
        segments.push(format!(
            "AL1|{}|DA|{}^{}^L|{}",
            k + 1,
            rng.below(1000),
            rng.pick(&["PENICILLIN", "LATEX", "PEANUTS", "CODEINE"]),
            rng.pick(&["SV", "MO", "MI"])
        ));
    }
    if rng.chance(10) {
        segments.push(
            "OBX|1|TX|ACCESS^Home access note^L||Gate code 4471 \\F\\ ring twice\\.br\\Dog on premises||||||F"
                .to_owned(),
        );
    }
    if rng.chance(10) {
        segments.push(format!(
            "ZPD|1|C^Church of England|A^White British|{}",
            rng.pick(&["N", "Y"])
        ));
    }
    let mut text = segments.join("\r");
    text.push('\r');
    if latin1 {
        // MSH-18 says ISO 8859-1: write every character as one byte (the corpus has none above
        // U+00FF in these messages' alphabets, and anything else becomes `?`).
        text.chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect()
    } else {
        text.into_bytes()
    }
}

/// Street (XAD-1 and sometimes XAD-2); the streets that already name a second line keep theirs.
fn street_with_second_line(rng: &mut Rng) -> String {
    let street = rng.pick(STREETS);
    if street.contains('^') {
        street.to_owned()
    } else if rng.chance(20) {
        format!("{street}^Apt {}", rng.below(30))
    } else {
        format!("{street}^")
    }
}
