//! External credentials over OpenID Connect / OAuth 2.0: checking a token a member brings from
//! a configured identity provider, and learning who they are.
//!
//! - An ID token or JWT is checked locally: its signature against the provider's JWKS (fetched
//!   over HTTP, kept for five minutes, fetched again when a token names a key not yet seen),
//!   its algorithm against the provider's list (asymmetric only: never `none`, never HMAC),
//!   `iss`, `aud`, `exp` and `nbf` with the allowed clock skew, and `sub`.
//! - An opaque token is checked by the provider's introspection endpoint (RFC 7662, with our
//!   client credentials): it must be `active`, and its `iss`, `aud` and `exp` when given must fit.
//! - userInfo (when configured; always for opaque tokens) gives the patient's unique identifier
//!   and demographics; its `sub` must be the token's.
//!
//! All of this is network I/O: it runs in the request, before the committer is asked to link
//! and sign in (src/domain/identity/credentials.rs), which also refuses a token seen before.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::IdentityProviderConfig;
use crate::domain::identity::secrets;

/// Longest token accepted.
const MAX_TOKEN: usize = 16 * 1024;
/// Largest answer read from a provider.
const MAX_ANSWER: usize = 1024 * 1024;
/// How long fetched keys are trusted before they are fetched again.
const JWKS_TTL: Duration = Duration::from_secs(300);
/// A token naming an unknown key makes us fetch the keys again, at most this often.
const JWKS_REFETCH: Duration = Duration::from_secs(5);

/// The configured providers, with an HTTP client and their fetched keys.
pub struct Providers {
    list: Vec<Provider>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .list
            .iter()
            .map(|p| p.config.name.get_ref().as_str())
            .collect();
        write!(f, "Providers({names:?})")
    }
}

struct Provider {
    config: IdentityProviderConfig,
    algorithms: Vec<Algorithm>,
    jwks: Mutex<Option<(Instant, JwkSet)>>,
}

/// Why a token was not accepted: a stable code and a sentence. `unavailable` means the
/// provider could not be asked (answer 502), not that the token is bad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    pub code: &'static str,
    pub message: String,
    pub unavailable: bool,
}

fn bad(code: &'static str, message: impl Into<String>) -> TokenError {
    TokenError {
        code,
        message: message.into(),
        unavailable: false,
    }
}

fn down(message: impl Into<String>) -> TokenError {
    TokenError {
        code: "provider-unavailable",
        message: message.into(),
        unavailable: true,
    }
}

/// A token the provider vouches for, and who it names.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    /// The patient's unique identifier (as the MPI knows it).
    pub identifier: Option<String>,
    pub identifier_system: Option<String>,
    /// What userInfo (or the token) says of the person: names, birth date, email, phone.
    pub demographics: Value,
    /// `jwt` or `opaque`.
    pub kind: &'static str,
    /// What makes this token recognisable if it comes again: its `jti`, else its SHA-256.
    pub replay_key: String,
    /// Until when it must be remembered (Unix seconds): its expiry plus the clock skew allowed,
    /// past which it could not pass again anyway (see [`remember_until`]).
    pub expires: i64,
}

/// How long a used token is remembered against replay: while it could still pass (its `exp`
/// plus the allowed skew); a token without an expiry, for ever.
pub fn remember_until(exp: Option<i64>, skew_secs: u64) -> i64 {
    match exp {
        Some(exp) => exp.saturating_add(i64::try_from(skew_secs).unwrap_or(i64::MAX)),
        None => i64::MAX,
    }
}

impl Providers {
    pub fn new(configs: &[IdentityProviderConfig]) -> Providers {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client builds");
        Providers {
            list: configs
                .iter()
                .map(|c| Provider {
                    algorithms: c.algorithms.iter().filter_map(|a| a.parse().ok()).collect(),
                    config: c.clone(),
                    jwks: Mutex::new(None),
                })
                .collect(),
            http,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Checks a token, from the named provider or (a JWT) the one whose issuer it names.
    pub async fn verify(&self, provider: Option<&str>, token: &str) -> Result<Verified, TokenError> {
        let token = token.trim();
        if token.is_empty() || token.len() > MAX_TOKEN {
            return Err(bad("token-invalid", "the token is empty or too long"));
        }
        let is_jwt = token.split('.').count() == 3 && jsonwebtoken::decode_header(token).is_ok();
        let chosen = match provider {
            Some(name) => self
                .list
                .iter()
                .find(|p| p.config.name.get_ref() == name)
                .ok_or_else(|| bad("provider-unknown", format!("no identity provider `{name}`")))?,
            None if is_jwt => {
                let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(token)
                    .map_err(|_| bad("token-invalid", "the token's claims are not readable"))?;
                let iss = claims["iss"].as_str().unwrap_or_default();
                self.list.iter().find(|p| p.config.issuer == iss).ok_or_else(|| {
                    bad(
                        "token-issuer",
                        "no configured identity provider issues this token",
                    )
                })?
            }
            None => match self.list.as_slice() {
                [one] => one,
                _ => {
                    return Err(bad(
                        "provider-required",
                        "name the identity provider of an opaque token",
                    ));
                }
            },
        };
        if is_jwt && chosen.config.jwks_uri.is_some() {
            self.verify_jwt(chosen, token).await
        } else if chosen.config.introspection_endpoint.is_some() {
            self.introspect(chosen, token).await
        } else {
            Err(bad("token-invalid", "the token is not a signed JWT"))
        }
    }

    async fn verify_jwt(&self, p: &Provider, token: &str) -> Result<Verified, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| bad("token-invalid", "the token's header is not readable"))?;
        if !p.algorithms.contains(&header.alg) {
            return Err(bad(
                "token-algorithm",
                format!("{:?} is not an algorithm this provider may sign with", header.alg),
            ));
        }
        let key = self.key_for(p, header.kid.as_deref(), header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = p.algorithms.clone();
        validation.leeway = p.config.clock_skew_secs;
        validation.validate_nbf = true;
        validation.set_issuer(&[p.config.issuer.as_str()]);
        validation.set_audience(&p.config.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => bad("token-expired", "the token has expired"),
            ErrorKind::ImmatureSignature => bad("token-not-yet-valid", "the token is not valid yet"),
            ErrorKind::InvalidAudience => bad("token-audience", "the token is not meant for us"),
            ErrorKind::InvalidIssuer => bad("token-issuer", "the token's issuer is not this provider"),
            ErrorKind::InvalidSignature => bad("token-signature", "the token's signature is not right"),
            ErrorKind::InvalidAlgorithm => bad("token-algorithm", "the token's algorithm is not accepted"),
            ErrorKind::MissingRequiredClaim(c) => bad("token-invalid", format!("the token has no `{c}`")),
            _ => bad("token-invalid", "the token is not valid"),
        })?;
        let claims = data.claims;
        let subject = claims["sub"].as_str().unwrap_or_default().to_string();
        if subject.is_empty() {
            return Err(bad("token-invalid", "the token names no subject"));
        }
        let now = chrono::Utc::now().timestamp();
        if let Some(iat) = claims["iat"].as_i64()
            && iat > now + p.config.clock_skew_secs as i64
        {
            return Err(bad("token-not-yet-valid", "the token was issued in the future"));
        }
        let replay_key = match claims["jti"].as_str() {
            Some(jti) if !jti.is_empty() => format!("jti:{jti}"),
            _ => format!("sha256:{}", secrets::hex(&Sha256::digest(token.as_bytes()))),
        };
        let expires = remember_until(claims["exp"].as_i64(), p.config.clock_skew_secs);
        self.finish(p, token, "jwt", subject, claims, replay_key, expires)
            .await
    }

    /// The key a JWT names: from the cached JWKS, or fetched again when it is not there.
    async fn key_for(
        &self,
        p: &Provider,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, TokenError> {
        let pick = |set: &JwkSet| -> Option<DecodingKey> {
            let jwk = match kid {
                Some(kid) => set.find(kid)?,
                None => match set.keys.as_slice() {
                    [one] => one,
                    _ => return None,
                },
            };
            if jwk
                .common
                .key_algorithm
                .is_some_and(|a| a.to_string() != format!("{alg:?}"))
            {
                return None;
            }
            DecodingKey::from_jwk(jwk).ok()
        };
        let cached = {
            let guard = p.jwks.lock().expect("the key cache lock");
            guard.as_ref().map(|(at, set)| (at.elapsed(), pick(set)))
        };
        match cached {
            Some((age, Some(key))) if age < JWKS_TTL => return Ok(key),
            Some((age, None)) if age < JWKS_REFETCH => {
                return Err(bad(
                    "token-signature",
                    "the token names a key the provider does not have",
                ));
            }
            _ => {}
        }
        let uri = p
            .config
            .jwks_uri
            .as_deref()
            .expect("checked: a JWT provider has jwks_uri");
        let answer = self.fetch(self.http.get(uri)).await?;
        let set: JwkSet =
            serde_json::from_value(answer).map_err(|e| down(format!("the provider's keys: {e}")))?;
        let key = pick(&set);
        *p.jwks.lock().expect("the key cache lock") = Some((Instant::now(), set));
        key.ok_or_else(|| {
            bad(
                "token-signature",
                "the token names a key the provider does not have",
            )
        })
    }

    async fn introspect(&self, p: &Provider, token: &str) -> Result<Verified, TokenError> {
        let endpoint = p
            .config
            .introspection_endpoint
            .as_deref()
            .expect("checked by the caller");
        let request = self
            .http
            .post(endpoint)
            .basic_auth(
                p.config.client_id.clone().unwrap_or_default(),
                p.config.client_secret.clone(),
            )
            .form(&[("token", token), ("token_type_hint", "access_token")]);
        let answer = self.fetch(request).await?;
        if answer["active"] != json!(true) {
            return Err(bad(
                "token-inactive",
                "the provider says this token is not active",
            ));
        }
        if let Some(iss) = answer["iss"].as_str()
            && iss != p.config.issuer
        {
            return Err(bad("token-issuer", "the token's issuer is not this provider"));
        }
        let audiences: Vec<&str> = match &answer["aud"] {
            Value::String(a) => vec![a.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !audiences.is_empty()
            && !audiences
                .iter()
                .any(|a| p.config.audiences.iter().any(|b| b == a))
        {
            return Err(bad("token-audience", "the token is not meant for us"));
        }
        let now = chrono::Utc::now().timestamp();
        let skew = p.config.clock_skew_secs as i64;
        if let Some(exp) = answer["exp"].as_i64()
            && exp + skew < now
        {
            return Err(bad("token-expired", "the token has expired"));
        }
        let expires = remember_until(answer["exp"].as_i64(), p.config.clock_skew_secs);
        let subject = answer["sub"].as_str().unwrap_or_default().to_string();
        let replay_key = format!("sha256:{}", secrets::hex(&Sha256::digest(token.as_bytes())));
        self.finish(p, token, "opaque", subject, answer, replay_key, expires)
            .await
    }

    /// userInfo (when configured), the identifier and the demographics.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        p: &Provider,
        token: &str,
        kind: &'static str,
        subject: String,
        claims: Value,
        replay_key: String,
        expires: i64,
    ) -> Result<Verified, TokenError> {
        let mut subject = subject;
        let info = match &p.config.userinfo_endpoint {
            Some(uri) => {
                let info = self.fetch(self.http.get(uri).bearer_auth(token)).await?;
                let info_sub = info["sub"].as_str().unwrap_or_default();
                if subject.is_empty() {
                    subject = info_sub.to_string();
                } else if info_sub != subject {
                    return Err(bad(
                        "userinfo-mismatch",
                        "userInfo names another subject than the token",
                    ));
                }
                info
            }
            None => Value::Null,
        };
        if subject.is_empty() {
            return Err(bad("token-invalid", "the token names no subject"));
        }
        let claim = p.config.identifier_claim.as_str();
        let identifier = [&info[claim], &claims[claim]].into_iter().find_map(|v| match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        let source = if info.is_object() { &info } else { &claims };
        let mut demographics = serde_json::Map::new();
        for field in [
            "given_name",
            "family_name",
            "name",
            "birthdate",
            "email",
            "phone_number",
            "gender",
        ] {
            if let Some(v) = source.get(field).filter(|v| !v.is_null()) {
                demographics.insert(field.into(), v.clone());
            }
        }
        Ok(Verified {
            provider: p.config.name.get_ref().clone(),
            issuer: p.config.issuer.clone(),
            subject,
            identifier,
            identifier_system: p.config.identifier_system.clone(),
            demographics: Value::Object(demographics),
            kind,
            replay_key,
            expires,
        })
    }

    /// Sends a request to a provider and reads its JSON answer (bounded in size).
    async fn fetch(&self, request: reqwest::RequestBuilder) -> Result<Value, TokenError> {
        let mut response = request
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| down(format!("the identity provider could not be reached: {e}")))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| down(format!("the identity provider's answer: {e}")))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER {
                return Err(down("the identity provider's answer is too large"));
            }
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(bad(
                "token-rejected",
                format!("the identity provider refused the token ({status})"),
            ));
        }
        if !status.is_success() {
            return Err(down(format!("the identity provider answered {status}")));
        }
        serde_json::from_slice(&body).map_err(|_| down("the identity provider's answer is not JSON"))
    }
}
