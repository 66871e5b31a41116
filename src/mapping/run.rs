//! The executor: runs a compiled program over one input and builds the output.
//!
//! Nothing is parsed or looked up by name here: paths, tables and variables were resolved when
//! the mapping was compiled. Values read from the message borrow its text unless they need
//! unescaping. A `for` with a target builds each element on its own and adds it to its list only
//! if something was written into it, so an item with nothing to say leaves no empty element.

use std::borrow::Cow;
use std::cell::Cell;

use serde_json::{Map, Value};

use crate::hl7::{Delimiters, Message, Repetition, Segment, escape, unescape};
use crate::mapping::compile::{
    ACTIONS, ArrayTarget, CCond, CExpr, FhirRoot, FhirSource, ForSource, Lit, Op, Program, Target,
};
use crate::mapping::datetime::{self, Offset};
use crate::mapping::fhir_out;
use crate::mapping::fhirpath::{self, Collection};
use crate::mapping::functions::{self, Func};
use crate::mapping::hl7_out::{Draft, DraftRep, DraftSegment};
use crate::mapping::path::{ComponentPath, FieldPath, Sel, TIdx};
use crate::mapping::value::Val;
use crate::mapping::{Input, Output, RuleRef, RunError, SourceKind, TargetKind};

/// What a variable slot holds.
#[derive(Debug, Clone)]
enum Binding<'a> {
    Unset,
    Value(Val<'a>),
    /// A repetition item and its number (1-based) in its field.
    Repetition(Repetition<'a>, usize),
    /// A segment item and its occurrence (1-based).
    Segment(Segment<'a>, usize),
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
    /// The message's segments with their names, found once per run: paths look them up often.
    segments: Vec<(&'a str, Segment<'a>)>,
    resource: Option<&'a Value>,
    now: &'a str,
    slots: Vec<Binding<'a>>,
    fired: Vec<RuleRef>,
    /// Which rules are in `fired` already: each is reported once, at its first write.
    has_fired: Vec<bool>,
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
        .map(|m| m.segments().map(|s| (s.name(), s)).collect())
        .unwrap_or_default();
    let mut exec = Exec {
        program,
        message,
        segments,
        resource,
        now,
        slots: vec![Binding::Unset; program.slot_count],
        // At most 1 KiB up front: larger requests leave malloc's fast per-thread caches.
        fired: Vec::with_capacity(program.rule_count.min(32)),
        has_fired: vec![false; program.rule_count],
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
    } else if raw.contains(delimiters.escape) {
        Val::text(unescape(raw, delimiters))
    } else {
        Val::Text(Cow::Borrowed(raw))
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
    if segment.name() == "MSH" && path.field <= 2 {
        // MSH-1 and MSH-2 are the delimiters themselves: never split nor unescaped.
        return Val::text(segment.field(path.field).raw());
    }
    match nth_repetition(segment, path.field, path.repetition) {
        Some(repetition) => repetition_value(repetition, &path.component, delimiters),
        None => Val::Absent,
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
                        .map_err(|message| run_error(*line, display.clone(), message))?;
                    if wrote && !self.has_fired[*rule] {
                        self.has_fired[*rule] = true;
                        self.fired.push(RuleRef {
                            line: *line,
                            target: display.clone(),
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
                let Binding::Segment(segment, _) = self.slots[*slot] else {
                    return Ok(());
                };
                self.each_repetition(segment, *field, each, doc, elem)
            }
            ForSource::Segments(name) => {
                let mut occurrence = 0;
                for index in 0..self.segments.len() {
                    let (segment_name, segment) = self.segments[index];
                    if segment_name != name {
                        continue;
                    }
                    occurrence += 1;
                    self.slots[each.slot] = Binding::Segment(segment, occurrence);
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
        for (i, repetition) in segment.field(field).repetitions().enumerate() {
            if repetition.is_empty() || repetition.raw() == "\"\"" {
                continue;
            }
            self.slots[each.slot] = Binding::Repetition(repetition, i + 1);
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
        self.segments
            .iter()
            .filter(|(segment_name, _)| *segment_name == name)
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
        if let CExpr::Var(slot) = expr {
            return Ok(match &self.slots[*slot] {
                Binding::Value(value) => Cow::Borrowed(value),
                _ => Cow::Owned(Val::Absent),
            });
        }
        self.eval(expr, line).map(Cow::Owned)
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
            CExpr::Rep { slot, path, .. } => match &self.slots[*slot] {
                Binding::Repetition(repetition, _) => repetition_value(*repetition, path, self.delimiters()),
                _ => Val::Absent,
            },
            CExpr::Seg { slot, path, .. } => match &self.slots[*slot] {
                Binding::Segment(segment, _) => segment_value(segment, path, self.delimiters()),
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
            CExpr::Concat(parts) => {
                let mut text = String::new();
                for part in parts {
                    if let Some(t) = self.peek(part, line)?.as_text() {
                        text.push_str(&t);
                    }
                }
                Val::text(text)
            }
            CExpr::Id(parts) => {
                let values = parts
                    .iter()
                    .map(|p| self.eval(p, line))
                    .collect::<Result<Vec<_>, _>>()?;
                functions::id(&values)
            }
            CExpr::Split(arg, separator, n) => functions::split(&*self.peek(arg, line)?, separator, *n),
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
                Binding::Segment(_, n) => format!("{origin}[{n}]-{path}"),
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

/// `Delimiters::default()` with a `'static` address, for FHIR sources (no message to ask).
static DEFAULT_DELIMITERS: Delimiters = Delimiters {
    field: '|',
    component: '^',
    repetition: '~',
    escape: '\\',
    subcomponent: '&',
    truncation: None,
};

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

/// A `for`'s parts that every item needs.
struct Each<'a> {
    slot: usize,
    when: Option<&'a CCond>,
    target: Option<&'a ArrayTarget>,
    body: &'a [Op],
    line: usize,
}
