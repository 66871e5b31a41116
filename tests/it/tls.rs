//! TLS on the engine's listeners, with certificates made in the test (rcgen): clients that check
//! the chain get their answers; plaintext, missing, foreign and unlisted client certificates are
//! refused; the outbound MLLP and HTTP adapters deliver over TLS; SIGHUP reloads the certificate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{EngineProcess, MAPPINGS, msa, temp_store, ucr_a28, write_config};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tributary_adapter_core::tls::{ClientTlsConfig, client_config, client_tls};
use tributary_adapter_core::{Envelope, Outbound};
use tributary_adapter_mllp::{Client, MllpOutboundConfig};

const PATIENCE: Duration = Duration::from_secs(10);

/// A test CA that signs server and client certificates into PEM files in `dir`.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
    file: PathBuf,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let file = dir.join(format!("{name}.pem"));
        std::fs::write(&file, issuer.pem()).unwrap();
        Ca {
            issuer,
            dir: dir.to_path_buf(),
            file,
        }
    }

    fn file(&self) -> PathBuf {
        self.file.clone()
    }

    /// A certificate with common name `cn` (and `localhost`, `127.0.0.1` as names); returns the
    /// cert and key files.
    fn issue(&self, cn: &str) -> (PathBuf, PathBuf) {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_file, key_file) = (
            self.dir.join(format!("{cn}.pem")),
            self.dir.join(format!("{cn}.key")),
        );
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    engine: EngineProcess,
    ca: Ca,
    dir: PathBuf,
}

/// The engine with HTTPS and MLLP over mTLS (only `ucr-sender` let in), all from one test CA.
fn start() -> Setup {
    let (dir, data) = temp_store();
    let ca = Ca::new(dir.path(), "test-ca");
    let (cert, key) = ca.issue("tributary");
    let tls = format!(
        "tls = {{ cert = {cert:?}, key = {key:?}, client_ca = {:?}, allowed_subjects = [\"ucr-sender\"] }}",
        ca.file()
    );
    let config = write_config(dir.path(), &tls, Path::new(MAPPINGS));
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[http]\n",
        &format!("[http]\ntls = {{ cert = {cert:?}, key = {key:?} }}\n"),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let engine = EngineProcess::start_config(&config, &data);
    let dir_path = dir.path().to_path_buf();
    Setup {
        _dir: dir,
        engine,
        ca,
        dir: dir_path,
    }
}

fn client_settings(ca: &Path, identity: Option<(PathBuf, PathBuf)>) -> ClientTlsConfig {
    let (client_cert, client_key) = identity.unzip();
    ClientTlsConfig {
        ca: Some(ca.to_path_buf()),
        client_cert,
        client_key,
        server_name: None,
    }
}

/// Sends one message over TLS; `Err` if the handshake or the exchange was refused.
async fn send_tls(addr: &str, settings: &ClientTlsConfig, control: &str) -> Result<String, std::io::Error> {
    let tls = client_tls(settings, "127.0.0.1").unwrap();
    let mut client = Client::connect_tls(addr, PATIENCE, &tls).await?;
    let ack = client.send(&ucr_a28(control)).await?;
    Ok(String::from_utf8(ack.to_vec()).unwrap())
}

fn https(engine: &EngineProcess) -> String {
    engine.http.replacen("http://", "https://", 1)
}

#[tokio::test]
async fn mllp_over_mtls_answers_the_allowed_sender_and_refuses_everyone_else() {
    let setup = start();
    let addr = setup.engine.mllp.clone();
    let sender = setup.ca.issue("ucr-sender");

    let ack = send_tls(&addr, &client_settings(&setup.ca.file(), Some(sender)), "TLS1")
        .await
        .expect("the allowed sender gets its ACK");
    assert_eq!(msa(&ack), ("AA".into(), "TLS1".into()), "{ack}");

    // Plain MLLP to a TLS listener: no ACK.
    let mut plain = Client::connect(&addr, PATIENCE).await.unwrap();
    assert!(
        plain.send(&ucr_a28("PLAIN")).await.is_err(),
        "a plaintext client got an answer"
    );

    // TLS without a client certificate, with one from another CA, with one not on the list.
    let none = client_settings(&setup.ca.file(), None);
    assert!(
        send_tls(&addr, &none, "NOCERT").await.is_err(),
        "no client certificate got in"
    );
    let other_ca = Ca::new(&setup.dir, "other-ca");
    let foreign = client_settings(&setup.ca.file(), Some(other_ca.issue("ucr-sender")));
    assert!(
        send_tls(&addr, &foreign, "FOREIGN").await.is_err(),
        "a foreign certificate got in"
    );
    let intruder = client_settings(&setup.ca.file(), Some(setup.ca.issue("intruder")));
    assert!(
        send_tls(&addr, &intruder, "UNLISTED").await.is_err(),
        "an unlisted subject got in"
    );

    // A client that checks the chain refuses a listener its CA did not sign.
    let wrong_trust = client_settings(&other_ca.file(), Some(setup.ca.issue("ucr-sender")));
    assert!(send_tls(&addr, &wrong_trust, "UNTRUSTED").await.is_err());
}

#[tokio::test]
async fn https_answers_a_checking_client_and_outbound_adapters_deliver_over_tls() {
    let setup = start();
    let trust = client_settings(&setup.ca.file(), None);

    // A client trusting only the test CA reads /health over HTTPS.
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(client_config(&trust).unwrap())
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/health", https(&setup.engine)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // Plain HTTP to the HTTPS port gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("{}/health", setup.engine.http))
        .timeout(PATIENCE)
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    // The outbound HTTP adapter with a CA file.
    let mut http = tributary_adapter_http::HttpConfig::new(format!("{}/health", https(&setup.engine)));
    http.method = "GET".into();
    http.tls = Some(trust.clone());
    let outbound = tributary_adapter_http::from_config(http).unwrap();
    outbound
        .deliver(&Envelope::new("d-1", "", "text/plain"))
        .await
        .expect("delivered over HTTPS");

    // The outbound MLLP adapter with a CA file and a client certificate, to the mTLS listener.
    let mut mllp = MllpOutboundConfig::new(setup.engine.mllp.clone());
    mllp.tls = Some(client_settings(
        &setup.ca.file(),
        Some(setup.ca.issue("ucr-sender")),
    ));
    let outbound = tributary_adapter_mllp::from_config(mllp).unwrap();
    let reply = outbound
        .deliver(&Envelope::new("d-2", ucr_a28("OUT1"), "x-application/hl7-v2+er7"))
        .await
        .expect("delivered over MLLP/TLS");
    assert_eq!(
        msa(&String::from_utf8_lossy(&reply)),
        ("AA".into(), "OUT1".into())
    );
}

#[tokio::test]
async fn sighup_reloads_the_listener_certificate() {
    let setup = start();
    let sender = setup.ca.issue("ucr-sender");
    let old_trust = client_settings(&setup.ca.file(), Some(sender.clone()));
    assert!(send_tls(&setup.engine.mllp, &old_trust, "BEFORE").await.is_ok());

    // A new certificate from a new CA in the same files, then SIGHUP.
    let renewed = Ca::new(&setup.dir, "renewed-ca");
    let (cert, key) = renewed.issue("tributary-renewed");
    std::fs::copy(&cert, setup.dir.join("tributary.pem")).unwrap();
    std::fs::copy(&key, setup.dir.join("tributary.key")).unwrap();
    setup.engine.signal("HUP");

    let new_trust = client_settings(&renewed.file(), Some(sender));
    let mut reloaded = false;
    for attempt in 0..50 {
        if send_tls(&setup.engine.mllp, &new_trust, &format!("AFTER{attempt}"))
            .await
            .is_ok()
        {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reloaded, "new handshakes never used the reloaded certificate");
    assert!(
        send_tls(&setup.engine.mllp, &old_trust, "OLD").await.is_err(),
        "a client trusting only the old CA still got in"
    );
}
