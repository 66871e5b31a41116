//! The SMTP adapter against a real SMTP server on 127.0.0.1: what arrives (parsed back with an
//! independent MIME parser), and how each kind of failure is classified for the outbox.

mod support;

use std::time::{Duration, Instant};

use mail_parser::{MessageParser, MimeHeaders};
use tokio::net::TcpListener;
use tributary_adapter_core::{DeliveryError, Envelope, Outbound};
use tributary_adapter_smtp::{SmtpConfig, SmtpOutbound, TlsMode, from_config};

use support::SmtpServer;

fn config(server: &SmtpServer) -> SmtpConfig {
    let mut config = SmtpConfig::new("127.0.0.1", "Member Portal <noreply@portal.example>");
    config.port = Some(server.port());
    config.tls = TlsMode::None;
    config.hello_name = Some("tributary.test".into());
    config
}

fn adapter(server: &SmtpServer) -> SmtpOutbound {
    from_config(config(server)).unwrap()
}

fn envelope(id: &str, to: &str, subject: &str, body: &str) -> Envelope {
    let mut envelope = Envelope::new(id, body.to_string(), "text/plain");
    envelope.headers.push(("To".into(), to.into()));
    envelope.headers.push(("Subject".into(), subject.into()));
    envelope
}

fn permanent(error: DeliveryError) -> String {
    match error {
        DeliveryError::Permanent(message) => message,
        other => panic!("expected Permanent, got {other}"),
    }
}

fn transient(error: DeliveryError) -> String {
    match error {
        DeliveryError::Transient(message) => message,
        other => panic!("expected Transient, got {other}"),
    }
}

/// Line endings as text, whatever the transfer encoding made of them.
fn lf(text: &str) -> String {
    text.replace("\r\n", "\n")
}

#[tokio::test]
async fn delivers_one_message_with_recipient_subject_body_and_message_id() {
    let server = SmtpServer::start().await;
    let outbound = adapter(&server);
    assert_eq!(outbound.kind(), "smtp");
    let reply = outbound
        .deliver(&envelope(
            "d-42",
            "ann@example.org",
            "Your invitation",
            "Hello Ann,\nwelcome.\n",
        ))
        .await
        .unwrap();
    assert_eq!(&reply[..], b"250 2.0.0 Ok: queued as T1");

    let received = server.received();
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert_eq!(mail.helo, "tributary.test");
    assert_eq!(mail.mail_from, "noreply@portal.example");
    assert_eq!(mail.rcpt_to, ["ann@example.org"]);
    assert_eq!(mail.auth, None);

    let parsed = MessageParser::default()
        .parse(&mail.data)
        .expect("a parsable message");
    assert_eq!(parsed.subject(), Some("Your invitation"));
    assert_eq!(parsed.message_id(), Some("d-42@portal.example"));
    let to = parsed
        .to()
        .and_then(|to| to.first())
        .and_then(|to| to.address())
        .unwrap();
    assert_eq!(to, "ann@example.org");
    let from = parsed.from().and_then(|from| from.first()).unwrap();
    assert_eq!(from.name(), Some("Member Portal"));
    assert_eq!(lf(&parsed.body_text(0).unwrap()), "Hello Ann,\nwelcome.\n");
    let content_type = parsed.content_type().unwrap();
    assert_eq!(content_type.ctype(), "text");
    assert_eq!(content_type.subtype(), Some("plain"));
    assert_eq!(content_type.attribute("charset"), Some("utf-8"));
    assert!(parsed.date().is_some());
}

#[tokio::test]
async fn non_ascii_subject_and_body_survive_the_trip() {
    let server = SmtpServer::start().await;
    let subject = "دعوة للانضمام إلى البوابة — \"مهم\"";
    let body = "مرحباً سارة،\nرمز التفعيل: 123-456\n\"اقتباس\" و 'آخر'\n.\n..نقطتان في أول السطر\n";
    adapter(&server)
        .deliver(&envelope("d-ar", "sara@example.org", subject, body))
        .await
        .unwrap();
    let mail = &server.received()[0];
    // Nothing but ASCII on the wire: the relay needs neither 8BITMIME nor SMTPUTF8.
    assert!(mail.data.is_ascii(), "{}", String::from_utf8_lossy(&mail.data));
    let parsed = MessageParser::default().parse(&mail.data).unwrap();
    assert_eq!(parsed.subject(), Some(subject));
    assert_eq!(lf(&parsed.body_text(0).unwrap()), body);
}

#[tokio::test]
async fn accented_latin_text_survives_quoted_printable() {
    let server = SmtpServer::start().await;
    let body = "Dear Jürgen, your appointment with Dr. Müller is confirmed.\nSee you in Köln.\n";
    adapter(&server)
        .deliver(&envelope("d-qp", "jo@example.org", "Grüße", body))
        .await
        .unwrap();
    let mail = &server.received()[0];
    let raw = String::from_utf8(mail.data.clone()).unwrap();
    assert!(
        raw.contains("Content-Transfer-Encoding: quoted-printable"),
        "{raw}"
    );
    let parsed = MessageParser::default().parse(&mail.data).unwrap();
    assert_eq!(parsed.subject(), Some("Grüße"));
    assert_eq!(lf(&parsed.body_text(0).unwrap()), body);
}

#[tokio::test]
async fn html_content_is_sent_as_html() {
    let server = SmtpServer::start().await;
    let mut html = envelope("d-h", "ann@example.org", "Hi", "<p>Hello <b>Ann</b> — أهلاً</p>");
    html.content_type = "text/html; charset=utf-8".into();
    adapter(&server).deliver(&html).await.unwrap();
    let mail = &server.received()[0];
    let parsed = MessageParser::default().parse(&mail.data).unwrap();
    assert_eq!(parsed.content_type().unwrap().subtype(), Some("html"));
    assert_eq!(parsed.body_html(0).unwrap(), "<p>Hello <b>Ann</b> — أهلاً</p>");
}

#[tokio::test]
async fn a_retry_carries_the_same_message_id_and_another_envelope_another() {
    let server = SmtpServer::start().await;
    let outbound = adapter(&server);
    let first = envelope("d-7", "ann@example.org", "s", "b");
    outbound.deliver(&first).await.unwrap();
    outbound.deliver(&first).await.unwrap();
    outbound
        .deliver(&envelope("queue/8 x", "ann@example.org", "s", "b"))
        .await
        .unwrap();
    let ids: Vec<String> = server
        .received()
        .iter()
        .map(|mail| {
            MessageParser::default()
                .parse(&mail.data)
                .unwrap()
                .message_id()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids[0], "d-7@portal.example");
    assert_eq!(ids[0], ids[1]);
    assert_ne!(ids[2], ids[0]);
    assert!(
        ids[2].ends_with("@portal.example") && !ids[2].contains(' '),
        "{}",
        ids[2]
    );
}

#[tokio::test]
async fn several_recipients_each_get_a_rcpt() {
    let server = SmtpServer::start().await;
    adapter(&server)
        .deliver(&envelope(
            "d-1",
            "ann@example.org, Bob <bob@example.org>",
            "s",
            "b",
        ))
        .await
        .unwrap();
    assert_eq!(
        server.received()[0].rcpt_to,
        ["ann@example.org", "bob@example.org"]
    );
}

#[tokio::test]
async fn a_4xx_reply_is_transient() {
    let server = SmtpServer::start().await;
    server.behave(|b| b.rcpt_reply = Some("451 4.3.0 mailbox busy, try later".into()));
    let message = transient(
        adapter(&server)
            .deliver(&envelope("d-1", "ann@example.org", "s", "b"))
            .await
            .unwrap_err(),
    );
    assert!(message.contains("451"), "{message}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_5xx_reply_is_permanent() {
    let server = SmtpServer::start().await;
    let outbound = adapter(&server);
    server.behave(|b| b.rcpt_reply = Some("550 5.1.1 no such user".into()));
    let message = permanent(
        outbound
            .deliver(&envelope("d-1", "nobody@example.org", "s", "b"))
            .await
            .unwrap_err(),
    );
    assert!(message.contains("550"), "{message}");

    server.behave(|b| {
        b.rcpt_reply = None;
        b.data_reply = Some("554 5.7.1 message refused".into());
    });
    let message = permanent(
        outbound
            .deliver(&envelope("d-2", "ann@example.org", "s", "b"))
            .await
            .unwrap_err(),
    );
    assert!(message.contains("554"), "{message}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_missing_or_invalid_recipient_is_permanent_and_nothing_is_sent() {
    let server = SmtpServer::start().await;
    let outbound = adapter(&server);
    let mut no_to = Envelope::new("d-1", "body", "text/plain");
    no_to.headers.push(("Subject".into(), "s".into()));
    assert!(permanent(outbound.deliver(&no_to).await.unwrap_err()).contains("To"));
    let bad = envelope("d-2", "not an address", "s", "b");
    assert!(permanent(outbound.deliver(&bad).await.unwrap_err()).contains("To"));
    let mut binary = envelope("d-3", "ann@example.org", "s", "");
    binary.payload = bytes::Bytes::from_static(b"\xff\xfe");
    assert!(permanent(outbound.deliver(&binary).await.unwrap_err()).contains("UTF-8"));
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn credentials_are_sent_when_configured() {
    let server = SmtpServer::start().await;
    let mut config = config(&server);
    config.username = Some("portal".into());
    config.password = Some("s3cret".into());
    from_config(config)
        .unwrap()
        .deliver(&envelope("d-1", "ann@example.org", "s", "b"))
        .await
        .unwrap();
    assert_eq!(server.received()[0].auth.as_deref(), Some("portal:s3cret"));
}

#[tokio::test]
async fn a_refused_login_is_transient() {
    let server = SmtpServer::start().await;
    server.behave(|b| b.auth_reply = Some("535 5.7.8 authentication failed".into()));
    let mut config = config(&server);
    config.username = Some("portal".into());
    config.password = Some("wrong".into());
    let message = transient(
        from_config(config)
            .unwrap()
            .deliver(&envelope("d-1", "ann@example.org", "s", "b"))
            .await
            .unwrap_err(),
    );
    assert!(message.contains("535"), "{message}");
    assert_eq!(server.logins(), ["portal:wrong"]);
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config = SmtpConfig::new("127.0.0.1", "noreply@portal.example");
    config.port = Some(port);
    config.tls = TlsMode::None;
    transient(
        from_config(config)
            .unwrap()
            .deliver(&envelope("d-1", "ann@example.org", "s", "b"))
            .await
            .unwrap_err(),
    );
}

#[tokio::test]
async fn a_silent_server_is_a_transient_timeout() {
    let server = SmtpServer::start().await;
    server.behave(|b| b.greeting_delay = Duration::from_secs(5));
    let mut config = config(&server);
    config.timeout_secs = 1;
    let started = Instant::now();
    let message = transient(
        from_config(config)
            .unwrap()
            .deliver(&envelope("d-1", "ann@example.org", "s", "b"))
            .await
            .unwrap_err(),
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        message.contains("timed out") || message.contains("timeout"),
        "{message}"
    );
}

#[tokio::test]
async fn starttls_is_required_when_configured_and_nothing_leaks_without_it() {
    // The test server offers no STARTTLS: the adapter must refuse to go on in plain text.
    let server = SmtpServer::start().await;
    let mut config = config(&server);
    config.tls = TlsMode::Starttls;
    config.username = Some("portal".into());
    config.password = Some("s3cret".into());
    transient(
        from_config(config)
            .unwrap()
            .deliver(&envelope("d-1", "ann@example.org", "s", "b"))
            .await
            .unwrap_err(),
    );
    assert_eq!(server.connections(), 1);
    assert!(server.logins().is_empty(), "credentials sent in plain text");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn implicit_tls_against_a_plain_server_is_transient() {
    let server = SmtpServer::start().await;
    let mut config = config(&server);
    config.tls = TlsMode::Tls;
    config.timeout_secs = 2;
    transient(
        from_config(config)
            .unwrap()
            .deliver(&envelope("d-1", "ann@example.org", "s", "b"))
            .await
            .unwrap_err(),
    );
    assert!(server.received().is_empty());
}
