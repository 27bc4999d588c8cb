//! `kill -9` of a node that runs supervised workers in the middle of a batch: no task is
//! lost, its children move to the survivors, and every monitor of its processes fires
//! with `NoConnection`.
#![cfg(unix)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{
    ids, start_cluster, wait_all_tasks_done, wait_children_on, wait_each_child_once, wait_for,
    wait_until, Phase,
};
use noex::Pid;

#[test]
fn kill_9_of_a_worker_node_loses_no_task_and_moves_its_children() {
    let phase = Phase::new("kill -9");
    // n0: supervisor and queue; n1: the watcher; n2: the victim.
    let mut nodes = start_cluster(3);
    phase.log("cluster of 3 up");
    let victim = nodes[2].id.clone();
    nodes[0].ask::<()>("batch 6 600 20");
    let children = nodes[0].children();
    let all_pids: Vec<Pid> = children.iter().map(|c| c.pid.clone().unwrap()).collect();
    let on_victim: BTreeSet<Pid> = all_pids
        .iter()
        .filter(|p| p.node() == victim)
        .cloned()
        .collect();
    assert_eq!(on_victim.len(), 2, "round robin puts 2 of 6 on each node");
    let watch = all_pids
        .iter()
        .map(|p| serde_json::to_string(p).unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(nodes[1].ask::<usize>(&format!("watch {watch}")), 6);

    wait_until(
        "a tenth of the batch to be done",
        Duration::from_secs(30),
        || nodes[0].tasks().done_unique >= 60,
    );
    let before = nodes[0].tasks();
    assert!(
        before.done_unique < before.total,
        "the batch ended too soon"
    );
    phase.log(&format!("killing {victim} at {before:?}"));
    nodes[2].kill();

    let survivors = ids(&nodes[..2]);
    for node in nodes[..2].iter_mut() {
        wait_until(
            "the survivors to see the loss",
            Duration::from_secs(10),
            || !node.peer_ids().contains(&victim),
        );
    }
    phase.log("loss seen by the survivors");
    let moved = wait_children_on(&mut nodes[0], &survivors, Duration::from_secs(20));
    assert_eq!(moved.len(), 6);
    phase.log("children moved");
    let report = wait_all_tasks_done(&mut nodes[0], Duration::from_secs(60));
    phase.log(&format!("batch done: {report:?}"));

    let stats = nodes[0].stats();
    assert_eq!(stats.migrations, 2, "{stats:?}");
    assert!(!stats.children_per_node.contains_key(&victim), "{stats:?}");
    assert_eq!(stats.waiting_for_majority, 0);

    // Every monitor of the victim's processes fired with NoConnection; no other did.
    let downs = wait_for("the watcher's Downs", Duration::from_secs(10), || {
        let downs: Vec<(Pid, String)> = nodes[1].ask("downs");
        (downs.len() >= on_victim.len()).then_some(downs)
    });
    let seen: BTreeSet<Pid> = downs.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(
        seen, on_victim,
        "Downs for exactly the victim's workers: {downs:?}"
    );
    assert!(
        downs.iter().all(|(_, reason)| reason == "NoConnection"),
        "{downs:?}"
    );
    assert_eq!(
        downs.len(),
        on_victim.len(),
        "one Down per monitor: {downs:?}"
    );

    let expected: BTreeSet<String> = (0..6).map(|i| format!("w{i}")).collect();
    let placement = wait_each_child_once(&mut nodes[..2], &expected, Duration::from_secs(10));
    phase.log(&format!("each child once: {placement:?}"));
}
