//! Unit tests of the structure model against facts from the FHIR R4 specification.

use super::*;

fn model() -> &'static Model {
    Model::r4()
}

#[test]
fn loads_every_resource_and_type() {
    let m = model();
    assert_eq!(
        m.resource_types().len(),
        146,
        "FHIR R4 has 146 concrete resource types"
    );
    for name in [
        "Patient",
        "Bundle",
        "Parameters",
        "Observation",
        "QuestionnaireResponse",
        "Binary",
    ] {
        assert!(m.is_resource(name), "{name}");
    }
    for name in [
        "DomainResource",
        "Resource",
        "HumanName",
        "string",
        "Patient.contact",
        "Nope",
    ] {
        assert!(!m.is_resource(name), "{name}");
    }
    for p in Primitive::ALL {
        assert_eq!(m.type_def(p.code()).map(|t| t.kind), Some(TypeKind::Primitive(p)));
    }
}

#[test]
fn patient_elements() {
    let m = model();
    let birth = m.element("Patient", "birthDate").unwrap();
    assert_eq!(birth.path, "Patient.birthDate");
    assert_eq!((birth.min, birth.max_many), (0, false));
    assert_eq!(birth.primitive(), Some(Primitive::Date));

    let name = m.element("Patient", "name").unwrap();
    assert!(name.max_many);
    assert_eq!(name.single_type().unwrap().target, "HumanName");

    // Inherited from Resource and DomainResource, in that order, before Patient's own.
    let patient = m.type_def("Patient").unwrap();
    let first: Vec<&str> = patient.elements.iter().take(9).map(|e| e.name).collect();
    assert_eq!(
        first,
        [
            "id",
            "meta",
            "implicitRules",
            "language",
            "text",
            "contained",
            "extension",
            "modifierExtension",
            "identifier"
        ]
    );
    assert_eq!(
        m.element("Patient", "id").unwrap().primitive(),
        Some(Primitive::Id)
    );
    assert!(
        !m.element("Patient", "id").unwrap().xml_attr,
        "a resource id is an element"
    );
    assert!(
        m.element("Patient", "contained")
            .unwrap()
            .single_type()
            .unwrap()
            .is_resource()
    );
    assert!(m.element("Patient", "unknownThing").is_none());
}

#[test]
fn datatype_elements() {
    let m = model();
    let given = m.element("HumanName", "given").unwrap();
    assert_eq!(given.path, "HumanName.given");
    assert!(given.max_many);
    assert_eq!(given.primitive(), Some(Primitive::String));
    let id = m.element("HumanName", "id").unwrap();
    assert!(id.xml_attr, "an element id is an XML attribute");
    let url = m.element("Extension", "url").unwrap();
    assert!(url.xml_attr);
    assert_eq!((url.min, url.primitive()), (1, Some(Primitive::Uri)));
    assert_eq!(
        m.element("Narrative", "div").unwrap().primitive(),
        Some(Primitive::Xhtml)
    );
    // Age specializes Quantity and inherits its elements.
    assert_eq!(
        m.element("Age", "value").unwrap().primitive(),
        Some(Primitive::Decimal)
    );
}

#[test]
fn backbone_elements_by_full_path() {
    let m = model();
    let contact = m.element("Patient", "contact").unwrap();
    assert_eq!(contact.single_type().unwrap().code, "BackboneElement");
    assert_eq!(contact.single_type().unwrap().target, "Patient.contact");
    let name = m.element("Patient.contact", "name").unwrap();
    assert_eq!(name.path, "Patient.contact.name");
    assert!(!name.max_many);
    assert!(m.element("Patient.contact", "modifierExtension").is_some());
    assert!(m.element("Patient.contact", "id").unwrap().xml_attr);
    // An Element-typed child of a data type.
    assert!(m.element("Timing.repeat", "bounds[x]").is_some());
    assert!(m.element("Timing.repeat", "modifierExtension").is_none());
    // A contentReference reuses the referenced element's type.
    let item = m.element("Questionnaire.item", "item").unwrap();
    assert_eq!(item.single_type().unwrap().target, "Questionnaire.item");
    assert!(item.max_many);
    let link = m.element("Bundle.entry", "link").unwrap();
    assert_eq!(link.single_type().unwrap().target, "Bundle.link");
    let resource = m.element("Bundle.entry", "resource").unwrap();
    assert!(resource.single_type().unwrap().is_resource());
}

#[test]
fn choice_elements() {
    let m = model();
    let whole = m.element("Observation", "value[x]").unwrap();
    assert!(whole.is_choice());
    assert_eq!(whole.choice_base, Some("value"));
    assert_eq!(whole.types.len(), 11);
    assert!(whole.variants.contains(&"valueQuantity"));
    assert!(whole.variants.contains(&"valueDateTime"));

    let quantity = m.element("Observation", "valueQuantity").unwrap();
    assert_eq!(quantity.path, "Observation.valueQuantity");
    assert_eq!(quantity.choice_base, Some("value"));
    assert!(!quantity.is_choice());
    assert_eq!(quantity.single_type().unwrap().code, "Quantity");
    assert_eq!(
        m.element("Observation", "valueBoolean").unwrap().primitive(),
        Some(Primitive::Boolean)
    );
    assert!(m.element("Observation", "valueHumanName").is_none());
    assert!(m.element("Observation", "value").is_none());
    // Choices inside backbones and data types.
    assert!(
        m.element("Observation.component", "valueCodeableConcept")
            .is_some()
    );
    assert_eq!(
        m.element("Extension", "valueMeta")
            .unwrap()
            .single_type()
            .unwrap()
            .code,
        "Meta"
    );
    assert_eq!(
        m.element("Patient", "deceasedBoolean").unwrap().path,
        "Patient.deceasedBoolean"
    );
}

#[test]
fn required_elements() {
    let m = model();
    assert_eq!(m.element("Observation", "status").unwrap().min, 1);
    assert_eq!(m.element("Observation", "code").unwrap().min, 1);
    assert_eq!(m.element("Bundle", "type").unwrap().min, 1);
    assert_eq!(m.element("Bundle.entry.request", "method").unwrap().min, 1);
    assert_eq!(m.element("Patient", "gender").unwrap().min, 0);
}

#[test]
fn bad_model_files_are_reported() {
    assert!(load::parse("id\t?\tstring\n").is_err(), "element before any type");
    assert!(load::parse("@X\tc\tNoSuchBase\n").is_err());
    assert!(load::parse("@Element\tC\t\nid\t??\tstring\n").is_err());
    assert!(load::parse("@Element\tC\t\nx\t?\tNoSuchType\n").is_err());
    assert!(load::parse("@notAPrimitive\tp\t\n").is_err());
}
