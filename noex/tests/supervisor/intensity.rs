//! Restart intensity and escalation.

use super::*;

#[test]
fn exceeding_the_intensity_stops_the_remaining_children_in_reverse_order_and_exits_with_shutdown() {
    run(|node| async move {
        // given: one restart allowed per minute, and b has used it
        let mut log = Log::new();
        let spec = three_children(Strategy::OneForOne, &log).intensity(1, LONG_WINDOW);
        let sup = start(&node, spec).await;
        log.expect(&["init a", "init b", "init c"]).await;
        log.worker("b").cast(Cast::Crash).unwrap();
        log.expect(&["init b"]).await;

        // when
        log.worker("b").cast(Cast::Crash).unwrap();

        // then
        log.expect(&["terminate c shutdown", "terminate a shutdown"])
            .await;
        assert_eq!(sup_ended(&sup).await, ExitReason::Shutdown);
        log.assert_quiet();
    });
}

#[test]
fn exceeding_the_intensity_publishes_max_restarts_exceeded() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(1, LONG_WINDOW)
            .child(log.spec("a"));
        let sup = start(&node, spec).await;
        log.expect(&["init a"]).await;
        let events = node.events();
        log.worker("a").cast(Cast::Crash).unwrap();
        log.expect(&["init a"]).await;

        // when
        log.worker("a").cast(Cast::Crash).unwrap();

        // then
        let (supervisor, max_restarts, window) =
            next_event(&events, "MaxRestartsExceeded", |event| match event {
                LifecycleEvent::MaxRestartsExceeded {
                    supervisor,
                    max_restarts,
                    within,
                } => Some((supervisor, max_restarts, within)),
                _ => None,
            })
            .await;
        assert_eq!(&supervisor, sup.pid());
        assert_eq!(max_restarts, 1);
        assert_eq!(window, LONG_WINDOW);
    });
}

#[test]
fn a_parent_restarts_a_child_supervisor_that_exceeded_its_intensity() {
    run(|node| async move {
        // given: top supervises sub, which allows one restart per minute
        let mut log = Log::new();
        let sub_spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(1, LONG_WINDOW)
            .child(log.spec("a"))
            .child(log.spec("b"));
        let top = start(
            &node,
            SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::supervisor("sub", sub_spec)),
        )
        .await;
        log.expect(&["init a", "init b"]).await;
        let old_sub = pid_of(&top, "sub").await;
        log.worker("a").cast(Cast::Crash).unwrap();
        log.expect(&["init a"]).await;

        // when
        log.worker("a").cast(Cast::Crash).unwrap();

        // then: sub gives up (stopping b), and top starts a new sub with new children
        log.expect(&["terminate b shutdown", "init a", "init b"])
            .await;
        let new_sub = pid_of(&top, "sub").await;
        assert_ne!(new_sub, old_sub);
        assert!(!node.is_alive(&old_sub));
        assert!(node.is_alive(&new_sub));
        assert!(log.worker("a").is_alive() && log.worker("b").is_alive());
        assert_eq!(
            node.process_info(log.worker("a").pid())
                .and_then(|info| info.supervisor),
            Some(new_sub)
        );
    });
}

#[test]
fn failed_restart_attempts_count_toward_the_intensity() {
    run(|node| async move {
        // given: a starts once and then fails every init; two restarts allowed per minute
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(2, LONG_WINDOW)
            .child(log.args("a").inits_that_succeed(1).spec())
            .child(log.spec("b"));
        let sup = start(&node, spec).await;
        log.expect(&["init a", "init b"]).await;

        // when
        log.worker("a").cast(Cast::Crash).unwrap();

        // then: two failed attempts use up the intensity, the third escalates
        log.expect(&["init-failed a", "init-failed a", "terminate b shutdown"])
            .await;
        assert_eq!(sup_ended(&sup).await, ExitReason::Shutdown);
        log.assert_quiet();
    });
}

#[test]
fn the_default_intensity_restarts_three_quick_crashes_and_the_fourth_escalates() {
    assert_eq!(DEFAULT_MAX_RESTARTS, 3);
    assert_eq!(DEFAULT_RESTART_WINDOW, Duration::from_secs(5));
    run(|node| async move {
        // given: the default intensity
        let mut log = Log::new();
        let sup = start(
            &node,
            SupervisorSpec::new(Strategy::OneForOne).child(log.spec("a")),
        )
        .await;
        log.expect(&["init a"]).await;
        let first_crash = Instant::now();

        // when: three crashes
        for _ in 0..3 {
            log.worker("a").cast(Cast::Crash).unwrap();
            log.expect(&["init a"]).await;
        }

        // then: restarted each time, and a fourth crash within the window escalates
        assert!(sup.is_alive());
        let elapsed = first_crash.elapsed();
        assert!(
            elapsed < Duration::from_secs(4),
            "precondition: three restarts took {elapsed:?}, too close to the 5 s window"
        );
        log.worker("a").cast(Cast::Crash).unwrap();
        assert_eq!(sup_ended(&sup).await, ExitReason::Shutdown);
        log.assert_quiet();
    });
}

#[test]
fn restarts_older_than_the_window_are_forgotten() {
    run(|node| async move {
        // given: one restart per 300 ms, used once
        let window = Duration::from_millis(300);
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(1, window)
            .child(log.spec("a"));
        let sup = start(&node, spec).await;
        log.expect(&["init a"]).await;
        log.worker("a").cast(Cast::Crash).unwrap();
        log.expect(&["init a"]).await;

        // when: the window passes (time itself is what is tested), and a crashes again
        smol::Timer::after(window * 2).await;
        log.worker("a").cast(Cast::Crash).unwrap();

        // then
        log.expect(&["init a"]).await;
        settle(&sup).await;
        assert!(sup.is_alive());
    });
}
