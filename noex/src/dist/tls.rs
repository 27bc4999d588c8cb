//! TLS between nodes (the `tls` cargo feature).
//!
//! With a [`TlsConfig`] in its [`ClusterConfig`](super::ClusterConfig), a node runs every
//! connection to another node over TLS 1.3 (rustls, on the same smol sockets), with mutual
//! authentication: each side presents its certificate, and each accepts only a peer whose
//! certificate chains to the configured certificate authority. The dialling side also
//! checks that the peer's certificate is valid for the host it dialled (the `host` of
//! `host:port`, a DNS name or an IP address), and the accepting side that the dialler's
//! certificate is valid for the host of the node id it claims (so a node cannot pass for
//! a node of another host) — and the dialling side the same of the id the accepting node
//! claims, which need not name the address dialled (a seed without a name, a discovered
//! address) — all against [`TlsConfig::server_name`] instead, if set, for certificates
//! issued to one service name. The cluster secret's handshake then runs
//! inside TLS: a peer must pass both.
//!
//! Certificates are checked when a connection is made (every handshake is a full one: no
//! session resumption), not while it lasts: a node whose certificate expires keeps its
//! connections until they drop. A node certificate with an extended key usage must allow
//! both server and client authentication (it acts as both).
//!
//! A peer that is refused — no TLS, a certificate from another authority, expired, not
//! valid for the name — is reported on both sides as a [`ClusterEvent::Refused`] with a
//! [`RefusedReason`] and a log line, and the node goes on serving its other peers.
//!
//! [`ClusterEvent::Refused`]: super::ClusterEvent::Refused
//! [`RefusedReason`]: super::RefusedReason

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_net::TcpStream;
use futures_rustls::rustls::client::verify_server_name;
use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use futures_rustls::rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use futures_rustls::rustls::{self, CertificateError, ClientConfig, RootCertStore, ServerConfig};
use futures_rustls::{TlsAcceptor, TlsConnector, TlsStream};
use thiserror::Error;

use super::node_id::{split_address, NodeId};
use super::socket::Socket;
use super::transport::Stream;
use super::wire::Refusal;

/// The TLS settings of a node: its certificate and key, and the certificate authority its
/// peers' certificates must chain to.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempdir();
/// use noex::{ClusterConfig, TlsConfig};
///
/// let tls = TlsConfig::from_pem_files(
///     dir.join("ca.pem"),    // the cluster's certificate authority
///     dir.join("node.pem"),  // this node's certificate (chain), issued by it
///     dir.join("node.key"),  // and its private key (PKCS #8, PKCS #1 or SEC1)
/// )?;
/// let config = ClusterConfig::new("app")
///     .secret("a long random secret")
///     .tls(tls);
/// # let _ = config;
/// # Ok(())
/// # }
/// # fn tempdir() -> std::path::PathBuf {
/// #     let dir = std::env::temp_dir().join(format!("noex-tls-doc-{}", std::process::id()));
/// #     std::fs::create_dir_all(&dir).unwrap();
/// #     let ca_key = rcgen::KeyPair::generate().unwrap();
/// #     let ca_params = {
/// #         let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
/// #         p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
/// #         p
/// #     };
/// #     let ca = ca_params.self_signed(&ca_key).unwrap();
/// #     let issuer = rcgen::Issuer::new(ca_params, ca_key);
/// #     let key = rcgen::KeyPair::generate().unwrap();
/// #     let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
/// #         .unwrap()
/// #         .signed_by(&key, &issuer)
/// #         .unwrap();
/// #     std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
/// #     std::fs::write(dir.join("node.pem"), cert.pem()).unwrap();
/// #     std::fs::write(dir.join("node.key"), key.serialize_pem()).unwrap();
/// #     dir
/// # }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Why a [`TlsConfig`] could not be made.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// PEM text held no certificate, no key, or could not be parsed.
    #[error("{what}: {problem}")]
    Pem {
        /// What was read (a file, or which in-memory PEM).
        what: String,
        /// What is wrong with it.
        problem: String,
    },
    /// rustls refused the certificates or key (a key that does not match the certificate,
    /// say).
    #[error("invalid TLS configuration: {0}")]
    Rustls(String),
    /// Not a DNS name or an IP address.
    #[error("{0:?} is not a valid server name")]
    ServerName(String),
}

impl TlsConfig {
    /// Reads the certificate authority (one or more certificates), this node's certificate
    /// chain (its own certificate first) and its private key from PEM files.
    pub fn from_pem_files(
        ca: impl AsRef<Path>,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<TlsConfig, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|error| TlsError::Read {
                path: path.to_owned(),
                error,
            })
        };
        let (ca, cert_chain, key) = (ca.as_ref(), cert_chain.as_ref(), key.as_ref());
        TlsConfig::build(
            certificates(&read(ca)?, &ca.display().to_string())?,
            certificates(&read(cert_chain)?, &cert_chain.display().to_string())?,
            private_key(&read(key)?, &key.display().to_string())?,
        )
    }

    /// As [`TlsConfig::from_pem_files`], from PEM text in memory.
    pub fn from_pem(ca: &[u8], cert_chain: &[u8], key: &[u8]) -> Result<TlsConfig, TlsError> {
        TlsConfig::build(
            certificates(ca, "the certificate authority")?,
            certificates(cert_chain, "the certificate chain")?,
            private_key(key, "the private key")?,
        )
    }

    /// Uses rustls configurations made elsewhere: `client` for connections this node
    /// dials, `server` for those it accepts. For mutual authentication, `client` must
    /// present a certificate and `server` must verify its peers' (a
    /// [`rustls::server::WebPkiClientVerifier`]); the TLS versions
    /// and cipher suites are theirs. Turn session resumption off in both (as the other
    /// constructors do): a resumed handshake checks no certificate, so an expired or
    /// revoked one would be let back in.
    pub fn from_rustls(client: Arc<ClientConfig>, server: Arc<ServerConfig>) -> TlsConfig {
        TlsConfig {
            client,
            server,
            server_name: None,
        }
    }

    /// The name a peer's certificate must be valid for when this node dials it, instead of
    /// the host it dials: for certificates issued to one service name that every node
    /// presents (say `noex.internal`).
    pub fn server_name(mut self, name: &str) -> Result<TlsConfig, TlsError> {
        let name = ServerName::try_from(name.to_owned())
            .map_err(|_| TlsError::ServerName(name.to_owned()))?;
        self.server_name = Some(name);
        Ok(self)
    }

    fn build(
        ca: Vec<CertificateDer<'static>>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<TlsConfig, TlsError> {
        let rustls_error = |error: rustls::Error| TlsError::Rustls(error.to_string());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for certificate in ca {
            roots.add(certificate).map_err(rustls_error)?;
        }
        let roots = Arc::new(roots);
        let mut client = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(rustls_error)?
            .with_root_certificates(roots.clone())
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(rustls_error)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|error| TlsError::Rustls(error.to_string()))?;
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(rustls_error)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(rustls_error)?;
        // No session resumption: a resumed handshake checks no certificate, so a node
        // whose certificate expired would get back in. Connections between nodes are
        // long-lived; a full handshake each time costs nothing that matters.
        client.resumption = rustls::client::Resumption::disabled();
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        server.send_tls13_tickets = 0;
        Ok(TlsConfig::from_rustls(Arc::new(client), Arc::new(server)))
    }

    /// Runs the TLS handshake of a connection this node dialled to `address`.
    pub(crate) async fn connect(&self, address: &str, tcp: TcpStream) -> io::Result<Stream> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => split_address(address)
                .ok()
                .and_then(|(host, _)| ServerName::try_from(host.to_owned()).ok())
                .ok_or_else(|| {
                    let text = format!("{address} names no valid TLS server name");
                    io::Error::new(io::ErrorKind::InvalidInput, text)
                })?,
        };
        let stream = TlsConnector::from(self.client.clone())
            .connect(name, Socket::new(tcp))
            .await?;
        Ok(Stream::Tls(Box::new(TlsStream::Client(stream))))
    }

    /// Runs the TLS handshake of a connection this node accepted.
    pub(crate) async fn accept(&self, tcp: TcpStream) -> io::Result<Stream> {
        let stream = TlsAcceptor::from(self.server.clone())
            .accept(Socket::new(tcp))
            .await?;
        Ok(Stream::Tls(Box::new(TlsStream::Server(stream))))
    }

    /// What a connection's peer proved with its certificate, to check the node id it then
    /// claims against (`None` for a stream that is not a TLS one). Both ways: a dialled
    /// peer's certificate was checked against the address dialled, which need not be the
    /// host of the id it claims (a seed or discovered address).
    pub(crate) fn peer_identity(&self, stream: &Stream) -> Option<PeerIdentity> {
        let Stream::Tls(tls) = stream else {
            return None;
        };
        let certificates = match &**tls {
            TlsStream::Server(server) => server.get_ref().1.peer_certificates(),
            TlsStream::Client(client) => client.get_ref().1.peer_certificates(),
        };
        let certificate = certificates?.first()?.clone();
        Some(PeerIdentity {
            certificate: certificate.into_owned(),
            server_name: self.server_name.clone(),
        })
    }
}

/// The certificate an accepted peer presented (it chains to the authority: the TLS
/// handshake checked that).
pub(crate) struct PeerIdentity {
    certificate: CertificateDer<'static>,
    server_name: Option<ServerName<'static>>,
}

impl PeerIdentity {
    /// Checks that the certificate is valid for the host of the node id the peer claims —
    /// as a dial is checked against the host it dials — or, with
    /// [`TlsConfig::server_name`], for that name. So a node cannot claim the id of a node on
    /// another host with its own certificate.
    pub(crate) fn check(&self, peer: &NodeId) -> Result<(), Refusal> {
        let expected = match &self.server_name {
            Some(name) => name.clone(),
            None => ServerName::try_from(peer.host().to_owned()).map_err(|_| {
                Refusal::CertificateName {
                    expected: peer.host().to_owned(),
                    presented: Vec::new(),
                }
            })?,
        };
        let refused = |presented| Refusal::CertificateName {
            expected: expected.to_str().into_owned(),
            presented,
        };
        let parsed = ParsedCertificate::try_from(&self.certificate).map_err(|_| refused(vec![]))?;
        verify_server_name(&parsed, &expected).map_err(|error| match error {
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                presented,
                ..
            }) => refused(presented),
            _ => refused(Vec::new()),
        })
    }
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Pem {
            what: what.to_owned(),
            problem: error.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(TlsError::Pem {
            what: what.to_owned(),
            problem: "no certificate found".to_owned(),
        });
    }
    Ok(certificates)
}

fn private_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|error| TlsError::Pem {
        what: what.to_owned(),
        problem: match error {
            rustls::pki_types::pem::Error::NoItemsFound => "no private key found".to_owned(),
            error => error.to_string(),
        },
    })
}
