//! Process groups as a worker pool on several nodes meets them: members that end, nodes
//! that are lost, partitions that heal with changes on both sides, nodes restarted under
//! their id, and what `global_events` and `monitor_group` report of all that.

mod common;
use common::id;

use std::collections::{BTreeMap, BTreeSet};

use common::{
    crash, eventually, isolate, next_event, probe, run_blocking, shutdown_all, start_cluster,
    wait_connected, within, ProbeHandle,
};
use noex::{
    ClusterEvent, ExitReason, GlobalError, GlobalEvent, GroupEvent, GroupEvents, Node, NodeId, Pid,
};

/// Waits until every node in `nodes` sees exactly `expected` (sorted) in `group`.
async fn converged(nodes: &[&Node], group: &str, expected: &[Pid]) {
    let mut expected = expected.to_vec();
    expected.sort();
    let what = format!("every node to see {group:?} as {expected:?}");
    eventually(&what, || {
        nodes.iter().all(|n| n.group_members(group) == expected)
    })
    .await;
}

/// Asserts that each node's `global_events` (in `events`, by node), replayed, give its
/// membership of `group`.
fn events_replay_to_the_membership(nodes: &[Node], events: &[noex::GlobalEvents], group: &str) {
    for (node, events) in nodes.iter().zip(events) {
        let mut members = BTreeMap::new();
        replay(events, &mut members, &id(node));
        let mut seen = members.remove(group).unwrap_or_default();
        seen.sort();
        assert_eq!(seen, node.group_members(group), "{:?}", id(node));
    }
}

/// Replays the group events `events` has received so far onto `members`, failing on a
/// join reported for a member already in, or a leave for one not in.
fn replay(events: &noex::GlobalEvents, members: &mut BTreeMap<String, Vec<Pid>>, node: &NodeId) {
    while let Some(event) = events.try_recv() {
        match event {
            GlobalEvent::Joined { group, pid } => {
                let list = members.entry(group.clone()).or_default();
                assert!(
                    !list.contains(&pid),
                    "{node:?}: {pid:?} reported joining {group:?} twice"
                );
                list.push(pid);
            }
            GlobalEvent::Left { group, pid } => {
                let list = members.entry(group.clone()).or_default();
                let at = list.iter().position(|p| *p == pid);
                let at = at.unwrap_or_else(|| {
                    panic!("{node:?}: {pid:?} reported leaving {group:?} it was not in")
                });
                list.remove(at);
            }
            _ => {}
        }
    }
    assert_eq!(events.missed(), 0);
}

async fn pool_member(node: &Node, group: &str) -> ProbeHandle {
    let worker = probe(node, false).await;
    assert_eq!(node.join_group(group, worker.pid()).await, Ok(true));
    worker
}

#[test]
fn members_that_end_normally_crash_or_are_killed_leave_every_group_on_every_node() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let all: Vec<&Node> = nodes.iter().collect();
        let events: Vec<_> = nodes.iter().map(Node::global_events).collect();
        let (snapshot, monitor) = nodes[0].monitor_group("pool");
        let mut monitored = BTreeSet::from_iter(snapshot);
        let mut workers = Vec::new();
        for _ in 0..3 {
            let worker = pool_member(&nodes[1], "pool").await;
            assert_eq!(nodes[1].join_group("other", worker.pid()).await, Ok(true));
            workers.push(worker);
        }
        let pids: Vec<Pid> = workers.iter().map(|w| w.pid().clone()).collect();
        converged(&all, "pool", &pids).await;
        converged(&all, "other", &pids).await;
        apply(&monitor, &mut monitored, "the monitor of node 0");
        assert!(monitored.iter().eq(&pids));

        workers[0].stop_itself(ExitReason::Normal).await;
        assert_eq!(workers[0].exited().await, ExitReason::Normal);
        crash(&workers[1], "boom").await;
        assert!(nodes[1].kill(workers[2].pid()));
        assert_eq!(workers[2].exited().await, ExitReason::Killed);

        converged(&all, "pool", &[]).await;
        converged(&all, "other", &[]).await;
        apply(&monitor, &mut monitored, "the monitor of node 0");
        assert!(monitored.is_empty(), "{monitored:?}");
        for (node, events) in nodes.iter().zip(&events) {
            assert!(node.groups().is_empty());
            let mut members = BTreeMap::new();
            replay(events, &mut members, &id(node));
            assert!(members.values().all(Vec::is_empty), "{members:?}");
        }
        shutdown_all(nodes);
    });
}

/// Takes what `events` has received so far.
fn received(events: &GroupEvents) -> Vec<GroupEvent> {
    std::iter::from_fn(|| events.try_recv()).collect()
}

#[test]
fn a_process_that_joined_twice_stays_a_member_on_every_node_until_it_has_left_twice() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let all: Vec<&Node> = nodes.iter().collect();
        let events: Vec<_> = nodes.iter().map(Node::global_events).collect();
        let monitors: Vec<_> = nodes.iter().map(|n| n.monitor_group("pool").1).collect();
        let worker = probe(&nodes[1], false).await;
        let pid = worker.pid().clone();
        // Joined through either node: the first time forwarded to node 1.
        assert_eq!(nodes[0].join_group("pool", &pid).await, Ok(true));
        assert_eq!(nodes[1].join_group("pool", &pid).await, Ok(false));
        converged(&all, "pool", std::slice::from_ref(&pid)).await;

        // Left once of twice: a member still. (Its node tells node 0 of a last leave
        // before it answers the forwarded leave.)
        assert_eq!(nodes[0].leave_group("pool", &pid).await, Ok(true));
        for node in &nodes {
            assert_eq!(
                node.group_members("pool"),
                vec![pid.clone()],
                "{:?}",
                id(node)
            );
        }
        assert_eq!(nodes[0].leave_group("pool", &pid).await, Ok(true));
        for node in &nodes {
            assert!(node.group_members("pool").is_empty(), "{:?}", id(node));
        }
        assert_eq!(nodes[1].leave_group("pool", &pid).await, Ok(false));
        assert_eq!(nodes[0].leave_group("pool", &pid).await, Ok(false));

        // Joined three times, it leaves once when it ends.
        for first in [true, false, false] {
            assert_eq!(nodes[1].join_group("pool", &pid).await, Ok(first));
        }
        converged(&all, "pool", std::slice::from_ref(&pid)).await;
        worker.stop_itself(ExitReason::Normal).await;
        worker.exited().await;
        converged(&all, "pool", &[]).await;

        // Each node reported the first join and the last leave, each once.
        let expected = [
            GroupEvent::Joined(pid.clone()),
            GroupEvent::Left(pid.clone()),
            GroupEvent::Joined(pid.clone()),
            GroupEvent::Left(pid.clone()),
        ];
        for (node, monitor) in nodes.iter().zip(&monitors) {
            assert_eq!(received(monitor), expected, "{:?}", id(node));
        }
        events_replay_to_the_membership(&nodes, &events, "pool");
        shutdown_all(nodes);
    });
}

#[test]
fn a_process_joined_twice_is_a_member_once_after_its_node_reconnects_and_leaves_twice() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let all: Vec<&Node> = nodes.iter().collect();
        let worker = probe(&nodes[1], false).await;
        let pid = worker.pid().clone();
        for first in [true, false] {
            assert_eq!(nodes[1].join_group("pool", &pid).await, Ok(first));
        }
        converged(&all, "pool", std::slice::from_ref(&pid)).await;

        // Cut and healed: node 0 drops the member, then learns it again, once.
        isolate(&nodes, 1, true);
        converged(&all[..1], "pool", &[]).await;
        isolate(&nodes, 1, false);
        for node in &nodes {
            wait_connected(node, 1).await;
        }
        converged(&all, "pool", std::slice::from_ref(&pid)).await;

        // The joins are counted on the member's node, across the reconnection.
        assert_eq!(nodes[0].leave_group("pool", &pid).await, Ok(true));
        assert_eq!(nodes[0].group_members("pool"), vec![pid.clone()]);
        assert_eq!(nodes[0].leave_group("pool", &pid).await, Ok(true));
        assert!(nodes[0].group_members("pool").is_empty());
        assert_eq!(nodes[0].leave_group("pool", &pid).await, Ok(false));
        shutdown_all(nodes);
    });
}

#[test]
fn a_healed_partition_converges_every_node_to_one_membership_with_changes_of_both_sides() {
    run_blocking(async {
        let nodes = start_cluster(4).await;
        let all: Vec<&Node> = nodes.iter().collect();
        let events: Vec<_> = nodes.iter().map(Node::global_events).collect();
        let mut workers: Vec<Vec<ProbeHandle>> = Vec::new();
        for node in &nodes {
            let mut mine = Vec::new();
            for _ in 0..3 {
                mine.push(pool_member(node, "pool").await);
            }
            workers.push(mine);
        }
        let pids = |workers: &[Vec<ProbeHandle>]| -> Vec<Pid> {
            workers.iter().flatten().map(|w| w.pid().clone()).collect()
        };
        converged(&all, "pool", &pids(&workers)).await;

        // Node 3 is cut off: each side loses the other's members.
        isolate(&nodes, 3, true);
        for (i, node) in nodes.iter().enumerate() {
            wait_connected(node, if i == 3 { 0 } else { 2 }).await;
        }
        converged(&all[..3], "pool", &pids(&workers[..3])).await;
        converged(&all[3..], "pool", &pids(&workers[3..])).await;

        // Both sides change the pool while apart.
        let gone = workers[3].remove(0);
        gone.stop_itself(ExitReason::Normal).await;
        gone.exited().await;
        let left = workers[3].remove(0);
        assert_eq!(nodes[3].leave_group("pool", left.pid()).await, Ok(true));
        workers[3].push(pool_member(&nodes[3], "pool").await);
        let gone = workers[0].remove(0);
        assert!(nodes[0].kill(gone.pid()));
        gone.exited().await;
        let left = workers[1].remove(0);
        // Through another node of its side.
        assert_eq!(nodes[2].leave_group("pool", left.pid()).await, Ok(true));
        workers[2].push(pool_member(&nodes[2], "pool").await);
        converged(&all[..3], "pool", &pids(&workers[..3])).await;
        converged(&all[3..], "pool", &pids(&workers[3..])).await;

        isolate(&nodes, 3, false);
        for node in &nodes {
            wait_connected(node, 3).await;
        }
        converged(&all, "pool", &pids(&workers)).await;
        events_replay_to_the_membership(&nodes, &events, "pool");
        shutdown_all(nodes);
    });
}

#[test]
fn a_node_restarted_under_its_id_does_not_bring_back_its_old_members() {
    run_blocking(async {
        let survivors = start_cluster(3).await;
        let seed = id(&survivors[0]).to_string();
        let x = Node::start(common::cluster_config("x").seed(seed.clone()))
            .await
            .unwrap();
        let x_id = id(&x);
        for node in &survivors {
            wait_connected(node, 3).await;
        }
        let events: Vec<_> = survivors.iter().map(Node::global_events).collect();
        let mut old = Vec::new();
        for _ in 0..3 {
            old.push(pool_member(&x, "pool").await.pid().clone());
        }
        let all: Vec<&Node> = survivors.iter().chain([&x]).collect();
        converged(&all, "pool", &old).await;

        // A crash: no goodbye; x comes back on its address at once.
        x.faults().refuse_connections(true);
        for node in &survivors {
            x.faults().silence(&id(node), true);
        }
        x.shutdown();
        let bind = format!("127.0.0.1:{}", x_id.port()).parse().unwrap();
        let x = Node::start(common::cluster_config("x").bind(bind).seed(seed))
            .await
            .unwrap();
        wait_connected(&x, 3).await;
        let fresh = pool_member(&x, "pool").await;
        let all: Vec<&Node> = survivors.iter().chain([&x]).collect();
        for node in &survivors {
            wait_connected(node, 3).await;
        }
        converged(&all, "pool", &[fresh.pid().clone()]).await;
        for (node, events) in survivors.iter().zip(&events) {
            let mut members = BTreeMap::new();
            replay(events, &mut members, &id(node));
            assert_eq!(
                members.remove("pool").unwrap_or_default(),
                vec![fresh.pid().clone()],
                "{:?}",
                id(node)
            );
        }
        x.shutdown();
        shutdown_all(survivors);
    });
}

#[test]
fn queries_during_churn_never_show_a_member_that_ended_once_its_end_is_seen() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let watcher = probe(&nodes[2], false).await;
        for round in 0..50 {
            let worker = pool_member(&nodes[0], "churn").await;
            let pid = worker.pid().clone();
            // The end is seen on node 2 through a monitor: the owner's `Left` went out on
            // the same connection, before the `Down`.
            watcher.monitor(&pid).await;
            if round % 2 == 0 {
                assert!(nodes[0].kill(&pid));
            } else {
                worker.stop_itself(ExitReason::Normal).await;
            }
            within("the Down", watcher.next_seen()).await;
            assert!(
                !nodes[2].group_members("churn").contains(&pid),
                "round {round}: {pid:?} ended but is still a member on node 2"
            );
        }
        shutdown_all(nodes);
    });
}

/// Spawns, joins and ends workers on `node` for `rounds` rounds, keeping every third.
async fn churn(node: Node, rounds: usize) -> Vec<ProbeHandle> {
    let mut kept = Vec::new();
    for round in 0..rounds {
        let worker = pool_member(&node, "pool").await;
        match round % 3 {
            0 => kept.push(worker),
            1 => {
                assert!(node.kill(worker.pid()));
                worker.exited().await;
            }
            _ => {
                assert_eq!(node.leave_group("pool", worker.pid()).await, Ok(true));
                worker.stop_itself(ExitReason::Normal).await;
                worker.exited().await;
            }
        }
    }
    kept
}

#[test]
fn churn_on_both_sides_while_a_silent_partition_is_detected_and_heals_converges() {
    run_blocking(async {
        let nodes = start_cluster(5).await;
        let all: Vec<&Node> = nodes.iter().collect();
        let events: Vec<_> = nodes.iter().map(Node::global_events).collect();
        let lone = 4;
        // The network goes silent: no FIN, each side finds the other gone by heartbeats.
        nodes[lone].faults().refuse_connections(true);
        for (i, node) in nodes.iter().enumerate().filter(|(i, _)| *i != lone) {
            node.faults().silence(&id(&nodes[lone]), true);
            nodes[lone].faults().silence(&id(&nodes[i]), true);
        }
        let a = smol::spawn(churn(nodes[0].clone(), 60));
        let b = smol::spawn(churn(nodes[lone].clone(), 60));
        within("the lone node to see its peers lost", async {
            while !nodes[lone].connected_nodes().is_empty() {
                smol::Timer::after(std::time::Duration::from_millis(5)).await;
            }
        })
        .await;
        nodes[lone].faults().refuse_connections(false);
        let mut kept = within("churn", a).await;
        kept.extend(within("churn", b).await);
        for node in &nodes {
            wait_connected(node, 4).await;
        }
        let pids: Vec<Pid> = kept.iter().map(|w| w.pid().clone()).collect();
        converged(&all, "pool", &pids).await;
        events_replay_to_the_membership(&nodes, &events, "pool");
        shutdown_all(nodes);
    });
}

#[test]
fn crossing_connections_keep_both_nodes_members() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let all: Vec<&Node> = nodes.iter().collect();
        let events: Vec<_> = nodes.iter().map(Node::global_events).collect();
        let mut workers = Vec::new();
        for node in &nodes {
            workers.push(pool_member(node, "pool").await);
        }
        let pids: Vec<Pid> = workers.iter().map(|w| w.pid().clone()).collect();
        converged(&all, "pool", &pids).await;
        for round in 0..10 {
            // Both drop the link and dial each other at once.
            nodes[0].faults().disconnect(&id(&nodes[1]));
            nodes[1].faults().disconnect(&id(&nodes[0]));
            for node in &nodes {
                wait_connected(node, 1).await;
            }
            let extra = pool_member(&nodes[round % 2], "pool").await;
            workers.push(extra);
            let pids: Vec<Pid> = workers.iter().map(|w| w.pid().clone()).collect();
            converged(&all, "pool", &pids).await;
        }
        events_replay_to_the_membership(&nodes, &events, "pool");
        shutdown_all(nodes);
    });
}

#[test]
fn a_join_or_leave_through_a_peer_just_reconnected_is_answered() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let worker = probe(&nodes[1], false).await;
        let pid = worker.pid().clone();
        let events = nodes[0].cluster_events();
        let mut spurious = Vec::new();
        for round in 0..200 {
            nodes[0].faults().disconnect(&id(&nodes[1]));
            while !matches!(next_event(&events).await, ClusterEvent::NodeUp { .. }) {}
            // At once: the forward may go out before the new connection's state is set up.
            let (result, expected) = match round % 2 {
                0 => (nodes[0].join_group("g", &pid).await, vec![pid.clone()]),
                _ => (nodes[0].leave_group("g", &pid).await, vec![]),
            };
            match result {
                Ok(_) => assert_eq!(nodes[0].group_members("g"), expected, "round {round}"),
                // Fine only if that connection was lost too.
                Err(GlobalError::NoConnection { .. }) if events.try_recv().is_some() => {}
                Err(error) => spurious.push((round, error)),
            }
            wait_connected(&nodes[0], 1).await;
            wait_connected(&nodes[1], 1).await;
        }
        assert!(
            spurious.is_empty(),
            "failed with the connection up: {spurious:?}"
        );
        shutdown_all(nodes);
    });
}

#[test]
fn a_lost_nodes_members_and_names_are_gone_when_its_node_down_is_seen() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let worker = probe(&nodes[1], false).await;
        assert_eq!(nodes[1].join_group("g", worker.pid()).await, Ok(true));
        nodes[1].register_global("w", worker.pid()).await.unwrap();
        let events = nodes[0].cluster_events();
        let mut stale = Vec::new();
        for round in 0..200 {
            eventually("the member and the name back", || {
                nodes[0].group_members("g").len() == 1 && nodes[0].whereis_global("w").is_some()
            })
            .await;
            // Dropped by the other end: this node finds out on its own reader. (Cut, not
            // just dropped, until looked at: a reconnection, quick on loopback, would
            // bring the entries back before a busy test reads them.)
            nodes[1].faults().partition(&id(&nodes[0]), true);
            while !matches!(next_event(&events).await, ClusterEvent::NodeDown { .. }) {}
            let (members, name) = (nodes[0].group_members("g"), nodes[0].whereis_global("w"));
            if !members.is_empty() || name.is_some() {
                stale.push((round, members, name));
            }
            nodes[1].faults().partition(&id(&nodes[0]), false);
            while !matches!(next_event(&events).await, ClusterEvent::NodeUp { .. }) {}
            wait_connected(&nodes[0], 1).await;
        }
        assert!(stale.is_empty(), "seen after NodeDown: {stale:?}");
        shutdown_all(nodes);
    });
}

/// Joins and leaves the processes of `pool` in turn through `via`, `ops` times, starting
/// from `members` (those of `pool` in the group); returns the members of `pool` at the end.
async fn toggle(
    via: Node,
    pool: Vec<Pid>,
    mut members: BTreeSet<Pid>,
    ops: usize,
) -> BTreeSet<Pid> {
    for op in 0..ops {
        let pid = &pool[op % pool.len()];
        if members.remove(pid) {
            assert_eq!(via.leave_group("watched", pid).await, Ok(true));
        } else {
            assert_eq!(via.join_group("watched", pid).await, Ok(true));
            members.insert(pid.clone());
        }
        smol::future::yield_now().await;
    }
    members
}

/// Applies the events `events` has received so far to `members`, failing on a join
/// reported for a member already in, or a leave for one not in.
fn apply(events: &GroupEvents, members: &mut BTreeSet<Pid>, what: &str) {
    while let Some(event) = events.try_recv() {
        match event {
            GroupEvent::Joined(pid) => {
                assert!(members.insert(pid.clone()), "{what}: {pid:?} joined twice")
            }
            GroupEvent::Left(pid) => {
                assert!(members.remove(&pid), "{what}: {pid:?} left, not a member")
            }
            other => panic!("{what}: unexpected {other:?}"),
        }
    }
    assert_eq!(events.missed(), 0, "{what}");
}

#[test]
fn a_group_monitor_sees_exactly_the_changes_after_its_snapshot_while_two_nodes_churn() {
    // Not a multiple of a pool's size: the members at the end of a round vary.
    const OPS: usize = 601;
    const MONITORS: usize = 100;
    run_blocking(async {
        let nodes = start_cluster(2).await;
        // Processes of node 0 through node 0, of node 1 through node 1, and of node 0
        // through node 1 (forwarded).
        let plan = [(0, 0), (1, 1), (0, 1)];
        let mut workers = Vec::new();
        for &(owner, _) in &plan {
            let mut pool = Vec::new();
            for _ in 0..5 {
                pool.push(probe(&nodes[owner], false).await);
            }
            workers.push(pool);
        }
        let pools: Vec<Vec<Pid>> = workers
            .iter()
            .map(|pool| pool.iter().map(|w| w.pid().clone()).collect())
            .collect();
        let mut members = vec![BTreeSet::new(); plan.len()];
        for round in 0..5 {
            // Given processes joining and leaving on both nodes,
            let changes = nodes[0].global_events();
            let togglers: Vec<_> = plan
                .iter()
                .zip(&pools)
                .zip(&members)
                .map(|((&(_, via), pool), members)| {
                    let node = nodes[via].clone();
                    let toggle = toggle(node, pool.clone(), members.clone(), OPS);
                    nodes[via].spawn_task(toggle)
                })
                .collect();
            // when monitors are taken on either node all along (one after each change
            // node 0 sees, the first MONITORS of the round's),
            let mut monitors = Vec::new();
            for i in 0..MONITORS {
                let node = &nodes[i % 2];
                let (snapshot, events) = node.monitor_group("watched");
                monitors.push((node, BTreeSet::from_iter(snapshot), events));
                within("a change", changes.recv()).await;
            }
            for (toggler, members) in togglers.into_iter().zip(&mut members) {
                *members = within("a toggler", toggler).await;
            }
            let mut expected: Vec<Pid> = members.iter().flatten().cloned().collect();
            expected.sort();
            // then each snapshot with its events applied gives the final members.
            for (i, (node, mut seen, events)) in monitors.into_iter().enumerate() {
                let what = format!("round {round}, monitor {i} on {:?}", id(node));
                eventually(&what, || {
                    apply(&events, &mut seen, &what);
                    seen.iter().eq(&expected)
                })
                .await;
                assert_eq!(node.group_members("watched"), expected, "{what}");
            }
        }
        shutdown_all(nodes);
    });
}
