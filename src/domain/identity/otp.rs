//! Two-factor sign-in: after a right password, a six-digit one-time code goes to the member by
//! text or email (through the durable outbox, in the member's language). It is valid
//! `code_valid_seconds` (6 minutes), usable once, and `code_max_attempts` wrong tries kill it;
//! each wrong try also counts towards the account's wait (src/domain/identity/throttle.rs).
//!
//! The code travels with a *challenge*: 32 random characters handed to the portal, which sends
//! both back. The store keeps, under the challenge's keyed hash (`OtpChallenge`), the keyed
//! hash of challenge + code, never either of them; a code is only worth anything with its
//! challenge, and the key is the server's.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::accounts::Accounts;
use crate::domain::accounts::members::{self, Member, Preference, Status};
use crate::domain::accounts::notify::{self, Channels};
use crate::domain::accounts::tokens::passed;
use crate::domain::identity::secrets;
use crate::domain::identity::sessions::add_seconds;
use crate::domain::identity::signin::{self, CodeChannel, Outcome};
use crate::domain::op::Op;
use crate::domain::refusal::Refusal;
use crate::domain::{accounts::audit, identity::signin::ANONYMOUS_TARGET};
use crate::store::{Keyspace, Reader};

/// The notification that carries the code.
pub const WORKFLOW: &str = "sign-in-code";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub patient_id: String,
    /// Keyed hash of `challenge:code`.
    pub code_hash: String,
    pub issued_at: String,
    pub expires_at: String,
    pub attempts: u32,
    #[serde(default)]
    pub used_at: Option<String>,
}

/// Six random digits (rejection-sampled, so each of the million is equally likely).
pub fn new_code() -> String {
    loop {
        let mut b = [0u8; 4];
        secrets::fill_random(&mut b);
        let n = u32::from_be_bytes(b);
        // 4_294_000_000 is the largest multiple of 1_000_000 below 2^32.
        if n < 4_294_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

fn code_hash(accounts: &Accounts, challenge: &str, code: &str) -> String {
    accounts.key.hash(&format!("{challenge}:{code}"))
}

/// Issues a challenge for an active member and sends its code.
pub fn issue(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    member: &Member,
    channel: Option<CodeChannel>,
) -> Result<Outcome, Refusal> {
    let challenge = secrets::new_token();
    let code = new_code();
    let minutes = (accounts.credentials.code_valid_seconds.div_ceil(60)).to_string();
    let mut contact = member.contact.clone();
    if let Some(channel) = channel {
        contact.preference = match channel {
            CodeChannel::Email => Preference::Email,
            CodeChannel::Text => Preference::Text,
        };
    }
    let vars = [
        ("name", member.greeting()),
        ("code", code.clone()),
        ("minutes", minutes),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sent = notify::send_sealed(
        op,
        accounts,
        Some(&member.patient_id),
        &contact,
        Channels::Preferred,
        WORKFLOW,
        &vars,
        &["code"],
    );
    let target = audit::member_target(&member.patient_id);
    if sent.deliveries.is_empty() {
        return Ok(signin::refuse(
            op,
            &target,
            "code-not-sent",
            &format!(
                "the one-time code could not be sent: {}",
                sent.failures.join("; ")
            ),
            json!({ "step": "password", "failures": sent.failures }),
        ));
    }
    let record = Challenge {
        patient_id: member.patient_id.clone(),
        code_hash: code_hash(accounts, &challenge, &code),
        issued_at: op.now.clone(),
        expires_at: add_seconds(&op.now, accounts.credentials.code_valid_seconds),
        attempts: 0,
        used_at: None,
    };
    op.tx.put(
        Keyspace::OtpChallenge,
        accounts.key.hash(&challenge).into_bytes(),
        serde_json::to_vec(&record).expect("a challenge serializes"),
    );
    audit::record(
        op,
        "signin.code-sent",
        &target,
        None,
        json!({ "step": "password", "expires_at": record.expires_at, "deliveries": sent.deliveries }),
    );
    Ok(Outcome::CodeSent {
        challenge,
        expires_at: record.expires_at,
        sent,
    })
}

/// Checks a code against its challenge; a right code signs the member in, once.
pub fn verify(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    challenge: &str,
    code: &str,
) -> Result<Outcome, Refusal> {
    let key = accounts.key.hash(challenge).into_bytes();
    let found = if challenge.len() > 256 {
        None
    } else {
        op.tx
            .get(Keyspace::OtpChallenge, &key)?
            .and_then(|b| serde_json::from_slice::<Challenge>(&b).ok())
    };
    let Some(mut record) = found else {
        return Ok(signin::refuse(
            op,
            ANONYMOUS_TARGET,
            "challenge-unknown",
            "this sign-in is not known: start again with the password",
            json!({ "step": "code" }),
        ));
    };
    let target = audit::member_target(&record.patient_id);
    let details = json!({ "step": "code", "challenge_issued_at": record.issued_at });
    if record.used_at.is_some() {
        return Ok(signin::refuse(
            op,
            &target,
            "code-used",
            "this code was used already: sign in again",
            details,
        ));
    }
    if passed(&record.expires_at, &op.now) {
        return Ok(signin::refuse(
            op,
            &target,
            "code-expired",
            "this code has expired: sign in again",
            details,
        ));
    }
    if record.attempts >= accounts.credentials.code_max_attempts {
        return Ok(signin::refuse(
            op,
            &target,
            "too-many-attempts",
            "too many wrong codes: sign in again",
            details,
        ));
    }
    let given = code.trim();
    let right = given.len() == 6
        && given.bytes().all(|b| b.is_ascii_digit())
        && secrets::same(&code_hash(accounts, challenge, given), &record.code_hash);
    if !right {
        record.attempts += 1;
        let left = accounts
            .credentials
            .code_max_attempts
            .saturating_sub(record.attempts);
        save(op, &key, &record);
        let outcome = signin::fail(
            op,
            &record.patient_id,
            "code-wrong",
            &format!("the code is not right ({left} tries left)"),
            json!({ "step": "code", "attempts": record.attempts }),
        )?;
        return Ok(outcome);
    }
    let member = members::require(op.tx, &record.patient_id)?;
    if member.status != Status::Active {
        return Ok(signin::refuse(
            op,
            &target,
            "not-active",
            &format!("the account is {}", member.status.name()),
            details,
        ));
    }
    record.used_at = Some(op.now.clone());
    save(op, &key, &record);
    signin::succeed(op, accounts, &record.patient_id, "password+code", json!({}))
}

fn save(op: &mut Op<'_, '_>, key: &[u8], record: &Challenge) {
    op.tx.put(
        Keyspace::OtpChallenge,
        key.to_vec(),
        serde_json::to_vec(record).expect("a challenge serializes"),
    );
}

#[cfg(test)]
mod tests {
    use super::new_code;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: Vec<String> = (0..50).map(|_| new_code()).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        let mut distinct = codes.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 40);
    }
}
