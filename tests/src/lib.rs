//! Chaos tests of noex clusters made of real OS processes.
//!
//! The `chaos_node` binary runs one clustered [`noex::Node`] per OS process and obeys a
//! line protocol on its standard input (see [`protocol`]); the integration tests in
//! `tests/` start several of them, then kill (`SIGKILL`), freeze (`SIGSTOP`/`SIGCONT`),
//! restart and partition them while a batch of tasks runs, and check the cluster's
//! invariants: no task lost, no child running twice, monitors that fire, global names
//! with one owner.
//!
//! This library holds what the binary and the tests share: the cluster settings
//! ([`cluster_config`]), the wire types of the protocol ([`protocol`]) and the behaviours
//! the nodes host ([`workload`]).

pub mod protocol;
pub mod workload;

use std::net::SocketAddr;
use std::time::Duration;

/// The cluster secret every chaos node uses.
pub const SECRET: &str = "chaos secret";

/// Heartbeat interval of the chaos nodes.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);
/// A peer silent for this long is declared down.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(800);

/// The settings of a chaos node: loopback, quick heartbeats and reconnects, every
/// behaviour of this crate registered, two scheduler threads.
pub fn cluster_config(name: &str, port: u16, seeds: &[String]) -> noex::ClusterConfig {
    let bind = SocketAddr::from(([127, 0, 0, 1], port));
    let mut config = noex::ClusterConfig::new(name)
        .secret(SECRET)
        .bind(bind)
        .heartbeat(HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT)
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect_timeout(Duration::from_secs(2))
        .threads(2)
        .register_behaviors();
    for seed in seeds {
        config = config.seed(seed.clone());
    }
    config
}
