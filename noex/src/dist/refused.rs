//! Why a connection with another node was refused at connect time, as the cluster events
//! report it.

use std::collections::HashMap;
use std::mem::Discriminant;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::handshake::HandshakeError;
use super::node_id::NodeId;
use super::status::ClusterEvent;
use super::wire::{Refusal, WireError};

/// Why a connection with another node was refused before it was up, from
/// [`super::ClusterEvent::Refused`].
///
/// The refusing side reports what it found wrong; the other side reports what it was told
/// (`by_peer` in the event), when it was told — a dialler that reaches another node than
/// it dialled hangs up without a word, and a name mismatch reaches the accepting side as
/// `BadCertificate`. A dial refused for one of these reasons is retried only slowly: the
/// settings of one of the nodes must change first. A seed is tried again every 30 s;
/// another address not at all if the node there had proved it holds the cluster secret
/// before it refused, else every 30 s until forgotten
/// ([`forget_unreachable_after`](super::ClusterConfig::forget_unreachable_after)): anyone
/// who answers at an address can refuse before proving anything. The exceptions are
/// [`CertificateExpired`](Self::CertificateExpired),
/// [`CertificateNotYetValid`](Self::CertificateNotYetValid) and [`Tls`](Self::Tls), which
/// are retried as a failed connection is (a certificate renewed, a clock caught up; TLS
/// alerts do not tell an expired certificate from one not valid yet), and
/// [`DuplicateNode`](Self::DuplicateNode), likewise retried: a dial that reached this
/// node itself (its own address under another name) is recognised by the node and ended
/// without a refusal reported, so a dial refused so was told it by someone else — a node
/// with this node's id, or anyone who answered at the address before any authentication.
///
/// A node reports each reason once per dial loop, and an accepted connection's refusal at
/// most once per 10 s per source address and reason (and likewise logs an accepted
/// connection that fails or times out in its handshake), so a port scanner cannot flood
/// the events or the log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusedReason {
    /// The nodes do not share the cluster secret.
    Secret,
    /// The nodes speak different protocol versions.
    Version {
        /// The refusing node's version.
        ours: u16,
        /// The other's.
        theirs: u16,
    },
    /// The node that answered is not the one dialled.
    WrongNode {
        /// The node dialled.
        expected: NodeId,
        /// The node that answered.
        found: NodeId,
    },
    /// The peer claims this node's own id (reported by the node refusing it; a dialler
    /// told so retries).
    DuplicateNode,
    /// This node runs TLS and the peer does not speak it (a node without TLS configured,
    /// or not a node at all).
    PeerWithoutTls,
    /// The peer speaks TLS and this node has no TLS configured.
    PeerUsesTls,
    /// The certificate does not chain to the configured certificate authority.
    UnknownIssuer,
    /// The certificate has expired.
    CertificateExpired,
    /// The certificate is not valid yet (a clock behind, or a certificate issued moments
    /// ago): retried.
    CertificateNotYetValid,
    /// The certificate is not valid for the name it was checked against.
    NameMismatch {
        /// The name dialled, or the host of the node id the peer claims (or
        /// `TlsConfig::server_name`).
        expected: String,
        /// The names the certificate is valid for.
        presented: Vec<String>,
    },
    /// The peer presented no certificate.
    NoCertificate,
    /// The certificate was refused for another reason; the text says which.
    BadCertificate(String),
    /// Another TLS failure; the text says which.
    Tls(String),
    /// The peer does not follow the handshake protocol; the text says how.
    Protocol(String),
    /// Another node with the same id (a later incarnation, as far as the refusing node
    /// can tell) is connected to the refusing node: two live nodes claim one id.
    IdInUse,
}

impl std::fmt::Display for RefusedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefusedReason::Secret => f.write_str("wrong cluster secret"),
            RefusedReason::Version { ours, theirs } => {
                write!(
                    f,
                    "protocol version {theirs} (the refusing node speaks {ours})"
                )
            }
            RefusedReason::WrongNode { expected, found } => {
                write!(f, "dialled {expected}, reached {found}")
            }
            RefusedReason::DuplicateNode => f.write_str("the peer claims this node's id"),
            RefusedReason::PeerWithoutTls => f.write_str("the peer does not speak TLS"),
            RefusedReason::PeerUsesTls => {
                f.write_str("the peer speaks TLS and this node has no TLS configured")
            }
            RefusedReason::UnknownIssuer => {
                f.write_str("certificate not issued by the cluster's certificate authority")
            }
            RefusedReason::CertificateExpired => f.write_str("certificate expired"),
            RefusedReason::CertificateNotYetValid => f.write_str("certificate not valid yet"),
            RefusedReason::NameMismatch {
                expected,
                presented,
            } => {
                // Quoted: the peer may have said it (`Refusal::CertificateName`), and a
                // line break in it would forge lines of the log.
                write!(
                    f,
                    "certificate not valid for {expected:?} (valid for {presented:?})"
                )
            }
            RefusedReason::NoCertificate => f.write_str("no certificate presented"),
            RefusedReason::BadCertificate(text) => write!(f, "bad certificate: {text}"),
            RefusedReason::Tls(text) => write!(f, "TLS: {text}"),
            RefusedReason::Protocol(text) => write!(f, "protocol: {text}"),
            RefusedReason::IdInUse => f.write_str("another node with this id is connected"),
        }
    }
}

impl RefusedReason {
    /// `false` for a refusal that another attempt may not meet (see the type's docs).
    pub(crate) fn is_final(&self) -> bool {
        !matches!(
            self,
            RefusedReason::CertificateExpired
                | RefusedReason::CertificateNotYetValid
                | RefusedReason::Tls(_)
                | RefusedReason::DuplicateNode
        )
    }
}

/// How often an accepted connection's refusal is reported per source address and reason.
const INBOUND_REPORT_EVERY: Duration = Duration::from_secs(10);

/// Source addresses and reasons remembered at most (then forgotten all at once).
const INBOUND_REPORTS_KEPT: usize = 1024;

/// How an accepted connection's handshake ended, as far as its reports are rate-limited.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum InboundEnd {
    /// Refused, for a reason of this kind.
    Refused(Discriminant<RefusedReason>),
    /// Failed otherwise (the connection closed or broke).
    Failed,
    /// Not finished in time.
    TimedOut,
}

/// When each (source address, end) of accepted connections was last reported.
#[derive(Default)]
pub(super) struct InboundReports(Mutex<HashMap<(IpAddr, InboundEnd), Instant>>);

impl InboundReports {
    /// `true` if the end of a connection from `from` is to be reported.
    fn admit(&self, from: IpAddr, end: InboundEnd) -> bool {
        let mut reported = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let key = (from, end);
        match reported.get(&key) {
            Some(last) if now.duration_since(*last) < INBOUND_REPORT_EVERY => false,
            _ => {
                if reported.len() >= INBOUND_REPORTS_KEPT {
                    reported.clear();
                }
                reported.insert(key, now);
                true
            }
        }
    }
}

impl Cluster {
    /// `true` if an accepted connection from `from` that ended so is to be logged as a
    /// warning (rate-limited; else at debug level).
    pub(super) fn inbound_report_due(&self, from: SocketAddr, end: InboundEnd) -> bool {
        self.inbound.reports.admit(from.ip(), end)
    }

    /// Reports (an event and a log line) a refusal by either side.
    pub(super) fn report_refused(
        &self,
        address: &str,
        inbound: bool,
        by_peer: bool,
        reason: RefusedReason,
    ) {
        let by = if by_peer { "the peer" } else { "this node" };
        tracing::warn!(%address, inbound, %reason, "connection refused by {by}");
        self.events.publish(ClusterEvent::Refused {
            address: address.to_owned(),
            inbound,
            by_peer,
            reason,
        });
    }

    /// Reports the refusal of an accepted connection from `from` (rate-limited); `false`
    /// if `error` is no refusal.
    pub(super) fn report_inbound_refusal(&self, from: SocketAddr, error: &HandshakeError) -> bool {
        let Some((reason, by_peer)) = classify(error) else {
            return false;
        };
        let end = InboundEnd::Refused(std::mem::discriminant(&reason));
        if self.inbound.reports.admit(from.ip(), end) {
            self.report_refused(&from.to_string(), true, by_peer, reason);
        } else {
            tracing::debug!(%from, %reason, "connection refused (reported recently)");
        }
        true
    }
}

/// The frame length a TLS record's first bytes read as: a handshake record (`0x16 0x03`)
/// or an alert (`0x15 0x03`), where a frame's length prefix was expected.
fn looks_like_tls(len: usize) -> bool {
    matches!(len >> 16, 0x1603 | 0x1503)
}

/// Why a handshake was refused, and whether by the peer; `None` for a failure that is not
/// a refusal (a lost connection, a tie between crossing connections, a node stopping).
pub(crate) fn classify(error: &HandshakeError) -> Option<(RefusedReason, bool)> {
    let from_refusal = |refusal: &Refusal| match refusal {
        Refusal::Version { ours, theirs } => Some(RefusedReason::Version {
            ours: *ours,
            theirs: *theirs,
        }),
        Refusal::Authentication => Some(RefusedReason::Secret),
        Refusal::DuplicateNode => Some(RefusedReason::DuplicateNode),
        Refusal::IdInUse => Some(RefusedReason::IdInUse),
        Refusal::Protocol => Some(RefusedReason::Protocol(refusal.to_string())),
        Refusal::CertificateName {
            expected,
            presented,
        } => Some(RefusedReason::NameMismatch {
            expected: expected.clone(),
            presented: presented.clone(),
        }),
        Refusal::AlreadyConnected { .. } | Refusal::ShuttingDown => None,
    };
    match error {
        HandshakeError::RefusedByPeer(refusal) => from_refusal(refusal).map(|r| (r, true)),
        HandshakeError::Refused(refusal) => from_refusal(refusal).map(|r| (r, false)),
        HandshakeError::BadPeerId(error) => {
            Some((RefusedReason::Protocol(error.to_string()), false))
        }
        HandshakeError::WrongPeer { expected, found } => Some((
            RefusedReason::WrongNode {
                expected: expected.clone(),
                found: found.clone(),
            },
            false,
        )),
        HandshakeError::Wire(WireError::Oversized { len, .. }) if looks_like_tls(*len) => {
            Some((RefusedReason::PeerUsesTls, false))
        }
        HandshakeError::Wire(WireError::Io(error)) => tls_failure(error),
        HandshakeError::Wire(error) => Some((RefusedReason::Protocol(error.to_string()), false)),
    }
}

#[cfg(not(feature = "tls"))]
fn tls_failure(_: &std::io::Error) -> Option<(RefusedReason, bool)> {
    None
}

/// The TLS failure an I/O error of a TLS stream carries, if it does.
#[cfg(feature = "tls")]
fn tls_failure(error: &std::io::Error) -> Option<(RefusedReason, bool)> {
    use futures_rustls::rustls::{AlertDescription, CertificateError, Error};

    let error = error.get_ref()?.downcast_ref::<Error>()?;
    let certificate = |error: &CertificateError| match error {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            RefusedReason::CertificateExpired
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            RefusedReason::CertificateNotYetValid
        }
        CertificateError::UnknownIssuer => RefusedReason::UnknownIssuer,
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => RefusedReason::NameMismatch {
            expected: expected.to_str().into_owned(),
            presented: presented.clone(),
        },
        CertificateError::NotValidForName => RefusedReason::NameMismatch {
            expected: String::new(),
            presented: Vec::new(),
        },
        other => RefusedReason::BadCertificate(format!("{other:?}")),
    };
    Some(match error {
        Error::InvalidCertificate(error) => (certificate(error), false),
        Error::NoCertificatesPresented => (RefusedReason::NoCertificate, false),
        // Not a TLS record where one was expected.
        Error::InvalidMessage(_) => (RefusedReason::PeerWithoutTls, false),
        Error::AlertReceived(alert) => {
            let reason = match alert {
                AlertDescription::CertificateExpired => RefusedReason::CertificateExpired,
                AlertDescription::UnknownCA => RefusedReason::UnknownIssuer,
                AlertDescription::CertificateRequired => RefusedReason::NoCertificate,
                AlertDescription::BadCertificate
                | AlertDescription::CertificateUnknown
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateRevoked => {
                    RefusedReason::BadCertificate(format!("{alert:?}"))
                }
                other => RefusedReason::Tls(format!("the peer sent the alert {other:?}")),
            };
            (reason, true)
        }
        other => (RefusedReason::Tls(other.to_string()), false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_peer_said_is_quoted_in_a_reasons_text() {
        // A refusal's text goes into the log: a peer's line break must not start a line.
        let reason = RefusedReason::NameMismatch {
            expected: "h\nERROR forged".to_owned(),
            presented: vec!["p\nq".to_owned()],
        };
        let text = reason.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains(r#""h\nERROR forged""#), "{text}");
        // A refusal an accepting node gets from its dialler, logged as a failure.
        let refused = HandshakeError::RefusedByPeer(Refusal::AlreadyConnected {
            node: "n\nERROR forged".to_owned(),
        });
        let text = refused.to_string();
        assert!(!text.contains('\n'), "{text}");
    }
}
