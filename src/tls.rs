//! Trust roots for pullpilot's own TLS clients: the system CA bundle (read once, the same
//! candidates as the registry client), falling back to the compiled-in Mozilla roots; used by the
//! notification HTTP agent, SMTP (STARTTLS, implicit TLS) and `listen`'s wss:// relay connection.

use std::sync::{Arc, OnceLock};

const BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// DER certificates from `SSL_CERT_FILE` or the first system bundle that has any.
pub(crate) fn system_ders() -> Option<&'static [Vec<u8>]> {
    static ROOTS: OnceLock<Option<Vec<Vec<u8>>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
            let candidates = env.into_iter().chain(BUNDLES.iter().map(Into::into));
            candidates.into_iter().find_map(|path| {
                let pem = std::fs::read(&path).ok()?;
                let ders: Vec<Vec<u8>> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.der().to_vec()),
                        _ => None,
                    })
                    .collect();
                (!ders.is_empty()).then_some(ders)
            })
        })
        .as_deref()
}

/// A TLS client configuration (SMTP, the relay's WebSocket): system roots (or Mozilla's) plus
/// `extra` DER roots.
pub(crate) fn tls_client_config(extra: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut store = rustls::RootCertStore::empty();
    match system_ders() {
        Some(ders) => {
            let certs = ders
                .iter()
                .map(|d| rustls::pki_types::CertificateDer::from(d.clone()));
            store.add_parsable_certificates(certs);
        }
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    for der in extra {
        store
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| format!("extra TLS root: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
