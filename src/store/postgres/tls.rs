//! TLS to the server (feature `postgres-tls`): rustls with the aws-lc-rs provider and the
//! platform's root certificates (`SSL_CERT_FILE` names another bundle). Whether it is
//! used is the URL's `sslmode`: `prefer` (the default) uses it when the server offers
//! it, `require` refuses a server without it, `disable` never uses it.

use std::sync::Arc;

use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::StoreError;

/// The connector, or why there is none (no usable root certificate).
pub(super) fn connector() -> Result<MakeRustlsConnect, StoreError> {
    let refused = |reason: String| StoreError::Unusable {
        path: "<postgres tls>".into(),
        reason,
    };
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(refused(format!(
            "no root certificate could be loaded for TLS: {}",
            errors.join("; ")
        )));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| refused(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}
