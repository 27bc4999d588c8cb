//! The global registry and process groups across a cluster: one owner per name, found from
//! every node; names and members that follow their processes and nodes; races, partitions
//! and joins.

#[path = "../common/mod.rs"]
mod common;
use common::id;
mod conflicts;
mod groups;
mod limits;
mod names;
mod spawns;

use std::time::Duration;

use common::{
    cluster_config, eventually, isolate, run_blocking, shutdown_all, start_cluster, wait_connected,
    watch_end, within,
};
use futures_lite::future::zip;
use noex::supervisor::{ChildSpec, SupervisorSpec};
use noex::{
    behavior, CallError, Ctx, ExitReason, GlobalError, GlobalEvent, Info, LookupError, Node,
    NodeId, Pid, RemoteSpawnError, SendError, SpawnError, SpawnOptions, Supervisor, Target,
};

#[behavior(name = "global-counter")]
pub struct Counter {
    count: u64,
    /// Exit signals it trapped.
    trapped: Vec<(Pid, ExitReason)>,
}

#[behavior]
impl Counter {
    #[init]
    fn init(start: u64) -> Self {
        Counter {
            count: start,
            trapped: Vec::new(),
        }
    }

    #[call]
    fn get(&self) -> u64 {
        self.count
    }

    #[cast]
    fn add(&mut self, n: u64) {
        self.count += n;
    }

    #[call]
    fn trap_exits(&mut self, ctx: &mut Ctx<Self>) {
        ctx.trap_exits(true);
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

#[behavior(name = "global-other")]
pub struct Other;

#[behavior]
impl Other {
    #[init]
    fn init() -> Self {
        Other
    }

    #[call]
    fn hello(&self) -> String {
        "hello".into()
    }
}

/// Checks, at `init`, that its global name is already its own.
#[behavior(name = "global-self-aware")]
pub struct SelfAware;

#[behavior]
impl SelfAware {
    #[init]
    fn init(name: String, ctx: &mut Ctx<Self>) -> Result<Self, String> {
        match ctx.node().whereis_global(&name) {
            Some(pid) if &pid == ctx.pid() => Ok(SelfAware),
            other => Err(format!("{name:?} names {other:?} during init")),
        }
    }
}

async fn counter(node: &Node, start: u64) -> noex::ServerRef<Counter> {
    within("a counter to start", node.spawn::<Counter>(start))
        .await
        .expect("counter starts")
}

/// Waits until every node's replica says `name` is held by `holder`.
async fn everywhere(nodes: &[Node], name: &str, holder: Option<&Pid>) {
    let what = format!("every node to see {name:?} held by {holder:?}");
    eventually(&what, || {
        nodes
            .iter()
            .all(|node| node.whereis_global(name).as_ref() == holder)
    })
    .await;
}

/// A counter started on `nodes[at]`, registered there as `name`, once every node sees it.
async fn registered(nodes: &[Node], at: usize, name: &str, start: u64) -> noex::ServerRef<Counter> {
    let server = counter(&nodes[at], start).await;
    nodes[at].register_global(name, server.pid()).await.unwrap();
    everywhere(nodes, name, Some(server.pid())).await;
    server
}
