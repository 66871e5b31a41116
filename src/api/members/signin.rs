//! Sign-in for the portal (scope `self-service`): username + password, then the one-time code
//! (two-factor), or an external credential (a token from a configured identity provider); the
//! member's own session endpoints (`Authorization: Bearer <session token>`), and the member's
//! session beside the portal's key on self-service endpoints (`X-Member-Session`); and the staff
//! view of a member's credentials and sign-in state (Member Account Manager).
//!
//! Passwords are checked with argon2 off the async threads and off the committer; tokens are
//! checked against their provider before the committer is asked to link and sign in. Secrets
//! arrive in bodies only and are never journaled, logged or audited.
//!
//! Failed attempts make the next ones wait, per typed username and per client address
//! (src/domain/identity/throttle.rs): an attempt inside its wait is answered 429 `sign-in-delayed` with
//! `Retry-After` before anything is checked, the same for a known or an unknown username. An
//! unknown username runs the same argon2 check (against a dummy hash) and gets the same answer
//! as a wrong password.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::reply::{blocking, body, command, error, ok, read};
use crate::api::AppState;
use crate::api::auth::{Authed, allow, allow_scope};
use crate::api::limit::{ClientAddr, with_retry_after};
use crate::domain::accounts::members;
use crate::domain::accounts::roles::{Caller, Role, Scope};
use crate::domain::identity::credentials::{self, Match};
use crate::domain::identity::sessions::{self, Session};
use crate::domain::identity::signin::{self, ANONYMOUS_TARGET, Checked, CodeChannel, Outcome};
use crate::domain::identity::throttle::{SignInThrottle, retry_after_seconds};
use crate::domain::{identity::otp, identity::secrets};
use crate::store::Keyspace;

/// A hash no password matches, checked for unknown usernames so they take as long as known ones.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| secrets::hash_password("no account has this password"));

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    username: String,
    password: String,
    /// Where the one-time code goes; default: the member's preference.
    #[serde(default)]
    channel: Option<CodeChannel>,
}

/// `POST /api/sign-in`: 202 and a challenge when a code was sent, 200 and a session when
/// two-factor is off; 401 wrong credentials (unknown username alike), 429 while failures make
/// this account or address wait, 403 not active or portal credentials not accepted here.
pub async fn password(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow_scope(&caller, Scope::SelfService)?;
    let request: PasswordBody = body(&bytes)?;
    if !state.members.credentials.mode.get_ref().portal() {
        return Err(error(
            StatusCode::FORBIDDEN,
            "portal-credentials-disabled",
            "this site signs members in with external credentials only",
        ));
    }
    let account = SignInThrottle::account(&request.username);
    let throttle = &state.members.sign_in_throttle;
    throttle
        .begin(Some(&account), client, Instant::now())
        .map_err(delayed)?;
    let username = account.clone();
    let found = read(&state, move |store, _| {
        if username.is_empty() || username.len() > 64 {
            return Ok(None);
        }
        let Some(id) = store.get(Keyspace::UsernameIndex, username.as_bytes())? else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(&id).into_owned();
        Ok(members::load(store, &id)?.map(|m| (id, m.password_hash)))
    })
    .await?;
    let password = request.password;
    // The same argon2 work whether or not the account exists: the time tells nothing.
    let checked = blocking(move || {
        let (patient_id, hash) = match found {
            Some((patient_id, hash)) => (Some(patient_id), hash),
            None => (None, None),
        };
        let hash = hash.as_deref().unwrap_or(DUMMY_HASH.as_str());
        let password_ok = password.len() <= 1024 && secrets::verify_password(&password, hash);
        match patient_id {
            Some(patient_id) => Checked::Member {
                patient_id,
                password_ok,
            },
            None => Checked::UnknownUser,
        }
    })
    .await?;
    let patient = match &checked {
        Checked::Member { patient_id, .. } => Some(patient_id.clone()),
        Checked::UnknownUser => None,
    };
    let journal = match &patient {
        Some(id) => format!("sign-in password member {id}"),
        None => "sign-in password (unknown username)".into(),
    };
    let channel = request.channel;
    let (outcome, _) = command(
        &state,
        "member sign-in",
        &caller,
        journal,
        patient,
        move |op, accounts| signin::password(op, accounts, checked, channel),
    )
    .await?;
    counted(&state, &outcome, Some(&account), client);
    Ok(answer(outcome))
}

/// Settles an attempt the throttle counted as a failure when it began: a wrong password or
/// code stays counted; anything else is taken back, and a completed sign-in clears the
/// account's failures.
fn counted(state: &AppState, outcome: &Outcome, account: Option<&str>, client: std::net::IpAddr) {
    if !outcome.counts_as_failure() {
        let signed_in = matches!(outcome, Outcome::SignedIn { .. });
        state
            .members
            .sign_in_throttle
            .not_failed(account, client, signed_in);
    }
}

/// 429: failures made this account or address wait.
fn delayed(wait: Duration) -> Response {
    let seconds = retry_after_seconds(wait);
    let response = ok(
        StatusCode::TOO_MANY_REQUESTS,
        json!({
            "error": format!("too many failed sign-ins: wait {seconds} s and try again"),
            "code": "sign-in-delayed",
            "retry_after": seconds,
        }),
    );
    with_retry_after(response, wait)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    challenge: String,
    code: String,
}

/// `POST /api/sign-in/code`: the one-time code with its challenge; 200 and a session.
pub async fn code(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow_scope(&caller, Scope::SelfService)?;
    let request: CodeBody = body(&bytes)?;
    // Wrong codes count for the account the challenge belongs to, as wrong passwords do.
    let challenge = request.challenge.clone();
    let account = read(&state, move |store, accounts| {
        if challenge.len() > 256 {
            return Ok(None);
        }
        let key = accounts.key.hash(&challenge);
        let Some(bytes) = store.get(Keyspace::OtpChallenge, key.as_bytes())? else {
            return Ok(None);
        };
        let Ok(record) = serde_json::from_slice::<otp::Challenge>(&bytes) else {
            return Ok(None);
        };
        let member = members::load(store, &record.patient_id)?;
        Ok(Some(
            member
                .and_then(|m| m.username)
                .map(|u| SignInThrottle::account(&u))
                .unwrap_or(record.patient_id),
        ))
    })
    .await?;
    state
        .members
        .sign_in_throttle
        .begin(account.as_deref(), client, Instant::now())
        .map_err(delayed)?;
    let (outcome, _) = command(
        &state,
        "member sign-in",
        &caller,
        "sign-in one-time code".into(),
        None,
        move |op, accounts| otp::verify(op, accounts, &request.challenge, &request.code),
    )
    .await?;
    counted(&state, &outcome, account.as_deref(), client);
    Ok(answer(outcome))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalBody {
    /// An ID token, a JWT or an opaque access token.
    token: String,
    /// The `[[identity_providers]]` name; optional for a JWT (its issuer names it) or when
    /// only one provider is configured.
    #[serde(default)]
    provider: Option<String>,
}

/// `POST /api/sign-in/external`: a token from an identity provider; 200 and a session, the
/// credential linked to the matched member the first time.
pub async fn external(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow_scope(&caller, Scope::SelfService)?;
    let request: ExternalBody = body(&bytes)?;
    // Tokens name no account: external sign-ins count for the client address only.
    let throttle = &state.members.sign_in_throttle;
    throttle.begin(None, client, Instant::now()).map_err(delayed)?;
    if !state.members.credentials.mode.get_ref().external() {
        return Err(error(
            StatusCode::FORBIDDEN,
            "external-credentials-disabled",
            "this site signs members in with portal credentials only",
        ));
    }
    let verified = state
        .members
        .providers
        .verify(request.provider.as_deref(), &request.token)
        .await;
    let verified = match verified {
        Ok(v) => v,
        Err(e) => {
            // A token refused by its checks is a sign-in result too: audited.
            let details = json!({ "step": "external", "provider": request.provider, "result": e.code });
            let code = e.code;
            let message = e.message.clone();
            command(
                &state,
                "member sign-in",
                &caller,
                format!("sign-in external token refused: {code}"),
                None,
                move |op, _| Ok(signin::refuse(op, ANONYMOUS_TARGET, code, &message, details)),
            )
            .await?;
            let status = if e.unavailable {
                // The provider's trouble is not the caller's failure.
                throttle.not_failed(None, client, false);
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::UNAUTHORIZED
            };
            return Err(error(status, e.code, &e.message));
        }
    };
    let token = verified.clone();
    let matched = read(&state, move |store, _| {
        // Known credentials need no match; the command finds them itself.
        if credentials::find(store, &token.issuer, &token.subject)?.is_some() {
            return Ok(Match::None("linked", String::new()));
        }
        Ok(credentials::match_patient(store, &token)?)
    })
    .await?;
    let patient = match &matched {
        Match::Patient(id) => Some(id.clone()),
        Match::None(..) => None,
    };
    let journal = format!("sign-in external provider {}", verified.provider);
    let (outcome, _) = command(
        &state,
        "member sign-in",
        &caller,
        journal,
        patient,
        move |op, accounts| credentials::sign_in(op, accounts, &verified, matched),
    )
    .await?;
    if let Outcome::SignedIn { .. } = outcome {
        throttle.not_failed(None, client, true);
    }
    Ok(answer(outcome))
}

fn answer(outcome: Outcome) -> Response {
    match outcome {
        Outcome::SignedIn {
            patient_id,
            session,
            expires_at,
            method,
        } => ok(
            StatusCode::OK,
            json!({ "status": "signed-in", "patient_id": patient_id, "session": session,
                "expires_at": expires_at, "method": method }),
        ),
        Outcome::CodeSent {
            challenge,
            expires_at,
            sent,
        } => ok(
            StatusCode::ACCEPTED,
            json!({ "status": "code-sent", "challenge": challenge, "expires_at": expires_at,
                "notification": sent }),
        ),
        Outcome::Failed { code, message } => {
            let status = match code {
                "not-active" | "not-a-member" => StatusCode::FORBIDDEN,
                "code-not-sent" | "ambiguous-match" => StatusCode::CONFLICT,
                _ => StatusCode::UNAUTHORIZED,
            };
            ok(status, json!({ "error": message, "code": code }))
        }
    }
}

/// A member signed in: the session token as `Authorization: Bearer <token>`.
pub struct MemberSession {
    pub token: String,
    pub session: Session,
}

impl FromRequestParts<AppState> for MemberSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
        lookup(
            state,
            token,
            "sign in first: send the session token as a bearer token",
        )
        .await
    }
}

/// The header that carries a member's session beside the portal's API key.
pub const SESSION_HEADER: &str = "x-member-session";

/// The member's session on a self-service endpoint: the token in `X-Member-Session`, while
/// `Authorization` carries the portal's API key (checked first, so another client gets its
/// 403 before any word about sessions).
pub async fn portal_session(state: &AppState, headers: &HeaderMap) -> Result<MemberSession, Response> {
    let token = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
    lookup(
        state,
        token,
        "this action is the member's own: send their session token as X-Member-Session",
    )
    .await
}

/// The live session `token` stands for, or a 401 (`unauthenticated` when there is none,
/// `session-unknown` when it is unknown, expired or ended).
async fn lookup(state: &AppState, token: Option<&str>, missing: &str) -> Result<MemberSession, Response> {
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()).map(str::to_string) else {
        return Err(challenge(error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            missing,
        )));
    };
    let t = token.clone();
    let found = read(state, move |store, accounts| {
        Ok(sessions::find(store, accounts, &t, &sessions::now())?)
    })
    .await?;
    match found {
        Some(session) => Ok(MemberSession { token, session }),
        None => Err(challenge(error(
            StatusCode::UNAUTHORIZED,
            "session-unknown",
            "the session is not known, has expired or was ended: sign in again",
        ))),
    }
}

fn challenge(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"tributary-member\""),
    );
    response
}

/// `GET /api/me`: the signed-in member, their external credentials and their session.
pub async fn me(State(state): State<AppState>, me: MemberSession) -> Result<Response, Response> {
    let id = me.session.patient_id.clone();
    let (member, links) = read(&state, move |store, _| {
        let member = members::require(store, &id)?;
        let links = credentials::of_member(store, &id)?;
        Ok((member, links))
    })
    .await?;
    Ok(ok(
        StatusCode::OK,
        json!({
            "member": {
                "patient_id": member.patient_id,
                "name": member.name,
                "status": member.status.name(),
                "username": member.username,
                "contact": member.contact,
            },
            "credentials": links.iter().map(credentials::view).collect::<Vec<_>>(),
            "session": { "method": me.session.method, "issued_at": me.session.issued_at,
                "expires_at": me.session.expires_at },
        }),
    ))
}

/// `POST /api/sign-out`: ends the session (204).
pub async fn sign_out(State(state): State<AppState>, me: MemberSession) -> Result<Response, Response> {
    let caller = Caller {
        name: format!("member:{}", me.session.patient_id),
        roles: vec![],
        scopes: vec![],
    };
    let token = me.token;
    let patient = me.session.patient_id.clone();
    let _ = command(
        &state,
        "member sign-out",
        &caller,
        format!("sign-out member {patient}"),
        Some(patient.clone()),
        move |op, accounts| {
            sessions::close(op, accounts, &token)?;
            crate::domain::accounts::audit::record(
                op,
                "signin.sign-out",
                &crate::domain::accounts::audit::member_target(&patient),
                None,
                json!({}),
            );
            Ok(())
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/members/{id}/credentials` (Member Account Manager): linked external credentials
/// and the sign-in state (failures in a row, the wait they lead to now).
pub async fn member_credentials(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    allow(&caller, &[Role::MemberAccountManager])?;
    let (links, st, username) = read(&state, move |store, _| {
        let member = members::require(store, &id)?;
        Ok((
            credentials::of_member(store, &id)?,
            signin::state(store, &id)?,
            member.username,
        ))
    })
    .await?;
    let wait = username.and_then(|u| {
        state
            .members
            .sign_in_throttle
            .account_wait(&SignInThrottle::account(&u), Instant::now())
    });
    Ok(ok(
        StatusCode::OK,
        json!({
            "credentials": links.iter().map(credentials::view).collect::<Vec<_>>(),
            "sign_in": { "failures": st.failures,
                "wait_seconds": wait.map(retry_after_seconds).unwrap_or(0),
                "last_failure_at": st.last_failure_at, "last_sign_in_at": st.last_sign_in_at },
        }),
    ))
}

/// The OpenAPI entries of these routes (chained into `openapi::document`).
pub const OPERATIONS: &[super::openapi::Operation] = &[
    super::openapi::Operation {
        method: "post",
        path: "/api/sign-in",
        summary: "Sign in with username and password: 202 and a `challenge` when a one-time code was sent (two-factor), 200 and a `session` when two-factor is off; refusals: invalid-credentials (401, the same for an unknown username), sign-in-delayed (429 with Retry-After, after repeated failures of the account or the client address), not-active (403), code-not-sent (409), portal-credentials-disabled (403).",
        roles: "external-system with scope self-service",
        query: &[],
        body: &["username!:string", "password!:string", "channel:string"],
        success: 202,
    },
    super::openapi::Operation {
        method: "post",
        path: "/api/sign-in/code",
        summary: "Complete a sign-in with the one-time code and its challenge: 200 and a `session`; refusals (401): code-wrong, code-expired, code-used, too-many-attempts, challenge-unknown; sign-in-delayed (429 with Retry-After).",
        roles: "external-system with scope self-service",
        query: &[],
        body: &["challenge!:string", "code!:string"],
        success: 200,
    },
    super::openapi::Operation {
        method: "post",
        path: "/api/sign-in/external",
        summary: "Sign in with an identity provider's ID token, JWT or opaque token: 200 and a `session`; the credential is linked to the member the provider's patient identifier matches. Refusals (401): token-signature, token-expired, token-not-yet-valid, token-audience, token-issuer, token-algorithm, token-invalid, token-inactive, token-rejected, token-replayed, provider-unknown, provider-required, userinfo-mismatch, identifier-missing, no-match, demographics-mismatch; not-a-member / not-active (403); sign-in-delayed (429 with Retry-After); provider-unavailable (502); external-credentials-disabled (403).",
        roles: "external-system with scope self-service",
        query: &[],
        body: &["token!:string", "provider:string"],
        success: 200,
    },
    super::openapi::Operation {
        method: "post",
        path: "/api/sign-out",
        summary: "End the session (204).",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &[],
        success: 204,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me",
        summary: "The signed-in member, their external credentials and their session.",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/members/{id}/credentials",
        summary: "A member's linked external credentials and sign-in state (failures in a row, wait_seconds before the next attempt).",
        roles: "member-account-manager",
        query: &[],
        body: &[],
        success: 200,
    },
];
