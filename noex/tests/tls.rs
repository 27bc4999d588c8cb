//! TLS between nodes (the `tls` feature): a cluster over TLS calls and casts like any other,
//! and each way a peer's TLS can be wrong is refused on both sides with its own reason,
//! while the node goes on serving its other peers. Certificates are made at run time.
#![cfg(feature = "tls")]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{cluster_config, run_blocking, wait_connected, within};
use noex::{behavior, ClusterEvent, ClusterEvents, Node, RefusedReason, TlsConfig, TlsError};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A certificate authority that issues node certificates.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Authority { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate (PEM) for `names` and its key (PEM).
    fn issue(&self, names: &[&str], expired: bool) -> (String, String) {
        match expired {
            true => self.issue_valid(names, -1000, -10),
            false => self.issue_valid(names, -60, 3600),
        }
    }

    /// A certificate (PEM) for `names`, valid from `from` to `until` seconds from now, and
    /// its key (PEM).
    fn issue_valid(&self, names: &[&str], from: i64, until: i64) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let at = |offset: i64| {
            let epoch = rcgen::date_time_ymd(1970, 1, 1);
            match offset >= 0 {
                true => epoch + now + Duration::from_secs(offset as u64),
                false => epoch + now - Duration::from_secs(offset.unsigned_abs()),
            }
        };
        params.not_before = at(from);
        params.not_after = at(until);
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        (certificate.pem(), key.serialize_pem())
    }

    /// The TLS settings of a node that trusts this authority and presents a certificate
    /// for 127.0.0.1 issued by `issuer` (this authority, or another).
    fn node(&self, issuer: &Authority, expired: bool) -> TlsConfig {
        self.node_named(issuer, &["127.0.0.1", "localhost"], expired)
    }

    fn node_named(&self, issuer: &Authority, names: &[&str], expired: bool) -> TlsConfig {
        let (certificate, key) = issuer.issue(names, expired);
        self.node_with(&certificate, &key)
    }

    /// A node that trusts this authority and presents `certificate`.
    fn node_valid(&self, from: i64, until: i64) -> TlsConfig {
        let (certificate, key) = self.issue_valid(&["127.0.0.1"], from, until);
        self.node_with(&certificate, &key)
    }

    fn node_with(&self, certificate: &str, key: &str) -> TlsConfig {
        TlsConfig::from_pem(
            self.pem().as_bytes(),
            certificate.as_bytes(),
            key.as_bytes(),
        )
        .unwrap()
    }
}

#[behavior(name = "tally")]
pub struct Tally {
    total: u64,
}

#[behavior]
impl Tally {
    #[init]
    fn init() -> Self {
        Tally { total: 0 }
    }

    #[cast]
    fn add(&mut self, n: u64) {
        self.total += n;
    }

    #[call]
    fn total(&self) -> u64 {
        self.total
    }

    #[call]
    fn echo(&self, bytes: Vec<u8>) -> Vec<u8> {
        bytes
    }

    #[call]
    fn echo_bytes(&self, bytes: noex::Bytes) -> noex::Bytes {
        bytes
    }
}

fn id(node: &Node) -> String {
    node.local_node_id().unwrap().to_string()
}

async fn start(name: &str, tls: Option<TlsConfig>, seed: Option<&Node>) -> Node {
    let mut config = cluster_config(name).register_behaviors();
    if let Some(tls) = tls {
        config = config.tls(tls);
    }
    if let Some(seed) = seed {
        config = config.seed(id(seed));
    }
    Node::start(config).await.expect("node starts")
}

/// The next refusal among `events`: (inbound, by_peer, reason).
async fn refused(events: &ClusterEvents) -> (bool, bool, RefusedReason) {
    within("a refused connection", async {
        loop {
            match events.recv().await.expect("the node is gone") {
                ClusterEvent::Refused {
                    inbound,
                    by_peer,
                    reason,
                    ..
                } => return (inbound, by_peer, reason),
                _ => continue,
            }
        }
    })
    .await
}

/// `node` still serves its peer `from`: a call from there is answered.
async fn still_serves(node: &Node, from: &Node) {
    // (`from` may see the connection up a moment after `node` does.)
    common::eventually("the peer to see the connection", || {
        from.connected_nodes()
            .iter()
            .any(|peer| Some(&peer.id) == node.local_node_id())
    })
    .await;
    let tally = node.spawn::<Tally>(()).await.unwrap();
    let remote = from.server_ref::<Tally>(tally.pid()).unwrap();
    remote.add(2).unwrap();
    assert_eq!(remote.total().await, Ok(2));
}

fn shutdown(nodes: &[&Node]) {
    for node in nodes {
        node.shutdown();
    }
}

#[test]
fn a_tls_cluster_of_three_calls_and_casts() {
    run_blocking(async {
        let ca = Authority::new("cluster CA");
        let a = start("a", Some(ca.node(&ca, false)), None).await;
        let b = start("b", Some(ca.node(&ca, false)), Some(&a)).await;
        let c = start("c", Some(ca.node(&ca, false)), Some(&a)).await;
        for node in [&a, &b, &c] {
            wait_connected(node, 2).await;
        }
        for (host, caller) in [(&a, &b), (&b, &c), (&c, &a)] {
            let tally = host.spawn::<Tally>(()).await.unwrap();
            let remote = caller.server_ref::<Tally>(tally.pid()).unwrap();
            for n in 1..=100 {
                remote.add(n).unwrap();
            }
            assert_eq!(remote.total().await, Ok(5050));
            // Larger than a TLS record (16 KiB) and than the reader's buffer.
            let big: Vec<u8> = (0..3 << 20).map(|i| (i % 251) as u8).collect();
            let echoed = remote
                .echo_with_timeout(big.clone(), Duration::from_secs(20))
                .await
                .unwrap();
            assert!(echoed == big);
            // A `Bytes` is lent to its frame, not copied, both ways (written vectored).
            let big = noex::Bytes::from(big);
            let echoed = remote
                .echo_bytes_with_timeout(big.clone(), Duration::from_secs(20))
                .await
                .unwrap();
            assert!(echoed == big);
        }
        // Spawned by name on another node, over TLS too.
        let remote = a
            .spawn_on::<Tally>(b.local_node_id().unwrap(), ())
            .await
            .unwrap();
        remote.add(7).unwrap();
        assert_eq!(remote.total().await, Ok(7));
        shutdown(&[&a, &b, &c]);
    });
}

#[test]
fn a_node_without_tls_and_a_node_with_it_refuse_each_other() {
    run_blocking(async {
        let ca = Authority::new("cluster CA");
        let secure = start("secure", Some(ca.node(&ca, false)), None).await;
        let secure_events = secure.cluster_events();
        // A node without TLS dials the TLS node.
        let plain = start("plain", None, Some(&secure)).await;
        let plain_events = plain.cluster_events();
        assert_eq!(
            refused(&secure_events).await,
            (true, false, RefusedReason::PeerWithoutTls)
        );
        assert_eq!(
            refused(&plain_events).await,
            (false, false, RefusedReason::PeerUsesTls)
        );
        // And a TLS node dials a node without TLS.
        let dialler = start("dialler", Some(ca.node(&ca, false)), Some(&plain)).await;
        let dialler_events = dialler.cluster_events();
        assert_eq!(
            refused(&plain_events).await,
            (true, false, RefusedReason::PeerUsesTls)
        );
        assert_eq!(
            refused(&dialler_events).await,
            (false, false, RefusedReason::PeerWithoutTls)
        );
        assert!(secure.connected_nodes().is_empty() && plain.connected_nodes().is_empty());
        // The TLS node goes on serving TLS peers.
        let good = start("good", Some(ca.node(&ca, false)), Some(&secure)).await;
        wait_connected(&secure, 1).await;
        still_serves(&secure, &good).await;
        shutdown(&[&secure, &plain, &dialler, &good]);
    });
}

#[test]
fn a_certificate_from_another_authority_is_refused_on_both_sides() {
    run_blocking(async {
        let (ca, other) = (Authority::new("cluster CA"), Authority::new("another CA"));
        let a = start("a", Some(ca.node(&ca, false)), None).await;
        let friend = start("friend", Some(ca.node(&ca, false)), Some(&a)).await;
        wait_connected(&a, 1).await;
        let events = a.cluster_events();
        // Trusts the right authority, but its own certificate comes from another.
        let stranger = start("stranger", Some(ca.node(&other, false)), Some(&a)).await;
        let stranger_events = stranger.cluster_events();
        assert_eq!(
            refused(&events).await,
            (true, false, RefusedReason::UnknownIssuer)
        );
        assert_eq!(
            refused(&stranger_events).await,
            (false, true, RefusedReason::UnknownIssuer)
        );
        // Nor does a node that trusts only the other authority get in, from either side.
        let outsider = start("outsider", Some(other.node(&other, false)), Some(&a)).await;
        let (_, by_peer, reason) = refused(&outsider.cluster_events()).await;
        assert_eq!((by_peer, reason), (false, RefusedReason::UnknownIssuer));
        assert_eq!(a.connected_nodes().len(), 1);
        still_serves(&a, &friend).await;
        shutdown(&[&a, &friend, &stranger, &outsider]);
    });
}

#[test]
fn an_expired_certificate_is_refused_on_both_sides() {
    run_blocking(async {
        let ca = Authority::new("cluster CA");
        let a = start("a", Some(ca.node(&ca, false)), None).await;
        let friend = start("friend", Some(ca.node(&ca, false)), Some(&a)).await;
        wait_connected(&a, 1).await;
        let events = a.cluster_events();
        let late = start("late", Some(ca.node(&ca, true)), Some(&a)).await;
        let late_events = late.cluster_events();
        assert_eq!(
            refused(&events).await,
            (true, false, RefusedReason::CertificateExpired)
        );
        assert_eq!(
            refused(&late_events).await,
            (false, true, RefusedReason::CertificateExpired)
        );
        assert_eq!(a.connected_nodes().len(), 1);
        still_serves(&a, &friend).await;
        shutdown(&[&a, &friend, &late]);
    });
}

/// The names of a refusal that must be a `NameMismatch` seen as `(inbound, by_peer)`.
fn name_mismatch(
    (inbound, by_peer, reason): (bool, bool, RefusedReason),
    seen: (bool, bool),
) -> (String, Vec<String>) {
    match reason {
        RefusedReason::NameMismatch {
            expected,
            presented,
        } if (inbound, by_peer) == seen => (expected, presented),
        other => panic!("expected a name mismatch {seen:?}, got {other:?} ({inbound}, {by_peer})"),
    }
}

#[test]
fn a_certificate_for_another_name_is_refused_unless_that_name_is_expected() {
    run_blocking(async {
        let ca = Authority::new("cluster CA");
        // Its certificate names a service, not the address it is dialled at.
        let service = ca.node_named(&ca, &["noex.internal"], false);
        let a = start("a", Some(service), None).await;
        let events = a.cluster_events();
        let b = start("b", Some(ca.node(&ca, false)), Some(&a)).await;
        let b_events = b.cluster_events();
        let (expected, presented) = name_mismatch(refused(&b_events).await, (false, false));
        assert_eq!(expected, "127.0.0.1");
        assert_eq!(presented, ["DnsName(\"noex.internal\")"]);
        let (inbound, by_peer, reason) = refused(&events).await;
        assert!(inbound && by_peer, "{reason:?}");
        assert!(
            matches!(reason, RefusedReason::BadCertificate(_)),
            "{reason:?}"
        );
        // A node that expects the service name gets in.
        let expecting = ca.node(&ca, false).server_name("noex.internal").unwrap();
        let c = start("c", Some(expecting), Some(&a)).await;
        wait_connected(&a, 1).await;
        still_serves(&a, &c).await;
        shutdown(&[&a, &b, &c]);
    });
}

#[test]
fn a_node_cannot_claim_an_id_on_a_host_its_certificate_is_not_for() {
    run_blocking(async {
        let ca = Authority::new("cluster CA");
        let a = start("a", Some(ca.node(&ca, false)), None).await;
        let events = a.cluster_events();
        // Issued by the cluster's authority, but for another host than the one b's id names
        // (127.0.0.1): b passes the TLS handshake, and is refused when it claims its id.
        let b = start(
            "b",
            Some(ca.node_named(&ca, &["127.0.0.2"], false)),
            Some(&a),
        )
        .await;
        let b_events = b.cluster_events();
        let (expected, presented) = name_mismatch(refused(&events).await, (true, false));
        assert_eq!(expected, "127.0.0.1");
        assert_eq!(presented, ["IpAddress(127.0.0.2)"]);
        let (expected, _) = name_mismatch(refused(&b_events).await, (false, true));
        assert_eq!(expected, "127.0.0.1");
        assert!(a.connected_nodes().is_empty() && b.connected_nodes().is_empty());
        // A node whose certificate names its host gets in.
        let c = start("c", Some(ca.node(&ca, false)), Some(&a)).await;
        wait_connected(&a, 1).await;
        still_serves(&a, &c).await;
        shutdown(&[&a, &b, &c]);
    });
}

#[test]
fn a_dialled_node_cannot_claim_an_id_on_a_host_its_certificate_is_not_for() {
    run_blocking(async {
        let ca = Authority::new("cluster CA");
        // a's certificate is for 127.0.0.1, where it listens, but its id claims another
        // host: dialled at its address (a seed without a name, a discovered address), it
        // passes the TLS handshake, and is refused when it claims its id.
        let config = cluster_config("a")
            .advertise_host("localhost")
            .tls(ca.node_named(&ca, &["127.0.0.1"], false));
        let a = Node::start(config).await.unwrap();
        let a_events = a.cluster_events();
        let address = id(&a).replace("a@localhost", "127.0.0.1");
        let config = cluster_config("b").seed(address).tls(ca.node(&ca, false));
        let b = Node::start(config).await.unwrap();
        let b_events = b.cluster_events();
        let (expected, presented) = name_mismatch(refused(&b_events).await, (false, false));
        assert_eq!(expected, "localhost");
        assert_eq!(presented, ["IpAddress(127.0.0.1)"]);
        let (expected, _) = name_mismatch(refused(&a_events).await, (true, true));
        assert_eq!(expected, "localhost");
        assert!(a.connected_nodes().is_empty() && b.connected_nodes().is_empty());
        shutdown(&[&a, &b]);
    });
}

#[test]
fn tls_settings_that_cannot_work_are_typed_errors() {
    let ca = Authority::new("cluster CA");
    let (certificate, key) = ca.issue(&["127.0.0.1"], false);
    let (_, other_key) = ca.issue(&["127.0.0.1"], false);
    let pem = |ca: &str, certificate: &str, key: &str| {
        TlsConfig::from_pem(ca.as_bytes(), certificate.as_bytes(), key.as_bytes())
    };
    assert!(matches!(
        pem("not pem", &certificate, &key),
        Err(TlsError::Pem { .. })
    ));
    assert!(matches!(
        pem(&ca.pem(), &certificate, "no key here"),
        Err(TlsError::Pem { .. })
    ));
    assert!(matches!(
        pem(&ca.pem(), &certificate, &other_key),
        Err(TlsError::Rustls(_))
    ));
    let missing = std::env::temp_dir().join("noex-no-such-file.pem");
    assert!(matches!(
        TlsConfig::from_pem_files(&missing, &missing, &missing),
        Err(TlsError::Read { path, .. }) if path == missing
    ));
    assert!(matches!(
        pem(&ca.pem(), &certificate, &key)
            .unwrap()
            .server_name("not a name"),
        Err(TlsError::ServerName(_))
    ));
}

#[test]
fn a_certificate_not_valid_yet_is_retried_until_it_is() {
    run_blocking(async {
        let ca = Authority::new("cluster CA");
        let a = start("a", Some(ca.node(&ca, false)), None).await;
        let events = a.cluster_events();
        // Valid two seconds from now (issued ahead of a clock, say).
        let early = start("early", Some(ca.node_valid(2, 3600)), Some(&a)).await;
        let (inbound, by_peer, reason) = refused(&events).await;
        assert_eq!(
            (inbound, by_peer, reason),
            (true, false, RefusedReason::CertificateNotYetValid)
        );
        // Tried again as a failed connection is, it gets in once valid.
        within("the early node to get in", async {
            while a.connected_nodes().is_empty() {
                smol::Timer::after(Duration::from_millis(20)).await;
            }
        })
        .await;
        still_serves(&a, &early).await;
        shutdown(&[&a, &early]);
    });
}

#[test]
fn a_node_whose_certificate_expired_cannot_come_back_by_resuming_a_session() {
    run_blocking(async {
        let ca = Authority::new("cluster CA");
        let a = start("a", Some(ca.node(&ca, false)), None).await;
        // Valid for one more second: long enough to connect.
        let b = start("b", Some(ca.node_valid(-60, 1)), Some(&a)).await;
        wait_connected(&a, 1).await;
        let events = a.cluster_events();
        // Waiting for the certificate to expire (a time, not an event to synchronise on;
        // certificates count whole seconds, so well past the second).
        smol::Timer::after(Duration::from_millis(2200)).await;
        assert!(b.faults().disconnect(a.local_node_id().unwrap()));
        // Reconnecting takes a full handshake, which checks the certificate again.
        loop {
            let (_, _, reason) = refused(&events).await;
            if reason == RefusedReason::CertificateExpired {
                break;
            }
        }
        assert!(a.connected_nodes().is_empty());
        shutdown(&[&a, &b]);
    });
}

#[test]
fn connections_that_are_no_nodes_are_reported_once_in_a_while() {
    use futures_lite::AsyncWriteExt;
    run_blocking(async {
        let ca = Authority::new("cluster CA");
        let secure = start("secure", Some(ca.node(&ca, false)), None).await;
        let plain = start("plain", None, None).await;
        for node in [&secure, &plain] {
            let events = node.cluster_events();
            let address = id(node).split_once('@').unwrap().1.to_owned();
            // A health check or a port scanner, fifty times.
            for _ in 0..50 {
                let mut stream = async_net::TcpStream::connect(address.as_str())
                    .await
                    .unwrap();
                let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
                let mut rest = Vec::new();
                let _ = futures_lite::AsyncReadExt::read_to_end(&mut stream, &mut rest).await;
            }
            // One report; the node then goes on serving.
            let (inbound, by_peer, _) = refused(&events).await;
            assert!(inbound && !by_peer);
            let tls = node.local_node_id() == secure.local_node_id();
            let friend = match tls {
                true => start("friend", Some(ca.node(&ca, false)), Some(node)).await,
                false => start("friend", None, Some(node)).await,
            };
            wait_connected(node, 1).await;
            still_serves(node, &friend).await;
            let more = std::iter::from_fn(|| events.try_recv())
                .filter(|event| matches!(event, ClusterEvent::Refused { .. }))
                .count();
            assert_eq!(more, 0, "one report for fifty refusals");
            friend.shutdown();
        }
        shutdown(&[&secure, &plain]);
    });
}
