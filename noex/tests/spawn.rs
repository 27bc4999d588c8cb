//! How a spawn learns the end of `init`: at once when `init` ends inside the spawn, and
//! by waiting when it does not (it waits for something, or the spawn came from outside
//! the node); and what a spawner that gives up leaves behind.

mod common;

use std::time::Duration;

use async_channel::{Receiver, Sender};
use common::{run, within};
use futures_lite::FutureExt;
use noex::{Ctx, ExitReason, GenServer, Node, ReplyTo, SpawnError, SpawnOptions};

/// How `init` ends once its gate opens.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    Succeed,
    Fail,
    Panic,
}

/// Waits in `init` until its gate opens (or, without a gate, ends at once), then ends as
/// told; reports on `started` once `init` has succeeded.
struct Gated;

struct Args {
    gate: Option<Receiver<Outcome>>,
    outcome: Outcome,
    started: Option<Sender<()>>,
}

impl Args {
    /// `init` waits for an outcome sent on the returned gate.
    fn gated() -> (Args, Sender<Outcome>) {
        let (open, gate) = async_channel::bounded(1);
        let args = Args {
            gate: Some(gate),
            outcome: Outcome::Succeed,
            started: None,
        };
        (args, open)
    }

    /// `init` ends as `outcome` at once.
    fn at_once(outcome: Outcome) -> Args {
        Args {
            gate: None,
            outcome,
            started: None,
        }
    }
}

impl GenServer for Gated {
    type Args = Args;
    type Call = ();
    type Reply = &'static str;
    type Cast = ();
    type Info = ();
    type InitError = String;

    async fn init(args: Args, _ctx: &mut Ctx<Self>) -> Result<Self, String> {
        let outcome = match &args.gate {
            Some(gate) => gate.recv().await.expect("the gate's sender was dropped"),
            None => args.outcome,
        };
        match outcome {
            Outcome::Succeed => {
                if let Some(started) = &args.started {
                    let _ = started.try_send(());
                }
                Ok(Gated)
            }
            Outcome::Fail => Err("refused".to_owned()),
            Outcome::Panic => panic!("init gave up"),
        }
    }

    async fn handle_call(&mut self, _: (), reply: ReplyTo<&'static str>, _: &mut Ctx<Self>) {
        reply.send("serving");
    }
}

/// Spawns a gated process, lets the spawn start waiting, then opens the gate with
/// `outcome`; returns the spawn's result.
async fn spawn_then_open(node: &Node, outcome: Outcome) -> Result<(), SpawnError<String>> {
    let (args, open) = Args::gated();
    let spawn = node.spawn::<Gated>(args);
    let open = async {
        // The spawn has started `init`, which now waits at the gate.
        open.send(outcome).await.expect("init dropped its gate");
        std::future::pending().await
    };
    match within("the spawn", spawn.or(open)).await {
        Ok(server) => {
            assert_eq!(server.call(()).await.unwrap(), "serving");
            server.stop(ExitReason::Normal).await.unwrap();
            Ok(())
        }
        Err(error) => Err(error),
    }
}

#[test]
fn init_that_succeeds_after_waiting_starts_the_process() {
    run(|node| async move {
        assert_eq!(spawn_then_open(&node, Outcome::Succeed).await, Ok(()));
    });
}

#[test]
fn init_that_fails_after_waiting_fails_the_spawn_with_its_error_and_leaves_no_process() {
    run(|node| async move {
        let before = node.process_count();
        let result = spawn_then_open(&node, Outcome::Fail).await;
        assert_eq!(result, Err(SpawnError::InitFailed("refused".to_owned())));
        assert_eq!(node.process_count(), before);
    });
}

#[test]
fn init_that_panics_after_waiting_fails_the_spawn_with_the_message() {
    run(|node| async move {
        let result = spawn_then_open(&node, Outcome::Panic).await;
        assert_eq!(
            result,
            Err(SpawnError::InitPanicked("init gave up".to_owned()))
        );
    });
}

#[test]
fn init_outcomes_reach_a_spawner_outside_the_node() {
    // Spawned from outside the node, `init` runs on one of its threads while the spawner
    // waits on another.
    let node = Node::builder().name("outside").threads(1).build();
    let before = node.process_count();
    for outcome in [Outcome::Succeed, Outcome::Fail, Outcome::Panic] {
        let result = node.block_on(node.spawn::<Gated>(Args::at_once(outcome)));
        match outcome {
            Outcome::Succeed => {
                let server = result.expect("spawned");
                assert_eq!(node.block_on(server.call(())).unwrap(), "serving");
                node.block_on(server.stop(ExitReason::Normal)).unwrap();
            }
            Outcome::Fail => {
                assert_eq!(
                    result.err(),
                    Some(SpawnError::InitFailed("refused".to_owned()))
                );
            }
            Outcome::Panic => {
                let expected = SpawnError::InitPanicked("init gave up".to_owned());
                assert_eq!(result.err(), Some(expected));
            }
        }
    }
    for outcome in [Outcome::Succeed, Outcome::Fail, Outcome::Panic] {
        let result = node.block_on(spawn_then_open(&node, outcome));
        assert_eq!(
            result.is_ok(),
            matches!(outcome, Outcome::Succeed),
            "{outcome:?}"
        );
    }
    assert_eq!(node.process_count(), before);
    node.shutdown();
}

#[test]
fn a_spawner_that_gives_up_leaves_the_process_to_finish_its_init() {
    run(|node| async move {
        let (mut args, open) = Args::gated();
        let (started, starts) = async_channel::unbounded();
        args.started = Some(started);
        let options = SpawnOptions::new().name("late");
        // The spawner gives up while `init` waits: its spawn is dropped.
        let spawn = node.spawn_with::<Gated>(args, options);
        let gave_up = async {
            smol::future::yield_now().await;
            None
        };
        assert!(async { Some(spawn.await) }.or(gave_up).await.is_none());
        // `init` goes on, and the process serves.
        open.send(Outcome::Succeed).await.unwrap();
        within("init", starts.recv()).await.unwrap();
        let server = node.lookup::<Gated>("late").expect("registered");
        assert_eq!(server.call(()).await.unwrap(), "serving");
        server.stop(ExitReason::Normal).await.unwrap();
    });
}

#[test]
fn a_spawn_whose_init_waits_too_long_is_killed_after_its_timeout() {
    run(|node| async move {
        let before = node.process_count();
        let (args, _open) = Args::gated();
        let options = SpawnOptions::new().init_timeout(Duration::from_millis(20));
        let result = node.spawn_with::<Gated>(args, options).await;
        assert_eq!(result.err(), Some(SpawnError::InitTimeout));
        assert_eq!(node.process_count(), before);
    });
}

#[test]
fn pids_of_ended_processes_find_nothing_and_an_early_process_is_still_found() {
    run(|node| async move {
        let early = node.spawn::<Gated>(Args::at_once(Outcome::Succeed)).await;
        let early = early.unwrap();
        // Many short-lived processes after it, a few alive at a time.
        let mut ended = Vec::new();
        let mut alive = std::collections::VecDeque::new();
        for _ in 0..1_000 {
            let server = node.spawn::<Gated>(Args::at_once(Outcome::Succeed)).await;
            alive.push_back(server.unwrap());
            if alive.len() > 4 {
                let server = alive.pop_front().unwrap();
                server.stop(ExitReason::Normal).await.unwrap();
                ended.push(server.pid().clone());
            }
        }
        for pid in &ended {
            assert!(!node.is_alive(pid), "{pid} is alive");
            assert!(node.server_ref::<Gated>(pid).is_err(), "{pid} found");
        }
        let found = node
            .server_ref::<Gated>(early.pid())
            .expect("the early one");
        assert_eq!(found.call(()).await.unwrap(), "serving");
        for server in alive {
            let found = node.server_ref::<Gated>(server.pid()).expect("a live one");
            assert_eq!(found.call(()).await.unwrap(), "serving");
        }
    });
}
