//! TLS termination with rustls on the ring provider (never aws-lc-rs).
//!
//! - `off`: plain HTTP (behind a TLS-terminating proxy, or for tests).
//! - `self-signed`: a certificate for `localhost`, `127.0.0.1`, `::1` and the listen IPs
//!   (public and operator) is generated at start (rcgen); if `tls.cert_file` is set, its PEM is written there
//!   so development clients can trust it.
//! - `files`: PEM certificate chain and private key from `tls.cert_file` / `tls.key_file`.

use std::future::Future;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tracing::debug;

use crate::config::{Config, TlsMode};
use crate::error::{Error, Result};

/// A configured TLS acceptor.
#[derive(Clone)]
pub struct Acceptor(tokio_rustls::TlsAcceptor);

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Acceptor(..)")
    }
}

/// Builds the acceptor for the configured mode (`None` for plain HTTP).
pub fn acceptor(config: &Config) -> Result<Option<Acceptor>> {
    let (certs, key) = match config.tls.mode {
        TlsMode::Off => return Ok(None),
        TlsMode::SelfSigned => {
            let mut names = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ];
            for ip in [config.server.listen.ip(), config.admin_listen().ip()] {
                if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
                    names.push(ip.to_string());
                }
            }
            let ck = rcgen::generate_simple_self_signed(names).map_err(|e| {
                Error::config("tls.mode", format!("cannot generate a certificate: {e}"))
            })?;
            if let Some(path) = &config.tls.cert_file {
                let path = config.resolve_key_path("tls.cert_file", path)?;
                std::fs::write(&path, ck.cert.pem()).map_err(|e| {
                    Error::config(
                        "tls.cert_file",
                        format!("cannot write {}: {e}", path.display()),
                    )
                })?;
            }
            let key =
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
            (vec![ck.cert.der().clone()], key)
        }
        TlsMode::Files => {
            let cert_path = config.resolve_key_path(
                "tls.cert_file",
                config.tls.cert_file.as_deref().unwrap_or_default(),
            )?;
            let key_path = config.resolve_key_path(
                "tls.key_file",
                config.tls.key_file.as_deref().unwrap_or_default(),
            )?;
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
                .and_then(|it| it.collect::<std::result::Result<_, _>>())
                .map_err(|e| {
                    Error::config("tls.cert_file", format!("{}: {e}", cert_path.display()))
                })?;
            if certs.is_empty() {
                return Err(Error::config("tls.cert_file", "holds no certificate"));
            }
            let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
                Error::config("tls.key_file", format!("{}: {e}", key_path.display()))
            })?;
            (certs, key)
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config("tls.mode", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::config(
                "tls.key_file",
                format!("certificate and key do not fit: {e}"),
            )
        })?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Acceptor(tokio_rustls::TlsAcceptor::from(Arc::new(
        server,
    )))))
}

/// Turns on TCP keepalive for an accepted connection: a device that vanished (power
/// cut, network gone) is noticed within about two minutes without any traffic of our
/// own that would wake idle devices (probes after 60 s idle, every 10 s, 6 tries).
pub fn tcp_keepalive(tcp: &mut tokio::net::TcpStream) {
    let ka = socket2::TcpKeepalive::new()
        .with_time(std::time::Duration::from_secs(60))
        .with_interval(std::time::Duration::from_secs(10))
        .with_retries(6);
    if let Err(e) = socket2::SockRef::from(&*tcp).set_tcp_keepalive(&ka) {
        debug!(cause = %e, "could not turn on TCP keepalive");
    }
}

/// Serves `router` over TLS until `shutdown` completes (then stops accepting; open
/// connections finish on their own).
pub async fn serve(
    listener: TcpListener,
    acceptor: Acceptor,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (mut tcp, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    debug!(cause = %e, "accept failed");
                    continue;
                }
            },
        };
        tcp_keepalive(&mut tcp);
        let acceptor = acceptor.0.clone();
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    debug!(%peer, cause = %e, "TLS handshake failed");
                    return;
                }
            };
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await
            {
                debug!(%peer, cause = %e, "connection ended with an error");
            }
        });
    }
}
