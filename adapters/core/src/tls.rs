//! TLS settings shared by every listener (the HTTP API, each MLLP source) and every outbound
//! client (MLLP, HTTP): PEM files in, rustls configs out.
//!
//! One place, so that listeners and clients read certificates, check client certificates and
//! name their errors the same way. A listener's [`ServerTls`] can be reloaded (SIGHUP): each new
//! handshake uses the certificate in force, connections already open keep theirs. Client
//! certificates (mTLS) are checked against the `client_ca` chain and then, when
//! `allowed_subjects` is given, against that list: a certificate whose subject is not on it fails
//! the handshake, as an unknown one does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use serde::Deserialize;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A listener's TLS, as written in the config (`[http.tls]`, `[channels.source.tls]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// PEM file of the certificate chain, the listener's own certificate first.
    pub cert: PathBuf,
    /// PEM file of its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM file of the CAs whose client certificates are accepted. Given, every client must
    /// present a certificate chaining to one of them (mTLS); absent, none is asked for.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Client certificate subjects let in (needs `client_ca`): an entry matches a certificate
    /// whose subject common name (CN) is that text, or whose whole subject is, written as
    /// `CN=..., O=...`. Empty: any certificate `client_ca` vouches for.
    #[serde(default)]
    pub allowed_subjects: Vec<String>,
}

/// An outbound client's TLS (`[destinations.settings.tls]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsConfig {
    /// PEM file of the CAs the server's certificate must chain to; absent, the system's roots.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// PEM file of the client certificate chain, for servers that require one (mTLS).
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// The name the server's certificate must carry; absent, the host of the address or URL.
    #[serde(default)]
    pub server_name: Option<String>,
}

/// Why TLS settings could not be used; the message names the file or the setting.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {why}")]
    File { path: String, why: String },
    #[error("{0}")]
    Settings(String),
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider every config uses, named so that no process-wide default is needed.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_error = |why: String| TlsError::File {
        path: path.display().to_string(),
        why,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(format!("cannot read certificates: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(file_error("no certificate in the file".into()));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::File {
        path: path.display().to_string(),
        why: format!("no usable private key: {e}"),
    })
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certificates(path)? {
        store.add(cert).map_err(|e| TlsError::File {
            path: path.display().to_string(),
            why: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(store)
}

/// Builds a listener's rustls config from its files.
pub fn server_config(settings: &ServerTlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let builder =
        rustls::ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match &settings.client_ca {
        None if !settings.allowed_subjects.is_empty() => {
            return Err(TlsError::Settings(
                "allowed_subjects needs client_ca: client certificates are only asked for with it".into(),
            ));
        }
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let chain = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                .build()
                .map_err(|e| TlsError::Settings(format!("client_ca: {e}")))?;
            builder.with_client_cert_verifier(Arc::new(SubjectCheck {
                chain,
                allowed: settings.allowed_subjects.clone(),
            }))
        }
    };
    let config = builder.with_single_cert(certificates(&settings.cert)?, private_key(&settings.key)?)?;
    Ok(Arc::new(config))
}

/// A listener's TLS that can be reloaded from its files while the listener runs.
#[derive(Clone)]
pub struct ServerTls {
    settings: ServerTlsConfig,
    current: Arc<RwLock<TlsAcceptor>>,
}

impl ServerTls {
    /// Reads the files once; the error names the file that is wrong.
    pub fn load(settings: &ServerTlsConfig) -> Result<ServerTls, TlsError> {
        let acceptor = TlsAcceptor::from(server_config(settings)?);
        Ok(ServerTls {
            settings: settings.clone(),
            current: Arc::new(RwLock::new(acceptor)),
        })
    }

    /// Reads the files again; new handshakes use them. On an error the config in force stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let acceptor = TlsAcceptor::from(server_config(&self.settings)?);
        // A poisoned lock only means a reader panicked mid-clone: the acceptor is still whole.
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = acceptor;
        Ok(())
    }

    /// The acceptor for the next handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The files this was loaded from.
    pub fn settings(&self) -> &ServerTlsConfig {
        &self.settings
    }
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("settings", &self.settings)
            .finish()
    }
}

impl PartialEq for ServerTls {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings
    }
}

impl Eq for ServerTls {}

/// An outbound client's connector and the name it checks the server's certificate against.
#[derive(Clone)]
pub struct ClientTls {
    pub connector: TlsConnector,
    pub server_name: ServerName<'static>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// Builds a client's rustls config from its files. Without `ca` there are no roots to trust:
/// the caller passes the CA, as for a private PKI; a public one is reached with `ca` set to the
/// system's bundle (e.g. `/etc/ssl/certs/ca-certificates.crt`).
pub fn client_config(settings: &ClientTlsConfig) -> Result<rustls::ClientConfig, TlsError> {
    let Some(ca) = &settings.ca else {
        return Err(TlsError::Settings(
            "ca: the CA file the server's certificate must chain to is required".into(),
        ));
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca)?);
    let config = match (&settings.client_cert, &settings.client_key) {
        (Some(cert), Some(key)) => builder.with_client_auth_cert(certificates(cert)?, private_key(key)?)?,
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(TlsError::Settings(
                "client_cert and client_key go together: give both or neither".into(),
            ));
        }
    };
    Ok(config)
}

/// A client's connector for the server at `host` (unless `server_name` says otherwise).
pub fn client_tls(settings: &ClientTlsConfig, host: &str) -> Result<ClientTls, TlsError> {
    let config = client_config(settings)?;
    let name = settings.server_name.as_deref().unwrap_or(host);
    let server_name = ServerName::try_from(name.to_string()).map_err(|_| {
        TlsError::Settings(format!(
            "server_name: `{name}` is not a DNS name or an IP address"
        ))
    })?;
    Ok(ClientTls {
        connector: TlsConnector::from(Arc::new(config)),
        server_name,
    })
}

/// Checks the client's chain with webpki, then its subject against the allowed list.
#[derive(Debug)]
struct SubjectCheck {
    chain: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for SubjectCheck {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.chain.verify_client_cert(end_entity, intermediates, now)?;
        if self.allowed.is_empty() {
            return Ok(verified);
        }
        let (_, certificate) = x509_parser::parse_x509_certificate(end_entity.as_ref())
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        let subject = certificate.subject();
        let whole = subject.to_string();
        let allowed = self.allowed.iter().any(|entry| {
            *entry == whole
                || subject
                    .iter_common_name()
                    .any(|cn| cn.as_str().is_ok_and(|cn| cn == entry))
        });
        if allowed {
            Ok(verified)
        } else {
            tracing::warn!(subject = %whole, "client certificate subject not on the allowed list");
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}
