//! An identity provider on loopback: JWKS, RFC 7662 introspection (HTTP Basic client
//! credentials) and OIDC userInfo, served by a real axum server on 127.0.0.1:0, signing real
//! RS256 JWTs with a test key generated once for these tests (tests/fixtures/idp/; no real
//! system's key). A second key stands in for a forger.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "portal-client";
pub const CLIENT_SECRET: &str = "test-client-secret";

fn key(name: &str) -> EncodingKey {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/idp")
        .join(name);
    EncodingKey::from_rsa_pem(&std::fs::read(path).unwrap()).unwrap()
}

#[derive(Default)]
struct Known {
    /// Opaque token -> its introspection answer.
    opaque: HashMap<String, Value>,
    /// Subject -> userInfo.
    users: HashMap<String, Value>,
}

#[derive(Clone)]
struct PeerState {
    issuer: String,
    jwks: Value,
    known: Arc<Mutex<Known>>,
}

pub struct Idp {
    pub base: String,
    pub issuer: String,
    key: EncodingKey,
    forger: EncodingKey,
    known: Arc<Mutex<Known>>,
}

impl Idp {
    /// Starts a provider whose issuer is `http://127.0.0.1:<port>/<name>`.
    pub async fn start(name: &str) -> Idp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let issuer = format!("{base}/{name}");
        let signing = key("idp-test-key.pem");
        let mut jwk = Jwk::from_encoding_key(&signing, Algorithm::RS256).unwrap();
        jwk.common.key_id = Some("k1".into());
        let keys = serde_json::to_value(JwkSet { keys: vec![jwk] }).unwrap();
        let known = Arc::new(Mutex::new(Known::default()));
        let state = PeerState {
            issuer: issuer.clone(),
            jwks: keys,
            known: known.clone(),
        };
        let app = Router::new()
            .route("/jwks", get(serve_jwks))
            .route("/introspect", post(introspect))
            .route("/userinfo", get(userinfo))
            .with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Idp {
            base,
            issuer,
            key: signing,
            forger: key("forger-test-key.pem"),
            known,
        }
    }

    /// The `[[identity_providers]]` entry for this provider.
    pub fn config(&self, name: &str, extra: &str) -> String {
        format!(
            "[[identity_providers]]\nname = \"{name}\"\nissuer = \"{}\"\naudiences = [\"{CLIENT_ID}\"]\n\
             jwks_uri = \"{b}/jwks\"\nintrospection_endpoint = \"{b}/introspect\"\n\
             client_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n\
             userinfo_endpoint = \"{b}/userinfo\"\nidentifier_claim = \"patient_identifier\"\n\
             {skew}{extra}\n",
            self.issuer,
            b = self.base,
            // `extra` may set its own.
            skew = if extra.contains("clock_skew_secs") {
                ""
            } else {
                "clock_skew_secs = 30\n"
            },
        )
    }

    /// What userInfo says of `sub`.
    pub fn user(&self, sub: &str, identifier: &str, birthdate: &str) {
        self.known.lock().unwrap().users.insert(
            sub.into(),
            json!({ "sub": sub, "patient_identifier": identifier, "birthdate": birthdate,
                "given_name": "Jane", "family_name": "Doe" }),
        );
    }

    /// Claims of a good token for `sub`, valid for an hour.
    pub fn claims(&self, sub: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({ "iss": self.issuer, "sub": sub, "aud": CLIENT_ID, "iat": now, "exp": now + 3600,
            "jti": format!("jti-{}-{}", sub, rand_suffix()) })
    }

    /// A JWT signed with the provider's key.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    /// A JWT signed with another key, claiming the provider's key id.
    pub fn forge(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, claims, &self.forger).unwrap()
    }

    /// An opaque token the introspection endpoint answers for.
    pub fn opaque(&self, sub: &str, active: bool) -> String {
        let token = format!("opaque-{sub}-{}", rand_suffix());
        let now = chrono::Utc::now().timestamp();
        self.known.lock().unwrap().opaque.insert(
            token.clone(),
            json!({ "active": active, "sub": sub, "iss": self.issuer, "aud": CLIENT_ID,
                "exp": now + 3600, "client_id": CLIENT_ID }),
        );
        token
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

async fn serve_jwks(State(s): State<PeerState>) -> Json<Value> {
    Json(s.jwks.clone())
}

async fn introspect(
    State(s): State<PeerState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    // `portal-client:test-client-secret` in base64.
    let expected = "Basic cG9ydGFsLWNsaWVudDp0ZXN0LWNsaWVudC1zZWNyZXQ=";
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "invalid_client" })),
        );
    }
    let token = form.get("token").cloned().unwrap_or_default();
    let answer = s
        .known
        .lock()
        .unwrap()
        .opaque
        .get(&token)
        .cloned()
        .unwrap_or(json!({ "active": false }));
    let _ = &s.issuer;
    (StatusCode::OK, Json(answer))
}

async fn userinfo(State(s): State<PeerState>, headers: HeaderMap) -> (StatusCode, Json<Value>) {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let known = s.known.lock().unwrap();
    let sub = match known.opaque.get(&token) {
        Some(answer) => answer["sub"].as_str().map(str::to_string),
        None => jsonwebtoken::dangerous::insecure_decode_claims::<Value>(&token)
            .ok()
            .and_then(|c| c["sub"].as_str().map(str::to_string)),
    };
    match sub.and_then(|sub| known.users.get(&sub).cloned()) {
        Some(info) => (StatusCode::OK, Json(info)),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "invalid_token" })),
        ),
    }
}
