//! TLS with a generated self-signed certificate: a client that trusts it talks to the
//! server (both listeners); a client that does not is refused.

mod common;

use std::sync::Arc;

use common::*;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

fn client_trusting(roots: rustls::RootCertStore) -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_tls_serves_the_api() {
    let world = world(Backend::Sqlite).await;
    let cert = world.dir.path().join("server-cert.pem");
    let server = world.spawn_server(&[
        ("SCANBIND_SERVER_TLS_MODE", "self-signed"),
        ("SCANBIND_SERVER_TLS_CERT_FILE", cert.to_str().unwrap()),
    ]);
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&cert).unwrap())
        .unwrap();
    let trusted = client_trusting(roots);
    let r = trusted
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // A signed device request over TLS.
    let device = Device {
        key: scanbind_device_api::DeviceKey::generate().unwrap(),
        http: trusted,
        base: server.base.clone(),
    };
    device.register().await;
    device.ok("GET", "/v1/devices/me", None).await;
    // The operator listener speaks TLS with the same certificate.
    assert!(server.admin.starts_with("https://"), "{}", server.admin);
    let r = device
        .http
        .get(format!("{}/metrics", server.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        untrusted_refuses(&format!("{}/metrics", server.admin)).await,
        "a client without the certificate reached the operator listener"
    );
    // Nobody else's trust store accepts it.
    let untrusted = client_trusting(rustls::RootCertStore::empty());
    assert!(
        untrusted
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_err()
    );
}

/// Whether a client that trusts nothing is refused at `url` (the TLS handshake fails).
async fn untrusted_refuses(url: &str) -> bool {
    client_trusting(rustls::RootCertStore::empty())
        .get(url)
        .send()
        .await
        .is_err()
}
