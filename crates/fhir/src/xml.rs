//! FHIR R4 XML <-> JSON, following the specification's rules for the two formats:
//!
//! - The root element is the resource type, in the namespace `http://hl7.org/fhir`; JSON carries
//!   the type in `resourceType`. A resource inside another (`contained`, `Bundle.entry.resource`,
//!   `Parameters.parameter.resource`) is wrapped in an element named by its type.
//! - Primitives are elements with a `value` attribute; their `id` is an attribute and their
//!   extensions child elements. JSON puts the id and extensions in a sibling `_name` property, and
//!   a repeating primitive's in a parallel `_name` array with `null` where an item has none (and
//!   `null` in the value array where an item has only extensions).
//! - An element's `id` and an extension's `url` are attributes.
//! - The narrative `div` is XHTML, copied verbatim both ways: the JSON string is the XHTML source
//!   text, and reading XML captures the raw text of the `div` subtree.
//! - JSON numbers and booleans follow the model's types: `integer`, `decimal` ... become JSON
//!   numbers, `boolean` JSON booleans, everything else strings.
//!
//! Elements are written in definition order, as FHIR XML requires; reading accepts any order.
//! Reading walks quick-xml's events (serde would lose the XHTML and unknown elements), bounded in
//! size ([`MAX_XML_BYTES`]) and nesting ([`MAX_DEPTH`]), and refuses with an [`XmlError`] that
//! names where (`Patient.name[0].given`): unknown elements or attributes, elements outside the FHIR
//! namespace, a DTD, text where none belongs, a `value` on a complex type, a repeated
//! non-repeating element, values that do not fit their type. No XML declaration is written.
//!
//! Decimals keep their exact text (`1.50` stays `1.50`, both ways): the crate turns on serde_json's
//! `arbitrary_precision`, and the codec reads decimals through serde_json when it finds the
//! feature on. Should the feature ever be turned off, serde_json holds decimals as f64: XML to
//! JSON then parses the text into the nearest f64 (a whole number stays a JSON integer), JSON to
//! XML writes the shortest text that reads back as the same f64, so `1.50` becomes `1.5` and
//! digits beyond f64's precision are lost, while a JSON -> XML -> JSON round trip still gives back
//! the same JSON value.

use std::sync::LazyLock;

use quick_xml::NsReader;
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, QName, ResolveResult};
use serde_json::{Map, Number, Value};

use super::model::{ElementDef, JsonKind, Model, Primitive, TypeDef, TypeRef};

/// The FHIR namespace.
pub const FHIR_NS: &str = "http://hl7.org/fhir";
/// The XHTML namespace of the narrative `div`.
pub const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";
/// XML Schema instance attributes (`xsi:schemaLocation`) are ignored when reading.
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// The largest XML document read.
pub const MAX_XML_BYTES: usize = 64 * 1024 * 1024;
/// How deep elements may nest (the root resource is depth 1), in both directions.
pub const MAX_DEPTH: usize = 96;

/// Why a conversion failed, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct XmlError {
    /// FHIRPath-like location: `Patient.name[0].given[1]`; empty before the root is known.
    pub path: String,
    pub message: String,
}

/// A location being walked; rendered only for an error.
#[derive(Default)]
struct Path {
    steps: Vec<(&'static str, Option<usize>)>,
}

impl Path {
    fn push(&mut self, name: &'static str, index: Option<usize>) {
        self.steps.push((name, index));
    }

    fn pop(&mut self) {
        self.steps.pop();
    }

    fn render(&self, extra: Option<&str>) -> String {
        let mut out = String::new();
        let names = self
            .steps
            .iter()
            .map(|(n, i)| (*n, *i))
            .chain(extra.map(|e| (e, None)));
        for (name, index) in names {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(name);
            if let Some(i) = index {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
        out
    }

    fn error(&self, message: impl Into<String>) -> XmlError {
        XmlError {
            path: self.render(None),
            message: message.into(),
        }
    }

    /// An error about a child (`key`) that is not in the model, so has no static name.
    fn error_at(&self, key: &str, message: impl Into<String>) -> XmlError {
        XmlError {
            path: self.render(Some(key)),
            message: message.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSON to XML
// ---------------------------------------------------------------------------------------------

/// Converts a FHIR JSON resource to FHIR XML.
pub fn json_to_xml(resource: &Value) -> Result<String, XmlError> {
    let mut writer = XmlWriter {
        model: Model::r4(),
        out: String::with_capacity(4096),
        path: Path::default(),
    };
    writer.resource(resource, true, 0)?;
    Ok(writer.out)
}

struct XmlWriter {
    model: &'static Model,
    out: String,
    path: Path,
}

/// A JSON property resolved against the model: its element, and the value and `_name` partner.
struct Prop<'v> {
    order: usize,
    name: &'static str,
    def: &'static ElementDef,
    main: Option<&'v Value>,
    extras: Option<&'v Value>,
}

/// True for a character XML 1.0 cannot carry at all, raw or as a character reference (most
/// control characters). Writing refuses such values, and so does reading, so that every resource
/// read from XML can be written back as XML.
fn xml_cannot_carry(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// Escapes text for an attribute value; whitespace other than space is written as character
/// references so that attribute-value normalization gives it back unchanged. False when the text
/// holds a character XML 1.0 cannot carry at all ([`xml_cannot_carry`]).
fn push_escaped(out: &mut String, text: &str) -> bool {
    for c in text.chars() {
        match c {
            c if xml_cannot_carry(c) => return false,
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    true
}

impl XmlWriter {
    fn resource(&mut self, value: &Value, root: bool, depth: usize) -> Result<(), XmlError> {
        let Value::Object(obj) = value else {
            return Err(self.path.error("a resource must be a JSON object"));
        };
        let Some(Value::String(type_name)) = obj.get("resourceType") else {
            return Err(self.path.error("resourceType is missing"));
        };
        let Some(type_def) = self.model.type_def(type_name).filter(|t| t.is_resource()) else {
            return Err(self.path.error(format!("unknown resourceType '{type_name}'")));
        };
        if root {
            self.path.push(type_def.name, None);
        }
        let ns = if root { Some(FHIR_NS) } else { None };
        self.complex(type_def.name, Some(obj), type_def, None, ns, depth + 1)?;
        if root {
            self.path.pop();
        }
        Ok(())
    }

    /// Resolves and orders the properties of `obj` (definition order, `value`/`_value` merged).
    fn props<'v>(
        &self,
        obj: &'v Map<String, Value>,
        type_def: &'static TypeDef,
    ) -> Result<Vec<Prop<'v>>, XmlError> {
        let mut props: Vec<Prop<'v>> = Vec::with_capacity(obj.len());
        for (key, value) in obj {
            if key == "resourceType" && type_def.is_resource() {
                continue;
            }
            let (name, is_extras) = match key.strip_prefix('_') {
                Some(name) => (name, true),
                None => (key.as_str(), false),
            };
            let resolved = type_def.element_at(name).filter(|(_, d)| !d.is_choice());
            let Some((order, def)) = resolved else {
                return Err(self
                    .path
                    .error_at(key, format!("unknown element in {}", type_def.name)));
            };
            if is_extras && !def.primitive().is_some_and(|p| p != Primitive::Xhtml) {
                return Err(self
                    .path
                    .error_at(key, "a _ property belongs to primitive elements only"));
            }
            match props.iter_mut().find(|p| p.order == order) {
                Some(p) if p.name == def.name => {
                    if is_extras {
                        p.extras = Some(value)
                    } else {
                        p.main = Some(value)
                    }
                }
                Some(_) => {
                    let base = def.choice_base.unwrap_or(def.name);
                    return Err(self
                        .path
                        .error_at(key, format!("only one type of {base}[x] may be given")));
                }
                None => props.push(Prop {
                    order,
                    name: def.name,
                    def,
                    main: (!is_extras).then_some(value),
                    extras: is_extras.then_some(value),
                }),
            }
        }
        props.sort_unstable_by_key(|p| p.order);
        Ok(props)
    }

    /// Writes `<tag attrs>children</tag>` for an object of type `type_def`; `value` is a
    /// primitive's value attribute, `ns` the namespace declared on the root.
    fn complex(
        &mut self,
        tag: &str,
        obj: Option<&Map<String, Value>>,
        type_def: &'static TypeDef,
        value: Option<&str>,
        ns: Option<&str>,
        depth: usize,
    ) -> Result<(), XmlError> {
        if depth > MAX_DEPTH {
            return Err(self.path.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let props = match obj {
            Some(obj) => self.props(obj, type_def)?,
            None => Vec::new(),
        };
        self.out.push('<');
        self.out.push_str(tag);
        if let Some(ns) = ns {
            self.out.push_str(" xmlns=\"");
            self.out.push_str(ns);
            self.out.push('"');
        }
        for prop in props.iter().filter(|p| p.def.xml_attr) {
            let Some(Value::String(text)) = prop.main else {
                return Err(self.path.error_at(prop.name, "must be a string"));
            };
            self.out.push(' ');
            self.out.push_str(prop.name);
            self.out.push_str("=\"");
            if !push_escaped(&mut self.out, text) {
                return Err(self
                    .path
                    .error_at(prop.name, "holds a character XML cannot carry"));
            }
            self.out.push('"');
        }
        if let Some(value) = value {
            self.out.push_str(" value=\"");
            if !push_escaped(&mut self.out, value) {
                return Err(self.path.error("the value holds a character XML cannot carry"));
            }
            self.out.push('"');
        }
        let mut children = props.iter().filter(|p| !p.def.xml_attr).peekable();
        if children.peek().is_none() && !type_def.is_resource() {
            self.out.push_str("/>");
            return Ok(());
        }
        self.out.push('>');
        for prop in children {
            self.prop(prop, depth)?;
        }
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        Ok(())
    }

    fn prop(&mut self, prop: &Prop<'_>, depth: usize) -> Result<(), XmlError> {
        let def = prop.def;
        let Some(ty) = def.single_type() else {
            return Err(self.path.error_at(prop.name, "a choice needs a type"));
        };
        if def.max_many {
            let items = match prop.main {
                None => &[][..],
                Some(Value::Array(items)) => items.as_slice(),
                Some(_) => return Err(self.path.error_at(prop.name, "repeats: it must be an array")),
            };
            let extras = match prop.extras {
                None => &[][..],
                Some(Value::Array(extras)) => extras.as_slice(),
                Some(_) => return Err(self.path.error_at(prop.name, "its _ partner must be an array")),
            };
            if !items.is_empty() && !extras.is_empty() && items.len() != extras.len() {
                return Err(self
                    .path
                    .error_at(prop.name, "the value and _ arrays differ in length"));
            }
            for i in 0..items.len().max(extras.len()) {
                self.path.push(prop.name, Some(i));
                self.item(prop.name, ty, items.get(i), extras.get(i), depth)?;
                self.path.pop();
            }
            Ok(())
        } else {
            if matches!(prop.main, Some(Value::Array(_))) || matches!(prop.extras, Some(Value::Array(_))) {
                return Err(self
                    .path
                    .error_at(prop.name, "does not repeat: it must not be an array"));
            }
            self.path.push(prop.name, None);
            self.item(prop.name, ty, prop.main, prop.extras, depth)?;
            self.path.pop();
            Ok(())
        }
    }

    /// One occurrence of an element: a value and, for a primitive, its `_` partner.
    fn item(
        &mut self,
        tag: &'static str,
        ty: &'static TypeRef,
        value: Option<&Value>,
        extras: Option<&Value>,
        depth: usize,
    ) -> Result<(), XmlError> {
        let value = value.filter(|v| !v.is_null());
        let extras = extras.filter(|v| !v.is_null());
        if let Some(p) = ty.primitive {
            if p == Primitive::Xhtml {
                let Some(Value::String(div)) = value else {
                    return Err(self.path.error("the narrative div must be a string"));
                };
                check_div(div).map_err(|e| self.path.error(e))?;
                self.out.push_str(div);
                return Ok(());
            }
            let text = match value {
                Some(v) => Some(self.primitive_text(v, p)?),
                None => None,
            };
            let extras = match extras {
                None => None,
                Some(Value::Object(obj)) => Some(obj),
                Some(_) => return Err(self.path.error("a _ partner must be an object")),
            };
            if text.is_none() && extras.is_none() {
                return Err(self.path.error("needs a value or a _ partner"));
            }
            let element = self.type_def("Element")?;
            return self.complex(tag, extras, element, text.as_deref(), None, depth + 1);
        }
        let Some(value) = value else {
            return Err(self.path.error("null is not allowed here"));
        };
        if ty.is_resource() {
            self.out.push('<');
            self.out.push_str(tag);
            self.out.push('>');
            self.resource(value, false, depth)?;
            self.out.push_str("</");
            self.out.push_str(tag);
            self.out.push('>');
            return Ok(());
        }
        let Value::Object(obj) = value else {
            return Err(self.path.error(format!("a {} must be a JSON object", ty.code)));
        };
        let type_def = self.type_def(ty.target)?;
        self.complex(tag, Some(obj), type_def, None, None, depth + 1)
    }

    fn type_def(&self, name: &str) -> Result<&'static TypeDef, XmlError> {
        self.model
            .type_def(name)
            .ok_or_else(|| self.path.error(format!("no definition of {name}")))
    }

    /// The text of a primitive's `value` attribute.
    fn primitive_text(&self, value: &Value, p: Primitive) -> Result<String, XmlError> {
        let text = match (p.json_kind(), value) {
            (JsonKind::Bool, Value::Bool(b)) => b.to_string(),
            (JsonKind::Number, Value::Number(n)) => {
                if p.is_integer() && n.as_i64().is_none() {
                    return Err(self.path.error(format!("a {} must be a whole number", p.code())));
                }
                n.to_string()
            }
            (JsonKind::String, Value::String(s)) => s.clone(),
            _ => {
                return Err(self
                    .path
                    .error(format!("not a valid JSON value for a {}", p.code())));
            }
        };
        Ok(text)
    }
}

// ---------------------------------------------------------------------------------------------
// XML to JSON
// ---------------------------------------------------------------------------------------------

/// Converts a FHIR XML resource to FHIR JSON.
pub fn xml_to_json(xml: &str) -> Result<Value, XmlError> {
    if xml.len() > MAX_XML_BYTES {
        return Err(XmlError {
            path: String::new(),
            message: format!("the XML document is larger than {MAX_XML_BYTES} bytes"),
        });
    }
    // A UTF-8 byte order mark is common in files and bodies from Windows tools.
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().check_end_names = true;
    reader.config_mut().expand_empty_elements = false;
    let mut xr = XmlReader {
        model: Model::r4(),
        input: xml,
        reader,
        path: Path::default(),
        last_pos: 0,
    };
    xr.document()
}

struct XmlReader<'i> {
    model: &'static Model,
    input: &'i str,
    reader: NsReader<&'i [u8]>,
    path: Path,
    /// Where the event last read started: the `<` of a start tag, for capturing the `div`.
    last_pos: usize,
}

/// What namespace an element name resolved to.
#[derive(PartialEq, Eq)]
enum Ns {
    Fhir,
    Xhtml,
    Other,
}

/// A repeating primitive's `_name` array, kept aside until the parent ends: it is written only
/// when some item has an id or extensions.
struct Extras {
    name: &'static str,
    items: Vec<Value>,
}

impl<'i> XmlReader<'i> {
    fn next(&mut self) -> Result<Event<'i>, XmlError> {
        self.last_pos = usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX);
        self.reader.read_event().map_err(|e| self.syntax(e))
    }

    fn syntax(&self, e: quick_xml::Error) -> XmlError {
        let at = usize::try_from(self.reader.error_position())
            .unwrap_or(0)
            .min(self.input.len());
        let line = self.input.as_bytes()[..at]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        self.path.error(format!("malformed XML at line {line}: {e}"))
    }

    fn ns(&self, name: QName<'_>) -> Ns {
        match self.reader.resolver().resolve_element(name).0 {
            ResolveResult::Bound(Namespace(ns)) if ns == FHIR_NS => Ns::Fhir,
            ResolveResult::Bound(Namespace(ns)) if ns == XHTML_NS => Ns::Xhtml,
            _ => Ns::Other,
        }
    }

    fn document(&mut self) -> Result<Value, XmlError> {
        let mut root = None;
        loop {
            match self.next()? {
                Event::Start(e) | Event::Empty(e) if root.is_some() => {
                    return Err(self
                        .path
                        .error_at(e.local_name().into_inner(), "content after the resource"));
                }
                Event::Start(e) => root = Some(self.resource_element(&e, false, 1)?),
                Event::Empty(e) => root = Some(self.resource_element(&e, true, 1)?),
                Event::Text(t) if t.trim_ascii().is_empty() => {}
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
                Event::DocType(_) => return Err(self.path.error("a DTD is not allowed")),
                Event::Eof => return root.ok_or_else(|| self.path.error("no resource in the document")),
                _ => return Err(self.path.error("text outside the resource")),
            }
        }
    }

    /// A resource element (the root, or inside a wrapper like `contained`), its start tag read.
    fn resource_element(
        &mut self,
        start: &BytesStart<'i>,
        empty: bool,
        depth: usize,
    ) -> Result<Value, XmlError> {
        let local = start.local_name().into_inner();
        let Some(type_def) = self.model.type_def(local).filter(|t| t.is_resource()) else {
            return Err(self.path.error_at(local, "not a FHIR resource type"));
        };
        if self.ns(start.name()) != Ns::Fhir {
            return Err(self
                .path
                .error_at(local, format!("a resource must be in the namespace {FHIR_NS}")));
        }
        let top = self.path.steps.is_empty();
        if top {
            self.path.push(type_def.name, None);
        }
        self.attributes(start, type_def, &mut Map::new(), false)?;
        let mut obj = Map::new();
        obj.insert("resourceType".into(), Value::String(type_def.name.into()));
        if !empty {
            self.children(type_def, &mut obj, depth)?;
        }
        if top {
            self.path.pop();
        }
        Ok(Value::Object(obj))
    }

    /// Reads a start tag's attributes: the ones `type_def` writes as attributes (`id`, `url`)
    /// into `obj`; a primitive's `value` is returned when `value_allowed`.
    fn attributes(
        &mut self,
        start: &BytesStart<'i>,
        type_def: &'static TypeDef,
        obj: &mut Map<String, Value>,
        value_allowed: bool,
    ) -> Result<Option<String>, XmlError> {
        let mut value = None;
        for attr in start.attributes() {
            let attr = attr.map_err(|e| self.path.error(format!("malformed attribute: {e}")))?;
            if attr.key.as_namespace_binding().is_some() {
                continue;
            }
            if attr.key.prefix().is_some() {
                let (ns, _) = self.reader.resolver().resolve_attribute(attr.key);
                if matches!(ns, ResolveResult::Bound(Namespace(ns)) if ns == XSI_NS) {
                    continue;
                }
                return Err(self
                    .path
                    .error(format!("unknown attribute '{}'", attr.key.as_ref())));
            }
            let text = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| self.path.error(format!("bad attribute value: {e}")))?;
            // quick-xml lets these through (raw or as `&#1;`); the document is not well-formed.
            if text.contains(xml_cannot_carry) {
                return Err(self.path.error(format!(
                    "attribute '{}' holds a character XML cannot carry",
                    attr.key.as_ref()
                )));
            }
            let name = attr.key.local_name().into_inner();
            if name == "value" {
                if !value_allowed {
                    return Err(self.path.error(format!(
                        "{} is a complex type: it has no value attribute",
                        type_def.name
                    )));
                }
                value = Some(text.into_owned());
                continue;
            }
            match type_def.element(name).filter(|d| d.xml_attr) {
                Some(def) => {
                    if obj
                        .insert(def.name.into(), Value::String(text.into_owned()))
                        .is_some()
                    {
                        return Err(self.path.error(format!("attribute '{name}' twice")));
                    }
                }
                None => return Err(self.path.error(format!("unknown attribute '{name}'"))),
            }
        }
        Ok(value)
    }

    /// Reads child elements of an object of type `type_def` into `obj` until its end tag.
    fn children(
        &mut self,
        type_def: &'static TypeDef,
        obj: &mut Map<String, Value>,
        depth: usize,
    ) -> Result<(), XmlError> {
        if depth > MAX_DEPTH {
            return Err(self.path.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let mut extras: Vec<Extras> = Vec::new();
        loop {
            match self.next()? {
                Event::Start(e) => self.child(&e, false, type_def, obj, &mut extras, depth)?,
                Event::Empty(e) => self.child(&e, true, type_def, obj, &mut extras, depth)?,
                Event::End(_) => break,
                Event::Text(t) if t.trim_ascii().is_empty() => {}
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => return Err(self.path.error("the document ends inside an element")),
                Event::DocType(_) | Event::Decl(_) => return Err(self.path.error("misplaced declaration")),
                _ => {
                    return Err(self
                        .path
                        .error("text is not allowed here: FHIR values go in value attributes"));
                }
            }
        }
        // A repeating primitive: the value array only when some item has a value, the `_` array
        // only when some item has an id or extensions.
        for Extras { name, items } in extras {
            if obj
                .get(name)
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().all(Value::is_null))
            {
                obj.remove(name);
            }
            if items.iter().any(|v| !v.is_null()) {
                obj.insert(format!("_{name}"), Value::Array(items));
            }
        }
        Ok(())
    }

    /// One child element of an object of type `parent`.
    fn child(
        &mut self,
        start: &BytesStart<'i>,
        empty: bool,
        parent: &'static TypeDef,
        obj: &mut Map<String, Value>,
        extras: &mut Vec<Extras>,
        depth: usize,
    ) -> Result<(), XmlError> {
        let local = start.local_name().into_inner();
        let def = match parent.element(local) {
            Some(def) if !def.is_choice() && !def.xml_attr => def,
            _ => {
                return Err(self
                    .path
                    .error_at(local, format!("unknown element in {}", parent.name)));
            }
        };
        let Some(ty) = def.single_type() else {
            return Err(self.path.error_at(local, "a choice needs a type"));
        };
        let ns = self.ns(start.name());
        let want = if ty.primitive == Some(Primitive::Xhtml) {
            Ns::Xhtml
        } else {
            Ns::Fhir
        };
        if ns != want {
            let uri = if want == Ns::Xhtml { XHTML_NS } else { FHIR_NS };
            return Err(self
                .path
                .error_at(local, format!("must be in the namespace {uri}")));
        }
        if let Some(base) = def.choice_base {
            let whole = parent
                .element_at(local)
                .and_then(|(at, _)| parent.elements.get(at));
            if whole.is_some_and(|w| w.variants.iter().any(|v| *v != def.name && obj.contains_key(*v))) {
                return Err(self
                    .path
                    .error_at(def.name, format!("only one type of {base}[x] may be given")));
            }
        }
        let index = if def.max_many {
            Some(obj.get(def.name).and_then(Value::as_array).map_or(0, Vec::len))
        } else {
            None
        };
        if index.is_none() && obj.contains_key(def.name) {
            return Err(self
                .path
                .error_at(def.name, "does not repeat, but appears more than once"));
        }
        self.path.push(def.name, index);
        let (value, extra) = self.value(start, empty, ty, depth)?;
        self.path.pop();

        if ty.primitive.is_some() && def.max_many {
            let slot = match extras.iter().position(|x| x.name == def.name) {
                Some(i) => i,
                None => {
                    extras.push(Extras {
                        name: def.name,
                        items: Vec::new(),
                    });
                    extras.len() - 1
                }
            };
            extras[slot].items.push(extra.unwrap_or(Value::Null));
        } else if let Some(extra) = extra {
            obj.insert(format!("_{}", def.name), extra);
        }
        if def.max_many {
            match obj.entry(def.name).or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(items) => items.push(value.unwrap_or(Value::Null)),
                _ => return Err(self.path.error_at(def.name, "inconsistent content")),
            }
        } else if let Some(value) = value {
            obj.insert(def.name.into(), value);
        }
        Ok(())
    }

    /// The content of one element of type `ty`: its JSON value and, for a primitive, its `_`
    /// partner (id and extensions).
    fn value(
        &mut self,
        start: &BytesStart<'i>,
        empty: bool,
        ty: &'static TypeRef,
        depth: usize,
    ) -> Result<(Option<Value>, Option<Value>), XmlError> {
        if ty.primitive == Some(Primitive::Xhtml) {
            return self.div(start, empty).map(|div| (Some(Value::String(div)), None));
        }
        if let Some(p) = ty.primitive {
            let element = self.type_def("Element")?;
            let mut extra = Map::new();
            let text = self.attributes(start, element, &mut extra, true)?;
            if !empty {
                self.children(element, &mut extra, depth + 1)?;
            }
            let value = match text {
                Some(text) => Some(self.primitive_value(&text, p)?),
                None => None,
            };
            if value.is_none() && extra.is_empty() {
                return Err(self
                    .path
                    .error("a primitive element needs a value attribute or extensions"));
            }
            return Ok((value, (!extra.is_empty()).then_some(Value::Object(extra))));
        }
        if ty.is_resource() {
            if !empty {
                let mut none = Map::new();
                let resource = self.type_def("Resource")?;
                self.attributes(start, resource, &mut none, false)?;
                if !none.is_empty() {
                    return Err(self.path.error("a resource wrapper has no attributes"));
                }
                return self.wrapped_resource(depth).map(|r| (Some(r), None));
            }
            return Err(self.path.error("must contain a resource"));
        }
        let type_def = self.type_def(ty.target)?;
        let mut obj = Map::new();
        self.attributes(start, type_def, &mut obj, false)?;
        if !empty {
            self.children(type_def, &mut obj, depth + 1)?;
        }
        if obj.is_empty() {
            return Err(self.path.error("an element must have a value or children"));
        }
        Ok((Some(Value::Object(obj)), None))
    }

    /// The single resource inside a wrapper element (`<contained><Patient>...</Patient></contained>`).
    fn wrapped_resource(&mut self, depth: usize) -> Result<Value, XmlError> {
        if depth + 1 > MAX_DEPTH {
            return Err(self.path.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let mut resource = None;
        loop {
            match self.next()? {
                Event::Start(e) | Event::Empty(e) if resource.is_some() => {
                    return Err(self
                        .path
                        .error_at(e.local_name().into_inner(), "only one resource is allowed here"));
                }
                Event::Start(e) => resource = Some(self.resource_element(&e, false, depth + 1)?),
                Event::Empty(e) => resource = Some(self.resource_element(&e, true, depth + 1)?),
                Event::End(_) => return resource.ok_or_else(|| self.path.error("must contain a resource")),
                Event::Text(t) if t.trim_ascii().is_empty() => {}
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => return Err(self.path.error("the document ends inside an element")),
                _ => return Err(self.path.error("text is not allowed here")),
            }
        }
    }

    /// The raw XHTML text of the narrative `div`, its start tag just read.
    fn div(&mut self, start: &BytesStart<'i>, empty: bool) -> Result<String, XmlError> {
        let begin = self.last_pos;
        if !empty {
            self.reader
                .read_to_end(start.name())
                .map_err(|e| self.syntax(e))?;
        }
        let end = usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX);
        let raw = self
            .input
            .get(begin..end)
            .ok_or_else(|| self.path.error("cannot locate the div"))?;
        check_div(raw).map_err(|e| self.path.error(e))?;
        Ok(raw.to_owned())
    }

    fn type_def(&self, name: &str) -> Result<&'static TypeDef, XmlError> {
        self.model
            .type_def(name)
            .ok_or_else(|| self.path.error(format!("no definition of {name}")))
    }

    /// Converts a `value` attribute to the JSON value of primitive `p`.
    fn primitive_value(&self, text: &str, p: Primitive) -> Result<Value, XmlError> {
        let bad = || {
            self.path
                .error(format!("'{}' is not a valid {}", shorten(text), p.code()))
        };
        match p.json_kind() {
            JsonKind::Bool => match text {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(bad()),
            },
            JsonKind::Number if p.is_integer() => {
                let n: i64 = text.parse().map_err(|_| bad())?;
                if i32::try_from(n).is_err() {
                    return Err(bad());
                }
                Ok(Value::Number(n.into()))
            }
            JsonKind::Number => {
                // Checked against FHIR's decimal grammar, then parsed by the standard library,
                // which rounds correctly (serde_json's own parser may be off by one bit unless
                // its float_roundtrip feature is on), so a decimal written from an f64 reads
                // back as the same f64.
                if !is_decimal(text) {
                    return Err(bad());
                }
                if numbers_keep_text() {
                    return serde_json::from_str::<Number>(text)
                        .map(Value::Number)
                        .map_err(|_| bad());
                }
                // Whole numbers stay JSON integers, as serde_json reads `180` (not `180.0`).
                if !text.contains(['.', 'e', 'E']) {
                    if let Ok(i) = text.parse::<i64>() {
                        return Ok(Value::Number(i.into()));
                    }
                    if let Ok(u) = text.parse::<u64>() {
                        return Ok(Value::Number(u.into()));
                    }
                }
                let f: f64 = text.parse().map_err(|_| bad())?;
                Number::from_f64(f).map(Value::Number).ok_or_else(bad)
            }
            JsonKind::String => Ok(Value::String(text.to_owned())),
        }
    }
}

/// True when serde_json keeps a number's text (its `arbitrary_precision` feature is on somewhere
/// in the build): then decimals are read through it and keep their exact digits. Features are
/// unified across the build, so this is asked of serde_json itself, once.
fn numbers_keep_text() -> bool {
    static KEEPS: LazyLock<bool> =
        LazyLock::new(|| serde_json::from_str::<Number>("1.50").is_ok_and(|n| n.to_string() == "1.50"));
    *KEEPS
}

/// FHIR's decimal: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_decimal(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (int, fraction) = match mantissa.split_once('.') {
        Some((int, fraction)) => (int, Some(fraction)),
        None => (mantissa, None),
    };
    let int_ok = digits(int) && (int == "0" || !int.starts_with('0'));
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    int_ok && fraction.is_none_or(digits) && exponent_ok
}

fn shorten(text: &str) -> &str {
    match text.char_indices().nth(64) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// Checks a narrative `div` as FHIR carries it in JSON: one well-formed `div` element that
/// declares the XHTML namespace itself, nothing around it.
pub(crate) fn check_div(div: &str) -> Result<(), &'static str> {
    const NOT_DIV: &str = "the narrative must be one <div xmlns=\"http://www.w3.org/1999/xhtml\"> element";
    const MALFORMED: &str = "the narrative div is not well-formed XHTML";
    // The reader skips a byte order mark at the start of its input, but inside a FHIR XML
    // document it would be text before the div, which the XML reader refuses.
    if div.starts_with('\u{feff}') {
        return Err(NOT_DIV);
    }
    let mut reader = NsReader::from_str(div);
    reader.config_mut().check_end_names = true;
    let mut seen = false;
    loop {
        let event = reader.read_event().map_err(|_| MALFORMED)?;
        match event {
            Event::Start(_) | Event::Empty(_) if seen => return Err(NOT_DIV),
            Event::Start(ref e) | Event::Empty(ref e) => {
                let (ns, local) = reader.resolver().resolve_element(e.name());
                let in_xhtml = matches!(ns, ResolveResult::Bound(Namespace(ns)) if ns == XHTML_NS);
                if local.into_inner() != "div" || !in_xhtml {
                    return Err(NOT_DIV);
                }
                seen = true;
                if let Event::Start(e) = &event {
                    // Skipping to the matching end checks nesting and end names on the way.
                    reader.read_to_end(e.name()).map_err(|_| MALFORMED)?;
                }
            }
            Event::Text(t) if seen && t.trim_ascii().is_empty() => {}
            Event::Eof if seen => return Ok(()),
            _ => return Err(NOT_DIV),
        }
    }
}

#[cfg(test)]
mod tests;
