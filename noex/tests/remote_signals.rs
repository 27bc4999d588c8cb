//! Monitors, links and exit signals between processes of different nodes: a pid of another
//! node behaves like a local one.

mod common;
use common::id;

use std::time::Duration;

use common::{
    cluster_config, eventually, run_blocking, shutdown_all, start_cluster, wait_connected, within,
};
use noex::{behavior, Ctx, ExitReason, Info, MonitorRef, Node, NodeId, Pid, ServerRef};
use serde::{Deserialize, Serialize};

/// What reached a [`Recorder`]'s `handle_info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Exit {
        from: Pid,
        reason: ExitReason,
    },
    Down {
        monitor: MonitorRef,
        pid: Pid,
        reason: ExitReason,
    },
    NodeDown(NodeId),
    Message(String),
}

/// Does what the test asks — monitor, link, trap — and records what it is told.
#[behavior(name = "recorder")]
pub struct Recorder {
    seen: Vec<Event>,
}

#[behavior]
impl Recorder {
    #[init]
    fn init(trap: bool, ctx: &mut Ctx<Self>) -> Self {
        ctx.trap_exits(trap);
        Recorder { seen: Vec::new() }
    }

    #[call]
    fn monitor(&mut self, pid: Pid, ctx: &mut Ctx<Self>) -> MonitorRef {
        ctx.monitor(&pid)
    }

    #[call]
    fn demonitor(&mut self, monitor: MonitorRef, ctx: &mut Ctx<Self>) -> bool {
        ctx.demonitor(monitor)
    }

    /// Monitors and demonitors `pid` `times` times.
    #[call]
    fn cycle(&mut self, pid: Pid, times: u32, ctx: &mut Ctx<Self>) {
        for _ in 0..times {
            let monitor = ctx.monitor(&pid);
            ctx.demonitor(monitor);
        }
    }

    /// Sends a message too large for one frame to the recorder `to`, monitors and
    /// demonitors `pid`, then sends `to` the message "after": all in one handler, so all
    /// behind the large message on the connection.
    #[call]
    fn large_then_cycle(&mut self, to: Pid, pid: Pid, ctx: &mut Ctx<Self>) {
        let to = ctx.node().server_ref::<Recorder>(&to).unwrap();
        to.send("x".repeat(300 * 1024)).unwrap();
        let monitor = ctx.monitor(&pid);
        ctx.demonitor(monitor);
        to.send("after".to_owned()).unwrap();
    }

    #[call]
    fn link(&mut self, pid: Pid, ctx: &mut Ctx<Self>) {
        ctx.link(&pid);
    }

    #[call]
    fn unlink(&mut self, pid: Pid, ctx: &mut Ctx<Self>) {
        ctx.unlink(&pid);
    }

    #[call]
    fn exit(&mut self, pid: Pid, reason: ExitReason, ctx: &mut Ctx<Self>) -> bool {
        ctx.exit(&pid, reason)
    }

    #[call]
    fn monitor_node(&mut self, node: NodeId, ctx: &mut Ctx<Self>) {
        ctx.monitor_node(&node);
    }

    #[call]
    fn demonitor_node(&mut self, node: NodeId, ctx: &mut Ctx<Self>) -> bool {
        ctx.demonitor_node(&node)
    }

    #[call]
    fn seen(&self) -> Vec<Event> {
        self.seen.clone()
    }

    #[info]
    fn info(&mut self, info: Info<String>) {
        self.seen.push(match info {
            Info::Exit { from, reason } => Event::Exit { from, reason },
            Info::Down {
                monitor,
                pid,
                reason,
            } => Event::Down {
                monitor,
                pid,
                reason,
            },
            Info::NodeDown { node } => Event::NodeDown(node),
            Info::Message(text) => Event::Message(text),
            _ => return,
        });
    }
}

/// A process to watch: it ends as the test says.
#[behavior(name = "target")]
pub struct Target;

#[behavior]
impl Target {
    #[init]
    fn init() -> Self {
        Target
    }

    #[call]
    fn ping(&self) {}

    /// Sends `count` messages to the recorder `to`, then stops with `reason`.
    #[call]
    fn last_words(&mut self, to: Pid, count: u32, reason: ExitReason, ctx: &mut Ctx<Self>) {
        let to = ctx.node().server_ref::<Recorder>(&to).unwrap();
        for i in 0..count {
            to.send(format!("word {i}")).unwrap();
        }
        ctx.stop(reason);
    }

    #[call]
    fn panic(&self) {
        panic!("target exploded");
    }

    #[call]
    async fn sleep(&self, ms: u64) {
        smol::Timer::after(Duration::from_millis(ms)).await;
    }

    #[info]
    fn info(&mut self, _info: Info<()>) {}
}

async fn recorder(node: &Node, trap: bool) -> ServerRef<Recorder> {
    node.spawn::<Recorder>(trap).await.unwrap()
}

/// The recorder's events once `done` holds for them.
async fn seen_when(recorder: &ServerRef<Recorder>, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    within("the recorder to see it", async {
        loop {
            let seen = recorder.seen().await.unwrap();
            if done(&seen) {
                return seen;
            }
            smol::Timer::after(Duration::from_millis(2)).await;
        }
    })
    .await
}

fn downs(seen: &[Event]) -> Vec<(MonitorRef, Pid, ExitReason)> {
    seen.iter()
        .filter_map(|event| match event {
            Event::Down {
                monitor,
                pid,
                reason,
            } => Some((*monitor, pid.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

/// Monitors a target on `b` from a recorder on `a`, ends the target with `end`, and returns
/// the recorder's `Down`s.
async fn down_of(
    a: &Node,
    b: &Node,
    end: impl AsyncFnOnce(&ServerRef<Target>),
) -> (Pid, MonitorRef, Vec<(MonitorRef, Pid, ExitReason)>) {
    let watcher = recorder(a, false).await;
    let target = b.spawn::<Target>(()).await.unwrap();
    let monitor = watcher.monitor(target.pid().clone()).await.unwrap();
    // The target still answers, and no Down came: the monitor waits for its end.
    let remote = a.server_ref::<Target>(target.pid()).unwrap();
    assert_eq!(remote.ping().await, Ok(()));
    assert!(downs(&watcher.seen().await.unwrap()).is_empty());
    end(&remote).await;
    seen_when(&watcher, |s| !downs(s).is_empty()).await;
    // Exactly once: no second Down follows (the target is gone, and another round trip to
    // b has passed).
    assert!(remote.ping().await.is_err(), "the target has ended");
    let seen = watcher.seen().await.unwrap();
    (target.pid().clone(), monitor, downs(&seen))
}

#[test]
fn a_monitor_of_a_live_remote_process_waits_and_gets_the_real_reason() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        for reason in [
            ExitReason::Normal,
            ExitReason::Shutdown,
            ExitReason::Error("out of disk".into()),
            ExitReason::Custom("moved".into()),
        ] {
            let stop = reason.clone();
            let (pid, monitor, downs) = down_of(a, b, async |target| {
                target.stop(stop).await.unwrap();
            })
            .await;
            assert_eq!(downs, vec![(monitor, pid, reason)]);
        }
        let (pid, monitor, downs) = down_of(a, b, async |target| {
            assert!(target.panic().await.is_err());
        })
        .await;
        let panic = ExitReason::Panic("target exploded".into());
        assert_eq!(downs, vec![(monitor, pid, panic)]);
        let (pid, monitor, downs) = down_of(a, b, async |target| {
            assert!(
                a.kill(target.pid()),
                "a kill of a process of another node is sent"
            );
        })
        .await;
        assert_eq!(downs, vec![(monitor, pid, ExitReason::Killed)]);
        shutdown_all(nodes);
    });
}

#[test]
fn a_monitor_of_a_remote_process_that_does_not_run_is_down_with_noproc() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let gone = b.spawn::<Target>(()).await.unwrap();
        gone.stop(ExitReason::Normal).await.unwrap();
        let watcher = recorder(a, false).await;
        let monitor = watcher.monitor(gone.pid().clone()).await.unwrap();
        let seen = seen_when(&watcher, |s| !downs(s).is_empty()).await;
        assert_eq!(
            downs(&seen),
            vec![(monitor, gone.pid().clone(), ExitReason::NoProc)]
        );
        shutdown_all(nodes);
    });
}

#[test]
fn monitors_and_links_of_a_lost_node_fire_noconnection() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let target = b.spawn::<Target>(()).await.unwrap();
        let watcher = recorder(a, true).await;
        let monitor = watcher.monitor(target.pid().clone()).await.unwrap();
        watcher.link(target.pid().clone()).await.unwrap();
        // A process linked from a, on b's side too.
        let remote_target = a.server_ref::<Target>(target.pid()).unwrap();
        assert_eq!(remote_target.ping().await, Ok(()));
        // b is lost, and stays away.
        b.faults().refuse_connections(true);
        a.faults().refuse_connections(true);
        assert!(a.faults().disconnect(&id(b)));
        let seen = seen_when(&watcher, |s| s.len() >= 2).await;
        assert!(seen.contains(&Event::Down {
            monitor,
            pid: target.pid().clone(),
            reason: ExitReason::NoConnection
        }));
        assert!(seen.contains(&Event::Exit {
            from: target.pid().clone(),
            reason: ExitReason::NoConnection
        }));
        // A monitor set while the node is not connected fires at once.
        let late = watcher.monitor(target.pid().clone()).await.unwrap();
        let seen = seen_when(&watcher, |s| s.len() >= 3).await;
        assert_eq!(
            seen[2],
            Event::Down {
                monitor: late,
                pid: target.pid().clone(),
                reason: ExitReason::NoConnection
            }
        );
        // And nothing is left behind on either side.
        assert_eq!(a.processes().len(), 1);
        shutdown_all(nodes);
    });
}

#[test]
fn a_demonitor_stops_delivery_for_good() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let target = b.spawn::<Target>(()).await.unwrap();
        let watcher = recorder(a, false).await;
        let monitor = watcher.monitor(target.pid().clone()).await.unwrap();
        assert_eq!(watcher.demonitor(monitor).await, Ok(true));
        assert_eq!(watcher.demonitor(monitor).await, Ok(false));
        eventually("b to drop the monitor", || {
            b.connected_nodes()[0].ties.monitors_in == 0
        })
        .await;
        target.stop(ExitReason::Error("late".into())).await.unwrap();
        // A second monitor, set after, sees the end: the first never does.
        let second = watcher.monitor(target.pid().clone()).await.unwrap();
        let seen = seen_when(&watcher, |s| !downs(s).is_empty()).await;
        assert_eq!(
            downs(&seen),
            vec![(second, target.pid().clone(), ExitReason::NoProc)]
        );
        shutdown_all(nodes);
    });
}

#[test]
fn a_cross_node_link_kills_the_side_that_does_not_trap_and_tells_the_side_that_does() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        // A non-trapping recorder on a, linked to a target on b that crashes.
        let target = b.spawn::<Target>(()).await.unwrap();
        let victim = recorder(a, false).await;
        victim.link(target.pid().clone()).await.unwrap();
        let remote = a.server_ref::<Target>(target.pid()).unwrap();
        assert!(remote.panic().await.is_err());
        let panic = ExitReason::Panic("target exploded".into());
        assert_eq!(within("the victim's end", victim.exited()).await, panic);

        // A trapping recorder on b, linked to a recorder on a that stops abnormally.
        let trapper = recorder(b, true).await;
        let doomed = recorder(a, false).await;
        let doomed_on_b = b.server_ref::<Recorder>(doomed.pid()).unwrap();
        trapper.link(doomed.pid().clone()).await.unwrap();
        let reason = ExitReason::Error("gave up".into());
        doomed_on_b.stop(reason.clone()).await.unwrap();
        let seen = seen_when(&trapper, |s| !s.is_empty()).await;
        assert_eq!(
            seen,
            vec![Event::Exit {
                from: doomed.pid().clone(),
                reason
            }]
        );
        // An exit signal sent across, not through a link.
        let other = recorder(b, false).await;
        assert_eq!(
            trapper
                .exit(other.pid().clone(), ExitReason::Custom("go".into()))
                .await,
            Ok(true)
        );
        assert_eq!(
            within("the signalled process to end", other.exited()).await,
            ExitReason::Custom("go".into())
        );
        shutdown_all(nodes);
    });
}

#[test]
fn a_remote_process_s_last_messages_arrive_before_its_down() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let watcher = recorder(a, false).await;
        for round in 0..20 {
            let target = b.spawn::<Target>(()).await.unwrap();
            let monitor = watcher.monitor(target.pid().clone()).await.unwrap();
            // Asked from a: behind the monitor on a's connection to b.
            let target = a.server_ref::<Target>(target.pid()).unwrap();
            let reason = ExitReason::Custom(format!("round {round}"));
            let last_words = target.last_words(watcher.pid().clone(), 100, reason.clone());
            assert_eq!(last_words.await, Ok(()));
            let seen = seen_when(&watcher, |s| {
                s.iter()
                    .any(|e| matches!(e, Event::Down { monitor: m, .. } if *m == monitor))
            })
            .await;
            let this_round: Vec<_> = seen[seen.len() - 101..].to_vec();
            for (i, event) in this_round[..100].iter().enumerate() {
                assert_eq!(*event, Event::Message(format!("word {i}")));
            }
            assert_eq!(
                this_round[100],
                Event::Down {
                    monitor,
                    pid: target.pid().clone(),
                    reason
                }
            );
        }
        shutdown_all(nodes);
    });
}

#[test]
fn a_node_monitor_fires_once_when_the_node_is_lost() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        let watcher = recorder(a, false).await;
        watcher.monitor_node(id(b)).await.unwrap();
        watcher.monitor_node(id(b)).await.unwrap();
        watcher.monitor_node(id(c)).await.unwrap();
        assert_eq!(watcher.demonitor_node(id(c)).await, Ok(true));
        assert_eq!(watcher.demonitor_node(id(c)).await, Ok(false));
        b.shutdown();
        let seen = seen_when(&watcher, |s| s.len() >= 2).await;
        assert_eq!(seen, vec![Event::NodeDown(id(b)), Event::NodeDown(id(b))]);
        // c is lost too, but no longer monitored; a node not connected fires at once.
        c.shutdown();
        wait_connected(a, 0).await;
        watcher.monitor_node(id(c)).await.unwrap();
        let seen = seen_when(&watcher, |s| s.len() >= 3).await;
        assert_eq!(seen[2], Event::NodeDown(id(c)));
        a.shutdown();
    });
}

#[test]
fn exited_stop_kill_and_is_alive_work_on_a_remote_pid() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let target = b.spawn::<Target>(()).await.unwrap();
        let pid = target.pid().clone();
        let remote = a.server_ref::<Target>(&pid).unwrap();
        assert!(a.is_alive(&pid));
        // Waiting for its end (the first poll sets up the monitor)...
        let mut ended = Box::pin(remote.exited());
        assert_eq!(futures_lite::future::poll_once(&mut ended).await, None);
        // ...which a graceful stop from a brings.
        let stopped = a.stop(&pid, ExitReason::Custom("enough".into())).await;
        assert_eq!(stopped, Ok(ExitReason::Custom("enough".into())));
        assert_eq!(
            within("exited", ended).await,
            ExitReason::Custom("enough".into())
        );
        assert_eq!(a.exited(&pid).await, ExitReason::NoProc);
        assert_matches!(
            a.stop(&pid, ExitReason::Normal).await,
            Err(noex::SendError::NoProc { .. })
        );

        let another = b.spawn::<Target>(()).await.unwrap();
        let mut killed = Box::pin(a.exited(another.pid()));
        assert_eq!(futures_lite::future::poll_once(&mut killed).await, None);
        assert!(a.kill(another.pid()));
        assert_eq!(
            within("the killed process", killed).await,
            ExitReason::Killed
        );
        shutdown_all(nodes);
    });
}

#[test]
fn many_monitor_cycles_leave_no_ties_behind() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let target = b.spawn::<Target>(()).await.unwrap();
        let watcher = recorder(a, false).await;
        for _ in 0..10 {
            let cycle =
                watcher.cycle_with_timeout(target.pid().clone(), 10_000, Duration::from_secs(60));
            assert_eq!(cycle.await, Ok(()));
        }
        // A watcher that ends drops the monitors and links it held, on both sides.
        let leaver = recorder(a, false).await;
        leaver.monitor(target.pid().clone()).await.unwrap();
        leaver.link(target.pid().clone()).await.unwrap();
        leaver.stop(ExitReason::Normal).await.unwrap();
        let ties = |node: &Node| node.connected_nodes()[0].ties;
        eventually("every tie to be gone", || {
            ties(a) == noex::TieStats::default() && ties(b) == noex::TieStats::default()
        })
        .await;
        let target_info = b.process_info(target.pid()).unwrap();
        assert!(target_info.links.is_empty());
        shutdown_all(nodes);
    });
}

#[test]
fn a_link_to_a_process_of_a_node_never_connected_breaks_with_noconnection() {
    run_blocking(async {
        let a = Node::start(cluster_config("a")).await.unwrap();
        let b = Node::start(cluster_config("b")).await.unwrap();
        let stranger = b.spawn::<Target>(()).await.unwrap();
        let watcher = recorder(&a, true).await;
        watcher.link(stranger.pid().clone()).await.unwrap();
        let monitor = watcher.monitor(stranger.pid().clone()).await.unwrap();
        let seen = seen_when(&watcher, |s| s.len() >= 2).await;
        assert_eq!(
            seen,
            vec![
                Event::Exit {
                    from: stranger.pid().clone(),
                    reason: ExitReason::NoConnection
                },
                Event::Down {
                    monitor,
                    pid: stranger.pid().clone(),
                    reason: ExitReason::NoConnection
                },
            ]
        );
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn call_errors_name_the_process_the_node_and_the_time_waited() {
    use noex::{CallError, SendError, Target as To};
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let target = b.spawn::<Target>(()).await.unwrap();
        let remote = a.server_ref::<Target>(target.pid()).unwrap();
        // A call that times out says how long it waited, local or remote.
        let wait = Duration::from_millis(30);
        assert_eq!(
            target.sleep_with_timeout(1_000, wait).await,
            Err(CallError::Timeout { timeout: wait })
        );
        assert_eq!(
            remote.sleep_with_timeout(1_000, wait).await,
            Err(CallError::Timeout { timeout: wait })
        );
        // A stopped process: NoProc, by pid, for calls and casts alike.
        target.stop(ExitReason::Normal).await.unwrap();
        let gone = To::Pid(target.pid().clone());
        assert_eq!(
            remote.ping().await,
            Err(CallError::NoProc {
                target: gone.clone()
            })
        );
        assert_eq!(target.send(()), Err(SendError::NoProc { target: gone }));
        // A name nobody holds on a node: NoProc, by name and node.
        assert_eq!(
            a.named_on::<Recorder>("nobody", &id(b)).seen().await,
            Err(CallError::NoProc {
                target: To::Name {
                    name: "nobody".into(),
                    node: Some(id(b).to_string())
                }
            })
        );
        // A lost node: NoConnection, naming it.
        let live = b.spawn::<Target>(()).await.unwrap();
        let live = a.server_ref::<Target>(live.pid()).unwrap();
        b.faults().refuse_connections(true);
        a.faults().refuse_connections(true);
        assert!(a.faults().disconnect(&id(b)));
        let node = id(b).to_string();
        assert_eq!(
            live.ping().await,
            Err(CallError::NoConnection { node: node.clone() })
        );
        assert_eq!(live.send(()), Err(SendError::NoConnection { node }));
        shutdown_all(nodes);
    });
}

#[test]
fn a_link_to_a_remote_process_that_does_not_run_leaves_no_link_on_either_side() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let target = b.spawn::<Target>(()).await.unwrap();
        target.stop(ExitReason::Normal).await.unwrap();
        let linker = recorder(a, true).await;
        linker.link(target.pid().clone()).await.unwrap();
        let seen = seen_when(&linker, |s| !s.is_empty()).await;
        assert_eq!(
            seen,
            vec![Event::Exit {
                from: target.pid().clone(),
                reason: ExitReason::NoProc
            }]
        );
        // The linker's half of the link went with the answer, as for a local link.
        assert!(a.process_info(linker.pid()).unwrap().links.is_empty());
        assert_eq!(a.connected_nodes()[0].ties, noex::TieStats::default());
        assert_eq!(b.connected_nodes()[0].ties, noex::TieStats::default());
        shutdown_all(nodes);
    });
}

#[test]
fn a_demonitor_never_overtakes_its_monitor_held_behind_a_large_message() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let target = b.spawn::<Target>(()).await.unwrap();
        let sink = recorder(b, false).await;
        let watcher = recorder(a, false).await;
        let cycle = watcher.large_then_cycle(sink.pid().clone(), target.pid().clone());
        assert_eq!(cycle.await, Ok(()));
        // Once "after" has arrived, b has read everything the watcher sent before it.
        seen_when(&sink, |s| s.last() == Some(&Event::Message("after".into()))).await;
        assert_eq!(b.connected_nodes()[0].ties, noex::TieStats::default());
        shutdown_all(nodes);
    });
}
