//! Settings a Configuration Manager saves at run time over what the config starts with (member
//! settings, the Records tab's switches, branding): each kept as JSON under its own key beside
//! the others, so every engine node reads the same at once, and each save audited with what it
//! replaced.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::accounts::audit;
use crate::domain::op::Op;
use crate::domain::refusal::Refusal;
use crate::store::{Keyspace, Reader, StoreError};

/// The settings saved under `key`, else `configured` (also when what is saved no longer reads,
/// as after a release that changed their shape).
pub fn load<T: DeserializeOwned + Clone>(
    reader: &dyn Reader,
    key: &[u8],
    configured: &T,
) -> Result<T, StoreError> {
    if let Some(bytes) = reader.get(Keyspace::MemberSettings, key)?
        && let Ok(saved) = serde_json::from_slice(&bytes)
    {
        return Ok(saved);
    }
    Ok(configured.clone())
}

/// Saves `new` under `key` (in the command's write set) with an audit record of `action` on
/// `target` holding the settings before and after. A reason is required.
pub fn save<T: Serialize + DeserializeOwned + Clone>(
    op: &mut Op<'_, '_>,
    key: &[u8],
    configured: &T,
    new: T,
    action: &str,
    target: &str,
    reason: &str,
) -> Result<T, Refusal> {
    if reason.trim().is_empty() {
        return Err(Refusal::invalid("a reason is required"));
    }
    let before = load(op.tx, key, configured)?;
    op.tx.put(
        Keyspace::MemberSettings,
        key.to_vec(),
        serde_json::to_vec(&new).expect("settings serialize"),
    );
    audit::record(
        op,
        action,
        target,
        Some(reason),
        serde_json::json!({ "before": before, "after": new }),
    );
    Ok(new)
}
