//! Unlinking, and linking to a process that is not running.

use super::*;

#[test]
fn after_unlink_a_crash_of_the_former_peer_leaves_a_non_trapping_process_running() {
    run(|node| async move {
        // given
        let bystander = probe(&node, false).await;
        let failing = probe(&node, false).await;
        bystander.link(failing.pid()).await;
        bystander.unlink(failing.pid()).await;
        // when
        crash(&failing, "boom").await;
        // then
        bystander.sync().await;
        assert!(bystander.server.is_alive());
    });
}

#[test]
fn after_unlink_a_trapping_process_gets_no_exit_from_the_former_peer() {
    run(|node| async move {
        // given
        let trapper = probe(&node, true).await;
        let failing = probe(&node, false).await;
        trapper.link(failing.pid()).await;
        trapper.unlink(failing.pid()).await;
        // when
        crash(&failing, "boom").await;
        // then
        trapper.sync().await;
        trapper.assert_saw_nothing();
    });
}

#[test]
fn unlink_removes_the_link_on_both_sides() {
    run(|node| async move {
        // given: the trapper made the link, the other side removes it
        let trapper = probe(&node, true).await;
        let failing = probe(&node, false).await;
        trapper.link(failing.pid()).await;
        failing.unlink(trapper.pid()).await;
        // when
        crash(&failing, "boom").await;
        // then
        trapper.sync().await;
        trapper.assert_saw_nothing();
    });
}

// ---------------------------------------------------------------------------------------
// Linking to a process that is not running
// ---------------------------------------------------------------------------------------

#[test]
fn linking_to_a_process_that_is_not_running_kills_a_non_trapping_linker_with_noproc() {
    run(|node| async move {
        // given
        let gone = dead_pid(&node).await;
        let linker = probe(&node, false).await;
        // when: the linker may die before or after it answers the call
        let _ = linker.server.call(ProbeCall::Link(gone)).await;
        // then
        assert_eq!(linker.exited().await, ExitReason::NoProc);
    });
}

#[test]
fn linking_to_a_process_that_is_not_running_gives_a_trapping_linker_an_exit_with_noproc() {
    run(|node| async move {
        // given
        let gone = dead_pid(&node).await;
        let linker = probe(&node, true).await;
        // when
        linker.link(&gone).await;
        // then
        assert_eq!(
            linker.next_seen().await,
            Seen::Exit {
                from: gone,
                reason: ExitReason::NoProc
            }
        );
        assert!(linker.server.is_alive());
    });
}

// ---------------------------------------------------------------------------------------
// spawn_link
// ---------------------------------------------------------------------------------------
