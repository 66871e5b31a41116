//! `from_config`: the settings as written in TOML, and the refusals a user sees for bad ones.

use tributary_adapter_sms::{AuthConfig, BodyFormat, SmsConfig, from_config};

#[test]
fn the_documented_example_parses_and_builds() {
    let config: SmsConfig = toml::from_str(
        r#"
        url = "https://sms.example/api/messages"
        method = "POST"
        format = "json"
        body = '{"to": "{{to}}", "text": "{{body}}", "reference": "{{id}}"}'
        timeout_secs = 30
        max_response_bytes = 1048576
        [headers]
        Accept = "application/json"
        [auth]
        type = "header"
        name = "Authorization"
        value = "Bearer ..."
        "#,
    )
    .unwrap();
    assert_eq!(config.format, BodyFormat::Json);
    assert!(matches!(config.auth, AuthConfig::Header { .. }));
    assert_eq!(
        from_config(config).unwrap().target(),
        "https://sms.example/api/messages"
    );
}

#[test]
fn defaults_are_post_json_and_no_auth() {
    let config: SmsConfig =
        toml::from_str("url = \"http://127.0.0.1:9/\"\nbody = '{{to}} {{body}}'\n").unwrap();
    assert_eq!(config, SmsConfig::new("http://127.0.0.1:9/", "{{to}} {{body}}"));
    assert_eq!(config.method, "POST");
    assert_eq!(config.format, BodyFormat::Json);
    assert_eq!(config.auth, AuthConfig::None);
    assert_eq!(config.timeout_secs, 30);
}

#[test]
fn bad_settings_are_refused_with_the_setting_named() {
    let refuse = |config: SmsConfig, needle: &str| {
        let error = from_config(config).unwrap_err();
        assert!(error.contains(needle), "expected `{needle}` in: {error}");
    };
    // `{{to}} {{body}}` is not JSON once filled in.
    refuse(
        SmsConfig::new("http://127.0.0.1:9/", "{{to}} {{body}}"),
        "not JSON",
    );
    refuse(
        SmsConfig::new("http://127.0.0.1:9/", r#"{"text": "{{body}}"}"#),
        "{{to}}",
    );
    refuse(
        SmsConfig::new("http://127.0.0.1:9/", r#"{"to": "{{to}}", "t": "{{text}}"}"#),
        "{{text}}",
    );
    refuse(
        SmsConfig::new("ftp://x/", r#"{"to": "{{to}}", "t": "{{body}}"}"#),
        "url",
    );
}

#[test]
fn unknown_keys_in_toml_are_refused() {
    let error =
        toml::from_str::<SmsConfig>("url = \"http://x\"\nbody = \"b\"\ntemplate = \"t\"\n").unwrap_err();
    assert!(error.to_string().contains("template"), "{error}");
    let error =
        toml::from_str::<SmsConfig>("url = \"http://x\"\nbody = \"b\"\nformat = \"xml\"\n").unwrap_err();
    assert!(error.to_string().contains("xml"), "{error}");
}
