//! External credentials linked to member accounts, and signing in with them.
//!
//! A credential is an identity provider's issuer + subject. The first time a person signs in
//! with one, the patient identifier the provider vouches for (src/domain/identity/oidc.rs) is matched to
//! a synced patient; when that patient is an active member, the credential is linked to the
//! account (`Credential`: `issuer \0 subject` -> link; `CredentialByMember`: `patient \0 issuer
//! \0 subject`). One account may hold several, from several providers: each later sign-in
//! finds its account by the credential alone. Every token is used once: its `jti` (or hash) is
//! remembered while it could still pass (`TokenReplay`), so a replayed token is refused; the
//! `token-replay-sweep` job forgets it after that (`TokenReplayExpiry` keeps them in that order).
//!
//! With external credentials only, there is no other way to an account: the first sign-in of a
//! synced patient who has none creates it, active, from the patient record's contact details.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::accounts::Accounts;
use crate::domain::accounts::audit;
use crate::domain::accounts::members::{self, Status};
use crate::domain::identity::oidc::Verified;
use crate::domain::identity::signin::{self, ANONYMOUS_TARGET, Outcome};
use crate::domain::op::Op;
use crate::domain::refusal::Refusal;
use crate::store::{Keyspace, Reader, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub patient_id: String,
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub linked_at: String,
    #[serde(default)]
    pub last_used_at: Option<String>,
}

fn key(issuer: &str, subject: &str) -> Vec<u8> {
    format!("{issuer}\0{subject}").into_bytes()
}

fn member_key(patient_id: &str, issuer: &str, subject: &str) -> Vec<u8> {
    format!("{patient_id}\0{issuer}\0{subject}").into_bytes()
}

pub fn find(reader: &dyn Reader, issuer: &str, subject: &str) -> Result<Option<Link>, StoreError> {
    Ok(reader
        .get(Keyspace::Credential, &key(issuer, subject))?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// A member's linked credentials, oldest link first.
pub fn of_member(store: &dyn Store, patient_id: &str) -> Result<Vec<Link>, StoreError> {
    let prefix = format!("{patient_id}\0").into_bytes();
    let mut links = vec![];
    for (k, _) in store.scan_prefix(Keyspace::CredentialByMember, &prefix, 1000)? {
        let rest = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
        if let Some((issuer, subject)) = rest.split_once('\0')
            && let Some(link) = find(store, issuer, subject)?
        {
            links.push(link);
        }
    }
    links.sort_by(|a, b| a.linked_at.cmp(&b.linked_at));
    Ok(links)
}

/// What the patient identifier of a new credential matched (looked up before the command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// One synced patient.
    Patient(String),
    /// No usable match: a refusal code and its sentence.
    None(&'static str, String),
}

/// Signs in with a verified external token: refuses a replay, finds the linked account or
/// links the credential to the matched member, opens a session. Every result is audited.
pub fn sign_in(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    token: &Verified,
    matched: Match,
) -> Result<Outcome, Refusal> {
    let base = json!({ "step": "external", "provider": token.provider, "issuer": token.issuer,
        "subject": token.subject, "token_kind": token.kind });
    let replay = format!("{}\0{}", token.issuer, token.replay_key).into_bytes();
    if op.tx.get(Keyspace::TokenReplay, &replay)?.is_some() {
        let target = find(op.tx, &token.issuer, &token.subject)?
            .map(|l| audit::member_target(&l.patient_id))
            .unwrap_or_else(|| ANONYMOUS_TARGET.to_string());
        return Ok(signin::refuse(
            op,
            &target,
            "token-replayed",
            "this token was used already",
            base,
        ));
    }
    remember(op, replay, token.expires);
    let method = format!("external:{}", token.provider);
    if let Some(mut link) = find(op.tx, &token.issuer, &token.subject)? {
        let member = members::require(op.tx, &link.patient_id)?;
        let target = audit::member_target(&link.patient_id);
        if let Some(refusal) = unusable(&member.status) {
            return Ok(signin::refuse(op, &target, refusal.0, &refusal.1, base));
        }
        link.last_used_at = Some(op.now.clone());
        op.tx.put(
            Keyspace::Credential,
            key(&link.issuer, &link.subject),
            serde_json::to_vec(&link).expect("a link serializes"),
        );
        return signin::succeed(op, accounts, &link.patient_id, &method, base);
    }
    let patient_id = match matched {
        Match::Patient(id) => id,
        Match::None(code, message) => {
            return Ok(signin::refuse(op, ANONYMOUS_TARGET, code, &message, base));
        }
    };
    let target = audit::member_target(&patient_id);
    let member = match members::load(op.tx, &patient_id)? {
        Some(member) => member,
        None if !accounts.credentials.mode.get_ref().portal() => {
            crate::domain::accounts::enrollment::from_credential(op, accounts, &patient_id, &token.provider)?
        }
        None => {
            return Ok(signin::refuse(
                op,
                &target,
                "not-a-member",
                "the person is known but has no portal account: enroll first",
                base,
            ));
        }
    };
    if let Some(refusal) = unusable(&member.status) {
        return Ok(signin::refuse(op, &target, refusal.0, &refusal.1, base));
    }
    let link = Link {
        patient_id: patient_id.clone(),
        provider: token.provider.clone(),
        issuer: token.issuer.clone(),
        subject: token.subject.clone(),
        linked_at: op.now.clone(),
        last_used_at: Some(op.now.clone()),
    };
    op.tx.put(
        Keyspace::Credential,
        key(&link.issuer, &link.subject),
        serde_json::to_vec(&link).expect("a link serializes"),
    );
    op.tx.put(
        Keyspace::CredentialByMember,
        member_key(&patient_id, &link.issuer, &link.subject),
        vec![],
    );
    let mut details = base.clone();
    details["demographics"] = token.demographics.clone();
    audit::record(op, "credential.link", &target, None, details);
    // A new way into the account: every session opened before it ends.
    members::end_sessions(op, &patient_id)?;
    signin::succeed(op, accounts, &patient_id, &method, base)
}

/// Remembers a used token until `until` (Unix seconds), in both orders.
fn remember(op: &mut Op<'_, '_>, replay: Vec<u8>, until: i64) {
    op.tx.put(
        Keyspace::TokenReplayExpiry,
        replay_expiry_key(until, &replay),
        vec![],
    );
    op.tx
        .put(Keyspace::TokenReplay, replay, until.to_string().into_bytes());
}

fn replay_expiry_key(until: i64, replay: &[u8]) -> Vec<u8> {
    let mut key = (until.max(0) as u64).to_be_bytes().to_vec();
    key.extend_from_slice(replay);
    key
}

/// The remembered tokens that can no longer pass at `now` (Unix seconds), at most `limit`:
/// their `TokenReplayExpiry` keys, oldest first.
pub fn forgettable_replays(store: &dyn Store, now: i64, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut keys = vec![];
    for (key, _) in store.scan_prefix(Keyspace::TokenReplayExpiry, &[], limit)? {
        let Some(until) = key
            .get(..8)
            .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
        else {
            continue;
        };
        if until >= now.max(0) as u64 {
            break;
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Forgets remembered tokens by their `TokenReplayExpiry` keys.
pub fn forget_replays(tx: &mut crate::store::Overlay<'_>, keys: &[Vec<u8>]) {
    for key in keys {
        if key.len() > 8 {
            tx.delete(Keyspace::TokenReplay, key[8..].to_vec());
        }
        tx.delete(Keyspace::TokenReplayExpiry, key.clone());
    }
}

/// Why a member cannot sign in now (not active), if so.
fn unusable(status: &Status) -> Option<(&'static str, String)> {
    (*status != Status::Active).then(|| ("not-active", format!("the account is {}", status.name())))
}

/// Matches the identifier a provider vouches for to one synced patient, and checks the birth
/// date userInfo gives (when both have one) against the patient's.
pub fn match_patient(store: &dyn Store, token: &Verified) -> Result<Match, StoreError> {
    let Some(identifier) = &token.identifier else {
        return Ok(Match::None(
            "identifier-missing",
            "the provider gave no patient identifier".into(),
        ));
    };
    let found = crate::domain::mpi::patients::search_identifier(
        store,
        token.identifier_system.as_deref(),
        identifier,
        2,
    )?;
    let patient = match found.as_slice() {
        [one] => one,
        [] => {
            return Ok(Match::None(
                "no-match",
                "no patient has the identifier the provider gave".into(),
            ));
        }
        _ => {
            return Ok(Match::None(
                "ambiguous-match",
                "several patients have the identifier the provider gave".into(),
            ));
        }
    };
    if let (Some(given), Some(known)) = (
        token.demographics["birthdate"].as_str(),
        patient["birthDate"].as_str(),
    ) && given != known
    {
        return Ok(Match::None(
            "demographics-mismatch",
            "the provider's birth date is not the patient's".into(),
        ));
    }
    Ok(Match::Patient(
        patient["id"].as_str().unwrap_or_default().to_string(),
    ))
}

/// A link as the API shows it.
pub fn view(link: &Link) -> Value {
    json!({
        "provider": link.provider,
        "issuer": link.issuer,
        "subject": link.subject,
        "linked_at": link.linked_at,
        "last_used_at": link.last_used_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, Overlay};

    /// Used tokens are forgotten once they could no longer pass, oldest first, and not before.
    #[test]
    fn the_replay_memory_forgets_only_tokens_past_their_time() {
        let store = MemoryStore::new();
        let mut tx = Overlay::new(&store);
        {
            let mut deliveries = crate::core::Deliveries::default();
            let mut op = Op::new(&mut tx, &mut deliveries, "2026-11-25T10:00:00.000Z", 1, "test");
            remember(&mut op, b"iss\0jti:late".to_vec(), 2_000);
            remember(&mut op, b"iss\0jti:early".to_vec(), 1_000);
            remember(&mut op, b"iss\0jti:never".to_vec(), i64::MAX);
        }
        store.commit(tx.into_writes()).unwrap();

        assert!(
            forgettable_replays(&store, 1_000, 100).unwrap().is_empty(),
            "not before its time"
        );
        let due = forgettable_replays(&store, 1_500, 100).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(&due[0][8..], b"iss\0jti:early");
        let due = forgettable_replays(&store, 10_000, 100).unwrap();
        assert_eq!(due.len(), 2, "the one without an expiry stays");
        assert_eq!(
            forgettable_replays(&store, 10_000, 1).unwrap().len(),
            1,
            "a page at a time"
        );

        let mut tx = Overlay::new(&store);
        forget_replays(&mut tx, &due);
        store.commit(tx.into_writes()).unwrap();
        assert!(
            store
                .get(Keyspace::TokenReplay, b"iss\0jti:early")
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .get(Keyspace::TokenReplay, b"iss\0jti:late")
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .get(Keyspace::TokenReplay, b"iss\0jti:never")
                .unwrap()
                .is_some()
        );
        assert!(forgettable_replays(&store, i64::MAX, 100).unwrap().is_empty());
    }
}
