//! Registering, finding and calling global names; races between registrations.

use super::*;

#[test]
fn a_name_registered_on_one_node_is_found_and_called_from_every_other() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let cache = registered(&nodes, 0, "cache", 41).await;
        for node in &nodes {
            let named = node.named_global::<Counter>("cache");
            named.add(1).unwrap();
            let typed = node.lookup_global::<Counter>("cache").unwrap();
            assert_eq!(typed.pid(), cache.pid());
            assert!(within("a call by global name", named.get()).await.unwrap() >= 42);
            assert_eq!(
                node.global_names(),
                vec![("cache".to_owned(), cache.pid().clone())]
            );
        }
        assert_eq!(cache.get().await, Ok(44));
        shutdown_all(nodes);
    });
}

#[test]
fn a_typed_lookup_of_the_wrong_behaviour_is_an_error() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let _cache = registered(&nodes, 0, "cache", 0).await;
        for node in &nodes {
            match node.lookup_global::<Other>("cache") {
                Err(LookupError::WrongBehavior { name, found, .. }) => {
                    assert_eq!(name, "cache");
                    assert!(
                        found.contains("Counter") || found == "global-counter",
                        "{found}"
                    );
                }
                other => panic!("expected WrongBehavior, got {:?}", other.map(|_| ())),
            }
            let named = node.named_global::<Other>("cache");
            let call = within("a call of the wrong behaviour", named.hello()).await;
            assert!(
                matches!(call, Err(CallError::WrongBehavior { .. })),
                "{call:?}"
            );
            assert!(matches!(
                node.lookup_global::<Counter>("nobody"),
                Err(LookupError::NotFound(_))
            ));
            let nobody = node.named_global::<Counter>("nobody");
            let target = Target::Global {
                name: "nobody".into(),
            };
            assert_eq!(
                nobody.get().await,
                Err(CallError::NoProc {
                    target: target.clone()
                })
            );
            assert_eq!(nobody.add(1), Err(SendError::NoProc { target }));
        }
        shutdown_all(nodes);
    });
}

#[test]
fn a_name_follows_a_restart_of_its_owner_under_a_supervisor() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let spec = SupervisorSpec::new(noex::Strategy::OneForOne)
            .child(ChildSpec::worker::<Counter>("cache", 7).global_name("cache"));
        let supervisor = nodes[0].spawn::<Supervisor>(spec).await.unwrap();
        let first = within("the name", async {
            loop {
                if let Some(pid) = nodes[1].whereis_global("cache") {
                    break pid;
                }
                smol::Timer::after(Duration::from_millis(1)).await;
            }
        })
        .await;
        let named = nodes[1].named_global::<Counter>("cache");
        assert_eq!(within("a call", named.get()).await, Ok(7));
        assert!(nodes[0].kill(&first));
        let what = "the restarted child's name to reach the other node";
        eventually(what, || {
            nodes[1]
                .whereis_global("cache")
                .is_some_and(|pid| pid != first)
        })
        .await;
        assert_eq!(within("a call", named.get()).await, Ok(7));
        drop(supervisor);
        shutdown_all(nodes);
    });
}

#[test]
fn a_name_disappears_everywhere_when_its_process_ends_or_its_node_is_lost() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let events = nodes[1].global_events();
        let ending = counter(&nodes[2], 0).await;
        nodes[2]
            .register_global("ending", ending.pid())
            .await
            .unwrap();
        let staying = counter(&nodes[2], 0).await;
        nodes[0]
            .register_global("on-lost-node", staying.pid())
            .await
            .unwrap();
        everywhere(&nodes, "ending", Some(ending.pid())).await;
        everywhere(&nodes, "on-lost-node", Some(staying.pid())).await;

        ending.stop(ExitReason::Normal).await.unwrap();
        everywhere(&nodes, "ending", None).await;

        // The node is cut off from the others: its names go with it.
        let lost = id(&nodes[2]);
        for node in &nodes[..2] {
            node.faults().partition(&lost, true);
        }
        everywhere(&nodes[..2], "on-lost-node", None).await;
        let mut seen = Vec::new();
        while let Some(event) = events.try_recv() {
            seen.push(event);
        }
        assert!(seen.contains(&GlobalEvent::Unregistered {
            name: "ending".into(),
            pid: ending.pid().clone()
        }));
        assert!(seen.contains(&GlobalEvent::Unregistered {
            name: "on-lost-node".into(),
            pid: staying.pid().clone()
        }));
        shutdown_all(nodes);
    });
}

#[test]
fn two_nodes_racing_for_one_name_make_exactly_one_winner_every_round() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        for round in 0..100 {
            let name = format!("race-{round}");
            let a = counter(&nodes[1], 0).await;
            let b = counter(&nodes[2], 0).await;
            let (ra, rb) = zip(
                nodes[1].register_global(&name, a.pid()),
                nodes[2].register_global(&name, b.pid()),
            )
            .await;
            let winner = match (&ra, &rb) {
                (Ok(()), Err(GlobalError::NameTaken { holder, .. })) if holder == a.pid() => {
                    a.pid()
                }
                (Err(GlobalError::NameTaken { holder, .. }), Ok(())) if holder == b.pid() => {
                    b.pid()
                }
                other => panic!("round {round}: not exactly one winner: {other:?}"),
            };
            everywhere(&nodes, &name, Some(winner)).await;
        }
        shutdown_all(nodes);
    });
}

#[test]
fn registrations_of_one_node_in_a_row_wait_for_each_other() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let a = counter(&nodes[0], 0).await;
        let b = counter(&nodes[0], 0).await;
        let (ra, rb) = zip(
            nodes[0].register_global("one", a.pid()),
            nodes[0].register_global("one", b.pid()),
        )
        .await;
        assert_eq!(ra, Ok(()));
        assert!(matches!(rb, Err(GlobalError::NameTaken { holder, .. }) if &holder == a.pid()));
        // Registering again under the same name is no change.
        assert_eq!(nodes[1].register_global("one", a.pid()).await, Ok(()));
        assert_eq!(nodes[0].global_names().len(), 1);
        shutdown_all(nodes);
    });
}

#[test]
fn a_process_of_another_node_is_registered_and_unregistered_through_its_node() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let remote = counter(&nodes[1], 0).await;
        nodes[0]
            .register_global("remote", remote.pid())
            .await
            .unwrap();
        // Registered by its own node, which now releases it when it ends.
        assert_eq!(
            nodes[1].whereis_global("remote").as_ref(),
            Some(remote.pid())
        );
        everywhere(&nodes, "remote", Some(remote.pid())).await;
        assert_eq!(
            nodes[0].unregister_global("remote").await,
            Ok(Some(remote.pid().clone()))
        );
        everywhere(&nodes, "remote", None).await;
        assert_eq!(nodes[0].unregister_global("remote").await, Ok(None));

        // A process that is not running cannot take a name.
        remote.stop(ExitReason::Normal).await.unwrap();
        let gone = nodes[0].register_global("remote", remote.pid()).await;
        assert_eq!(
            gone,
            Err(GlobalError::NoProc {
                pid: remote.pid().clone()
            })
        );
        let local = counter(&nodes[0], 0).await;
        local.stop(ExitReason::Normal).await.unwrap();
        let gone = nodes[0].register_global("local", local.pid()).await;
        assert!(matches!(gone, Err(GlobalError::NoProc { .. })), "{gone:?}");
        assert_eq!(nodes[0].faults().global_pending(), (0, 0));
        shutdown_all(nodes);
    });
}
