//! Shared test set-up: pids made by hand, a deadline on every test body and every wait, a
//! quiet process to observe, and a small cluster on 127.0.0.1.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::time::{Duration, Instant};

use noex::{ClusterConfig, Ctx, GenServer, Node, Pid};
use smol::future::FutureExt;

/// How long any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long a whole test body may take.
pub const TEST_DEADLINE: Duration = Duration::from_secs(30);
/// The cluster secret of the test clusters.
pub const SECRET: &str = "observer-test-secret";

/// A pid of process `serial` of node `node`, as one read from the cluster would be.
pub fn pid(node: &str, serial: u64) -> Pid {
    serde_json::from_value(serde_json::json!({
        "node": node,
        "incarnation": 1,
        "serial": serial,
    }))
    .expect("a pid")
}

/// Runs `body` to its end, failing the test if it takes longer than [`TEST_DEADLINE`].
pub fn run<T>(body: impl Future<Output = T>) -> T {
    smol::block_on(async { Some(body.await) }.or(async {
        smol::Timer::after(TEST_DEADLINE).await;
        None
    }))
    .unwrap_or_else(|| panic!("test body did not finish within {TEST_DEADLINE:?}"))
}

/// Waits until `condition` holds, checking every few milliseconds, for at most [`WAIT`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        smol::Timer::after(Duration::from_millis(5)).await;
    }
}

/// A process that does nothing: something to observe.
pub struct Idle;

impl GenServer for Idle {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = Infallible;

    async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        Ok(Idle)
    }
}

/// A member's configuration: quick heartbeats, two threads, the test secret.
pub fn cluster_config(name: &str) -> ClusterConfig {
    ClusterConfig::new(name)
        .secret(SECRET)
        .heartbeat(Duration::from_millis(100), Duration::from_millis(800))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .threads(2)
}

/// Starts nodes `names`, each seeded with the first, and waits until all see each other.
pub async fn start_cluster(names: &[&str]) -> Vec<Node> {
    let first = Node::start(cluster_config(names[0]))
        .await
        .expect("node starts");
    let seed = first.local_node_id().unwrap().to_string();
    let mut nodes = vec![first];
    for name in &names[1..] {
        let config = cluster_config(name).seed(seed.clone());
        nodes.push(Node::start(config).await.expect("node starts"));
    }
    for node in &nodes {
        eventually("the members to see each other", || {
            node.connected_nodes().len() == names.len() - 1
        })
        .await;
    }
    nodes
}

/// The node id of a clustered node, as text.
pub fn id(node: &Node) -> String {
    node.local_node_id().expect("clustered").to_string()
}
