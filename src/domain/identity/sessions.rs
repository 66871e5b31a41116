//! Sign-in sessions: what a completed sign-in (password + one-time code, or an external
//! credential) answers with. A session token is 32 random characters; the store keeps only its
//! keyed hash (`Session`), with the member, how they signed in and when it expires. The portal
//! sends it back as `Authorization: Bearer <session>` on the member's own endpoints, and as
//! `X-Member-Session` beside its own API key on the self-service endpoints.
//!
//! A session is over, whatever its expiry, once its member is no longer active or has raised
//! their session epoch (a password reset, a deactivation, a new email or mobile number, an
//! external credential linked: src/domain/accounts/members.rs `ends_sessions`). Sessions are found by
//! their hash only, so the epoch on the member record is what ends all of them at once: each
//! session carries the epoch it was opened under and [`find`] compares the two.

use serde::{Deserialize, Serialize};

use crate::domain::accounts::Accounts;
use crate::domain::accounts::members::{self, Status};
use crate::domain::accounts::tokens::passed;
use crate::domain::identity::secrets;
use crate::domain::op::Op;
use crate::domain::refusal::Refusal;
use crate::store::{Keyspace, Reader, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub patient_id: String,
    /// `password`, `password+code` or `external:<provider>`.
    pub method: String,
    pub issued_at: String,
    pub expires_at: String,
    /// The member's session epoch when the session was opened.
    #[serde(default)]
    pub epoch: u32,
}

/// `now` plus `seconds`, RFC 3339 like the commit time.
pub fn add_seconds(now: &str, seconds: u32) -> String {
    let at = chrono::DateTime::parse_from_rfc3339(now)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|_| chrono::Utc::now());
    (at + chrono::Duration::seconds(i64::from(seconds))).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The current time as the committer writes it.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Opens a session for the member; returns the token (shown once) and the session.
pub fn open(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    patient_id: &str,
    method: &str,
) -> Result<(String, Session), Refusal> {
    let member = members::require(op.tx, patient_id)?;
    let token = secrets::new_token();
    let session = Session {
        patient_id: patient_id.to_string(),
        method: method.to_string(),
        issued_at: op.now.clone(),
        expires_at: add_seconds(&op.now, accounts.credentials.session_seconds),
        epoch: member.session_epoch,
    };
    write(op, accounts, &token, &session);
    Ok((token, session))
}

fn write(op: &mut Op<'_, '_>, accounts: &Accounts, token: &str, session: &Session) {
    op.tx.put(
        Keyspace::Session,
        accounts.key.hash(token).into_bytes(),
        serde_json::to_vec(session).expect("a session serializes"),
    );
}

/// Carries the session `token` over into the member's new epoch: the one session that made a
/// change which ended all the others (a member changing their own email) goes on.
pub fn keep(op: &mut Op<'_, '_>, accounts: &Accounts, token: &str, session: &Session, epoch: u32) {
    let mut kept = session.clone();
    kept.epoch = epoch;
    write(op, accounts, token, &kept);
}

/// The live session a token stands for (none when unknown, expired, or ended by a change of
/// its member).
pub fn find(
    reader: &dyn Reader,
    accounts: &Accounts,
    token: &str,
    now: &str,
) -> Result<Option<Session>, StoreError> {
    if token.len() > 256 {
        return Ok(None);
    }
    let Some(bytes) = reader.get(Keyspace::Session, accounts.key.hash(token).as_bytes())? else {
        return Ok(None);
    };
    let session: Session =
        serde_json::from_slice(&bytes).map_err(|e| StoreError::corrupt("a session is not valid", e))?;
    if passed(&session.expires_at, now) {
        return Ok(None);
    }
    let live = members::load(reader, &session.patient_id)?
        .is_some_and(|m| m.status == Status::Active && m.session_epoch == session.epoch);
    Ok(live.then_some(session))
}

/// Ends the session a token stands for; whether there was one.
pub fn close(op: &mut Op<'_, '_>, accounts: &Accounts, token: &str) -> Result<Option<Session>, StoreError> {
    let key = accounts.key.hash(token).into_bytes();
    let found = op.tx.get(Keyspace::Session, &key)?;
    op.tx.delete(Keyspace::Session, key);
    Ok(found.and_then(|b| serde_json::from_slice(&b).ok()))
}
