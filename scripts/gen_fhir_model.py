#!/usr/bin/env python3
"""Generate crates/fhir/src/model/r4.tsv, the FHIR R4 structure model Tributary loads at run time.

How to run (from the repository root):

    scripts/fetch-fhir-packages                  # once: the npm package into target/fhir-packages
    python3 scripts/gen_fhir_model.py target/fhir-packages/hl7.fhir.r4.examples/package \
        > crates/fhir/src/model/r4.tsv

Where the definitions come from: the StructureDefinitions (with snapshots) of FHIR R4 4.0.1, as
HL7 publishes them in its npm packages. `hl7.fhir.r4.core` would be the natural source, but the
npm registry holds no published version of it; `hl7.fhir.r4.examples@4.0.1` ships the very same
base StructureDefinition-*.json files (every resource, data type and primitive, snapshots
included), so that is the package read here. Pointing the script at an unpacked
`hl7.fhir.r4.core` package works the same way.

What is emitted (one line per element, tab separated; see crates/fhir/src/model/mod.rs for the
reader):

    @Name<TAB>kind<TAB>base          a type: kind r resource, c complex type, p primitive;
                                     upper case (R, C) when abstract; base is the type it
                                     specializes (empty for Element and Resource)
    path<TAB>card<TAB>types[<TAB>flags]
                                     an element of the last type, path relative to the type
                                     (`contact.name` is Patient.contact.name); card is `?` 0..1,
                                     `!` 1..1, `*` 0..*, `+` 1..*, else `min,max`; types are
                                     `|`-separated type codes, `#path` for a contentReference
                                     (relative to the same type); flags: `a` an XML attribute,
                                     `x` XHTML.

To keep the file small, an element is written only where it differs from what the type inherits:
a type starts with its base type's elements, a BackboneElement (or Element) child starts with
BackboneElement's (or Element's) id/extension/modifierExtension. The script rebuilds every type
that way and checks it against the snapshot, so the file is exact. Primitive types are written
as a header only: their value rules are code (crates/fhir/src/validate.rs), not data.
"""

import glob
import json
import os
import sys

FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
SD_PREFIX = "http://hl7.org/fhir/StructureDefinition/"


def load(package_dir):
    sds = {}
    for path in sorted(glob.glob(os.path.join(package_dir, "StructureDefinition-*.json"))):
        with open(path, encoding="utf-8") as f:
            sd = json.load(f)
        if sd.get("resourceType") != "StructureDefinition":
            continue
        if sd.get("kind") not in ("resource", "complex-type", "primitive-type"):
            continue
        # Profiles (vital signs, SimpleQuantity, extensions...) constrain a base type; the
        # structure model is about the base types only.
        if sd.get("derivation") == "constraint":
            continue
        if not sd.get("url", "").startswith(SD_PREFIX) or "snapshot" not in sd:
            continue
        sds[sd["id"]] = sd
    if "Patient" not in sds or "Element" not in sds:
        sys.exit(f"gen_fhir_model: no base StructureDefinitions under {package_dir}")
    return sds


def type_code(element, t):
    code = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        # id, extension url and primitive values are typed as FHIRPath system types; the FHIR
        # type is in an extension.
        for ext in t.get("extension", []):
            if ext.get("url") == FHIR_TYPE_EXT:
                code = ext["valueUrl"]
                break
        else:
            sys.exit(f"gen_fhir_model: no FHIR type for {element['path']}")
        # R4 types Resource.id as a plain string in the snapshot, but the specification defines
        # a resource's logical id as `id` (its length and character rules apply).
        if element["path"].endswith(".id") and element["path"].count(".") == 1 and code == "string":
            base = element.get("base", {}).get("path", "")
            if base == "Resource.id":
                code = "id"
    return code


def card(element):
    lo, hi = str(element["min"]), element["max"]
    return {("0", "1"): "?", ("1", "1"): "!", ("0", "*"): "*", ("1", "*"): "+"}.get(
        (lo, hi), f"{lo},{hi}"
    )


def describe(element, type_name):
    """(card, types, flags) of one snapshot element, in the file's notation."""
    if "contentReference" in element:
        ref = element["contentReference"]
        prefix = "#" + type_name + "."
        if not ref.startswith(prefix):
            sys.exit(f"gen_fhir_model: {element['path']} refers outside its type: {ref}")
        types = "#" + ref[len(prefix):]
    else:
        types = "|".join(type_code(element, t) for t in element.get("type", []))
    flags = ""
    reps = element.get("representation", [])
    if "xmlAttr" in reps:
        flags += "a"
    if "xhtml" in reps:
        flags += "x"
    return (card(element), types, flags)


def snapshot_elements(sd):
    """The snapshot as an ordered list of (relative path, description), root left out."""
    name = sd["type"] if sd["kind"] != "primitive-type" else sd["id"]
    out = []
    for element in sd["snapshot"]["element"][1:]:
        path = element["path"]
        if not path.startswith(name + "."):
            sys.exit(f"gen_fhir_model: {path} is not under {name}")
        out.append((path[len(name) + 1:], describe(element, name)))
    return out


def base_name(sd):
    base = sd.get("baseDefinition", "")
    return base[len(SD_PREFIX):] if base.startswith(SD_PREFIX) else ""


class Builder:
    """Rebuilds full element lists from the compact form, exactly as the Rust loader does."""

    def __init__(self):
        self.full = {}  # type name -> ordered list of (relative path, description)

    def expand(self, name, base, own):
        """Base elements first (own overrides replace them in place), then own new elements;
        each BackboneElement/Element child gets that type's elements before its own."""
        result = list(self.full.get(base, [])) if base else []
        index = {path: i for i, (path, _) in enumerate(result)}
        for path, desc in own:
            if path in index:
                result[index[path]] = (path, desc)
            else:
                index[path] = len(result)
                result.append((path, desc))
            if desc[1] in ("BackboneElement", "Element") and name not in (
                "BackboneElement",
                "Element",
            ):
                for child, child_desc in self.full[desc[1]]:
                    child_path = path + "." + child
                    if child_path not in index:
                        index[child_path] = len(result)
                        result.append((child_path, child_desc))
        return result


def compact(sd, builder, sds):
    """The elements of `sd` that the loader cannot infer, in snapshot order."""
    name = sd["id"]
    base = base_name(sd)
    snapshot = snapshot_elements(sd)
    inherited = dict(builder.full.get(base, [])) if base else {}
    backbone_children = {}
    for path, desc in snapshot:
        if desc[1] in ("BackboneElement", "Element") and name not in ("BackboneElement", "Element"):
            for child, child_desc in builder.full[desc[1]]:
                backbone_children[path + "." + child] = child_desc
    own = []
    for path, desc in snapshot:
        implied = inherited.get(path) or backbone_children.get(path)
        if implied != desc:
            own.append((path, desc))
    rebuilt = builder.expand(name, base, own)
    # Children implied for a backbone are appended right after it by the loader; the snapshot
    # lists them right after it too. Order of everything else follows the snapshot.
    if rebuilt != snapshot:
        # The loader puts implied backbone children right behind their parent; the snapshot does
        # the same, so any difference is a real one.
        for a, b in zip(rebuilt, snapshot):
            if a != b:
                sys.exit(f"gen_fhir_model: {name} rebuilds as {a}, snapshot has {b}")
        sys.exit(f"gen_fhir_model: {name} rebuilds to {len(rebuilt)} elements, not {len(snapshot)}")
    builder.full[name] = snapshot
    return own


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    package_dir = sys.argv[1]
    sds = load(package_dir)
    with open(os.path.join(package_dir, "package.json"), encoding="utf-8") as f:
        package = json.load(f)

    # Bases before the types that specialize them.
    ordered, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        base = base_name(sds[name])
        if base:
            visit(base)
        ordered.append(name)

    for name in ("Element", "BackboneElement", "Resource"):
        visit(name)
    for name in sorted(sds):
        visit(name)

    builder = Builder()
    lines = [
        f"# FHIR R4 structure model, generated by scripts/gen_fhir_model.py from "
        f"{package['name']}@{package['version']}. Do not edit; regenerate.",
    ]
    known = set(sds)
    for name in ordered:
        sd = sds[name]
        kind = {"resource": "r", "complex-type": "c", "primitive-type": "p"}[sd["kind"]]
        if sd.get("abstract"):
            kind = kind.upper()
        lines.append(f"@{name}\t{kind}\t{base_name(sd)}")
        if sd["kind"] == "primitive-type":
            builder.full[name] = []
            continue
        for path, (c, types, flags) in compact(sd, builder, sds):
            for t in types.split("|"):
                if t and not t.startswith("#") and t not in known:
                    sys.exit(f"gen_fhir_model: {name}.{path} has unknown type {t}")
            line = f"{path}\t{c}\t{types}"
            if flags:
                line += "\t" + flags
            lines.append(line)
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
