//! Shutdown.

use super::*;

#[test]
fn stopping_the_supervisor_stops_children_in_reverse_order_one_at_a_time() {
    run(|node| async move {
        // given: c takes a while to terminate; if b were asked meanwhile, it would report
        // first
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(log.spec("a"))
            .child(log.spec("b"))
            .child(
                log.args("c")
                    .terminate_slowly(Duration::from_millis(200))
                    .spec(),
            );
        let sup = start(&node, spec).await;
        log.expect(&["init a", "init b", "init c"]).await;

        // when
        let stopped = within("the supervisor to stop", sup.stop(ExitReason::Shutdown)).await;

        // then
        assert_eq!(stopped, Ok(ExitReason::Shutdown));
        log.expect(&[
            "terminate c shutdown",
            "terminate b shutdown",
            "terminate a shutdown",
        ])
        .await;
        assert_eq!(node.process_count(), 0);
    });
}

#[test]
fn brutal_kill_ends_a_child_without_running_terminate() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(log.spec("a").shutdown(Shutdown::BrutalKill))
            .child(log.spec("b"));
        let sup = start(&node, spec).await;
        log.expect(&["init a", "init b"]).await;
        let a = log.worker("a");
        let events = node.events();

        // when
        within("the supervisor to stop", sup.stop(ExitReason::Shutdown))
            .await
            .unwrap();

        // then
        log.expect(&["terminate b shutdown"]).await;
        log.assert_quiet();
        assert_eq!(exit_reason(&events, a.pid()).await, ExitReason::Killed);
    });
}

#[test]
fn a_child_whose_terminate_outlasts_its_shutdown_timeout_is_killed() {
    run(|node| async move {
        // given
        let grace = Duration::from_millis(300);
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne).child(
            log.args("a")
                .hang_in_terminate()
                .spec()
                .shutdown(Shutdown::Timeout(grace)),
        );
        let sup = start(&node, spec).await;
        log.expect(&["init a"]).await;
        let a = log.worker("a");
        let events = node.events();

        // when
        let asked = Instant::now();
        within("the supervisor to stop", sup.stop(ExitReason::Shutdown))
            .await
            .unwrap();

        // then: terminate ran, and the child was killed after the timeout
        log.expect(&["terminate a shutdown"]).await;
        assert_eq!(exit_reason(&events, a.pid()).await, ExitReason::Killed);
        assert!(asked.elapsed() >= grace, "killed before its timeout");
    });
}

#[test]
fn stopping_a_tree_stops_a_nested_supervisor_and_its_children_in_reverse_order() {
    run(|node| async move {
        // given: top [a, sub [x, y], c]
        let mut log = Log::new();
        let sub = SupervisorSpec::new(Strategy::OneForOne)
            .child(log.spec("x"))
            .child(log.spec("y"));
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(log.spec("a"))
            .child(ChildSpec::supervisor("sub", sub))
            .child(log.spec("c"));
        let top = start(&node, spec).await;
        log.expect(&["init a", "init x", "init y", "init c"]).await;

        // when
        within("the tree to stop", top.stop(ExitReason::Shutdown))
            .await
            .unwrap();

        // then
        log.expect(&[
            "terminate c shutdown",
            "terminate y shutdown",
            "terminate x shutdown",
            "terminate a shutdown",
        ])
        .await;
        assert_eq!(node.process_count(), 0);
    });
}

#[test]
fn a_child_being_stopped_ends_with_its_supervisor_when_the_supervisor_is_killed() {
    run(|node| async move {
        // given: a's terminate never returns, and its shutdown timeout outlasts the
        // supervisor's own grace
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne).child(
            log.args("a")
                .hang_in_terminate()
                .spec()
                .shutdown(Shutdown::Timeout(Duration::from_secs(60))),
        );
        let sup = start(&node, spec).await;
        log.expect(&["init a"]).await;
        let a = log.worker("a");

        // when: the supervisor is killed while it waits for a
        let stopped = sup.stop_with_grace(ExitReason::Shutdown, Some(Duration::from_millis(100)));
        assert_eq!(
            within("the supervisor to end", stopped).await,
            Ok(ExitReason::Killed)
        );

        // then: a, still linked to it, is killed with it (it was unlinked before being
        // asked, and ran on for good, linked to nobody)
        log.expect(&["terminate a shutdown"]).await;
        assert_eq!(ended(&a).await, ExitReason::Killed);
    });
}

/// Sends `.0` an exit signal with reason `.1` from its `init`.
struct Exiter;

impl GenServer for Exiter {
    type Args = (Pid, ExitReason);
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(
        (pid, reason): (Pid, ExitReason),
        ctx: &mut Ctx<Self>,
    ) -> Result<Self, Self::InitError> {
        ctx.exit(&pid, reason);
        Ok(Exiter)
    }
}

#[test]
fn a_child_that_loses_a_name_conflict_while_being_stopped_does_not_stop_its_supervisor() {
    run(|node| async move {
        // given: a is being stopped (its terminate waits)
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne).child(
            log.args("a")
                .hang_in_terminate()
                .spec()
                .shutdown(Shutdown::Timeout(Duration::from_secs(60))),
        );
        let sup = start(&node, spec).await;
        log.expect(&["init a"]).await;
        let a = log.worker("a");
        let terminating = node.spawn_task({
            let sup = sup.clone();
            async move { sup.terminate_child(ChildKey::Id("a".into())).await }
        });
        log.expect(&["terminate a shutdown"]).await;

        // when: meanwhile it loses a global name of its own to another process
        let conflict = ExitReason::NameConflict("a's name".into());
        node.spawn::<Exiter>((a.pid().clone(), conflict.clone()))
            .await
            .unwrap();
        assert_eq!(ended(&a).await, conflict);
        assert!(within("terminate_child", terminating).await.is_ok());

        // then: that was its child's conflict, not the supervisor's
        settle(&sup).await;
        assert!(sup.is_alive());
    });
}
