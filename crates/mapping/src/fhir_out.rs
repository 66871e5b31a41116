//! Writing into the FHIR resource being built: follow a target path (`name[0].given[]`),
//! making the objects and arrays on the way, and put the value at its end.
//!
//! JSON null is a value like any other here (HL7's `""`: "remove this"), but a null met on the
//! way is replaced by the container the path needs: a later rule may fill what an earlier one
//! cleared.

use serde_json::{Map, Value};

use crate::path::{Index, Step};

/// Member `step.key` of `map`, made null if missing, and the rest of the path below it. Found
/// with one search when it is there (it usually is, after the first write), then the path goes
/// on from it: the search's borrow ends in the call, so no second search is needed to satisfy
/// the borrow checker.
fn write_below(
    map: &mut Map<String, Value>,
    steps: &[Step],
    value: Value,
    padded: &mut bool,
) -> Result<(), String> {
    let Some((step, rest)) = steps.split_first() else {
        return Ok(());
    };
    if rest.is_empty() && step.index == Index::None {
        // A plain member: one insert (it replaces whatever was there).
        map.insert(step.key.clone(), value);
        return Ok(());
    }
    if let Some(slot) = map.get_mut(&step.key) {
        return write_in(slot, step, rest, value, padded);
    }
    // The key is only copied the first time.
    let slot = map.entry(step.key.clone()).or_insert(Value::Null);
    write_in(slot, step, rest, value, padded)
}

/// `slot` is member `step.key`: its element when the step has an index, then `value` there (the
/// last step) or the rest of the path below it.
fn write_in(
    slot: &mut Value,
    step: &Step,
    rest: &[Step],
    value: Value,
    padded: &mut bool,
) -> Result<(), String> {
    let target = element(slot, step, padded)?;
    if rest.is_empty() {
        *target = value;
        return Ok(());
    }
    if target.is_null() {
        *target = Value::Object(Map::new());
    }
    match target {
        Value::Object(map) => write_below(map, rest, value, padded),
        other => Err(format!(
            "`{}` holds {}, so nothing can be written below it",
            step.key,
            kind(other)
        )),
    }
}

/// The element of `slot` (member `step.key`) that `step`'s index names, made if missing; `slot`
/// itself without an index. `padded` is set when array elements had to be made to reach an
/// index.
fn element<'v>(slot: &'v mut Value, step: &Step, padded: &mut bool) -> Result<&'v mut Value, String> {
    if step.index == Index::None {
        return Ok(slot);
    }
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    let Value::Array(items) = slot else {
        return Err(format!("`{}` holds {}, not a list", step.key, kind(slot)));
    };
    let at = match step.index {
        Index::At(n) => {
            if items.len() <= n {
                // Elements before n are made empty and removed again by `prune` if still so.
                *padded |= items.len() < n;
                items.resize(n + 1, Value::Object(Map::new()));
            }
            n
        }
        _ => {
            items.push(Value::Null);
            items.len() - 1
        }
    };
    Ok(&mut items[at])
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a text value",
        Value::Array(_) => "a list",
        Value::Object(_) => "an element",
    }
}

/// Writes `value` at `steps` below `base`. A null appended to a list (`given[] = ""`) is left
/// out: a list holds values, and a null in it would mean nothing.
pub fn write(
    base: &mut Map<String, Value>,
    steps: &[Step],
    value: Value,
    padded: &mut bool,
) -> Result<bool, String> {
    let Some(last) = steps.last() else {
        return Err("empty target".into());
    };
    if value.is_null() && last.index == Index::Append {
        return Ok(false);
    }
    write_below(base, steps, value, padded)?;
    Ok(true)
}

/// Removes empty objects and empty lists (left by padding) everywhere below `value`; nulls stay.
pub fn prune(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                prune(child);
            }
            map.retain(|_, child| !is_empty_container(child));
        }
        Value::Array(items) => {
            for child in items.iter_mut() {
                prune(child);
            }
            items.retain(|child| !is_empty_container(child));
        }
        _ => {}
    }
}

fn is_empty_container(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::path::parse_fhir_target;

    fn apply(writes: &[(&str, Value)]) -> Result<Value, String> {
        let mut map = Map::new();
        let mut padded = false;
        for (target, value) in writes {
            write(
                &mut map,
                &parse_fhir_target(target).unwrap(),
                value.clone(),
                &mut padded,
            )?;
        }
        let mut value = Value::Object(map);
        if padded {
            prune(&mut value);
        }
        Ok(value)
    }

    #[test]
    fn builds_objects_and_lists() {
        let got = apply(&[
            ("name[0].family", json!("Doe")),
            ("name[0].given[]", json!("Jane")),
            ("name[0].given[]", json!("Q")),
            ("communication[0].language.coding[0].code", json!("en")),
            ("active", json!(true)),
        ])
        .unwrap();
        assert_eq!(
            got,
            json!({
                "name": [{"family": "Doe", "given": ["Jane", "Q"]}],
                "communication": [{"language": {"coding": [{"code": "en"}]}}],
                "active": true
            })
        );
    }

    #[test]
    fn later_writes_win_and_null_clears() {
        let got = apply(&[("name[0].family", json!("Doe")), ("name", Value::Null)]).unwrap();
        assert_eq!(got, json!({"name": null}));
        let got = apply(&[("telecom", Value::Null), ("telecom[]", json!({"value": "1"}))]).unwrap();
        assert_eq!(got, json!({"telecom": [{"value": "1"}]}));
        let got = apply(&[("given[]", Value::Null)]).unwrap();
        assert_eq!(got, json!({}));
    }

    #[test]
    fn padding_is_pruned() {
        let got = apply(&[("name[2].family", json!("Doe"))]).unwrap();
        assert_eq!(got, json!({"name": [{"family": "Doe"}]}));
    }

    #[test]
    fn writing_below_a_value_is_an_error() {
        let e = apply(&[("gender", json!("male")), ("gender.text", json!("x"))]).unwrap_err();
        assert!(e.contains("`gender` holds a text value"), "{e}");
        let e = apply(&[("name", json!("x")), ("name[]", json!("y"))]).unwrap_err();
        assert!(e.contains("not a list"), "{e}");
    }

    /// The writer as it was first written: each step found (or made) by `place`, a member looked
    /// up twice. The writer must build exactly what it builds and fail where it fails.
    mod reference {
        use serde_json::{Map, Value};

        use super::super::kind;
        use crate::path::{Index, Step};

        fn place<'m>(
            map: &'m mut Map<String, Value>,
            step: &Step,
            padded: &mut bool,
        ) -> Result<&'m mut Value, String> {
            let slot = map.entry(step.key.clone()).or_insert(Value::Null);
            if step.index == Index::None {
                return Ok(slot);
            }
            if slot.is_null() {
                *slot = Value::Array(Vec::new());
            }
            let Value::Array(items) = slot else {
                return Err(format!("`{}` holds {}, not a list", step.key, kind(slot)));
            };
            match step.index {
                Index::Append => items.push(Value::Null),
                Index::At(n) => {
                    if items.len() <= n {
                        *padded |= items.len() < n;
                        items.resize(n + 1, Value::Object(Map::new()));
                    }
                }
                Index::None => {}
            }
            let at = match step.index {
                Index::At(n) => n,
                _ => items.len() - 1,
            };
            Ok(&mut items[at])
        }

        pub fn write(
            base: &mut Map<String, Value>,
            steps: &[Step],
            value: Value,
            padded: &mut bool,
        ) -> Result<bool, String> {
            let (last, path) = steps.split_last().ok_or("empty target")?;
            if value.is_null() && last.index == Index::Append {
                return Ok(false);
            }
            let mut map = base;
            for step in path {
                let slot = place(map, step, padded)?;
                if slot.is_null() {
                    *slot = Value::Object(Map::new());
                }
                map = match slot {
                    Value::Object(m) => m,
                    other => {
                        return Err(format!(
                            "`{}` holds {}, so nothing can be written below it",
                            step.key,
                            kind(other)
                        ));
                    }
                };
            }
            if last.index == Index::None {
                map.insert(last.key.clone(), value);
            } else {
                *place(map, last, padded)? = value;
            }
            Ok(true)
        }
    }

    fn target() -> impl Strategy<Value = String> {
        let step = (
            prop::sample::select(vec!["a", "b", "given", "x_y"]),
            prop::sample::select(vec!["", "[]", "[0]", "[1]", "[2]"]),
        )
            .prop_map(|(key, index)| format!("{key}{index}"));
        prop::collection::vec(step, 1..4).prop_map(|steps| steps.join("."))
    }

    fn json_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            Just(json!("text")),
            Just(json!(12)),
            Just(json!(true)),
            Just(json!({})),
            Just(json!([])),
            Just(json!({"a": "x", "b": [1, {"given": null}], "x_y": null})),
            Just(json!([{"a": 1}, null, "y", []])),
        ]
    }

    proptest! {
        #[test]
        fn writes_as_the_first_writer_did(
            writes in prop::collection::vec((target(), json_value()), 1..10),
        ) {
            let (mut got, mut want) = (Map::new(), Map::new());
            let (mut padded, mut reference_padded) = (false, false);
            for (target, value) in &writes {
                let steps = parse_fhir_target(target).unwrap();
                let result = write(&mut got, &steps, value.clone(), &mut padded);
                let expected = reference::write(&mut want, &steps, value.clone(), &mut reference_padded);
                prop_assert_eq!(&result, &expected);
                if expected.is_err() {
                    // A failed write ends the run: what is left half-built is never used.
                    return Ok(());
                }
                prop_assert_eq!(&got, &want);
            }
            prop_assert_eq!(padded, reference_padded);
        }
    }
}
