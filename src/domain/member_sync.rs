//! Keeps members' search entries in step with their patient records. A member is indexed under
//! its patient's names, birth date and identifiers when a member command runs; when a feed (an
//! ADT, a FHIR update, a merge) later changes the patient, this watcher sees the applied change
//! in the journal and re-indexes the member through the committer, so a name change is found
//! under the new name. It is started with the engine and stops with it.
//!
//! How far it has read is kept in the store (written with each refresh), so after a restart it
//! looks again at what it may have missed; re-indexing is idempotent.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

use crate::config::{Config, ConfigError};
use crate::domain::accounts::Accounts;
use crate::domain::members;
use crate::domain::op::Op;
use crate::engine::committer::{CommitterHandle, Finished};
use crate::engine::journal::{JournalEntry, Status};
use crate::store::{Keyspace, Store};

const CURSOR_KEY: &[u8] = b"sync-cursor";
const CHUNK: usize = 1000;
/// Journal message types of member commands: they re-index by themselves.
const OWN: &[&str] = &[
    "member ",
    "token ",
    "request ",
    "password ",
    "username ",
    "enrollment ",
];

/// Loads the accounts service and starts the watcher; it stops when `stopped` turns true.
pub fn start(
    config: &Config,
    store: Arc<dyn Store>,
    committer: CommitterHandle,
    stopped: watch::Receiver<bool>,
) -> Result<Arc<Accounts>, ConfigError> {
    let accounts = Arc::new(Accounts::load(config)?);
    tokio::spawn(watch_journal(store, committer, stopped));
    Ok(accounts)
}

async fn watch_journal(
    store: Arc<dyn Store>,
    committer: CommitterHandle,
    mut stopped: watch::Receiver<bool>,
) {
    let mut cursor = store
        .get(Keyspace::MemberSettings, CURSOR_KEY)
        .ok()
        .flatten()
        .and_then(|b| b.try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0);
    loop {
        if *stopped.borrow() {
            return;
        }
        let reader = store.clone();
        let from = cursor + 1;
        let scanned = tokio::task::spawn_blocking(move || changed_members(reader.as_ref(), from)).await;
        match scanned {
            Ok(Ok((last, ids, _))) if !ids.is_empty() => {
                let answer = committer
                    .run("member refresh", "engine:member-sync", move |ctx| {
                        let mut op = Op::from_ctx(ctx, "engine:member-sync");
                        let mut refreshed = vec![];
                        for id in &ids {
                            if let Ok(Some(old)) = members::load(op.tx, id) {
                                let mut member = old.clone();
                                if members::save(&mut op, Some(&old), &mut member).is_ok()
                                    && member.index_terms != old.index_terms
                                {
                                    refreshed.push(id.clone());
                                }
                            }
                        }
                        op.tx.put(
                            Keyspace::MemberSettings,
                            CURSOR_KEY.to_vec(),
                            last.to_be_bytes().to_vec(),
                        );
                        let text = json!({ "refreshed": refreshed }).to_string();
                        Finished::applied(text, refreshed, ())
                    })
                    .await;
                // Shutting down, or the commit failed: try again later from the same place.
                if let Some(Ok(())) = answer {
                    cursor = last;
                }
            }
            Ok(Ok((last, _, full))) => {
                cursor = last;
                if full {
                    // Catching up: straight on to the next chunk.
                    continue;
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "member sync: reading the journal failed"),
            Err(e) => tracing::error!(error = %e, "member sync stopped"),
        }
        tokio::select! {
            _ = stopped.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// The members among the patients that applied journal entries from `from` on changed, the last
/// sequence looked at, and whether there may be more.
fn changed_members(
    store: &dyn Store,
    from: u64,
) -> Result<(u64, Vec<String>, bool), crate::store::StoreError> {
    let mut last = from.saturating_sub(1);
    let mut ids: Vec<String> = vec![];
    let entries = store.journal(from, CHUNK)?;
    let full = entries.len() == CHUNK;
    for (seq, bytes) in entries {
        last = seq;
        let Ok(entry) = JournalEntry::from_bytes(&bytes) else {
            continue;
        };
        if entry.status != Status::Applied || OWN.iter().any(|own| entry.message_type.starts_with(own)) {
            continue;
        }
        for id in entry.patients {
            if !ids.contains(&id) && members::load(store, &id)?.is_some() {
                ids.push(id);
            }
        }
    }
    Ok((last, ids, full))
}
