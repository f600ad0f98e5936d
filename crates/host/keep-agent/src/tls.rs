//! TLS for the agent's API: rustls with the aws-lc-rs provider, a certificate chain
//! and key from PEM files named in the config. Handshakes run in each connection's
//! own task, bounded in number and time by the accept loop (`listener.rs`), so a
//! slow client never stalls it.
//!
//! With `client_ca`, clients may present a certificate (mTLS): rustls verifies its
//! chain to that CA (`WebPkiClientVerifier`, optional, so bearer tokens keep
//! working); a certificate from another CA fails the handshake. The verified
//! end-entity certificate's identities (subject CN, SAN DNS names, SHA-256) travel
//! with the connection to the handlers, which map them to a tenant.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The identities of a verified client certificate (its end-entity certificate).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientIdentity {
    pub common_name: Option<String>,
    pub dns_names: Vec<String>,
    /// SHA-256 of the certificate's DER, lower-case hex.
    pub sha256: String,
}

impl ClientIdentity {
    /// From a certificate rustls has already verified. A certificate whose subject or
    /// extensions do not parse here still has its fingerprint.
    pub fn from_der(der: &[u8]) -> Self {
        use sha2::Digest;
        let mut id = ClientIdentity {
            sha256: hex::encode(sha2::Sha256::digest(der)),
            ..Default::default()
        };
        use x509_cert::der::Decode;
        let Ok(cert) = x509_cert::Certificate::from_der(der) else {
            return id;
        };
        if let Ok(Some(cn)) = cert.tbs_certificate().subject().common_name() {
            id.common_name = Some(String::from(cn));
        }
        if let Ok(Some(san)) = cert
            .tbs_certificate()
            .get_extension::<x509_cert::ext::pkix::SubjectAltName>()
        {
            for name in san.1.0 {
                if let x509_cert::ext::pkix::name::GeneralName::DnsName(d) = name {
                    id.dns_names.push(d.as_str().to_ascii_lowercase());
                }
            }
        }
        id
    }

    /// Whether this certificate carries `want`.
    pub fn matches(&self, want: &crate::config::CertIdentity) -> bool {
        use crate::config::CertIdentity as C;
        match want {
            C::CommonName(cn) => self.common_name.as_deref() == Some(cn.as_str()),
            C::DnsName(d) => self.dns_names.iter().any(|x| x == d),
            C::Sha256(h) => &self.sha256 == h,
        }
    }
}

/// A connection's peer: its address and, with mTLS, its verified certificate.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub cert: Option<Arc<ClientIdentity>>,
}

/// The largest client CA file read.
const MAX_CA_FILE: u64 = 1 << 20;

/// A server configuration from PEM files; with `client_ca`, client certificates
/// signed by it are verified (and optional).
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let shown = ca.display();
            let size = std::fs::metadata(ca)
                .map_err(|e| format!("client_ca {shown}: {e}"))?
                .len();
            if size > MAX_CA_FILE {
                return Err(format!("client_ca {shown}: over 1 MiB"));
            }
            let mut roots = rustls::RootCertStore::empty();
            for c in
                CertificateDer::pem_file_iter(ca).map_err(|e| format!("client_ca {shown}: {e}"))?
            {
                let c = c.map_err(|e| format!("client_ca {shown}: {e}"))?;
                roots
                    .add(c)
                    .map_err(|e| format!("client_ca {shown}: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("client_ca {shown}: no certificate"));
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .allow_unauthenticated()
            .build()
            .map_err(|e| format!("client_ca {shown}: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
