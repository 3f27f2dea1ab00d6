//! A TLS front: terminates HTTPS with a certificate from a throw-away CA and forwards the plain
//! bytes to an `http://` upstream, so the service's `elasticsearch.ssl`/`ca_certs`/`verify_certs`
//! settings meet a real TLS handshake.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Stops when dropped.
pub struct TlsFront {
    port: u16,
    /// PEM of the CA that signed the server certificate (for `localhost` and `127.0.0.1`).
    pub ca_pem: String,
    task: JoinHandle<()>,
}

impl TlsFront {
    pub async fn start(upstream_url: &str) -> TlsFront {
        let upstream = upstream_url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("TlsFront supports http:// upstreams only: {upstream_url}"))
            .trim_end_matches('/')
            .to_string();
        let (ca_pem, chain, key) = certificates();
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind tls");
        let port = listener.local_addr().expect("tls addr").port();
        let task = tokio::spawn(accept_loop(listener, acceptor, upstream));
        TlsFront { port, ca_pem, task }
    }

    /// `https://localhost:<port>`.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// Writes the CA certificate to `dir/ca.pem` and returns its path.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("write ca.pem");
        path
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A CA, and a server certificate it signed: `(ca_pem, server_chain, server_key)`.
fn certificates() -> (String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "content-sync test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params");
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (ca_cert.pem(), vec![cert.der().clone()], key_der)
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, upstream: String) {
    // Connection tasks live in the set: aborting this task drops the set, which aborts them.
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
        conns.spawn(async move {
            // A client that rejects our certificate ends the handshake: nothing to forward.
            let Ok(mut tls) = acceptor.accept(stream).await else {
                return;
            };
            let Ok(mut plain) = TcpStream::connect(&upstream).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
        });
    }
}
