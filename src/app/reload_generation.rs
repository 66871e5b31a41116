//! A config reload across the nodes of a shared store (README "Scaling out"): a reload asked of
//! one node (SIGHUP, the console's button) counts up the cluster's reload generation in the
//! store, and every node that sees a newer generation than the last it knew reloads its own
//! config file too. One process alone keeps no generation.

use std::sync::Arc;
use std::time::Duration;

use crate::core::CommitterHandle;
use crate::store::{Keyspace, Reader, Store, StoreError};

/// How often a node looks for a reload asked of another.
pub(super) const POLL: Duration = Duration::from_secs(2);

/// `Meta` key of the generation: a count (8 bytes BE) of the reloads asked in the cluster.
const KEY: &[u8] = b"config-reload-generation";

fn decode(value: Option<Vec<u8>>) -> u64 {
    value
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// The generation in the store now.
pub(super) fn current(store: &Arc<dyn Store>) -> Result<u64, StoreError> {
    store.get(Keyspace::Meta, KEY).map(decode)
}

/// Counts a reload asked of this node; returns the new generation (this node has reloaded to it).
pub(super) async fn announce(committer: &CommitterHandle) -> Result<u64, StoreError> {
    let counted = committer
        .write(|ctx| {
            let next = decode(ctx.tx.get(Keyspace::Meta, KEY)?) + 1;
            ctx.tx
                .put(Keyspace::Meta, KEY.to_vec(), next.to_be_bytes().to_vec());
            Ok(next)
        })
        .await;
    match counted {
        Some(Ok(next)) => Ok(next),
        Some(Err(e)) => Err(StoreError::other(e)),
        None => Err(StoreError::other("the engine is stopping")),
    }
}
