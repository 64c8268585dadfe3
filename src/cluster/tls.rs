//! Mutual TLS between nodes: each side presents a certificate signed by the cluster's CA
//! and checks the other's. Files are PEM.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::config::TlsFiles;

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cluster.tls.{key}: {reason}")]
pub struct TlsError {
    /// Which setting.
    pub key: &'static str,
    /// Why.
    pub reason: String,
}

/// The acceptor and connector of one node.
pub(crate) struct Tls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

fn err(key: &'static str, reason: impl std::fmt::Display) -> TlsError {
    TlsError {
        key,
        reason: reason.to_string(),
    }
}

impl Tls {
    /// Loads the files.
    pub(crate) fn load(files: &TlsFiles) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
            .map_err(|e| err("cert", format!("{}: {e}", files.cert.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| err("cert", format!("{}: {e}", files.cert.display())))?;
        if certs.is_empty() {
            return Err(err(
                "cert",
                format!("{}: no certificate", files.cert.display()),
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&files.key)
            .map_err(|e| err("key", format!("{}: {e}", files.key.display())))?;
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(&files.ca)
            .map_err(|e| err("ca", format!("{}: {e}", files.ca.display())))?
        {
            let ca = ca.map_err(|e| err("ca", format!("{}: {e}", files.ca.display())))?;
            roots.add(ca).map_err(|e| err("ca", e))?;
        }
        let roots = Arc::new(roots);
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .build()
        .map_err(|e| err("ca", e))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| err("cert", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|e| err("key", e))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err("cert", e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| err("key", e))?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }

    /// The handshake as the dialing side; `addr`'s host must be in the peer's certificate.
    pub(crate) async fn connect(
        &self,
        addr: &str,
        stream: TcpStream,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        self.connector.connect(name, stream).await
    }

    /// The acceptor, for ractor's own listener (which then refuses plain connections).
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// The handshake as the accepting side.
    pub(crate) async fn accept(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
        self.acceptor.accept(stream).await
    }
}
