//! Partitions that heal with one name held twice: the conflict rule.

use super::*;

#[test]
fn a_healed_partition_keeps_one_owner_per_name_and_tells_the_loser() {
    run_blocking(async {
        let nodes = start_cluster(4).await;
        let ids: Vec<NodeId> = nodes.iter().map(id).collect();
        let (left, right) = nodes.split_at(2);
        for (a, b) in [(0, 2), (0, 3), (1, 2), (1, 3)] {
            nodes[a].faults().partition(&ids[b], true);
            nodes[b].faults().partition(&ids[a], true);
        }
        for node in &nodes {
            wait_connected(node, 1).await;
        }
        let events: Vec<_> = nodes.iter().map(Node::global_events).collect();
        let on_left = counter(&left[1], 1).await;
        let on_right = counter(&right[0], 2).await;
        // The right one traps exits: it is told by a message, and keeps running.
        on_right.trap_exits().await.unwrap();
        left[0]
            .register_global("leader", on_left.pid())
            .await
            .unwrap();
        right[1]
            .register_global("leader", on_right.pid())
            .await
            .unwrap();
        everywhere(left, "leader", Some(on_left.pid())).await;
        everywhere(right, "leader", Some(on_right.pid())).await;

        for (a, b) in [(0, 2), (0, 3), (1, 2), (1, 3)] {
            nodes[a].faults().partition(&ids[b], false);
            nodes[b].faults().partition(&ids[a], false);
        }
        let healed = std::time::Instant::now();
        let agreed = async {
            loop {
                let owners: Vec<_> = nodes.iter().map(|n| n.whereis_global("leader")).collect();
                let agreed = owners[0].is_some() && owners.iter().all(|o| *o == owners[0]);
                if agreed && nodes.iter().all(|n| n.connected_nodes().len() == 3) {
                    break owners[0].clone().unwrap();
                }
                smol::Timer::after(Duration::from_millis(2)).await;
            }
        };
        let winner = within("one owner everywhere", agreed).await;
        assert!(
            healed.elapsed() < Duration::from_secs(2),
            "took {:?}",
            healed.elapsed()
        );
        if &winner == on_left.pid() {
            // The right one traps: a message, and it runs on without the name.
            let told = async {
                loop {
                    let trapped = on_right.trapped().await.unwrap();
                    if !trapped.is_empty() {
                        break trapped;
                    }
                    smol::Timer::after(Duration::from_millis(2)).await;
                }
            };
            let trapped = within("the loser to be told", told).await;
            assert_eq!(
                trapped,
                vec![(winner.clone(), ExitReason::NameConflict("leader".into()))]
            );
        } else {
            assert_eq!(&winner, on_right.pid());
            let reason = within("the loser to end", on_left.exited()).await;
            assert_eq!(reason, ExitReason::NameConflict("leader".into()));
        }
        // The loser's node settled the conflict (others may have heard of the loser's
        // registration only after that).
        let loser = if &winner == on_left.pid() {
            on_right.pid()
        } else {
            on_left.pid()
        };
        let at = nodes.iter().position(|n| n.name() == loser.node()).unwrap();
        let conflict = within("a conflict event", async {
            loop {
                if let Some(GlobalEvent::Conflict {
                    name, winner: w, ..
                }) = events[at].recv().await
                {
                    break (name, w);
                }
            }
        })
        .await;
        assert_eq!(conflict, ("leader".to_owned(), winner));
        shutdown_all(nodes);
    });
}

/// a and c register one name while c is cut off; then b (but not a) reaches c again, so a
/// and c still do not meet. b sees both registrations and keeps one by the rule, and tells
/// the loser's node: its process gives the name up and is told (`NameConflict`) while a
/// and c are still apart. Once every link heals, every node sees the winner, and nobody
/// is told anything more.
#[test]
fn a_conflict_seen_by_a_third_node_is_settled_though_the_two_nodes_do_not_meet() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        isolate(&nodes, 2, true);
        wait_connected(a, 1).await;
        wait_connected(c, 0).await;
        let on_a = counter(a, 0).await;
        let on_c = counter(c, 0).await;
        for counter in [&on_a, &on_c] {
            counter.trap_exits().await.unwrap();
        }
        a.register_global("x", on_a.pid()).await.unwrap();
        c.register_global("x", on_c.pid()).await.unwrap();
        b.faults().partition(&id(c), false);
        c.faults().partition(&id(b), false);
        wait_connected(c, 1).await;
        // b keeps one by the rule; the other's node withdraws it once told.
        eventually("b to keep one", || {
            b.faults().global_records() == 1 && b.whereis_global("x").is_some()
        })
        .await;
        let winner = b.whereis_global("x").unwrap();
        let (won, lost, losers_node) = match &winner == on_a.pid() {
            true => (&on_a, &on_c, c),
            false => (&on_c, &on_a, a),
        };
        let told = async {
            loop {
                let trapped = lost.trapped().await.unwrap();
                if !trapped.is_empty() {
                    break trapped;
                }
                smol::Timer::after(Duration::from_millis(2)).await;
            }
        };
        assert_eq!(
            within("the loser to be told", told).await,
            vec![(winner.clone(), ExitReason::NameConflict("x".into()))]
        );
        // The loser's node does not reach the winner's: it sees nobody.
        eventually("the loser's node to give the name up", || {
            losers_node.whereis_global("x").is_none()
        })
        .await;
        assert_eq!(a.connected_nodes().len(), 1, "a and c are still apart");
        a.faults().partition(&id(c), false);
        c.faults().partition(&id(a), false);
        for node in &nodes {
            wait_connected(node, 2).await;
        }
        everywhere(&nodes, "x", Some(&winner)).await;
        assert!(won.trapped().await.unwrap().is_empty());
        assert_eq!(lost.trapped().await.unwrap().len(), 1, "told once");
        let other = counter(b, 0).await;
        let taken = b.register_global("x", other.pid()).await;
        assert!(
            matches!(&taken, Err(GlobalError::NameTaken { holder, .. }) if holder == &winner),
            "{taken:?}"
        );
        shutdown_all(nodes);
    });
}

#[test]
fn a_supervisor_that_loses_its_global_name_when_a_partition_heals_stops_with_its_children() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let ids: Vec<NodeId> = nodes.iter().map(id).collect();
        nodes[0].faults().partition(&ids[1], true);
        nodes[1].faults().partition(&ids[0], true);
        eventually("the cut", || {
            nodes.iter().all(|n| n.connected_nodes().is_empty())
        })
        .await;
        // One supervisor named "sup" on each side, each with its own child; their ends
        // watched from before the heal.
        let mut sides = Vec::new();
        for node in &nodes {
            let spec =
                SupervisorSpec::new(noex::Strategy::OneForOne)
                    .child(ChildSpec::worker::<Counter>("counter", 0));
            let named = SpawnOptions::new().global_name("sup");
            let supervisor = node.spawn_with::<Supervisor>(spec, named).await.unwrap();
            let child = supervisor.which_children().await.unwrap()[0]
                .pid
                .clone()
                .unwrap();
            let ends = (
                watch_end(node, supervisor.pid()).await,
                watch_end(node, &child).await,
            );
            sides.push((supervisor.pid().clone(), child, ends));
        }
        nodes[0].faults().partition(&ids[1], false);
        nodes[1].faults().partition(&ids[0], false);
        let winner = within("one owner everywhere", async {
            loop {
                let owners: Vec<_> = nodes.iter().map(|n| n.whereis_global("sup")).collect();
                if owners[0].is_some() && owners[0] == owners[1] {
                    break owners[0].clone().unwrap();
                }
                smol::Timer::after(Duration::from_millis(2)).await;
            }
        })
        .await;
        let loser = sides.iter().position(|(s, _, _)| *s != winner).unwrap();
        let (_, kept_child, _) = &sides[1 - loser];
        let kept_child = kept_child.clone();
        let (_, _, (supervisor_end, child_end)) = sides.swap_remove(loser);
        assert_eq!(
            within("the loser to stop", supervisor_end).await,
            ExitReason::NameConflict("sup".into())
        );
        assert_eq!(
            within("its child to stop", child_end).await,
            ExitReason::Shutdown
        );
        assert!(nodes[1 - loser].is_alive(&kept_child));
        shutdown_all(nodes);
    });
}

#[test]
fn a_node_started_after_a_name_was_taken_loses_its_own_registration_of_it() {
    run_blocking(async {
        let nodes = start_cluster(1).await;
        let old = &nodes[0];
        // The old node has registered a few names before; its holder is registered next.
        for n in 0..3 {
            let other = counter(old, n).await;
            old.register_global(&format!("other-{n}"), other.pid())
                .await
                .unwrap();
        }
        let holder = counter(old, 1).await;
        old.register_global("leader", holder.pid()).await.unwrap();
        let registered = std::time::SystemTime::now();
        // Later, a node on its own (it has seen no claim) registers the name too...
        let late = Node::start(cluster_config("late")).await.unwrap();
        eventually("the wall clock to move on", || {
            registered.elapsed().unwrap_or_default() >= Duration::from_millis(20)
        })
        .await;
        let newcomer = counter(&late, 2).await;
        late.register_global("leader", newcomer.pid())
            .await
            .unwrap();
        let newcomer_end = watch_end(&late, newcomer.pid()).await;
        // ...then meets the old one: the earlier registration keeps the name.
        let address = id(old).to_string();
        late.faults().dial(address.split('@').nth(1).unwrap());
        wait_connected(&late, 1).await;
        let both = [old, &late];
        eventually("one owner everywhere", || {
            both.iter()
                .all(|n| n.whereis_global("leader").as_ref() == Some(holder.pid()))
        })
        .await;
        assert_eq!(
            within("the newcomer to lose", newcomer_end).await,
            ExitReason::NameConflict("leader".into())
        );
        late.shutdown();
        shutdown_all(nodes);
    });
}
