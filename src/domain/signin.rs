//! Password sign-in: the result of checking a username and password (the argon2 check itself
//! runs off the committer thread; its verdict is passed in), lockout after repeated failures,
//! and the two-factor step that follows a right password (src/domain/otp.rs). Every result,
//! success or failure, is an audit record; failures are written (they count), so a failed
//! sign-in is an applied command whose answer says why.
//!
//! Lockout (`SignInState`, by patient id): each wrong password or wrong one-time code adds one
//! failure; at `max_failed_sign_ins` the account is locked for `lockout_seconds`, during which
//! even the right password is refused. Failures reset only when a sign-in completes.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::accounts::Accounts;
use crate::domain::audit;
use crate::domain::members::{self, Status};
use crate::domain::notify::Sent;
use crate::domain::op::Op;
use crate::domain::otp;
use crate::domain::refusal::Refusal;
use crate::domain::sessions::{self, add_seconds};
use crate::domain::tokens::passed;
use crate::store::{Keyspace, Reader, StoreError};

/// The audit target of sign-ins that name no known member.
pub const ANONYMOUS_TARGET: &str = "sign-in";

/// Failed sign-ins in a row and the lock they led to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInState {
    pub failures: u32,
    #[serde(default)]
    pub locked_until: Option<String>,
    #[serde(default)]
    pub last_failure_at: Option<String>,
    #[serde(default)]
    pub last_sign_in_at: Option<String>,
}

impl SignInState {
    /// Until when the account is locked, if it is now.
    pub fn locked(&self, now: &str) -> Option<&str> {
        self.locked_until.as_deref().filter(|until| !passed(until, now))
    }
}

pub fn state(reader: &dyn Reader, patient_id: &str) -> Result<SignInState, StoreError> {
    Ok(reader
        .get(Keyspace::SignInState, patient_id.as_bytes())?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default())
}

fn save_state(op: &mut Op<'_, '_>, patient_id: &str, state: &SignInState) {
    op.tx.put(
        Keyspace::SignInState,
        patient_id.as_bytes().to_vec(),
        serde_json::to_vec(state).expect("a sign-in state serializes"),
    );
}

/// What a sign-in step answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Signed in: a session token (shown once).
    SignedIn {
        patient_id: String,
        session: String,
        expires_at: String,
        method: String,
    },
    /// The password was right; a one-time code went out. The challenge (shown once) goes back
    /// with the code.
    CodeSent {
        challenge: String,
        expires_at: String,
        sent: Sent,
    },
    /// Refused, with a stable code (`invalid-credentials`, `locked`, `not-active`, `code-wrong`,
    /// `code-expired`, `code-used`, `too-many-attempts`, `challenge-unknown`, `token-replayed` ...).
    Failed {
        code: &'static str,
        message: String,
        locked_until: Option<String>,
    },
}

impl Outcome {
    pub fn failed(code: &'static str, message: impl Into<String>) -> Outcome {
        Outcome::Failed {
            code,
            message: message.into(),
            locked_until: None,
        }
    }
}

/// Records a failure of a known member's sign-in: counts it, locks the account at the limit,
/// and audits both. Returns the outcome to answer with.
pub fn fail(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    patient_id: &str,
    code: &'static str,
    message: &str,
    details: Value,
) -> Result<Outcome, Refusal> {
    let mut st = state(op.tx, patient_id)?;
    if st.locked_until.as_deref().is_some_and(|u| passed(u, &op.now)) {
        st.locked_until = None;
        st.failures = 0;
    }
    st.failures += 1;
    st.last_failure_at = Some(op.now.clone());
    let target = audit::member_target(patient_id);
    let mut details = details;
    details["result"] = json!(code);
    details["failures"] = json!(st.failures);
    audit::record(op, "signin.failure", &target, None, details);
    let mut locked_until = None;
    if st.failures >= accounts.credentials.max_failed_sign_ins {
        let until = add_seconds(&op.now, accounts.credentials.lockout_seconds);
        st.failures = 0;
        st.locked_until = Some(until.clone());
        audit::record(
            op,
            "signin.lockout",
            &target,
            None,
            json!({ "until": until, "after_failures": accounts.credentials.max_failed_sign_ins }),
        );
        locked_until = Some(until);
    }
    save_state(op, patient_id, &st);
    Ok(match locked_until {
        Some(until) => Outcome::Failed {
            code: "locked",
            message: "too many failed sign-ins: the account is locked for a while".into(),
            locked_until: Some(until),
        },
        None => Outcome::failed(code, message),
    })
}

/// A refusal that is not the member's fault and does not count (locked, not active ...),
/// audited all the same.
pub fn refuse(
    op: &mut Op<'_, '_>,
    target: &str,
    code: &'static str,
    message: &str,
    details: Value,
) -> Outcome {
    let mut details = details;
    details["result"] = json!(code);
    audit::record(op, "signin.failure", target, None, details);
    Outcome::failed(code, message)
}

/// A completed sign-in: failures reset, a session opened, audited.
pub fn succeed(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    patient_id: &str,
    method: &str,
    details: Value,
) -> Result<Outcome, Refusal> {
    let mut st = state(op.tx, patient_id)?;
    st.failures = 0;
    st.locked_until = None;
    st.last_sign_in_at = Some(op.now.clone());
    save_state(op, patient_id, &st);
    let (token, session) = sessions::open(op, accounts, patient_id, method);
    let mut details = details;
    details["method"] = json!(method);
    details["session_expires_at"] = json!(session.expires_at);
    audit::record(
        op,
        "signin.success",
        &audit::member_target(patient_id),
        None,
        details,
    );
    Ok(Outcome::SignedIn {
        patient_id: patient_id.to_string(),
        session: token,
        expires_at: session.expires_at,
        method: method.to_string(),
    })
}

/// How a one-time code should travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeChannel {
    Email,
    Text,
}

/// The verdict of a password check, made off the committer thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// No account has this username (a dummy hash was checked, to take the same time).
    UnknownUser,
    /// The member and whether the password matched.
    Member { patient_id: String, password_ok: bool },
}

/// Applies a password check: counts a failure, refuses a locked or inactive account, or (the
/// password right) sends a one-time code, or signs in at once when two-factor is off.
pub fn password(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    checked: Checked,
    channel: Option<CodeChannel>,
) -> Result<Outcome, Refusal> {
    let (patient_id, password_ok) = match checked {
        Checked::UnknownUser => {
            // The typed username is not recorded: people type passwords into it.
            return Ok(refuse(
                op,
                ANONYMOUS_TARGET,
                "invalid-credentials",
                "the username or password is not right",
                json!({ "step": "password", "why": "unknown-username" }),
            ));
        }
        Checked::Member {
            patient_id,
            password_ok,
        } => (patient_id, password_ok),
    };
    let member = members::require(op.tx, &patient_id)?;
    let target = audit::member_target(&patient_id);
    let st = state(op.tx, &patient_id)?;
    if let Some(until) = st.locked(&op.now) {
        let until = until.to_string();
        audit::record(
            op,
            "signin.failure",
            &target,
            None,
            json!({ "step": "password", "result": "locked", "locked_until": until }),
        );
        return Ok(Outcome::Failed {
            code: "locked",
            message: "too many failed sign-ins: the account is locked for a while".into(),
            locked_until: Some(until),
        });
    }
    if !password_ok {
        return fail(
            op,
            accounts,
            &patient_id,
            "invalid-credentials",
            "the username or password is not right",
            json!({ "step": "password" }),
        );
    }
    if member.status != Status::Active {
        return Ok(refuse(
            op,
            &target,
            "not-active",
            &format!("the account is {}", member.status.name()),
            json!({ "step": "password", "status": member.status.name() }),
        ));
    }
    if !accounts.credentials.two_factor {
        return succeed(op, accounts, &patient_id, "password", json!({}));
    }
    otp::issue(op, accounts, &member, channel)
}
