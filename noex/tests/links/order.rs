//! The order of a dying process's last messages and its exit signal.

use super::*;

#[test]
fn last_words_first_messages_sent_before_dying_reach_a_trapping_peer_before_its_exit() {
    run(|node| async move {
        // given
        let listener = probe(&node, true).await;
        let talker = node
            .spawn::<Talker>(Listener::Given(listener.server.clone()))
            .await
            .expect("the talker starts");
        listener.link(talker.pid()).await;
        // when
        let words = 1000;
        talker
            .cast(Talk::SayThenCrash(words))
            .expect("the talker is running");
        // then
        for n in 0..words {
            assert_eq!(
                listener.next_seen().await,
                Seen::Message(format!("word {n}"))
            );
        }
        assert_eq!(
            listener.next_seen().await,
            Seen::Exit {
                from: talker.pid().clone(),
                reason: panic_reason("said my piece")
            }
        );
    });
}

#[test]
fn last_words_first_a_parents_messages_reach_its_trapping_child_before_it_terminates() {
    run(|node| async move {
        // given: a talker that spawn_linked a trapping probe as its child
        let (tx, seen) = async_channel::unbounded();
        let args = common::ProbeArgs {
            seen: tx,
            trap_exits: true,
        };
        let talker = node
            .spawn::<Talker>(Listener::Child(args))
            .await
            .expect("the talker starts");
        let server = talker.call(()).await.expect("the talker answers");
        let child = ProbeHandle { server, seen };
        // when
        let words = 10;
        talker
            .cast(Talk::SayThenCrash(words))
            .expect("the talker is running");
        // then
        for n in 0..words {
            assert_eq!(child.next_seen().await, Seen::Message(format!("word {n}")));
        }
        assert_eq!(
            child.next_seen().await,
            Seen::Terminated(panic_reason("said my piece"))
        );
    });
}

#[test]
fn an_exit_signal_reaches_a_trapping_process_before_a_message_its_sender_sent_afterwards() {
    run(|node| async move {
        // given
        let listener = probe(&node, true).await;
        let talker = node
            .spawn::<Talker>(Listener::Given(listener.server.clone()))
            .await
            .expect("the talker starts");
        let reason = ExitReason::Custom("first".into());
        // when
        talker
            .cast(Talk::ExitThenSay(reason.clone()))
            .expect("the talker is running");
        // then
        assert_eq!(
            listener.next_seen().await,
            Seen::Exit {
                from: talker.pid().clone(),
                reason
            }
        );
        assert_eq!(
            listener.next_seen().await,
            Seen::Message("after the exit".into())
        );
    });
}

#[test]
fn an_exit_signal_sent_by_the_parent_terminates_a_trapping_child() {
    run(|node| async move {
        // given a trapping child of a parent
        let parent = probe(&node, false).await;
        let child = parent.spawn_link(true).await;
        // when the parent sends it an exit signal (not through the link)
        let reason = ExitReason::Custom("rolling restart".into());
        assert!(parent.exit(child.pid(), reason.clone()).await);
        // then the child terminates with that reason instead of handling an Exit message
        assert_eq!(child.next_seen().await, Seen::Terminated(reason.clone()));
        assert_eq!(child.exited().await, reason);
    });
}
