//! A seeded chaos test: random operations on a four-node cluster (calls, casts, local
//! and remote spawns, monitors, links, node monitors, global names, groups, stops, crashes
//! and kills, a distributed supervisor) interleaved with faults (a node isolated, a link
//! cut, one direction of a link silenced or stalled, connections refused, a node shut
//! down and started again under its id, or replaced while it still runs), with invariants
//! checked at every step and, once the cluster is healed, at checkpoints.
//!
//! A run is a sequence of seeds; each seed drives one fresh cluster through its steps.
//! By default two seeds of 40 steps each, from a fixed seed ([`DEFAULT_SEED`]), so that
//! CI runs the same workload each time. The environment widens it:
//!
//! - `NOEX_CHAOS_SEED=<n>`: the first seed (each seed run is printed, to replay it);
//! - `NOEX_CHAOS_SEEDS=<k>`: how many seeds, from the first on;
//! - `NOEX_CHAOS_STEPS=<n>`: the steps per seed (a checkpoint every 20 and at the end);
//! - `NOEX_CHAOS_TRACE=1`: noex's own `tracing` events go into the operations log.
//!
//! A long hunt, from a random first seed:
//!
//! ```text
//! NOEX_CHAOS_SEED=$RANDOM NOEX_CHAOS_SEEDS=50 NOEX_CHAOS_STEPS=200 \
//!     cargo test -p noex --test chaos -- --nocapture
//! ```
//!
//! On a violation the test fails with the list of them, prints the last operations and
//! writes the seed's whole operations log to `noex-chaos-<seed>.log` in the temporary
//! directory.
//!
//! The files: [`harness`] (the cluster, the ground truth, the log), [`ops`],
//! [`watches`], [`registry`] and [`burst`] (the operations), [`faults`], [`checks`] and
//! [`checks_registry`] (the invariants), [`proxy`] (for replaced nodes), [`behaviours`].

#[path = "../common/mod.rs"]
mod common;

mod behaviours;
mod burst;
mod checks;
mod checks_registry;
mod faults;
mod harness;
mod ops;
mod proxy;
mod registry;
mod watches;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use common::ProbeHandle;
use noex::{
    ClusterEvents, DistributedSupervisor, ExitReason, MonitorRef, Node, NodeId, Pid, ServerRef,
};

use harness::{bounded, log, DumpOnPanic, Printer, LOG};
use watches::{LinkRec, MonRec, NodeMonRec};

const NODES: usize = 4;
const NAMES: [&str; 4] = ["name-a", "name-b", "name-c", "name-d"];
const GROUPS: [&str; 2] = ["group-x", "group-y"];
const CHILDREN: usize = 3;
const MAX_WORKERS: usize = 40;
/// The first seed of a default run: a fixed one, for the same workload each run (as far
/// as it depends on the seed alone), and one whose two seeds' 40 steps include every
/// kind of fault (27: a node replaced and one restarted, isolations, cuts, a silenced
/// and a stalled link; 28: the same, and more bursts).
const DEFAULT_SEED: u64 = 27;
const CHECKPOINT_EVERY: usize = 20;

/// xorshift64: the seed decides every choice of a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The run's state: the cluster, what each node and watcher reported, and the records
/// (workers, watches, names, groups, faults in force) the invariants are checked against.
struct H {
    seed: u64,
    rng: Rng,
    nodes: Vec<Node>,
    ids: Vec<NodeId>,
    /// A watcher process per node: it takes the monitors and links and reports what it sees.
    watchers: Vec<ProbeHandle>,
    events: Vec<ClusterEvents>,
    /// losses[obs][peer]: NodeDown events about `peer` seen by `obs`'s current incarnation.
    losses: Vec<Vec<u32>>,
    /// Per watcher: the Downs by monitor, and the exits by the process they came from.
    downs: Vec<HashMap<MonitorRef, Vec<(Pid, ExitReason)>>>,
    exits: Vec<HashMap<Pid, Vec<ExitReason>>>,
    /// NodeDown infos about a peer seen by a watcher since the last checkpoint.
    nodedowns: Vec<Vec<u32>>,
    workers: Vec<Pid>,
    monitors: Vec<MonRec>,
    links: Vec<LinkRec>,
    node_mons: Vec<NodeMonRec>,
    /// Global names registered, and those that may have been (an error after the fact).
    names: BTreeMap<String, BTreeSet<Pid>>,
    names_maybe: BTreeMap<String, BTreeSet<Pid>>,
    /// Group members joined, with their joins not left (joins are counted), and those
    /// that may be members (as with names; their joins are not known).
    groups: BTreeMap<(String, Pid), usize>,
    groups_maybe: BTreeSet<(String, Pid)>,
    /// The distributed supervisor (on n0) and its children's labels.
    sup: Option<ServerRef<DistributedSupervisor>>,
    labels: Vec<String>,
    /// Faults in force: cut pairs, nodes refusing connections, silenced and stalled links.
    cut: BTreeSet<(usize, usize)>,
    refusing: BTreeSet<usize>,
    /// Silenced (writer, reader) links, with the (reader's, writer's) losses of each other
    /// then.
    silenced: BTreeMap<(usize, usize), (u32, u32)>,
    stalled: BTreeSet<(usize, usize)>,
    violations: Vec<String>,
    step: usize,
    next_id: u64,
    /// Remote spawns that failed with an error that leaves open whether one started.
    spawn_ambiguous: u32,
    /// Per node and group: the members monitor_group gave, and its subscription.
    group_monitors: Vec<Vec<(BTreeSet<Pid>, noex::GroupEvents)>>,
    /// The last loopback address (127.0.0.x) a replaced node was bound to, and the node
    /// bound to another address than its advertised one now, if any.
    alt_ip: u8,
    alt_bound: Option<usize>,
    /// The proxy to the replaced node, from its advertised address.
    alt_proxy: Option<smol::Task<()>>,
}

impl H {
    async fn step_once(&mut self) {
        self.drain();
        let roll = self.rng.below(100);
        match roll {
            0..=7 => self.op_spawn_local().await,
            8..=17 => self.op_spawn_on().await,
            18..=25 => self.op_call().await,
            26..=27 => self.op_cast(),
            28..=35 => self.op_monitor().await,
            36..=37 => self.op_demonitor().await,
            38..=42 => self.op_link().await,
            43 => self.op_unlink().await,
            44..=46 => self.op_monitor_node().await,
            47 => self.op_demonitor_node().await,
            48..=51 => self.op_stop().await,
            52..=53 => self.op_crash().await,
            54 => self.op_kill(),
            55..=60 => self.op_register().await,
            61..=62 => self.op_unregister().await,
            63..=66 => self.op_join().await,
            67..=68 => self.op_leave().await,
            69..=72 => self.fault_isolate(),
            73..=75 => self.fault_cut_pair(),
            76..=78 => self.fault_silence(),
            79..=80 => self.fault_bounce(),
            81..=83 => self.fault_restart().await,
            84..=87 => {
                log(format!("#{} heal", self.step));
                self.heal().await;
            }
            88..=92 => self.op_burst().await,
            93 => self.fault_stall(),
            _ => {
                let ms = 100 + self.rng.below(1400) as u64;
                log(format!("#{} pause {ms} ms", self.step));
                smol::Timer::after(Duration::from_millis(ms)).await;
            }
        }
        self.drain();
        self.check_children_once();
    }
}

/// Runs `steps` steps of `seed` on a fresh cluster, with a checkpoint every
/// [`CHECKPOINT_EVERY`] steps and at the end; returns the violations.
async fn run_seed(seed: u64, steps: usize) -> Vec<String> {
    LOG.lock().unwrap().clear();
    log(format!("seed {seed}, {steps} steps"));
    let mut h = H::start(seed).await;
    let started = Instant::now();
    for step in 1..=steps {
        h.step = step;
        h.step_once().await;
        if step % CHECKPOINT_EVERY == 0 || step == steps {
            h.checkpoint().await;
        }
        if h.violations.len() > 25 {
            eprintln!("seed {seed}: too many violations, stopping at step {step}");
            break;
        }
    }
    eprintln!(
        "seed {seed}: {} steps in {:?}, {} workers, {} violations",
        h.step,
        started.elapsed(),
        h.workers.len(),
        h.violations.len(),
    );
    for node in h.nodes.drain(..) {
        node.shutdown();
    }
    if !h.violations.is_empty() {
        let path = std::env::temp_dir().join(format!("noex-chaos-{seed}.log"));
        let text = LOG.lock().unwrap().join("\n");
        let _ = std::fs::write(&path, text);
        eprintln!("seed {seed}: operations written to {}", path.display());
    }
    h.violations
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn chaos() {
    let _dump = DumpOnPanic;
    if std::env::var("NOEX_CHAOS_TRACE").is_ok() {
        let _ = tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(Printer));
    }
    let first = env_u64("NOEX_CHAOS_SEED").unwrap_or(DEFAULT_SEED);
    let seeds = env_u64("NOEX_CHAOS_SEEDS").unwrap_or(2);
    let steps = env_u64("NOEX_CHAOS_STEPS").unwrap_or(40) as usize;
    let mut all = Vec::new();
    for seed in first..first + seeds {
        eprintln!("NOEX_CHAOS_SEED={seed} NOEX_CHAOS_STEPS={steps}");
        // Generous: a step takes at most about 20 s (a burst's waits), most far less.
        let deadline = Duration::from_secs(60 + 20 * steps as u64);
        match smol::block_on(bounded(deadline, run_seed(seed, steps))) {
            Some(violations) => all.extend(violations),
            None => all.push(format!(
                "seed {seed}: the run did not finish within {deadline:?}"
            )),
        }
    }
    assert!(
        all.is_empty(),
        "{} invariant violations:\n{}",
        all.len(),
        all.join("\n")
    );
}
