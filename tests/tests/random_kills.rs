//! Repeated `kill -9` of a random node of five (one that runs children; never `n0`, which
//! runs the supervisor and the queue), each restarted under the same name and port, with the invariants checked
//! after every round: no task lost, each child running exactly once, and no leaked
//! monitors, links or processes.
//!
//! The victims are drawn from a seed printed at the start; `CHAOS_SEED=<n>` replays a run.
#![cfg(unix)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{
    check_no_leaks, start_cluster, wait_all_tasks_done, wait_each_child_once, wait_full_mesh,
    wait_until, Phase,
};
use noex::Pid;

const NODES: usize = 5;
const WORKERS: usize = 8;
const ROUNDS: usize = 5;
const TASKS_PER_ROUND: u64 = 300;

/// xorshift64*: enough to pick victims reproducibly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn seed() -> u64 {
    match std::env::var("CHAOS_SEED") {
        Ok(seed) => seed.parse().expect("CHAOS_SEED is a number"),
        Err(_) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            now.as_nanos() as u64 | 1
        }
    }
}

#[test]
fn random_kills_lose_no_task_duplicate_no_child_and_leak_nothing() {
    let phase = Phase::new("random kills");
    let seed = seed();
    phase.log(&format!("CHAOS_SEED={seed}"));
    let mut rng = Rng(seed);
    let mut nodes = start_cluster(NODES);
    let base: Vec<usize> = nodes.iter_mut().map(|n| n.ask("procs")).collect();
    nodes[0].ask::<()>(&format!("batch {WORKERS} 0 10"));
    let expected: BTreeSet<String> = (0..WORKERS).map(|i| format!("w{i}")).collect();
    let mut lost_children = 0;
    for round in 0..ROUNDS {
        let total: u64 = nodes[0].ask(&format!("add-tasks {TASKS_PER_ROUND}"));
        let started = total - TASKS_PER_ROUND;
        wait_until(
            "the round's tasks to start",
            Duration::from_secs(30),
            || nodes[0].tasks().done_unique >= started + 30,
        );
        // A random node among n1..n4 that runs children (any of them if none does).
        let children = nodes[0].children();
        let hosts: Vec<usize> = (1..NODES)
            .filter(|&i| {
                children
                    .iter()
                    .any(|c| c.node.as_ref() == Some(&nodes[i].id))
            })
            .collect();
        let candidates: Vec<usize> = match hosts.is_empty() {
            true => (1..NODES).collect(),
            false => hosts,
        };
        let victim = candidates[(rng.next() % candidates.len() as u64) as usize];
        let victim_id = nodes[victim].id.clone();
        let on_victim = children
            .iter()
            .filter(|c| c.node.as_deref() == Some(victim_id.as_str()))
            .count();
        lost_children += on_victim;
        phase.log(&format!(
            "round {round}: kill -9 n{victim} ({on_victim} children) at {:?}",
            nodes[0].tasks().done_unique
        ));
        nodes[victim].kill();
        for i in (0..NODES).filter(|&i| i != victim) {
            wait_until("the loss to be seen", Duration::from_secs(10), || {
                !nodes[i].peer_ids().contains(&victim_id)
            });
        }
        nodes[victim].restart();
        wait_full_mesh(&mut nodes, Duration::from_secs(20));

        // No task lost.
        let report = wait_all_tasks_done(&mut nodes[0], Duration::from_secs(60));
        // Each child runs exactly once, where its supervisor says.
        let placement = wait_each_child_once(&mut nodes, &expected, Duration::from_secs(20));
        let children = nodes[0].children();
        let running: BTreeMap<String, Pid> = nodes.iter_mut().flat_map(|n| n.local()).collect();
        for child in &children {
            assert_eq!(child.pid.as_ref(), running.get(&child.id), "{child:?}");
        }
        let stats = nodes[0].stats();
        assert_eq!(stats.migrations, lost_children as u64, "{stats:?}");
        assert_eq!(stats.waiting_for_majority, 0, "{stats:?}");
        // No leaked monitors, links or processes.
        check_no_leaks(&mut nodes, &base, &[2, 0, 0, 0, 0]);
        phase.log(&format!(
            "round {round} clean: requeued {}, completions {} of {}, placement {placement:?}",
            report.requeued, report.done_total, report.total
        ));
    }
}
