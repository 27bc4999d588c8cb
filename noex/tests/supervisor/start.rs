//! Start.

use super::*;

#[test]
fn children_start_in_spec_order_each_init_finishing_before_the_next() {
    run(|node| async move {
        // given: a first child whose init is slow
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(log.args("a").init_slowly(Duration::from_millis(100)).spec())
            .child(log.spec("b"))
            .child(log.spec("c"));

        // when
        let sup = start(&node, spec).await;

        // then
        log.expect(&["init a", "init b", "init c"]).await;
        assert_eq!(ids(&sup).await, ["a", "b", "c"]);
    });
}

#[test]
fn a_child_failing_to_start_fails_the_supervisor_start_and_stops_earlier_children_in_reverse() {
    run(|node| async move {
        // given: the third of four children fails in init
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(log.spec("a"))
            .child(log.spec("b"))
            .child(log.args("c").inits_that_succeed(0).spec())
            .child(log.spec("d"));

        // when
        let result = within("the supervisor's start", node.spawn::<Supervisor>(spec)).await;

        // then
        match result {
            Err(SpawnError::InitFailed(SupervisorInitError::ChildStart { id, error })) => {
                assert_eq!(id, "c");
                assert!(error.contains("c refuses to start"), "error: {error}");
            }
            other => panic!("expected ChildStart naming c, got {other:?}"),
        }
        log.expect(&[
            "init a",
            "init b",
            "init-failed c",
            "terminate b shutdown",
            "terminate a shutdown",
        ])
        .await;
        log.assert_quiet();
        eventually("no process left running", || node.process_count() == 0).await;
    });
}

#[test]
fn duplicate_child_ids_are_an_invalid_spec() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(log.spec("a"))
            .child(log.spec("a"));

        // when
        let result = within("the supervisor's start", node.spawn::<Supervisor>(spec)).await;

        // then: refused before any child starts
        assert!(
            matches!(
                result,
                Err(SpawnError::InitFailed(SupervisorInitError::InvalidSpec(_)))
            ),
            "got {result:?}"
        );
        log.assert_quiet();
    });
}

#[test]
fn a_significant_child_under_auto_shutdown_never_is_an_invalid_spec() {
    run(|node| async move {
        // given
        let log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .auto_shutdown(AutoShutdown::Never)
            .child(log.spec("a").restart(Restart::Transient).significant(true));

        // when
        let result = within("the supervisor's start", node.spawn::<Supervisor>(spec)).await;

        // then
        assert!(
            matches!(
                result,
                Err(SpawnError::InitFailed(SupervisorInitError::InvalidSpec(_)))
            ),
            "got {result:?}"
        );
    });
}

#[test]
fn a_significant_permanent_child_is_an_invalid_spec() {
    run(|node| async move {
        // given
        let log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .auto_shutdown(AutoShutdown::AnySignificant)
            .child(log.spec("a").significant(true));

        // when
        let result = within("the supervisor's start", node.spawn::<Supervisor>(spec)).await;

        // then
        assert!(
            matches!(
                result,
                Err(SpawnError::InitFailed(SupervisorInitError::InvalidSpec(_)))
            ),
            "got {result:?}"
        );
    });
}

#[test]
fn a_nested_supervisor_may_take_longer_than_the_default_init_timeout_to_start_its_children() {
    run(|node| async move {
        // given: a child supervisor whose three children take 2 s each to start (6 s in
        // all, more than the 5 s default init timeout but less than each child's own)
        let mut log = Log::new();
        let slow = |id: &str| log.args(id).init_slowly(Duration::from_secs(2)).spec();
        let sub = SupervisorSpec::new(Strategy::OneForOne)
            .child(slow("x"))
            .child(slow("y"))
            .child(slow("z"));
        let spec =
            SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::supervisor("sub", sub));
        let options = SpawnOptions::new().init_timeout(Duration::from_secs(30));

        // when: the top supervisor is given all the time it needs
        let result = node.spawn_with::<Supervisor>(spec, options).await;

        // then: as in OTP, where a supervisor's start has no time limit
        let top = result.expect("the tree starts");
        log.expect(&["init x", "init y", "init z"]).await;
        assert_eq!(ids(&top).await, ["sub"]);
    });
}

#[test]
fn a_child_that_fails_to_start_is_reported_as_an_event_whatever_started_it() {
    run(|node| async move {
        let events = node.events();
        let failed = |child: &'static str| {
            move |event| match event {
                LifecycleEvent::ChildStartFailed {
                    supervisor,
                    child: id,
                    error,
                } if id == child => Some((supervisor, error)),
                _ => None,
            }
        };

        // In the supervisor's start.
        let log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(log.args("a").inits_that_succeed(0).spec());
        let result = within("the supervisor's start", node.spawn::<Supervisor>(spec)).await;
        assert!(result.is_err());
        let (_, error) = next_event(&events, "a's failed start", failed("a")).await;
        assert!(error.contains("a refuses to start"), "error: {error}");

        // By start_child, and by restart_child.
        let sup = start(&node, SupervisorSpec::new(Strategy::OneForOne)).await;
        let result = within(
            "start_child",
            sup.start_child(log.args("b").inits_that_succeed(0).spec()),
        )
        .await;
        assert!(result.is_err());
        let (supervisor, _) = next_event(&events, "b's failed start", failed("b")).await;
        assert_eq!(&supervisor, sup.pid());

        let spec = log.args("c").inits_that_succeed(1).spec();
        within("start_child", sup.start_child(spec)).await.unwrap();
        within("terminate_child", sup.terminate_child("c"))
            .await
            .unwrap();
        assert!(within("restart_child", sup.restart_child("c"))
            .await
            .is_err());
        let (supervisor, _) = next_event(&events, "c's failed restart", failed("c")).await;
        assert_eq!(&supervisor, sup.pid());
    });
}
