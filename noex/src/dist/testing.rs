//! What the tests of the distribution layer's parts share.

use std::time::Duration;

use crate::{ClusterConfig, Node};

/// Starts a clustered node of two threads, busy-waiting off, seeded with `seed`'s address.
pub(crate) async fn start_node(name: &str, secret: &str, seed: Option<&Node>) -> Node {
    let mut config = ClusterConfig::new(name)
        .secret(secret)
        .threads(2)
        .busy_wait(Duration::ZERO);
    if let Some(seed) = seed {
        config = config.seed(seed.local_node_id().unwrap().to_string());
    }
    Node::start(config).await.unwrap()
}
