//! Structural validation of a FHIR R4 JSON resource against the structure model
//! ([`super::model`]): what a FHIR server must refuse before it stores anything.
//!
//! It reports, with a FHIRPath-like location (`Patient.name[0].given[1]`):
//! - unknown elements, including `_name` siblings of non-primitives, and two names of one choice;
//! - the wrong JSON shape: an array for a single element, a single value for a repeating one,
//!   an empty array or object, `null` outside the parallel arrays of repeating primitives, parallel
//!   arrays of different lengths;
//! - primitives of the wrong JSON kind (a number in a string, a string in a boolean) or with a bad
//!   lexical form: dates and times (a time needs seconds and a zone), instants, integer ranges,
//!   codes with stray whitespace, ids, uris, oids, uuids, base64, the narrative `div`;
//! - required elements that are missing (min >= 1, a choice counts any of its names);
//! - a missing or unknown `resourceType`.
//!
//! Contained resources, Bundle entries and Parameters resources are validated where they sit.
//! Nesting is bounded ([`MAX_DEPTH`]). It does not check invariants (FHIRPath constraints),
//! terminology bindings or profiles.
//!
//! Issue codes are the OperationOutcome issue types: `structure` for shapes and unknown
//! elements, `value` for bad primitive values, `required` for missing elements, `invalid` for a
//! bad or unknown resource type and for nesting past the bound. All issues are errors.

mod format;

use serde_json::{Map, Value, json};

use super::model::{ElementDef, JsonKind, Model, Primitive, TypeDef, TypeRef};

/// How deep objects may nest (a resource's elements are depth 1), contained resources and
/// Bundle entries included. Real resources stay far below; it exists so hostile input cannot
/// recurse without bound.
pub const MAX_DEPTH: usize = 64;

/// An issue's severity, as OperationOutcome names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// One problem found in a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Where: `Patient.name[0].given[1]`; a resource inside a Bundle is reached through the
    /// Bundle (`Bundle.entry[2].resource.status`). Empty when the input is not an object.
    pub path: String,
    pub message: String,
    pub severity: Severity,
    /// The OperationOutcome issue type: `structure`, `value`, `required` or `invalid`.
    pub code: &'static str,
}

/// Validates a resource; returns every issue found, none when it is structurally valid.
pub fn validate(resource: &Value) -> Vec<Issue> {
    let mut walker = Walker {
        model: Model::r4(),
        path: Vec::new(),
        issues: Vec::new(),
    };
    walker.resource(resource, 0);
    walker.issues
}

/// True when any issue is an error (or fatal).
pub fn has_errors(issues: &[Issue]) -> bool {
    issues
        .iter()
        .any(|i| matches!(i.severity, Severity::Error | Severity::Fatal))
}

/// The issues as an OperationOutcome (each with `expression` set to its path).
pub fn operation_outcome(issues: &[Issue]) -> Value {
    let issues: Vec<Value> = issues
        .iter()
        .map(|i| {
            let mut issue =
                json!({ "severity": i.severity.as_str(), "code": i.code, "diagnostics": i.message });
            if !i.path.is_empty() {
                issue["expression"] = json!([i.path]);
            }
            issue
        })
        .collect();
    json!({ "resourceType": "OperationOutcome", "issue": issues })
}

/// One step of the location being walked; rendered only when an issue is reported, so the walk
/// itself allocates nothing for valid input.
#[derive(Clone, Copy)]
enum Step<'a> {
    Name(&'a str),
    Index(usize),
}

struct Walker<'a> {
    model: &'static Model,
    path: Vec<Step<'a>>,
    issues: Vec<Issue>,
}

/// Where the `_name` partner of a primitive stands, for `null` checks in parallel arrays.
fn partner<'v>(obj: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    let mut key = String::with_capacity(name.len() + 1);
    key.push('_');
    key.push_str(name);
    obj.get(&key)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Walker<'a> {
    fn report(&mut self, code: &'static str, message: String) {
        let mut path = String::new();
        for step in &self.path {
            match step {
                Step::Name(name) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(name);
                }
                Step::Index(i) => {
                    path.push('[');
                    path.push_str(&i.to_string());
                    path.push(']');
                }
            }
        }
        self.issues.push(Issue {
            path,
            message,
            severity: Severity::Error,
            code,
        });
    }

    /// A resource: at the top, or inside `contained`, `Bundle.entry.resource` and the like.
    fn resource(&mut self, value: &'a Value, depth: usize) {
        let Value::Object(obj) = value else {
            return self.report(
                "structure",
                format!("a resource must be a JSON object, not {}", json_type(value)),
            );
        };
        let type_def = match obj.get("resourceType") {
            None => return self.report("required", "resourceType is missing".into()),
            Some(Value::String(name)) => match self.model.type_def(name).filter(|t| t.is_resource()) {
                Some(t) => t,
                None => return self.report("invalid", format!("unknown resourceType '{name}'")),
            },
            Some(other) => {
                return self.report(
                    "structure",
                    format!("resourceType must be a string, not {}", json_type(other)),
                );
            }
        };
        let top = self.path.is_empty();
        if top {
            self.path.push(Step::Name(type_def.name));
        }
        self.object(obj, type_def, depth + 1, true);
        if top {
            self.path.pop();
        }
    }

    /// The properties of one object of type `type_def`.
    fn object(
        &mut self,
        obj: &'a Map<String, Value>,
        type_def: &'static TypeDef,
        depth: usize,
        is_resource: bool,
    ) {
        if depth > MAX_DEPTH {
            return self.report("invalid", format!("nested deeper than {MAX_DEPTH} levels"));
        }
        if obj.is_empty() {
            self.report("structure", "an object must have content".into());
        }
        // Which choice names were seen, to refuse `valueString` beside `valueQuantity`.
        let mut choices: Vec<&'static str> = Vec::new();
        for (key, value) in obj {
            if key == "resourceType" {
                if !is_resource {
                    self.path.push(Step::Name(key));
                    self.report("structure", "resourceType belongs on resources only".into());
                    self.path.pop();
                }
                continue;
            }
            if let Some(name) = key.strip_prefix('_') {
                match type_def.element(name).filter(|d| !d.is_choice()) {
                    Some(def) if def.primitive().is_some_and(|p| p != Primitive::Xhtml) => {
                        self.primitive_extras(key, def, value, obj.get(name), depth);
                    }
                    _ => self.unknown(key, type_def),
                }
                continue;
            }
            let Some(def) = type_def.element(key).filter(|d| !d.is_choice()) else {
                self.unknown(key, type_def);
                continue;
            };
            if let Some(base) = def.choice_base {
                if choices.contains(&base) {
                    self.path.push(Step::Name(key));
                    self.report("structure", format!("only one type of {base}[x] may be given"));
                    self.path.pop();
                }
                choices.push(base);
            }
            self.element(key, def, value, obj, depth);
        }
        self.required(obj, type_def);
    }

    fn unknown(&mut self, key: &'a str, type_def: &TypeDef) {
        self.path.push(Step::Name(key));
        self.report(
            "structure",
            format!("unknown element '{key}' in {}", type_def.name),
        );
        self.path.pop();
    }

    fn required(&mut self, obj: &Map<String, Value>, type_def: &'static TypeDef) {
        for def in type_def.elements.iter().filter(|d| d.min > 0) {
            let present = if def.is_choice() {
                def.variants
                    .iter()
                    .any(|v| obj.contains_key(*v) || partner(obj, v).is_some())
            } else {
                obj.contains_key(def.name) || (def.primitive().is_some() && partner(obj, def.name).is_some())
            };
            if !present {
                self.path.push(Step::Name(def.name));
                self.report("required", format!("{} is required", def.path));
                self.path.pop();
            }
        }
    }

    /// One property holding element `def`.
    fn element(
        &mut self,
        key: &'a str,
        def: &'static ElementDef,
        value: &'a Value,
        obj: &'a Map<String, Value>,
        depth: usize,
    ) {
        let Some(ty) = def.single_type() else { return };
        self.path.push(Step::Name(key));
        match (def.max_many, value) {
            (true, Value::Array(items)) => {
                if items.is_empty() {
                    self.report("structure", "an array must not be empty".into());
                }
                for (i, item) in items.iter().enumerate() {
                    self.path.push(Step::Index(i));
                    if item.is_null() {
                        let partnered = ty.primitive.is_some()
                            && partner(obj, key)
                                .and_then(|p| p.get(i))
                                .is_some_and(|p| !p.is_null());
                        if !partnered {
                            self.report(
                                "structure",
                                "null is only allowed in a primitive array whose _ partner has a value there"
                                    .into(),
                            );
                        }
                    } else {
                        self.value(item, ty, depth);
                    }
                    self.path.pop();
                }
            }
            (true, other) => self.report(
                "structure",
                format!(
                    "{} repeats: it must be an array, not {}",
                    def.name,
                    json_type(other)
                ),
            ),
            (false, Value::Array(_)) => self.report(
                "structure",
                format!("{} does not repeat: it must not be an array", def.name),
            ),
            (false, Value::Null) => self.report("structure", "null is not allowed here".into()),
            (false, other) => self.value(other, ty, depth),
        }
        self.path.pop();
    }

    /// One value of type `ty` (an array item or a single element).
    fn value(&mut self, value: &'a Value, ty: &'static TypeRef, depth: usize) {
        if let Some(p) = ty.primitive {
            return self.primitive(value, p);
        }
        if ty.is_resource() {
            return self.resource(value, depth);
        }
        let Value::Object(obj) = value else {
            return self.report(
                "structure",
                format!("a {} must be a JSON object, not {}", ty.code, json_type(value)),
            );
        };
        match self.model.type_def(ty.target) {
            Some(type_def) => self.object(obj, type_def, depth + 1, false),
            None => self.report("structure", format!("no definition of {}", ty.target)),
        }
    }

    fn primitive(&mut self, value: &Value, p: Primitive) {
        let kind_ok = matches!(
            (p.json_kind(), value),
            (JsonKind::Bool, Value::Bool(_))
                | (JsonKind::Number, Value::Number(_))
                | (JsonKind::String, Value::String(_))
        );
        if !kind_ok {
            let want = match p.json_kind() {
                JsonKind::Bool => "a JSON boolean",
                JsonKind::Number => "a JSON number",
                JsonKind::String => "a JSON string",
            };
            return self.report(
                "value",
                format!("a {} must be {want}, not {}", p.code(), json_type(value)),
            );
        }
        let checked = match value {
            Value::Number(n) if p.is_integer() => integer(n, p),
            Value::String(s) => string_value(s, p),
            _ => Ok(()),
        };
        if let Err(reason) = checked {
            let shown = match value {
                Value::String(s) if s.len() <= 64 => format!(" '{s}'"),
                Value::Number(n) => format!(" {n}"),
                _ => String::new(),
            };
            self.report("value", format!("invalid {}{shown}: {reason}", p.code()));
        }
    }

    /// A `_name` property: the id and extensions of primitive element `def`.
    fn primitive_extras(
        &mut self,
        key: &'a str,
        def: &'static ElementDef,
        value: &'a Value,
        main: Option<&'a Value>,
        depth: usize,
    ) {
        let element_type = self.model.type_def("Element");
        let Some(element_type) = element_type else { return };
        self.path.push(Step::Name(key));
        match (def.max_many, value) {
            (true, Value::Array(items)) => {
                if let Some(Value::Array(values)) = main
                    && values.len() != items.len()
                {
                    self.report(
                        "structure",
                        format!("{key} must have as many items as {}", def.name),
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    self.path.push(Step::Index(i));
                    match item {
                        Value::Null => {
                            // A null facing a null is reported once, on the value array.
                            if main.and_then(|m| m.get(i)).is_none() {
                                self.report("structure", "a value or its _ partner must be given".into());
                            }
                        }
                        Value::Object(obj) => self.object(obj, element_type, depth + 1, false),
                        other => self.report(
                            "structure",
                            format!("must be an object or null, not {}", json_type(other)),
                        ),
                    }
                    self.path.pop();
                }
            }
            (true, other) => self.report(
                "structure",
                format!("{key} repeats: it must be an array, not {}", json_type(other)),
            ),
            (false, Value::Object(obj)) => self.object(obj, element_type, depth + 1, false),
            (false, other) => self.report(
                "structure",
                format!("must be an object, not {}", json_type(other)),
            ),
        }
        self.path.pop();
    }
}

fn integer(n: &serde_json::Number, p: Primitive) -> Result<(), &'static str> {
    let Some(i) = n.as_i64() else {
        return Err("must be a whole number in the 32-bit range");
    };
    match p {
        Primitive::PositiveInt if !(1..=i64::from(i32::MAX)).contains(&i) => Err("must be 1 to 2147483647"),
        Primitive::UnsignedInt if !(0..=i64::from(i32::MAX)).contains(&i) => Err("must be 0 to 2147483647"),
        Primitive::Integer if i32::try_from(i).is_err() => Err("must be in the 32-bit range"),
        _ => Ok(()),
    }
}

fn string_value(s: &str, p: Primitive) -> Result<(), &'static str> {
    match p {
        Primitive::String | Primitive::Markdown => format::string(s),
        Primitive::Code => format::code(s),
        Primitive::Id => format::id(s),
        Primitive::Uri | Primitive::Url | Primitive::Canonical => format::uri(s),
        Primitive::Oid => format::oid(s),
        Primitive::Uuid => format::uuid(s),
        Primitive::Base64Binary => format::base64(s),
        Primitive::Date => format::date(s),
        Primitive::DateTime => format::date_time(s),
        Primitive::Instant => format::instant(s),
        Primitive::Time => format::time(s),
        Primitive::Xhtml => super::xml::check_div(s),
        Primitive::Boolean
        | Primitive::Integer
        | Primitive::UnsignedInt
        | Primitive::PositiveInt
        | Primitive::Decimal => Ok(()),
    }
}

#[cfg(test)]
mod tests;
