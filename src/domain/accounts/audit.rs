//! The audit trail: every state change of a member account, an enrollment request or the member
//! settings records who did it, when, what, to what, and the reason given. Records are
//! append-only (written once, in the same commit as the change, never rewritten) and are found
//! by target (a member) and by actor.
//!
//! Keys: `Audit`: `seq (8 BE) n (4 BE)`; `AuditByTarget`: `target \0 seq n`; `AuditByActor`:
//! `actor \0 seq n`. Sequence order is commit order, so every listing is oldest first.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::op::Op;
use crate::store::{Keyspace, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// `seq-n`: the journal sequence of the change and its number within it.
    pub id: String,
    pub at: String,
    pub actor: String,
    /// What was done (`member.enroll`, `token.renew`, `request.decline` ...).
    pub action: String,
    /// What it was done to (`member/<patient id>`, `enrollment-request/<id>`, `settings/members`).
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Facts of the change (never a secret).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

/// The target name of a member.
pub fn member_target(patient_id: &str) -> String {
    format!("member/{patient_id}")
}

/// Appends a record to the trail, in the command's write set.
pub fn record(op: &mut Op<'_, '_>, action: &str, target: &str, reason: Option<&str>, details: Value) {
    let n = op.next_audit_number();
    let mut key = op.seq.to_be_bytes().to_vec();
    key.extend_from_slice(&n.to_be_bytes());
    let record = AuditRecord {
        id: format!("{}-{n}", op.seq),
        at: op.now.clone(),
        actor: op.actor.clone(),
        action: action.to_string(),
        target: target.to_string(),
        reason: reason.map(str::to_string),
        details,
    };
    let bytes = serde_json::to_vec(&record).expect("an audit record serializes");
    op.tx.put(Keyspace::Audit, key.clone(), bytes);
    op.tx.put(Keyspace::AuditByTarget, by(target, &key), vec![]);
    op.tx.put(Keyspace::AuditByActor, by(&record.actor, &key), vec![]);
}

fn by(name: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1 + key.len());
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub target: Option<String>,
    pub actor: Option<String>,
    pub limit: usize,
}

/// Records matching the query (both, when both are given), oldest first.
pub fn list(store: &dyn Store, query: &Query) -> Result<Vec<AuditRecord>, StoreError> {
    let limit = query.limit.max(1);
    let keys: Vec<Vec<u8>> = match (&query.target, &query.actor) {
        (Some(target), _) => scan_by(store, Keyspace::AuditByTarget, target, usize::MAX)?,
        (None, Some(actor)) => scan_by(store, Keyspace::AuditByActor, actor, usize::MAX)?,
        (None, None) => store
            .scan_prefix(Keyspace::Audit, &[], limit)?
            .into_iter()
            .map(|(k, _)| k)
            .collect(),
    };
    let mut out = vec![];
    for key in keys {
        let Some(bytes) = store.get(Keyspace::Audit, &key)? else {
            continue;
        };
        let Ok(record) = serde_json::from_slice::<AuditRecord>(&bytes) else {
            continue;
        };
        if query.actor.as_ref().is_some_and(|a| *a != record.actor) {
            continue;
        }
        out.push(record);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

fn scan_by(
    store: &dyn Store,
    keyspace: Keyspace,
    name: &str,
    limit: usize,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut prefix = name.as_bytes().to_vec();
    prefix.push(0);
    Ok(store
        .scan_prefix(keyspace, &prefix, limit)?
        .into_iter()
        .map(|(k, _)| k[prefix.len()..].to_vec())
        .collect())
}
