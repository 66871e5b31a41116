//! Password sign-in: the result of checking a username and password (the argon2 check itself
//! runs off the committer thread; its verdict is passed in), the failure count, and the
//! two-factor step that follows a right password (src/domain/identity/otp.rs). Every result, success or
//! failure, is an audit record; failures are written (they count), so a failed sign-in is an
//! applied command whose answer says why.
//!
//! Nothing locks an account: a hard lock let any stranger shut a member out. Failures are
//! counted here (`SignInState`, by patient id, for the staff view and the audit trail) and the
//! waits they lead to are kept per account and per client address in memory
//! (src/domain/identity/throttle.rs), applied by the API before a password is even checked. An unknown
//! username and a wrong password answer alike (`invalid-credentials`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::accounts::Accounts;
use crate::domain::accounts::audit;
use crate::domain::accounts::members::{self, Status};
use crate::domain::accounts::notify::Sent;
use crate::domain::identity::otp;
use crate::domain::identity::sessions;
use crate::domain::op::Op;
use crate::domain::refusal::Refusal;
use crate::store::{Keyspace, Reader, StoreError};

/// The audit target of sign-ins that name no known member.
pub const ANONYMOUS_TARGET: &str = "sign-in";

/// Failed sign-ins in a row (a record written before issue #12 may still hold a
/// `locked_until`, which nothing reads any more).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInState {
    pub failures: u32,
    #[serde(default)]
    pub last_failure_at: Option<String>,
    #[serde(default)]
    pub last_sign_in_at: Option<String>,
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
    /// Refused, with a stable code (`invalid-credentials`, `not-active`, `code-wrong`,
    /// `code-expired`, `code-used`, `too-many-attempts`, `challenge-unknown`, `token-replayed` ...).
    Failed { code: &'static str, message: String },
}

impl Outcome {
    pub fn failed(code: &'static str, message: impl Into<String>) -> Outcome {
        Outcome::Failed {
            code,
            message: message.into(),
        }
    }

    /// Whether this answer counts as a failed attempt for the waits: a wrong password or code,
    /// or an unknown username (which must count the same, or it would show).
    pub fn counts_as_failure(&self) -> bool {
        matches!(
            self,
            Outcome::Failed {
                code: "invalid-credentials" | "code-wrong",
                ..
            }
        )
    }
}

/// Records a failure of a known member's sign-in: counts it and audits it. Returns the
/// outcome to answer with.
pub fn fail(
    op: &mut Op<'_, '_>,
    patient_id: &str,
    code: &'static str,
    message: &str,
    details: Value,
) -> Result<Outcome, Refusal> {
    let mut st = state(op.tx, patient_id)?;
    st.failures = st.failures.saturating_add(1);
    st.last_failure_at = Some(op.now.clone());
    let target = audit::member_target(patient_id);
    let mut details = details;
    details["result"] = json!(code);
    details["failures"] = json!(st.failures);
    audit::record(op, "signin.failure", &target, None, details);
    save_state(op, patient_id, &st);
    Ok(Outcome::failed(code, message))
}

/// A refusal that is not the member's fault and does not count (not active ...),
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
    st.last_sign_in_at = Some(op.now.clone());
    save_state(op, patient_id, &st);
    let (token, session) = sessions::open(op, accounts, patient_id, method)?;
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

/// Applies a password check: counts a failure, refuses an inactive account, or (the password
/// right) sends a one-time code, or signs in at once when two-factor is off.
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
    if !password_ok {
        return fail(
            op,
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
