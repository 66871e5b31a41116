"""Sends HL7 v2 messages to the engine with python-hl7's MLLP client and validates every reply
with hl7apy in strict mode (parsed in the version the reply declares) and with hl7.parse.

Usage: validate_acks.py HOST PORT MANIFEST
MANIFEST is a JSON list of {"name", "file", "expect_reply"}: each file holds one frame's bytes.
Prints one JSON object per line: {"name", "reply" (text or null), "errors": [...]}.
Exit status 3 when hl7 or hl7apy is missing (pip install hl7 hl7apy).
"""

import json
import socket
import sys

try:
    import hl7
    from hl7.client import MLLPClient
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.core import Message
    from hl7apy.parser import get_message_info, parse_segments
    from hl7apy.validation import Validator
    from hl7apy import SUPPORTED_LIBRARIES
except ImportError as missing:
    print("python packages hl7 and hl7apy are needed: pip install hl7 hl7apy (%s)" % missing, file=sys.stderr)
    sys.exit(3)

# hl7apy has no 2.7.1 library; 2.7's ACK is the same.
NEAREST = {"2.7.1": "2.7"}


def validate(text):
    """The problems a strict reader finds in one ACK (or RSP) text; empty when none."""
    errors = []
    try:
        hl7.parse(text)
    except Exception as e:  # noqa: BLE001 - any failure is a finding
        errors.append("hl7.parse: %r" % e)
    try:
        encoding, structure, version = get_message_info(text)
        version = NEAREST.get(version, version)
        if version not in SUPPORTED_LIBRARIES:
            return errors + ["hl7apy: version %r is not one hl7apy knows" % version]
        # The structure is named: hl7apy reads it from MSH-9.3, which versions before 2.3.1 lack.
        kind = text.split("\r", 1)[0].split(encoding["FIELD"])[8].split(encoding["COMPONENT"])[0]
        if kind != "ACK":
            # A query response (RSP^K23) echoes the IHE QPD, whose QPD-4 the base standard (and
            # so hl7apy) does not define: it is read by hl7.parse only.
            return errors
        message = Message("ACK", version=version, validation_level=VALIDATION_LEVEL.STRICT,
                          encoding_chars=encoding)
        message.children = parse_segments(text, message.version, encoding, VALIDATION_LEVEL.STRICT,
                                          message.reference)
        Validator.validate(message)
    except Exception as e:  # noqa: BLE001
        errors.append("hl7apy strict: %s: %s" % (type(e).__name__, e))
    return errors


def receive(client, first):
    """The rest of one MLLP frame after `first` (the client reads a single recv)."""
    data = first
    while b"\x1c" not in data:
        more = client.socket.recv(65536)
        if not more:
            break
        data += more
    return data


def main():
    host, port, manifest = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(manifest) as f:
        cases = json.load(f)
    for case in cases:
        with open(case["file"], "rb") as f:
            payload = f.read()
        client = MLLPClient(host, port)
        client.socket.settimeout(5 if case["expect_reply"] else 1)
        result = {"name": case["name"], "reply": None, "errors": []}
        try:
            raw = receive(client, client.send_message(payload))
            text = raw.strip(b"\x0b\x1c\r").decode("utf-8", "replace")
            result["reply"] = text
            result["errors"] = validate(text)
        except socket.timeout:
            pass
        finally:
            client.close()
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
