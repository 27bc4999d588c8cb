//! A node frozen (`SIGSTOP`) past the failure-detection window, then resumed
//! (`SIGCONT`): it is declared down, its children move, it rejoins cleanly, and no child
//! runs twice once things settle; the monitors of its processes fire once, while it is
//! frozen; no task is lost and nothing leaks.
#![cfg(unix)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{
    check_no_leaks, ids, simultaneous_duplicates, start_cluster, wait_all_tasks_done,
    wait_children_on, wait_each_child_once, wait_for, wait_full_mesh, wait_until, Phase,
};
use noex::Pid;
use noex_chaos::HEARTBEAT_TIMEOUT;

#[test]
fn a_frozen_node_is_declared_down_and_rejoins_without_running_a_child_twice() {
    let phase = Phase::new("freeze");
    let mut nodes = start_cluster(3);
    let frozen = nodes[2].id.clone();
    let incarnation = |nodes: &mut Vec<common::ChaosNode>| {
        nodes[0]
            .peers()
            .into_iter()
            .find(|p| p.id == frozen)
            .map(|p| p.incarnation)
    };
    let before = incarnation(&mut nodes).expect("n2 connected");
    let base: Vec<usize> = nodes.iter_mut().map(|n| n.ask("procs")).collect();
    nodes[0].ask::<()>("batch 6 600 20");
    // n1 monitors every child; those on n2 are the ones frozen.
    let children = nodes[0].children();
    let on_frozen: BTreeSet<Pid> = children
        .iter()
        .filter_map(|c| c.pid.clone())
        .filter(|p| p.node() == frozen)
        .collect();
    let watch: Vec<String> = children
        .iter()
        .map(|c| serde_json::to_string(c.pid.as_ref().unwrap()).unwrap())
        .collect();
    nodes[1].ask::<usize>(&format!("watch {}", watch.join(" ")));
    wait_until(
        "some of the batch to be done",
        Duration::from_secs(30),
        || nodes[0].tasks().done_unique >= 60,
    );

    phase.log(&format!("SIGSTOP n2 at {:?}", nodes[0].tasks()));
    nodes[2].signal(libc::SIGSTOP);
    let stopped = Instant::now();
    for node in nodes[..2].iter_mut() {
        wait_until(
            "the frozen node to be declared down",
            Duration::from_secs(10),
            || !node.peer_ids().contains(&frozen),
        );
    }
    let detected = stopped.elapsed();
    phase.log(&format!("declared down after {detected:?}"));
    assert!(
        detected >= HEARTBEAT_TIMEOUT / 2,
        "declared down too soon: {detected:?}"
    );
    let survivors = ids(&nodes[..2]);
    wait_children_on(&mut nodes[0], &survivors, Duration::from_secs(20));
    let stats = nodes[0].stats();
    assert_eq!(stats.migrations, 2, "{stats:?}");
    phase.log(&format!("children moved: {:?}", nodes[0].tasks()));
    // The monitors of the frozen processes fired while they were frozen.
    let downs_while_frozen = wait_for(
        "the Downs of the frozen workers",
        Duration::from_secs(10),
        || {
            let downs: Vec<(Pid, String)> = nodes[1].ask("downs");
            (downs.len() >= on_frozen.len()).then_some(downs)
        },
    );
    let seen: BTreeSet<Pid> = downs_while_frozen.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(seen, on_frozen, "{downs_while_frozen:?}");
    assert!(
        downs_while_frozen.iter().all(|(_, r)| r == "NoConnection"),
        "{downs_while_frozen:?}"
    );
    // Stay frozen a while longer: the survivors dial it meanwhile.
    let frozen_until = stopped + HEARTBEAT_TIMEOUT * 3;
    while Instant::now() < frozen_until {
        // Nothing may run twice while it is frozen (its processes do not run at all).
        let duplicates = simultaneous_duplicates(&mut nodes[..2]);
        assert!(duplicates.is_empty(), "ran twice: {duplicates:?}");
        // Pacing, so that sampling does not starve the nodes of CPU.
        std::thread::sleep(Duration::from_millis(10));
    }

    phase.log("SIGCONT n2");
    nodes[2].signal(libc::SIGCONT);
    wait_full_mesh(&mut nodes, Duration::from_secs(20));
    phase.log("rejoined");
    // The same OS process, so the same incarnation.
    assert_eq!(incarnation(&mut nodes), Some(before));

    // Its old children ended (their supervisor's link broke); each child runs once.
    let expected = (0..6).map(|i| format!("w{i}")).collect();
    let placement = wait_each_child_once(&mut nodes, &expected, Duration::from_secs(20));
    assert!(placement.values().all(|node| node != "n2"), "{placement:?}");
    for _ in 0..5 {
        let duplicates = simultaneous_duplicates(&mut nodes);
        assert!(
            duplicates.is_empty(),
            "ran twice after the rejoin: {duplicates:?}"
        );
    }
    let report = wait_all_tasks_done(&mut nodes[0], Duration::from_secs(60));
    phase.log(&format!("settled: {placement:?}; {report:?}"));
    let stats = nodes[0].stats();
    assert_eq!(stats.migrations, 2, "no further migrations: {stats:?}");
    // Their real end, after the resume, did not fire those monitors again.
    let downs: Vec<(Pid, String)> = nodes[1].ask("downs");
    assert_eq!(downs, downs_while_frozen, "one Down per monitor");
    // Its remaining monitors go with it.
    nodes[1].ask::<()>("stop-watcher");
    // Nothing of the frozen node's old ties or processes is left, on either side.
    check_no_leaks(&mut nodes, &base, &[2, 0, 0]);
}
