//! Links and exit signals: propagation, trapping, `Ctx::exit`, kill, unlink, `spawn_link`,
//! the parent rule, and the order of a dying process's last messages and its exit signal.

mod common;

use common::{crash, dead_pid, probe, run, within, Brief, Fate, ProbeCall, ProbeHandle, Seen};
use noex::{Ctx, ExitReason, GenServer, Info, Pid, ReplyTo, ServerRef, SpawnError};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn panic_reason(message: &str) -> ExitReason {
    ExitReason::Panic(message.to_owned())
}

/// A process that spawn_links [`Brief`] children and reports what it sees.
struct Parent {
    seen: async_channel::Sender<Seen>,
}

enum ParentCall {
    Ping,
    SpawnLink(Fate),
}

enum ParentReply {
    Pong,
    Spawned(Result<Pid, SpawnError<String>>),
}

impl GenServer for Parent {
    /// Where to report, and whether to trap exits.
    type Args = (async_channel::Sender<Seen>, bool);
    type Call = ParentCall;
    type Reply = ParentReply;
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(
        (seen, trap_exits): (async_channel::Sender<Seen>, bool),
        ctx: &mut Ctx<Self>,
    ) -> Result<Self, Self::InitError> {
        ctx.trap_exits(trap_exits);
        Ok(Parent { seen })
    }

    async fn handle_call(
        &mut self,
        call: ParentCall,
        reply: ReplyTo<ParentReply>,
        ctx: &mut Ctx<Self>,
    ) {
        let answer = match call {
            ParentCall::Ping => ParentReply::Pong,
            ParentCall::SpawnLink(fate) => ParentReply::Spawned(
                ctx.spawn_link::<Brief>(fate)
                    .await
                    .map(|child| child.pid().clone()),
            ),
        };
        reply.send(answer);
    }

    async fn handle_info(&mut self, info: Info<()>, _ctx: &mut Ctx<Self>) {
        let seen = match info {
            Info::Exit { from, reason } => Seen::Exit { from, reason },
            Info::Down {
                monitor,
                pid,
                reason,
            } => Seen::Down {
                monitor,
                pid,
                reason,
            },
            Info::NodeDown { node } => Seen::NodeDown(node),
            Info::Message(()) => Seen::Message(String::new()),
            _ => return,
        };
        let _ = self.seen.try_send(seen);
    }

    async fn terminate(&mut self, reason: &ExitReason, _ctx: &mut Ctx<Self>) {
        let _ = self.seen.try_send(Seen::Terminated(reason.clone()));
    }
}

struct ParentHandle {
    server: ServerRef<Parent>,
    seen: async_channel::Receiver<Seen>,
}

impl ParentHandle {
    async fn start(node: &noex::Node, trap_exits: bool) -> ParentHandle {
        let (tx, seen) = async_channel::unbounded();
        let server = node
            .spawn::<Parent>((tx, trap_exits))
            .await
            .expect("the parent starts");
        ParentHandle { server, seen }
    }

    async fn ask(&self, call: ParentCall) -> ParentReply {
        within("the parent's reply", self.server.call(call))
            .await
            .unwrap_or_else(|e| panic!("parent {} did not answer: {e}", self.server.pid()))
    }

    async fn spawn_link(&self, fate: Fate) -> Result<Pid, SpawnError<String>> {
        match self.ask(ParentCall::SpawnLink(fate)).await {
            ParentReply::Spawned(result) => result,
            ParentReply::Pong => unreachable!(),
        }
    }

    /// Returns once the parent has handled everything queued before (see `ProbeHandle::sync`).
    async fn sync(&self) {
        self.ask(ParentCall::Ping).await;
        self.ask(ParentCall::Ping).await;
    }

    async fn next_seen(&self) -> Seen {
        within("the parent to see something", self.seen.recv())
            .await
            .expect("parent's channel closed")
    }

    fn assert_saw_nothing(&self) {
        if let Ok(seen) = self.seen.try_recv() {
            panic!("parent saw {seen:?}, expected nothing");
        }
    }
}

/// Who a [`Talker`] talks to.
enum Listener {
    /// A probe that already runs.
    Given(ServerRef<common::Probe>),
    /// A probe the talker spawn_links in its `init`: the talker is its parent.
    Child(common::ProbeArgs),
}

/// Talks to one listener, then crashes or sends it an exit signal.
struct Talker {
    listener: ServerRef<common::Probe>,
}

enum Talk {
    /// Sends this many messages, then panics with "said my piece".
    SayThenCrash(u32),
    /// Sends the listener an exit signal with this reason, then a message "after the exit".
    ExitThenSay(ExitReason),
}

impl GenServer for Talker {
    type Args = Listener;
    type Call = ();
    /// The listener.
    type Reply = ServerRef<common::Probe>;
    type Cast = Talk;
    type Info = ();
    type InitError = String;

    async fn init(listener: Listener, ctx: &mut Ctx<Self>) -> Result<Self, String> {
        let listener = match listener {
            Listener::Given(listener) => listener,
            Listener::Child(args) => ctx
                .spawn_link::<common::Probe>(args)
                .await
                .map_err(|e| e.to_string())?,
        };
        Ok(Talker { listener })
    }

    async fn handle_call(
        &mut self,
        _: (),
        reply: ReplyTo<ServerRef<common::Probe>>,
        _ctx: &mut Ctx<Self>,
    ) {
        reply.send(self.listener.clone());
    }

    async fn handle_cast(&mut self, talk: Talk, ctx: &mut Ctx<Self>) {
        match talk {
            Talk::SayThenCrash(words) => {
                for n in 0..words {
                    self.listener
                        .send(format!("word {n}"))
                        .expect("the listener is running");
                }
                panic!("said my piece");
            }
            Talk::ExitThenSay(reason) => {
                assert!(ctx.exit(self.listener.pid(), reason));
                self.listener
                    .send("after the exit".to_owned())
                    .expect("the listener is running");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Abnormal and normal exits through a link
// ---------------------------------------------------------------------------------------

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
