//! Nodes: several in one OS process, introspection, lifecycle events, shutdown.

mod common;

use std::time::Duration;

use common::{probe, run, within, ProbeArgs, ProbeCall, Seen};
use noex::{Ctx, ExitReason, GenServer, LifecycleEvent, Node};

#[test]
fn several_nodes_coexist_without_sharing_processes_or_names() {
    run(|a| async move {
        let b = Node::builder().name("other").threads(1).build();
        let on_a = probe(&a, false).await;
        let on_b = probe(&b, false).await;
        a.register("svc", on_a.pid()).unwrap();
        b.register("svc", on_b.pid()).unwrap();

        assert_ne!(a.whereis("svc"), b.whereis("svc"));
        assert!(
            !b.is_alive(on_a.pid()),
            "a pid of node a means nothing on node b"
        );
        // b is not in a cluster: it cannot reach a process of another node.
        assert_eq!(b.exited(on_a.pid()).await, ExitReason::NoConnection);
        assert!(!b.kill(on_a.pid()));
        assert_eq!(on_b.pid().node(), "other");
        b.shutdown();
        assert!(on_a.server.is_alive(), "shutting b down leaves a alone");
    });
}

#[test]
fn a_pid_of_an_earlier_incarnation_never_reaches_a_new_node() {
    let first = Node::builder().name("same").threads(1).build();
    let old = first.block_on(common::probe(&first, false));
    let old_pid = old.pid().clone();
    first.shutdown();

    let second = Node::builder().name("same").threads(1).build();
    let new = second.block_on(common::probe(&second, false));
    assert_eq!(old_pid.node(), new.pid().node());
    assert_ne!(old_pid.incarnation(), new.pid().incarnation());
    assert!(!second.is_alive(&old_pid));
    assert!(second.register("x", &old_pid).is_err());
    second.shutdown();
}

#[test]
fn process_info_reports_names_behaviour_counts_and_mailbox() {
    run(|node| async move {
        let probe = probe(&node, true).await;
        node.register("probe", probe.pid()).unwrap();
        probe.sync().await;

        // Keep it busy, then queue three more requests behind the busy one.
        let busy = smol::spawn({
            let server = probe.server.clone();
            async move {
                server
                    .call(ProbeCall::Sleep(Duration::from_millis(300)))
                    .await
            }
        });
        let mut queued = Vec::new();
        common::eventually("the probe to take the sleep", || {
            node.process_info(probe.pid()).unwrap().message_count == 3
        })
        .await;
        for _ in 0..3 {
            queued.push(smol::spawn({
                let server = probe.server.clone();
                async move { server.call(ProbeCall::Ping).await }
            }));
        }
        common::eventually("three queued requests", || {
            node.process_info(probe.pid()).unwrap().mailbox_len == 3
        })
        .await;

        let info = node.process_info(probe.pid()).unwrap();
        assert_eq!(info.name.as_deref(), Some("probe"));
        assert!(info.behavior.ends_with("Probe"), "{}", info.behavior);
        assert!(info.trap_exit);
        assert_eq!(info.supervisor, None);
        assert!(node.processes().iter().any(|p| p.pid == *probe.pid()));

        within("the busy call", busy).await.ok();
        for call in queued {
            within("a queued call", call).await.ok();
        }
        assert_eq!(node.process_info(probe.pid()).unwrap().mailbox_len, 0);
        assert_eq!(node.process_info(probe.pid()).unwrap().message_count, 6);
    });
}

#[test]
fn lifecycle_events_report_starts_and_exits_in_order() {
    run(|node| async move {
        let events = node.events();
        let (tx, _rx) = async_channel::unbounded();
        let server = node
            .spawn::<common::Probe>(ProbeArgs {
                seen: tx,
                trap_exits: false,
            })
            .await
            .unwrap();
        let started = within("the Started event", events.recv()).await.unwrap();
        assert!(
            matches!(&started, LifecycleEvent::Started { pid, name: None, .. } if pid == server.pid()),
            "{started:?}"
        );
        node.kill(server.pid());
        let exited = within("the Exited event", events.recv()).await.unwrap();
        assert_eq!(
            exited,
            LifecycleEvent::Exited {
                pid: server.pid().clone(),
                reason: ExitReason::Killed
            }
        );
    });
}

#[test]
fn shutdown_stops_every_process_and_refuses_new_ones() {
    let node = Node::builder().name("closing").threads(2).build();
    let probe = node.block_on(common::probe(&node, true));
    node.shutdown();
    assert_eq!(node.block_on(probe.server.exited()), ExitReason::Shutdown);
    // Stopped, not killed: its `terminate` ran.
    let terminated = probe.seen.try_recv();
    assert_eq!(terminated, Ok(Seen::Terminated(ExitReason::Shutdown)));
    assert_eq!(node.process_count(), 0);
    let (tx, _rx) = async_channel::unbounded();
    let late = node.block_on(node.spawn::<common::Probe>(ProbeArgs {
        seen: tx,
        trap_exits: false,
    }));
    assert!(matches!(late, Err(noex::SpawnError::ShuttingDown)));
}

/// A supervision tree stops with `Shutdown`, its children each running `terminate`.
#[test]
fn shutdown_stops_a_supervision_tree_from_the_top() {
    use noex::supervisor::{ChildSpec, Strategy, SupervisorSpec};

    let node = Node::builder().name("tree").threads(2).build();
    let (tx, seen) = async_channel::unbounded();
    let args = ProbeArgs {
        seen: tx,
        trap_exits: true,
    };
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(ChildSpec::worker::<common::Probe>("first", args.clone()))
        .child(ChildSpec::worker::<common::Probe>("second", args));
    let sup = node.block_on(node.spawn::<noex::Supervisor>(spec)).unwrap();
    node.shutdown();
    assert_eq!(node.block_on(sup.exited()), ExitReason::Shutdown);
    let terminated: Vec<_> = std::iter::from_fn(|| seen.try_recv().ok()).collect();
    let shutdown = Seen::Terminated(ExitReason::Shutdown);
    assert_eq!(terminated, vec![shutdown.clone(), shutdown]);
}

#[test]
fn pids_and_exit_reasons_travel_through_serde() {
    run(|node| async move {
        let probe = probe(&node, false).await;
        let pid = probe.pid().clone();
        let bytes = postcard::to_allocvec(&pid).unwrap();
        let back: noex::Pid = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, pid);
        assert_eq!(back.to_string(), format!("<test.{}>", pid.serial()));
        assert!(
            node.is_alive(&back),
            "a decoded pid addresses the same process"
        );

        let reason = ExitReason::Panic("boom".into());
        let bytes = postcard::to_allocvec(&reason).unwrap();
        assert_eq!(postcard::from_bytes::<ExitReason>(&bytes).unwrap(), reason);
    });
}

#[test]
fn server_refs_are_clone_send_and_sync() {
    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
    assert_shareable::<noex::ServerRef<common::Probe>>();
    assert_shareable::<noex::NamedRef<common::Probe>>();
    assert_shareable::<Node>();
}

#[test]
fn any_name_starts_a_node_even_one_with_a_nul() {
    // (An OS thread's name may not hold one: the node's threads are named without it.)
    let node = Node::builder().name("odd\0name").threads(1).build();
    let pid = node.block_on(async { probe(&node, false).await.server.pid().clone() });
    assert!(pid.to_string().contains("odd"));
    node.shutdown();
}

/// `block_on` called from a process or a task of a node panics at once, rather than block
/// the scheduler thread (what it waits for could never come: a process of that thread,
/// or a call's timeout, which that thread's sweeper keeps).
#[test]
fn block_on_on_a_scheduler_thread_panics_instead_of_blocking_it() {
    run(|node| async move {
        let other = Node::builder().name("other").threads(1).build();
        for on in [&node, &other] {
            let blocked =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| on.block_on(async { 1 })));
            let message = blocked.expect_err("block_on panics on a scheduler thread");
            let message = message
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| message.downcast_ref::<String>().cloned())
                .expect("a message");
            assert!(message.contains("scheduler thread"), "{message}");
        }
        other.shutdown();
    });
}

/// A process whose cast handler blocks its thread (not at an `await`) until released.
struct Blocker {
    started: async_channel::Sender<()>,
    release: async_channel::Receiver<()>,
}

impl GenServer for Blocker {
    type Args = (async_channel::Sender<()>, async_channel::Receiver<()>);
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = String;

    async fn init(args: Self::Args, _ctx: &mut Ctx<Self>) -> Result<Self, String> {
        let (started, release) = args;
        Ok(Blocker { started, release })
    }

    async fn handle_cast(&mut self, _: (), _ctx: &mut Ctx<Self>) {
        let _ = self.started.try_send(());
        let _ = self.release.recv_blocking();
    }
}

/// A handler stuck in blocking code cannot be interrupted, but it does not hold the
/// shutdown for ever: `shutdown` returns (after its waits for the processes and for the
/// threads), leaving that thread to end once the handler returns.
#[test]
fn shutdown_returns_while_a_handler_blocks_its_thread() {
    let node = Node::builder().name("stuck").threads(1).build();
    let (started, started_rx) = async_channel::unbounded();
    let (release, released) = async_channel::unbounded::<()>();
    let blocker = node
        .block_on(node.spawn::<Blocker>((started, released)))
        .unwrap();
    blocker.cast(()).unwrap();
    node.block_on(within("the handler to block its thread", started_rx.recv()))
        .unwrap();
    let (done, returned) = std::sync::mpsc::channel();
    let shutting_down = std::thread::spawn({
        let node = node.clone();
        move || {
            node.shutdown();
            let _ = done.send(());
        }
    });
    // 5 s for the processes, 5 s for the threads, and room for a loaded machine.
    let returned = returned.recv_timeout(Duration::from_secs(30));
    drop(release);
    assert!(returned.is_ok(), "shutdown did not return");
    shutting_down.join().unwrap();
}

/// A subscription to a node's events ends once the node has shut down: what the shutdown
/// published comes first, then `None` (a loop reading them ends, rather than wait for
/// ever while a handle of the node lives on). One made after the shutdown ends at once.
#[test]
fn event_subscriptions_end_after_the_shutdown() {
    let node = Node::builder().name("ending").threads(1).build();
    let events = node.events();
    let global = node.global_events();
    let (_, group) = node.monitor_group("g");
    let probe = node.block_on(probe(&node, false));
    node.shutdown();
    node.block_on(async {
        let mut seen = Vec::new();
        while let Some(event) = within("the subscription to end", events.recv()).await {
            seen.push(event);
        }
        let stopped = LifecycleEvent::Exited {
            pid: probe.pid().clone(),
            reason: ExitReason::Shutdown,
        };
        assert!(seen.contains(&stopped), "{seen:?}");
        assert!(within("global events to end", global.recv())
            .await
            .is_none());
        assert!(within("group events to end", group.recv()).await.is_none());
        assert!(within("a late subscription", node.events().recv())
            .await
            .is_none());
        let (_, late_group) = node.monitor_group("g");
        assert!(within("a late group subscription", late_group.recv())
            .await
            .is_none());
    });
}

/// A process whose `init` never ends.
struct Stuck;

impl GenServer for Stuck {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        std::future::pending().await
    }
}

/// A spawn whose process is killed by the node's shutdown as its `init` runs fails with
/// `ShuttingDown` (not `Exited(Killed)`, which would blame the process).
#[test]
fn a_spawn_cut_short_by_the_shutdown_fails_with_shutting_down() {
    let node = Node::builder().name("cut-short").threads(1).build();
    let spawning = std::thread::spawn({
        let node = node.clone();
        move || {
            let options = noex::SpawnOptions::new().init_timeout(None);
            node.block_on(node.spawn_with::<Stuck>((), options))
                .map(|_| ())
        }
    });
    node.block_on(common::eventually("init to run", || {
        node.process_count() == 1
    }));
    node.shutdown();
    let spawned = spawning.join().unwrap();
    assert!(
        matches!(spawned, Err(noex::SpawnError::ShuttingDown)),
        "{spawned:?}"
    );
}
