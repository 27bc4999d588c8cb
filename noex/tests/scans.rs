//! A port scanner or a health check that opens a node's port and closes it again, many
//! times over, does not flood the node's log: a handshake that fails (or times out) is
//! logged as a warning once in a while per source address, the rest at debug level, as
//! refusals are reported. (A test binary of its own: it installs the process's global
//! `tracing` subscriber.)

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::{cluster_config, eventually, run_blocking};
use noex::Node;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Events of the accept path: warnings, and the others.
static WARNINGS: AtomicUsize = AtomicUsize::new(0);
static OTHERS: AtomicUsize = AtomicUsize::new(0);

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
    tracing::subscriber::set_global_default(Counting).unwrap();
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
