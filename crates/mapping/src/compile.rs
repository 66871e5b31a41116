//! Compiling: the syntax tree checked and turned into the program `run` executes. Everything that
//! can be known before a message arrives is settled here, once: paths are parsed, tables loaded,
//! variables resolved to numbered slots, functions and argument counts checked, targets checked
//! against the target kind. A file either compiles whole or not at all.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::ast::{self, CompareOp, Cond, Expr, SourceKind, Stmt, TargetKind};
use crate::fhirpath::{self, FStep};
use crate::functions::{self, Func};
use crate::path::{
    self, ComponentPath, FieldPath, Hl7Path, Hl7Target, Index, Sel, Step, TIdx, is_segment_name,
    looks_like_hl7_path,
};
use crate::table::Table;

/// A compiled mapping.
#[derive(Debug)]
pub struct Program {
    pub source: SourceKind,
    pub target: TargetKind,
    pub body: Vec<Op>,
    /// How many assignments there are (`Op::Assign::rule` counts them).
    pub rule_count: usize,
    /// How many variable slots a run needs: the most variables in scope at once (a block's
    /// slots are reused after it ends).
    pub slot_count: usize,
    pub tables: Vec<Arc<Table>>,
}

#[derive(Debug)]
pub enum Op {
    Assign {
        line: usize,
        /// Its number among the assignments, to report it once however often it writes.
        rule: usize,
        target: Target,
        expr: CExpr,
        when: Option<CCond>,
        /// The target as the report shows it, e.g. `identifier[].system` (`rule_target`: each
        /// run reports the rules it fired without copying their text).
        display: &'static str,
    },
    Let {
        line: usize,
        slot: usize,
        expr: CExpr,
        when: Option<CCond>,
    },
    For {
        line: usize,
        slot: usize,
        source: ForSource,
        when: Option<CCond>,
        target: Option<ArrayTarget>,
        body: Vec<Op>,
    },
    When {
        line: usize,
        cond: CCond,
        body: Vec<Op>,
    },
}

/// Where an assignment writes.
#[derive(Debug)]
pub enum Target {
    /// Relative to the element a `for` is building, or to the resource at the top.
    Fhir(Vec<Step>),
    /// `@action`
    Action,
    /// `@previous[...]...`: the first step's key is `@previous`.
    Previous(Vec<Step>),
    /// An HL7 v2 target: absolute when it names its segment, else relative to the segment or
    /// repetition a `for` is building.
    Hl7(Hl7Target),
}

/// The list a `for` adds one element to per item.
#[derive(Debug)]
pub enum ArrayTarget {
    /// Relative steps, the last one `[]`.
    Fhir(Vec<Step>),
    /// `@previous[]` (the one step, kept so the executor can append like any list).
    Previous(Vec<Step>),
    /// `OBX[]`: a new segment.
    Segment(String),
    /// `PID-3[]` (absolute) or `3[]` (relative to the segment being built): a new repetition.
    Repetition(Hl7Target),
}

/// What a `for` iterates over.
#[derive(Debug)]
pub enum ForSource {
    /// `PID-3[*]`: the repetitions of a field.
    Repetitions(Hl7Path),
    /// `OBX[*]`: every segment of that name.
    Segments(String),
    /// `OBX[*] under r`: the segments of that name in the group segment item `slot` opens.
    SegmentsUnder { name: String, slot: usize },
    /// `o-3[*]`: the repetitions of a field of a segment item.
    ItemRepetitions { slot: usize, field: usize },
    /// A FHIRPath: the items of the collection.
    Fhir(FhirSource),
}

#[derive(Debug)]
pub struct FhirSource {
    pub root: FhirRoot,
    pub steps: Vec<FStep>,
}

#[derive(Debug)]
pub enum FhirRoot {
    /// `Patient.…`: the input resource, when it is of that type.
    Resource(String),
    /// `n.…`: a `for` item.
    Item(usize),
}

#[derive(Debug)]
pub enum Lit {
    Text(String),
    Json(Value),
    Null,
}

#[derive(Debug)]
pub enum CExpr {
    Lit(Lit),
    Hl7(Hl7Path),
    /// Within a repetition item: `cx`, `cx.4`, `cx.4.2`. `origin` is the `for` source without
    /// `[*]` (`PID-3`), to name the item in an error (`PID-3[2].1`).
    Rep {
        slot: usize,
        path: ComponentPath,
        origin: String,
    },
    /// Within a segment item: `o-5`, `o-5[2].1`; `origin` is the segment name.
    Seg {
        slot: usize,
        path: FieldPath,
        origin: String,
    },
    /// A `let` value.
    Var(usize),
    Fhir(FhirSource),
    /// date, datetime, instant, ts, lower, upper, trim, digits.
    Text(Func, Box<CExpr>),
    Concat(Vec<CExpr>),
    Id(Vec<CExpr>),
    Split(Box<CExpr>, String, usize),
    /// `join(OBX[*]-5, "\n")`: the field of every segment of that name that has it, joined.
    Join(Hl7Path, String),
    /// Table index, key.
    Lookup(usize, Box<CExpr>),
    /// The expression and how it was written, for the error.
    Required(Box<CExpr>, String),
    Coalesce(Vec<CExpr>),
    Now,
}

#[derive(Debug)]
pub enum CCond {
    Eq(CExpr, CExpr),
    Ne(CExpr, CExpr),
    In(CExpr, Vec<Lit>),
    Exists(CExpr),
    Not(Box<CCond>),
    And(Box<CCond>, Box<CCond>),
    Or(Box<CCond>, Box<CCond>),
}

/// Tables already read, by file, shared by the mappings of one folder.
#[derive(Debug, Default)]
pub struct TableCache {
    tables: HashMap<PathBuf, Arc<Table>>,
}

/// A compile error: the line and what is wrong.
pub type CompileError = (usize, String);

fn fail<T>(line: usize, message: impl Into<String>) -> Result<T, CompileError> {
    Err((line, message.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VarKind {
    Value,
    Repetition,
    Segment,
    Json,
}

struct Var {
    name: String,
    slot: usize,
    kind: VarKind,
    line: usize,
    /// For a `for` item over HL7 v2: its source without `[*]`.
    origin: String,
}

/// What the targets of the current block are relative to.
#[derive(Debug, Clone)]
enum Frame {
    /// The resource or message itself (or a FHIR element: fhir targets are relative either way).
    Top,
    FhirElement,
    Segment,
    Repetition,
}

/// The target context of a block: its frame and how its targets are shown in reports.
#[derive(Debug, Clone)]
struct Context {
    frame: Frame,
    prefix: String,
}

struct Compiler<'f> {
    source: SourceKind,
    target: &'f TargetKind,
    scopes: Vec<Vec<Var>>,
    /// Slots in use by the variables in scope; `max_slots` the most ever.
    slot_count: usize,
    max_slots: usize,
    tables: Vec<(String, Arc<Table>)>,
    rule_count: usize,
}

/// Compiles a parsed file. `file` is the mapping's path (its stem must be the mapping's name);
/// table paths are relative to `mappings_dir`.
pub fn compile(
    parsed: &ast::File,
    file: &Path,
    mappings_dir: &Path,
    cache: &mut TableCache,
) -> Result<Program, CompileError> {
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if parsed.name != stem {
        return fail(
            parsed.name_line,
            format!(
                "the mapping is named `{}` but its file is `{}`: the name must be the file name without .map",
                parsed.name,
                file.file_name().and_then(|s| s.to_str()).unwrap_or_default()
            ),
        );
    }
    let mut tables = Vec::new();
    for decl in &parsed.tables {
        let table = load_table(decl, mappings_dir, cache)?;
        tables.push((decl.name.clone(), table));
    }
    let mut compiler = Compiler {
        source: parsed.source,
        target: &parsed.target,
        scopes: vec![Vec::new()],
        slot_count: 0,
        max_slots: 0,
        tables,
        rule_count: 0,
    };
    let top = Context {
        frame: Frame::Top,
        prefix: String::new(),
    };
    let body = compiler.block(&parsed.rules, &top)?;
    Ok(Program {
        source: parsed.source,
        target: parsed.target.clone(),
        body,
        rule_count: compiler.rule_count,
        slot_count: compiler.max_slots,
        tables: compiler.tables.into_iter().map(|(_, t)| t).collect(),
    })
}

fn load_table(
    decl: &ast::TableDecl,
    mappings_dir: &Path,
    cache: &mut TableCache,
) -> Result<Arc<Table>, CompileError> {
    let relative = Path::new(&decl.path);
    let stays_inside = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if decl.path.is_empty() || !stays_inside {
        return fail(
            decl.line,
            format!(
                "table `{}`: `{}` must be a path inside the mappings folder, like `tables/{}.csv`",
                decl.name, decl.path, decl.name
            ),
        );
    }
    let path = mappings_dir.join(relative);
    if let Some(table) = cache.tables.get(&path) {
        return Ok(table.clone());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| {
        (
            decl.line,
            format!("table `{}`: cannot read {}: {e}", decl.name, path.display()),
        )
    })?;
    let table = Table::parse(&text).map_err(|e| {
        (
            decl.line,
            format!(
                "table `{}`: {}:{}: {}",
                decl.name,
                path.display(),
                e.line,
                e.message
            ),
        )
    })?;
    let table = Arc::new(table);
    cache.tables.insert(path, table.clone());
    Ok(table)
}

impl Compiler<'_> {
    fn block(&mut self, stmts: &[Stmt], context: &Context) -> Result<Vec<Op>, CompileError> {
        self.open_scope();
        let ops = stmts
            .iter()
            .map(|stmt| self.statement(stmt, context))
            .collect::<Result<Vec<Op>, CompileError>>()?;
        self.close_scope();
        Ok(ops)
    }

    fn open_scope(&mut self) {
        self.scopes.push(Vec::new());
    }

    /// Ends the innermost scope; its slots are free for the variables of later blocks. (An
    /// error ends the whole compile, so scopes need no closing on the way out.)
    fn close_scope(&mut self) {
        let ended = self.scopes.pop().map_or(0, |scope| scope.len());
        self.slot_count -= ended;
    }

    fn new_slot(
        &mut self,
        name: &str,
        kind: VarKind,
        line: usize,
        origin: String,
    ) -> Result<usize, CompileError> {
        let scope = self.scopes.last_mut().expect("a scope is always open");
        if let Some(other) = scope.iter().find(|v| v.name == name) {
            return fail(
                line,
                format!("`{name}` is already defined in this block (line {})", other.line),
            );
        }
        let slot = self.slot_count;
        self.slot_count += 1;
        self.max_slots = self.max_slots.max(self.slot_count);
        scope.push(Var {
            name: name.to_owned(),
            slot,
            kind,
            line,
            origin,
        });
        Ok(slot)
    }

    fn find_var(&self, name: &str) -> Option<&Var> {
        self.scopes.iter().rev().flatten().find(|v| v.name == name)
    }

    fn statement(&mut self, stmt: &Stmt, context: &Context) -> Result<Op, CompileError> {
        match stmt {
            Stmt::Assign {
                line,
                target,
                expr,
                when,
            } => {
                let (target, display) = self.target(target, context, *line)?;
                // `now()` stamps what is written (MSH-7, EVN-2, a Bundle's timestamp); a `let` or
                // a condition may not read it, so no rule's choice depends on the clock.
                let compiled = self.expr(expr, *line, true)?;
                if let (Target::Action, CExpr::Lit(lit)) = (&target, &compiled) {
                    check_action(lit, *line)?;
                }
                let when = when.as_ref().map(|c| self.cond(c, *line)).transpose()?;
                self.rule_count += 1;
                Ok(Op::Assign {
                    line: *line,
                    rule: self.rule_count - 1,
                    target,
                    expr: compiled,
                    when,
                    display: crate::rule_target(&display),
                })
            }
            Stmt::Let {
                line,
                name,
                expr,
                when,
            } => {
                // The value and condition are compiled before the name exists: `let x = x` is an
                // error, not a loop.
                let expr = self.expr(expr, *line, false)?;
                let when = when.as_ref().map(|c| self.cond(c, *line)).transpose()?;
                let slot = self.new_slot(name, VarKind::Value, *line, String::new())?;
                Ok(Op::Let {
                    line: *line,
                    slot,
                    expr,
                    when,
                })
            }
            Stmt::When { line, cond, body } => {
                let cond = self.cond(cond, *line)?;
                let body = self.block(body, context)?;
                Ok(Op::When {
                    line: *line,
                    cond,
                    body,
                })
            }
            Stmt::For {
                line,
                var,
                source,
                under,
                when,
                target,
                body,
            } => {
                let (source, kind, origin) = self.for_source(source, *line)?;
                let source = match under {
                    Some(group) => self.under(source, group, *line)?,
                    None => source,
                };
                let (target, inner) = match target {
                    Some(text) => {
                        let (target, inner) = self.array_target(text, context, *line)?;
                        (Some(target), inner)
                    }
                    None => (None, context.clone()),
                };
                // The item is visible in the condition and the body, not after the block.
                self.open_scope();
                let slot = self.new_slot(var, kind, *line, origin)?;
                let when = when.as_ref().map(|c| self.cond(c, *line)).transpose()?;
                let body = self.block(body, &inner)?;
                self.close_scope();
                Ok(Op::For {
                    line: *line,
                    slot,
                    source,
                    when,
                    target,
                    body,
                })
            }
        }
    }

    /// The steps of a FHIR target path, refusing an HL7 v2 path in a fhir-target mapping.
    fn fhir_steps(&self, text: &str, line: usize) -> Result<Vec<Step>, CompileError> {
        if looks_like_hl7_path(text) {
            return fail(
                line,
                format!("`{text}` is an HL7 v2 target, but this mapping's target is fhir"),
            );
        }
        path::parse_fhir_target(text).map_err(|e| (line, e))
    }

    /// An assignment target, and how reports show it.
    fn target(&self, text: &str, context: &Context, line: usize) -> Result<(Target, String), CompileError> {
        if text.starts_with('@') {
            return Ok((meta_target(text, line)?, text.to_owned()));
        }
        let display = format!("{}{text}", context.prefix);
        match self.target {
            TargetKind::Fhir { .. } => Ok((Target::Fhir(self.fhir_steps(text, line)?), display)),
            TargetKind::Hl7v2 { .. } => {
                let target = self.hl7_target(text, context, line)?;
                if target.segment.is_some() && target.field.is_none() {
                    return fail(
                        line,
                        format!("`{text}` names a segment: a target needs a field, like `{text}-1`"),
                    );
                }
                if let (Some((name, _)), Some((field, _))) = (&target.segment, &target.field)
                    && name == "MSH"
                    && *field <= 2
                {
                    return fail(
                        line,
                        format!("`{text}`: MSH-1 and MSH-2 are the delimiters and are written by themselves"),
                    );
                }
                let display = if target.segment.is_some() {
                    text.to_owned()
                } else {
                    display
                };
                Ok((Target::Hl7(target), display))
            }
        }
    }

    fn hl7_target(&self, text: &str, context: &Context, line: usize) -> Result<Hl7Target, CompileError> {
        let starts_with_segment = text.get(..3).is_some_and(is_segment_name);
        if starts_with_segment {
            return path::parse_hl7_target(text).map_err(|e| (line, e));
        }
        if text.starts_with(|c: char| c.is_ascii_digit()) {
            return match context.frame {
                Frame::Segment => path::parse_relative_field_target(text).map_err(|e| (line, e)),
                Frame::Repetition => path::parse_relative_component_target(text).map_err(|e| (line, e)),
                Frame::Top | Frame::FhirElement => fail(
                    line,
                    format!(
                        "`{text}` is relative: it belongs inside `for ... -> SEG[] {{` or `-> SEG-n[] {{`"
                    ),
                ),
            };
        }
        fail(
            line,
            format!(
                "`{text}` is not an HL7 v2 target; write one like `PID-3[2].4.1` (this mapping's target is hl7v2)"
            ),
        )
    }

    /// A `for`'s `-> TARGET[]`, and the context of its block.
    fn array_target(
        &self,
        text: &str,
        context: &Context,
        line: usize,
    ) -> Result<(ArrayTarget, Context), CompileError> {
        let must_append = || {
            (
                line,
                format!("`-> {text}`: a `for` adds one element per item, so its target ends with `[]`"),
            )
        };
        if text.starts_with('@') {
            let steps = path::parse_fhir_target(text).map_err(|e| (line, e))?;
            if steps.len() != 1 || steps[0].key != "@previous" || steps[0].index != Index::Append {
                return fail(
                    line,
                    format!("`-> {text}`: the only metadata list is `@previous[]`"),
                );
            }
            let inner = Context {
                frame: Frame::FhirElement,
                prefix: "@previous[].".into(),
            };
            return Ok((ArrayTarget::Previous(steps), inner));
        }
        match self.target {
            TargetKind::Fhir { .. } => {
                let steps = self.fhir_steps(text, line)?;
                if steps.last().map(|s| s.index) != Some(Index::Append) {
                    return Err(must_append());
                }
                let inner = Context {
                    frame: Frame::FhirElement,
                    prefix: format!("{}{text}.", context.prefix),
                };
                Ok((ArrayTarget::Fhir(steps), inner))
            }
            TargetKind::Hl7v2 { .. } => {
                if matches!(context.frame, Frame::Repetition) {
                    return fail(line, format!("`-> {text}`: components do not repeat"));
                }
                let target = self.hl7_target(text, context, line)?;
                let absolute = target.segment.is_some();
                let shown = if absolute {
                    text.to_owned()
                } else {
                    format!("{}{text}", context.prefix)
                };
                match (&target.segment, &target.field, target.component) {
                    (Some((name, TIdx::Append)), None, None) => {
                        let inner = Context {
                            frame: Frame::Segment,
                            prefix: format!("{shown}-"),
                        };
                        Ok((ArrayTarget::Segment(name.clone()), inner))
                    }
                    (Some((_, TIdx::At(_))) | None, Some((_, TIdx::Append)), None) => {
                        let inner = Context {
                            frame: Frame::Repetition,
                            prefix: format!("{shown}."),
                        };
                        Ok((ArrayTarget::Repetition(target), inner))
                    }
                    _ => Err(must_append()),
                }
            }
        }
    }

    /// `SEG[*] under ITEM`: the segments iterated only within the group the segment item opens.
    fn under(&self, source: ForSource, group: &str, line: usize) -> Result<ForSource, CompileError> {
        let ForSource::Segments(name) = source else {
            return fail(line, "`under` narrows a `for` over segments (`OBX[*] under r`)");
        };
        match self.find_var(group) {
            Some(var) if matches!(var.kind, VarKind::Segment) => {
                Ok(ForSource::SegmentsUnder { name, slot: var.slot })
            }
            Some(var) => fail(
                line,
                format!(
                    "`{group}` (line {}) is not a segment item: `under` needs one (`for r in OBR[*]`)",
                    var.line
                ),
            ),
            None => fail(
                line,
                format!("`under {group}`: no segment item `{group}` is in scope"),
            ),
        }
    }

    /// The source of a `for`: what it iterates, what kind its items are, and their origin.
    fn for_source(&self, source: &Expr, line: usize) -> Result<(ForSource, VarKind, String), CompileError> {
        let Expr::Path(text) = source else {
            return fail(line, format!("a `for` iterates over a path, not `{source}`"));
        };
        let not_multiple = || {
            (
                line,
                format!(
                    "`{text}`: a `for` over HL7 v2 iterates repetitions (`PID-3[*]`) or segments (`OBX[*]`)"
                ),
            )
        };
        if let Some(name) = text.strip_suffix("[*]").filter(|n| is_segment_name(n)) {
            self.require_hl7_source(text, line)?;
            return Ok((
                ForSource::Segments(name.to_owned()),
                VarKind::Segment,
                name.to_owned(),
            ));
        }
        if looks_like_hl7_path(text) {
            self.require_hl7_source(text, line)?;
            let parsed = path::parse_hl7_path(text).map_err(|e| (line, e))?;
            if parsed.occurrence == Sel::All {
                return fail(
                    line,
                    format!(
                        "`{text}`: iterate the segments (`{}[*]`) and read the field from the item",
                        parsed.segment
                    ),
                );
            }
            if parsed.field.repetition != Sel::All || parsed.field.component != ComponentPath::default() {
                return Err(not_multiple());
            }
            let origin = text.trim_end_matches("[*]").to_owned();
            return Ok((ForSource::Repetitions(parsed), VarKind::Repetition, origin));
        }
        let head = head_of(text);
        if let Some(var) = self.find_var(head) {
            let rest = &text[head.len()..];
            return match var.kind {
                VarKind::Segment => {
                    let field = rest
                        .strip_prefix('-')
                        .ok_or_else(not_multiple)
                        .and_then(|r| path::parse_field_path(r).map_err(|e| (line, e)))?;
                    if field.repetition != Sel::All || field.component != ComponentPath::default() {
                        return Err(not_multiple());
                    }
                    let origin = text.trim_end_matches("[*]").to_owned();
                    Ok((
                        ForSource::ItemRepetitions {
                            slot: var.slot,
                            field: field.field,
                        },
                        VarKind::Repetition,
                        origin,
                    ))
                }
                VarKind::Json => {
                    let (_, steps) = fhirpath::parse(text).map_err(|e| (line, e))?;
                    let source = FhirSource {
                        root: FhirRoot::Item(var.slot),
                        steps,
                    };
                    Ok((ForSource::Fhir(source), VarKind::Json, String::new()))
                }
                VarKind::Repetition => fail(line, format!("`{text}`: components do not repeat")),
                VarKind::Value => fail(
                    line,
                    format!(
                        "`{head}` is a value (line {}); a `for` iterates over a path",
                        var.line
                    ),
                ),
            };
        }
        match self.expr_path(text, line)? {
            CExpr::Fhir(source) => Ok((ForSource::Fhir(source), VarKind::Json, String::new())),
            _ => Err(not_multiple()),
        }
    }

    fn require_hl7_source(&self, text: &str, line: usize) -> Result<(), CompileError> {
        if self.source != SourceKind::Hl7v2 {
            return fail(
                line,
                format!("`{text}` is an HL7 v2 path, but this mapping's source is fhir"),
            );
        }
        Ok(())
    }

    fn expr(&self, expr: &Expr, line: usize, now_allowed: bool) -> Result<CExpr, CompileError> {
        Ok(match expr {
            Expr::Text(text) => CExpr::Lit(Lit::Text(text.clone())),
            Expr::Number(n) => {
                let number: Value =
                    serde_json::from_str(n).map_err(|_| (line, format!("`{n}` is not a number")))?;
                CExpr::Lit(Lit::Json(number))
            }
            Expr::Bool(b) => CExpr::Lit(Lit::Json(Value::Bool(*b))),
            Expr::Null => CExpr::Lit(Lit::Null),
            Expr::Path(text) => self.expr_path(text, line)?,
            Expr::Coalesce(parts) => CExpr::Coalesce(
                parts
                    .iter()
                    .map(|p| self.expr(p, line, now_allowed))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Call { name, args } => self.call(name, args, line, now_allowed)?,
        })
    }

    fn call(&self, name: &str, args: &[Expr], line: usize, now_allowed: bool) -> Result<CExpr, CompileError> {
        let func = functions::resolve(name, args.len()).map_err(|e| (line, e))?;
        let arg = |i: usize| self.expr(&args[i], line, now_allowed).map(Box::new);
        let all = || {
            args.iter()
                .map(|a| self.expr(a, line, now_allowed))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(match func {
            Func::Required => CExpr::Required(arg(0)?, args[0].to_string()),
            Func::Lookup => {
                let table = match &args[0] {
                    Expr::Path(name) => self.tables.iter().position(|(n, _)| n == name),
                    _ => None,
                };
                let Some(table) = table else {
                    let declared: Vec<&str> = self.tables.iter().map(|(n, _)| n.as_str()).collect();
                    return fail(
                        line,
                        format!(
                            "`lookup`: unknown table `{}`; declared tables: {}",
                            args[0],
                            if declared.is_empty() {
                                "none".to_owned()
                            } else {
                                declared.join(", ")
                            }
                        ),
                    );
                };
                CExpr::Lookup(table, arg(1)?)
            }
            Func::Split => {
                let separator = match &args[1] {
                    Expr::Text(s) if !s.is_empty() => s.clone(),
                    other => {
                        return fail(
                            line,
                            format!("`split`: the separator must be a text literal, not `{other}`"),
                        );
                    }
                };
                let n = match &args[2] {
                    Expr::Number(n) => n.parse::<usize>().ok().filter(|n| *n >= 1),
                    _ => None,
                };
                let Some(n) = n else {
                    return fail(
                        line,
                        format!("`split`: the part number must be 1, 2, ..., not `{}`", args[2]),
                    );
                };
                CExpr::Split(arg(0)?, separator, n)
            }
            Func::Join => {
                let path = match &args[0] {
                    Expr::Path(text) if looks_like_hl7_path(text) => {
                        self.require_hl7_source(text, line)?;
                        path::parse_hl7_path(text)
                            .ok()
                            .filter(|p| p.occurrence == Sel::All && p.field.repetition != Sel::All)
                    }
                    _ => None,
                };
                let Some(path) = path else {
                    return fail(
                        line,
                        format!(
                            "`join`: the first argument is a field of every segment of a name (`OBX[*]-5`), not `{}`",
                            args[0]
                        ),
                    );
                };
                let separator = match &args[1] {
                    Expr::Text(s) => s.clone(),
                    other => {
                        return fail(
                            line,
                            format!("`join`: the separator must be a text literal, not `{other}`"),
                        );
                    }
                };
                CExpr::Join(path, separator)
            }
            Func::Concat => CExpr::Concat(all()?),
            Func::Id => CExpr::Id(all()?),
            Func::Now => {
                if !now_allowed {
                    return fail(
                        line,
                        "`now()` may only be used in the value an assignment writes (`MSH-7 = now()`), \
                         not in a `let` or a condition",
                    );
                }
                CExpr::Now
            }
            Func::Date
            | Func::Decimal
            | Func::Base64
            | Func::DateTime
            | Func::Instant
            | Func::Ts
            | Func::Lower
            | Func::Upper
            | Func::Trim
            | Func::Digits => CExpr::Text(func, arg(0)?),
        })
    }

    /// A path in a value position: an HL7 v2 path, a variable or item path, or a FHIRPath.
    fn expr_path(&self, text: &str, line: usize) -> Result<CExpr, CompileError> {
        if looks_like_hl7_path(text) {
            self.require_hl7_source(text, line)?;
            let parsed = path::parse_hl7_path(text).map_err(|e| (line, e))?;
            if parsed.is_multiple() {
                return fail(
                    line,
                    format!("`{text}`: `[*]` may only be used as the source of a `for`"),
                );
            }
            return Ok(CExpr::Hl7(parsed));
        }
        let head = head_of(text);
        let rest = &text[head.len()..];
        if let Some(var) = self.find_var(head) {
            return match var.kind {
                VarKind::Value if rest.is_empty() => Ok(CExpr::Var(var.slot)),
                VarKind::Value => fail(
                    line,
                    format!(
                        "`{head}` is a value (let on line {}), it has no parts like `{text}`",
                        var.line
                    ),
                ),
                VarKind::Repetition => {
                    let path = path::parse_component_path(rest).map_err(|e| {
                        (
                            line,
                            format!("`{text}`: {e} (an item of repetitions takes `.component.subcomponent`)"),
                        )
                    })?;
                    Ok(CExpr::Rep {
                        slot: var.slot,
                        path,
                        origin: var.origin.clone(),
                    })
                }
                VarKind::Segment => {
                    let field = rest
                        .strip_prefix('-')
                        .ok_or_else(|| {
                            (
                                line,
                                format!("`{text}`: a segment item is read by field, like `{head}-5`"),
                            )
                        })
                        .and_then(|r| {
                            path::parse_field_path(r).map_err(|e| (line, format!("`{text}`: {e}")))
                        })?;
                    if field.repetition == Sel::All {
                        return fail(
                            line,
                            format!("`{text}`: `[*]` may only be used as the source of a `for`"),
                        );
                    }
                    Ok(CExpr::Seg {
                        slot: var.slot,
                        path: field,
                        origin: var.origin.clone(),
                    })
                }
                VarKind::Json => {
                    let (_, steps) = fhirpath::parse(text).map_err(|e| (line, e))?;
                    Ok(CExpr::Fhir(FhirSource {
                        root: FhirRoot::Item(var.slot),
                        steps,
                    }))
                }
            };
        }
        // A FHIRPath starts with a resource type; `Patient` alone is the whole input resource (to
        // copy it whole, e.g. into a Bundle entry).
        let is_resource_path = head.starts_with(|c: char| c.is_ascii_uppercase())
            && (!rest.is_empty()
                || (self.source == SourceKind::Fhir
                    && !is_segment_name(text)
                    && !self.tables.iter().any(|(n, _)| n == text)));
        match (self.source, is_resource_path) {
            (SourceKind::Fhir, true) => {
                let (root, steps) = fhirpath::parse(text).map_err(|e| (line, e))?;
                Ok(CExpr::Fhir(FhirSource {
                    root: FhirRoot::Resource(root.to_owned()),
                    steps,
                }))
            }
            (SourceKind::Hl7v2, true) => fail(
                line,
                format!("`{text}` is a FHIRPath, but this mapping's source is hl7v2"),
            ),
            _ if is_segment_name(text) => fail(line, format!("`{text}` needs a field, like `{text}-3`")),
            _ if self.tables.iter().any(|(n, _)| n == text) => fail(
                line,
                format!("`{text}` is a table: read it with `lookup({text}, ...)`"),
            ),
            _ => fail(line, format!("unknown variable `{head}`")),
        }
    }

    fn cond(&self, cond: &Cond, line: usize) -> Result<CCond, CompileError> {
        Ok(match cond {
            Cond::Compare { left, op, right } => {
                let left = self.expr(left, line, false)?;
                let right = self.expr(right, line, false)?;
                match op {
                    CompareOp::Eq => CCond::Eq(left, right),
                    CompareOp::Ne => CCond::Ne(left, right),
                }
            }
            Cond::In { expr, list } => {
                let list = list
                    .iter()
                    .map(|e| match self.expr(e, line, false)? {
                        CExpr::Lit(lit) => Ok(lit),
                        _ => fail(line, "`in (...)` takes literals only"),
                    })
                    .collect::<Result<_, _>>()?;
                CCond::In(self.expr(expr, line, false)?, list)
            }
            Cond::Exists(e) => CCond::Exists(self.expr(e, line, false)?),
            Cond::Empty(e) => CCond::Not(Box::new(CCond::Exists(self.expr(e, line, false)?))),
            Cond::Not(c) => CCond::Not(Box::new(self.cond(c, line)?)),
            Cond::And(a, b) => CCond::And(Box::new(self.cond(a, line)?), Box::new(self.cond(b, line)?)),
            Cond::Or(a, b) => CCond::Or(Box::new(self.cond(a, line)?), Box::new(self.cond(b, line)?)),
        })
    }
}

/// The name a path starts with: up to the first `.`, `-` followed by a digit, or `[`.
fn head_of(text: &str) -> &str {
    let bytes = text.as_bytes();
    let end = (0..bytes.len())
        .find(|&i| {
            bytes[i] == b'.'
                || bytes[i] == b'['
                || (bytes[i] == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        })
        .unwrap_or(bytes.len());
    &text[..end]
}

/// `@action` or `@previous[...]...`.
fn meta_target(text: &str, line: usize) -> Result<Target, CompileError> {
    let steps = path::parse_fhir_target(text).map_err(|e| (line, e))?;
    match steps[0].key.as_str() {
        "@action" if steps.len() == 1 && steps[0].index == Index::None => Ok(Target::Action),
        "@action" => fail(line, "`@action` is a single text: write `@action = \"merge\"`"),
        "@previous" if steps[0].index != Index::None => Ok(Target::Previous(steps)),
        "@previous" => fail(
            line,
            "`@previous` is a list: write `@previous[]` or `@previous[0].value`",
        ),
        other => fail(
            line,
            format!(
                "unknown metadata target `{other}`: the metadata targets are `@action` and `@previous[]`"
            ),
        ),
    }
}

/// The actions the engine knows.
pub const ACTIONS: &[&str] = &["upsert", "merge", "change-identifier", "delete"];

fn check_action(lit: &Lit, line: usize) -> Result<(), CompileError> {
    match lit {
        Lit::Text(action) if ACTIONS.contains(&action.as_str()) => Ok(()),
        _ => fail(line, format!("`@action` must be one of {}", ACTIONS.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_of_paths() {
        assert_eq!(head_of("cx.4.2"), "cx");
        assert_eq!(head_of("o-5[2].1"), "o");
        assert_eq!(head_of("name-use"), "name-use");
        assert_eq!(head_of("n.given[0]"), "n");
        assert_eq!(head_of("x"), "x");
    }
}
