//! `from_config`: the settings as written in TOML, and the refusals a user sees for bad ones.

use tributary_adapter_http::{AuthConfig, HttpConfig, from_config};

fn parse(text: &str) -> HttpConfig {
    toml::from_str(text).unwrap()
}

#[test]
fn the_documented_examples_parse_and_build() {
    let config = parse(
        r#"
        url = "https://partner.example/fhir/Patient"
        method = "POST"
        timeout_secs = 30
        max_response_bytes = 1048576
        [headers]
        Accept = "application/fhir+json"
        [auth]
        type = "header"
        name = "X-Api-Key"
        value = "..."
        "#,
    );
    assert_eq!(config.headers["Accept"], "application/fhir+json");
    // An https URL builds too: the TLS provider and the platform's roots are there.
    let outbound = from_config(config).unwrap();
    assert_eq!(outbound.target(), "https://partner.example/fhir/Patient");

    let config = parse(
        r#"
        url = "https://partner.example/fhir/Patient"
        [auth]
        type = "oauth2_client_credentials"
        token_url = "https://idp.example/oauth2/token"
        client_id = "tributary"
        client_secret = "..."
        scope = "system/Patient.write"
        client_auth = "basic"
        "#,
    );
    assert!(matches!(config.auth, AuthConfig::Oauth2ClientCredentials { .. }));
    from_config(config).unwrap();
}

#[test]
fn the_target_leaves_out_the_query() {
    let outbound = from_config(HttpConfig::new("http://127.0.0.1:9/in?api_key=secret")).unwrap();
    assert_eq!(outbound.target(), "http://127.0.0.1:9/in");
}

#[test]
fn bad_settings_are_refused_with_the_setting_named() {
    let refuse = |config: HttpConfig, needle: &str| {
        let error = from_config(config).unwrap_err();
        assert!(error.contains(needle), "expected `{needle}` in: {error}");
    };
    refuse(HttpConfig::new("not a url"), "url");
    refuse(HttpConfig::new("ftp://host/file"), "http:// or https://");
    let mut config = HttpConfig::new("http://127.0.0.1:9/");
    config.method = "GE T".into();
    refuse(config, "method");
    let mut config = HttpConfig::new("http://127.0.0.1:9/");
    config.timeout_secs = 0;
    refuse(config, "timeout_secs");
    let mut config = HttpConfig::new("http://127.0.0.1:9/");
    config.headers.insert("Bad Header".into(), "x".into());
    refuse(config, "Bad Header");
    let mut config = HttpConfig::new("http://127.0.0.1:9/");
    config
        .headers
        .insert("Transfer-Encoding".into(), "chunked".into());
    refuse(config, "Transfer-Encoding");
    let mut config = HttpConfig::new("http://127.0.0.1:9/");
    config.auth = AuthConfig::Oauth2ClientCredentials {
        token_url: "http://127.0.0.1:9/token".into(),
        client_id: "id".into(),
        client_secret: String::new(),
        scope: None,
        client_auth: Default::default(),
    };
    refuse(config, "client_secret");
}

#[test]
fn unknown_keys_in_toml_are_refused() {
    let error = toml::from_str::<HttpConfig>("url = \"http://x\"\ntimeout = 5\n").unwrap_err();
    assert!(error.to_string().contains("timeout"), "{error}");
    let error =
        toml::from_str::<HttpConfig>("url = \"http://x\"\n[auth]\ntype = \"kerberos\"\n").unwrap_err();
    assert!(error.to_string().contains("kerberos"), "{error}");
}
