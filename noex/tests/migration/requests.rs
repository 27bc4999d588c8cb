//! A lost child and the requests of the supervisor's API: restart, terminate — never a
//! start where it may still run.

use super::*;

#[test]
fn a_child_lost_on_the_minority_side_is_not_restarted_by_request() {
    run_blocking(async {
        let (nodes, sup) = one_child_on_n1("f-minority").await;
        // n0 alone: its child on n1 is lost, and it sees no majority to move it.
        isolate(&nodes, 1, true);
        isolate(&nodes, 2, true);
        until(&sup, "the child to be held back", |stats| {
            stats.waiting_for_majority > 0
        })
        .await;
        assert_eq!(
            sup.restart_child("f-minority").await,
            Err(SupervisorError::WaitingToMove {
                id: "f-minority".into(),
                node: id(&nodes[1]).to_string(),
            })
        );
        assert_eq!(starts("f-minority").len(), 1);
        shutdown_all(nodes);
    });
}

#[test]
fn a_lost_child_terminated_by_request_can_be_restarted_once_that_is_safe() {
    run_blocking(async {
        let (nodes, sup) = one_child_on_n1("g-terminated").await;
        isolate(&nodes, 1, true);
        until(&sup, "the child to be held back", |stats| {
            stats.waiting_for_majority > 0
        })
        .await;
        // Stopped by request while it waits to move: it no longer moves by itself...
        sup.terminate_child("g-terminated").await.unwrap();
        // ...and a restart by request is refused until the migration delay has passed,
        // then done (it was refused for ever).
        let restarted = within("the restart to be allowed", async {
            loop {
                match sup.restart_child("g-terminated").await {
                    Err(SupervisorError::WaitingToMove { .. }) => {
                        smol::Timer::after(Duration::from_millis(10)).await;
                    }
                    other => break other,
                }
            }
        })
        .await;
        assert_ne!(restarted.unwrap().node(), id(&nodes[1]).as_str());
        assert_eq!(sup.distribution().await.unwrap().migrations, 1);
        shutdown_all(nodes);
    });
}

#[test]
fn a_lost_child_terminated_by_request_is_not_started_by_its_groups_restart_until_safe() {
    run_blocking(async {
        let nodes = cluster(3, Duration::from_millis(100)).await;
        let children = [("i-local", 0), ("i-far", 1)];
        let sup = supervise(&nodes, Strategy::OneForAll, &children).await;
        sup.set_selector(NodeSelector::RoundRobin).await.unwrap();
        // n0 alone: its child on n1 is lost, and it sees no majority to move it.
        isolate(&nodes, 0, true);
        until(&sup, "the child to be held back", |stats| {
            stats.waiting_for_majority > 0
        })
        .await;
        sup.terminate_child("i-far").await.unwrap();
        // Its sibling's crash restarts the group, which starts it again — not here and
        // now, where it may run beside its last run.
        let local = pids(&sup).await["i-local"].clone().unwrap();
        let local = nodes[0].server_ref::<Stamped>(&local).unwrap();
        assert!(local.crash().await.is_err());
        eventually("the sibling to restart", || starts("i-local").len() == 2).await;
        assert_eq!(pids(&sup).await["i-far"], None);
        assert_eq!(starts("i-far").len(), 1);
        // Once a majority is seen again, it starts.
        isolate(&nodes, 0, false);
        let before = BTreeMap::from([("i-far".to_owned(), None), ("i-local".to_owned(), None)]);
        all_restarted(&sup, &before).await;
        assert_eq!(starts("i-far").len(), 2);
        shutdown_all(nodes);
    });
}

#[test]
fn a_restart_by_request_whose_spawn_got_no_answer_is_held_as_lost() {
    run_blocking(async {
        let (nodes, sup, far) =
            preferring_n1(Duration::from_millis(100), &[("h-request", 1)]).await;
        sup.terminate_child("h-request").await.unwrap();
        gate("h-request", &far, true);
        let restarting = {
            let sup = sup.clone();
            nodes[0].spawn_task(async move { sup.restart_child("h-request").await.map(|_| ()) })
        };
        waiting_in_init(&nodes[1]).await;
        let cut = Instant::now();
        isolate(&nodes, 1, true);
        gate("h-request", &far, false);
        let result = within("the restart to fail", restarting).await;
        assert!(
            matches!(&result, Err(SupervisorError::StartFailed { .. })),
            "{result:?}"
        );
        // Not started elsewhere at once by a second request (it could run twice)...
        assert!(matches!(
            sup.restart_child("h-request").await,
            Err(SupervisorError::WaitingToMove { .. })
        ));
        // ...but by itself, once that is safe.
        let before = BTreeMap::from([("h-request".to_owned(), None)]);
        all_restarted(&sup, &before).await;
        let mut elsewhere = starts("h-request")
            .into_iter()
            .filter(|(node, _)| *node != far.to_string());
        let (_, moved) = elsewhere.next_back().unwrap();
        let waited = moved.duration_since(cut);
        assert!(
            waited >= Duration::from_millis(500),
            "moved {waited:?} after the cut"
        );
        shutdown_all(nodes);
    });
}

#[test]
fn a_child_found_lost_as_it_is_terminated_by_request_is_not_restarted_at_once() {
    run_blocking(async {
        // Heartbeats every 200 ms: the restart is asked well within the 850 ms a lost
        // child waits.
        let nodes = cluster(3, Duration::from_millis(200)).await;
        let sup = supervise(&nodes, Strategy::OneForOne, &[("k-silent", 1)]).await;
        sup.set_selector(NodeSelector::RoundRobin).await.unwrap();
        // n0 and n1 fall silent to each other, sockets open: the stop gets no answer, and
        // ends when n0 finds n1 lost — n1 may find n0 lost a little later.
        let (n0, n1) = (id(&nodes[0]), id(&nodes[1]));
        nodes[0].faults().silence(&n1, true);
        nodes[1].faults().silence(&n0, true);
        within("the stop", sup.terminate_child("k-silent"))
            .await
            .unwrap();
        assert_eq!(
            sup.restart_child("k-silent").await,
            Err(SupervisorError::WaitingToMove {
                id: "k-silent".into(),
                node: n1.to_string(),
            })
        );
        // Once that is safe, it is.
        let restarted = within("the restart to be allowed", async {
            loop {
                match sup.restart_child("k-silent").await {
                    Err(SupervisorError::WaitingToMove { .. }) => {
                        smol::Timer::after(Duration::from_millis(10)).await;
                    }
                    other => break other,
                }
            }
        })
        .await;
        assert_ne!(restarted.unwrap().node(), n1.as_str());
        assert_eq!(starts("k-silent").len(), 2);
        shutdown_all(nodes);
    });
}
