//! A five-node cluster partitioned 3|2, then healed: no child runs twice at any sampled
//! moment nor afterwards, the majority side takes over the minority's children, no task
//! is lost, and every global name has one owner, the same on every node, afterwards.
#![cfg(unix)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{
    check_no_leaks, simultaneous_duplicates, start_cluster, wait_all_tasks_done, wait_children_on,
    wait_each_child_once, wait_full_mesh, wait_until, ChaosNode, Phase,
};
use noex::Pid;

/// Cuts (or heals) every link between the two sides, on both ends.
fn cut(nodes: &mut [ChaosNode], left: &[usize], right: &[usize], on: bool) {
    for &a in left {
        for &b in right {
            let (id_a, id_b) = (nodes[a].id.clone(), nodes[b].id.clone());
            nodes[a].partition(&id_b, on);
            nodes[b].partition(&id_a, on);
        }
    }
}

/// Samples the cluster for `duration`: no child may be seen running twice.
fn no_duplicates_for(nodes: &mut [ChaosNode], duration: Duration) -> usize {
    let end = Instant::now() + duration;
    let mut samples = 0;
    while Instant::now() < end {
        let duplicates = simultaneous_duplicates(nodes);
        assert!(duplicates.is_empty(), "ran twice: {duplicates:?}");
        samples += 1;
        // Pacing, so that sampling does not starve the nodes of CPU.
        std::thread::sleep(Duration::from_millis(10));
    }
    samples
}

#[test]
fn a_3_2_partition_and_its_heal_keep_one_copy_of_each_child_and_name() {
    let phase = Phase::new("partition");
    let mut nodes = start_cluster(5);
    let (majority, minority) = ([0, 1, 2], [3, 4]);
    let base: Vec<usize> = nodes.iter_mut().map(|n| n.ask("procs")).collect();
    nodes[0].ask::<()>("batch 10 1500 20");
    let a = nodes[0].hold("g-a").expect("g-a registers");
    let b = nodes[4].hold("g-b").expect("g-b registers");
    for node in nodes.iter_mut() {
        wait_until("the names everywhere", Duration::from_secs(10), || {
            node.whereis("g-a").as_ref() == Some(&a) && node.whereis("g-b").as_ref() == Some(&b)
        });
    }
    wait_until(
        "some of the batch to be done",
        Duration::from_secs(30),
        || nodes[0].tasks().done_unique >= 100,
    );

    phase.log("partition 3|2");
    cut(&mut nodes, &majority, &minority, true);
    let majority_ids: BTreeSet<String> = majority.iter().map(|&i| nodes[i].id.clone()).collect();
    for &i in &majority {
        wait_until(
            "the majority side to lose the minority",
            Duration::from_secs(10),
            || nodes[i].peer_ids().len() == 2,
        );
    }
    for &i in &minority {
        wait_until(
            "the minority side to lose the majority",
            Duration::from_secs(10),
            || nodes[i].peer_ids().len() == 1,
        );
    }
    // Each side registers the same name.
    let contested_major = nodes[1]
        .hold("contested")
        .expect("the majority side registers");
    let contested_minor = nodes[3]
        .hold("contested")
        .expect("the minority side registers");
    let samples = no_duplicates_for(&mut nodes, Duration::from_millis(500));
    let moved = wait_children_on(&mut nodes[0], &majority_ids, Duration::from_secs(20));
    assert_eq!(moved.len(), 10);
    let stats = nodes[0].stats();
    assert_eq!(
        stats.migrations, 4,
        "the minority's 4 children moved: {stats:?}"
    );
    let samples = samples + no_duplicates_for(&mut nodes, Duration::from_secs(1));
    for &i in &minority {
        assert!(
            nodes[i].local().is_empty(),
            "cut-off children still run on n{i}"
        );
    }
    phase.log(&format!(
        "children moved; {samples} samples without duplicates"
    ));

    cut(&mut nodes, &majority, &minority, false);
    wait_full_mesh(&mut nodes, Duration::from_secs(20));
    phase.log("healed");
    let samples = no_duplicates_for(&mut nodes, Duration::from_secs(2));
    let expected = (0..10).map(|i| format!("w{i}")).collect();
    let placement = wait_each_child_once(&mut nodes, &expected, Duration::from_secs(10));
    phase.log(&format!(
        "{samples} samples after the heal; placement {placement:?}"
    ));
    let stats = nodes[0].stats();
    assert_eq!(stats.migrations, 4, "nothing moved at the heal: {stats:?}");

    // One owner per name, the same on every node; the contested name's loser ended.
    let mut views: Vec<Vec<(String, Pid)>> = Vec::new();
    wait_until(
        "every node to agree on the names",
        Duration::from_secs(10),
        || {
            views = nodes.iter_mut().map(|n| n.ask("names")).collect();
            views.windows(2).all(|w| w[0] == w[1])
        },
    );
    let names = views[0].clone();
    let owners: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        owners,
        ["chaos-queue", "contested", "g-a", "g-b"],
        "{names:?}"
    );
    let held = |name: &str| names.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(held("g-a"), a);
    assert_eq!(held("g-b"), b);
    let winner = held("contested");
    let loser = if winner == contested_major {
        contested_minor
    } else {
        assert_eq!(winner, contested_minor, "{names:?}");
        contested_major
    };
    let loser_node = if loser.node() == nodes[1].id { 1 } else { 3 };
    wait_until(
        "the loser of the name to end",
        Duration::from_secs(10),
        || {
            !nodes[loser_node]
                .ask::<bool>(&format!("alive {}", serde_json::to_string(&loser).unwrap()))
        },
    );
    let report = wait_all_tasks_done(&mut nodes[0], Duration::from_secs(60));
    phase.log(&format!("names {names:?}; {report:?}"));
    // No tie or process of the partition is left: n0 runs the supervisor, the queue and
    // g-a's holder; n4 g-b's; the contested name's winner its own.
    let mut extra = [3, 0, 0, 0, 1];
    extra[if loser_node == 1 { 3 } else { 1 }] += 1;
    check_no_leaks(&mut nodes, &base, &extra);
}
