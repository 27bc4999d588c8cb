//! Discovery: a node dials what its sources list, while they list it; a DNS name is dialled
//! at its addresses; a source that fails is retried; the sources' tasks end with the node.

mod common;
use common::id;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_net::TcpListener;
use common::raw::{frame, Raw, Refusal, Wire};
use common::{cluster_config, eventually, run_blocking, wait_connected, within};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use noex::{Discovery, DiscoveryError, DnsSeeds, Node};

/// A source the test controls: it lists what the test sets, and tells the node at once.
#[derive(Debug)]
struct Stub {
    addresses: Mutex<Vec<String>>,
    /// Asks that fail from now on.
    failing: AtomicUsize,
    /// Asks that failed.
    failed: AtomicUsize,
    /// Asks so far.
    asks: AtomicUsize,
    /// The asks the node has acted on (it waits for the next change).
    acted: AtomicUsize,
    /// The node's waits for a change under way now.
    waiting: AtomicUsize,
    changes: (async_channel::Sender<()>, async_channel::Receiver<()>),
}

impl Stub {
    fn new() -> Arc<Stub> {
        Arc::new(Stub {
            addresses: Mutex::new(Vec::new()),
            failing: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            asks: AtomicUsize::new(0),
            acted: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            changes: async_channel::bounded(1),
        })
    }

    fn source(self: &Arc<Self>) -> StubSource {
        StubSource(self.clone())
    }

    /// Lists `addresses` from now on, and says so.
    fn set(&self, addresses: &[&str]) {
        *self.addresses.lock().unwrap() = addresses.iter().map(|a| a.to_string()).collect();
        let _ = self.changes.0.try_send(());
    }

    /// Fails the next `asks` asks.
    fn fail(&self, asks: usize) {
        self.failing.store(asks, Ordering::SeqCst);
        let _ = self.changes.0.try_send(());
    }

    /// Says that something changed, and waits until the node has acted on an ask made
    /// since. (An ask under way now is followed by another: the change is remembered.)
    async fn next_round(&self) {
        let asked = self.asks.load(Ordering::SeqCst);
        let _ = self.changes.0.try_send(());
        eventually("the node to ask its source again", || {
            self.acted.load(Ordering::SeqCst) > asked
        })
        .await;
    }
}

#[derive(Debug)]
struct StubSource(Arc<Stub>);

/// Counts a wait for a change while it lasts.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Discovery for StubSource {
    async fn addresses(&self) -> Result<Vec<String>, DiscoveryError> {
        let stub = &self.0;
        stub.asks.fetch_add(1, Ordering::SeqCst);
        let failing = stub.failing.load(Ordering::SeqCst);
        if failing > 0 {
            stub.failing.store(failing - 1, Ordering::SeqCst);
            stub.failed.fetch_add(1, Ordering::SeqCst);
            return Err(DiscoveryError::Other("the stub fails".into()));
        }
        Ok(stub.addresses.lock().unwrap().clone())
    }

    async fn changed(&self) {
        let stub = &self.0;
        stub.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&stub.waiting);
        stub.acted
            .store(stub.asks.load(Ordering::SeqCst), Ordering::SeqCst);
        let _ = stub.changes.1.recv().await;
    }
}

async fn start(name: &str) -> Node {
    Node::start(cluster_config(name)).await.unwrap()
}

/// A node started with `config` and a stub source the test controls (listing nothing yet).
async fn start_with_stub(config: noex::ClusterConfig) -> (Arc<Stub>, Node) {
    let stub = Stub::new();
    let node = Node::start(config.discovery(stub.source())).await.unwrap();
    (stub, node)
}

/// `host:port` where nothing listens.
fn dead_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[test]
fn a_node_connects_to_members_as_its_source_lists_them() {
    run_blocking(async {
        let (b, c) = (start("b").await, start("c").await);
        let (stub, a) = start_with_stub(cluster_config("a")).await;
        stub.next_round().await;
        assert!(a.connected_nodes().is_empty());

        stub.set(&[id(&b).address()]);
        wait_connected(&a, 1).await;
        // Both at once; the one connected already is left alone.
        stub.set(&[id(&b).address(), id(&c).address()]);
        wait_connected(&a, 2).await;
        let connected: Vec<_> = a.connected_nodes().into_iter().map(|n| n.id).collect();
        assert_eq!(connected, [id(&b), id(&c)]);
        for node in [a, b, c] {
            node.shutdown();
        }
    });
}

#[test]
fn a_listed_address_that_does_not_answer_is_dialled_until_no_longer_listed() {
    run_blocking(async {
        let forget = Duration::from_millis(150);
        let config = cluster_config("a").forget_unreachable_after(forget);
        let (stub, a) = start_with_stub(config).await;
        let dead = dead_address();
        stub.set(&[&dead]);
        eventually("the node to dial it", || a.faults().dials() == 1).await;
        // A seed while listed: never forgotten, however long it stays silent.
        smol::Timer::after(forget * 4).await;
        assert_eq!(a.faults().dials(), 1);

        stub.set(&[]);
        eventually("the node to give it up", || a.faults().dials() == 0).await;
        stub.next_round().await;
        assert_eq!(a.faults().dials(), 0);
        a.shutdown();
    });
}

#[test]
fn a_connected_member_stays_connected_when_no_longer_listed() {
    run_blocking(async {
        let b = start("b").await;
        let (stub, a) = start_with_stub(cluster_config("a")).await;
        stub.set(&[id(&b).address()]);
        wait_connected(&a, 1).await;
        stub.set(&[]);
        stub.next_round().await;
        assert_eq!(a.connected_nodes()[0].id, id(&b));
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_failing_source_is_retried_and_what_it_listed_stays_listed() {
    run_blocking(async {
        let forget = Duration::from_millis(100);
        let config = cluster_config("a").forget_unreachable_after(forget);
        let (stub, a) = start_with_stub(config).await;
        stub.set(&[&dead_address()]);
        eventually("the node to dial it", || a.faults().dials() == 1).await;

        // Retried without a change to wait for (after the reconnect backoff: 20, 40, 80,
        // 160, 200 ms), long past the time an unlisted address is forgotten in.
        stub.fail(6);
        eventually("six failed asks", || {
            stub.failed.load(Ordering::SeqCst) == 6
        })
        .await;
        assert_eq!(a.faults().dials(), 1);

        // It answers again.
        let b = start("b").await;
        stub.set(&[id(&b).address()]);
        wait_connected(&a, 1).await;
        a.shutdown();
        b.shutdown();
    });
}

/// A listener that refuses every handshake for `reason`, counting them.
async fn refuser(reason: Refusal) -> (String, Arc<AtomicUsize>, smol::Task<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let connections = Arc::new(AtomicUsize::new(0));
    let task = smol::spawn({
        let connections = connections.clone();
        async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let mut hello = [0u8; 256];
                let _ = stream.read(&mut hello).await;
                let refused = Wire::Refused {
                    reason: reason.clone(),
                };
                let _ = stream.write_all(&frame(&refused, &[])).await;
            }
        }
    });
    (address, connections, task)
}

#[test]
fn an_address_that_refuses_for_good_is_tried_again_only_slowly_while_listed() {
    run_blocking(async {
        let (address, connections, _refusing) = refuser(Refusal::Authentication).await;
        let (stub, a) = start_with_stub(cluster_config("a")).await;
        let events = a.cluster_events();
        stub.set(&[&address]);
        eventually("the node to be refused", || {
            connections.load(Ordering::SeqCst) == 1
        })
        .await;
        // Reported once; listed again and again, it is not tried again at once (a refused
        // seed is tried every 30 s: its node may be fixed and restarted).
        let reported = within("the refusal", events.recv()).await;
        assert!(
            matches!(
                reported,
                Some(noex::ClusterEvent::Refused { by_peer: true, .. })
            ),
            "{reported:?}"
        );
        stub.next_round().await;
        stub.next_round().await;
        assert_eq!(connections.load(Ordering::SeqCst), 1);
        assert_eq!(a.faults().dials(), 1, "the seed's loop waits to try again");
        a.shutdown();
    });
}

#[test]
fn a_seed_that_claims_to_be_the_node_itself_is_dialled_on() {
    run_blocking(async {
        // Whatever answers at a seed's address can say "you dialled yourself" before any
        // authentication: the seed must not be given up for it, or it is lost until the
        // node restarts.
        let (address, connections, _refusing) = refuser(Refusal::DuplicateNode).await;
        let a = Node::start(cluster_config("a").seed(address))
            .await
            .unwrap();
        let events = a.cluster_events();
        let reported = within("the refusal", events.recv()).await;
        assert!(
            matches!(
                reported,
                Some(noex::ClusterEvent::Refused {
                    by_peer: true,
                    reason: noex::RefusedReason::DuplicateNode,
                    ..
                })
            ),
            "{reported:?}"
        );
        eventually("the seed to be dialled again", || {
            connections.load(Ordering::SeqCst) >= 3
        })
        .await;
        assert_eq!(a.faults().dials(), 1);
        a.shutdown();
    });
}

/// A listener that, given a node's hello, passes it on to `node` (at its address) over
/// a connection of its own, and answers the dial with the node's answer to that: a
/// `DuplicateNode` refusal the node made itself. Counts the refusals so relayed.
async fn relayer(node: String) -> (String, Arc<AtomicUsize>, smol::Task<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let relayed = Arc::new(AtomicUsize::new(0));
    let task = smol::spawn({
        let relayed = relayed.clone();
        async move {
            while let Ok((stream, _)) = listener.accept().await {
                let name = String::new();
                let mut dial = Raw { stream, name };
                let Some(hello) = dial.receive().await else {
                    continue;
                };
                let stream = async_net::TcpStream::connect(node.as_str()).await.unwrap();
                let name = String::new();
                let mut relay = Raw { stream, name };
                relay.send(&hello).await;
                let answer = relay.receive().await;
                let refused = Wire::Refused {
                    reason: Refusal::DuplicateNode,
                };
                if answer == Some(refused.clone()) {
                    dial.send(&refused).await;
                    relayed.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    });
    (address, relayed, task)
}

#[test]
fn a_dials_hello_relayed_back_to_the_node_does_not_pass_for_the_node_itself() {
    run_blocking(async {
        // What answers at the seed's address sends the node's own hello (its nonce) back
        // to the node, and the node's refusal back to the dial: a dial that reached the
        // node itself, as far as the node's listener and the refusal can tell, but not
        // over the dial's own connection.
        let (stub, a) = start_with_stub(cluster_config("a")).await;
        let (address, relayed, _relaying) = relayer(id(&a).address().to_owned()).await;
        stub.set(&[&address]);
        eventually("the seed to be dialled again", || {
            relayed.load(Ordering::SeqCst) >= 3
        })
        .await;
        assert_eq!(a.faults().dials(), 1);
        a.shutdown();
    });
}

#[test]
fn a_dns_name_is_dialled_at_the_addresses_it_resolves_to() {
    run_blocking(async {
        let b = start("b").await;
        let name = format!("localhost:{}", id(&b).port());
        let seeds = DnsSeeds::new(name).unwrap();
        let a = Node::start(cluster_config("a").discovery(seeds))
            .await
            .unwrap();
        wait_connected(&a, 1).await;
        assert_eq!(a.connected_nodes()[0].id, id(&b));
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_node_does_not_dial_its_own_address() {
    run_blocking(async {
        // As a headless service lists every pod, the node's own among them.
        let (stub, a) = start_with_stub(cluster_config("a")).await;
        // Every attempt fails: a dial, once begun, goes on.
        a.faults().refuse_connections(true);
        let dead = dead_address();
        stub.set(&[id(&a).address(), &dead]);
        stub.next_round().await;
        assert_eq!(a.faults().dials(), 1, "only {dead} is dialled");
        a.shutdown();
    });
}

#[test]
fn a_node_listed_under_another_address_stops_dialling_itself_quietly() {
    run_blocking(async {
        // One list for every node, by names other than the advertised ones (host names,
        // say): it names each node itself. a listens on every interface, so 127.0.0.2
        // reaches it too.
        let bind = "0.0.0.0:0".parse().unwrap();
        let config = cluster_config("a").bind(bind).advertise_host("127.0.0.1");
        let (stub, a) = start_with_stub(config).await;
        let events = a.cluster_events();
        stub.set(&[&format!("127.0.0.2:{}", id(&a).port())]);
        // a reaches itself, knows its own hello, and stops dialling itself, reporting no
        // refusal on either side: a list that names every node is no fault.
        stub.next_round().await;
        eventually("a to stop dialling itself", || a.faults().dials() == 0).await;
        while let Some(event) = events.try_recv() {
            assert!(
                !matches!(event, noex::ClusterEvent::Refused { .. }),
                "{event:?}"
            );
        }
        // Listed again, it is left alone.
        stub.next_round().await;
        assert_eq!(a.faults().dials(), 0);
        a.shutdown();
    });
}

#[test]
fn a_source_listing_more_than_max_members_addresses_is_dialled_up_to_that_bound() {
    run_blocking(async {
        // A source gone wrong lists a thousand addresses: a takes eight.
        let (stub, a) = start_with_stub(cluster_config("a").max_members(8)).await;
        // Every attempt fails: a dial, once begun, goes on.
        a.faults().refuse_connections(true);
        let listed: Vec<String> = (0..1000)
            .map(|i| format!("10.0.{}.{}:4370", i / 250, 1 + i % 250))
            .collect();
        let listed: Vec<&str> = listed.iter().map(String::as_str).collect();
        stub.set(&listed);
        stub.next_round().await;
        assert_eq!(a.faults().dials(), 8);
        // Asked again, the same: no more, none lost.
        stub.next_round().await;
        assert_eq!(a.faults().dials(), 8);
        a.shutdown();
    });
}

#[test]
fn the_discovery_tasks_end_when_the_node_shuts_down() {
    run_blocking(async {
        let (stub, a) = start_with_stub(cluster_config("a")).await;
        eventually("the node to wait for a change", || {
            stub.waiting.load(Ordering::SeqCst) == 1
        })
        .await;
        a.shutdown();
        within("the wait to end", async {
            while stub.waiting.load(Ordering::SeqCst) != 0 {
                smol::Timer::after(Duration::from_millis(1)).await;
            }
        })
        .await;
    });
}

/// A listener that closes every connection at once, counting them.
async fn closer() -> (String, Arc<AtomicUsize>, smol::Task<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let connections = Arc::new(AtomicUsize::new(0));
    let task = smol::spawn({
        let connections = connections.clone();
        async move {
            while let Ok((stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        }
    });
    (address, connections, task)
}

#[test]
fn listing_an_address_again_does_not_reset_its_backoff() {
    run_blocking(async {
        let (address, connections, _closing) = closer().await;
        let (stub, a) = start_with_stub(cluster_config("a")).await;
        stub.set(&[&address]);
        // A poll every 50 ms for 1.5 s, each listing the address again. With the backoff
        // (20 ms doubling to 200 ms) it is tried about 10 times; were each listing to
        // start the backoff over, some 60 times.
        for _ in 0..30 {
            stub.next_round().await;
            smol::Timer::after(Duration::from_millis(50)).await;
        }
        let tried = connections.load(Ordering::SeqCst);
        assert!((2..25).contains(&tried), "tried {tried} times");
        a.shutdown();
    });
}
