//! Timers: send_after, cancel, intervals, and timers dying with their process.

mod common;

use std::time::Duration;

use futures_lite::FutureExt;

use common::{probe, run, Seen};
use noex::{Ctx, ExitReason, GenServer, Info};

/// Panics when its timer fires.
struct Fragile;

impl GenServer for Fragile {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = &'static str;
    type InitError = std::convert::Infallible;

    async fn init(_: (), ctx: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        ctx.send_after("explode", Duration::from_millis(1));
        Ok(Fragile)
    }

    async fn handle_info(&mut self, info: Info<&'static str>, _: &mut Ctx<Self>) {
        if let Info::Message(text) = info {
            panic!("timer said {text}");
        }
    }
}

#[test]
fn send_after_delivers_the_message_to_handle_info() {
    run(|node| async move {
        let probe = probe(&node, false).await;
        let timer = probe.send_after("tick", Duration::from_millis(10)).await;
        assert_eq!(probe.next_seen().await, Seen::Message("tick".into()));
        assert!(!timer.is_pending());
    });
}

#[test]
fn node_send_after_targets_any_process() {
    run(|node| async move {
        let probe = probe(&node, false).await;
        node.send_after(&probe.server, "hello".to_owned(), Duration::from_millis(5));
        assert_eq!(probe.next_seen().await, Seen::Message("hello".into()));
    });
}

#[test]
fn cancel_timer_reports_whether_the_timer_was_still_pending() {
    run(|node| async move {
        let probe = probe(&node, false).await;
        let pending = probe.send_after("never", Duration::from_secs(60)).await;
        assert!(pending.is_pending());
        assert!(node.cancel_timer(&pending), "a pending timer cancels");
        assert!(!pending.is_pending());
        assert!(!pending.cancel(), "a second cancel finds nothing pending");

        let fired = probe.send_after("fired", Duration::from_millis(1)).await;
        assert_eq!(probe.next_seen().await, Seen::Message("fired".into()));
        assert!(!fired.cancel(), "a fired timer is no longer pending");

        probe.sync().await;
        probe.assert_saw_nothing();
    });
}

#[test]
fn a_cancelled_timer_delivers_nothing() {
    run(|node| async move {
        let probe = probe(&node, false).await;
        let cancelled = probe
            .send_after("cancelled", Duration::from_millis(20))
            .await;
        assert!(cancelled.cancel());
        // A later timer's message proves the cancelled one's deadline has passed.
        probe.send_after("later", Duration::from_millis(60)).await;
        assert_eq!(probe.next_seen().await, Seen::Message("later".into()));
    });
}

#[test]
fn an_interval_delivers_until_cancelled() {
    run(|node| async move {
        let probe = probe(&node, false).await;
        let interval = probe.interval("beat", Duration::from_millis(5)).await;
        for _ in 0..3 {
            assert_eq!(probe.next_seen().await, Seen::Message("beat".into()));
        }
        assert!(interval.is_pending());
        assert!(interval.cancel());
        assert!(!interval.is_pending());
        // Drain what was queued before the cancel; nothing follows a marker sent afterwards.
        probe.send_after("marker", Duration::from_millis(30)).await;
        loop {
            match probe.next_seen().await {
                Seen::Message(m) if m == "beat" => continue,
                Seen::Message(m) if m == "marker" => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        probe.sync().await;
        probe.assert_saw_nothing();
    });
}

#[test]
fn timers_are_cancelled_when_their_process_ends() {
    run(|node| async move {
        let probe = probe(&node, false).await;
        let once = probe.send_after("late", Duration::from_secs(60)).await;
        let interval = probe.interval("beat", Duration::from_secs(60)).await;
        assert!(once.is_pending() && interval.is_pending());

        node.kill(probe.pid());
        assert_eq!(probe.exited().await, ExitReason::Killed);

        assert!(!once.is_pending(), "a one-shot timer dies with its process");
        assert!(!interval.is_pending(), "an interval dies with its process");
        assert!(!once.cancel());
    });
}

#[test]
fn a_panic_handling_a_timer_message_ends_only_that_process() {
    run(|node| async move {
        let fragile = node.spawn::<Fragile>(()).await.unwrap();
        let bystander = probe(&node, false).await;
        let reason = common::within("the timer's crash", fragile.exited()).await;
        assert_eq!(reason, ExitReason::Panic("timer said explode".into()));
        bystander.sync().await;
    });
}

#[test]
fn a_timer_to_a_process_that_already_ended_is_never_pending() {
    run(|node| async move {
        let probe = probe(&node, false).await;
        probe.server.stop(ExitReason::Normal).await.unwrap();
        let timer = node.send_after(&probe.server, "lost".to_owned(), Duration::from_millis(1));
        assert!(!timer.is_pending());
        assert!(!timer.cancel());
    });
}

/// Sets a zero-period interval to itself in `init`.
struct Spinning;

impl GenServer for Spinning {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(_: (), ctx: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        ctx.send_interval((), Duration::ZERO);
        Ok(Spinning)
    }
}

#[test]
fn a_zero_period_interval_leaves_its_thread_to_the_others() {
    // One thread: were the interval's task never to yield, nothing else would run.
    let node = noex::Node::builder().name("zero").threads(1).build();
    let finished = node.block_on(
        async {
            let spinning = node.spawn::<Spinning>(()).await.unwrap();
            let probe = probe(&node, false).await;
            probe.server.stop(ExitReason::Normal).await.unwrap();
            spinning.stop(ExitReason::Normal).await.unwrap();
            true
        }
        .or(async {
            smol::Timer::after(Duration::from_secs(20)).await;
            false
        }),
    );
    if !finished {
        // (Its thread would never stop: shutting it down would hang the test.)
        std::mem::forget(node);
        panic!("the other processes never ran");
    }
    node.shutdown();
}
