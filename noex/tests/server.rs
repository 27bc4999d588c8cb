//! GenServer semantics: calls, casts, replies, init, stop, panics.

mod common;

use std::time::{Duration, Instant};

use common::{run, within};
use noex::{
    CallError, Ctx, ExitReason, GenServer, Node, ReplyTo, SendError, ServerRef, SpawnError,
    SpawnOptions, DEFAULT_CALL_TIMEOUT,
};

/// How `init` behaves.
#[derive(Clone, Copy)]
enum InitMode {
    Ok,
    Fail,
    Panic,
    Hang,
}

#[derive(Clone)]
struct Args {
    init: InitMode,
    /// Reports `init` runs and `terminate` reasons.
    report: Option<async_channel::Sender<String>>,
    /// How long `terminate` takes.
    terminate_for: Duration,
}

impl Args {
    fn ok() -> Self {
        Args {
            init: InitMode::Ok,
            report: None,
            terminate_for: Duration::ZERO,
        }
    }

    fn reporting(report: &async_channel::Sender<String>) -> Self {
        Args {
            report: Some(report.clone()),
            ..Args::ok()
        }
    }
}

struct Server {
    value: u64,
    deferred: Vec<ReplyTo<Reply>>,
    args: Args,
}

enum Call {
    Get,
    Fail,
    Sleep(Duration),
    Panic,
    Defer,
    Release(u64),
    DropReply,
    AskMyself,
    /// Stops itself through its own `ServerRef`, then through `Node::stop`: both errors.
    StopMyself,
    StopAfterReply(ExitReason),
}

type Reply = Result<u64, String>;

impl Server {
    fn report(&self, what: String) {
        if let Some(report) = &self.args.report {
            let _ = report.try_send(what);
        }
    }
}

impl GenServer for Server {
    type Args = Args;
    type Call = Call;
    type Reply = Reply;
    type Cast = u64;
    type Info = ();
    type InitError = String;

    async fn init(args: Args, _ctx: &mut Ctx<Self>) -> Result<Self, String> {
        if let Some(report) = &args.report {
            let _ = report.try_send("init".to_owned());
        }
        match args.init {
            InitMode::Ok => Ok(Server {
                value: 0,
                deferred: Vec::new(),
                args,
            }),
            InitMode::Fail => Err("no config".to_owned()),
            InitMode::Panic => panic!("init exploded"),
            InitMode::Hang => std::future::pending().await,
        }
    }

    async fn handle_call(&mut self, call: Call, reply: ReplyTo<Reply>, ctx: &mut Ctx<Self>) {
        match call {
            Call::Get => reply.send(Ok(self.value)),
            Call::Fail => reply.send(Err("nope".to_owned())),
            Call::Sleep(duration) => {
                smol::Timer::after(duration).await;
                reply.send(Ok(u64::MAX));
            }
            Call::Panic => panic!("handler exploded"),
            Call::Defer => self.deferred.push(reply),
            Call::Release(value) => {
                for waiting in self.deferred.drain(..) {
                    waiting.send(Ok(value));
                }
                reply.send(Ok(value));
            }
            Call::DropReply => drop(reply),
            Call::AskMyself => {
                let result = ctx.server_ref().call(Call::Get).await;
                reply.send(result.map_err(|e| e.to_string()).and_then(|r| r));
            }
            Call::StopMyself => {
                let by_ref = ctx.server_ref().stop(ExitReason::Normal).await;
                let by_node = ctx.node().stop(ctx.pid(), ExitReason::Normal).await;
                assert_eq!(by_ref, by_node);
                reply.send(by_ref.map(|_| 0).map_err(|e| e.to_string()));
            }
            Call::StopAfterReply(reason) => {
                reply.send(Ok(self.value));
                ctx.stop(reason);
            }
        }
    }

    async fn handle_cast(&mut self, add: u64, _ctx: &mut Ctx<Self>) {
        self.value += add;
    }

    async fn terminate(&mut self, reason: &ExitReason, _ctx: &mut Ctx<Self>) {
        if *reason == ExitReason::Custom("panic in terminate".into()) {
            panic!("terminate exploded");
        }
        smol::Timer::after(self.args.terminate_for).await;
        self.report(format!("terminate {reason}"));
    }
}

async fn spawn(node: &Node) -> ServerRef<Server> {
    node.spawn::<Server>(Args::ok()).await.unwrap()
}

#[test]
fn casts_and_calls_are_handled_in_order() {
    run(|node| async move {
        let server = spawn(&node).await;
        for n in 1..=100 {
            server.cast(n).unwrap();
        }
        assert_eq!(server.call(Call::Get).await, Ok(Ok(5050)));
    });
}

#[test]
fn call_timeout_returns_timeout_and_the_late_reply_is_dropped() {
    run(|node| async move {
        let server = spawn(&node).await;
        let slow = server.call_with_timeout(
            Call::Sleep(Duration::from_millis(200)),
            Duration::from_millis(20),
        );
        assert_matches!(slow.await, Err(CallError::Timeout { .. }));
        // The server still handles the slow request; its reply must not answer this call.
        server.cast(7).unwrap();
        assert_eq!(server.call(Call::Get).await, Ok(Ok(7)));
    });
}

#[test]
fn a_short_timeout_after_a_long_one_is_not_held_to_the_long_ones_timer() {
    // From a task on the node: deadlines share one timer per thread, set to the earliest
    // expiry known; a shorter timeout coming later must set it earlier.
    run(|node| async move {
        let server = spawn(&node).await;
        assert_eq!(server.call(Call::Get).await, Ok(Ok(0)));
        // A task of this thread: its deadline goes in this thread's table.
        let long = node.spawn_task({
            let server = server.clone();
            async move {
                server
                    .call_with_timeout(Call::Defer, Duration::from_secs(60))
                    .await
            }
        });
        common::eventually("the long call taken", || {
            node.process_info(server.pid())
                .is_some_and(|i| i.message_count == 2 && i.mailbox_len == 0)
        })
        .await;
        let timeout = Duration::from_millis(50);
        let started = Instant::now();
        assert_matches!(
            server.call_with_timeout(Call::Defer, timeout).await,
            Err(CallError::Timeout { .. })
        );
        let took = started.elapsed();
        assert!(took >= timeout, "cut short: {took:?}");
        // Held to the 60 s call's timer, it would take a minute.
        assert!(took < Duration::from_secs(30), "took {took:?}");
        drop(long);
    });
}

#[test]
fn call_without_a_timeout_gives_up_after_five_seconds() {
    assert_eq!(DEFAULT_CALL_TIMEOUT, Duration::from_secs(5));
    run(|node| async move {
        let server = spawn(&node).await;
        let started = Instant::now();
        assert_matches!(
            server.call(Call::Sleep(Duration::from_secs(30))).await,
            Err(CallError::Timeout { .. })
        );
        assert!(started.elapsed() >= DEFAULT_CALL_TIMEOUT);
    });
}

#[test]
fn call_to_dead_process_returns_noproc_without_waiting() {
    run(|node| async move {
        let server = spawn(&node).await;
        server.stop(ExitReason::Normal).await.unwrap();
        let call = server.call_with_timeout(Call::Get, Duration::from_secs(60));
        assert_matches!(
            within("a prompt NoProc", call).await,
            Err(CallError::NoProc { .. })
        );
    });
}

#[test]
fn queued_calls_of_a_killed_server_return_noproc_and_the_one_in_hand_returns_exited() {
    run(|node| async move {
        let server = spawn(&node).await;
        let in_hand = smol::spawn({
            let server = server.clone();
            async move { server.call(Call::Sleep(Duration::from_secs(60))).await }
        });
        let queued = smol::spawn({
            let server = server.clone();
            async move { server.call(Call::Get).await }
        });
        common::eventually("both calls queued", || {
            node.process_info(server.pid())
                .is_some_and(|i| i.message_count == 1 && i.mailbox_len == 1)
        })
        .await;
        node.kill(server.pid());
        assert_eq!(
            within("the call in hand", in_hand).await,
            Err(CallError::Exited(ExitReason::Killed))
        );
        assert_matches!(
            within("the queued call", queued).await,
            Err(CallError::NoProc { .. })
        );
    });
}

#[test]
fn a_panic_during_a_call_returns_exited_with_the_panic() {
    run(|node| async move {
        let server = spawn(&node).await;
        let result = server.call(Call::Panic).await;
        assert_eq!(
            result,
            Err(CallError::Exited(ExitReason::Panic(
                "handler exploded".into()
            )))
        );
        assert_eq!(
            server.exited().await,
            ExitReason::Panic("handler exploded".into())
        );
    });
}

#[test]
fn a_panic_ends_only_the_process_that_panicked() {
    run(|node| async move {
        let victim = spawn(&node).await;
        let bystander = spawn(&node).await;
        bystander.cast(1).unwrap();
        let _ = victim.call(Call::Panic).await;
        assert!(!victim.is_alive());
        assert_eq!(bystander.call(Call::Get).await, Ok(Ok(1)));
        assert!(
            node.spawn::<Server>(Args::ok()).await.is_ok(),
            "the node still runs"
        );
    });
}

#[test]
fn a_handler_error_is_a_reply_not_a_crash() {
    run(|node| async move {
        let server = spawn(&node).await;
        assert_eq!(server.call(Call::Fail).await, Ok(Err("nope".to_owned())));
        assert!(server.is_alive());
    });
}

#[test]
fn a_deferred_reply_answers_the_caller_later() {
    run(|node| async move {
        let server = spawn(&node).await;
        let waiting = smol::spawn({
            let server = server.clone();
            async move { server.call(Call::Defer).await }
        });
        common::eventually("the deferred call handled", || {
            node.process_info(server.pid())
                .is_some_and(|i| i.message_count == 1)
        })
        .await;
        assert_eq!(server.call(Call::Release(9)).await, Ok(Ok(9)));
        assert_eq!(within("the deferred reply", waiting).await, Ok(Ok(9)));
    });
}

#[test]
fn a_deferred_call_fails_with_exited_when_the_server_dies() {
    run(|node| async move {
        let server = spawn(&node).await;
        let waiting = smol::spawn({
            let server = server.clone();
            async move { server.call(Call::Defer).await }
        });
        common::eventually("the deferred call handled", || {
            node.process_info(server.pid())
                .is_some_and(|i| i.message_count == 1)
        })
        .await;
        let _ = server.call(Call::Panic).await;
        let result = within("the deferred call's failure", waiting).await;
        assert_eq!(
            result,
            Err(CallError::Exited(ExitReason::Panic(
                "handler exploded".into()
            )))
        );
    });
}

#[test]
fn a_dropped_reply_fails_the_call_at_once_with_no_reply() {
    run(|node| async move {
        let server = spawn(&node).await;
        let call = server.call_with_timeout(Call::DropReply, Duration::from_secs(600));
        assert_eq!(within("the call", call).await, Err(CallError::NoReply));
        assert!(server.is_alive());
    });
}

#[test]
fn a_process_calling_itself_gets_an_error_not_a_deadlock() {
    run(|node| async move {
        let server = spawn(&node).await;
        let result = server.call(Call::AskMyself).await.unwrap();
        assert_eq!(result, Err(CallError::CallingSelf.to_string()));
    });
}

#[test]
fn a_process_stopping_itself_and_waiting_gets_an_error_not_a_kill() {
    run(|node| async move {
        // (waiting for its own end, it would have been killed once the grace ran out)
        let server = spawn(&node).await;
        let result = within("the answer", server.call(Call::StopMyself)).await;
        assert_eq!(result, Ok(Err(SendError::StoppingSelf.to_string())));
        assert!(server.is_alive(), "nothing was asked");
    });
}

#[test]
fn cast_to_dead_process_returns_noproc() {
    run(|node| async move {
        let server = spawn(&node).await;
        server.stop(ExitReason::Normal).await.unwrap();
        assert_matches!(server.cast(1), Err(SendError::NoProc { .. }));
    });
}

#[test]
fn init_error_fails_the_spawn_and_leaves_no_process() {
    run(|node| async move {
        let before = node.process_count();
        let args = Args {
            init: InitMode::Fail,
            ..Args::ok()
        };
        let result = node.spawn::<Server>(args).await;
        assert_eq!(
            result.err(),
            Some(SpawnError::InitFailed("no config".to_owned()))
        );
        assert_eq!(node.process_count(), before);
    });
}

#[test]
fn init_panic_fails_the_spawn_with_the_message() {
    run(|node| async move {
        let args = Args {
            init: InitMode::Panic,
            ..Args::ok()
        };
        let result = node.spawn::<Server>(args).await;
        assert_eq!(
            result.err(),
            Some(SpawnError::InitPanicked("init exploded".to_owned()))
        );
    });
}

#[test]
fn init_that_takes_too_long_is_killed() {
    run(|node| async move {
        let before = node.process_count();
        let args = Args {
            init: InitMode::Hang,
            ..Args::ok()
        };
        let options = SpawnOptions::new().init_timeout(Duration::from_millis(50));
        let result = node.spawn_with::<Server>(args, options).await;
        assert_eq!(result.err(), Some(SpawnError::InitTimeout));
        assert_eq!(node.process_count(), before);
    });
}

#[test]
fn starting_under_a_taken_name_fails_and_leaves_no_process() {
    run(|node| async move {
        let (report, reports) = async_channel::unbounded();
        let first = node
            .spawn_with::<Server>(Args::ok(), SpawnOptions::new().name("unique"))
            .await
            .unwrap();
        let count = node.process_count();
        let second = node
            .spawn_with::<Server>(Args::reporting(&report), SpawnOptions::new().name("unique"))
            .await;
        assert_eq!(
            second.err(),
            Some(SpawnError::NameTaken {
                name: "unique".into(),
                holder: first.pid().clone()
            })
        );
        assert_eq!(node.process_count(), count);
        assert!(reports.try_recv().is_err(), "init must not run");
        assert_eq!(node.whereis("unique").as_ref(), Some(first.pid()));
    });
}

#[test]
fn stop_runs_terminate_with_the_reason() {
    run(|node| async move {
        let (report, reports) = async_channel::unbounded();
        let server = node
            .spawn::<Server>(Args::reporting(&report))
            .await
            .unwrap();
        assert_eq!(reports.recv().await.unwrap(), "init");
        let custom = ExitReason::Custom("maintenance".into());
        assert_eq!(server.stop(custom.clone()).await, Ok(custom));
        assert_eq!(reports.recv().await.unwrap(), "terminate maintenance");
        assert_matches!(
            server.stop(ExitReason::Normal).await,
            Err(SendError::NoProc { .. })
        );
    });
}

#[test]
fn stop_kills_a_server_whose_terminate_outlasts_the_grace_period() {
    run(|node| async move {
        let (report, reports) = async_channel::unbounded();
        let args = Args {
            terminate_for: Duration::from_secs(60),
            ..Args::reporting(&report)
        };
        let server = node.spawn::<Server>(args).await.unwrap();
        let stop = server.stop_with_grace(ExitReason::Shutdown, Some(Duration::from_millis(50)));
        assert_eq!(
            within("the forced stop", stop).await,
            Ok(ExitReason::Killed)
        );
        assert_eq!(reports.recv().await.unwrap(), "init");
        assert!(reports.try_recv().is_err(), "terminate did not finish");
    });
}

#[test]
fn a_handler_can_stop_its_process_after_replying() {
    run(|node| async move {
        let (report, reports) = async_channel::unbounded();
        let server = node
            .spawn::<Server>(Args::reporting(&report))
            .await
            .unwrap();
        assert_eq!(
            server.call(Call::StopAfterReply(ExitReason::Normal)).await,
            Ok(Ok(0))
        );
        assert_eq!(server.exited().await, ExitReason::Normal);
        assert_eq!(reports.recv().await.unwrap(), "init");
        assert_eq!(reports.recv().await.unwrap(), "terminate normal");
    });
}

#[test]
fn a_panic_in_terminate_ends_the_process_with_the_panic() {
    run(|node| async move {
        let server = spawn(&node).await;
        let stop = server.stop(ExitReason::Custom("panic in terminate".into()));
        assert_eq!(
            stop.await,
            Ok(ExitReason::Panic("terminate exploded".into()))
        );
    });
}

#[test]
fn a_killed_server_does_not_run_terminate() {
    run(|node| async move {
        let (report, reports) = async_channel::unbounded();
        let server = node
            .spawn::<Server>(Args::reporting(&report))
            .await
            .unwrap();
        node.kill(server.pid());
        assert_eq!(server.exited().await, ExitReason::Killed);
        assert_eq!(reports.recv().await.unwrap(), "init");
        assert!(reports.try_recv().is_err());
    });
}

#[test]
fn a_flooded_process_yields_to_its_neighbours() {
    run(|node| async move {
        let flooded = spawn(&node).await;
        let neighbour = spawn(&node).await;
        let flood = 100_000;
        for _ in 0..flood {
            flooded.cast(1).unwrap();
        }
        neighbour.call(Call::Get).await.unwrap().unwrap();
        let handled = node.process_info(flooded.pid()).unwrap().message_count;
        assert!(
            handled < flood,
            "the flooded process ran {handled} messages without yielding"
        );
        assert_eq!(flooded.call(Call::Get).await, Ok(Ok(flood)));
    });
}

#[test]
fn a_process_keeps_up_with_a_sender_on_its_own_thread() {
    run(|node| async move {
        // Spawned from this task: the server shares its thread. Each round queues more
        // messages than a process handles in one go (its budget) before the sender yields;
        // the server's turn must still take them all, or its queue grows round after round.
        let server = spawn(&node).await;
        let (rounds, per_round) = (20, 1_000);
        for round in 1..=rounds {
            for _ in 0..per_round {
                server.cast(1).unwrap();
            }
            smol::future::yield_now().await;
            // (A turn may end early when the thread loses its core on a busy machine;
            // what must not happen is a backlog growing round after round.)
            let queued = node.process_info(server.pid()).unwrap().mailbox_len;
            assert!(
                queued < 2 * per_round as usize,
                "round {round}: {queued} messages still queued"
            );
        }
        assert_eq!(server.call(Call::Get).await, Ok(Ok(rounds * per_round)));
    });
}

#[test]
fn mailbox_len_counts_messages_taken_but_not_yet_handled() {
    run(|node| async move {
        // Queued together (the server shares this thread and has not run yet), so the
        // server takes all three at once and stays in the first while two wait in hand.
        let server = spawn(&node).await;
        let mut sleep = Box::pin(server.call(Call::Sleep(Duration::from_secs(60))));
        assert!(futures_lite::future::poll_once(&mut sleep).await.is_none());
        server.cast(1).unwrap();
        server.cast(2).unwrap();
        common::eventually("the server in its first message, two in hand", || {
            node.process_info(server.pid())
                .is_some_and(|i| i.message_count == 1 && i.mailbox_len == 2)
        })
        .await;
        node.kill(server.pid());
        assert_eq!(server.exited().await, ExitReason::Killed);
    });
}

/// Busy for the given number of microseconds per cast, without awaiting.
#[noex::behavior]
struct Grinder;

#[noex::behavior(local)]
impl Grinder {
    #[init]
    fn init() -> Self {
        Grinder
    }

    #[cast]
    fn grind(&mut self, micros: u64) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_micros(micros) {
            std::hint::spin_loop();
        }
    }
}

#[test]
fn a_process_with_slow_handlers_yields_in_the_middle_of_a_batch() {
    run(|node| async move {
        // Queued before the grinder runs (it shares this thread), so it takes all of them
        // in one batch: a turn that always finished its batch would hold the thread for
        // the whole 60 ms.
        let grinder = node.spawn::<Grinder>(()).await.unwrap();
        let neighbour = spawn(&node).await;
        let count = 1_000;
        for _ in 0..count {
            grinder.grind(60).unwrap();
        }
        neighbour.call(Call::Get).await.unwrap().unwrap();
        let handled = node.process_info(grinder.pid()).unwrap().message_count;
        assert!(
            handled < count,
            "the grinder handled all {handled} messages before yielding"
        );
    });
}

#[test]
fn a_call_from_outside_the_node_times_out_too() {
    let node = Node::builder().name("outside").threads(1).build();
    let server = node.block_on(spawn(&node));
    let slow = server.call_with_timeout(
        Call::Sleep(Duration::from_millis(200)),
        Duration::from_millis(20),
    );
    assert_matches!(node.block_on(slow), Err(CallError::Timeout { .. }));
    assert_eq!(node.block_on(server.call(Call::Get)), Ok(Ok(0)));
    node.shutdown();
}

#[test]
fn call_timeouts_still_fire_after_many_answered_calls() {
    run(|node| async move {
        let server = spawn(&node).await;
        for _ in 0..10_000 {
            server.call(Call::Get).await.unwrap().unwrap();
        }
        let slow = server.call_with_timeout(
            Call::Sleep(Duration::from_secs(60)),
            Duration::from_millis(20),
        );
        assert_matches!(
            within("the timeout", slow).await,
            Err(CallError::Timeout { .. })
        );
    });
}
