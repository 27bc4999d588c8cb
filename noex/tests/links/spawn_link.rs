//! spawn_link and the parent rule: children, stars and chains.

use super::*;

#[test]
fn spawn_link_child_that_ends_right_after_init_reaches_the_trapping_parent_as_an_exit() {
    run(|node| async move {
        // given
        let parent = ParentHandle::start(&node, true).await;
        let reason = ExitReason::Custom("done already".into());
        // when
        let child = parent
            .spawn_link(Fate::EndsRightAfterInit(reason.clone()))
            .await
            .expect("init succeeds");
        // then
        assert_eq!(
            parent.next_seen().await,
            Seen::Exit {
                from: child,
                reason
            }
        );
    });
}

#[test]
fn spawn_link_returns_the_init_error_and_no_exit_arrives() {
    run(|node| async move {
        // given
        let parent = ParentHandle::start(&node, true).await;
        // when
        let result = parent.spawn_link(Fate::InitFails("no config".into())).await;
        // then
        assert_eq!(result, Err(SpawnError::InitFailed("no config".into())));
        parent.sync().await;
        parent.assert_saw_nothing();
    });
}

#[test]
fn spawn_link_returns_an_init_panic_and_no_exit_arrives() {
    run(|node| async move {
        // given
        let parent = ParentHandle::start(&node, true).await;
        // when
        let result = parent
            .spawn_link(Fate::InitPanics("init exploded".into()))
            .await;
        // then
        assert_eq!(
            result,
            Err(SpawnError::InitPanicked("init exploded".into()))
        );
        parent.sync().await;
        parent.assert_saw_nothing();
    });
}

#[test]
fn spawn_link_init_failure_does_not_kill_a_non_trapping_parent() {
    run(|node| async move {
        // given
        let parent = ParentHandle::start(&node, false).await;
        // when
        let result = parent.spawn_link(Fate::InitFails("no config".into())).await;
        // then
        assert!(result.is_err());
        parent.sync().await;
        assert!(parent.server.is_alive());
    });
}

// ---------------------------------------------------------------------------------------
// The parent rule
// ---------------------------------------------------------------------------------------

#[test]
fn a_trapping_child_terminates_with_its_parents_reason_when_the_parent_fails() {
    run(|node| async move {
        // given
        let parent = probe(&node, false).await;
        let child = parent.spawn_link(true).await;
        // when
        let reason = crash(&parent, "parent failed").await;
        // then: terminate ran with the parent's reason, no Exit message was handled
        assert_eq!(child.next_seen().await, Seen::Terminated(reason.clone()));
        assert_eq!(child.exited().await, reason);
    });
}

#[test]
fn a_trapping_child_terminates_even_when_its_parent_exits_normally() {
    run(|node| async move {
        // given
        let parent = probe(&node, false).await;
        let child = parent.spawn_link(true).await;
        // when
        parent.stop_itself(ExitReason::Normal).await;
        // then
        assert_eq!(
            child.next_seen().await,
            Seen::Terminated(ExitReason::Normal)
        );
        assert_eq!(child.exited().await, ExitReason::Normal);
    });
}

// ---------------------------------------------------------------------------------------
// Shapes: star and chain
// ---------------------------------------------------------------------------------------

#[test]
fn star_every_child_of_a_failed_trapping_parent_dies_with_the_parents_reason() {
    run(|node| async move {
        // given
        let parent = probe(&node, true).await;
        let mut children = Vec::new();
        for _ in 0..10 {
            children.push(parent.spawn_link(false).await);
        }
        // when
        let reason = crash(&parent, "hub failed").await;
        // then
        for child in &children {
            assert_eq!(child.exited().await, reason, "child {}", child.pid());
        }
    });
}

#[test]
fn star_every_trapping_child_of_a_failed_parent_terminates_with_the_parents_reason() {
    run(|node| async move {
        // given
        let parent = probe(&node, true).await;
        let mut children = Vec::new();
        for _ in 0..10 {
            children.push(parent.spawn_link(true).await);
        }
        // when
        let reason = crash(&parent, "hub failed").await;
        // then
        for child in &children {
            assert_eq!(child.next_seen().await, Seen::Terminated(reason.clone()));
            assert_eq!(child.exited().await, reason, "child {}", child.pid());
        }
    });
}

#[test]
fn chain_killing_the_root_takes_down_the_whole_chain_with_killed() {
    run(|node| async move {
        // given: A -> B -> C -> D -> E, each spawn_linked by the one before
        let root = probe(&node, false).await;
        let mut chain = vec![root];
        for _ in 0..4 {
            let next = chain.last().unwrap().spawn_link(false).await;
            chain.push(next);
        }
        // when
        assert!(node.kill(chain[0].pid()));
        // then
        for (at, process) in chain.iter().enumerate() {
            assert_eq!(
                process.exited().await,
                ExitReason::Killed,
                "process {at} of the chain"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------
// Ordering
// ---------------------------------------------------------------------------------------
