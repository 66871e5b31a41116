//! Keeps members' search entries in step with their patient records. A member is indexed under
//! its patient's names, birth date and identifiers when a member command runs; when a feed (an
//! ADT, a FHIR update, a merge) later changes the patient, this watcher notices and re-indexes
//! the member through the committer, so a name change is found under the new name. It is
//! started with the engine and stops with it.
//!
//! It reads the patients' `_lastUpdated` search index (`Patient \0 _lastUpdated \0 time \0 id`,
//! kept by every patient write), one second of commit time per prefix scan, from where it last
//! looked to now: a quiet second costs one empty scan, a busy one a point read per changed
//! patient, and the cost never grows with the store or the journal. A member is re-indexed only
//! when its entries differ from what its patient record now gives, so looking at a second twice
//! changes nothing. The second it has looked up to is stored with each refresh, so after a
//! restart it looks again from there.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use tokio::sync::watch;

use crate::config::{Config, ConfigError};
use crate::domain::accounts::Accounts;
use crate::domain::members;
use crate::domain::op::Op;
use crate::engine::committer::{CommitterHandle, Finished};
use crate::store::{Keyspace, Store, StoreError};

const CURSOR_KEY: &[u8] = b"sync-cursor";
/// Commits of one batch share a time, and a batch may land just after a look at its second:
/// each look starts this far back.
const OVERLAP_SECONDS: i64 = 5;
/// With no stored cursor (a new store), how far back the first look goes.
const FIRST_LOOK_SECONDS: i64 = 600;

/// Loads the accounts service and starts the watcher; it stops when `stopped` turns true.
pub fn start(
    config: &Config,
    store: Arc<dyn Store>,
    committer: CommitterHandle,
    stopped: watch::Receiver<bool>,
) -> Result<Arc<Accounts>, ConfigError> {
    let accounts = Arc::new(Accounts::load(config)?);
    tokio::spawn(watch_patients(store, committer, stopped));
    Ok(accounts)
}

async fn watch_patients(
    store: Arc<dyn Store>,
    committer: CommitterHandle,
    mut stopped: watch::Receiver<bool>,
) {
    let stored = store
        .get(Keyspace::MemberSettings, CURSOR_KEY)
        .ok()
        .flatten()
        .and_then(|b| b.try_into().ok().map(i64::from_be_bytes));
    let mut cursor = stored.unwrap_or_else(|| Utc::now().timestamp() - FIRST_LOOK_SECONDS);
    loop {
        if *stopped.borrow() {
            return;
        }
        let reader = store.clone();
        let from = cursor - OVERLAP_SECONDS;
        let to = Utc::now().timestamp();
        let scanned = tokio::task::spawn_blocking(move || stale_members(reader.as_ref(), from, to)).await;
        match scanned {
            Ok(Ok(ids)) if !ids.is_empty() => {
                let answer = committer
                    .run("member refresh", "engine:member-sync", move |ctx| {
                        let mut op = Op::from_ctx(ctx, "engine:member-sync");
                        let mut refreshed = vec![];
                        for id in &ids {
                            if let Ok(Some(old)) = members::load(op.tx, id) {
                                let mut member = old.clone();
                                if members::save(&mut op, Some(&old), &mut member).is_ok() {
                                    refreshed.push(id.clone());
                                }
                            }
                        }
                        op.tx.put(
                            Keyspace::MemberSettings,
                            CURSOR_KEY.to_vec(),
                            to.to_be_bytes().to_vec(),
                        );
                        let text = json!({ "refreshed": refreshed }).to_string();
                        Finished::applied(text, refreshed, ())
                    })
                    .await;
                // Shutting down, or the commit failed: look at the same seconds again next time.
                if let Some(Ok(())) = answer {
                    cursor = to;
                }
            }
            Ok(Ok(_)) => cursor = to,
            Ok(Err(e)) => tracing::error!(error = %e, "member sync: reading the patient index failed"),
            Err(e) => tracing::error!(error = %e, "member sync stopped"),
        }
        tokio::select! {
            _ = stopped.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// Members whose patient was written in the seconds `from..=to` (Unix time) and whose search
/// entries no longer match it.
fn stale_members(store: &dyn Store, from: i64, to: i64) -> Result<Vec<String>, StoreError> {
    let mut ids: Vec<String> = vec![];
    for second in from..=to {
        let Some(at) = DateTime::<Utc>::from_timestamp(second, 0) else {
            continue;
        };
        // `2026-11-25T03:04:05` of `2026-11-25T03:04:05.123Z`.
        let stamp = at.to_rfc3339_opts(SecondsFormat::Secs, true);
        let prefix = format!("Patient\0_lastUpdated\0{}", stamp.trim_end_matches('Z'));
        for (key, _) in store.scan_prefix(Keyspace::SearchIndex, prefix.as_bytes(), usize::MAX)? {
            let Some(zero) = key.iter().rposition(|b| *b == 0) else {
                continue;
            };
            let id = String::from_utf8_lossy(&key[zero + 1..]).into_owned();
            if ids.contains(&id) {
                continue;
            }
            if let Some(member) = members::load(store, &id)?
                && members::stale(store, &member)?
            {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}
