//! TLS 1.3 for both ends: the server's certificate (generated, loaded, reloaded), the client's trust in it,
//! and the per-connection frame keys derived from the TLS exporter.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use palomar_proto::DirectionKeys;
use parking_lot::{Mutex, RwLock};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read or write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no usable {what}")]
    Pem { path: PathBuf, what: &'static str },
    #[error("cannot create a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io { path: path.to_owned(), source }
}

/// SHA-256 of a certificate's DER bytes: what users compare and what clients pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(cert: &CertificateDer<'_>) -> Self {
        Fingerprint(Sha256::digest(cert.as_ref()).into())
    }

    /// Parses the printed form: 64 hex digits, optionally `SHA256:`-prefixed and `:`-separated.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let text = text.strip_prefix("SHA256:").unwrap_or(text);
        let hex_digits: String = text.chars().filter(|c| *c != ':').collect();
        let bytes = hex::decode(hex_digits).ok()?;
        bytes.try_into().ok().map(Fingerprint)
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SHA256:{}", hex::encode(self.0))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The server's certificate and key, swappable while running so a renewed certificate needs no restart.
#[derive(Debug)]
pub struct ServerIdentity {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServerIdentity {
    /// Loads the configured certificate and key.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<Self>, CertError> {
        let current = RwLock::new(load_certified_key(cert_path, key_path)?);
        Ok(Arc::new(ServerIdentity { cert_path: cert_path.to_owned(), key_path: key_path.to_owned(), current }))
    }

    /// Loads `cert.pem` and `key.pem` from `dir`, creating a self-signed pair (key owner-only) first if
    /// there is none.
    pub fn load_or_generate(dir: &Path) -> Result<Arc<Self>, CertError> {
        let cert_path = dir.join("cert.pem");
        let key_path = dir.join("key.pem");
        if !cert_path.exists() || !key_path.exists() {
            generate_self_signed(dir, &cert_path, &key_path)?;
        }
        Self::load(&cert_path, &key_path)
    }

    /// Re-reads the files; on error the previous certificate stays in use.
    pub fn reload(&self) -> Result<Fingerprint, CertError> {
        let fresh = load_certified_key(&self.cert_path, &self.key_path)?;
        let fingerprint = Fingerprint::of(&fresh.cert[0]);
        *self.current.write() = fresh;
        Ok(fingerprint)
    }

    pub fn fingerprint(&self) -> Fingerprint {
        let current = self.current.read();
        Fingerprint::of(&current.cert[0])
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }
}

impl ResolvesServerCert for ServerIdentity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

fn generate_self_signed(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<(), CertError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names)?;
    let mut key_file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(key_path)
        .map_err(io_err(key_path))?;
    key_file.write_all(certified.signing_key.serialize_pem().as_bytes()).map_err(io_err(key_path))?;
    key_file.sync_all().map_err(io_err(key_path))?;
    fs::write(cert_path, certified.cert.pem()).map_err(io_err(cert_path))?;
    Ok(())
}

fn load_certified_key(cert_path: &Path, key_path: &Path) -> Result<Arc<CertifiedKey>, CertError> {
    let certs = CertificateDer::pem_file_iter(cert_path)
        .map_err(|_| CertError::Pem { path: cert_path.to_owned(), what: "certificate" })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| CertError::Pem { path: cert_path.to_owned(), what: "certificate" })?;
    if certs.is_empty() {
        return Err(CertError::Pem { path: cert_path.to_owned(), what: "certificate" });
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|_| CertError::Pem { path: key_path.to_owned(), what: "private key" })?;
    let signing_key = provider().key_provider.load_private_key(key)?;
    Ok(Arc::new(CertifiedKey::new(certs, signing_key)))
}

/// A TLS 1.3-only server configuration serving `identity`.
pub fn server_config(identity: Arc<ServerIdentity>) -> Result<Arc<ServerConfig>, CertError> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_cert_resolver(identity);
    Ok(Arc::new(config))
}

/// How a client decides to trust the server.
#[derive(Debug, Clone)]
pub enum TrustDecision {
    /// Accept only a certificate with this fingerprint.
    Pinned(Fingerprint),
    /// No pin yet: accept any certificate and report its fingerprint so the caller can pin it.
    FirstUse,
    /// Verify the chain against these CA certificates, as for any web server.
    Authority(Vec<CertificateDer<'static>>),
}

/// What the pinning verifier saw, readable after the handshake (successful or not).
#[derive(Debug, Default)]
pub struct SeenCertificate(Mutex<Option<Fingerprint>>);

impl SeenCertificate {
    pub fn get(&self) -> Option<Fingerprint> {
        *self.0.lock()
    }
}

/// Replaces the chain check with a fingerprint comparison; signatures are still checked by rustls.
#[derive(Debug)]
struct PinVerifier {
    pin: Option<Fingerprint>,
    seen: Arc<SeenCertificate>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = Fingerprint::of(end_entity);
        *self.seen.0.lock() = Some(fingerprint);
        match self.pin {
            Some(pin) if pin != fingerprint => {
                Err(rustls::Error::General("server certificate does not match the pinned fingerprint".into()))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not offered".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS 1.3-only client configuration for `trust`; the returned [`SeenCertificate`] tells, after a
/// handshake, which certificate the server presented.
pub fn client_config(trust: TrustDecision) -> Result<(Arc<ClientConfig>, Arc<SeenCertificate>), CertError> {
    let provider = provider();
    let seen = Arc::new(SeenCertificate::default());
    let builder =
        ClientConfig::builder_with_provider(provider.clone()).with_protocol_versions(&[&rustls::version::TLS13])?;
    let config = match trust {
        TrustDecision::Authority(cas) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in cas {
                roots.add(ca)?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TrustDecision::Pinned(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinVerifier {
                pin: Some(pin),
                seen: seen.clone(),
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
        TrustDecision::FirstUse => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinVerifier {
                pin: None,
                seen: seen.clone(),
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
    };
    Ok((Arc::new(config), seen))
}

/// Reads CA certificates from a PEM file, for [`TrustDecision::Authority`].
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|_| CertError::Pem { path: path.to_owned(), what: "CA certificate" })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| CertError::Pem { path: path.to_owned(), what: "CA certificate" })?;
    Ok(certs)
}

/// The frame keys of one connection, from the TLS exporter (RFC 8446 §7.5): both ends compute the same
/// secret and nobody else can. The only call to the exporter, so an API change stays here.
pub fn frame_keys<Data>(connection: &rustls::ConnectionCommon<Data>) -> Result<DirectionKeys, rustls::Error> {
    let secret = connection.export_keying_material([0u8; 32], b"EXPORTER-palomar-frame-keys", None)?;
    Ok(DirectionKeys::derive(&secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_identity_is_kept_and_its_key_is_owner_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = ServerIdentity::load_or_generate(dir.path()).expect("generated");
        let again = ServerIdentity::load_or_generate(dir.path()).expect("loaded");
        assert_eq!(first.fingerprint(), again.fingerprint());
        let mode = fs::metadata(dir.path().join("key.pem")).expect("key").permissions().mode();
        assert_eq!(mode & 0o077, 0);
    }

    #[test]
    fn fingerprints_parse_their_printed_form() {
        let fingerprint = Fingerprint([0xab; 32]);
        assert_eq!(Fingerprint::parse(&fingerprint.to_string()), Some(fingerprint));
        assert_eq!(Fingerprint::parse("SHA256:zz"), None);
    }
}
