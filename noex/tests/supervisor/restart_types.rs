//! Restart types.

use super::*;

/// A supervisor of one child `a` with this restart type.
async fn one_child(node: &Node, log: &mut Log, restart: Restart) -> ServerRef<Supervisor> {
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(10, LONG_WINDOW)
        .child(log.spec("a").restart(restart));
    let sup = start(node, spec).await;
    log.expect(&["init a"]).await;
    sup
}

#[test]
fn a_permanent_child_is_restarted_after_a_normal_exit() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = one_child(&node, &mut log, Restart::Permanent).await;
        let first = log.worker("a");

        // when
        first.cast(Cast::Exit(ExitReason::Normal)).unwrap();

        // then
        log.expect(&["terminate a normal", "init a"]).await;
        assert_eq!(pid_of(&sup, "a").await, *log.worker("a").pid());
        assert_ne!(log.worker("a"), first);
    });
}

#[test]
fn a_transient_child_is_not_restarted_after_a_normal_exit_and_keeps_its_spec() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = one_child(&node, &mut log, Restart::Transient).await;
        let a = log.worker("a");

        // when
        a.cast(Cast::Exit(ExitReason::Normal)).unwrap();

        // then
        log.expect(&["terminate a normal"]).await;
        assert_eq!(ended(&a).await, ExitReason::Normal);
        settle(&sup).await;
        log.assert_quiet();
        assert_eq!(children(&sup).await, [("a".to_owned(), None)]);
    });
}

#[test]
fn a_transient_child_is_not_restarted_after_a_shutdown_exit() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = one_child(&node, &mut log, Restart::Transient).await;
        let a = log.worker("a");

        // when
        a.cast(Cast::Exit(ExitReason::Shutdown)).unwrap();

        // then
        log.expect(&["terminate a shutdown"]).await;
        assert_eq!(ended(&a).await, ExitReason::Shutdown);
        settle(&sup).await;
        log.assert_quiet();
        assert_eq!(children(&sup).await, [("a".to_owned(), None)]);
    });
}

#[test]
fn a_transient_child_is_restarted_after_an_abnormal_exit() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = one_child(&node, &mut log, Restart::Transient).await;
        let first = log.worker("a");

        // when
        first
            .cast(Cast::Exit(ExitReason::error("disk full")))
            .unwrap();

        // then
        log.expect(&["terminate a error: disk full", "init a"])
            .await;
        assert_eq!(pid_of(&sup, "a").await, *log.worker("a").pid());
        assert_ne!(log.worker("a"), first);
    });
}

#[test]
fn a_temporary_child_is_not_restarted_after_a_normal_exit_and_its_spec_is_removed() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = one_child(&node, &mut log, Restart::Temporary).await;
        let a = log.worker("a");

        // when
        a.cast(Cast::Exit(ExitReason::Normal)).unwrap();

        // then
        log.expect(&["terminate a normal"]).await;
        ended(&a).await;
        settle(&sup).await;
        log.assert_quiet();
        assert_eq!(ids(&sup).await, Vec::<String>::new());
    });
}

#[test]
fn a_temporary_child_is_not_restarted_after_a_crash_and_its_spec_is_removed() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = one_child(&node, &mut log, Restart::Temporary).await;
        let a = log.worker("a");

        // when
        a.cast(Cast::Crash).unwrap();

        // then
        assert_eq!(ended(&a).await, ExitReason::Panic("a crashes".into()));
        settle(&sup).await;
        log.assert_quiet();
        assert_eq!(ids(&sup).await, Vec::<String>::new());
    });
}
