//! The outbox's keyspaces and every move between them: queued (in the write set of the change
//! that causes it), delivered, tried again later, dead-lettered, retried by hand, discarded.
//!
//! A delivery lives in exactly one keyspace at a time: `Outbox` while pending, `DeadLetter`
//! after it failed for good, `Delivered` once done (delivered, discarded or superseded). Each
//! move is written into a job's write set (the worker's and the API's go through the core, as
//! every write does), so a crash leaves it in one place or the other, never both or neither.
//!
//! Stale dead letters: a delivery that carries a resource's current state (`resource` is set)
//! records, when it is delivered, that it is the latest of that resource to go to that
//! destination (in `Meta`, under `outbox-latest \0 destination \0 resource`). A dead letter put
//! back by hand is checked against that record, when retried and again just before it goes:
//! if a newer one has gone out, it is marked `superseded` instead of overwriting newer data.

use crate::store::{Keyspace, Overlay, Reader, Store, StoreError};

use super::delivery::{self, Delivery, State};

/// What a change asks to send; the outbox gives it an id and a place in its destination's queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub destination: String,
    pub patient: Option<String>,
    /// The resource whose current state it carries, if any (see the module doc).
    pub resource: Option<String>,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub payload: String,
    /// Sealed secrets the payload and headers hold placeholders for ([`super::seal`]).
    pub sealed: Option<String>,
}

/// Queues `outgoing` in a job's write set, numbered in the job; the job's journal entry lists
/// it.
pub fn queue(ctx: &mut crate::core::Context<'_, '_>, outgoing: Outgoing) -> Delivery {
    let n = ctx.next_delivery_number();
    let delivery = enqueue(ctx.tx, outgoing, ctx.seq, n, ctx.now);
    ctx.queued(delivery.id.clone());
    delivery
}

/// Queues `outgoing` as delivery `n` of change `cause`, in the same write set as the change.
pub fn enqueue(tx: &mut Overlay<'_>, outgoing: Outgoing, cause: u64, n: u32, now: &str) -> Delivery {
    let delivery = Delivery {
        id: delivery::id(&outgoing.destination, cause, n),
        destination: outgoing.destination,
        patient: outgoing.patient,
        resource: outgoing.resource,
        cause,
        content_type: outgoing.content_type,
        headers: outgoing.headers,
        payload: outgoing.payload,
        sealed: outgoing.sealed,
        secrets_dropped: false,
        created_at: now.to_string(),
        state: State::Pending,
        attempts: 0,
        not_before_ms: 0,
        last_error: None,
        last_attempt_at: None,
        finished_at: None,
        reply: None,
        retried_at: None,
        superseded_by: None,
    };
    tx.put(Keyspace::Outbox, delivery.key(), delivery.to_bytes());
    delivery
}

/// The next deliveries of a destination, in the order they go out.
pub fn pending(store: &dyn Store, destination: &str, limit: usize) -> Result<Vec<Delivery>, StoreError> {
    list(store, Keyspace::Outbox, &delivery::prefix(destination), limit)
}

/// The next deliveries of a destination after the key `after` (a delivery's, or the
/// destination's prefix for all), in the order they go out.
pub fn pending_after(
    store: &dyn Store,
    destination: &str,
    after: &[u8],
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    Ok(store
        .scan_prefix_after(Keyspace::Outbox, &delivery::prefix(destination), after, limit)?
        .into_iter()
        .filter_map(|(_, value)| Delivery::from_bytes(&value))
        .collect())
}

/// Dead letters, of one destination or of all, oldest cause first.
pub fn dead_letters(
    store: &dyn Store,
    destination: Option<&str>,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let prefix = destination.map(delivery::prefix).unwrap_or_default();
    list(store, Keyspace::DeadLetter, &prefix, limit)
}

fn list(
    store: &dyn Store,
    keyspace: Keyspace,
    prefix: &[u8],
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    Ok(store
        .scan_prefix(keyspace, prefix, limit)?
        .into_iter()
        .filter_map(|(_, value)| Delivery::from_bytes(&value))
        .collect())
}

/// A delivery by id, wherever it is now.
pub fn find(store: &dyn Reader, id: &str) -> Result<Option<Delivery>, StoreError> {
    let Some((destination, cause, n)) = delivery::parse_id(id) else {
        return Ok(None);
    };
    let key = delivery::key(destination, cause, n);
    for keyspace in [Keyspace::Outbox, Keyspace::DeadLetter, Keyspace::Delivered] {
        if let Some(bytes) = store.get(keyspace, &key)? {
            return Ok(Delivery::from_bytes(&bytes));
        }
    }
    Ok(None)
}

/// Moves a delivery out of `from` into `to` (or rewrites it in place when they are the same).
fn save(tx: &mut Overlay<'_>, from: Keyspace, to: Keyspace, delivery: &Delivery) {
    let key = delivery.key();
    if from != to {
        tx.delete(from, key.clone());
    }
    tx.put(to, key, delivery.to_bytes());
}

/// The `Meta` key of the latest delivery of `resource` to `destination`.
fn latest_key(destination: &str, resource: &str) -> Vec<u8> {
    let mut key = b"outbox-latest\0".to_vec();
    key.extend_from_slice(destination.as_bytes());
    key.push(0);
    key.extend_from_slice(resource.as_bytes());
    key
}

/// The latest delivery of `delivery`'s resource to its destination, when it is newer than
/// `delivery` (queued by a later change) and has gone out: `delivery` is then stale.
pub fn newer_delivered(store: &dyn Reader, delivery: &Delivery) -> Result<Option<String>, StoreError> {
    let Some(resource) = &delivery.resource else {
        return Ok(None);
    };
    let Some(bytes) = store.get(Keyspace::Meta, &latest_key(&delivery.destination, resource))? else {
        return Ok(None);
    };
    let latest = String::from_utf8_lossy(&bytes).into_owned();
    let newer =
        delivery::parse_id(&latest).is_some_and(|(_, cause, n)| (cause, n) > (delivery.cause, delivery.n()));
    Ok(newer.then_some(latest))
}

/// A retried dead letter that a newer delivery of its resource made stale: finished, not sent.
pub fn mark_superseded(
    tx: &mut Overlay<'_>,
    from: Keyspace,
    mut delivery: Delivery,
    newer: String,
    now: &str,
) -> Delivery {
    delivery.state = State::Superseded;
    delivery.finished_at = Some(now.to_string());
    delivery.last_error = Some(format!("superseded: {newer} went out first"));
    delivery.superseded_by = Some(newer);
    save(tx, from, Keyspace::Delivered, &delivery);
    delivery
}

pub fn mark_delivered(
    tx: &mut Overlay<'_>,
    mut delivery: Delivery,
    reply: &[u8],
    now: &str,
) -> Result<(), StoreError> {
    delivery.state = State::Delivered;
    delivery.attempts += 1;
    delivery.last_attempt_at = Some(now.to_string());
    delivery.finished_at = Some(now.to_string());
    delivery.last_error = None;
    delivery.reply = Some(excerpt(reply));
    // Delivered: its secrets, sealed or not, have no reason to stay.
    delivery.sealed = None;
    if delivery.is_notification() {
        delivery.payload = String::new();
    }
    if let Some(resource) = &delivery.resource {
        // The latest of its resource to go there, unless a newer one went first (a retried
        // dead letter sent while nothing newer had gone out yet).
        if newer_delivered(tx, &delivery)?.is_none() {
            let key = latest_key(&delivery.destination, resource);
            tx.put(Keyspace::Meta, key, delivery.id.clone().into_bytes());
        }
    }
    save(tx, Keyspace::Outbox, Keyspace::Delivered, &delivery);
    Ok(())
}

/// A transient failure with tries left: it stays first in its queue until `not_before_ms`.
pub fn mark_retry(
    tx: &mut Overlay<'_>,
    mut delivery: Delivery,
    error: &str,
    not_before_ms: u64,
    now: &str,
) -> Delivery {
    delivery.attempts += 1;
    delivery.last_error = Some(error.to_string());
    delivery.last_attempt_at = Some(now.to_string());
    delivery.not_before_ms = not_before_ms;
    save(tx, Keyspace::Outbox, Keyspace::Outbox, &delivery);
    delivery
}

/// A permanent failure, or the last try failed: out of the queue, which moves on.
pub fn mark_dead(tx: &mut Overlay<'_>, mut delivery: Delivery, error: &str, now: &str) {
    delivery.state = State::DeadLetter;
    delivery.attempts += 1;
    delivery.last_error = Some(error.to_string());
    delivery.last_attempt_at = Some(now.to_string());
    delivery.finished_at = Some(now.to_string());
    // Dead: its secrets go (a dead sign-in code or token is replaced by a new one, not resent).
    if delivery.sealed.take().is_some() {
        delivery.secrets_dropped = true;
    }
    save(tx, Keyspace::Outbox, Keyspace::DeadLetter, &delivery);
}

/// Why a dead letter could not be retried or discarded.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("no dead letter `{0}`")]
    NotFound(String),
    #[error(
        "dead letter `{0}` carried secrets (a token, a link, a code) that were dropped when it \
         failed; send a new one instead (resend the token, ask for a new code or link)"
    )]
    SecretsDropped(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Puts a dead letter back in its queue, tries counted afresh. It goes out before the deliveries
/// queued after its cause (keys sort by cause), as the order per destination asks. When a newer
/// delivery of its resource has already gone out, it is marked superseded instead (returned
/// so); one whose secrets were dropped is refused.
pub fn retry_dead_letter(tx: &mut Overlay<'_>, id: &str, now: &str) -> Result<Delivery, DeadLetterError> {
    let mut delivery = dead_letter(tx, id)?;
    if delivery.secrets_dropped {
        return Err(DeadLetterError::SecretsDropped(delivery.id));
    }
    if let Some(newer) = newer_delivered(tx, &delivery)? {
        return Ok(mark_superseded(tx, Keyspace::DeadLetter, delivery, newer, now));
    }
    delivery.state = State::Pending;
    delivery.attempts = 0;
    delivery.not_before_ms = 0;
    delivery.finished_at = None;
    delivery.retried_at = Some(now.to_string());
    save(tx, Keyspace::DeadLetter, Keyspace::Outbox, &delivery);
    Ok(delivery)
}

/// Drops a dead letter for good; its record stays among the finished deliveries.
pub fn discard_dead_letter(tx: &mut Overlay<'_>, id: &str, now: &str) -> Result<Delivery, DeadLetterError> {
    let mut delivery = dead_letter(tx, id)?;
    delivery.state = State::Discarded;
    delivery.finished_at = Some(now.to_string());
    save(tx, Keyspace::DeadLetter, Keyspace::Delivered, &delivery);
    Ok(delivery)
}

fn dead_letter(store: &dyn Reader, id: &str) -> Result<Delivery, DeadLetterError> {
    let not_found = || DeadLetterError::NotFound(id.to_string());
    let (destination, cause, n) = delivery::parse_id(id).ok_or_else(not_found)?;
    let bytes = store
        .get(Keyspace::DeadLetter, &delivery::key(destination, cause, n))?
        .ok_or_else(not_found)?;
    Delivery::from_bytes(&bytes).ok_or_else(not_found)
}

/// The start of a reply, as text, for the record.
fn excerpt(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(&reply[..reply.len().min(512)]);
    text.replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliveries::seal::{self, SealKey};
    use crate::store::EmbeddedStore;

    const NOW: &str = "2026-12-01T10:00:00.000Z";

    /// Writes what `f` writes, as a job's write set would be committed.
    fn write<T>(store: &EmbeddedStore, f: impl FnOnce(&mut Overlay<'_>) -> T) -> T {
        let mut tx = Overlay::new(store);
        let value = f(&mut tx);
        store.commit(tx.into_writes()).unwrap();
        value
    }

    fn queued(store: &EmbeddedStore, outgoing: Outgoing, cause: u64) -> Delivery {
        let mut tx = Overlay::new(store);
        let delivery = enqueue(&mut tx, outgoing, cause, 0, NOW);
        store.commit(tx.into_writes()).unwrap();
        delivery
    }

    fn outgoing(resource: Option<&str>, sealed: Option<String>) -> Outgoing {
        Outgoing {
            destination: "dest".into(),
            patient: Some("p1".into()),
            resource: resource.map(str::to_string),
            content_type: "text/plain".into(),
            headers: vec![],
            payload: format!("code {}", seal::placeholder("code")),
            sealed,
        }
    }

    #[test]
    fn a_dead_notification_loses_its_secrets_and_cannot_be_retried_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let key = SealKey::from_bytes([5; 32]);
        let id = delivery::id("dest", 1, 0);
        let sealed = seal::seal(&key, &id, &[("code".into(), "123456".into())]).unwrap();
        let delivery = queued(&store, outgoing(None, Some(sealed)), 1);
        write(&store, |tx| mark_dead(tx, delivery, "permanent: refused", NOW));
        let dead = find(&store, &id).unwrap().unwrap();
        assert_eq!(dead.state, State::DeadLetter);
        assert!(dead.sealed.is_none() && dead.secrets_dropped, "{dead:?}");
        match write(&store, |tx| retry_dead_letter(tx, &id, NOW)) {
            Err(DeadLetterError::SecretsDropped(refused)) => assert_eq!(refused, id),
            other => panic!("{other:?}"),
        }
        // Discarding it is still allowed.
        assert_eq!(
            write(&store, |tx| discard_dead_letter(tx, &id, NOW))
                .unwrap()
                .state,
            State::Discarded
        );
    }

    #[test]
    fn a_dead_letter_older_than_a_delivered_version_of_its_resource_is_superseded() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let old = queued(&store, outgoing(Some("Patient/p1"), None), 1);
        let newer = queued(&store, outgoing(Some("Patient/p1"), None), 2);
        let other = queued(&store, outgoing(Some("Patient/p2"), None), 3);
        write(&store, |tx| mark_dead(tx, old.clone(), "permanent", NOW));
        write(&store, |tx| mark_dead(tx, other.clone(), "permanent", NOW));
        write(&store, |tx| mark_delivered(tx, newer.clone(), b"ok", NOW)).unwrap();
        let retried = write(&store, |tx| retry_dead_letter(tx, &old.id, NOW)).unwrap();
        assert_eq!(retried.state, State::Superseded);
        assert_eq!(retried.superseded_by.as_deref(), Some(newer.id.as_str()));
        assert_eq!(find(&store, &old.id).unwrap().unwrap().state, State::Superseded);
        // Another resource is not concerned: back in its queue.
        let retried = write(&store, |tx| retry_dead_letter(tx, &other.id, NOW)).unwrap();
        assert_eq!(retried.state, State::Pending);
        assert!(retried.retried_at.is_some());
        // The older one delivered late does not move the record of the latest back.
        let late = queued(&store, outgoing(Some("Patient/p1"), None), 0);
        write(&store, |tx| mark_delivered(tx, late, b"ok", NOW)).unwrap();
        assert_eq!(
            newer_delivered(&store, &old).unwrap().as_deref(),
            Some(newer.id.as_str())
        );
    }
}
