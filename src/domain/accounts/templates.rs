//! Notification templates: `<dir>/<locale>/<workflow>.txt` for email (the first line is the
//! subject, the rest the body) and `<dir>/<locale>/<workflow>.sms.txt` for texts, read once at
//! start and rendered with `{{name}}` placeholders. Right-to-left locales (Arabic, Hebrew,
//! Persian, Urdu) are marked so the sender can set the text direction.

use std::collections::HashMap;
use std::path::Path;

/// The workflows that send notifications, each needing an email and a text template.
pub const WORKFLOWS: [&str; 7] = [
    "activation-token",
    "registration-complete",
    "password-reset",
    "forgot-username",
    "enrollment-declined",
    // Engagement APIs (issue #7). Invitations (`invitation-<key>`) are checked when asked for.
    "profile-updated",
    "task-assigned",
];

/// The notifications of sign-in and credentials (issue #6).
pub const CREDENTIAL_WORKFLOWS: [&str; 1] = ["sign-in-code"];

/// The notifications of proxy relationships (issue #6), sent to both parties.
pub const PROXY_WORKFLOWS: [&str; 3] = ["proxy-created", "proxy-revoked", "proxy-expired"];

/// The notifications of new records (issue 16), each behind a site switch, and of a new message
/// from a provider (issue 17).
pub const RECORD_WORKFLOWS: [&str; 4] = [
    "record-result",
    "record-document",
    "record-appointment",
    "message-received",
];

/// Every template, by locale and file name.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    by_locale: HashMap<String, HashMap<String, String>>,
    default_locale: String,
}

/// A rendered notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub locale: String,
    pub subject: String,
    pub body: String,
    pub rtl: bool,
}

impl Templates {
    /// Reads every locale folder under `dir`. The default locale must have every workflow.
    pub fn load(dir: &Path, default_locale: &str) -> Result<Templates, String> {
        let mut by_locale = HashMap::new();
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let locale = entry.file_name().to_string_lossy().into_owned();
            let mut files = HashMap::new();
            for file in std::fs::read_dir(entry.path())
                .map_err(|e| e.to_string())?
                .flatten()
            {
                let name = file.file_name().to_string_lossy().into_owned();
                if let Some(stem) = name.strip_suffix(".txt") {
                    let text = std::fs::read_to_string(file.path())
                        .map_err(|e| format!("{}: {e}", file.path().display()))?;
                    files.insert(stem.to_string(), text);
                }
            }
            by_locale.insert(locale, files);
        }
        let templates = Templates {
            by_locale,
            default_locale: default_locale.to_string(),
        };
        for workflow in WORKFLOWS
            .iter()
            .chain(&CREDENTIAL_WORKFLOWS)
            .chain(&PROXY_WORKFLOWS)
            .chain(&RECORD_WORKFLOWS)
        {
            for name in [workflow.to_string(), format!("{workflow}.sms")] {
                if templates.get(default_locale, &name).is_none() {
                    return Err(format!(
                        "{}: no template {default_locale}/{name}.txt",
                        dir.display()
                    ));
                }
            }
        }
        Ok(templates)
    }

    /// Whether the default locale has the template `name` (a workflow chosen at run time, such
    /// as an invitation's content key, must be checked before it is rendered).
    pub fn has(&self, name: &str) -> bool {
        self.get(&self.default_locale, name).is_some()
    }

    fn get(&self, locale: &str, name: &str) -> Option<&String> {
        self.by_locale.get(locale)?.get(name)
    }

    /// The first of `locales` that has this template (a full tag like `ar-SA` falls back to
    /// `ar`), else the default locale.
    fn pick(&self, locales: &[String], name: &str) -> (String, &String) {
        for locale in locales {
            let base = locale.split(['-', '_']).next().unwrap_or(locale);
            for candidate in [locale.as_str(), base] {
                if let Some(text) = self.get(candidate, name) {
                    return (candidate.to_string(), text);
                }
            }
        }
        let text = self
            .get(&self.default_locale, name)
            .expect("checked at load: the default locale has every template");
        (self.default_locale.clone(), text)
    }

    /// The email of `workflow` in the member's language.
    pub fn email(&self, workflow: &str, locales: &[String], vars: &[(&str, &str)]) -> Rendered {
        let (locale, text) = self.pick(locales, workflow);
        let rendered = render(text, vars);
        let (subject, body) = rendered.split_once('\n').unwrap_or((&rendered, ""));
        Rendered {
            rtl: is_rtl(&locale),
            locale,
            subject: subject.trim().to_string(),
            body: body.trim_start_matches('\n').to_string(),
        }
    }

    /// A piece of text (`passphrase-note`) in the member's language, when a template exists.
    pub fn fragment(&self, name: &str, locales: &[String], vars: &[(&str, &str)]) -> Option<String> {
        let found = locales
            .iter()
            .flat_map(|l| [l.as_str(), l.split(['-', '_']).next().unwrap_or(l)])
            .chain(std::iter::once(self.default_locale.as_str()))
            .find_map(|l| self.get(l, name))?;
        Some(render(found, vars).trim().to_string())
    }

    /// The text message of `workflow` in the member's language.
    pub fn sms(&self, workflow: &str, locales: &[String], vars: &[(&str, &str)]) -> Rendered {
        let (locale, text) = self.pick(locales, &format!("{workflow}.sms"));
        Rendered {
            rtl: is_rtl(&locale),
            locale,
            subject: String::new(),
            body: render(text, vars).trim().to_string(),
        }
    }
}

/// Replaces each `{{name}}` with its value; an unknown name is left as it is.
pub fn render(text: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                match vars.iter().find(|(k, _)| *k == name) {
                    Some((_, value)) => out.push_str(value),
                    None => out.push_str(&rest[start..start + 2 + end + 2]),
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

pub fn is_rtl(locale: &str) -> bool {
    let base = locale.split(['-', '_']).next().unwrap_or(locale);
    matches!(base, "ar" | "he" | "fa" | "ur")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_and_unknown_ones_kept() {
        assert_eq!(
            render(
                "Hi {{ name }}, {{token}} {{other}} {{",
                &[("name", "Jane"), ("token", "T")]
            ),
            "Hi Jane, T {{other}} {{"
        );
    }

    #[test]
    fn the_shipped_templates_load_in_english_and_arabic() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
        let templates = Templates::load(&dir, "en").unwrap();
        let vars = [
            ("name", "Jane"),
            ("token", "TOKEN123"),
            ("expires_at", "x"),
            ("link", "L"),
        ];
        let en = templates.email("activation-token", &["fr".into()], &vars);
        assert_eq!(en.locale, "en");
        assert!(!en.rtl);
        assert!(en.body.contains("TOKEN123"), "{}", en.body);
        let ar = templates.email("activation-token", &["ar-SA".into()], &vars);
        assert_eq!(ar.locale, "ar");
        assert!(ar.rtl);
        assert!(ar.body.contains("TOKEN123"));
        assert!(ar.subject.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c)));
        for workflow in WORKFLOWS.iter().chain(&PROXY_WORKFLOWS).chain(&RECORD_WORKFLOWS) {
            let sms = templates.sms(workflow, &["ar".into()], &vars);
            assert_eq!(sms.locale, "ar", "{workflow}");
            assert!(!sms.body.contains("{{name}}"), "{workflow}");
        }
    }
}
