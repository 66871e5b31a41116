//! `from_config`: the settings as written in TOML, and the refusals a user sees for bad ones.

use tributary_adapter_smtp::{SmtpConfig, TlsMode, from_config};

#[test]
fn the_documented_example_parses_and_builds() {
    let config: SmtpConfig = toml::from_str(
        r#"
        host = "smtp.example.org"
        port = 587
        tls = "starttls"
        username = "portal"
        password = "..."
        from = "Portal <noreply@portal.example>"
        message_id_domain = "portal.example"
        hello_name = "tributary.portal.example"
        timeout_secs = 30
        "#,
    )
    .unwrap();
    assert_eq!(config.tls, TlsMode::Starttls);
    let outbound = from_config(config).unwrap();
    assert_eq!(outbound.relay(), "smtp.example.org:587");
}

#[test]
fn the_port_follows_the_tls_mode_by_default() {
    for (tls, port) in [(TlsMode::None, 25), (TlsMode::Starttls, 587), (TlsMode::Tls, 465)] {
        let mut config = SmtpConfig::new("mail.example", "a@portal.example");
        config.tls = tls;
        assert_eq!(
            from_config(config).unwrap().relay(),
            format!("mail.example:{port}")
        );
    }
}

#[test]
fn bad_settings_are_refused_with_the_setting_named() {
    let refuse = |change: &dyn Fn(&mut SmtpConfig), needle: &str| {
        let mut config = SmtpConfig::new("mail.example", "noreply@portal.example");
        change(&mut config);
        let error = from_config(config).unwrap_err();
        assert!(error.contains(needle), "expected `{needle}` in: {error}");
    };
    refuse(&|c| c.host = " ".into(), "host");
    refuse(&|c| c.from = "not an address".into(), "from");
    refuse(&|c| c.username = Some("portal".into()), "password");
    refuse(&|c| c.password = Some("x".into()), "username");
    refuse(&|c| c.timeout_secs = 0, "timeout_secs");
    refuse(&|c| c.port = Some(0), "port");
    refuse(&|c| c.hello_name = Some("bad name".into()), "hello_name");
    refuse(&|c| c.message_id_domain = Some("a b".into()), "message_id_domain");
}

#[test]
fn unknown_keys_in_toml_are_refused() {
    let error =
        toml::from_str::<SmtpConfig>("host = \"h\"\nfrom = \"a@b.example\"\nstarttls = true\n").unwrap_err();
    assert!(error.to_string().contains("starttls"), "{error}");
}
