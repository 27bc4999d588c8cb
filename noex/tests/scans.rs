//! A port scanner or a health check that opens a node's port and closes it again, many
//! times over, does not flood the node's log: a handshake that fails (or times out) is
//! logged as a warning once in a while per source address, the rest at debug level, as
//! refusals are reported; nor does a discovery source whose every answer lists invalid
//! entries. (A test binary of its own: it installs the process's global `tracing`
//! subscriber.)

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use common::{cluster_config, eventually, run_blocking};
use noex::Node;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Events of the accept path: warnings, and the others.
static WARNINGS: AtomicUsize = AtomicUsize::new(0);
static OTHERS: AtomicUsize = AtomicUsize::new(0);
/// Warnings of the discovery sources' tasks.
static DISCOVERY_WARNINGS: AtomicUsize = AtomicUsize::new(0);

/// Installs [`Counting`] as the process's subscriber, once for every test.
fn subscribe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| tracing::subscriber::set_global_default(Counting).unwrap());
}

struct Counting;

impl Subscriber for Counting {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let warning = matches!(*event.metadata().level(), Level::WARN | Level::ERROR);
        if event.metadata().module_path() == Some("noex::dist::discovery::listing") && warning {
            DISCOVERY_WARNINGS.fetch_add(1, Ordering::SeqCst);
        }
        if event.metadata().module_path() != Some("noex::dist::accept") {
            return;
        }
        match *event.metadata().level() {
            Level::WARN | Level::ERROR => WARNINGS.fetch_add(1, Ordering::SeqCst),
            _ => OTHERS.fetch_add(1, Ordering::SeqCst),
        };
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn connections_closed_before_their_handshake_are_logged_once_in_a_while() {
    subscribe();
    run_blocking(async {
        let node = Node::start(cluster_config("scanned")).await.unwrap();
        let address = node.local_node_id().unwrap().address().to_owned();
        // Fifty connections opened and closed at once, one after another.
        for _ in 0..50 {
            let stream = async_net::TcpStream::connect(address.as_str())
                .await
                .unwrap();
            drop(stream);
        }
        // Each handshake's end is logged once, at one level or the other.
        eventually("the fifty handshakes to end", || {
            WARNINGS.load(Ordering::SeqCst) + OTHERS.load(Ordering::SeqCst) >= 50
        })
        .await;
        assert_eq!(WARNINGS.load(Ordering::SeqCst), 1, "one warning for fifty");
        node.shutdown();
    });
}

/// A source that lists only junk, and says it changed as often as the test asks.
#[derive(Debug)]
struct Junk {
    asks: Arc<AtomicUsize>,
    changes: async_channel::Receiver<()>,
}

impl noex::Discovery for Junk {
    async fn addresses(&self) -> Result<Vec<String>, noex::DiscoveryError> {
        self.asks.fetch_add(1, Ordering::SeqCst);
        Ok(vec!["not an address".into(), "nor@this".into()])
    }

    async fn changed(&self) {
        let _ = self.changes.recv().await;
    }
}

#[test]
fn a_discovery_source_listing_junk_is_warned_of_once() {
    subscribe();
    run_blocking(async {
        let asks = Arc::new(AtomicUsize::new(0));
        let (change, changes) = async_channel::unbounded();
        let junk = Junk {
            asks: asks.clone(),
            changes,
        };
        let node = Node::start(cluster_config("listed").discovery(junk))
            .await
            .unwrap();
        for _ in 0..20 {
            change.send(()).await.unwrap();
        }
        eventually("the source to be asked 21 times", || {
            asks.load(Ordering::SeqCst) >= 21 && change.is_empty()
        })
        .await;
        node.shutdown();
        assert_eq!(
            DISCOVERY_WARNINGS.load(Ordering::SeqCst),
            1,
            "one warning for 21 answers"
        );
    });
}
