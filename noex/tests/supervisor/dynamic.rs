//! The dynamic API.

use super::*;

#[test]
fn start_child_starts_a_new_child_after_the_existing_ones() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;

        // when
        let pid = within("start_child", sup.start_child(log.spec("c")))
            .await
            .unwrap();

        // then
        log.expect(&["init c"]).await;
        assert_eq!(pid, *log.worker("c").pid());
        assert_eq!(ids(&sup).await, ["a", "b", "c"]);
        assert_eq!(pid_of(&sup, "c").await, pid);
    });
}

#[test]
fn start_child_with_the_id_of_a_running_child_returns_already_started() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;

        // when
        let result = within("start_child", sup.start_child(log.spec("a"))).await;

        // then
        assert_eq!(
            result,
            Err(SupervisorError::AlreadyStarted {
                id: "a".into(),
                pid: log.worker("a").pid().clone()
            })
        );
        log.assert_quiet();
    });
}

#[test]
fn start_child_with_the_id_of_a_stopped_child_returns_already_present() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;
        within("terminate_child", sup.terminate_child("a"))
            .await
            .unwrap();
        log.expect(&["terminate a shutdown"]).await;

        // when
        let result = within("start_child", sup.start_child(log.spec("a"))).await;

        // then
        assert_eq!(result, Err(SupervisorError::AlreadyPresent("a".into())));
        log.assert_quiet();
    });
}

#[test]
fn terminate_child_stops_the_child_keeps_its_spec_and_does_not_restart_it() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;
        let b = pid_of(&sup, "b").await;

        // when
        within("terminate_child", sup.terminate_child("a"))
            .await
            .unwrap();

        // then
        log.expect(&["terminate a shutdown"]).await;
        settle(&sup).await;
        log.assert_quiet();
        assert_eq!(
            children(&sup).await,
            [("a".to_owned(), None), ("b".to_owned(), Some(b))]
        );
    });
}

#[test]
fn terminate_child_accepts_the_child_pid() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;
        let a = pid_of(&sup, "a").await;

        // when
        within("terminate_child", sup.terminate_child(&a))
            .await
            .unwrap();

        // then
        log.expect(&["terminate a shutdown"]).await;
        assert!(!node.is_alive(&a));
    });
}

#[test]
fn restart_child_starts_a_terminated_child_again() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;
        let old = pid_of(&sup, "a").await;
        within("terminate_child", sup.terminate_child("a"))
            .await
            .unwrap();
        log.expect(&["terminate a shutdown"]).await;

        // when
        let new = within("restart_child", sup.restart_child("a"))
            .await
            .unwrap();

        // then
        log.expect(&["init a"]).await;
        assert_ne!(new, old);
        assert_eq!(pid_of(&sup, "a").await, new);
        assert_eq!(ids(&sup).await, ["a", "b"], "the child keeps its place");
    });
}

#[test]
fn restart_child_of_a_running_child_returns_running() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;

        // when
        let result = within("restart_child", sup.restart_child("a")).await;

        // then
        assert_eq!(result, Err(SupervisorError::Running("a".into())));
        log.assert_quiet();
    });
}

#[test]
fn delete_child_removes_the_spec_of_a_stopped_child() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;
        within("terminate_child", sup.terminate_child("a"))
            .await
            .unwrap();

        // when
        let result = within("delete_child", sup.delete_child("a")).await;

        // then
        assert_eq!(result, Ok(()));
        assert_eq!(ids(&sup).await, ["b"]);
    });
}

#[test]
fn delete_child_of_a_running_child_returns_running() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;

        // when
        let result = within("delete_child", sup.delete_child("a")).await;

        // then
        assert_eq!(result, Err(SupervisorError::Running("a".into())));
        assert_eq!(ids(&sup).await, ["a", "b"]);
    });
}

#[test]
fn requests_for_an_unknown_child_return_not_found() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;
        let not_found = || Err(SupervisorError::NotFound(ChildKey::Id("nope".into())));

        // when / then
        assert_eq!(
            within("terminate_child", sup.terminate_child("nope")).await,
            not_found()
        );
        assert_eq!(
            within("restart_child", sup.restart_child("nope"))
                .await
                .map(|_| ()),
            not_found()
        );
        assert_eq!(
            within("delete_child", sup.delete_child("nope")).await,
            not_found()
        );
    });
}

#[test]
fn count_children_counts_specs_running_children_supervisors_and_workers() {
    run(|node| async move {
        // given: two workers (one stopped) and a supervisor
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(log.spec("a"))
            .child(log.spec("b"))
            .child(ChildSpec::supervisor(
                "sub",
                SupervisorSpec::new(Strategy::OneForOne).child(log.spec("x")),
            ));
        let sup = start(&node, spec).await;
        log.expect(&["init a", "init b", "init x"]).await;
        within("terminate_child", sup.terminate_child("b"))
            .await
            .unwrap();

        // when
        let counts = within("count_children", sup.count_children())
            .await
            .unwrap();

        // then
        assert_eq!(counts.specs, 3);
        assert_eq!(counts.active, 2);
        assert_eq!(counts.supervisors, 1);
        assert_eq!(counts.workers, 2);
    });
}
