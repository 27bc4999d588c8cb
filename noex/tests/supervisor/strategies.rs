//! Strategies.

use super::*;

#[test]
fn one_for_one_restarts_only_the_crashed_child() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = start(&node, three_children(Strategy::OneForOne, &log)).await;
        log.expect(&["init a", "init b", "init c"]).await;
        let before = children(&sup).await;

        // when
        log.worker("b").cast(Cast::Crash).unwrap();

        // then
        log.expect(&["init b"]).await;
        let after = children(&sup).await;
        assert_eq!(after[0], before[0], "a keeps its pid");
        assert_eq!(after[2], before[2], "c keeps its pid");
        assert_eq!(after[1].1.as_ref(), Some(log.worker("b").pid()));
        assert_ne!(after[1].1, before[1].1, "b has a new pid");
        settle(&sup).await;
        log.assert_quiet();
    });
}

#[test]
fn one_for_all_stops_the_others_in_reverse_order_then_starts_all_in_order() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = start(&node, three_children(Strategy::OneForAll, &log)).await;
        log.expect(&["init a", "init b", "init c"]).await;
        let before = children(&sup).await;

        // when
        log.worker("b").cast(Cast::Crash).unwrap();

        // then
        log.expect(&[
            "terminate c shutdown",
            "terminate a shutdown",
            "init a",
            "init b",
            "init c",
        ])
        .await;
        let after = children(&sup).await;
        for (old, new) in before.iter().zip(&after) {
            assert_ne!(old.1, new.1, "{} has a new pid", old.0);
        }
        settle(&sup).await;
        log.assert_quiet();
    });
}

#[test]
fn rest_for_one_restarts_the_crashed_child_and_those_after_it() {
    run(|node| async move {
        // given: four children, so that two follow the crashing one
        let mut log = Log::new();
        let spec = three_children(Strategy::RestForOne, &log).child(log.spec("d"));
        let sup = start(&node, spec).await;
        log.expect(&["init a", "init b", "init c", "init d"]).await;
        let before = children(&sup).await;

        // when
        log.worker("b").cast(Cast::Crash).unwrap();

        // then
        log.expect(&[
            "terminate d shutdown",
            "terminate c shutdown",
            "init b",
            "init c",
            "init d",
        ])
        .await;
        let after = children(&sup).await;
        assert_eq!(after[0], before[0], "a keeps its pid");
        for i in 1..4 {
            assert_ne!(after[i].1, before[i].1, "{} has a new pid", before[i].0);
        }
        settle(&sup).await;
        log.assert_quiet();
    });
}

#[test]
fn a_temporary_sibling_stopped_by_a_one_for_all_restart_is_not_restarted() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForAll)
            .child(log.spec("a"))
            .child(log.spec("t").restart(Restart::Temporary))
            .child(log.spec("c"));
        let sup = start(&node, spec).await;
        log.expect(&["init a", "init t", "init c"]).await;

        // when
        log.worker("a").cast(Cast::Crash).unwrap();

        // then
        log.expect(&[
            "terminate c shutdown",
            "terminate t shutdown",
            "init a",
            "init c",
        ])
        .await;
        assert_eq!(ids(&sup).await, ["a", "c"]);
        settle(&sup).await;
        log.assert_quiet();
    });
}

/// A group restart in which one member waits for its backoff: with `first_waits`, the
/// crashed child itself; otherwise the one after it.
async fn group_restart_with_a_backoff(node: &Node, strategy: Strategy, first_waits: bool) {
    let mut log = Log::new();
    let backoff = || Backoff::fixed(Duration::from_millis(100));
    let (a, b) = (log.spec("a"), log.spec("b"));
    let (a, b) = match first_waits {
        true => (a.backoff(backoff()), b),
        false => (a, b.backoff(backoff())),
    };
    let spec = SupervisorSpec::new(strategy)
        .intensity(10, LONG_WINDOW)
        .child(a)
        .child(b)
        .child(log.spec("c"));
    let sup = start(node, spec).await;
    log.expect(&["init a", "init b", "init c"]).await;

    log.worker("a").cast(Cast::Crash).unwrap();

    // Those after the waiting child wait for it: each may depend on those before it.
    log.expect(&[
        "terminate c shutdown",
        "terminate b shutdown",
        "init a",
        "init b",
        "init c",
    ])
    .await;
    settle(&sup).await;
    log.assert_quiet();
}

#[test]
fn rest_for_one_starts_its_group_in_order_when_the_crashed_child_waits_for_its_backoff() {
    run(|node| async move {
        group_restart_with_a_backoff(&node, Strategy::RestForOne, true).await;
    });
}

#[test]
fn rest_for_one_starts_its_group_in_order_when_a_later_child_waits_for_its_backoff() {
    run(|node| async move {
        group_restart_with_a_backoff(&node, Strategy::RestForOne, false).await;
    });
}

#[test]
fn one_for_all_starts_its_group_in_order_when_a_child_waits_for_its_backoff() {
    run(|node| async move {
        group_restart_with_a_backoff(&node, Strategy::OneForAll, true).await;
        group_restart_with_a_backoff(&node, Strategy::OneForAll, false).await;
    });
}

/// A group restart in which the middle child's start keeps failing: the child after it
/// waits for it (tried again, and counted, until the intensity is used up), never
/// starting while the one before it is not running.
async fn group_restart_with_a_failing_start(node: &Node, strategy: Strategy) {
    let mut log = Log::new();
    let spec = SupervisorSpec::new(strategy)
        .intensity(2, LONG_WINDOW)
        .child(log.spec("a"))
        .child(log.args("b").inits_that_succeed(1).spec())
        .child(log.spec("c"));
    let sup = start(node, spec).await;
    log.expect(&["init a", "init b", "init c"]).await;

    log.worker("a").cast(Cast::Crash).unwrap();

    let retried: &[&str] = match strategy {
        // b's retry restarts its group: a too, under one_for_all.
        Strategy::OneForAll => &["terminate a shutdown", "init a", "init-failed b"],
        _ => &["init-failed b"],
    };
    let mut expected = vec![
        "terminate c shutdown",
        "terminate b shutdown",
        "init a",
        "init-failed b",
    ];
    expected.extend(retried);
    expected.push("terminate a shutdown");
    log.expect(&expected).await;
    assert_eq!(sup_ended(&sup).await, ExitReason::Shutdown);
    log.assert_quiet();
}

#[test]
fn a_group_restart_whose_child_fails_to_start_does_not_start_those_after_it() {
    run(|node| async move {
        group_restart_with_a_failing_start(&node, Strategy::OneForAll).await;
        group_restart_with_a_failing_start(&node, Strategy::RestForOne).await;
    });
}
