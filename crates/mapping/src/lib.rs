//! The mapping language: how a feed maps, written by analysts in `mappings/<name>.map` files,
//! compiled once when loaded, run for every message, and proven by golden tests kept beside them
//! (the `tributary-mapping` crate; the engine has it as `tributary::mapping`). It reads HL7 v2
//! through `tributary-hl7` and FHIR as JSON values, and knows nothing of the engine or the store.
//!
//! - `lexer`, `parser`, `ast`: file text to a syntax tree, every statement with its line.
//! - `compile`: the tree checked and turned into a program: paths parsed, tables loaded, names
//!   resolved. A file loads whole or not at all.
//! - `path`: HL7 v2 paths (`PID-3[2].4.1`, read and written) and FHIR target paths.
//! - `fhirpath`: the FHIRPath subset fhir-source mappings read with.
//! - `run`: the executor; `value`: the values it passes around; `functions`: what rules can call;
//!   `datetime`: HL7 TS to FHIR date/dateTime/instant and back; `table`: CSV code tables.
//! - `fhir_out`, `hl7_out`: writing into the FHIR resource or HL7 v2 message being built.
//! - `set`: every mapping of a folder; `golden`: the golden-test runner and its field-level diff.
//! - `condition`: a condition standing on its own, for channel filters.
//!
//! Language reference: `mappings/README.md`.

mod ast;
mod compile;
mod condition;
mod datetime;
mod fhir_out;
mod fhirpath;
mod functions;
mod golden;
mod hl7_out;
mod lexer;
mod parser;
mod path;
mod run;
mod set;
mod table;
mod value;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

pub use ast::{SourceKind, TargetKind};
pub use condition::Condition;
pub use golden::{CaseResult, GOLDEN_NOW, GoldenReport, Mismatch, run_golden_tests};
pub use set::MappingSet;

use crate::compile::{Program, TableCache};

/// A loaded, compiled mapping.
#[derive(Debug)]
pub struct Mapping {
    pub name: String,
    pub source: SourceKind,
    pub target: TargetKind,
    program: Program,
}

/// Why a mapping file did not load. `line` is 1-based; 0 when the problem is the whole file
/// (it cannot be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

impl std::error::Error for LoadError {}

/// What a mapping reads.
pub enum Input<'a> {
    Hl7(&'a tributary_hl7::Message),
    Fhir(&'a serde_json::Value),
}

/// What a mapping built.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The resource, for a fhir target.
    pub resource: Option<serde_json::Value>,
    /// The message text (segments each ended by `\r`), for an hl7v2 target.
    pub message: Option<String>,
    /// `@action`: `merge`, `change-identifier` or `upsert`; `None` when the mapping set none,
    /// which means `upsert`.
    pub action: Option<String>,
    /// `@previous`: identifier objects (the retired patient of a merge, the old identifier of a
    /// change).
    pub previous: Vec<serde_json::Value>,
    /// The rules that wrote something, each once, in the order of their first write.
    pub fired: Vec<RuleRef>,
}

/// A rule by its line and its target as written (`identifier[].system` inside a `for`). The
/// target text is the compiled mapping's (`rule_target`): reporting a rule copies nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRef {
    pub line: usize,
    pub target: &'static str,
}

/// The one copy of a rule's target text, kept for the life of the process. Every run reports
/// the rules it fired, and a reference to a text that never goes away is the cheapest way to
/// report one: no copy, no reference count. Texts are shared by every mapping and every reload,
/// so what is kept is bounded by the distinct targets ever loaded (a few kilobytes), not by how
/// often mappings are reloaded.
pub(crate) fn rule_target(text: &str) -> &'static str {
    static TARGETS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut targets = TARGETS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = targets.get(text) {
        return known;
    }
    let kept: &'static str = Box::leak(text.into());
    targets.insert(kept);
    kept
}

/// Why a run failed: the rule's line, the source path concerned (`PID-3[1].1`, may be empty)
/// and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    pub line: usize,
    pub path: String,
    pub message: String,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for RunError {}

impl Mapping {
    /// Reads, parses and compiles one file (tables resolved relative to `mappings_dir`).
    pub fn load(path: &Path, mappings_dir: &Path) -> Result<Mapping, LoadError> {
        Mapping::load_with(path, mappings_dir, &mut TableCache::default())
    }

    /// Parses and compiles mapping text; `file` names it in errors and its stem must be the
    /// mapping's name.
    pub fn parse(text: &str, file: &Path, mappings_dir: &Path) -> Result<Mapping, LoadError> {
        Mapping::parse_with(text, file, mappings_dir, &mut TableCache::default())
    }

    /// Runs the mapping over an HL7 v2 message (source hl7v2) or a FHIR JSON resource (source
    /// fhir). `now` is the current instant as HL7 TS (`20260101120000+0000`), what `now()` gives.
    pub fn run(&self, input: &Input<'_>, now: &str) -> Result<Output, RunError> {
        run::execute(&self.program, input, now)
    }

    fn load_with(path: &Path, mappings_dir: &Path, cache: &mut TableCache) -> Result<Mapping, LoadError> {
        let error = |line, message| LoadError {
            file: path.to_path_buf(),
            line,
            message,
        };
        let bytes = std::fs::read(path).map_err(|e| error(0, format!("cannot read the file: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            error(line, "the file is not UTF-8".into())
        })?;
        Mapping::parse_with(&text, path, mappings_dir, cache)
    }

    fn parse_with(
        text: &str,
        file: &Path,
        mappings_dir: &Path,
        cache: &mut TableCache,
    ) -> Result<Mapping, LoadError> {
        let error = |line, message| LoadError {
            file: file.to_path_buf(),
            line,
            message,
        };
        let parsed = parser::parse(text).map_err(|e| error(e.line, e.message))?;
        let program =
            compile::compile(&parsed, file, mappings_dir, cache).map_err(|(line, m)| error(line, m))?;
        Ok(Mapping {
            name: parsed.name,
            source: parsed.source,
            target: parsed.target,
            program,
        })
    }
}

#[cfg(test)]
mod tests;
