//! A real HTTP receiver on 127.0.0.1 for the tests: records every request, answers with the
//! statuses it is told to, and plays an OAuth 2.0 token endpoint at `/token`.

#![allow(dead_code)] // Each test file uses a different subset of these helpers.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One queued answer: status, extra headers, body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What the receiver does, changed by the test while it runs.
#[derive(Default)]
pub struct Behaviour {
    /// Answers for the next requests to any path but `/token`, in order; `200 ok` when empty.
    pub answers: VecDeque<Answer>,
    /// Wait this long before answering a non-token request.
    pub delay: Duration,
    /// When set, non-token requests must carry `Authorization: Bearer <this>`, or get 401.
    pub required_token: Option<String>,
    /// When set, the token endpoint answers this status (and a JSON error) instead of a token.
    pub token_failure: Option<u16>,
    /// `expires_in` of issued tokens; absent when `None`.
    pub token_expires_in: Option<u64>,
    /// Make each newly issued token the required one (a server that accepts only its latest).
    pub require_latest_token: bool,
}

#[derive(Default)]
pub struct Shared {
    pub behaviour: Mutex<Behaviour>,
    pub requests: Mutex<Vec<Recorded>>,
    pub token_requests: Mutex<Vec<Recorded>>,
    pub tokens_issued: Mutex<u32>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let shared = Arc::new(Shared::default());
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Receiver { addr, shared, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn behave(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.shared.behaviour.lock().unwrap());
    }

    /// Queues one answer.
    pub fn answer(&self, status: u16, body: &str) {
        self.answer_with(status, &[], body);
    }

    pub fn answer_with(&self, status: u16, headers: &[(&str, &str)], body: &str) {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.behave(|b| {
            b.answers.push_back(Answer {
                status,
                headers,
                body: body.to_string(),
            })
        });
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn token_requests(&self) -> Vec<Recorded> {
        self.shared.token_requests.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests have come (panics after 20 s) and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} requests came, not {n}",
                requests.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        method: method.to_string(),
        path: uri.to_string(),
        headers,
        body,
    };
    if uri.path() == "/token" {
        return token(&shared, recorded);
    }
    let authorization = recorded.header("authorization").map(str::to_string);
    shared.requests.lock().unwrap().push(recorded);
    let (delay, required, answer) = {
        let mut behaviour = shared.behaviour.lock().unwrap();
        let required = behaviour.required_token.clone();
        let unauthorized = required
            .as_ref()
            .is_some_and(|token| authorization.as_deref() != Some(&format!("Bearer {token}")));
        let answer = if unauthorized {
            None
        } else {
            behaviour.answers.pop_front()
        };
        (behaviour.delay, unauthorized, answer)
    };
    tokio::time::sleep(delay).await;
    if required {
        return (StatusCode::UNAUTHORIZED, "invalid_token").into_response();
    }
    let answer = answer.unwrap_or(Answer {
        status: 200,
        headers: Vec::new(),
        body: "ok".into(),
    });
    let mut response = (StatusCode::from_u16(answer.status).unwrap(), answer.body).into_response();
    for (name, value) in answer.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::try_from(name).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

fn token(shared: &Shared, recorded: Recorded) -> Response {
    shared.token_requests.lock().unwrap().push(recorded);
    let mut behaviour = shared.behaviour.lock().unwrap();
    if let Some(status) = behaviour.token_failure {
        return (
            StatusCode::from_u16(status).unwrap(),
            r#"{"error": "invalid_client"}"#,
        )
            .into_response();
    }
    let mut issued = shared.tokens_issued.lock().unwrap();
    *issued += 1;
    let token = format!("tok-{issued}");
    if behaviour.require_latest_token {
        behaviour.required_token = Some(token.clone());
    }
    let mut answer = serde_json::json!({"access_token": token, "token_type": "Bearer"});
    if let Some(expires_in) = behaviour.token_expires_in {
        answer["expires_in"] = expires_in.into();
    }
    ([("content-type", "application/json")], answer.to_string()).into_response()
}
