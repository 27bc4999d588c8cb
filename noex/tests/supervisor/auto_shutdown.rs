//! auto_shutdown.

use super::*;

/// Under `AnySignificant`: `p` (permanent, not significant) and `s` (significant, with
/// the given restart type).
async fn significant_and_plain(
    node: &Node,
    log: &mut Log,
    strategy: Strategy,
    significant: Restart,
) -> ServerRef<Supervisor> {
    let spec = SupervisorSpec::new(strategy)
        .intensity(10, LONG_WINDOW)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(log.spec("p"))
        .child(log.spec("s").restart(significant).significant(true));
    let sup = start(node, spec).await;
    log.expect(&["init p", "init s"]).await;
    sup
}

#[test]
fn any_significant_shuts_the_supervisor_down_when_one_of_its_significant_children_exits_normally() {
    run(|node| async move {
        // given: two significant children and a plain one
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .auto_shutdown(AutoShutdown::AnySignificant)
            .child(log.spec("p"))
            .child(log.spec("s1").restart(Restart::Transient).significant(true))
            .child(log.spec("s2").restart(Restart::Transient).significant(true));
        let sup = start(&node, spec).await;
        log.expect(&["init p", "init s1", "init s2"]).await;

        // when
        log.worker("s1")
            .cast(Cast::Exit(ExitReason::Normal))
            .unwrap();

        // then: the supervisor does not wait for s2
        assert_eq!(sup_ended(&sup).await, ExitReason::Shutdown);
        log.expect(&[
            "terminate s1 normal",
            "terminate s2 shutdown",
            "terminate p shutdown",
        ])
        .await;
    });
}

#[test]
fn a_significant_child_that_crashes_is_restarted_without_a_shutdown() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup =
            significant_and_plain(&node, &mut log, Strategy::OneForOne, Restart::Transient).await;

        // when
        log.worker("s").cast(Cast::Crash).unwrap();

        // then
        log.expect(&["init s"]).await;
        settle(&sup).await;
        assert!(sup.is_alive());
    });
}

#[test]
fn terminate_child_of_a_significant_child_does_not_shut_the_supervisor_down() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup =
            significant_and_plain(&node, &mut log, Strategy::OneForOne, Restart::Transient).await;

        // when
        within("terminate_child", sup.terminate_child("s"))
            .await
            .unwrap();

        // then
        log.expect(&["terminate s shutdown"]).await;
        settle(&sup).await;
        assert!(sup.is_alive());
        log.assert_quiet();
    });
}

#[test]
fn a_significant_child_stopped_by_a_sibling_restart_does_not_shut_the_supervisor_down() {
    run(|node| async move {
        // given: a temporary significant child under one_for_all
        let mut log = Log::new();
        let sup =
            significant_and_plain(&node, &mut log, Strategy::OneForAll, Restart::Temporary).await;

        // when
        log.worker("p").cast(Cast::Crash).unwrap();

        // then
        log.expect(&["terminate s shutdown", "init p"]).await;
        settle(&sup).await;
        assert!(sup.is_alive());
        assert_eq!(ids(&sup).await, ["p"]);
    });
}

#[test]
fn all_significant_waits_for_the_last_significant_child() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .auto_shutdown(AutoShutdown::AllSignificant)
            .child(log.spec("s1").restart(Restart::Transient).significant(true))
            .child(log.spec("s2").restart(Restart::Transient).significant(true));
        let sup = start(&node, spec).await;
        log.expect(&["init s1", "init s2"]).await;
        let s1 = log.worker("s1");
        s1.cast(Cast::Exit(ExitReason::Normal)).unwrap();
        ended(&s1).await;
        settle(&sup).await;
        assert!(sup.is_alive(), "one significant child is still running");

        // when
        log.worker("s2")
            .cast(Cast::Exit(ExitReason::Normal))
            .unwrap();

        // then
        assert_eq!(sup_ended(&sup).await, ExitReason::Shutdown);
    });
}
