//! `kill -9` of the node running the cluster singleton: it starts again on a survivor, is
//! never seen running twice, and a new process of the killed node on its port does not
//! take it over.
#![cfg(unix)]

mod common;

use std::time::Duration;

use common::{start_cluster, wait_for, wait_full_mesh, ChaosNode, Phase};
use noex::Pid;
use noex_chaos::protocol::SINGLETON_NAME;

/// The tickers running on the running nodes, with the node's index.
fn tickers(nodes: &mut [ChaosNode]) -> Vec<(usize, Pid)> {
    let mut all = Vec::new();
    for (i, node) in nodes.iter_mut().enumerate() {
        let local: Vec<Pid> = node.ask("tickers");
        all.extend(local.into_iter().map(|pid| (i, pid)));
    }
    all
}

/// The tickers that provably ran at one moment: two looks at every node, one after the
/// other; a ticker seen in both looks ran throughout the time between them.
fn simultaneous(nodes: &mut [ChaosNode]) -> Vec<Pid> {
    let first = tickers(nodes);
    let second = tickers(nodes);
    first
        .into_iter()
        .filter(|seen| second.contains(seen))
        .map(|(_, pid)| pid)
        .collect()
}

/// Waits until one ticker runs on `nodes` and each of them has it under the global name;
/// its node's index and pid. Checks at each look that no two tickers ran at once.
fn wait_one(nodes: &mut [ChaosNode], what: &str) -> (usize, Pid) {
    wait_for(what, Duration::from_secs(30), || {
        let together = simultaneous(nodes);
        assert!(together.len() <= 1, "the singleton ran twice: {together:?}");
        let running = tickers(nodes);
        let [(at, pid)] = running.as_slice() else {
            return None;
        };
        let named = nodes
            .iter_mut()
            .all(|n| n.whereis(SINGLETON_NAME).as_ref() == Some(pid));
        named.then(|| (*at, pid.clone()))
    })
}

#[test]
fn kill_9_of_the_singletons_node_starts_it_once_on_a_survivor() {
    let phase = Phase::new("singleton");
    let mut nodes = start_cluster(3);
    for node in &mut nodes {
        node.ask::<()>("singleton");
    }
    let (at, first) = wait_one(&mut nodes, "one singleton in the cluster");
    phase.log(&format!(
        "the singleton runs on {}: {first:?}",
        nodes[at].name
    ));

    nodes[at].kill();
    let mut survivors: Vec<ChaosNode> = Vec::new();
    let mut victim = None;
    for (i, node) in nodes.into_iter().enumerate() {
        match i == at {
            true => victim = Some(node),
            false => survivors.push(node),
        }
    }
    let (_, moved) = wait_one(&mut survivors, "the singleton on a survivor");
    assert_ne!(moved, first);
    phase.log(&format!("moved: {moved:?}"));

    // The killed node comes back on its port, with its manager: the singleton stays.
    let mut victim = victim.unwrap();
    victim.restart();
    victim.ask::<()>("singleton");
    survivors.push(victim);
    wait_full_mesh(&mut survivors, Duration::from_secs(20));
    let (_, kept) = wait_one(&mut survivors, "the singleton after the rejoin");
    assert_eq!(kept, moved, "the rejoined node took the singleton over");
    for _ in 0..10 {
        let together = simultaneous(&mut survivors);
        assert!(together.len() <= 1, "the singleton ran twice: {together:?}");
        assert_eq!(tickers(&mut survivors).len(), 1);
    }
    phase.log("kept after the rejoin");
}
