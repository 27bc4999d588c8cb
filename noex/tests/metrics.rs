//! The `metrics` feature: what a node reports through the `metrics` facade.
//!
//! A recorder written here keeps every counter and gauge by name and labels; it is the
//! process-wide recorder (the nodes' threads must see it), shared by the tests of this
//! file, each of which uses nodes of its own names.
#![cfg(feature = "metrics")]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{cluster_config, run_blocking, wait_connected, within};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use noex::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorSpec};
use noex::{Node, ReplyTo, SpawnOptions};

/// A metric: its name and its labels, sorted.
type Id = (String, Vec<(String, String)>);

#[derive(Default)]
struct Store {
    counters: Mutex<HashMap<Id, Arc<AtomicU64>>>,
    gauges: Mutex<HashMap<Id, Arc<AtomicU64>>>,
}

fn id(key: &Key) -> Id {
    let mut labels: Vec<_> = key
        .labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect();
    labels.sort();
    (key.name().to_owned(), labels)
}

struct Keeper(&'static Store);

impl Recorder for Keeper {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.0.counters.lock().unwrap();
        Counter::from_arc(counters.entry(id(key)).or_default().clone())
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut gauges = self.0.gauges.lock().unwrap();
        Gauge::from_arc(gauges.entry(id(key)).or_default().clone())
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

fn store() -> &'static Store {
    static STORE: OnceLock<&'static Store> = OnceLock::new();
    STORE.get_or_init(|| {
        let store: &'static Store = Box::leak(Box::default());
        metrics::set_global_recorder(Keeper(store)).unwrap();
        store
    })
}

fn labelled(name: &str, labels: &[(&str, &str)]) -> Id {
    let mut labels: Vec<_> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    (name.to_owned(), labels)
}

impl Store {
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
        let counters = self.counters.lock().unwrap();
        Some(
            counters
                .get(&labelled(name, labels))?
                .load(Ordering::Relaxed),
        )
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let gauges = self.gauges.lock().unwrap();
        let bits = gauges.get(&labelled(name, labels))?.load(Ordering::Relaxed);
        Some(f64::from_bits(bits))
    }
}

/// Waits until `read` gives `expected`, failing with the last value read after the
/// tests' deadline.
async fn reaches<T: PartialEq + std::fmt::Debug>(
    what: &str,
    expected: T,
    mut read: impl FnMut() -> Option<T>,
) {
    let mut last = None;
    let reached = within(what, async {
        loop {
            last = read();
            if last.as_ref() == Some(&expected) {
                return true;
            }
            smol::Timer::after(Duration::from_millis(5)).await;
        }
    });
    // `within` fails the test on its own; this only names the value.
    assert!(reached.await, "{what}: {last:?}");
}

const INTERVAL: Duration = Duration::from_millis(20);

/// A process that counts casts, and can be made to wait in a handler until released.
#[noex::behavior]
pub struct Worker {
    count: u64,
    gate: Option<async_channel::Receiver<()>>,
}

#[noex::behavior(local)]
impl Worker {
    #[init]
    fn init(gate: Option<async_channel::Receiver<()>>) -> Self {
        Worker { count: 0, gate }
    }

    #[cast]
    async fn work(&mut self) {
        self.count += 1;
        if let Some(gate) = self.gate.take() {
            let _ = gate.recv().await;
        }
    }

    #[call]
    fn count(&self) -> u64 {
        self.count
    }

    #[call]
    fn fail(&self, reply: ReplyTo<()>) {
        drop(reply);
        panic!("asked to");
    }
}

#[test]
fn a_node_reports_its_processes_messages_and_named_mailboxes() {
    let store = store();
    let node = Node::builder()
        .name("metrics-local")
        .threads(1)
        .metrics_interval(INTERVAL)
        .build();
    let at = [("node", "metrics-local")];
    run_blocking(async {
        let (open, gate) = async_channel::bounded::<()>(1);
        let busy = node
            .spawn_with::<Worker>(Some(gate), SpawnOptions::new().name("busy"))
            .await
            .unwrap();
        let idle = node.spawn::<Worker>(None).await.unwrap();
        reaches("the process count", 2.0, || {
            store.gauge("noex_processes", &at)
        })
        .await;

        // `busy` waits in its first cast's handler: the next three wait in its mailbox.
        for _ in 0..4 {
            busy.work().unwrap();
        }
        let named = [("node", "metrics-local"), ("name", "busy")];
        reaches("busy's mailbox", 3.0, || {
            store.gauge("noex_mailbox_length", &named)
        })
        .await;
        open.send(()).await.unwrap();
        assert_eq!(busy.count().await, Ok(4));
        reaches("busy's mailbox, worked through", 0.0, || {
            store.gauge("noex_mailbox_length", &named)
        })
        .await;

        // Messages handled: busy's four casts and a call, then idle's two casts and a call.
        idle.work().unwrap();
        idle.work().unwrap();
        assert_eq!(idle.count().await, Ok(2));
        reaches("the messages handled", 8, || {
            store.counter("noex_messages_handled_total", &at)
        })
        .await;
        // A process that ends takes none of them away; its name's mailbox reads 0.
        node.stop(busy.pid(), noex::ExitReason::Normal)
            .await
            .unwrap();
        reaches("the process count", 1.0, || {
            store.gauge("noex_processes", &at)
        })
        .await;
        assert_eq!(store.counter("noex_messages_handled_total", &at), Some(8));
        assert_eq!(store.gauge("noex_mailbox_length", &named), Some(0.0));
    });
    node.shutdown();
}

#[test]
fn supervisor_restarts_are_counted() {
    let store = store();
    let node = Node::builder()
        .name("metrics-restarts")
        .threads(1)
        .metrics_interval(INTERVAL)
        .build();
    run_blocking(async {
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(ChildSpec::worker::<Worker>("worker", None));
        let sup = node.spawn::<Supervisor>(spec).await.unwrap();
        for restarts in 1..=2 {
            let child = sup.which_children().await.unwrap()[0].pid.clone().unwrap();
            let worker = node.server_ref::<Worker>(&child).unwrap();
            let _ = worker.fail().await;
            reaches("the restarts", restarts, || {
                store.counter("noex_restarts_total", &[("node", "metrics-restarts")])
            })
            .await;
        }
    });
    node.shutdown();
}

#[test]
fn a_clustered_node_reports_its_peers_their_traffic_and_their_comings_and_goings() {
    let store = store();
    run_blocking(async {
        let config = |name: &str| cluster_config(name).metrics_interval(INTERVAL);
        let a = Node::start(config("metrics-a")).await.unwrap();
        let seed = a.local_node_id().unwrap().to_string();
        let b = Node::start(config("metrics-b").seed(seed)).await.unwrap();
        wait_connected(&a, 1).await;
        let (a_id, b_id) = (
            a.local_node_id().unwrap().to_string(),
            b.local_node_id().unwrap().to_string(),
        );
        let on_a = [("node", a_id.as_str())];
        let a_to_b = [("node", a_id.as_str()), ("peer", b_id.as_str())];
        let b_to_a = [("node", b_id.as_str()), ("peer", a_id.as_str())];
        reaches("a's peers", 1.0, || {
            store.gauge("noex_peers_connected", &on_a)
        })
        .await;
        assert_eq!(store.counter("noex_node_up_total", &a_to_b), Some(1));
        reaches("b's up count", 1, || {
            store.counter("noex_node_up_total", &b_to_a)
        })
        .await;

        // Ten casts from a to a process of b.
        let echo = b.spawn::<Echo>(()).await.unwrap();
        let remote = a.server_ref::<Echo>(echo.pid()).unwrap();
        for _ in 0..10 {
            remote.cast(()).unwrap();
        }
        assert_eq!(remote.call(()).await, Ok(10));
        // The counters say what the connections' own statistics say (which count the
        // casts, the call and its reply, and whatever else the nodes said to each other).
        let stats = |node: &Node| node.connected_nodes().into_iter().next().map(|n| n.stats);
        reaches("a's messages sent to b, as a's statistics", true, || {
            let sent = stats(&a)?.messages_sent;
            Some(sent >= 11 && store.counter("noex_peer_messages_sent_total", &a_to_b)? == sent)
        })
        .await;
        reaches(
            "b's messages received from a, as b's statistics",
            true,
            || {
                let received = stats(&b)?.messages_received;
                let counted = store.counter("noex_peer_messages_received_total", &b_to_a)?;
                Some(received >= 11 && counted == received)
            },
        )
        .await;
        reaches(
            "a's messages received from b, as a's statistics",
            true,
            || {
                let received = stats(&a)?.messages_received;
                let counted = store.counter("noex_peer_messages_received_total", &a_to_b)?;
                Some(received >= 1 && counted == received)
            },
        )
        .await;
        let bytes = store
            .counter("noex_peer_bytes_sent_total", &a_to_b)
            .unwrap();
        assert!(
            bytes > 0 && bytes <= stats(&a).unwrap().bytes_sent,
            "{bytes}"
        );
        assert_eq!(store.gauge("noex_peer_calls_pending", &a_to_b), Some(0.0));

        // b leaves: a counts it down, with the reason, and has no peer left.
        b.shutdown();
        let down = [
            ("node", a_id.as_str()),
            ("peer", b_id.as_str()),
            ("reason", "shutdown"),
        ];
        reaches("a's down count", 1, || {
            store.counter("noex_node_down_total", &down)
        })
        .await;
        reaches("a's peers", 0.0, || {
            store.gauge("noex_peers_connected", &on_a)
        })
        .await;
        assert_eq!(store.gauge("noex_peer_queued_bytes", &a_to_b), Some(0.0));
        a.shutdown();
    });
}

/// Counts casts; answers calls with the count.
struct Echo(u64);

#[noex::remote(name = "metrics-echo")]
impl noex::GenServer for Echo {
    type Args = ();
    type Call = ();
    type Reply = u64;
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(_: (), _: &mut noex::Ctx<Self>) -> Result<Self, Self::InitError> {
        Ok(Echo(0))
    }

    async fn handle_call(&mut self, _: (), reply: ReplyTo<u64>, _: &mut noex::Ctx<Self>) {
        reply.send(self.0);
    }

    async fn handle_cast(&mut self, _: (), _: &mut noex::Ctx<Self>) {
        self.0 += 1;
    }
}
