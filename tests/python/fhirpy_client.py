"""A real third-party FHIR client against the running engine (issue #13): fhirpy creates,
searches (with .count()), reads and updates a Patient, and posts a transaction Bundle to the
base, as it does (`[base]/`). Every resource the engine answers is validated with
fhir.resources (its R4B models: the R4 errata release, which the package ships; the last
release with an R4 module needs pydantic 1).

Usage: fhirpy_client.py BASE_URL API_KEY    (BASE_URL like http://127.0.0.1:8080/fhir)
Prints `ok` and exits 0 when every step held; raises (exit 1) with what failed otherwise.
"""

import sys

try:
    from fhirpy import SyncFHIRClient
    from fhir.resources.R4B import get_fhir_model_class
except ImportError as missing:  # the Rust test turns this into a message saying what to install
    print(f"missing python package: {missing}", file=sys.stderr)
    sys.exit(3)


def validated(resource):
    """The resource validated by fhir.resources as its own type; raises when it is not valid."""
    data = resource.serialize() if hasattr(resource, "serialize") else dict(resource)
    kind = data["resourceType"]
    get_fhir_model_class(kind).model_validate(data)
    return data


def main(base, key):
    client = SyncFHIRClient(base, authorization=f"Bearer {key}")

    # Create (POST [base]/Patient).
    patient = client.resource(
        "Patient",
        identifier=[{"system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": "FHIRPY-1"}],
        name=[{"family": "Fhirpy", "given": ["Ada"]}],
        gender="female",
        birthDate="1990-04-01",
        extension=[{"url": "http://example.org/fhirpy", "valueString": "kept"}],
    )
    patient.save()
    created = validated(patient)
    assert created.get("id"), created
    assert created["extension"][0]["valueString"] == "kept", created

    # Search, and count the way fhirpy does (_count=0&_totalMethod=count).
    found = client.resources("Patient").search(family="Fhirpy").fetch()
    assert [p["id"] for p in found] == [created["id"]], found
    for p in found:
        validated(p)
    assert client.resources("Patient").search(family="Fhirpy").count() == 1
    assert client.resources("Patient").search(family="Nobody").count() == 0
    bundle = client.resources("Patient").search(family="Fhirpy").fetch_raw()
    validated(bundle)

    # Read.
    read = client.reference("Patient", created["id"]).to_resource()
    read_data = validated(read)
    assert read_data["birthDate"] == "1990-04-01", read_data

    # Update (PUT [base]/Patient/id).
    read["gender"] = "other"
    read.save()
    updated = validated(client.reference("Patient", created["id"]).to_resource())
    assert updated["gender"] == "other", updated
    assert updated["meta"]["versionId"] == "2", updated
    assert updated["extension"][0]["valueString"] == "kept", updated

    # A transaction posted to the base, as fhirpy posts one: [base]/.
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:5d3f9c1e-2b7a-4c1d-9e8f-0a1b2c3d4e5f",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": "FHIRPY-2"}],
                    "name": [{"family": "Fhirpy", "given": ["Grace"]}],
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    "resourceType": "Task",
                    "status": "ready",
                    "intent": "order",
                    "for": {"reference": "urn:uuid:5d3f9c1e-2b7a-4c1d-9e8f-0a1b2c3d4e5f"},
                },
                "request": {"method": "POST", "url": "Task"},
            },
        ],
    }
    answer = client.execute("/", method="post", data=transaction)
    validated(answer)
    assert answer["type"] == "transaction-response", answer
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert all(s.startswith("201") for s in statuses), statuses
    task = answer["entry"][1]["resource"]
    assert task["for"]["reference"].startswith("Patient/"), task
    assert client.resources("Patient").search(family="Fhirpy").count() == 2

    # An unknown search parameter is ignored and said so (lenient by default).
    lenient = client.resources("Patient").search(family="Fhirpy", colour="blue").fetch_raw()
    validated(lenient)
    outcomes = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert outcomes and "colour" in outcomes[0]["resource"]["issue"][0]["diagnostics"], lenient

    # An IHE PMIR (ITI-93) patient feed message to the base: its response message validates too.
    feed = {
        "resourceType": "Bundle",
        "type": "message",
        "entry": [
            {
                "fullUrl": "urn:uuid:0c3a4d5e-6f70-4812-9a3b-4c5d6e7f8091",
                "resource": {
                    "resourceType": "MessageHeader",
                    "id": "fhirpy-feed-1",
                    "eventUri": "urn:ihe:iti:pmir:2019:patient-feed",
                    "source": {"endpoint": "http://ucr.example/fhir"},
                    "focus": [{"reference": "urn:uuid:1d4b5e6f-7081-4923-ab4c-5d6e7f809102"}],
                },
            },
            {
                "fullUrl": "urn:uuid:1d4b5e6f-7081-4923-ab4c-5d6e7f809102",
                "resource": {
                    "resourceType": "Bundle",
                    "type": "history",
                    "entry": [
                        {
                            "fullUrl": "http://ucr.example/fhir/Patient/u1",
                            "resource": {
                                "resourceType": "Patient",
                                "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": "FHIRPY-3"}],
                                "name": [{"family": "Fhirpy", "given": ["Hedy"]}],
                            },
                            "request": {"method": "PUT", "url": "Patient/u1"},
                            "response": {"status": "200"},
                        }
                    ],
                },
            },
        ],
    }
    response = client.execute("/", method="post", data=feed)
    validated(response)
    header = response["entry"][0]["resource"]
    validated(header)
    assert header["eventUri"] == "urn:ihe:iti:pmir:2019:patient-feed-response", header
    assert header["response"] == {"identifier": "fhirpy-feed-1", "code": "ok"}, header
    assert all(e["fullUrl"].startswith("urn:uuid:") for e in response["entry"]), response

    # The CapabilityStatement at [base]/metadata.
    validated(client.execute("metadata", method="get"))
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
