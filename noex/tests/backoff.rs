//! Restart backoff: a supervised child's restart waits for its delay, still counts toward
//! the intensity, shows as restarting, and a supervisor stopped meanwhile stops cleanly.

mod common;

use std::time::{Duration, Instant};

use common::{run, within};
use noex::supervisor::{Backoff, ChildSpec, ChildTemplate, Strategy, SupervisorSpec};
use noex::{Ctx, ExitReason, GenServer, LifecycleEvent, Node, Pid, ServerRef, Supervisor};

/// Runs until killed; a `fragile` one ends by itself right after `init`.
#[derive(Clone)]
struct Child;

impl GenServer for Child {
    type Args = bool;
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(fragile: bool, ctx: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        if fragile {
            ctx.stop(ExitReason::error("crashed at once"));
        }
        Ok(Child)
    }
}

/// Waits until the supervisor's one child waits for its restart: not running, shown as
/// restarting.
async fn waiting(sup: &ServerRef<Supervisor>) {
    within("the child to wait for its restart", async {
        loop {
            let children = sup.which_children().await.unwrap();
            if children[0].pid.is_none() && children[0].restarting {
                break;
            }
            smol::Timer::after(Duration::from_millis(1)).await;
        }
    })
    .await
}

async fn child_pid(sup: &ServerRef<Supervisor>) -> Option<Pid> {
    sup.which_children().await.unwrap()[0].pid.clone()
}

#[test]
fn a_restart_waits_for_its_backoff_and_shows_as_restarting() {
    run(|node: Node| async move {
        let delay = Duration::from_millis(100);
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(ChildSpec::worker::<Child>("c", false).backoff(Backoff::fixed(delay)));
        let sup = node.spawn::<Supervisor>(spec).await.unwrap();
        let first = child_pid(&sup).await.unwrap();
        let crashed = Instant::now();
        assert!(node.kill(&first));
        // Waiting: no pid, shown as restarting.
        waiting(&sup).await;
        let second = within("the restart", async {
            loop {
                if let Some(pid) = child_pid(&sup).await {
                    break pid;
                }
                smol::Timer::after(Duration::from_millis(2)).await;
            }
        })
        .await;
        assert!(
            crashed.elapsed() >= delay,
            "restarted after {:?}",
            crashed.elapsed()
        );
        assert_ne!(second, first);
        assert!(!sup.which_children().await.unwrap()[0].restarting);
    });
}

#[test]
fn a_backoff_without_a_cap_restarts_its_child() {
    run(|node: Node| async move {
        // `Duration::MAX` as the cap: no cap (the delays would overflow were they not
        // saturated).
        let backoff = Backoff::exponential(Duration::from_millis(1), Duration::MAX);
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(ChildSpec::worker::<Child>("c", false).backoff(backoff));
        let sup = node.spawn::<Supervisor>(spec).await.unwrap();
        let first = child_pid(&sup).await.unwrap();
        assert!(node.kill(&first));
        within("the restart", async {
            while child_pid(&sup).await.is_none_or(|pid| pid == first) {
                smol::Timer::after(Duration::from_millis(1)).await;
            }
        })
        .await;
        assert!(sup.is_alive());
    });
}

#[test]
fn a_crash_loop_with_backoff_still_exhausts_the_intensity() {
    run(|node: Node| async move {
        let events = node.events();
        let backoff =
            Backoff::exponential(Duration::from_millis(5), Duration::from_millis(20)).jitter(0.0);
        let fragile = SupervisorSpec::simple_one_for_one(
            ChildTemplate::worker::<Child>("f").backoff(backoff),
        )
        .intensity(3, Duration::from_secs(5));
        let loop_sup = node.spawn::<Supervisor>(fragile).await.unwrap();
        let started = Instant::now();
        let _ = loop_sup.start_simple_child::<Child>(true).await;
        let reason = within("the supervisor to give up", loop_sup.exited()).await;
        assert_eq!(reason, ExitReason::Shutdown);
        // Four crashes, three backoff waits of at least 5, 10 and 20 ms in between.
        assert!(
            started.elapsed() >= Duration::from_millis(35),
            "{:?}",
            started.elapsed()
        );
        let gave_up = within("the event", async {
            loop {
                if let Some(LifecycleEvent::MaxRestartsExceeded { supervisor, .. }) =
                    events.recv().await
                {
                    break supervisor;
                }
            }
        })
        .await;
        assert_eq!(&gave_up, loop_sup.pid());
    });
}

#[test]
fn a_supervisor_stopped_while_a_restart_waits_stops_cleanly() {
    run(|node: Node| async move {
        let spec = SupervisorSpec::new(Strategy::OneForOne).child(
            ChildSpec::worker::<Child>("c", false).backoff(Backoff::fixed(Duration::from_secs(30))),
        );
        let sup = node.spawn::<Supervisor>(spec).await.unwrap();
        let first = child_pid(&sup).await.unwrap();
        assert!(node.kill(&first));
        waiting(&sup).await;
        let stopped = within("the stop", sup.stop(ExitReason::Shutdown)).await;
        assert_eq!(stopped, Ok(ExitReason::Shutdown));
        assert_eq!(node.process_count(), 0);
    });
}
