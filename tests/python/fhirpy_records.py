"""A member's records fed as FHIR R4 by a real third-party client (issue 16): fhirpy posts the
Summary types (AllergyIntolerance, Condition, Procedure, Immunization, MedicationRequest,
MedicationStatement, CareTeam, Encounter) and a lab Observation for a patient named by
identifier, as an upstream feed names it; searches them by patient, category, code, status and
date, with `_include` of the Patient; and meets the refusal of a record for a patient the store
does not know. Every resource the engine answers is validated with fhir.resources (R4B models).

Usage: fhirpy_records.py BASE_URL API_KEY    (BASE_URL like http://127.0.0.1:8080/fhir)
Prints `ok` and exits 0 when every step held; raises (exit 1) with what failed otherwise.
"""

import sys

try:
    from fhirpy import SyncFHIRClient
    from fhirpy.base.exceptions import OperationOutcome
    from fhir.resources.R4B import get_fhir_model_class
except ImportError as missing:  # the Rust test turns this into a message saying what to install
    print(f"missing python package: {missing}", file=sys.stderr)
    sys.exit(3)

MPI = "urn:oid:2.16.840.1.113883.3.9999.1"


def validated(resource):
    """The resource validated by fhir.resources as its own type; raises when it is not valid."""
    data = resource.serialize() if hasattr(resource, "serialize") else dict(resource)
    get_fhir_model_class(data["resourceType"]).model_validate(data)
    return data


def coded(system, code, display=None):
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding], "text": display or code}


def main(base, key):
    client = SyncFHIRClient(base, authorization=f"Bearer {key}")
    patient = client.resource(
        "Patient",
        identifier=[{"system": MPI, "value": "REC-1"}],
        name=[{"family": "Records", "given": ["Rana"]}],
    )
    patient.save()
    patient_id = validated(patient)["id"]
    # As a feed names the patient: by identifier; the engine resolves it to the stored Patient.
    by_identifier = {"type": "Patient", "identifier": {"system": MPI, "value": "REC-1"}}
    sct = "http://snomed.info/sct"
    records = [
        ("AllergyIntolerance", {
            "clinicalStatus": coded("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active"),
            "category": ["medication"],
            "criticality": "high",
            "code": coded(sct, "91936005", "Allergy to penicillin"),
            "patient": by_identifier,
            "recordedDate": "2024-02-10",
            "reaction": [{"manifestation": [coded(sct, "271807003", "Rash")]}],
        }),
        ("Condition", {
            "clinicalStatus": coded("http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
            "category": [coded("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item")],
            "code": coded(sct, "44054006", "Type 2 diabetes mellitus"),
            "subject": by_identifier,
            "onsetDateTime": "2019-06-01",
        }),
        ("Procedure", {
            "status": "completed",
            "code": coded(sct, "80146002", "Appendectomy"),
            "subject": by_identifier,
            "performedDateTime": "2015-03-20",
        }),
        ("Immunization", {
            "status": "completed",
            "vaccineCode": coded("http://hl7.org/fhir/sid/cvx", "140", "Influenza, seasonal"),
            "patient": by_identifier,
            "occurrenceDateTime": "2025-10-01",
        }),
        ("MedicationRequest", {
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": coded("http://www.nlm.nih.gov/research/umls/rxnorm", "860975", "Metformin 500 MG"),
            "subject": by_identifier,
            "authoredOn": "2025-01-15",
            "dosageInstruction": [{"text": "One tablet twice a day"}],
        }),
        ("MedicationStatement", {
            "status": "active",
            "medicationCodeableConcept": coded("http://www.nlm.nih.gov/research/umls/rxnorm", "197361", "Amlodipine 5 MG"),
            "subject": by_identifier,
            "effectiveDateTime": "2024-11-02",
        }),
        ("CareTeam", {
            "status": "active",
            "name": "Diabetes care team",
            "subject": by_identifier,
            "period": {"start": "2019-06-01"},
        }),
        ("Encounter", {
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": by_identifier,
            "period": {"start": "2025-10-01T09:00:00-04:00", "end": "2025-10-01T09:30:00-04:00"},
        }),
        ("Observation", {
            "status": "final",
            "category": [coded("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory")],
            "code": coded("http://loinc.org", "4548-4", "Hemoglobin A1c"),
            "subject": by_identifier,
            "effectiveDateTime": "2025-10-01",
            "valueQuantity": {"value": 7.1, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
        }),
    ]
    for kind, fields in records:
        record = client.resource(kind, **fields)
        record.save()
        stored = validated(record)
        subject = stored.get("patient") or stored.get("subject")
        assert subject["reference"] == f"Patient/{patient_id}", (kind, stored)

    def search(kind, **params):
        found = client.resources(kind).search(**params).fetch_all()
        return [validated(r) for r in found]

    patient_ref = f"Patient/{patient_id}"
    for kind, _ in records:
        assert len(search(kind, patient=patient_ref)) == 1, kind
    assert len(search("AllergyIntolerance", patient=patient_ref, category="medication", criticality="high")) == 1
    assert len(search("AllergyIntolerance", patient=patient_ref, **{"clinical-status": "active"})) == 1
    assert len(search("AllergyIntolerance", patient=patient_ref, category="food")) == 0
    assert len(search("Condition", code=f"{sct}|44054006")) == 1
    assert len(search("Condition", patient=patient_ref, **{"onset-date": "ge2019-01-01"})) == 1
    assert len(search("Procedure", patient=patient_ref, date="lt2016")) == 1
    assert len(search("Procedure", patient=patient_ref, date="ge2016")) == 0
    assert len(search("Immunization", patient=patient_ref, status="completed", date="2025-10")) == 1
    assert len(search("MedicationRequest", patient=patient_ref, status="active", intent="order")) == 1
    assert len(search("MedicationStatement", patient=patient_ref, code="197361")) == 1
    assert len(search("Encounter", patient=patient_ref, date="ge2025-10-01", **{"class": "AMB"})) == 1
    assert len(search("Observation", patient=patient_ref, category="laboratory", code="4548-4")) == 1

    # _include of the Patient: the patient once, marked as included.
    bundle = client.resources("Condition").search(patient=patient_ref).include("Condition", "patient").fetch_raw()
    validated(bundle)
    included = [e for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert [e["resource"]["id"] for e in included] == [patient_id], bundle

    # A record for a patient the store does not know is refused with an OperationOutcome.
    stranger = client.resource(
        "AllergyIntolerance",
        patient={"type": "Patient", "identifier": {"system": MPI, "value": "NOBODY"}},
        code=coded(sct, "91936005"),
    )
    try:
        stranger.save()
    except OperationOutcome as refused:
        assert "NOBODY" in str(refused), refused
    else:
        raise AssertionError("a record for an unknown patient was accepted")
    assert len(search("AllergyIntolerance", code="91936005")) == 1
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
