//! simple_one_for_one.

use super::*;

fn simple(template: ChildTemplate) -> SupervisorSpec {
    SupervisorSpec::simple_one_for_one(template).intensity(10, LONG_WINDOW)
}

#[test]
fn start_simple_child_returns_a_typed_ref_to_the_new_child() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = start(&node, simple(ChildTemplate::worker::<Worker>("worker"))).await;

        // when
        let child = within(
            "start_simple_child",
            sup.start_simple_child::<Worker>(log.args("w1")),
        )
        .await
        .unwrap();

        // then
        log.expect(&["init w1"]).await;
        let (id, pid) = within("the child's answer", child.call(Whoami))
            .await
            .unwrap();
        assert_eq!((id.as_str(), &pid), ("w1", child.pid()));
        assert_eq!(
            children(&sup)
                .await
                .into_iter()
                .map(|(_, pid)| pid)
                .collect::<Vec<_>>(),
            [Some(pid)]
        );
    });
}

#[test]
fn a_crashed_simple_child_is_restarted_with_its_args() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = start(&node, simple(ChildTemplate::worker::<Worker>("worker"))).await;
        let w1 = within("w1", sup.start_simple_child::<Worker>(log.args("w1")))
            .await
            .unwrap();
        let w2 = within("w2", sup.start_simple_child::<Worker>(log.args("w2")))
            .await
            .unwrap();
        log.expect(&["init w1", "init w2"]).await;

        // when
        w2.cast(Cast::Crash).unwrap();

        // then
        log.expect(&["init w2"]).await;
        let restarted = log.worker("w2");
        assert_ne!(restarted.pid(), w2.pid());
        let pids: Vec<_> = children(&sup).await.into_iter().map(|(_, p)| p).collect();
        assert_eq!(
            pids,
            [Some(w1.pid().clone()), Some(restarted.pid().clone())]
        );
    });
}

#[test]
fn start_simple_child_of_another_behaviour_returns_wrong_behavior() {
    run(|node| async move {
        // given
        let sup = start(&node, simple(ChildTemplate::worker::<Worker>("worker"))).await;

        // when
        let result = within("start_simple_child", sup.start_simple_child::<Other>(())).await;

        // then
        assert_eq!(
            result.err(),
            Some(SupervisorError::WrongBehavior {
                expected: std::any::type_name::<Worker>(),
                found: std::any::type_name::<Other>(),
            })
        );
        assert_eq!(ids(&sup).await, Vec::<String>::new());
    });
}

#[test]
fn requests_about_static_children_on_a_simple_one_for_one_supervisor_return_simple_one_for_one() {
    run(|node| async move {
        // given
        let log = Log::new();
        let sup = start(&node, simple(ChildTemplate::worker::<Worker>("worker"))).await;

        // when / then
        assert_eq!(
            within("start_child", sup.start_child(log.spec("a"))).await,
            Err(SupervisorError::SimpleOneForOne)
        );
        assert_eq!(
            within("restart_child", sup.restart_child("worker-1")).await,
            Err(SupervisorError::SimpleOneForOne)
        );
        assert_eq!(
            within("delete_child", sup.delete_child("worker-1")).await,
            Err(SupervisorError::SimpleOneForOne)
        );
    });
}

#[test]
fn start_simple_child_on_a_static_supervisor_returns_not_simple() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;

        // when
        let result = within(
            "start_simple_child",
            sup.start_simple_child::<Worker>(log.args("w1")),
        )
        .await;

        // then
        assert_eq!(result.err(), Some(SupervisorError::NotSimple));
        log.assert_quiet();
    });
}

#[test]
fn terminate_child_of_a_simple_child_by_pid_stops_it_and_removes_it() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = start(&node, simple(ChildTemplate::worker::<Worker>("worker"))).await;
        let w1 = within("w1", sup.start_simple_child::<Worker>(log.args("w1")))
            .await
            .unwrap();
        log.expect(&["init w1"]).await;

        // when
        within("terminate_child", sup.terminate_child(w1.pid()))
            .await
            .unwrap();

        // then
        log.expect(&["terminate w1 shutdown"]).await;
        assert_eq!(ids(&sup).await, Vec::<String>::new());
    });
}

#[test]
fn stopping_a_simple_one_for_one_supervisor_stops_all_its_children() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = start(&node, simple(ChildTemplate::worker::<Worker>("worker"))).await;
        let mut workers = Vec::new();
        for id in ["w1", "w2", "w3"] {
            let child = within(id, sup.start_simple_child::<Worker>(log.args(id)))
                .await
                .unwrap();
            workers.push(child);
        }
        log.expect(&["init w1", "init w2", "init w3"]).await;

        // when
        within("the supervisor to stop", sup.stop(ExitReason::Shutdown))
            .await
            .unwrap();

        // then
        assert_eq!(
            log.next_sorted(3).await,
            [
                "terminate w1 shutdown",
                "terminate w2 shutdown",
                "terminate w3 shutdown"
            ]
        );
        assert!(workers.iter().all(|w| !w.is_alive()));
    });
}

#[test]
fn a_simple_one_for_one_supervisor_stops_its_children_concurrently() {
    run(|node| async move {
        // given: children whose terminate finishes only once all three are terminating,
        // so that stopping them one at a time would kill them at their timeout instead
        let met = Arc::new(AtomicUsize::new(0));
        let mut log = Log::new();
        let template = ChildTemplate::worker::<Worker>("worker")
            .shutdown(Shutdown::Timeout(Duration::from_secs(2)));
        let sup = start(&node, simple(template)).await;
        for id in ["w1", "w2", "w3"] {
            let args = log.args(id).terminate_together(&met, 3);
            within(id, sup.start_simple_child::<Worker>(args))
                .await
                .unwrap();
        }
        log.expect(&["init w1", "init w2", "init w3"]).await;

        // when
        within("the supervisor to stop", sup.stop(ExitReason::Shutdown))
            .await
            .unwrap();

        // then: all three terminates completed
        assert_eq!(
            log.next_sorted(3).await,
            [
                "terminate w1 shutdown",
                "terminate w2 shutdown",
                "terminate w3 shutdown"
            ]
        );
    });
}

#[test]
fn simple_children_being_stopped_end_with_their_supervisor_when_it_is_killed() {
    run(|node| async move {
        // given: children whose terminate never returns
        let mut log = Log::new();
        let template = ChildTemplate::worker::<Worker>("worker")
            .shutdown(Shutdown::Timeout(Duration::from_secs(60)));
        let sup = start(&node, simple(template)).await;
        let mut workers = Vec::new();
        for id in ["w1", "w2"] {
            let args = log.args(id).hang_in_terminate();
            let worker = within(id, sup.start_simple_child::<Worker>(args)).await;
            workers.push(worker.unwrap());
        }
        log.expect(&["init w1", "init w2"]).await;

        // when: the supervisor is killed while it waits for them
        let stopped = sup.stop_with_grace(ExitReason::Shutdown, Some(Duration::from_millis(100)));
        assert_eq!(
            within("the supervisor to end", stopped).await,
            Ok(ExitReason::Killed)
        );

        // then: both end with it
        log.next_sorted(2).await;
        for worker in &workers {
            assert_eq!(
                within("a child to end", worker.exited()).await,
                ExitReason::Killed
            );
        }
    });
}
