//! Partial (non-transitive) partitions: of three nodes a, b and c, a and c cannot reach each
//! other while b reaches both. Each of a and c sees the other as down; b sees everyone.
//! What the global registry, groups, a distributed supervisor and calls do then, and after
//! the cut link heals.

mod calls;
#[path = "../common/mod.rs"]
mod common;
use common::id;
mod groups;
mod names;
mod supervision;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{eventually, run_blocking, shutdown_all, start_cluster, wait_connected, within};
use futures_lite::future::zip;
use noex::supervisor::{ChildSpec, NodeSelector, Strategy, SupervisorSpec};
use noex::{
    behavior, CallError, Ctx, DistributedSupervisor, ExitReason, GlobalError, Info, Node, NodeId,
    Pid, ServerRef, Target,
};

#[behavior(name = "partial-counter")]
pub struct Counter {
    label: String,
    /// Exit signals it trapped.
    trapped: Vec<(Pid, ExitReason)>,
}

#[behavior]
impl Counter {
    #[init]
    fn init(label: String, ctx: &mut Ctx<Self>) -> Self {
        // Told of a lost name by a message, and kept running, so the test can look.
        ctx.trap_exits(true);
        Counter {
            label,
            trapped: Vec::new(),
        }
    }

    #[call]
    fn label(&self) -> String {
        self.label.clone()
    }

    #[call]
    fn trapped(&self) -> Vec<(Pid, ExitReason)> {
        self.trapped.clone()
    }

    #[info]
    fn info(&mut self, info: Info<()>) {
        if let Info::Exit { from, reason } = info {
            self.trapped.push((from, reason));
        }
    }
}

#[behavior(name = "partial-worker")]
pub struct Worker;

#[behavior]
impl Worker {
    #[init]
    fn init() -> Self {
        Worker
    }

    #[call]
    fn ping(&self) {}
}

async fn counter(node: &Node, label: &str) -> ServerRef<Counter> {
    within(
        "a counter to start",
        node.spawn::<Counter>(label.to_owned()),
    )
    .await
    .expect("counter starts")
}

/// Cuts (or heals) the link between `a` and `c`, both ends, and waits until each end sees
/// it (cut: `a` and `c` see only b; healed: every node sees the two others).
async fn cut(nodes: &[Node], cut: bool) {
    let (a, c) = (&nodes[0], &nodes[2]);
    a.faults().partition(&id(c), cut);
    c.faults().partition(&id(a), cut);
    if cut {
        wait_connected(a, 1).await;
        wait_connected(c, 1).await;
        assert_eq!(nodes[1].connected_nodes().len(), 2, "b reaches both");
    } else {
        for node in nodes {
            wait_connected(node, 2).await;
        }
    }
}

/// Waits until each node's replica says `name` is held by what `expected` gives for it.
async fn holders(nodes: &[Node], name: &str, expected: [Option<&Pid>; 3]) {
    let what = format!("the nodes to see {name:?} held by {expected:?}");
    eventually(&what, || {
        nodes
            .iter()
            .zip(expected)
            .all(|(node, holder)| node.whereis_global(name).as_ref() == holder)
    })
    .await;
}

/// The exit signals `counter` trapped, once it has trapped one.
async fn told(counter: &ServerRef<Counter>) -> Vec<(Pid, ExitReason)> {
    loop {
        let trapped = counter.trapped().await.unwrap();
        if !trapped.is_empty() {
            return trapped;
        }
        smol::Timer::after(Duration::from_millis(2)).await;
    }
}

/// The distinct holders of `name` in the nodes' replicas.
fn distinct_holders(nodes: &[Node], name: &str) -> BTreeSet<Pid> {
    nodes
        .iter()
        .filter_map(|node| node.whereis_global(name))
        .collect()
}
