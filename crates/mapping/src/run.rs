//! The executor: runs a compiled program over one input and builds the output.
//!
//! Nothing is parsed or looked up by name here: paths, tables and variables were resolved when
//! the mapping was compiled. Values read from the message borrow its text unless they need
//! unescaping. A `for` with a target builds each element on its own and adds it to its list only
//! if something was written into it, so an item with nothing to say leaves no empty element.

use std::borrow::Cow;
use std::cell::Cell;

use serde_json::{Map, Value};
use tributary_hl7::{Delimiters, Message, Repetition, Segment, escape, unescape};

use crate::compile::{
    ACTIONS, ArrayTarget, CCond, CExpr, FhirRoot, FhirSource, ForSource, Lit, Op, Program, Target,
};
use crate::datetime::{self, Offset};
use crate::fhir_out;
use crate::fhirpath::{self, Collection};
use crate::functions::{self, Func};
use crate::hl7_out::{Draft, DraftRep, DraftSegment};
use crate::path::{ComponentPath, FieldPath, Sel, TIdx};
use crate::value::Val;
use crate::{Input, Output, RuleRef, RunError, SourceKind, TargetKind};

/// What a variable slot holds.
#[derive(Debug, Clone)]
enum Binding<'a> {
    Unset,
    Value(Val<'a>),
    /// A repetition item (its components found once) and its number (1-based) in its field.
    Repetition(Item<'a>, usize),
    /// A segment item, its occurrence (1-based), its place among the message's segments and the
    /// end of the group it was found in (the message's end at the top): a group it opens with
    /// `under` ends there at the latest, so an NTE after the next OBR is not an OBX's.
    Segment(Segment<'a>, usize, usize, usize),
    Json(&'a Value),
}

/// The document being built.
enum Doc {
    Fhir(Map<String, Value>),
    Hl7(Draft),
}

/// The element a `for` is building for one item.
enum Elem {
    Fhir(Map<String, Value>),
    Segment(DraftSegment),
    Repetition(DraftRep),
}

impl Elem {
    fn is_empty(&self) -> bool {
        match self {
            Elem::Fhir(map) => map.is_empty(),
            Elem::Segment(segment) => segment.is_empty(),
            Elem::Repetition(repetition) => repetition.is_empty(),
        }
    }
}

struct Exec<'a> {
    program: &'a Program,
    message: Option<&'a Message>,
    /// The message's segments with their names (`segment_key`), found once per run: paths look
    /// them up often.
    segments: Vec<(u32, Segment<'a>)>,
    resource: Option<&'a Value>,
    now: &'a str,
    slots: Vec<Binding<'a>>,
    fired: Vec<RuleRef>,
    /// Which rules are in `fired` already: each is reported once, at its first write.
    has_fired: Seen,
    action: Option<String>,
    /// Holds `@previous` while the mapping runs.
    meta: Map<String, Value>,
    /// Set when a FHIR index padded a list: empty elements are pruned at the end.
    padded: bool,
    /// MSH-7's offset, read the first time a time without an offset needs it.
    fallback: Cell<Option<Option<Offset>>>,
}

/// Errors are rare and `RunError` is large: boxed, it keeps every `Result` that carries a value
/// small to move.
type Fallible<T> = Result<T, Box<RunError>>;

fn run_error(line: usize, path: impl Into<String>, message: impl Into<String>) -> Box<RunError> {
    Box::new(RunError {
        line,
        path: path.into(),
        message: message.into(),
    })
}

/// Runs `program` over `input`; `now` is the current instant as HL7 TS.
pub fn execute<'a>(program: &'a Program, input: &Input<'a>, now: &'a str) -> Result<Output, RunError> {
    let (message, resource) = match (input, program.source) {
        (Input::Hl7(message), SourceKind::Hl7v2) => (Some(*message), None),
        (Input::Fhir(resource), SourceKind::Fhir) => (None, Some(*resource)),
        (Input::Hl7(_), SourceKind::Fhir) => {
            return Err(*run_error(
                0,
                "",
                "this mapping reads FHIR JSON, and was given an HL7 v2 message",
            ));
        }
        (Input::Fhir(_), SourceKind::Hl7v2) => {
            return Err(*run_error(
                0,
                "",
                "this mapping reads HL7 v2, and was given FHIR JSON",
            ));
        }
    };
    let segments = message
        .map(|m| m.segments().map(|s| (segment_key(s.name()), s)).collect())
        .unwrap_or_default();
    let mut exec = Exec {
        program,
        message,
        segments,
        resource,
        now,
        slots: vec![Binding::Unset; program.slot_count],
        // Room for every rule, up to 1000 bytes: a larger block leaves malloc's per-thread caches
        // (and glibc then consolidates its free lists).
        fired: Vec::with_capacity(program.rule_count.min(1000 / size_of::<RuleRef>())),
        has_fired: Seen::new(program.rule_count),
        action: None,
        meta: Map::new(),
        padded: false,
        fallback: Cell::new(None),
    };
    let mut doc = match &program.target {
        TargetKind::Fhir { resource_type } => {
            let mut map = Map::new();
            map.insert("resourceType".into(), Value::String(resource_type.clone()));
            Doc::Fhir(map)
        }
        TargetKind::Hl7v2 {
            message_type,
            version,
        } => Doc::Hl7(Draft::new(message_type, version)),
    };
    exec.exec(&program.body, &mut doc, None).map_err(|e| *e)?;
    let (resource, message) = match doc {
        Doc::Fhir(map) => {
            let mut value = Value::Object(map);
            if exec.padded {
                fhir_out::prune(&mut value);
            }
            (Some(value), None)
        }
        Doc::Hl7(draft) => (None, Some(draft.finish())),
    };
    let mut previous = match exec.meta.remove("@previous") {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    if exec.padded {
        previous.iter_mut().for_each(fhir_out::prune);
        previous.retain(|p| p.as_object().is_none_or(|o| !o.is_empty()));
    }
    Ok(Output {
        resource,
        message,
        action: exec.action,
        previous,
        fired: exec.fired,
    })
}

/// The piece of a message at `raw`: null for `""`, absent when empty, else its text, borrowed
/// unless it holds an escape.
fn piece<'a>(raw: &'a str, is_empty: bool, delimiters: &Delimiters) -> Val<'a> {
    if raw == "\"\"" {
        Val::Null
    } else if is_empty {
        Val::Absent
    } else if holds(raw, delimiters.escape) {
        Val::text(unescape(raw, delimiters))
    } else {
        Val::Text(Cow::Borrowed(raw))
    }
}

/// `raw.contains(c)`, without a library call for the short pieces mappings read: delimiters are
/// ASCII (`Delimiters::read_from_msh` checks), and for them eight bytes are looked at a time.
fn holds(raw: &str, c: char) -> bool {
    let Some(byte) = ascii(c) else {
        return raw.contains(c);
    };
    let mut words = raw.as_bytes().chunks_exact(8);
    if words.any(|word| matching_bytes(word, byte) != 0) {
        return true;
    }
    words.remainder().contains(&byte)
}

/// A segment name as a number, so that finding a segment compares no text. Names are three
/// ASCII characters; anything else gets a number no name has.
fn segment_key(name: &str) -> u32 {
    match name.as_bytes() {
        &[a, b, c] => u32::from_le_bytes([a, b, c, 0]),
        _ => u32::MAX,
    }
}

/// Most components a repetition item has found at once; later ones are looked for on demand.
const ITEM_COMPONENTS: usize = 16;

/// A repetition item of a `for`. A block reads several components of its item (`cx.1`,
/// `cx.4.2`, `cx.5`, each often more than once): they are found in one pass when the item is
/// bound rather than by splitting the repetition again on every read.
#[derive(Debug, Clone, Copy)]
struct Item<'a> {
    repetition: Repetition<'a>,
    /// Component n (1-based, up to `found`) ends at byte `ends[n - 1]` of the repetition and
    /// starts after the delimiter that ends component n - 1.
    ends: [u16; ITEM_COMPONENTS],
    found: u8,
    /// True when `found` components are all the repetition has.
    complete: bool,
    /// The delimiters the components were found with (none found when `None`).
    component: Option<u8>,
    subcomponent: u8,
}

impl<'a> Item<'a> {
    /// `delimiters` are those `repetition` was split with, or `None` to find no components ahead
    /// (MSH-1 and MSH-2, which are never split).
    fn new(repetition: Repetition<'a>, delimiters: Option<&Delimiters>) -> Item<'a> {
        let mut item = Item {
            repetition,
            ends: [0; ITEM_COMPONENTS],
            found: 0,
            complete: false,
            component: None,
            subcomponent: 0,
        };
        let raw = repetition.raw();
        let bytes = delimiters.and_then(|d| Some((ascii(d.component)?, ascii(d.subcomponent)?)));
        let Some((component, subcomponent)) = bytes else {
            return item;
        };
        if u16::try_from(raw.len()).is_err() {
            return item;
        }
        item.component = Some(component);
        item.subcomponent = subcomponent;
        // Eight bytes at a time: the delimiters in a word are found with a few arithmetic steps
        // rather than a branch per byte.
        let bytes = raw.as_bytes();
        let mut found = 0;
        let mut words = bytes.chunks_exact(8);
        let mut at = 0;
        for word in &mut words {
            let mut matches = matching_bytes(word, component);
            while matches != 0 {
                if found == ITEM_COMPONENTS {
                    item.found = found as u8;
                    return item;
                }
                // Fits: the length was checked above.
                item.ends[found] = (at + matches.trailing_zeros() as usize / 8) as u16;
                found += 1;
                matches &= matches - 1;
            }
            at += 8;
        }
        for (offset, &b) in words.remainder().iter().enumerate() {
            if b == component {
                if found == ITEM_COMPONENTS {
                    item.found = found as u8;
                    return item;
                }
                item.ends[found] = (at + offset) as u16;
                found += 1;
            }
        }
        if found < ITEM_COMPONENTS {
            item.ends[found] = raw.len() as u16;
            found += 1;
            item.complete = true;
        }
        item.found = found as u8;
        item
    }

    /// Component `n` (1-based) as written; `None` when it was not found ahead.
    fn component(&self, n: usize) -> Option<&'a str> {
        if n == 0 || n > usize::from(self.found) {
            return self.complete.then_some("");
        }
        let start = match n {
            1 => 0,
            _ => usize::from(self.ends[n - 2]) + 1,
        };
        self.repetition.raw().get(start..usize::from(self.ends[n - 1]))
    }

    /// The value at `path` within the item, as `repetition_value` reads it.
    fn value(&self, path: &ComponentPath, delimiters: &Delimiters) -> Val<'a> {
        let found = match (path.component, self.component) {
            (Some(c), Some(_)) => self.component(c),
            _ => None,
        };
        let Some(component) = found else {
            return repetition_value(self.repetition, path, delimiters);
        };
        let sub = self.subcomponent;
        match path.subcomponent {
            None => piece(component, component.bytes().all(|b| b == sub), delimiters),
            Some(s) => {
                let raw = nth_piece(component, sub, s);
                piece(raw, raw.is_empty(), delimiters)
            }
        }
    }
}

/// The bytes of `word` (8 of them) that equal `byte`: the high bit of each such byte's place in a
/// little-endian `u64`, every other bit clear.
fn matching_bytes(word: &[u8], byte: u8) -> u64 {
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let mut bytes = [0; 8];
    bytes.copy_from_slice(word);
    let x = u64::from_le_bytes(bytes) ^ u64::from_le_bytes([byte; 8]);
    // A byte of x is zero exactly where `word` holds `byte`: its high bit is clear and adding
    // 0x7f to its low bits carries nothing into the high bit (and never into the next byte).
    !(((x & LOW) + LOW) | x | LOW)
}

fn ascii(c: char) -> Option<u8> {
    u8::try_from(c).ok().filter(u8::is_ascii)
}

/// Piece `n` (1-based) of `raw` split on the ASCII byte `separator`; empty when absent. Eight
/// bytes are looked at a time: paths read into long fields (`PID-3.4.2` past a whole CX).
fn nth_piece(raw: &str, separator: u8, n: usize) -> &str {
    let Some(mut index) = n.checked_sub(1) else {
        return "";
    };
    // An ASCII byte is a whole character: every cut is a boundary.
    let mut start = 0;
    let mut at = 0;
    let mut words = raw.as_bytes().chunks_exact(8);
    for word in &mut words {
        let mut matches = matching_bytes(word, separator);
        while matches != 0 {
            let end = at + matches.trailing_zeros() as usize / 8;
            if index == 0 {
                return raw.get(start..end).unwrap_or_default();
            }
            index -= 1;
            start = end + 1;
            matches &= matches - 1;
        }
        at += 8;
    }
    for (offset, &b) in words.remainder().iter().enumerate() {
        if b == separator {
            if index == 0 {
                return raw.get(start..at + offset).unwrap_or_default();
            }
            index -= 1;
            start = at + offset + 1;
        }
    }
    match index {
        0 => raw.get(start..).unwrap_or_default(),
        _ => "",
    }
}

/// The delimiters that split a field, as bytes.
#[derive(Debug, Clone, Copy)]
struct Splitters {
    repetition: u8,
    component: u8,
    subcomponent: u8,
}

impl Splitters {
    /// `None` for delimiters that are not ASCII (a message's always are).
    fn of(delimiters: &Delimiters) -> Option<Splitters> {
        Some(Splitters {
            repetition: ascii(delimiters.repetition)?,
            component: ascii(delimiters.component)?,
            subcomponent: ascii(delimiters.subcomponent)?,
        })
    }
}

/// The value at `path` within a repetition as written (`repetition_value` without the views).
fn component_value<'a>(
    repetition: &'a str,
    path: &ComponentPath,
    splitters: Splitters,
    delimiters: &Delimiters,
) -> Val<'a> {
    let Splitters {
        component: c,
        subcomponent: s,
        ..
    } = splitters;
    match (path.component, path.subcomponent) {
        (None, _) => piece(
            repetition,
            repetition.bytes().all(|b| b == c || b == s),
            delimiters,
        ),
        (Some(n), None) => {
            let component = nth_piece(repetition, c, n);
            piece(component, component.bytes().all(|b| b == s), delimiters)
        }
        (Some(n), Some(m)) => {
            let raw = nth_piece(nth_piece(repetition, c, n), s, m);
            piece(raw, raw.is_empty(), delimiters)
        }
    }
}

fn repetition_value<'a>(
    repetition: Repetition<'a>,
    path: &ComponentPath,
    delimiters: &Delimiters,
) -> Val<'a> {
    match (path.component, path.subcomponent) {
        (None, _) => piece(repetition.raw(), repetition.is_empty(), delimiters),
        (Some(c), None) => {
            let component = repetition.component(c);
            piece(component.raw(), component.is_empty(), delimiters)
        }
        (Some(c), Some(s)) => {
            let raw = repetition.component(c).subcomponent(s);
            piece(raw, raw.is_empty(), delimiters)
        }
    }
}

fn nth_repetition<'a>(segment: &Segment<'a>, field: usize, repetition: Sel) -> Option<Repetition<'a>> {
    let field = segment.field(field);
    match repetition {
        Sel::Nth(1) => Some(field.first()),
        Sel::Nth(n) => field.repetitions().nth(n - 1),
        Sel::All => None,
    }
}

fn segment_value<'a>(segment: &Segment<'a>, path: &FieldPath, delimiters: &Delimiters) -> Val<'a> {
    if path.field <= 2 && segment.name() == "MSH" {
        // MSH-1 and MSH-2 are the delimiters themselves: never split nor unescaped.
        return Val::text(segment.field(path.field).raw());
    }
    let Some(splitters) = Splitters::of(delimiters) else {
        return match nth_repetition(segment, path.field, path.repetition) {
            Some(repetition) => repetition_value(repetition, &path.component, delimiters),
            None => Val::Absent,
        };
    };
    match path.repetition {
        Sel::Nth(n) => {
            let repetition = nth_piece(segment.field(path.field).raw(), splitters.repetition, n);
            component_value(repetition, &path.component, splitters, delimiters)
        }
        Sel::All => Val::Absent,
    }
}

/// The text an HL7 v2 field is written with: escaped, `""` for null.
fn hl7_encode(value: &Val<'_>) -> Result<String, String> {
    if let Val::Null = value {
        return Ok("\"\"".into());
    }
    match value.as_text() {
        Some(text) => Ok(escape(&text, &Delimiters::default())),
        None => Err(
            "a FHIR element (object or list) cannot be written into an HL7 v2 field; pick a value inside it"
                .into(),
        ),
    }
}

impl<'a> Exec<'a> {
    fn exec(&mut self, ops: &'a [Op], doc: &mut Doc, mut elem: Option<&mut Elem>) -> Fallible<()> {
        for op in ops {
            match op {
                Op::Assign {
                    line,
                    rule,
                    target,
                    expr,
                    when,
                    display,
                } => {
                    if let Some(cond) = when
                        && !self.cond(cond, *line)?
                    {
                        continue;
                    }
                    let value = self.eval(expr, *line)?;
                    if value.is_absent() {
                        continue;
                    }
                    let wrote = self
                        .write(target, value, doc, elem.as_deref_mut())
                        .map_err(|message| run_error(*line, *display, message))?;
                    if wrote && self.has_fired.mark(*rule) {
                        self.fired.push(RuleRef {
                            line: *line,
                            target: display,
                        });
                    }
                }
                Op::Let {
                    line,
                    slot,
                    expr,
                    when,
                } => {
                    let value = match when {
                        Some(cond) if !self.cond(cond, *line)? => Val::Absent,
                        _ => self.eval(expr, *line)?,
                    };
                    self.slots[*slot] = Binding::Value(value);
                }
                Op::When { line, cond, body } => {
                    if self.cond(cond, *line)? {
                        self.exec(body, doc, elem.as_deref_mut())?;
                    }
                }
                Op::For {
                    line,
                    slot,
                    source,
                    when,
                    target,
                    body,
                } => {
                    let each = Each {
                        slot: *slot,
                        when: when.as_ref(),
                        target: target.as_ref(),
                        body,
                        line: *line,
                    };
                    self.for_each(source, &each, doc, elem.as_deref_mut())?;
                }
            }
        }
        Ok(())
    }

    fn for_each(
        &mut self,
        source: &'a ForSource,
        each: &Each<'a>,
        doc: &mut Doc,
        mut elem: Option<&mut Elem>,
    ) -> Fallible<()> {
        match source {
            ForSource::Repetitions(path) => {
                let Some(segment) = self.segment(&path.segment, path.occurrence) else {
                    return Ok(());
                };
                self.each_repetition(segment, path.field.field, each, doc, elem)
            }
            ForSource::ItemRepetitions { slot, field } => {
                let Binding::Segment(segment, ..) = self.slots[*slot] else {
                    return Ok(());
                };
                self.each_repetition(segment, *field, each, doc, elem)
            }
            ForSource::Segments(name) => {
                let key = segment_key(name);
                let mut occurrence = 0;
                for index in 0..self.segments.len() {
                    let (segment_key, segment) = self.segments[index];
                    if segment_key != key {
                        continue;
                    }
                    occurrence += 1;
                    self.slots[each.slot] = Binding::Segment(segment, occurrence, index, self.segments.len());
                    self.iteration(each, doc, elem.as_deref_mut())?;
                }
                Ok(())
            }
            ForSource::SegmentsUnder { name, slot } => {
                let Binding::Segment(_, _, opener, limit) = self.slots[*slot] else {
                    return Ok(());
                };
                let group = self.segments[opener].0;
                let end = (opener + 1..limit)
                    .find(|&i| self.segments[i].0 == group)
                    .unwrap_or(limit);
                let key = segment_key(name);
                // Occurrences count from the top of the message, so an error names `OBX[5]-5`
                // as the sender counts it.
                let mut occurrence = self.segments[..=opener].iter().filter(|(k, _)| *k == key).count();
                for index in opener + 1..end {
                    let (segment_key, segment) = self.segments[index];
                    if segment_key != key {
                        continue;
                    }
                    occurrence += 1;
                    self.slots[each.slot] = Binding::Segment(segment, occurrence, index, end);
                    self.iteration(each, doc, elem.as_deref_mut())?;
                }
                Ok(())
            }
            ForSource::Fhir(source) => {
                let items = match self.fhir(source) {
                    Collection::Items(items) => items,
                    Collection::Bool(_) => Vec::new(),
                };
                for item in items {
                    self.slots[each.slot] = Binding::Json(item);
                    self.iteration(each, doc, elem.as_deref_mut())?;
                }
                Ok(())
            }
        }
    }

    /// Every repetition of a field that holds something: empty ones and HL7's `""` are skipped.
    fn each_repetition(
        &mut self,
        segment: Segment<'a>,
        field: usize,
        each: &Each<'a>,
        doc: &mut Doc,
        mut elem: Option<&mut Elem>,
    ) -> Fallible<()> {
        // MSH-1 and MSH-2 are never split (`Segment::field`): their items find no components.
        let delimiters = (field > 2 || segment.name() != "MSH").then(|| self.delimiters());
        for (i, repetition) in segment.field(field).repetitions().enumerate() {
            if repetition.is_empty() || repetition.raw() == "\"\"" {
                continue;
            }
            self.slots[each.slot] = Binding::Repetition(Item::new(repetition, delimiters), i + 1);
            self.iteration(each, doc, elem.as_deref_mut())?;
        }
        Ok(())
    }

    /// One item of a `for`: its condition, its body, and the element it built.
    fn iteration(&mut self, each: &Each<'a>, doc: &mut Doc, elem: Option<&mut Elem>) -> Fallible<()> {
        if let Some(cond) = each.when
            && !self.cond(cond, each.line)?
        {
            return Ok(());
        }
        let Some(target) = each.target else {
            return self.exec(each.body, doc, elem);
        };
        let mut built = match target {
            ArrayTarget::Fhir(_) | ArrayTarget::Previous(_) => Elem::Fhir(Map::new()),
            ArrayTarget::Segment(name) => Elem::Segment(DraftSegment::new(name)),
            ArrayTarget::Repetition(_) => Elem::Repetition(DraftRep::default()),
        };
        self.exec(each.body, doc, Some(&mut built))?;
        if built.is_empty() {
            return Ok(());
        }
        let internal = || run_error(each.line, "", "internal error: the element does not fit its list");
        match (target, built) {
            (ArrayTarget::Fhir(steps), Elem::Fhir(map)) => {
                let base = fhir_base(doc, elem).ok_or_else(internal)?;
                fhir_out::write(base, steps, Value::Object(map), &mut self.padded)
                    .map_err(|m| run_error(each.line, "", m))?;
            }
            (ArrayTarget::Previous(steps), Elem::Fhir(map)) => {
                fhir_out::write(&mut self.meta, steps, Value::Object(map), &mut self.padded)
                    .map_err(|m| run_error(each.line, "@previous[]", m))?;
            }
            (ArrayTarget::Segment(_), Elem::Segment(segment)) => match doc {
                Doc::Hl7(draft) => draft.push_segment(segment),
                Doc::Fhir(_) => return Err(internal()),
            },
            (ArrayTarget::Repetition(target), Elem::Repetition(repetition)) => {
                let (field, _) = target.field.ok_or_else(internal)?;
                match (&target.segment, doc, elem) {
                    (Some((name, TIdx::At(n))), Doc::Hl7(draft), _) => {
                        draft.segment_mut(name, *n).push_repetition(field, repetition);
                    }
                    (None, _, Some(Elem::Segment(segment))) => segment.push_repetition(field, repetition),
                    _ => return Err(internal()),
                }
            }
            _ => return Err(internal()),
        }
        Ok(())
    }

    /// Writes one value; false when nothing was written (a null appended to a list).
    fn write(
        &mut self,
        target: &'a Target,
        value: Val<'a>,
        doc: &mut Doc,
        elem: Option<&mut Elem>,
    ) -> Result<bool, String> {
        match target {
            Target::Action => {
                let action = value.as_text().map(Cow::into_owned).unwrap_or_default();
                if !ACTIONS.contains(&action.as_str()) {
                    return Err(format!(
                        "`@action` must be one of {}, not {action:?}",
                        ACTIONS.join(", ")
                    ));
                }
                self.action = Some(action);
                Ok(true)
            }
            Target::Previous(steps) => {
                let json = value.into_json().unwrap_or(Value::Null);
                fhir_out::write(&mut self.meta, steps, json, &mut self.padded)
            }
            Target::Fhir(steps) => {
                let base =
                    fhir_base(doc, elem).ok_or("internal error: a FHIR target outside a FHIR document")?;
                let json = value.into_json().unwrap_or(Value::Null);
                fhir_out::write(base, steps, json, &mut self.padded)
            }
            Target::Hl7(target) => {
                let encoded = hl7_encode(&value)?;
                let (component, subcomponent) = (target.component, target.subcomponent);
                match (&target.segment, target.field, doc, elem) {
                    (Some((name, occurrence)), Some((field, repetition)), Doc::Hl7(draft), _) => {
                        let segment = match occurrence {
                            TIdx::At(n) => draft.segment_mut(name, *n),
                            TIdx::Append => draft.new_segment(name),
                        };
                        segment
                            .repetition_mut(field, repetition)
                            .set(component, subcomponent, encoded);
                    }
                    (None, Some((field, repetition)), _, Some(Elem::Segment(segment))) => {
                        segment
                            .repetition_mut(field, repetition)
                            .set(component, subcomponent, encoded);
                    }
                    (None, None, _, Some(Elem::Repetition(rep))) => rep.set(component, subcomponent, encoded),
                    _ => {
                        return Err(
                            "internal error: the HL7 v2 target does not fit where it is written".into(),
                        );
                    }
                }
                Ok(true)
            }
        }
    }

    fn segment(&self, name: &str, occurrence: Sel) -> Option<Segment<'a>> {
        let n = match occurrence {
            Sel::Nth(n) => n,
            Sel::All => return None,
        };
        let key = segment_key(name);
        self.segments
            .iter()
            .filter(|(segment_key, _)| *segment_key == key)
            .nth(n - 1)
            .map(|(_, segment)| *segment)
    }

    fn delimiters(&self) -> &'a Delimiters {
        match self.message {
            Some(message) => message.delimiters(),
            None => &DEFAULT_DELIMITERS,
        }
    }

    fn fallback_offset(&self) -> Option<Offset> {
        if let Some(known) = self.fallback.get() {
            return known;
        }
        let offset = self
            .segment("MSH", Sel::Nth(1))
            .and_then(|msh| datetime::hl7_offset(msh.field(7).component(1).raw()));
        self.fallback.set(Some(offset));
        offset
    }

    fn fhir(&self, source: &FhirSource) -> Collection<'a> {
        let start: Vec<&'a Value> = match &source.root {
            FhirRoot::Resource(name) => self
                .resource
                .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some(name))
                .into_iter()
                .collect(),
            FhirRoot::Item(slot) => match self.slots[*slot] {
                Binding::Json(item) => vec![item],
                _ => Vec::new(),
            },
        };
        fhirpath::eval(start, &source.steps)
    }

    /// A value to look at: a variable's is borrowed from its slot rather than copied.
    fn peek(&self, expr: &'a CExpr, line: usize) -> Fallible<Cow<'_, Val<'a>>> {
        Ok(match expr {
            CExpr::Var(slot) => match &self.slots[*slot] {
                Binding::Value(value) => Cow::Borrowed(value),
                _ => Cow::Owned(Val::Absent),
            },
            // The most common reads, without a trip through `eval`.
            CExpr::Rep { slot, path, .. } => Cow::Owned(self.item_value(*slot, path)),
            CExpr::Lit(Lit::Text(text)) => Cow::Owned(Val::text(text.as_str())),
            _ => Cow::Owned(self.eval(expr, line)?),
        })
    }

    fn item_value(&self, slot: usize, path: &ComponentPath) -> Val<'a> {
        match &self.slots[slot] {
            Binding::Repetition(item, _) => item.value(path, self.delimiters()),
            _ => Val::Absent,
        }
    }

    fn eval(&self, expr: &'a CExpr, line: usize) -> Fallible<Val<'a>> {
        Ok(match expr {
            CExpr::Lit(Lit::Text(text)) => Val::text(text.as_str()),
            CExpr::Lit(Lit::Json(json)) => Val::json(json),
            CExpr::Lit(Lit::Null) => Val::Null,
            CExpr::Hl7(path) => match self.segment(&path.segment, path.occurrence) {
                Some(segment) => segment_value(&segment, &path.field, self.delimiters()),
                None => Val::Absent,
            },
            CExpr::Rep { slot, path, .. } => self.item_value(*slot, path),
            CExpr::Seg { slot, path, .. } => match &self.slots[*slot] {
                Binding::Segment(segment, ..) => segment_value(segment, path, self.delimiters()),
                _ => Val::Absent,
            },
            CExpr::Var(slot) => match &self.slots[*slot] {
                Binding::Value(value) => value.clone(),
                _ => Val::Absent,
            },
            CExpr::Fhir(source) => match self.fhir(source) {
                Collection::Items(items) => items.first().map_or(Val::Absent, |v| Val::json(v)),
                Collection::Bool(b) => Val::Json(if b { &TRUE } else { &FALSE }),
            },
            CExpr::Text(func, arg) => {
                let value = match (func, self.peek(arg, line)?) {
                    // Text built by this run (a concat): trimmed where it is, not copied.
                    (Func::Trim, Cow::Owned(Val::Text(Cow::Owned(text)))) => {
                        return Ok(functions::trim_owned(text));
                    }
                    (_, value) => value,
                };
                let fallback = match func {
                    Func::DateTime | Func::Instant => self.fallback_offset(),
                    _ => None,
                };
                functions::apply_text(*func, &value, fallback)
            }
            CExpr::Concat(parts) => self.concat(parts, line)?,
            CExpr::Id(parts) => {
                let values = parts
                    .iter()
                    .map(|p| self.eval(p, line))
                    .collect::<Result<Vec<_>, _>>()?;
                functions::id(&values)
            }
            CExpr::Split(arg, separator, n) => functions::split(&*self.peek(arg, line)?, separator, *n),
            CExpr::Join(path, separator) => {
                let key = segment_key(&path.segment);
                let parts: Vec<String> = self
                    .segments
                    .iter()
                    .filter(|(k, _)| *k == key)
                    .filter_map(|(_, segment)| {
                        segment_value(segment, &path.field, self.delimiters())
                            .as_text()
                            .map(|t| t.into_owned())
                    })
                    .collect();
                Val::text(parts.join(separator))
            }
            CExpr::Lookup(table, key) => {
                let key = self.peek(key, line)?;
                let table = &self.program.tables[*table];
                match key.as_text().and_then(|k| table.get(&k)) {
                    Some(to) => Val::text(to),
                    None => Val::Absent,
                }
            }
            CExpr::Required(inner, written) => {
                let value = self.eval(inner, line)?;
                if !value.exists() {
                    let (path, message) = self.describe_missing(inner, written);
                    return Err(run_error(line, path, message));
                }
                value
            }
            CExpr::Coalesce(parts) => {
                for part in parts {
                    let value = self.eval(part, line)?;
                    if !value.is_absent() {
                        return Ok(value);
                    }
                }
                Val::Absent
            }
            CExpr::Now => Val::text(self.now),
        })
    }

    /// `concat(E, ...)`. The first part that is there is held as it is, so a concat left with
    /// one part (`concat(xpn.1.1, xpn.2)` with no given name) copies no more than that part
    /// needs; joining starts at the second part, with room for both.
    fn concat(&self, parts: &'a [CExpr], line: usize) -> Fallible<Val<'a>> {
        let mut held: Option<Cow<'_, Val<'a>>> = None;
        let mut joined: Option<String> = None;
        for part in parts {
            let value = self.peek(part, line)?;
            let Some(text) = value.as_text() else {
                continue;
            };
            if let Some(joined) = &mut joined {
                joined.push_str(&text);
                continue;
            }
            match held.take() {
                None => {
                    drop(text);
                    held = Some(value);
                }
                Some(first) => {
                    let first = first.as_text().unwrap_or_default();
                    let mut both = String::with_capacity(first.len() + text.len() + 8);
                    both.push_str(&first);
                    both.push_str(&text);
                    joined = Some(both);
                }
            }
        }
        Ok(match (joined, held) {
            (Some(text), _) => Val::text(text),
            (None, Some(Cow::Owned(Val::Text(text)))) => Val::Text(text),
            (None, Some(Cow::Borrowed(Val::Text(Cow::Borrowed(text))))) => Val::text(*text),
            (None, Some(Cow::Borrowed(Val::Json(Value::String(text))))) => Val::text(text.as_str()),
            // Owned text still in a variable, or a number or boolean from JSON: text, copied.
            (None, Some(other)) => Val::text(other.as_text().map(Cow::into_owned).unwrap_or_default()),
            (None, None) => Val::Absent,
        })
    }

    /// For `required(E)`: which path was missing (an item named by its place in the message,
    /// `PID-3[2].1`), and why.
    fn describe_missing(&self, inner: &CExpr, written: &str) -> (String, String) {
        let path = match inner {
            CExpr::Hl7(path) => {
                if self.segment(&path.segment, path.occurrence).is_none() {
                    return (
                        path.to_string(),
                        format!("required, but the message has no {} segment", path.segment),
                    );
                }
                path.to_string()
            }
            CExpr::Rep { slot, path, origin } => match &self.slots[*slot] {
                Binding::Repetition(_, n) => format!("{origin}[{n}]{path}"),
                _ => written.to_owned(),
            },
            CExpr::Seg { slot, path, origin } => match &self.slots[*slot] {
                Binding::Segment(_, n, ..) => format!("{origin}[{n}]-{path}"),
                _ => written.to_owned(),
            },
            _ => written.to_owned(),
        };
        (path, format!("required, but `{written}` has no value"))
    }

    fn cond(&self, cond: &'a CCond, line: usize) -> Fallible<bool> {
        Ok(match cond {
            CCond::Eq(a, b) => self.peek(a, line)?.equals(&*self.peek(b, line)?),
            CCond::Ne(a, b) => !self.peek(a, line)?.equals(&*self.peek(b, line)?),
            CCond::In(e, list) => {
                let value = self.peek(e, line)?;
                list.iter().any(|lit| value.equals(&lit_value(lit)))
            }
            // `exists(concat(a, b, ...))` asks whether any part exists: no need to join them.
            CCond::Exists(CExpr::Concat(parts)) => {
                for part in parts {
                    if self.peek(part, line)?.as_text().is_some() {
                        return Ok(true);
                    }
                }
                false
            }
            CCond::Exists(e) => self.peek(e, line)?.exists(),
            CCond::Not(c) => !self.cond(c, line)?,
            CCond::And(a, b) => self.cond(a, line)? && self.cond(b, line)?,
            CCond::Or(a, b) => self.cond(a, line)? || self.cond(b, line)?,
        })
    }
}

static TRUE: Value = Value::Bool(true);
static FALSE: Value = Value::Bool(false);

/// The standard delimiters with a `'static` address, for FHIR sources (no message to ask).
static DEFAULT_DELIMITERS: Delimiters = Delimiters::STANDARD;

fn lit_value(lit: &Lit) -> Val<'_> {
    match lit {
        Lit::Text(text) => Val::text(text.as_str()),
        Lit::Json(json) => Val::json(json),
        Lit::Null => Val::Null,
    }
}

/// The map FHIR targets are relative to: the element being built, or the resource.
fn fhir_base<'d>(doc: &'d mut Doc, elem: Option<&'d mut Elem>) -> Option<&'d mut Map<String, Value>> {
    match elem {
        Some(Elem::Fhir(map)) => Some(map),
        Some(_) => None,
        None => match doc {
            Doc::Fhir(map) => Some(map),
            Doc::Hl7(_) => None,
        },
    }
}

/// A set of rules (by number): one bit each, the first 128 without an allocation.
struct Seen {
    first: u128,
    rest: Vec<bool>,
}

impl Seen {
    fn new(rules: usize) -> Seen {
        Seen {
            first: 0,
            rest: vec![false; rules.saturating_sub(128)],
        }
    }

    /// Adds `rule`; true when it was not in the set yet.
    fn mark(&mut self, rule: usize) -> bool {
        match rule.checked_sub(128) {
            None => {
                let bit = 1u128 << rule;
                let new = self.first & bit == 0;
                self.first |= bit;
                new
            }
            Some(index) => !std::mem::replace(&mut self.rest[index], true),
        }
    }
}

/// A `for`'s parts that every item needs.
struct Each<'a> {
    slot: usize,
    when: Option<&'a CCond>,
    target: Option<&'a ArrayTarget>,
    body: &'a [Op],
    line: usize,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// An item's components, found once, read as splitting the repetition on every read does,
        /// including items with more components than are found ahead and escaped text.
        #[test]
        fn items_read_as_repetitions_do(
            // The second kind has more components than an item finds ahead.
            field in prop_oneof!["[ab^&~\\\\\"é]{0,40}", "[a^&]{20,80}"],
            component in prop::option::of(0usize..20),
            subcomponent in prop::option::of(0usize..4),
        ) {
            let message = Message::parse_str(&format!("MSH|^~\\&|A\rPID|1|{field}\r")).unwrap();
            let pid = message.segment("PID").unwrap();
            let delimiters = message.delimiters();
            let path = ComponentPath { component, subcomponent };
            for repetition in pid.field(2).repetitions() {
                let item = Item::new(repetition, Some(delimiters));
                prop_assert_eq!(item.value(&path, delimiters), repetition_value(repetition, &path, delimiters));
                let unsplit = Item::new(repetition, None);
                prop_assert_eq!(unsplit.value(&path, delimiters), repetition_value(repetition, &path, delimiters));
            }
        }

        /// Reading a path of a segment by splitting its text reads what the segment's views read.
        #[test]
        fn paths_read_as_the_views_do(
            field in prop_oneof!["[ab^&~\\\\\"é]{0,40}", "[a^&~]{20,80}"],
            repetition in 1usize..5,
            component in prop::option::of(0usize..20),
            subcomponent in prop::option::of(0usize..4),
        ) {
            let message = Message::parse_str(&format!("MSH|^~\\&|A\rPID|1|{field}\r")).unwrap();
            let pid = message.segment("PID").unwrap();
            let delimiters = message.delimiters();
            let path = FieldPath {
                field: 2,
                repetition: Sel::Nth(repetition),
                component: ComponentPath { component, subcomponent },
            };
            let by_views = match nth_repetition(&pid, 2, path.repetition) {
                Some(repetition) => repetition_value(repetition, &path.component, delimiters),
                None => Val::Absent,
            };
            prop_assert_eq!(segment_value(&pid, &path, delimiters), by_views);
        }

        #[test]
        fn pieces_are_split_pieces(
            raw in "[ab^é]{0,40}",
            n in 0usize..12,
        ) {
            let expected = n.checked_sub(1).and_then(|i| raw.split('^').nth(i)).unwrap_or_default();
            prop_assert_eq!(nth_piece(&raw, b'^', n), expected);
            prop_assert_eq!(holds(&raw, '^'), raw.contains('^'));
        }

        #[test]
        fn matching_bytes_marks_each_equal_byte(word in prop::array::uniform8(any::<u8>()), byte in any::<u8>()) {
            let expected = word
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == byte)
                .fold(0u64, |mask, (i, _)| mask | 0x80 << (8 * i));
            prop_assert_eq!(matching_bytes(&word, byte), expected);
        }
    }

    /// A concat left with one part gives that part's text whatever it is made of: message text,
    /// unescaped text, a variable's text, a JSON number; with more, the parts joined.
    #[test]
    fn concat_of_one_part_is_that_part_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let load = |text: &str| {
            crate::Mapping::parse(text, &dir.path().join("t.map"), dir.path())
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let hl7 = load(
            "mapping t\nsource hl7v2\ntarget fhir Patient\n\
             a = concat(PID-99, PID-5.1)\nb = concat(PID-5.2, PID-99)\nlet v = concat(\"+\", PID-5.1)\n\
             c = concat(v, PID-99)\nd = concat(PID-99, v, \"!\")\ne = trim(concat(PID-99, PID-5.3))\n\
             f = concat(PID-98, PID-99)\ng = concat(PID-5.1, \"-\", PID-5.2, \"-\", PID-5.3)\n",
        );
        let message = Message::parse_str("MSH|^~\\&|A\rPID|1||||DOE^A\\T\\B^  Q \r").unwrap();
        let out = hl7.run(&Input::Hl7(&message), "20260101000000+0000").unwrap();
        assert_eq!(
            out.resource.unwrap(),
            serde_json::json!({
                "resourceType": "Patient", "a": "DOE", "b": "A&B", "c": "+DOE", "d": "+DOE!",
                "e": "Q", "g": "DOE-A&B-  Q "
            })
        );
        let fhir = load(
            "mapping t\nsource fhir\ntarget fhir Patient\n\
             a = concat(Patient.multipleBirthInteger, Patient.gender.where(use='x'))\n\
             b = concat(Patient.gender)\nc = concat(Patient.active)\n",
        );
        let patient = serde_json::json!({
            "resourceType": "Patient", "multipleBirthInteger": 2, "gender": "female", "active": true
        });
        let out = fhir.run(&Input::Fhir(&patient), "20260101000000+0000").unwrap();
        assert_eq!(
            out.resource.unwrap(),
            serde_json::json!({"resourceType": "Patient", "a": "2", "b": "female", "c": "true"})
        );
    }

    #[test]
    fn each_rule_is_seen_once() {
        let mut seen = Seen::new(300);
        let marks: Vec<bool> = [0, 5, 127, 128, 299, 5, 299, 0, 128, 127]
            .into_iter()
            .map(|rule| seen.mark(rule))
            .collect();
        assert_eq!(
            marks,
            [true, true, true, true, true, false, false, false, false, false]
        );
        assert!(Seen::new(40).rest.is_empty());
    }

    #[test]
    fn segment_keys_tell_names_apart() {
        assert_eq!(segment_key("PID"), segment_key("PID"));
        assert_ne!(segment_key("PID"), segment_key("PD1"));
        assert_eq!(segment_key("PI"), u32::MAX);
        assert_ne!(segment_key("PID"), u32::MAX);
    }
}
