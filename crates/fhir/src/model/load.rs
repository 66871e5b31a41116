//! Reads `r4.tsv` (the format is described in `scripts/gen_fhir_model.py`) into a [`Model`].
//!
//! The file lists, per type, only what the type does not inherit. This reader rebuilds each
//! type's full element list the way the generator checked it against the snapshots: the base
//! type's elements first (an own line with the same path replaces the inherited one in place),
//! then the type's own elements, each BackboneElement/Element child followed at once by the
//! elements of BackboneElement/Element (`id`, `extension`, `modifierExtension`).

use super::fast_hash::FastMap;
use super::{ElementDef, Model, Primitive, Slot, TypeDef, TypeKind, TypeRef};

/// One element line: path relative to its type, cardinality, `|`-separated types, flags.
#[derive(Debug, Clone, Copy)]
struct Line {
    path: &'static str,
    min: u32,
    max_many: bool,
    types: &'static str,
    xml_attr: bool,
}

struct Header {
    name: &'static str,
    kind: char,
    base: &'static str,
    own: Vec<Line>,
}

/// Makes a composed string live as long as the model (which lives for the process).
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn parse_card(card: &str) -> Result<(u32, bool), String> {
    Ok(match card {
        "?" => (0, false),
        "!" => (1, false),
        "*" => (0, true),
        "+" => (1, true),
        other => {
            let (min, max) = other
                .split_once(',')
                .ok_or_else(|| format!("bad cardinality {other:?}"))?;
            let min = min.parse().map_err(|_| format!("bad cardinality {other:?}"))?;
            let many = match max {
                "*" => true,
                n => {
                    n.parse::<u32>()
                        .map_err(|_| format!("bad cardinality {other:?}"))?
                        > 1
                }
            };
            (min, many)
        }
    })
}

fn parse_lines(text: &'static str) -> Result<Vec<Header>, String> {
    let mut headers: Vec<Header> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let at = |msg: String| format!("line {}: {msg}", n + 1);
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        if let Some(rest) = raw.strip_prefix('@') {
            let mut fields = rest.split('\t');
            let (Some(name), Some(kind), Some(base)) = (fields.next(), fields.next(), fields.next()) else {
                return Err(at("a type line needs name, kind and base".into()));
            };
            let kind = kind
                .chars()
                .next()
                .filter(|_| kind.len() == 1)
                .ok_or_else(|| at("bad kind".into()))?;
            headers.push(Header {
                name,
                kind,
                base,
                own: Vec::new(),
            });
            continue;
        }
        let mut fields = raw.split('\t');
        let (Some(path), Some(card), Some(types)) = (fields.next(), fields.next(), fields.next()) else {
            return Err(at("an element line needs path, cardinality and types".into()));
        };
        let flags = fields.next().unwrap_or("");
        let (min, max_many) = parse_card(card).map_err(at)?;
        let header = headers
            .last_mut()
            .ok_or_else(|| at("element before any type".into()))?;
        header.own.push(Line {
            path,
            min,
            max_many,
            types,
            xml_attr: flags.contains('a'),
        });
    }
    Ok(headers)
}

fn is_backbone_code(types: &str) -> bool {
    types == "BackboneElement" || types == "Element"
}

/// The full, ordered element list of a type (see the module doc).
fn expand(header: &Header, full: &FastMap<&'static str, Vec<Line>>) -> Result<Vec<Line>, String> {
    let mut result: Vec<Line> = match header.base {
        "" => Vec::new(),
        base => full
            .get(base)
            .cloned()
            .ok_or_else(|| format!("{}: unknown base {base}", header.name))?,
    };
    let mut index: FastMap<&'static str, usize> = result
        .iter()
        .enumerate()
        .map(|(i, line)| (line.path, i))
        .collect();
    let defines_backbones = !matches!(header.name, "Element" | "BackboneElement");
    for line in &header.own {
        match index.get(line.path) {
            Some(&i) => result[i] = *line,
            None => {
                index.insert(line.path, result.len());
                result.push(*line);
            }
        }
        if defines_backbones && is_backbone_code(line.types) {
            let implied = full
                .get(line.types)
                .ok_or_else(|| format!("{} before Element", header.name))?;
            for child in implied {
                let path = leak(format!("{}.{}", line.path, child.path));
                if !index.contains_key(path) {
                    index.insert(path, result.len());
                    result.push(Line { path, ..*child });
                }
            }
        }
    }
    Ok(result)
}

/// `value` + `Quantity` -> `valueQuantity`.
fn choice_name(base: &str, code: &str) -> String {
    let mut name = String::with_capacity(base.len() + code.len());
    name.push_str(base);
    let mut chars = code.chars();
    if let Some(first) = chars.next() {
        name.extend(first.to_uppercase());
        name.push_str(chars.as_str());
    }
    name
}

/// The types of one element line of type `owner`, whose full element list is `lines`.
fn type_refs(owner: &'static str, line: &Line, lines: &[Line]) -> Result<Vec<TypeRef>, String> {
    if let Some(target) = line.types.strip_prefix('#') {
        let referenced = lines
            .iter()
            .find(|l| l.path == target)
            .ok_or_else(|| format!("{owner}.{}: no element {target}", line.path))?;
        return Ok(vec![TypeRef {
            code: referenced.types,
            target: leak(format!("{owner}.{target}")),
            primitive: None,
        }]);
    }
    let backbone_owner = !matches!(owner, "Element" | "BackboneElement");
    line.types
        .split('|')
        .map(|code| {
            if code.is_empty() {
                return Err(format!("{owner}.{}: no type", line.path));
            }
            let target = if backbone_owner && is_backbone_code(code) {
                leak(format!("{owner}.{}", line.path))
            } else {
                code
            };
            Ok(TypeRef {
                code,
                target,
                primitive: Primitive::from_code(code),
            })
        })
        .collect()
}

/// Adds `def` (and, for a choice, one ElementDef per concrete name) to the type being built.
fn add_element(type_def: &mut TypeDef, def: ElementDef) -> Result<(), String> {
    let at = type_def.elements.len() as u32;
    let slot = Slot::Element(at);
    if type_def.index.insert(def.name, slot).is_some() {
        return Err(format!("{}: {} twice", type_def.name, def.name));
    }
    if let Some(base) = def.choice_base {
        let parent = def.path.strip_suffix(def.name).unwrap_or("");
        for (ty, variant) in def.types.iter().zip(&def.variants) {
            let choice = ElementDef {
                path: leak(format!("{parent}{variant}")),
                name: variant,
                min: def.min,
                max_many: def.max_many,
                types: vec![ty.clone()],
                choice_base: Some(base),
                variants: Vec::new(),
                xml_attr: false,
            };
            let slot = Slot::Choice(type_def.choices.len() as u32);
            if type_def.index.insert(variant, slot).is_some() {
                return Err(format!("{}: {variant} twice", type_def.name));
            }
            type_def.choices.push((at, choice));
        }
    }
    type_def.elements.push(def);
    Ok(())
}

fn new_type(name: &'static str, kind: TypeKind, is_abstract: bool, base: Option<&'static str>) -> TypeDef {
    TypeDef {
        name,
        kind,
        is_abstract,
        base,
        elements: Vec::new(),
        choices: Vec::new(),
        index: FastMap::default(),
    }
}

/// Parses the model file.
pub(super) fn parse(text: &'static str) -> Result<Model, String> {
    let headers = parse_lines(text)?;
    let mut full: FastMap<&'static str, Vec<Line>> = FastMap::default();
    let mut types: FastMap<&'static str, TypeDef> = FastMap::default();
    let mut resources = Vec::new();

    for header in &headers {
        let is_abstract = header.kind.is_ascii_uppercase();
        let kind = match header.kind.to_ascii_lowercase() {
            'r' => TypeKind::Resource,
            'c' => TypeKind::Complex,
            'p' => TypeKind::Primitive(
                Primitive::from_code(header.name)
                    .ok_or_else(|| format!("unknown primitive {}", header.name))?,
            ),
            other => return Err(format!("{}: unknown kind {other}", header.name)),
        };
        let base = (!header.base.is_empty()).then_some(header.base);
        if kind == TypeKind::Resource && !is_abstract {
            resources.push(header.name);
        }
        if matches!(kind, TypeKind::Primitive(_)) {
            full.insert(header.name, Vec::new());
            types.insert(header.name, new_type(header.name, kind, is_abstract, base));
            continue;
        }
        let lines = expand(header, &full)?;

        // The type itself and one backbone type per BackboneElement/Element child; each line
        // goes to the type named by its parent path.
        let mut built: Vec<TypeDef> = vec![new_type(header.name, kind, is_abstract, base)];
        let mut owner_of: FastMap<&'static str, usize> = FastMap::default();
        owner_of.insert("", 0);
        for line in &lines {
            let (parent, name) = line.path.rsplit_once('.').unwrap_or(("", line.path));
            let owner = *owner_of
                .get(parent)
                .ok_or_else(|| format!("{}.{}: parent is not a backbone element", header.name, line.path))?;
            let path = leak(format!("{}.{}", header.name, line.path));
            let types_of = type_refs(header.name, line, &lines)?;
            let (choice_base, variants) = match name.strip_suffix("[x]") {
                Some(base) => (
                    Some(base),
                    types_of.iter().map(|t| leak(choice_name(base, t.code))).collect(),
                ),
                None => (None, Vec::new()),
            };
            let def = ElementDef {
                path,
                name,
                min: line.min,
                max_many: line.max_many,
                types: types_of,
                choice_base,
                variants,
                xml_attr: line.xml_attr,
            };
            add_element(&mut built[owner], def)?;
            let defines_backbone = !line.types.starts_with('#')
                && is_backbone_code(line.types)
                && !matches!(header.name, "Element" | "BackboneElement");
            if defines_backbone {
                owner_of.insert(line.path, built.len());
                built.push(new_type(path, TypeKind::Backbone, false, None));
            }
        }
        for type_def in built {
            if types.insert(type_def.name, type_def).is_some() {
                return Err(format!("type {} defined twice", header.name));
            }
        }
        full.insert(header.name, lines);
    }

    // Every type a model element names must exist, so lookups never dangle.
    for type_def in types.values() {
        for def in type_def.elements.iter() {
            for t in &def.types {
                if !types.contains_key(t.target) {
                    return Err(format!("{}: unknown type {}", def.path, t.target));
                }
            }
        }
    }
    resources.sort_unstable();
    Ok(Model { types, resources })
}
