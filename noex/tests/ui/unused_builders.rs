//! A builder whose result is dropped configures nothing, a subscription dropped unread
//! loses its events, an adapted `ReplyTo` dropped fails its call: each is `#[must_use]`.
#![deny(unused_must_use)]

use std::time::Duration;

use noex::supervisor::{Backoff, ChildTemplate};
use noex::{Bytes, ChildSpec, ClusterConfig, Node, SpawnOptions, SupervisorSpec};

#[noex::behavior]
pub struct Worker;

#[noex::behavior(local)]
impl Worker {
    #[init]
    fn init() -> Self {
        Worker
    }
}

fn main() {
    let config = ClusterConfig::new("a");
    config.heartbeat(Duration::from_secs(1), Duration::from_secs(5));
    Node::builder().threads(2);
    SpawnOptions::new().name("worker");
    let spec = ChildSpec::worker::<Worker>("worker", ());
    spec.clone().restart(noex::Restart::Transient);
    SupervisorSpec::new(noex::Strategy::OneForOne).child(spec);
    ChildTemplate::worker::<Worker>("worker");
    Backoff::fixed(Duration::from_secs(1));
    let node = Node::new();
    node.observer().timeout(Duration::from_secs(1));
    Bytes::from(vec![1, 2, 3]).slice(0..1);
    node.events();
    node.cluster_events();
}

#[allow(dead_code)]
fn answer(reply: noex::ReplyTo<Result<u64, String>>) {
    reply.adapt(Ok::<u64, String>);
}
