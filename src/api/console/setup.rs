//! The console's read-only views of how the engine is set up: which mapping each channel uses,
//! the golden tests of the mappings run on request with their field differences, and the
//! configuration file with its secrets redacted.

use std::path::PathBuf;
use std::sync::Mutex;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::html::{esc, page, see_other};
use super::session::Analyst;
use crate::api::AppState;
use crate::mapping::{MappingSet, run_golden_tests};

/// What the setup pages show, taken from the config in force (the one the engine started with,
/// or the last one reloaded).
pub struct ConsoleSetup {
    in_force: Mutex<InForce>,
    pub mappings_dir: PathBuf,
    /// When the config was last read again (SIGHUP or the console), and what came of it.
    last_reload: Mutex<Option<(String, Result<String, String>)>>,
}

/// What the pages show of the config in force.
#[derive(Clone, Default)]
struct InForce {
    /// Each channel's name and mapping, in config order.
    channels: Vec<(String, String)>,
    /// The config file's path, and its text with secret values redacted.
    file: String,
    redacted: String,
}

impl InForce {
    fn of(config: &crate::config::Config) -> InForce {
        let (file, text) = config.source();
        InForce {
            channels: config
                .channels
                .iter()
                .map(|c| (c.name.get_ref().clone(), c.mapping.get_ref().clone()))
                .collect(),
            file: file.to_string(),
            redacted: redact(text),
        }
    }
}

impl ConsoleSetup {
    pub fn of(config: &crate::config::Config) -> ConsoleSetup {
        ConsoleSetup {
            in_force: Mutex::new(InForce::of(config)),
            mappings_dir: config.mappings.dir.clone(),
            last_reload: Mutex::new(None),
        }
    }

    /// Shows a reloaded config from now on.
    pub fn in_force(&self, config: &crate::config::Config) {
        if let Ok(mut in_force) = self.in_force.lock() {
            *in_force = InForce::of(config);
        }
    }

    fn current(&self) -> InForce {
        self.in_force.lock().map(|i| i.clone()).unwrap_or_default()
    }

    /// Notes a reload of the config: what is in force, or why it failed.
    pub fn reloaded(&self, outcome: Result<String, String>) {
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        if let Ok(mut last) = self.last_reload.lock() {
            *last = Some((at, outcome));
        }
    }

    fn reload_note(&self) -> String {
        match self.last_reload.lock().ok().and_then(|l| l.clone()) {
            None => "<p class=\"note\">Not reloaded since start.</p>".into(),
            Some((at, Ok(summary))) => {
                format!("<p>Reloaded at {}: {}.</p>", esc(&at), esc(&summary))
            }
            Some((at, Err(error))) => format!(
                "<p class=\"error\">The reload at {} failed, and the config in force stays: {}</p>",
                esc(&at),
                esc(&error)
            ),
        }
    }
}

/// Keys whose values are secrets, or lead to them.
const SECRET_KEYS: [&str; 6] = [
    "password",
    "secret",
    "token",
    "key_sha256",
    "api_key",
    "private_key",
];

/// The config text with the value of every secret key replaced, and the password of any URL
/// (`scheme://user:password@host`) too.
fn redact(text: &str) -> String {
    text.lines()
        .map(|line| {
            let key = line.split('=').next().unwrap_or("").trim().to_lowercase();
            if line.contains('=')
                && !line.trim_start().starts_with('#')
                && SECRET_KEYS.iter().any(|s| key.contains(s))
            {
                let (left, _) = line.split_once('=').unwrap_or((line, ""));
                return format!("{left}= \"[redacted]\"");
            }
            redact_url_password(line)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn redact_url_password(line: &str) -> String {
    let Some(scheme_end) = line.find("://") else {
        return line.to_string();
    };
    let rest = &line[scheme_end + 3..];
    let authority_end = rest.find(['/', '"', ' ']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if rest[..at].contains(':') => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{}://{user}:[redacted]{}", &line[..scheme_end], &rest[at..])
        }
        _ => line.to_string(),
    }
}

/// `GET /console/mappings`: each channel's mapping, and a button to run the golden tests.
pub async fn mappings(State(state): State<AppState>, Analyst(caller): Analyst) -> Response {
    page(
        StatusCode::OK,
        "Mappings",
        Some(&caller.actor()),
        &mappings_body(&state, None),
    )
}

/// `POST /console/mappings/test`: the golden tests of the mappings folder, each case passed or
/// failed with its field differences and the rules that fired.
pub async fn test(State(state): State<AppState>, Analyst(caller): Analyst) -> Response {
    let dir = state.setup.mappings_dir.clone();
    let ran = tokio::task::spawn_blocking(move || {
        let set = MappingSet::load(&dir).map_err(|e| e.to_string())?;
        Ok::<_, String>(run_golden_tests(&dir, &set, &[]))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let results = match ran {
        Ok(report) => {
            let failed = report
                .cases
                .iter()
                .filter(|c| c.error.is_some() || !c.mismatches.is_empty())
                .count();
            let mut html = format!(
                "<h2>Golden tests</h2><p><strong>{} passed, {failed} failed</strong></p><table><tr><th>case</th><th>mapping</th><th>result</th></tr>",
                report.cases.len() - failed
            );
            for case in &report.cases {
                let mut result = String::new();
                if let Some(error) = &case.error {
                    result.push_str(&format!("<span class=\"error\">{}</span>", esc(error)));
                }
                for mismatch in &case.mismatches {
                    result.push_str(&format!(
                        "<div class=\"error\">{}: expected {}, got {}</div>",
                        esc(&mismatch.path),
                        esc(mismatch.expected.as_deref().unwrap_or("(absent)")),
                        esc(mismatch.got.as_deref().unwrap_or("(absent)"))
                    ));
                }
                if result.is_empty() {
                    result.push_str("passed");
                }
                let case_name = case
                    .case
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                html.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{result}</td></tr>",
                    esc(&case_name),
                    esc(&case.mapping)
                ));
            }
            html.push_str("</table>");
            html
        }
        Err(e) => format!(
            "<p class=\"error\">The mappings could not be loaded: {}</p>",
            esc(&e)
        ),
    };
    page(
        StatusCode::OK,
        "Mappings",
        Some(&caller.actor()),
        &mappings_body(&state, Some(&results)),
    )
}

#[derive(Debug, Deserialize)]
pub struct LineQuery {
    line: Option<usize>,
}

/// `GET /console/mappings/{name}`: a mapping's source as it is on disk now, its lines numbered
/// and anchored (`#L12`); `?line=12` marks the rule an error named.
pub async fn mapping_source(
    State(state): State<AppState>,
    Analyst(caller): Analyst,
    Path(name): Path<String>,
    Query(query): Query<LineQuery>,
) -> Response {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let path = state.setup.mappings_dir.join(format!("{name}.map"));
    let text = if plain {
        std::fs::read_to_string(&path).ok()
    } else {
        None
    };
    let Some(text) = text else {
        return page(
            StatusCode::NOT_FOUND,
            "No such mapping",
            Some(&caller.actor()),
            &format!("<p>The mappings folder has no mapping `{}`.</p>", esc(&name)),
        );
    };
    let mut body = format!(
        "<p class=\"note\">{} as it is on disk now.</p><table class=\"source\"><caption>Lines of {}</caption>",
        esc(&path.display().to_string()),
        esc(&name)
    );
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let marked = query.line == Some(number);
        body.push_str(&format!(
            "<tr id=\"L{number}\"{}><th scope=\"row\">{number}</th><td><code>{}</code>{}</td></tr>",
            if marked { " class=\"failed\"" } else { "" },
            esc(line),
            if marked {
                " <strong>\u{2190} the rule the error names</strong>"
            } else {
                ""
            },
        ));
    }
    body.push_str("</table>");
    page(
        StatusCode::OK,
        &format!("Mapping {name}"),
        Some(&caller.actor()),
        &body,
    )
}

fn mappings_body(state: &AppState, results: Option<&str>) -> String {
    let mut body = String::from("<table><tr><th>channel</th><th>mapping</th></tr>");
    for (channel, mapping) in &state.setup.current().channels {
        body.push_str(&format!(
            "<tr><td>{}</td><td><a href=\"/console/mappings/{m}\">{m}</a></td></tr>",
            esc(channel),
            m = esc(mapping)
        ));
    }
    body.push_str(&format!(
        "</table><p class=\"note\">Mappings folder: {}</p>\
         <form method=\"post\" action=\"/console/mappings/test\"><button>Run the golden tests</button></form>{}",
        esc(&state.setup.mappings_dir.display().to_string()),
        results.unwrap_or("")
    ));
    body
}

/// `GET /console/config`: the configuration the engine started with, secrets redacted.
pub async fn config(State(state): State<AppState>, Analyst(caller): Analyst) -> Response {
    let in_force = state.setup.current();
    let body = format!(
        "{}<form method=\"post\" action=\"/console/config/reload\"><button>Reload the configuration file</button></form>\
         <p class=\"note\">{} as it is in force; secret values are redacted. A reload (this button, or SIGHUP) \
         puts the API clients, channels, destinations and scheduled jobs of the file in force without a restart.</p><pre>{}</pre>",
        state.setup.reload_note(),
        esc(&in_force.file),
        esc(&in_force.redacted)
    );
    page(StatusCode::OK, "Configuration", Some(&caller.actor()), &body)
}

/// `POST /console/config/reload`: the config file read again and put in force, as SIGHUP does;
/// back to the configuration page, which says what came of it.
pub async fn reload(State(state): State<AppState>, Analyst(_caller): Analyst) -> Response {
    let (answer, outcome) = tokio::sync::oneshot::channel();
    if state.reload.send(answer).await.is_ok() {
        let _ = outcome.await;
    }
    see_other("/console/config")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_url_passwords_are_redacted() {
        let text = "password = \"hunter2\"\nkey_sha256 = \"abc\"\nurl = \"postgres://app:s3cret@db:5432/x\"\nhost = \"smtp\"\n# password = \"comment\"";
        let shown = redact(text);
        assert!(
            !shown.contains("hunter2") && !shown.contains("abc") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(shown.contains("postgres://app:[redacted]@db:5432/x"), "{shown}");
        assert!(shown.contains("host = \"smtp\""), "{shown}");
    }
}
