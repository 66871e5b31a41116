//! Golden tests: every case under `<mappings>/tests/<mapping>/`, an input `<case>.in.hl7` (or
//! `.in.json`) beside its expected output `<case>.out.json` (or `.out.hl7`), run with the fixed
//! instant `GOLDEN_NOW` and compared field by field.
//!
//! - `.out.json` of a fhir target: the resource, plus optional top-level `"@action"` and
//!   `"@previous"` (absent means upsert and none). `{"@error": "text"}` instead expects the run
//!   to fail with an error that contains the text.
//! - `.out.hl7`: the message, compared field by field (paths like `PID-3[2].4.1`); MSH-10, the
//!   control id, is not compared.
//!
//! Values in a mismatch are shown as JSON (`"1984-03-12"`, `true`, `null`), so a number and the
//! same digits as text never look alike.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tributary_hl7::{Delimiters, Message, Segment, unescape};

use crate::{Input, Mapping, MappingSet, Output, RuleRef};

/// The instant golden tests run at (what `now()` gives).
pub const GOLDEN_NOW: &str = "20260101000000+0000";

/// Every case run.
#[derive(Debug, Clone, Default)]
pub struct GoldenReport {
    pub cases: Vec<CaseResult>,
}

/// One case: which, by which mapping, what differed, which rules fired, or why it could not run.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The input file.
    pub case: PathBuf,
    pub mapping: String,
    pub mismatches: Vec<Mismatch>,
    pub fired: Vec<RuleRef>,
    pub error: Option<String>,
}

/// One difference: where, and the two values (as JSON); `None` where a side has nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub path: String,
    pub expected: Option<String>,
    pub got: Option<String>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.mismatches.is_empty()
    }
}

impl GoldenReport {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }

    pub fn failures(&self) -> impl Iterator<Item = &CaseResult> {
        self.cases.iter().filter(|c| !c.passed())
    }
}

/// The failing cases with their differences and fired rules, then `N passed, M failed`.
impl fmt::Display for GoldenReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for case in self.failures() {
            writeln!(f, "FAIL  {} ({})", case.case.display(), case.mapping)?;
            if let Some(error) = &case.error {
                writeln!(f, "      error: {error}")?;
            }
            for m in &case.mismatches {
                writeln!(
                    f,
                    "      {}: expected {}, got {}",
                    m.path,
                    m.expected.as_deref().unwrap_or("(absent)"),
                    m.got.as_deref().unwrap_or("(absent)")
                )?;
            }
            let fired: Vec<String> = case
                .fired
                .iter()
                .map(|r| format!("{}:{}", r.line, r.target))
                .collect();
            writeln!(f, "      rules fired: {}", fired.join(" "))?;
        }
        writeln!(f, "{} passed, {} failed", self.passed(), self.failed())
    }
}

/// Runs the cases under `<dir>/tests/`: all of them, or when `only` is not empty, those whose
/// input or expected file, or a folder holding them, is listed.
pub fn run_golden_tests(dir: &Path, set: &MappingSet, only: &[PathBuf]) -> GoldenReport {
    let only: Vec<PathBuf> = only.iter().map(|p| canonical(p)).collect();
    let mut report = GoldenReport::default();
    for folder in sorted_entries(&dir.join("tests")) {
        if !folder.is_dir() {
            continue;
        }
        let mapping_name = folder
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        for input in sorted_entries(&folder) {
            let Some((stem, kind)) = case_stem(&input) else {
                continue;
            };
            let outputs = [stem.with_extra(".out.json"), stem.with_extra(".out.hl7")];
            let selected = only.is_empty()
                || only.iter().any(|p| {
                    let input = canonical(&input);
                    input.starts_with(p)
                        || *p == canonical(&stem)
                        || outputs.iter().any(|o| *p == canonical(o))
                });
            if !selected {
                continue;
            }
            let mut result = CaseResult {
                case: input.clone(),
                mapping: mapping_name.clone(),
                mismatches: Vec::new(),
                fired: Vec::new(),
                error: None,
            };
            match set.get(&mapping_name) {
                Some(mapping) => run_case(mapping, &input, kind, &outputs, &mut result),
                None => {
                    result.error = Some(format!(
                        "no mapping named `{mapping_name}`: a folder under tests/ is named after its mapping"
                    ));
                }
            }
            report.cases.push(result);
        }
    }
    report
}

trait WithExtra {
    fn with_extra(&self, suffix: &str) -> PathBuf;
}

impl WithExtra for PathBuf {
    /// `a/b` + `.out.json` = `a/b.out.json` (not an extension swap: the stem may hold dots).
    fn with_extra(&self, suffix: &str) -> PathBuf {
        let mut text = self.clone().into_os_string();
        text.push(suffix);
        PathBuf::from(text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputKind {
    Hl7,
    Json,
}

/// `x/case.in.hl7` -> (`x/case`, Hl7).
fn case_stem(path: &Path) -> Option<(PathBuf, InputKind)> {
    let name = path.file_name()?.to_str()?;
    let (stem, kind) = if let Some(stem) = name.strip_suffix(".in.hl7") {
        (stem, InputKind::Hl7)
    } else {
        (name.strip_suffix(".in.json")?, InputKind::Json)
    };
    Some((path.with_file_name(stem), kind))
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    entries
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn run_case(
    mapping: &Mapping,
    input: &Path,
    kind: InputKind,
    outputs: &[PathBuf; 2],
    result: &mut CaseResult,
) {
    let fail = |result: &mut CaseResult, message: String| result.error = Some(message);
    let Some(expected_path) = outputs.iter().find(|p| p.is_file()) else {
        let names: Vec<String> = outputs.iter().map(|p| p.display().to_string()).collect();
        return fail(
            result,
            format!("no expected output: write {}", names.join(" or ")),
        );
    };
    let bytes = match std::fs::read(input) {
        Ok(bytes) => bytes,
        Err(e) => return fail(result, format!("cannot read {}: {e}", input.display())),
    };
    let expected = match std::fs::read(expected_path) {
        Ok(bytes) => bytes,
        Err(e) => return fail(result, format!("cannot read {}: {e}", expected_path.display())),
    };
    let ran = match kind {
        InputKind::Hl7 => match Message::parse(&bytes) {
            Ok(message) => mapping.run(&Input::Hl7(&message), GOLDEN_NOW),
            Err(e) => return fail(result, format!("the input is not a readable HL7 v2 message: {e}")),
        },
        InputKind::Json => match serde_json::from_slice::<Value>(&bytes) {
            Ok(json) => mapping.run(&Input::Fhir(&json), GOLDEN_NOW),
            Err(e) => return fail(result, format!("the input is not JSON: {e}")),
        },
    };
    let is_hl7_expected = expected_path.to_string_lossy().ends_with(".out.hl7");
    if is_hl7_expected {
        let expected = match Message::parse(&expected) {
            Ok(message) => message,
            Err(e) => {
                return fail(
                    result,
                    format!("the expected output is not a readable HL7 v2 message: {e}"),
                );
            }
        };
        match ran {
            Ok(output) => {
                result.fired = output.fired.clone();
                match output.message.as_deref().map(Message::parse_str) {
                    Some(Ok(got)) => result.mismatches = diff_hl7(&expected, &got),
                    Some(Err(e)) => fail(result, format!("the mapping built an unreadable message: {e}")),
                    None => fail(
                        result,
                        "the mapping builds FHIR, but the expected output is .out.hl7".into(),
                    ),
                }
            }
            Err(e) => fail(result, e.to_string()),
        }
        return;
    }
    let expected: Value = match serde_json::from_slice(&expected) {
        Ok(json) => json,
        Err(e) => return fail(result, format!("the expected output is not JSON: {e}")),
    };
    if let Some(wanted) = expected.get("@error") {
        let wanted = wanted.as_str().unwrap_or_default();
        match ran {
            Err(e) if e.to_string().contains(wanted) => {}
            Err(e) => result.mismatches.push(Mismatch {
                path: "@error".into(),
                expected: Some(json_text(&Value::String(wanted.into()))),
                got: Some(json_text(&Value::String(e.to_string()))),
            }),
            Ok(output) => {
                result.fired = output.fired;
                result.mismatches.push(Mismatch {
                    path: "@error".into(),
                    expected: Some(json_text(&Value::String(wanted.into()))),
                    got: None,
                });
            }
        }
        return;
    }
    match ran {
        Ok(output) => {
            result.fired = output.fired.clone();
            match got_document(output) {
                Some(got) => result.mismatches = diff_json(&normalise(expected), &got),
                None => fail(
                    result,
                    "the mapping builds HL7 v2, but the expected output is .out.json".into(),
                ),
            }
        }
        Err(e) => fail(result, e.to_string()),
    }
}

/// The resource with the metadata beside it, as a golden file writes them.
fn got_document(output: Output) -> Option<Value> {
    let Some(Value::Object(mut map)) = output.resource else {
        return None;
    };
    if let Some(action) = output.action {
        map.insert("@action".into(), Value::String(action));
    }
    if !output.previous.is_empty() {
        map.insert("@previous".into(), Value::Array(output.previous));
    }
    Some(normalise(Value::Object(map)))
}

/// `"@action": "upsert"` and `"@previous": []` say what their absence says.
fn normalise(mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        if map.get("@action").and_then(Value::as_str) == Some("upsert") {
            map.remove("@action");
        }
        if map
            .get("@previous")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            map.remove("@previous");
        }
    }
    value
}

fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Every leaf (`identifier[1].system`) with its value as JSON text.
fn flatten(value: &Value, path: &str, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                flatten(child, &child_path, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, child) in items.iter().enumerate() {
                flatten(child, &format!("{path}[{i}]"), out);
            }
        }
        leaf => {
            out.insert(path.to_owned(), json_text(leaf));
        }
    }
}

/// Field-level differences between two JSON documents.
pub fn diff_json(expected: &Value, got: &Value) -> Vec<Mismatch> {
    let (mut want, mut have) = (BTreeMap::new(), BTreeMap::new());
    flatten(expected, "", &mut want);
    flatten(got, "", &mut have);
    let mut paths: Vec<&String> = want.keys().chain(have.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter(|p| want.get(*p) != have.get(*p))
        .map(|p| Mismatch {
            path: if p.is_empty() {
                "(document)".into()
            } else {
                p.clone()
            },
            expected: want.get(p).cloned(),
            got: have.get(p).cloned(),
        })
        .collect()
}

/// A field as nested lists: repetitions, components, subcomponents (unescaped).
type Grid = Vec<Vec<Vec<String>>>;

fn grid(raw: &str, d: &Delimiters) -> Grid {
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(d.repetition)
        .map(|rep| {
            rep.split(d.component)
                .map(|c| c.split(d.subcomponent).map(|s| unescape(s, d)).collect())
                .collect()
        })
        .collect()
}

fn quoted(text: &str) -> String {
    json_text(&Value::String(text.to_owned()))
}

/// Segments by name and occurrence: `PID`, `OBX[2]`.
fn keyed<'m>(message: &'m Message) -> Vec<(String, Segment<'m>)> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    message
        .segments()
        .map(|segment| {
            let n = counts.entry(segment.name()).or_insert(0);
            *n += 1;
            let key = if *n == 1 {
                segment.name().to_owned()
            } else {
                format!("{}[{n}]", segment.name())
            };
            (key, segment)
        })
        .collect()
}

/// Field-level differences between two HL7 v2 messages (MSH-10 not compared).
pub fn diff_hl7(expected: &Message, got: &Message) -> Vec<Mismatch> {
    let want = keyed(expected);
    let have = keyed(got);
    let mut keys: Vec<&String> = want.iter().map(|(k, _)| k).collect();
    for (key, _) in &have {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let mut out = Vec::new();
    for key in keys {
        let w = want.iter().find(|(k, _)| k == key).map(|(_, s)| s);
        let h = have.iter().find(|(k, _)| k == key).map(|(_, s)| s);
        match (w, h) {
            (Some(w), Some(h)) => diff_segment(key, w, h, expected.delimiters(), got.delimiters(), &mut out),
            _ => out.push(Mismatch {
                path: key.clone(),
                expected: w.map(|s| quoted(s.raw())),
                got: h.map(|s| quoted(s.raw())),
            }),
        }
    }
    out
}

fn diff_segment(
    key: &str,
    want: &Segment<'_>,
    have: &Segment<'_>,
    dw: &Delimiters,
    dh: &Delimiters,
    out: &mut Vec<Mismatch>,
) {
    let is_msh = want.name() == "MSH";
    for n in 1..=want.field_count().max(have.field_count()) {
        if is_msh && n == 10 {
            continue;
        }
        let (rw, rh) = (want.field(n).raw(), have.field(n).raw());
        if is_msh && n <= 2 {
            if rw != rh {
                out.push(Mismatch {
                    path: format!("{key}-{n}"),
                    expected: Some(quoted(rw)),
                    got: Some(quoted(rh)),
                });
            }
            continue;
        }
        let (gw, gh) = (grid(rw, dw), grid(rh, dh));
        if gw != gh {
            diff_field(&format!("{key}-{n}"), &gw, &gh, out);
        }
    }
}

fn diff_field(field_path: &str, want: &Grid, have: &Grid, out: &mut Vec<Mismatch>) {
    let several_reps = want.len() > 1 || have.len() > 1;
    for r in 0..want.len().max(have.len()) {
        let (cw, ch) = (want.get(r), have.get(r));
        if cw == ch {
            continue;
        }
        let rep_path = if several_reps {
            format!("{field_path}[{}]", r + 1)
        } else {
            field_path.to_owned()
        };
        let empty = Vec::new();
        let (cw, ch) = (cw.unwrap_or(&empty), ch.unwrap_or(&empty));
        let several_components = cw.len() > 1 || ch.len() > 1;
        for c in 0..cw.len().max(ch.len()) {
            let (sw, sh) = (cw.get(c), ch.get(c));
            if sw == sh {
                continue;
            }
            let component_path = if several_components {
                format!("{rep_path}.{}", c + 1)
            } else {
                rep_path.clone()
            };
            let several_subs = sw.is_some_and(|s| s.len() > 1) || sh.is_some_and(|s| s.len() > 1);
            if !several_subs {
                let text = |s: Option<&Vec<String>>| {
                    s.and_then(|s| s.first())
                        .filter(|t| !t.is_empty())
                        .map(|t| quoted(t))
                };
                out.push(Mismatch {
                    path: component_path,
                    expected: text(sw),
                    got: text(sh),
                });
                continue;
            }
            let none = Vec::new();
            let (sw, sh) = (sw.unwrap_or(&none), sh.unwrap_or(&none));
            for s in 0..sw.len().max(sh.len()) {
                let text = |v: &Vec<String>| v.get(s).filter(|t| !t.is_empty()).map(|t| quoted(t));
                if text(sw) != text(sh) {
                    out.push(Mismatch {
                        path: format!("{component_path}.{}", s + 1),
                        expected: text(sw),
                        got: text(sh),
                    });
                }
            }
        }
    }
}
