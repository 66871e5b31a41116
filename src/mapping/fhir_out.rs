//! Writing into the FHIR resource being built: follow a target path (`name[0].given[]`),
//! making the objects and arrays on the way, and put the value at its end.
//!
//! JSON null is a value like any other here (HL7's `""`: "remove this"), but a null met on the
//! way is replaced by the container the path needs: a later rule may fill what an earlier one
//! cleared.

use serde_json::{Map, Value};

use crate::mapping::path::{Index, Step};

/// The value at one step below `map`, made if missing. `padded` is set when array elements had
/// to be made to reach an index.
fn place<'m>(
    map: &'m mut Map<String, Value>,
    step: &Step,
    padded: &mut bool,
) -> Result<&'m mut Value, String> {
    // Look up before inserting: the key is only copied the first time.
    let slot = if map.contains_key(&step.key) {
        map.get_mut(&step.key)
            .ok_or_else(|| format!("`{}` vanished", step.key))?
    } else {
        map.entry(step.key.clone()).or_insert(Value::Null)
    };
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
        Index::Append => {
            items.push(Value::Null);
        }
        Index::At(n) => {
            if items.len() <= n {
                // Elements before n are made empty and removed again by `prune` if still so.
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
    let Some((last, path)) = steps.split_last() else {
        return Err("empty target".into());
    };
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
        // A plain member: one insert (it replaces whatever was there).
        map.insert(last.key.clone(), value);
    } else {
        *place(map, last, padded)? = value;
    }
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
    use serde_json::json;

    use super::*;
    use crate::mapping::path::parse_fhir_target;

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
}
