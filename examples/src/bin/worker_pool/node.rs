//! Starting the two kinds of node: the supervisor node (the queue, the collector and the
//! workers' supervisor) and a worker node (a place for workers to run).

use std::time::Duration;

use noex::supervisor::{ChildSpec, NodeSelector, Strategy, SupervisorSpec};
use noex::{ClusterConfig, DistributedSupervisor, Node, ServerRef, SpawnOptions};

use crate::pool::{worker_name, Results, TaskQueue, Worker, QUEUE, RESULTS};

/// The cluster secret, unless `--secret` says otherwise.
pub const DEFAULT_SECRET: &str = "noex worker_pool demo";

/// A node of the pool's cluster on 127.0.0.1.
pub async fn start(
    name: &str,
    port: u16,
    seed: Option<&str>,
    secret: &str,
) -> Result<Node, String> {
    let mut config = ClusterConfig::new(name)
        .secret(secret)
        .bind(([127, 0, 0, 1], port).into())
        .heartbeat(Duration::from_millis(250), Duration::from_secs(2))
        .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(500))
        .register_behaviors();
    if let Some(seed) = seed {
        config = config.seed(seed.to_owned());
    }
    Node::start(config)
        .await
        .map_err(|error| format!("cannot start node {name}: {error}"))
}

/// What runs on the supervisor node.
pub struct SupervisorNode {
    pub node: Node,
    pub queue: ServerRef<TaskQueue>,
    pub results: ServerRef<Results>,
    pub workers: ServerRef<DistributedSupervisor>,
    next_worker: u32,
}

impl SupervisorNode {
    /// Starts the queue and the collector under their global names, and an empty
    /// supervisor of workers placed by `selector`.
    pub async fn start(node: Node, selector: NodeSelector) -> Result<Self, String> {
        let results = node
            .spawn_with::<Results>((), SpawnOptions::new().global_name(RESULTS))
            .await
            .map_err(|error| format!("the collector: {error}"))?;
        let queue = node
            .spawn_with::<TaskQueue>((), SpawnOptions::new().global_name(QUEUE))
            .await
            .map_err(|error| format!("the queue: {error}"))?;
        let spec = SupervisorSpec::distributed(Strategy::OneForOne, selector)
            .intensity(10, Duration::from_secs(60));
        let workers = node
            .spawn::<DistributedSupervisor>(spec)
            .await
            .map_err(|error| format!("the supervisor: {error}"))?;
        Ok(SupervisorNode {
            node,
            queue,
            results,
            workers,
            next_worker: 1,
        })
    }

    /// Adds a worker, placed by the selector; returns its id and node.
    pub async fn add_worker(&mut self) -> Result<(u32, String), String> {
        let id = self.next_worker;
        self.next_worker += 1;
        let name = worker_name(id);
        let spec = ChildSpec::worker::<Worker>(name.clone(), id).global_name(name);
        let pid = self
            .workers
            .start_child(spec)
            .await
            .map_err(|error| error.to_string())?;
        Ok((id, pid.node().to_owned()))
    }

    /// Stops and forgets worker `id`.
    pub async fn remove_worker(&self, id: u32) -> Result<(), String> {
        let name = worker_name(id);
        self.workers
            .terminate_child(name.as_str())
            .await
            .map_err(|error| error.to_string())?;
        self.workers
            .delete_child(&name)
            .await
            .map_err(|error| error.to_string())
    }

    /// (worker id, node) of every worker, by id.
    pub async fn placement(&self) -> Vec<(String, Option<String>)> {
        self.workers
            .which_children()
            .await
            .map(|children| children.into_iter().map(|c| (c.id, c.node)).collect())
            .unwrap_or_default()
    }
}
