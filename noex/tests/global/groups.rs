//! Joining nodes, group membership, monitors of every group, and leaks over many cycles.

use std::collections::{BTreeMap, BTreeSet};

use noex::GroupEvent;

use super::*;

#[test]
fn a_joining_node_learns_every_name_and_group() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let mut held = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            for j in 0..50 {
                let server = counter(node, 0).await;
                let name = format!("name-{i}-{j}");
                node.register_global(&name, server.pid()).await.unwrap();
                node.join_group("all", server.pid()).await.unwrap();
                node.join_group(&format!("group-{i}"), server.pid())
                    .await
                    .unwrap();
                held.push((name, server.pid().clone()));
            }
        }
        held.sort();
        let seed = id(&nodes[0]).to_string();
        let late = Node::start(cluster_config("late").seed(seed))
            .await
            .unwrap();
        wait_connected(&late, 2).await;
        eventually("the late node to learn every name", || {
            late.global_names() == held
        })
        .await;
        eventually("the late node to learn every group", || {
            late.group_members("all").len() == 100
                && late.group_members("group-0").len() == 50
                && late.group_members("group-1").len() == 50
        })
        .await;
        assert_eq!(late.groups(), vec!["all", "group-0", "group-1"]);
        assert!(late.local_group_members("all").is_empty());
        late.shutdown();
        shutdown_all(nodes);
    });
}

#[test]
fn group_membership_follows_joins_leaves_exits_and_node_loss() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let a = counter(&nodes[0], 0).await;
        let b = counter(&nodes[1], 0).await;
        let c = counter(&nodes[2], 0).await;
        assert_eq!(nodes[0].join_group("workers", a.pid()).await, Ok(true));
        assert_eq!(nodes[0].join_group("workers", a.pid()).await, Ok(false));
        // A process of another node joins through its node.
        assert_eq!(nodes[0].join_group("workers", b.pid()).await, Ok(true));
        assert_eq!(nodes[2].join_group("workers", c.pid()).await, Ok(true));
        let mut all = vec![a.pid().clone(), b.pid().clone(), c.pid().clone()];
        all.sort();
        let members = |expected: Vec<Pid>| {
            let nodes = nodes.clone();
            async move {
                let what = format!("every node to see members {expected:?}");
                eventually(&what, || {
                    nodes.iter().all(|n| n.group_members("workers") == expected)
                })
                .await
            }
        };
        members(all.clone()).await;
        assert_eq!(
            nodes[1].local_group_members("workers"),
            vec![b.pid().clone()]
        );

        assert_eq!(nodes[2].leave_group("workers", b.pid()).await, Ok(true));
        assert_eq!(nodes[2].leave_group("workers", b.pid()).await, Ok(false));
        all.retain(|p| p != b.pid());
        members(all.clone()).await;

        a.stop(ExitReason::Normal).await.unwrap();
        all.retain(|p| p != a.pid());
        members(all.clone()).await;

        let lost = id(&nodes[2]);
        for node in &nodes[..2] {
            node.faults().partition(&lost, true);
        }
        let what = "the lost node's members to leave";
        eventually(what, || {
            nodes[..2]
                .iter()
                .all(|n| n.group_members("workers").is_empty() && n.groups().is_empty())
        })
        .await;
        let gone = nodes[0].join_group("workers", a.pid()).await;
        assert!(matches!(gone, Err(GlobalError::NoProc { .. })), "{gone:?}");
        shutdown_all(nodes);
    });
}

#[test]
fn many_cycles_leave_no_names_groups_or_claims_behind() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        for round in 0..300 {
            let node = &nodes[round % 2];
            let server = counter(node, 0).await;
            let name = format!("cycle-{round}");
            node.register_global(&name, server.pid()).await.unwrap();
            node.join_group("cycling", server.pid()).await.unwrap();
            if round % 3 == 0 {
                node.unregister_global(&name).await.unwrap();
            }
            server.stop(ExitReason::Normal).await.unwrap();
        }
        eventually("every table to empty", || {
            nodes.iter().all(|n| {
                n.global_names().is_empty()
                    && n.groups().is_empty()
                    && n.faults().global_pending() == (0, 0)
                    && n.faults().global_records() == 0
            })
        })
        .await;
        shutdown_all(nodes);
    });
}

#[test]
fn a_process_in_thirty_thousand_groups_joins_and_leaves_each_in_one_step() {
    // Not a timing assertion, but a tripwire: with a scan of the process's groups at each
    // join and leave (as before), this took ~9.5 s in a debug build; ~0.6 s with its groups
    // in a sorted map.
    const GROUPS: usize = 30_000;
    run_blocking(async {
        let node = Node::new();
        let server = counter(&node, 0).await;
        for g in 0..GROUPS {
            let group = format!("g-{g}");
            assert_eq!(node.join_group(&group, server.pid()).await, Ok(true));
        }
        assert_eq!(node.groups().len(), GROUPS);
        for g in (0..GROUPS).step_by(2) {
            let group = format!("g-{g}");
            assert_eq!(node.leave_group(&group, server.pid()).await, Ok(true));
        }
        assert_eq!(node.groups().len(), GROUPS / 2);
        assert_eq!(node.group_members("g-1"), vec![server.pid().clone()]);
        server.stop(ExitReason::Normal).await.unwrap();
        assert!(node.groups().is_empty());
        node.shutdown();
    });
}

/// Takes what `events` has received so far.
fn received<T>(events: &noex::Subscription<T>) -> Vec<T> {
    let received = std::iter::from_fn(|| events.try_recv()).collect();
    assert_eq!(events.missed(), 0);
    received
}

/// The groups `events` reports `pid` left, sorted; failing on any other event.
fn groups_left(events: &noex::GlobalEvents, pid: &Pid) -> Vec<String> {
    let mut left: Vec<String> = received(events)
        .into_iter()
        .map(|event| match event {
            GlobalEvent::Left { group, pid: p } if p == *pid => group,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    left.sort();
    left
}

#[test]
fn a_process_that_ends_in_fifty_groups_costs_each_peer_one_message_and_reports_fifty_leaves() {
    const GROUPS: usize = 50;
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let server = counter(&nodes[0], 0).await;
        let pid = server.pid().clone();
        let groups: Vec<String> = (0..GROUPS).map(|g| format!("g-{g:02}")).collect();
        for group in &groups {
            assert_eq!(nodes[0].join_group(group, &pid).await, Ok(true));
        }
        let peers = &nodes[1..];
        eventually("the peers to see every membership", || {
            peers.iter().all(|node| {
                node.groups() == groups
                    && groups
                        .iter()
                        .all(|g| node.group_members(g) == [pid.clone()])
            })
        })
        .await;
        let watching: Vec<_> = peers
            .iter()
            .map(|node| {
                let monitors: Vec<_> = groups.iter().map(|g| node.monitor_group(g).1).collect();
                let received = node.faults().global_messages_received();
                (
                    node.global_events(),
                    node.monitor_groups(),
                    monitors,
                    received,
                )
            })
            .collect();

        server.stop(ExitReason::Normal).await.unwrap();
        eventually("the peers to drop it from every group", || {
            peers.iter().all(|node| node.groups().is_empty())
        })
        .await;
        for (node, (events, (snapshot, scope), monitors, before)) in peers.iter().zip(watching) {
            let what = format!("{:?}", id(node));
            let messages = node.faults().global_messages_received() - before;
            assert_eq!(messages, 1, "{what}: messages for the end of a process");
            for monitor in &monitors {
                assert_eq!(received(monitor), [GroupEvent::Left(pid.clone())], "{what}");
            }
            assert!(snapshot.keys().eq(&groups), "{what}: {snapshot:?}");
            assert!(snapshot.values().all(|members| *members == [pid.clone()]));
            assert_eq!(groups_left(&events, &pid), groups, "{what}: global_events");
            assert_eq!(groups_left(&scope, &pid), groups, "{what}: monitor_groups");
        }
        shutdown_all(nodes);
    });
}

/// Toggles the membership of each of `pool` in each of `groups` through `via`, `ops`
/// times; every 40th time, a process of `owner` joins five groups and ends.
async fn toggle_groups(owner: Node, via: Node, pool: Vec<Pid>, groups: Vec<String>, ops: usize) {
    for op in 0..ops {
        let pid = &pool[op % pool.len()];
        let group = &groups[(op / pool.len()) % groups.len()];
        if !via.join_group(group, pid).await.unwrap() {
            assert_eq!(via.leave_group(group, pid).await, Ok(true));
        }
        if op % 40 == 39 {
            let server = counter(&owner, 0).await;
            for group in groups.iter().take(5) {
                via.join_group(group, server.pid()).await.unwrap();
            }
            server.stop(ExitReason::Normal).await.unwrap();
        }
        smol::future::yield_now().await;
    }
}

type Membership = BTreeMap<String, BTreeSet<Pid>>;

/// Every group's members on `node`.
fn membership(node: &Node) -> Membership {
    let groups = node.groups().into_iter();
    groups
        .map(|g| (g.clone(), node.group_members(&g).into_iter().collect()))
        .collect()
}

/// Applies the events `events` has received so far to `members`, failing on a join
/// reported for a member already in, or a leave for one not in.
fn apply(events: &noex::GlobalEvents, members: &mut Membership, what: &str) {
    for event in received(events) {
        match event {
            GlobalEvent::Joined { group, pid } => {
                let list = members.entry(group.clone()).or_default();
                assert!(
                    list.insert(pid.clone()),
                    "{what}: {pid:?} joined {group} twice"
                );
            }
            GlobalEvent::Left { group, pid } => {
                let list = members.entry(group.clone()).or_default();
                assert!(list.remove(&pid), "{what}: {pid:?} left {group}, not in it");
                if list.is_empty() {
                    members.remove(&group);
                }
            }
            other => panic!("{what}: unexpected {other:?}"),
        }
    }
}

#[test]
fn a_monitor_of_every_group_sees_exactly_the_changes_after_its_snapshot_while_two_nodes_churn() {
    const OPS: usize = 401;
    const CHANGES: usize = 100;
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let groups: Vec<String> = (0..7).map(|g| format!("watched-{g}")).collect();
        // Processes of node 0 through node 0, of node 1 through node 1, and of node 0
        // through node 1 (forwarded).
        let plan = [(0, 0), (1, 1), (0, 1)];
        let mut pools = Vec::new();
        let mut servers = Vec::new();
        for (owner, _) in plan {
            let mut pool = Vec::new();
            for _ in 0..5 {
                let server = counter(&nodes[owner], 0).await;
                pool.push(server.pid().clone());
                servers.push(server);
            }
            pools.push(pool);
        }
        for round in 0..3 {
            // Given the groups' members changing on both nodes,
            let changes = nodes[0].global_events();
            let togglers: Vec<_> = plan
                .iter()
                .zip(&pools)
                .map(|(&(owner, via), pool)| {
                    let (owner, via) = (nodes[owner].clone(), nodes[via].clone());
                    let toggle =
                        toggle_groups(owner, via.clone(), pool.clone(), groups.clone(), OPS);
                    via.spawn_task(toggle)
                })
                .collect();
            // when monitors are taken on either node all along (a few after each change
            // node 0 sees, for the first CHANGES changes of the round),
            let mut monitors = Vec::new();
            for i in 0..CHANGES * 4 {
                let node = &nodes[i % 2];
                let (snapshot, events) = node.monitor_groups();
                let seen: Membership = snapshot
                    .into_iter()
                    .map(|(group, members)| (group, members.into_iter().collect()))
                    .collect();
                monitors.push((node, seen, events));
                if i % 4 == 3 {
                    within("a change", changes.recv()).await;
                }
            }
            for toggler in togglers {
                within("a toggler", toggler).await;
            }
            eventually("both nodes to agree", || {
                membership(&nodes[0]) == membership(&nodes[1])
            })
            .await;
            let expected = membership(&nodes[0]);
            // then each snapshot with its events applied gives the final members.
            for (i, (node, mut seen, events)) in monitors.into_iter().enumerate() {
                let what = format!("round {round}, monitor {i} on {:?}", id(node));
                eventually(&what, || {
                    apply(&events, &mut seen, &what);
                    seen == expected
                })
                .await;
            }
        }
        shutdown_all(nodes);
    });
}
