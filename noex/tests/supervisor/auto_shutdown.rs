//! auto_shutdown.

use super::*;

/// Under `AnySignificant`: `p` (permanent, not significant) and `s` (significant, with
/// the given restart type).
async fn significant_and_plain(
    node: &Node,
    log: &mut Log,
    strategy: Strategy,
    significant: Restart,
) -> ServerRef<Supervisor> {
    let spec = SupervisorSpec::new(strategy)
        .intensity(10, LONG_WINDOW)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(log.spec("p"))
        .child(log.spec("s").restart(significant).significant(true));
    let sup = start(node, spec).await;
    log.expect(&["init p", "init s"]).await;
    sup
}

#[test]
fn any_significant_shuts_the_supervisor_down_when_one_of_its_significant_children_exits_normally() {
    run(|node| async move {
        // given: two significant children and a plain one
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .auto_shutdown(AutoShutdown::AnySignificant)
            .child(log.spec("p"))
            .child(log.spec("s1").restart(Restart::Transient).significant(true))
            .child(log.spec("s2").restart(Restart::Transient).significant(true));
        let sup = start(&node, spec).await;
        log.expect(&["init p", "init s1", "init s2"]).await;

        // when
        log.worker("s1")
            .cast(Cast::Exit(ExitReason::Normal))
            .unwrap();

        // then: the supervisor does not wait for s2
        assert_eq!(sup_ended(&sup).await, ExitReason::Shutdown);
        log.expect(&[
            "terminate s1 normal",
            "terminate s2 shutdown",
            "terminate p shutdown",
        ])
        .await;
    });
}

#[test]
fn a_significant_child_that_crashes_is_restarted_without_a_shutdown() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup =
            significant_and_plain(&node, &mut log, Strategy::OneForOne, Restart::Transient).await;

        // when
        log.worker("s").cast(Cast::Crash).unwrap();

        // then
        log.expect(&["init s"]).await;
        settle(&sup).await;
        assert!(sup.is_alive());
    });
}

#[test]
fn terminate_child_of_a_significant_child_does_not_shut_the_supervisor_down() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup =
            significant_and_plain(&node, &mut log, Strategy::OneForOne, Restart::Transient).await;

        // when
        within("terminate_child", sup.terminate_child("s"))
            .await
            .unwrap();

        // then
        log.expect(&["terminate s shutdown"]).await;
        settle(&sup).await;
        assert!(sup.is_alive());
        log.assert_quiet();
    });
}

#[test]
fn a_significant_child_stopped_by_a_sibling_restart_does_not_shut_the_supervisor_down() {
    run(|node| async move {
        // given: a temporary significant child under one_for_all
        let mut log = Log::new();
        let sup =
            significant_and_plain(&node, &mut log, Strategy::OneForAll, Restart::Temporary).await;

        // when
        log.worker("p").cast(Cast::Crash).unwrap();

        // then
        log.expect(&["terminate s shutdown", "init p"]).await;
        settle(&sup).await;
        assert!(sup.is_alive());
        assert_eq!(ids(&sup).await, ["p"]);
    });
}

#[test]
fn all_significant_waits_for_the_last_significant_child() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .auto_shutdown(AutoShutdown::AllSignificant)
            .child(log.spec("s1").restart(Restart::Transient).significant(true))
            .child(log.spec("s2").restart(Restart::Transient).significant(true));
        let sup = start(&node, spec).await;
        log.expect(&["init s1", "init s2"]).await;
        let s1 = log.worker("s1");
        s1.cast(Cast::Exit(ExitReason::Normal)).unwrap();
        ended(&s1).await;
        settle(&sup).await;
        assert!(sup.is_alive(), "one significant child is still running");

        // when
        log.worker("s2")
            .cast(Cast::Exit(ExitReason::Normal))
            .unwrap();

        // then
        assert_eq!(sup_ended(&sup).await, ExitReason::Shutdown);
    });
}

/// Under `AllSignificant`: `a`, significant, with `a`'s spec as given, and `b`,
/// significant and transient; both started.
async fn all_significant(
    node: &Node,
    log: &mut Log,
    a: ChildSpec,
) -> (ServerRef<Supervisor>, ServerRef<Worker>) {
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(10, LONG_WINDOW)
        .auto_shutdown(AutoShutdown::AllSignificant)
        .child(a.restart(Restart::Transient).significant(true))
        .child(log.spec("b").restart(Restart::Transient).significant(true));
    let sup = start(node, spec).await;
    log.expect(&["init a", "init b"]).await;
    (sup, log.worker("b"))
}

#[test]
fn all_significant_counts_a_significant_child_waiting_for_its_backoff_as_running() {
    run(|node| async move {
        // given: a crashed, and waits for its backoff
        let mut log = Log::new();
        let a = log
            .spec("a")
            .backoff(Backoff::fixed(Duration::from_secs(60)));
        let (sup, b) = all_significant(&node, &mut log, a).await;
        log.worker("a").cast(Cast::Crash).unwrap();
        eventually_restarting(&sup, "a").await;

        // when: the other significant child ends for good
        b.cast(Cast::Exit(ExitReason::Normal)).unwrap();
        log.expect(&["terminate b normal"]).await;

        // then: a is still to come back, so the supervisor stays
        settle(&sup).await;
        assert!(sup.is_alive());
    });
}

/// A child whose second `init` waits for the test's go and then fails; the others succeed.
struct Gated;

#[derive(Clone)]
struct GatedArgs {
    inits: Arc<AtomicUsize>,
    go: async_channel::Receiver<()>,
    log: async_channel::Sender<usize>,
}

impl GenServer for Gated {
    type Args = GatedArgs;
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = String;

    async fn init(args: GatedArgs, _: &mut Ctx<Self>) -> Result<Self, String> {
        let n = args.inits.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = args.log.try_send(n);
        if n == 2 {
            let _ = args.go.recv().await;
            return Err("the second start fails".into());
        }
        Ok(Gated)
    }
}

#[test]
fn all_significant_counts_a_significant_child_whose_restart_is_retried_as_running() {
    run(|node| async move {
        // given: a's restart (its second init) waits, then fails, and is tried again
        let (go_tx, go) = async_channel::unbounded();
        let (inits_tx, inits) = async_channel::unbounded();
        let args = GatedArgs {
            inits: Arc::default(),
            go,
            log: inits_tx,
        };
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(10, LONG_WINDOW)
            .auto_shutdown(AutoShutdown::AllSignificant)
            .child(
                ChildSpec::worker::<Gated>("a", args)
                    .restart(Restart::Transient)
                    .significant(true),
            )
            .child(log.spec("b").restart(Restart::Transient).significant(true));
        let sup = start(&node, spec).await;
        log.expect(&["init b"]).await;
        assert_eq!(within("a's first init", inits.recv()).await, Ok(1));
        assert!(node.kill(&pid_of(&sup, "a").await));
        assert_eq!(within("a's second init", inits.recv()).await, Ok(2));

        // when: the other significant child ends for good while the restart is under
        // way (its exit waits in the mailbox), and then the restart fails
        let b = log.worker("b");
        b.cast(Cast::Exit(ExitReason::Normal)).unwrap();
        assert_eq!(ended(&b).await, ExitReason::Normal);
        go_tx.send(()).await.unwrap();

        // then: a is still to come back, and does (the channel closes if the supervisor
        // ends first: it holds the only other sender)
        assert_eq!(within("a's third init", inits.recv()).await, Ok(3));
        settle(&sup).await;
        assert!(sup.is_alive());
    });
}

/// Waits until the child `id` shows as restarting.
async fn eventually_restarting(sup: &ServerRef<Supervisor>, id: &str) {
    within("the child to wait for its restart", async {
        loop {
            let children = sup.which_children().await.unwrap();
            if children.iter().any(|c| c.id == id && c.restarting) {
                return;
            }
            smol::Timer::after(Duration::from_millis(1)).await;
        }
    })
    .await
}
