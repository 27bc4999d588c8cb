//! Spawns with a name: registered before init, refused when taken or too long.

use super::*;

#[test]
fn a_spawn_with_a_global_name_registers_before_init_and_fails_if_the_name_is_held() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        for node in &nodes {
            node.register_behaviors().unwrap();
        }
        let target = id(&nodes[1]);
        let options = SpawnOptions::new().global_name("aware");
        let aware = nodes[0]
            .spawn_on_with::<SelfAware>(&target, "aware".to_owned(), options.clone())
            .await
            .unwrap();
        everywhere(&nodes, "aware", Some(aware.pid())).await;

        let count = nodes[1].process_count();
        let again = nodes[0]
            .spawn_on_with::<SelfAware>(&target, "aware".to_owned(), options.clone())
            .await;
        match again {
            Err(RemoteSpawnError::NameTaken { name, holder, .. }) => {
                assert_eq!((name.as_str(), &holder), ("aware", aware.pid()));
            }
            other => panic!("expected NameTaken, got {:?}", other.map(|_| ())),
        }
        assert_eq!(nodes[1].process_count(), count);

        // Held on another node than the target: the same.
        let here = counter(&nodes[0], 0).await;
        nodes[0].register_global("here", here.pid()).await.unwrap();
        let options = SpawnOptions::new().global_name("here");
        let taken = nodes[0]
            .spawn_on_with::<SelfAware>(&target, "here".to_owned(), options.clone())
            .await;
        assert!(
            matches!(&taken, Err(RemoteSpawnError::NameTaken { holder, .. }) if holder == here.pid()),
            "{:?}",
            taken.map(|_| ())
        );
        assert_eq!(nodes[1].process_count(), count);

        // And locally.
        let local = nodes[1].spawn_with::<Counter>(0, options).await;
        assert!(
            matches!(&local, Err(SpawnError::NameTaken { holder, .. }) if holder == here.pid()),
            "{:?}",
            local.map(|_| ())
        );
        assert_eq!(nodes[1].process_count(), count);
        shutdown_all(nodes);
    });
}

#[test]
fn a_spawn_given_up_while_registering_its_global_name_tells_its_watchers() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let watcher = common::probe(&nodes[0], false).await;
        // The peer hears nothing: the claim waits for its grant.
        nodes[0].faults().silence(&id(&nodes[1]), true);
        let options = SpawnOptions::new().name("svc").global_name("g");
        let mut spawn = Box::pin(nodes[0].spawn_with::<Counter>(0, options));
        assert!(futures_lite::future::poll_once(&mut spawn).await.is_none());
        let pid = nodes[0].whereis("svc").expect("named before init");
        let monitor = watcher.monitor(&pid).await;
        drop(spawn);
        assert_eq!(
            watcher.next_seen().await,
            common::Seen::Down {
                monitor,
                pid: pid.clone(),
                reason: ExitReason::NoProc
            }
        );
        assert_eq!(nodes[0].whereis("svc"), None);
        assert_eq!(nodes[0].faults().global_pending(), (0, 0));
        shutdown_all(nodes);
    });
}

#[test]
fn a_global_name_too_long_fails_the_spawn_with_that_reason() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let long = "n".repeat(noex::MAX_NAME_LEN + 1);
        let too_long = GlobalError::NameTooLong {
            len: long.len(),
            max: noex::MAX_NAME_LEN,
        };
        let named = SpawnOptions::new().global_name(long.clone());
        match nodes[0].spawn_with::<Counter>(0, named.clone()).await {
            Err(SpawnError::GlobalName(error)) => assert_eq!(error, too_long),
            other => panic!("unexpected {other:?}"),
        }
        nodes[1].register_behaviors().unwrap();
        match nodes[0]
            .spawn_on_with::<Counter>(&id(&nodes[1]), 0, named)
            .await
        {
            Err(RemoteSpawnError::GlobalName { error, .. }) => assert_eq!(error, too_long),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(nodes[1].process_count(), 0, "nothing was started");
        shutdown_all(nodes);
    });
}

#[test]
fn a_local_name_refuses_a_process_of_another_node() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let on_b = counter(&nodes[1], 0).await;
        assert_eq!(
            nodes[0].register("local", on_b.pid()),
            Err(noex::RegisterError::NotLocal {
                pid: on_b.pid().clone()
            })
        );
        assert_eq!(nodes[0].whereis("local"), None);
        shutdown_all(nodes);
    });
}
