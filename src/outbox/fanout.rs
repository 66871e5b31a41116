//! Fan-out: which destinations hear of a patient change, and what each is sent.
//!
//! A destination hears of the patients changed by the channels that name it, and, if it
//! subscribed to `patient-changed`, of every demographic change from any source. It is sent the
//! Patient rendered by its mapping (an A31, a PMIR bundle, ...), carrying only the identifiers
//! of the systems it subscribed to. It is sent nothing when the change does not touch what its
//! rendering shows: the record before and after are rendered alike, and equal renderings mean
//! the consumer would learn nothing new.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::config::Config;
use crate::engine::live_mappings::LiveMappings;
use crate::mapping::Input;
use crate::store::{Keyspace, Overlay};

use super::delivery::{self, Delivery, State};
use super::queue::{self, Outgoing};

/// One patient as a change left it.
#[derive(Debug, Clone)]
pub struct PatientWrite {
    pub id: String,
    pub before: Option<Value>,
    pub after: Value,
}

struct Target {
    name: String,
    mapping: Option<String>,
    identifier_systems: Vec<String>,
}

pub struct Fanout {
    targets: Vec<Target>,
    /// Destinations (indexes into `targets`) of every patient change.
    every_change: Vec<usize>,
    by_channel: HashMap<String, Vec<usize>>,
    mappings: Arc<LiveMappings>,
}

impl Fanout {
    pub fn new(config: &Config, mappings: Arc<LiveMappings>) -> Fanout {
        let targets: Vec<Target> = config
            .destinations
            .iter()
            .map(|d| Target {
                name: d.name.get_ref().clone(),
                mapping: d.mapping.as_ref().map(|m| m.get_ref().clone()),
                identifier_systems: d.identifier_systems.clone(),
            })
            .collect();
        let index = |name: &str| targets.iter().position(|t| t.name == name);
        let every_change = config
            .destinations
            .iter()
            .enumerate()
            .filter(|(_, d)| d.events.iter().any(|e| e.get_ref() == "patient-changed"))
            .map(|(i, _)| i)
            .collect();
        let by_channel = config
            .channels
            .iter()
            .map(|c| {
                let names = c.destinations.iter().filter_map(|d| index(d.get_ref())).collect();
                (c.name.get_ref().clone(), names)
            })
            .collect();
        Fanout {
            targets,
            every_change,
            by_channel,
            mappings,
        }
    }

    /// Queues, in `tx`, what each interested destination is sent about `writes`, the patients
    /// one change (journal `cause`) wrote; `channel` is the channel it came by, if any. `n`
    /// numbers the deliveries of this cause. Returns the ids queued.
    pub fn patients_changed(
        &self,
        tx: &mut Overlay<'_>,
        channel: Option<&str>,
        writes: &[PatientWrite],
        cause: u64,
        n: &mut u32,
        now: &str,
    ) -> Vec<String> {
        let named = channel
            .and_then(|c| self.by_channel.get(c))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        self.send(tx, named, writes, cause, n, now)
    }

    /// As `patients_changed`, for a change that also goes to the destinations named in `also`
    /// (a member's profile update goes to the UCR, which is not told of every change).
    pub fn patients_changed_also_to(
        &self,
        tx: &mut Overlay<'_>,
        also: &[String],
        writes: &[PatientWrite],
        cause: u64,
        n: &mut u32,
        now: &str,
    ) -> Vec<String> {
        let named: Vec<usize> = also
            .iter()
            .filter_map(|name| self.targets.iter().position(|t| t.name == *name))
            .collect();
        self.send(tx, &named, writes, cause, n, now)
    }

    fn send(
        &self,
        tx: &mut Overlay<'_>,
        named: &[usize],
        writes: &[PatientWrite],
        cause: u64,
        n: &mut u32,
        now: &str,
    ) -> Vec<String> {
        let mut chosen: Vec<usize> = self.every_change.clone();
        chosen.extend(named.iter().filter(|i| !chosen.contains(i)).collect::<Vec<_>>());
        if chosen.is_empty() || writes.is_empty() {
            return vec![];
        }
        chosen.sort_unstable();
        let mappings = self.mappings.current();
        let mapping_now = hl7_timestamp(now);
        let mut queued = vec![];
        for target in chosen.into_iter().map(|i| &self.targets[i]) {
            for write in writes {
                let render = |patient: &Value| -> Result<Option<(String, String)>, String> {
                    let Some(patient) = target.subscribed(patient) else {
                        return Ok(None);
                    };
                    let Some(name) = &target.mapping else {
                        return Ok(Some(("application/fhir+json".into(), patient.to_string())));
                    };
                    let mapping = mappings
                        .get(name)
                        .ok_or_else(|| format!("mapping `{name}` is not loaded"))?;
                    let output = mapping.run(&Input::Fhir(&patient), &mapping_now).map_err(|e| {
                        format!("mapping `{name}` line {}: {} ({})", e.line, e.message, e.path)
                    })?;
                    match (output.message, output.resource) {
                        (Some(message), _) => Ok(Some(("x-application/hl7-v2+er7".into(), message))),
                        (None, Some(resource)) => {
                            Ok(Some(("application/fhir+json".into(), resource.to_string())))
                        }
                        (None, None) => Err(format!("mapping `{name}` wrote nothing")),
                    }
                };
                let rendered = render(&write.after);
                if let (Ok(after), Some(before)) = (&rendered, &write.before) {
                    let before = render(&with_meta_of(before, &write.after));
                    if before.as_ref().ok() == Some(after) {
                        continue;
                    }
                }
                let id = match rendered {
                    Ok(None) => continue,
                    Ok(Some((content_type, payload))) => {
                        let outgoing = Outgoing {
                            destination: target.name.clone(),
                            patient: Some(write.id.clone()),
                            resource: Some(format!("Patient/{}", write.id)),
                            content_type,
                            headers: vec![],
                            payload,
                            sealed: None,
                        };
                        queue::enqueue(tx, outgoing, cause, *n, now).id
                    }
                    Err(error) => dead_on_arrival(tx, target, write, &error, cause, *n, now),
                };
                *n += 1;
                queued.push(id);
            }
        }
        queued
    }
}

impl Target {
    /// The patient as this destination sees it: only the identifiers of its systems; None when
    /// it has none of them.
    fn subscribed(&self, patient: &Value) -> Option<Value> {
        if self.identifier_systems.is_empty() {
            return Some(patient.clone());
        }
        let mut patient = patient.clone();
        let kept: Vec<Value> = patient
            .get("identifier")
            .and_then(Value::as_array)
            .map(|identifiers| {
                identifiers
                    .iter()
                    .filter(|i| {
                        i.get("system")
                            .and_then(Value::as_str)
                            .is_some_and(|s| self.identifier_systems.iter().any(|w| w == s))
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if kept.is_empty() {
            return None;
        }
        patient["identifier"] = Value::Array(kept);
        Some(patient)
    }
}

/// `before` with `after`'s meta, so renderings differ only where the content does.
fn with_meta_of(before: &Value, after: &Value) -> Value {
    let mut before = before.clone();
    if let (Some(object), Some(meta)) = (before.as_object_mut(), after.get("meta")) {
        object.insert("meta".into(), meta.clone());
    }
    before
}

/// A delivery that could not even be rendered goes straight to the dead letters, with the
/// Patient as its payload, so the failure is seen and nothing is silently dropped.
fn dead_on_arrival(
    tx: &mut Overlay<'_>,
    target: &Target,
    write: &PatientWrite,
    error: &str,
    cause: u64,
    n: u32,
    now: &str,
) -> String {
    tracing::warn!(destination = %target.name, patient = %write.id, %error, "cannot render a delivery");
    let delivery = Delivery {
        id: delivery::id(&target.name, cause, n),
        destination: target.name.clone(),
        patient: Some(write.id.clone()),
        resource: Some(format!("Patient/{}", write.id)),
        cause,
        content_type: "application/fhir+json".into(),
        headers: vec![],
        payload: write.after.to_string(),
        sealed: None,
        secrets_dropped: false,
        created_at: now.to_string(),
        state: State::DeadLetter,
        attempts: 0,
        not_before_ms: 0,
        last_error: Some(format!("cannot render: {error}")),
        last_attempt_at: None,
        finished_at: Some(now.to_string()),
        reply: None,
        retried_at: None,
        superseded_by: None,
    };
    tx.put(Keyspace::DeadLetter, delivery.key(), delivery.to_bytes());
    delivery.id
}

/// An RFC 3339 time as the HL7 TS the mappings' `now()` gives.
fn hl7_timestamp(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y%m%d%H%M%S+0000")
                .to_string()
        })
        .unwrap_or_else(|_| chrono::Utc::now().format("%Y%m%d%H%M%S+0000").to_string())
}
