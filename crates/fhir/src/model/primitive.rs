//! The twenty FHIR R4 primitive types and how each is written in JSON.

/// How a primitive's value is written in FHIR JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// `true` / `false`.
    Bool,
    /// A JSON number (integer, unsignedInt, positiveInt, decimal).
    Number,
    /// A JSON string (everything else, dates and codes included).
    String,
}

/// A FHIR R4 primitive type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Primitive {
    Base64Binary,
    Boolean,
    Canonical,
    Code,
    Date,
    DateTime,
    Decimal,
    Id,
    Instant,
    Integer,
    Markdown,
    Oid,
    PositiveInt,
    String,
    Time,
    UnsignedInt,
    Uri,
    Url,
    Uuid,
    /// The narrative `div`: XHTML, a JSON string, kept verbatim.
    Xhtml,
}

impl Primitive {
    /// Every primitive, in the order of the FHIR type list.
    pub const ALL: [Primitive; 20] = [
        Primitive::Base64Binary,
        Primitive::Boolean,
        Primitive::Canonical,
        Primitive::Code,
        Primitive::Date,
        Primitive::DateTime,
        Primitive::Decimal,
        Primitive::Id,
        Primitive::Instant,
        Primitive::Integer,
        Primitive::Markdown,
        Primitive::Oid,
        Primitive::PositiveInt,
        Primitive::String,
        Primitive::Time,
        Primitive::UnsignedInt,
        Primitive::Uri,
        Primitive::Url,
        Primitive::Uuid,
        Primitive::Xhtml,
    ];

    /// The primitive named by a FHIR type code (`dateTime`, `positiveInt` ...).
    pub fn from_code(code: &str) -> Option<Primitive> {
        Some(match code {
            "base64Binary" => Primitive::Base64Binary,
            "boolean" => Primitive::Boolean,
            "canonical" => Primitive::Canonical,
            "code" => Primitive::Code,
            "date" => Primitive::Date,
            "dateTime" => Primitive::DateTime,
            "decimal" => Primitive::Decimal,
            "id" => Primitive::Id,
            "instant" => Primitive::Instant,
            "integer" => Primitive::Integer,
            "markdown" => Primitive::Markdown,
            "oid" => Primitive::Oid,
            "positiveInt" => Primitive::PositiveInt,
            "string" => Primitive::String,
            "time" => Primitive::Time,
            "unsignedInt" => Primitive::UnsignedInt,
            "uri" => Primitive::Uri,
            "url" => Primitive::Url,
            "uuid" => Primitive::Uuid,
            "xhtml" => Primitive::Xhtml,
            _ => return None,
        })
    }

    /// The FHIR type code.
    pub fn code(self) -> &'static str {
        match self {
            Primitive::Base64Binary => "base64Binary",
            Primitive::Boolean => "boolean",
            Primitive::Canonical => "canonical",
            Primitive::Code => "code",
            Primitive::Date => "date",
            Primitive::DateTime => "dateTime",
            Primitive::Decimal => "decimal",
            Primitive::Id => "id",
            Primitive::Instant => "instant",
            Primitive::Integer => "integer",
            Primitive::Markdown => "markdown",
            Primitive::Oid => "oid",
            Primitive::PositiveInt => "positiveInt",
            Primitive::String => "string",
            Primitive::Time => "time",
            Primitive::UnsignedInt => "unsignedInt",
            Primitive::Uri => "uri",
            Primitive::Url => "url",
            Primitive::Uuid => "uuid",
            Primitive::Xhtml => "xhtml",
        }
    }

    /// How the value is written in JSON.
    pub fn json_kind(self) -> JsonKind {
        match self {
            Primitive::Boolean => JsonKind::Bool,
            Primitive::Integer | Primitive::UnsignedInt | Primitive::PositiveInt | Primitive::Decimal => {
                JsonKind::Number
            }
            _ => JsonKind::String,
        }
    }

    /// True for the whole-number types (integer, unsignedInt, positiveInt).
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            Primitive::Integer | Primitive::UnsignedInt | Primitive::PositiveInt
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for p in Primitive::ALL {
            assert_eq!(Primitive::from_code(p.code()), Some(p));
        }
        assert_eq!(Primitive::from_code("HumanName"), None);
    }

    #[test]
    fn json_kinds() {
        assert_eq!(Primitive::Boolean.json_kind(), JsonKind::Bool);
        assert_eq!(Primitive::Decimal.json_kind(), JsonKind::Number);
        assert_eq!(Primitive::PositiveInt.json_kind(), JsonKind::Number);
        assert_eq!(Primitive::DateTime.json_kind(), JsonKind::String);
        assert_eq!(Primitive::Xhtml.json_kind(), JsonKind::String);
    }
}
