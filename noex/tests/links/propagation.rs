//! A linked process's end: propagated, trapped, or a kill.

use super::*;

#[test]
fn abnormal_exit_kills_a_linked_process_that_does_not_trap() {
    run(|node| async move {
        // given
        let bystander = probe(&node, false).await;
        let failing = probe(&node, false).await;
        bystander.link(failing.pid()).await;
        // when
        let reason = crash(&failing, "boom").await;
        // then
        assert_eq!(reason, panic_reason("boom"));
        assert_eq!(bystander.exited().await, panic_reason("boom"));
    });
}

#[test]
fn abnormal_exit_reaches_a_trapping_linked_process_as_one_exit_message_and_it_keeps_running() {
    run(|node| async move {
        // given
        let trapper = probe(&node, true).await;
        let failing = probe(&node, false).await;
        trapper.link(failing.pid()).await;
        // when
        let reason = crash(&failing, "boom").await;
        // then
        assert_eq!(
            trapper.next_seen().await,
            Seen::Exit {
                from: failing.pid().clone(),
                reason
            }
        );
        trapper.sync().await;
        trapper.assert_saw_nothing();
        assert!(trapper.server.is_alive());
    });
}

#[test]
fn normal_exit_does_not_kill_a_linked_process_that_does_not_trap() {
    run(|node| async move {
        // given
        let bystander = probe(&node, false).await;
        let finishing = probe(&node, false).await;
        bystander.link(finishing.pid()).await;
        // when
        finishing.stop_itself(ExitReason::Normal).await;
        assert_eq!(finishing.exited().await, ExitReason::Normal);
        // then
        bystander.sync().await;
        bystander.assert_saw_nothing();
        assert!(bystander.server.is_alive());
    });
}

#[test]
fn normal_exit_reaches_a_trapping_linked_process_as_an_exit_with_normal() {
    run(|node| async move {
        // given
        let trapper = probe(&node, true).await;
        let finishing = probe(&node, false).await;
        trapper.link(finishing.pid()).await;
        // when
        finishing.stop_itself(ExitReason::Normal).await;
        // then
        assert_eq!(
            trapper.next_seen().await,
            Seen::Exit {
                from: finishing.pid().clone(),
                reason: ExitReason::Normal
            }
        );
        assert!(trapper.server.is_alive());
    });
}

#[test]
fn linking_twice_is_one_link_and_gives_one_exit() {
    run(|node| async move {
        // given
        let trapper = probe(&node, true).await;
        let failing = probe(&node, false).await;
        trapper.link(failing.pid()).await;
        trapper.link(failing.pid()).await;
        // when
        let reason = crash(&failing, "boom").await;
        // then
        assert_eq!(
            trapper.next_seen().await,
            Seen::Exit {
                from: failing.pid().clone(),
                reason
            }
        );
        trapper.sync().await;
        trapper.assert_saw_nothing();
    });
}

// ---------------------------------------------------------------------------------------
// Exit signals sent with Ctx::exit
// ---------------------------------------------------------------------------------------

#[test]
fn kill_ends_even_a_trapping_process_with_killed_and_without_terminate() {
    run(|node| async move {
        // given
        let trapper = probe(&node, true).await;
        // when
        assert!(node.kill(trapper.pid()));
        // then
        assert_eq!(trapper.exited().await, ExitReason::Killed);
        trapper.assert_saw_nothing();
    });
}

#[test]
fn a_killed_process_takes_its_linked_non_trapping_peers_down_with_killed() {
    run(|node| async move {
        // given
        let victim = probe(&node, true).await;
        let first = probe(&node, false).await;
        let second = probe(&node, false).await;
        first.link(victim.pid()).await;
        second.link(victim.pid()).await;
        // when
        node.kill(victim.pid());
        // then
        assert_eq!(first.exited().await, ExitReason::Killed);
        assert_eq!(second.exited().await, ExitReason::Killed);
    });
}

#[test]
fn killed_through_a_trapping_process_a_trapping_peer_receives_exit_with_killed() {
    run(|node| async move {
        // given
        let victim = probe(&node, true).await;
        let trapper = probe(&node, true).await;
        trapper.link(victim.pid()).await;
        // when
        node.kill(victim.pid());
        // then
        assert_eq!(
            trapper.next_seen().await,
            Seen::Exit {
                from: victim.pid().clone(),
                reason: ExitReason::Killed
            }
        );
        trapper.sync().await;
        assert!(trapper.server.is_alive());
    });
}

// ---------------------------------------------------------------------------------------
// Unlink
// ---------------------------------------------------------------------------------------
