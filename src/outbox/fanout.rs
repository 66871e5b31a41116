//! Fan-out: which destinations hear of a changed resource, and what each is sent. It is a
//! projection registered with the core: it runs on every change, in the change's write set.
//!
//! A destination hears of:
//! - the resources of each type it subscribed to with `<ResourceType>-changed` (`Patient-changed`,
//!   or `patient-changed` as configs have long said), whatever their source;
//! - the Patients changed by the channels that name it, and by a job that names it (a member's
//!   profile update goes to the UCR), plus any other type it subscribed to.
//!
//! It is sent the resource rendered by its mapping (an A31, a PMIR bundle, ...), carrying only
//! the identifiers of the systems it subscribed to. It is sent nothing when the change does not
//! touch what its rendering shows: the record before and after are rendered alike, and equal
//! renderings mean the consumer would learn nothing new.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::config::live_mappings::LiveMappings;
use crate::config::{Config, event_resource_type};
use crate::core::{Context, Projection};
use crate::domain::resources::{self, Current};
use crate::mapping::Input;
use crate::store::{Changed, Keyspace, Overlay, Reader, StoreError};

use crate::deliveries::delivery::{self, Delivery, State};
use crate::deliveries::queue::{self, Outgoing};

/// One resource as a change left it.
#[derive(Debug, Clone)]
pub struct ResourceWrite {
    pub resource_type: String,
    pub id: String,
    pub before: Option<Value>,
    pub after: Value,
}

struct Target {
    name: String,
    mapping: Option<String>,
    identifier_systems: Vec<String>,
    /// The resource types it subscribed to (`<Type>-changed`).
    subscribed: Vec<String>,
}

pub struct Fanout {
    /// Replaced whole when the config is reloaded; each change reads one version of it.
    routes: RwLock<Arc<Routes>>,
    mappings: Arc<LiveMappings>,
}

/// The destinations and which channels name each: what the config says now.
struct Routes {
    targets: Vec<Target>,
    by_channel: HashMap<String, Vec<usize>>,
}

impl Fanout {
    pub fn new(config: &Config, mappings: Arc<LiveMappings>) -> Fanout {
        Fanout {
            routes: RwLock::new(Arc::new(Routes::of(config))),
            mappings,
        }
    }

    /// Puts a reloaded config's destinations and channels in force for the changes after this.
    pub fn reload(&self, config: &Config) {
        let routes = Arc::new(Routes::of(config));
        match self.routes.write() {
            Ok(mut current) => *current = routes,
            Err(poisoned) => *poisoned.into_inner() = routes,
        }
    }

    fn routes(&self) -> Arc<Routes> {
        match self.routes.read() {
            Ok(routes) => routes.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl Routes {
    fn of(config: &Config) -> Routes {
        let targets: Vec<Target> = config
            .destinations
            .iter()
            .map(|d| Target {
                name: d.name.get_ref().clone(),
                mapping: d.mapping.as_ref().map(|m| m.get_ref().clone()),
                identifier_systems: d.identifier_systems.clone(),
                subscribed: d
                    .events
                    .iter()
                    .filter_map(|e| event_resource_type(e.get_ref()))
                    .map(str::to_string)
                    .collect(),
            })
            .collect();
        let index = |name: &str| targets.iter().position(|t| t.name == name);
        let by_channel = config
            .channels
            .iter()
            .map(|c| {
                let names = c.destinations.iter().filter_map(|d| index(d.get_ref())).collect();
                (c.name.get_ref().clone(), names)
            })
            .collect();
        Routes { targets, by_channel }
    }

    /// The destinations of a change to a `resource_type` made by a job from `origin` naming
    /// `also`, in config order: those subscribed to the type, a channel's for its Patients, and
    /// the ones the job names (a profile update's, an appointment cancellation's).
    fn chosen(&self, resource_type: &str, origin: Option<&str>, also: &[String]) -> Vec<usize> {
        let by_channel: &[usize] = origin
            .and_then(|c| self.by_channel.get(c))
            .map_or(&[], Vec::as_slice);
        (0..self.targets.len())
            .filter(|&i| {
                let target = &self.targets[i];
                target.subscribed.iter().any(|t| t == resource_type)
                    || (by_channel.contains(&i) && resource_type == "Patient")
                    || also.contains(&target.name)
            })
            .collect()
    }
}

impl Fanout {
    /// What each interested destination is to be sent about `writes`, the resources one change
    /// wrote, in order: a delivery, or one that cannot even be rendered.
    fn plan(
        &self,
        origin: Option<&str>,
        also: &[String],
        writes: &[ResourceWrite],
        now: &str,
    ) -> Vec<Planned> {
        let mappings = self.mappings.current();
        let routes = self.routes();
        let mapping_now = hl7_timestamp(now);
        let mut planned = vec![];
        for write in writes {
            for target in routes
                .chosen(&write.resource_type, origin, also)
                .into_iter()
                .map(|i| &routes.targets[i])
            {
                let render = |resource: &Value| -> Result<Option<(String, String)>, String> {
                    let Some(resource) = target.subscribed(resource) else {
                        return Ok(None);
                    };
                    let Some(name) = &target.mapping else {
                        return Ok(Some(("application/fhir+json".into(), resource.to_string())));
                    };
                    let mapping = mappings
                        .get(name)
                        .ok_or_else(|| format!("mapping `{name}` is not loaded"))?;
                    let output = mapping.run(&Input::Fhir(&resource), &mapping_now).map_err(|e| {
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
                match rendered {
                    Ok(None) => {}
                    Ok(Some((content_type, payload))) => planned.push(Planned::Send(Outgoing {
                        destination: target.name.clone(),
                        patient: (write.resource_type == "Patient").then(|| write.id.clone()),
                        resource: Some(format!("{}/{}", write.resource_type, write.id)),
                        content_type,
                        headers: vec![],
                        payload,
                        sealed: None,
                    })),
                    Err(error) => planned.push(Planned::Unrenderable {
                        destination: target.name.clone(),
                        write: write.clone(),
                        error,
                    }),
                }
            }
        }
        planned
    }
}

/// One delivery fan-out decided on.
enum Planned {
    Send(Outgoing),
    /// Its rendering failed: it goes straight to the dead letters.
    Unrenderable {
        destination: String,
        write: ResourceWrite,
        error: String,
    },
}

impl Projection for Fanout {
    /// Every FHIR resource type (member accounts are not resources).
    fn follows(&self, kind: &str) -> bool {
        kind != crate::domain::accounts::members::MEMBER
    }

    fn project(&self, ctx: &mut Context<'_, '_>, changed: &[Changed]) -> Result<(), StoreError> {
        if self.routes().targets.is_empty() {
            return Ok(());
        }
        let mut writes = Vec::with_capacity(changed.len());
        for change in changed {
            let before = live(ctx.tx.below(), &change.kind, &change.id)?;
            let Some(after) = live(&*ctx.tx, &change.kind, &change.id)? else {
                continue;
            };
            writes.push(ResourceWrite {
                resource_type: change.kind.clone(),
                id: change.id.clone(),
                before,
                after,
            });
        }
        if writes.is_empty() {
            return Ok(());
        }
        for planned in self.plan(ctx.origin(), ctx.also_notify(), &writes, ctx.now) {
            let n = ctx.next_delivery_number();
            let id = match planned {
                Planned::Send(outgoing) => queue::enqueue(ctx.tx, outgoing, ctx.seq, n, ctx.now).id,
                Planned::Unrenderable {
                    destination,
                    write,
                    error,
                } => dead_on_arrival(ctx.tx, &destination, &write, &error, ctx.seq, n, ctx.now),
            };
            ctx.queued(id);
        }
        Ok(())
    }
}

/// A resource as it is in `reader`, if it is there and not deleted.
fn live(reader: &dyn Reader, resource_type: &str, id: &str) -> Result<Option<Value>, StoreError> {
    Ok(match resources::read(reader, resource_type, id)? {
        Some(Current::Live(resource)) => Some(resource),
        _ => None,
    })
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
/// resource as its payload, so the failure is seen and nothing is silently dropped.
fn dead_on_arrival(
    tx: &mut Overlay<'_>,
    destination: &str,
    write: &ResourceWrite,
    error: &str,
    cause: u64,
    n: u32,
    now: &str,
) -> String {
    tracing::warn!(%destination, resource = %write.id, %error, "cannot render a delivery");
    let delivery = Delivery {
        id: delivery::id(destination, cause, n),
        destination: destination.to_string(),
        patient: (write.resource_type == "Patient").then(|| write.id.clone()),
        resource: Some(format!("{}/{}", write.resource_type, write.id)),
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
