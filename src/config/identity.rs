//! Credentials and sign-in: the `[credentials]` section (which credentials the site accepts,
//! two-factor sign-in, the growing waits after failed sign-ins, session lifetime and the
//! re-authentication window) and the `[[identity_providers]]` whose tokens
//! (ID tokens and JWTs checked against the provider's JWKS, opaque tokens through its
//! introspection endpoint) sign members in with external credentials.

use serde::Deserialize;
use toml::Spanned;

/// Which credentials members sign in with (the seeds' three deployment options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialMode {
    /// Portal credentials only: username and password (+ a one-time code).
    Portal,
    /// External credentials only: tokens of the configured identity providers.
    External,
    /// Both.
    Both,
}

impl CredentialMode {
    pub fn portal(self) -> bool {
        self != CredentialMode::External
    }

    pub fn external(self) -> bool {
        self != CredentialMode::Portal
    }

    pub fn name(self) -> &'static str {
        match self {
            CredentialMode::Portal => "portal",
            CredentialMode::External => "external",
            CredentialMode::Both => "both",
        }
    }
}

/// `[credentials]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    /// `portal`, `external` or `both`.
    #[serde(default = "default_mode")]
    pub mode: Spanned<CredentialMode>,
    /// A password sign-in is completed by a one-time code sent by text or email.
    #[serde(default = "yes")]
    pub two_factor: bool,
    /// How long a one-time code is valid (the seeds: 6 minutes).
    #[serde(default = "default_code_seconds")]
    pub code_valid_seconds: u32,
    /// Wrong codes allowed for one challenge; then it is dead.
    #[serde(default = "default_code_attempts")]
    pub code_max_attempts: u32,
    /// Failed sign-ins (wrong password or code) for one account, within the failure window,
    /// before each further attempt must wait (1 s, then 2, 4, ... up to the cap). Nothing is
    /// locked: the right password still works once the wait has passed.
    #[serde(default = "default_failures")]
    pub max_failed_sign_ins: u32,
    /// Failed sign-ins from one client address, within the failure window, before its
    /// attempts must wait likewise.
    #[serde(default = "default_address_failures")]
    pub address_failed_sign_ins: u32,
    /// The longest wait a run of failures leads to.
    #[serde(default = "default_delay_max")]
    pub sign_in_delay_max_seconds: u32,
    /// Failures older than this are forgotten.
    #[serde(default = "default_failure_window")]
    pub failure_window_seconds: u32,
    /// How long a sign-in session is valid.
    #[serde(default = "default_session_seconds")]
    pub session_seconds: u32,
    /// A change of the email or mobile number sign-in codes go to needs a session opened less
    /// than this long ago (else `reauthentication-required`).
    #[serde(default = "default_reauth_seconds")]
    pub reauth_seconds: u32,
}

impl Default for CredentialsConfig {
    fn default() -> Self {
        CredentialsConfig {
            mode: default_mode(),
            two_factor: true,
            code_valid_seconds: default_code_seconds(),
            code_max_attempts: default_code_attempts(),
            max_failed_sign_ins: default_failures(),
            address_failed_sign_ins: default_address_failures(),
            sign_in_delay_max_seconds: default_delay_max(),
            failure_window_seconds: default_failure_window(),
            session_seconds: default_session_seconds(),
            reauth_seconds: default_reauth_seconds(),
        }
    }
}

fn default_mode() -> Spanned<CredentialMode> {
    Spanned::new(0..0, CredentialMode::Portal)
}

fn yes() -> bool {
    true
}

fn default_code_seconds() -> u32 {
    360
}

fn default_code_attempts() -> u32 {
    5
}

fn default_failures() -> u32 {
    5
}

fn default_address_failures() -> u32 {
    20
}

fn default_delay_max() -> u32 {
    60
}

fn default_failure_window() -> u32 {
    900
}

fn default_reauth_seconds() -> u32 {
    300
}

fn default_session_seconds() -> u32 {
    1800
}

/// One `[[identity_providers]]` entry: an OpenID Connect / OAuth 2.0 provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityProviderConfig {
    /// Names the provider in requests and the audit trail.
    pub name: Spanned<String>,
    /// The `iss` its tokens carry, exactly.
    pub issuer: String,
    /// The `aud` values accepted (our client id(s) at the provider); one must be in the token.
    pub audiences: Vec<String>,
    /// Where its signing keys are (JWKS); needed for ID tokens and JWTs.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// RFC 7662 token introspection; needed for opaque tokens.
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    /// Our client credentials at the introspection endpoint (HTTP Basic).
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// OIDC userInfo: the patient's identifier and demographics. Required for opaque tokens;
    /// without it a JWT must carry the identifier claim itself.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// The claim holding the patient's unique identifier (as the MPI knows it).
    #[serde(default = "default_identifier_claim")]
    pub identifier_claim: String,
    /// The assigning authority of that identifier in the MPI; none: any system.
    #[serde(default)]
    pub identifier_system: Option<String>,
    /// Clock skew allowed on `exp` / `nbf` / `iat`.
    #[serde(default = "default_skew")]
    pub clock_skew_secs: u64,
    /// Signature algorithms accepted: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
}

fn default_identifier_claim() -> String {
    "patient_identifier".into()
}

fn default_skew() -> u64 {
    60
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into()]
}

/// The asymmetric algorithms a provider may use (never `none`, never a shared-secret HMAC: a
/// public key must not be usable as a MAC key).
pub const ALGORITHMS: [&str; 8] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
];

impl super::Config {
    /// Checks `[credentials]` and `[[identity_providers]]`.
    pub(super) fn validate_identity(&self) -> Result<(), super::ConfigError> {
        let c = &self.credentials;
        let span = c.mode.span();
        for (key, value) in [
            ("code_valid_seconds", c.code_valid_seconds),
            ("code_max_attempts", c.code_max_attempts),
            ("max_failed_sign_ins", c.max_failed_sign_ins),
            ("address_failed_sign_ins", c.address_failed_sign_ins),
            ("sign_in_delay_max_seconds", c.sign_in_delay_max_seconds),
            ("failure_window_seconds", c.failure_window_seconds),
            ("session_seconds", c.session_seconds),
            ("reauth_seconds", c.reauth_seconds),
        ] {
            if value == 0 {
                return Err(self.error_at(
                    span.clone(),
                    format!("credentials.{key}"),
                    "must be at least 1".into(),
                ));
            }
        }
        if c.mode.get_ref().external() && self.identity_providers.is_empty() {
            return Err(self.error_at(
                span,
                "credentials.mode".into(),
                "external credentials need at least one [[identity_providers]] entry".into(),
            ));
        }
        let mut names: Vec<&str> = vec![];
        for (i, p) in self.identity_providers.iter().enumerate() {
            let key = |k: &str| format!("identity_providers[{i}].{k}");
            let at = p.name.span();
            let fail = |k: &str, message: &str| Err(self.error_at(at.clone(), key(k), message.into()));
            let name = p.name.get_ref().as_str();
            if name.is_empty() || names.contains(&name) {
                return fail("name", "is empty or defined twice");
            }
            names.push(name);
            if p.issuer.trim().is_empty() {
                return fail("issuer", "must be the `iss` the provider's tokens carry");
            }
            if p.audiences.is_empty() || p.audiences.iter().any(|a| a.trim().is_empty()) {
                return fail("audiences", "must list our client id(s) at the provider");
            }
            if p.jwks_uri.is_none() && p.introspection_endpoint.is_none() {
                return fail(
                    "jwks_uri",
                    "a provider needs jwks_uri (JWTs) or introspection_endpoint (opaque tokens)",
                );
            }
            if p.introspection_endpoint.is_some() {
                if p.userinfo_endpoint.is_none() {
                    return fail(
                        "userinfo_endpoint",
                        "opaque tokens need the userInfo endpoint for the patient's identifier",
                    );
                }
                if p.client_id.is_none() || p.client_secret.is_none() {
                    return fail(
                        "client_id",
                        "the introspection endpoint needs client_id and client_secret",
                    );
                }
            }
            for url in [&p.jwks_uri, &p.introspection_endpoint, &p.userinfo_endpoint]
                .into_iter()
                .flatten()
            {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return fail("jwks_uri", &format!("`{url}` is not an http(s) URL"));
                }
            }
            if p.identifier_claim.trim().is_empty() {
                return fail("identifier_claim", "must name a claim");
            }
            if p.algorithms.is_empty() {
                return fail("algorithms", "must list at least one algorithm");
            }
            for alg in &p.algorithms {
                if !ALGORITHMS.contains(&alg.as_str()) {
                    return fail(
                        "algorithms",
                        &format!("`{alg}` is not accepted (known: {})", ALGORITHMS.join(", ")),
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const PROVIDER: &str = "[[identity_providers]]\nname = \"national\"\nissuer = \"https://idp.test\"\n\
        audiences = [\"portal\"]\njwks_uri = \"https://idp.test/jwks\"\n";

    #[test]
    fn credentials_and_providers_are_checked() {
        let config = Config::parse("", "t.toml").unwrap();
        assert!(config.credentials.mode.get_ref().portal());
        assert!(config.credentials.two_factor);
        assert_eq!(config.credentials.code_valid_seconds, 360);

        let e = Config::parse("[credentials]\nmode = \"external\"\n", "t.toml").unwrap_err();
        assert_eq!(e.key, "credentials.mode");
        let ok = Config::parse(&format!("[credentials]\nmode = \"both\"\n{PROVIDER}"), "t.toml").unwrap();
        assert_eq!(ok.identity_providers[0].algorithms, ["RS256"]);

        let e = Config::parse(&format!("{PROVIDER}algorithms = [\"HS256\"]\n"), "t.toml").unwrap_err();
        assert_eq!(e.key, "identity_providers[0].algorithms");
        let e = Config::parse(&format!("{PROVIDER}{PROVIDER}"), "t.toml").unwrap_err();
        assert_eq!(e.key, "identity_providers[1].name");
        let opaque = PROVIDER.replace("jwks_uri", "introspection_endpoint");
        let e = Config::parse(&opaque, "t.toml").unwrap_err();
        assert_eq!(e.key, "identity_providers[0].userinfo_endpoint");
        let e = Config::parse("[credentials]\ncode_valid_seconds = 0\n", "t.toml").unwrap_err();
        assert_eq!(e.key, "credentials.code_valid_seconds");
        let e = Config::parse("[credentials]\nreauth_seconds = 0\n", "t.toml").unwrap_err();
        assert_eq!(e.key, "credentials.reauth_seconds");
        // The hard lock is gone: its key is no longer known.
        let e = Config::parse("[credentials]\nlockout_seconds = 900\n", "t.toml").unwrap_err();
        assert!(e.message.contains("lockout_seconds"), "{e}");
        assert_eq!(config.credentials.reauth_seconds, 300);
        assert_eq!(config.credentials.sign_in_delay_max_seconds, 60);
    }
}
