//! Exit signals sent with Ctx::exit.

use super::*;

#[test]
fn exit_signal_with_normal_from_another_process_is_ignored_by_a_process_that_does_not_trap() {
    run(|node| async move {
        // given
        let sender = probe(&node, false).await;
        let target = probe(&node, false).await;
        // when
        assert!(sender.exit(target.pid(), ExitReason::Normal).await);
        // then
        target.sync().await;
        target.assert_saw_nothing();
        assert!(target.server.is_alive());
    });
}

#[test]
fn exit_signal_with_normal_reaches_a_trapping_process_as_an_exit_message() {
    run(|node| async move {
        // given
        let sender = probe(&node, false).await;
        let target = probe(&node, true).await;
        // when
        assert!(sender.exit(target.pid(), ExitReason::Normal).await);
        // then
        assert_eq!(
            target.next_seen().await,
            Seen::Exit {
                from: sender.pid().clone(),
                reason: ExitReason::Normal
            }
        );
        assert!(target.server.is_alive());
    });
}

#[test]
fn abnormal_exit_signal_kills_a_process_that_does_not_trap() {
    run(|node| async move {
        // given
        let sender = probe(&node, false).await;
        let target = probe(&node, false).await;
        let reason = ExitReason::Custom("go away".into());
        // when
        assert!(sender.exit(target.pid(), reason.clone()).await);
        // then
        assert_eq!(target.exited().await, reason);
    });
}

#[test]
fn abnormal_exit_signal_reaches_a_trapping_process_as_an_exit_message() {
    run(|node| async move {
        // given
        let sender = probe(&node, false).await;
        let target = probe(&node, true).await;
        let reason = ExitReason::Custom("go away".into());
        // when
        assert!(sender.exit(target.pid(), reason.clone()).await);
        // then
        assert_eq!(
            target.next_seen().await,
            Seen::Exit {
                from: sender.pid().clone(),
                reason
            }
        );
        assert!(target.server.is_alive());
    });
}

// ---------------------------------------------------------------------------------------
// Kill
// ---------------------------------------------------------------------------------------
