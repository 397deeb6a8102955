//! The one HTTPS client this crate makes: [`ReceiptVerifier::fetch`](crate::ReceiptVerifier::fetch)
//! reads the merchant server's receipt keys with it.
//!
//! reqwest on rustls with the ring provider and the platform's certificate verifier,
//! the same TLS set-up as the rest of scanbind. The workspace builds reqwest without a
//! default crypto provider, so a bare `reqwest::Client::builder().build()` would panic;
//! this builder configures TLS first.

use std::sync::Arc;

/// Why the HTTPS client could not be made.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A reqwest client builder with rustls (ring) and the platform verifier already set.
pub(crate) fn client_builder() -> Result<reqwest::ClientBuilder, BoxError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
        Vec::<rustls::pki_types::CertificateDer<'static>>::new(),
        provider.clone(),
    )
    .map_err(|e| format!("invalid client configuration: TLS roots: {e}"))?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("invalid client configuration: TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(reqwest::Client::builder().tls_backend_preconfigured(tls))
}
