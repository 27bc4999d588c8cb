//! Monitors: one `Down` per monitor with the target's reason, one-way, demonitor, `NoProc`,
//! `spawn_monitor`, and the order of a dying process's last messages and its `Down`.

mod common;

use common::{crash, dead_pid, probe, run, within, Brief, Fate, Seen};
use noex::{
    Ctx, ExitReason, GenServer, Info, MonitorRef, Node, Pid, ReplyTo, ServerRef, SpawnError,
};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A process that monitors, can be held busy until the test lets it go, spawn_monitors
/// [`Brief`] children, and reports the `Down`s it handles.
struct Watcher {
    seen: async_channel::Sender<Seen>,
}

enum WatcherCall {
    Ping,
    Monitor(Pid),
    Demonitor(MonitorRef),
    /// Says so on the first channel, then waits until the second one yields or closes.
    Hold(async_channel::Sender<()>, async_channel::Receiver<()>),
    SpawnMonitor(Fate),
}

enum WatcherReply {
    Done,
    Monitor(MonitorRef),
    Spawned(Result<(Pid, MonitorRef), SpawnError<String>>),
}

impl GenServer for Watcher {
    type Args = async_channel::Sender<Seen>;
    type Call = WatcherCall;
    type Reply = WatcherReply;
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(
        seen: async_channel::Sender<Seen>,
        _ctx: &mut Ctx<Self>,
    ) -> Result<Self, Self::InitError> {
        Ok(Watcher { seen })
    }

    async fn handle_call(
        &mut self,
        call: WatcherCall,
        reply: ReplyTo<WatcherReply>,
        ctx: &mut Ctx<Self>,
    ) {
        let answer = match call {
            WatcherCall::Ping => WatcherReply::Done,
            WatcherCall::Monitor(pid) => WatcherReply::Monitor(ctx.monitor(&pid)),
            WatcherCall::Demonitor(monitor) => {
                // Whether it was still active is not what the test using this looks at.
                ctx.demonitor(monitor);
                WatcherReply::Done
            }
            WatcherCall::Hold(holding, release) => {
                let _ = holding.send(()).await;
                let _ = release.recv().await;
                WatcherReply::Done
            }
            WatcherCall::SpawnMonitor(fate) => WatcherReply::Spawned(
                ctx.spawn_monitor::<Brief>(fate)
                    .await
                    .map(|(child, monitor)| (child.pid().clone(), monitor)),
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
}

struct WatcherHandle {
    server: ServerRef<Watcher>,
    seen: async_channel::Receiver<Seen>,
}

impl WatcherHandle {
    async fn start(node: &Node) -> WatcherHandle {
        let (tx, seen) = async_channel::unbounded();
        let server = node.spawn::<Watcher>(tx).await.expect("the watcher starts");
        WatcherHandle { server, seen }
    }

    fn pid(&self) -> &Pid {
        self.server.pid()
    }

    async fn ask(&self, call: WatcherCall) -> WatcherReply {
        within("the watcher's reply", self.server.call(call))
            .await
            .unwrap_or_else(|e| panic!("watcher {} did not answer: {e}", self.pid()))
    }

    async fn monitor(&self, pid: &Pid) -> MonitorRef {
        match self.ask(WatcherCall::Monitor(pid.clone())).await {
            WatcherReply::Monitor(monitor) => monitor,
            _ => unreachable!(),
        }
    }

    async fn spawn_monitor(&self, fate: Fate) -> Result<(Pid, MonitorRef), SpawnError<String>> {
        match self.ask(WatcherCall::SpawnMonitor(fate)).await {
            WatcherReply::Spawned(result) => result,
            _ => unreachable!(),
        }
    }

    /// Returns once the watcher has handled everything queued before (see
    /// `ProbeHandle::sync`).
    async fn sync(&self) {
        self.ask(WatcherCall::Ping).await;
        self.ask(WatcherCall::Ping).await;
    }

    async fn next_seen(&self) -> Seen {
        within("the watcher to see something", self.seen.recv())
            .await
            .expect("watcher's channel closed")
    }

    fn assert_saw_nothing(&self) {
        if let Ok(seen) = self.seen.try_recv() {
            panic!("watcher {} saw {seen:?}, expected nothing", self.pid());
        }
    }

    fn mailbox_len(&self, node: &Node) -> usize {
        node.process_info(self.pid())
            .expect("the watcher is running")
            .mailbox_len
    }
}

/// Sends its "last words" to a listener, then stops with a custom reason.
struct Talker {
    listener: ServerRef<common::Probe>,
}

const SAID_MY_PIECE: &str = "said my piece";

impl GenServer for Talker {
    type Args = ServerRef<common::Probe>;
    type Call = ();
    type Reply = ();
    /// How many words to say before stopping.
    type Cast = u32;
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(
        listener: ServerRef<common::Probe>,
        _ctx: &mut Ctx<Self>,
    ) -> Result<Self, Self::InitError> {
        Ok(Talker { listener })
    }

    async fn handle_cast(&mut self, words: u32, ctx: &mut Ctx<Self>) {
        for n in 0..words {
            self.listener
                .send(format!("word {n}"))
                .expect("the listener is running");
        }
        ctx.stop(ExitReason::Custom(SAID_MY_PIECE.into()));
    }
}

// ---------------------------------------------------------------------------------------
// Down: once, with the target's reason
// ---------------------------------------------------------------------------------------

#[test]
fn down_is_delivered_once_with_the_panic_of_the_target() {
    run(|node| async move {
        // given
        let watcher = probe(&node, false).await;
        let target = probe(&node, false).await;
        let monitor = watcher.monitor(target.pid()).await;
        // when
        let reason = crash(&target, "boom").await;
        // then
        assert_eq!(reason, ExitReason::Panic("boom".into()));
        assert_eq!(
            watcher.next_seen().await,
            Seen::Down {
                monitor,
                pid: target.pid().clone(),
                reason
            }
        );
        watcher.sync().await;
        watcher.assert_saw_nothing();
    });
}

#[test]
fn down_is_delivered_once_with_normal_when_the_target_stops_normally() {
    run(|node| async move {
        // given
        let watcher = probe(&node, false).await;
        let target = probe(&node, false).await;
        let monitor = watcher.monitor(target.pid()).await;
        // when
        target.stop_itself(ExitReason::Normal).await;
        // then
        assert_eq!(
            watcher.next_seen().await,
            Seen::Down {
                monitor,
                pid: target.pid().clone(),
                reason: ExitReason::Normal
            }
        );
        watcher.sync().await;
        watcher.assert_saw_nothing();
    });
}

#[test]
fn down_is_delivered_once_with_a_custom_reason() {
    run(|node| async move {
        // given
        let watcher = probe(&node, false).await;
        let target = probe(&node, false).await;
        let monitor = watcher.monitor(target.pid()).await;
        let reason = ExitReason::Custom("moved away".into());
        // when
        target.stop_itself(reason.clone()).await;
        // then
        assert_eq!(
            watcher.next_seen().await,
            Seen::Down {
                monitor,
                pid: target.pid().clone(),
                reason
            }
        );
        watcher.sync().await;
        watcher.assert_saw_nothing();
    });
}

#[test]
fn down_is_delivered_once_with_killed_when_the_target_is_killed() {
    run(|node| async move {
        // given
        let watcher = probe(&node, false).await;
        let target = probe(&node, true).await;
        let monitor = watcher.monitor(target.pid()).await;
        // when
        node.kill(target.pid());
        // then
        assert_eq!(
            watcher.next_seen().await,
            Seen::Down {
                monitor,
                pid: target.pid().clone(),
                reason: ExitReason::Killed
            }
        );
        watcher.sync().await;
        watcher.assert_saw_nothing();
    });
}

#[test]
fn each_of_several_monitors_on_one_target_gives_its_own_down() {
    run(|node| async move {
        // given
        let watcher = probe(&node, false).await;
        let target = probe(&node, false).await;
        let mut monitors = Vec::new();
        for _ in 0..3 {
            monitors.push(watcher.monitor(target.pid()).await);
        }
        monitors.sort();
        monitors.dedup();
        assert_eq!(monitors.len(), 3, "every monitor has its own reference");
        // when
        let reason = crash(&target, "boom").await;
        // then
        let mut fired = Vec::new();
        for _ in 0..3 {
            match watcher.next_seen().await {
                Seen::Down {
                    monitor,
                    pid,
                    reason: why,
                } => {
                    assert_eq!((&pid, &why), (target.pid(), &reason));
                    fired.push(monitor);
                }
                other => panic!("expected a Down, saw {other:?}"),
            }
        }
        fired.sort();
        assert_eq!(fired, monitors);
        watcher.sync().await;
        watcher.assert_saw_nothing();
    });
}

#[test]
fn monitors_of_different_watchers_on_one_target_each_give_one_down() {
    run(|node| async move {
        // given
        let first = probe(&node, false).await;
        let second = probe(&node, false).await;
        let target = probe(&node, false).await;
        let first_monitor = first.monitor(target.pid()).await;
        let second_monitor = second.monitor(target.pid()).await;
        // when
        let reason = crash(&target, "boom").await;
        // then
        for (watcher, monitor) in [(&first, first_monitor), (&second, second_monitor)] {
            assert_eq!(
                watcher.next_seen().await,
                Seen::Down {
                    monitor,
                    pid: target.pid().clone(),
                    reason: reason.clone()
                }
            );
            watcher.sync().await;
            watcher.assert_saw_nothing();
        }
    });
}

// ---------------------------------------------------------------------------------------
// One-way
// ---------------------------------------------------------------------------------------

#[test]
fn a_monitor_is_one_way_the_watcher_survives_the_targets_crash() {
    run(|node| async move {
        // given: the watcher does not trap exits
        let watcher = probe(&node, false).await;
        let target = probe(&node, false).await;
        watcher.monitor(target.pid()).await;
        // when
        crash(&target, "boom").await;
        // then
        assert!(matches!(watcher.next_seen().await, Seen::Down { .. }));
        watcher.sync().await;
        assert!(watcher.server.is_alive());
    });
}

#[test]
fn a_monitor_is_one_way_the_target_hears_nothing_when_its_watcher_ends() {
    run(|node| async move {
        // given: the target traps exits, so any exit signal would show
        let watcher = probe(&node, false).await;
        let target = probe(&node, true).await;
        watcher.monitor(target.pid()).await;
        // when
        crash(&watcher, "boom").await;
        // then
        target.sync().await;
        target.assert_saw_nothing();
        assert!(target.server.is_alive());
    });
}

// ---------------------------------------------------------------------------------------
// Demonitor
// ---------------------------------------------------------------------------------------

#[test]
fn demonitor_of_an_active_monitor_returns_true() {
    run(|node| async move {
        // given
        let watcher = probe(&node, false).await;
        let target = probe(&node, false).await;
        let monitor = watcher.monitor(target.pid()).await;
        // when
        let active = watcher.demonitor(monitor).await;
        // then
        assert!(active);
    });
}

#[test]
fn no_down_arrives_after_demonitor_when_the_target_then_dies() {
    run(|node| async move {
        // given
        let watcher = probe(&node, false).await;
        let target = probe(&node, false).await;
        let monitor = watcher.monitor(target.pid()).await;
        watcher.demonitor(monitor).await;
        // when
        crash(&target, "boom").await;
        // then
        watcher.sync().await;
        watcher.assert_saw_nothing();
    });
}

#[test]
fn demonitor_suppresses_a_down_that_is_already_queued() {
    run(|node| async move {
        // given: a watcher monitoring a target, held busy in a call
        let watcher = WatcherHandle::start(&node).await;
        let target = probe(&node, false).await;
        let monitor = watcher.monitor(target.pid()).await;
        let (holding_tx, holding) = async_channel::bounded(1);
        let (release, release_rx) = async_channel::bounded(1);
        let hold = node.spawn_task({
            let server = watcher.server.clone();
            async move { server.call(WatcherCall::Hold(holding_tx, release_rx)).await }
        });
        within("the watcher to hold", holding.recv())
            .await
            .expect("the watcher holds");
        // when: the Demonitor request is queued, then the target dies and its Down is
        // queued behind the request
        let demonitor = node.spawn_task({
            let server = watcher.server.clone();
            async move { server.call(WatcherCall::Demonitor(monitor)).await }
        });
        common::eventually("the Demonitor request to be queued", || {
            watcher.mailbox_len(&node) == 1
        })
        .await;
        node.kill(target.pid());
        assert_eq!(target.exited().await, ExitReason::Killed);
        common::eventually("the Down to be queued behind the request", || {
            watcher.mailbox_len(&node) == 2
        })
        .await;
        release.send(()).await.expect("the watcher waits");
        assert!(matches!(
            within("the hold to end", hold).await,
            Ok(WatcherReply::Done)
        ));
        assert!(matches!(
            within("the demonitor", demonitor).await,
            Ok(WatcherReply::Done)
        ));
        // then
        watcher.sync().await;
        watcher.assert_saw_nothing();
    });
}

#[test]
fn demonitor_returns_false_for_a_monitor_that_already_fired() {
    run(|node| async move {
        // given
        let watcher = probe(&node, false).await;
        let target = probe(&node, false).await;
        let monitor = watcher.monitor(target.pid()).await;
        crash(&target, "boom").await;
        assert!(matches!(watcher.next_seen().await, Seen::Down { .. }));
        // when
        let active = watcher.demonitor(monitor).await;
        // then
        assert!(!active);
    });
}

// ---------------------------------------------------------------------------------------
// A target that is not running
// ---------------------------------------------------------------------------------------

#[test]
fn monitoring_a_process_that_is_not_running_gives_an_immediate_down_with_noproc() {
    run(|node| async move {
        // given
        let gone = dead_pid(&node).await;
        let watcher = probe(&node, false).await;
        // when
        let monitor = watcher.monitor(&gone).await;
        // then: already handled by the time the watcher has handled what came next
        watcher.sync().await;
        assert_eq!(
            watcher.seen.try_recv(),
            Ok(Seen::Down {
                monitor,
                pid: gone,
                reason: ExitReason::NoProc
            })
        );
        watcher.sync().await;
        watcher.assert_saw_nothing();
    });
}

// ---------------------------------------------------------------------------------------
// spawn_monitor
// ---------------------------------------------------------------------------------------

#[test]
fn spawn_monitor_gives_a_down_when_the_child_ends() {
    run(|node| async move {
        // given
        let watcher = probe(&node, false).await;
        let (child, monitor) = watcher.spawn_monitor().await;
        // when
        let reason = crash(&child, "child failed").await;
        // then
        assert_eq!(
            watcher.next_seen().await,
            Seen::Down {
                monitor,
                pid: child.pid().clone(),
                reason
            }
        );
        watcher.sync().await;
        watcher.assert_saw_nothing();
    });
}

#[test]
fn spawn_monitor_child_that_ends_right_after_init_gives_a_down() {
    run(|node| async move {
        // given
        let watcher = WatcherHandle::start(&node).await;
        let reason = ExitReason::Custom("done already".into());
        // when
        let (child, monitor) = watcher
            .spawn_monitor(Fate::EndsRightAfterInit(reason.clone()))
            .await
            .expect("init succeeds");
        // then
        assert_eq!(
            watcher.next_seen().await,
            Seen::Down {
                monitor,
                pid: child,
                reason
            }
        );
    });
}

#[test]
fn spawn_monitor_returns_the_init_error_and_no_down_arrives() {
    run(|node| async move {
        // given
        let watcher = WatcherHandle::start(&node).await;
        // when
        let result = watcher
            .spawn_monitor(Fate::InitFails("no config".into()))
            .await;
        // then
        assert_eq!(result, Err(SpawnError::InitFailed("no config".into())));
        watcher.sync().await;
        watcher.assert_saw_nothing();
    });
}

#[test]
fn spawn_monitor_returns_an_init_panic_and_no_down_arrives() {
    run(|node| async move {
        // given
        let watcher = WatcherHandle::start(&node).await;
        // when
        let result = watcher
            .spawn_monitor(Fate::InitPanics("init exploded".into()))
            .await;
        // then
        assert_eq!(
            result,
            Err(SpawnError::InitPanicked("init exploded".into()))
        );
        watcher.sync().await;
        watcher.assert_saw_nothing();
    });
}

// ---------------------------------------------------------------------------------------
// Ordering
// ---------------------------------------------------------------------------------------

#[test]
fn last_words_first_messages_sent_before_dying_arrive_before_the_down() {
    run(|node| async move {
        // given
        let listener = probe(&node, false).await;
        let talker = node
            .spawn::<Talker>(listener.server.clone())
            .await
            .expect("the talker starts");
        let monitor = listener.monitor(talker.pid()).await;
        // when
        let words = 1000;
        talker.cast(words).expect("the talker is running");
        // then
        for n in 0..words {
            assert_eq!(
                listener.next_seen().await,
                Seen::Message(format!("word {n}"))
            );
        }
        assert_eq!(
            listener.next_seen().await,
            Seen::Down {
                monitor,
                pid: talker.pid().clone(),
                reason: ExitReason::Custom(SAID_MY_PIECE.into())
            }
        );
    });
}
