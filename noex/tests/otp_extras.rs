//! What OTP users reach for beyond call and cast: a continuation after `init`, an idle
//! timeout, and a stop request a long handler can see.

mod common;

use std::time::{Duration, Instant};

use common::{run, within};
use futures_lite::FutureExt;
use noex::{behavior, Ctx, ExitReason, Info, Node};

/// Records, in order, what it handled; loads in a continuation asked for by `init`.
#[behavior]
pub struct Loader {
    log: Vec<String>,
}

#[behavior(local)]
impl Loader {
    #[init]
    fn init(ctx: &mut Ctx<Self>) -> Self {
        ctx.continue_with("load".to_owned());
        Loader {
            log: vec!["init".into()],
        }
    }

    #[cast]
    fn note(&mut self, text: String) {
        self.log.push(text);
    }

    #[call]
    fn log(&self) -> Vec<String> {
        self.log.clone()
    }

    /// A continuation from a handler too.
    #[cast]
    fn later(&mut self, ctx: &mut Ctx<Self>) {
        self.log.push("later asked".into());
        ctx.continue_with("after later".into());
    }

    #[info]
    async fn info(&mut self, info: Info<String>) {
        if let Info::Continue(what) = info {
            // Slow on purpose: messages sent meanwhile must wait.
            smol::Timer::after(Duration::from_millis(20)).await;
            self.log.push(format!("continued: {what}"));
        }
    }
}

#[test]
fn a_continuation_runs_before_any_message_sent_after_spawn() {
    run(|node: Node| async move {
        let loader = node.spawn::<Loader>(()).await.unwrap();
        loader.note("first message".into()).unwrap();
        loader.later().unwrap();
        loader.note("last message".into()).unwrap();
        let log = within("the log", loader.log()).await.unwrap();
        assert_eq!(
            log,
            [
                "init",
                "continued: load",
                "first message",
                "later asked",
                "continued: after later",
                "last message"
            ]
        );
    });
}

/// Counts its idle timeouts.
#[behavior]
pub struct Sleepy {
    timeouts: u32,
}

#[behavior(local)]
impl Sleepy {
    #[init]
    fn init(after: Duration, ctx: &mut Ctx<Self>) -> Self {
        ctx.idle_timeout(after);
        Sleepy { timeouts: 0 }
    }

    #[call]
    fn timeouts(&self) -> u32 {
        self.timeouts
    }

    #[cast]
    fn poke(&self) {}

    #[info]
    fn info(&mut self, info: Info<()>) {
        if let Info::Timeout = info {
            self.timeouts += 1;
        }
    }
}

#[test]
fn an_idle_timeout_fires_once_after_silence_and_not_while_messages_arrive() {
    run(|node: Node| async move {
        let after = Duration::from_millis(150);
        let sleepy = node.spawn::<Sleepy>(after).await.unwrap();
        // Busy: a message every 10 ms for 300 ms; no timeout meanwhile.
        let busy_until = Instant::now() + Duration::from_millis(300);
        while Instant::now() < busy_until {
            sleepy.poke().unwrap();
            smol::Timer::after(Duration::from_millis(10)).await;
        }
        assert_eq!(sleepy.timeouts().await, Ok(0));
        // Silent: exactly one timeout, however long the silence.
        let fired = within("a timeout", async {
            loop {
                let _ = smol::Timer::after(Duration::from_millis(5)).await;
                // `timeouts` is a message too: ask only after the silence is long enough.
                if Instant::now() >= busy_until + after * 4 {
                    break sleepy.timeouts().await.unwrap();
                }
            }
        })
        .await;
        assert_eq!(fired, 1);
        // The call above re-armed it: another silence, another timeout.
        smol::Timer::after(after * 4).await;
        assert_eq!(sleepy.timeouts().await, Ok(2));
    });
}

/// Waits in a long handler, winding down when asked to stop.
#[behavior]
pub struct Patient {
    seen: async_channel::Sender<String>,
}

#[behavior(local)]
impl Patient {
    #[init]
    fn init(seen: async_channel::Sender<String>) -> Self {
        Patient { seen }
    }

    /// Waits an hour unless the process is asked to stop first.
    #[cast]
    async fn long_job(&mut self, ctx: &mut Ctx<Self>) {
        let _ = self.seen.try_send("job started".into());
        let stopped = async {
            ctx.stopping().await;
            true
        }
        .or(async {
            smol::Timer::after(Duration::from_secs(3600)).await;
            false
        })
        .await;
        let _ = self.seen.try_send(format!("job wound down: {stopped}"));
    }

    #[terminate]
    fn terminate(&mut self, reason: &ExitReason) {
        let _ = self.seen.try_send(format!("terminate: {reason}"));
    }
}

#[test]
fn a_long_handler_sees_the_stop_request_and_ends_within_the_grace_period() {
    run(|node: Node| async move {
        let (tx, seen) = async_channel::unbounded();
        let patient = node.spawn::<Patient>(tx).await.unwrap();
        patient.long_job().unwrap();
        assert_eq!(seen.recv().await.unwrap(), "job started");
        let grace = Duration::from_secs(2);
        let asked = Instant::now();
        let stopped = within(
            "the stop",
            patient.stop_with_grace(ExitReason::Shutdown, Some(grace)),
        )
        .await;
        assert_eq!(
            stopped,
            Ok(ExitReason::Shutdown),
            "ended by itself, not killed"
        );
        assert!(asked.elapsed() < grace);
        assert_eq!(seen.recv().await.unwrap(), "job wound down: true");
        assert_eq!(seen.recv().await.unwrap(), "terminate: shutdown");
    });
}

/// Hands its stop request (`ctx.stopping()`) to a task of its own in `init`, which tells
/// the test when it resolves.
#[behavior]
pub struct Delegating;

#[behavior(local)]
impl Delegating {
    #[init]
    async fn init(told: async_channel::Sender<&'static str>, ctx: &mut Ctx<Self>) -> Self {
        let stopping = ctx.stopping();
        let (polled_tx, polled) = async_channel::bounded(1);
        smol::spawn(async move {
            let mut stopping = Box::pin(stopping);
            // Pending (and its waker kept) before the stop is asked for.
            let early = futures_lite::future::poll_once(stopping.as_mut()).await;
            let _ = polled_tx.send(early.is_some()).await;
            stopping.await;
            let _ = told.send("stop seen").await;
        })
        .detach();
        assert_eq!(polled.recv().await, Ok(false));
        Delegating
    }
}

#[test]
fn a_stop_request_reaches_stopping_awaited_in_another_task() {
    run(|node: Node| async move {
        let (tx, told) = async_channel::unbounded();
        let delegating = node.spawn::<Delegating>(tx).await.unwrap();
        let stopped = delegating.stop(ExitReason::Shutdown).await;
        assert_eq!(stopped, Ok(ExitReason::Shutdown));
        assert_eq!(
            within("the other task to see it", told.recv()).await,
            Ok("stop seen")
        );
    });
}

/// A process that ends without a graceful stop asked for — killed, or crashed — ends
/// `stopping()` too: a task of its own awaiting it is not left waiting for ever.
#[test]
fn stopping_awaited_in_another_task_resolves_when_the_process_is_killed() {
    run(|node: Node| async move {
        let (tx, told) = async_channel::unbounded();
        let delegating = node.spawn::<Delegating>(tx).await.unwrap();
        assert!(node.kill(delegating.pid()));
        assert_eq!(
            within("the process to end", node.exited(delegating.pid())).await,
            ExitReason::Killed
        );
        assert_eq!(
            within("the other task to see it", told.recv()).await,
            Ok("stop seen")
        );
    });
}

/// Counts its wake-ups; a waker made from it holds a reference to it.
struct Counted;

impl std::task::Wake for Counted {
    fn wake(self: std::sync::Arc<Self>) {}
}

/// Polls `ctx.stopping()` once per call with a waker of its own (as a combinator or a
/// short-lived task would), then drops it; answers how many of those wakers are still
/// referenced by someone other than itself.
#[behavior]
pub struct Poller {
    wakers: Vec<std::sync::Arc<Counted>>,
}

#[behavior(local)]
impl Poller {
    #[init]
    fn init() -> Self {
        Poller { wakers: Vec::new() }
    }

    #[call]
    fn poll_and_drop(&mut self, ctx: &mut Ctx<Self>) -> usize {
        let counted = std::sync::Arc::new(Counted);
        let waker = std::task::Waker::from(counted.clone());
        let mut stopping = Box::pin(ctx.stopping());
        let polled = stopping
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker));
        assert!(polled.is_pending());
        drop((stopping, waker));
        self.wakers.push(counted);
        self.wakers
            .iter()
            .filter(|w| std::sync::Arc::strong_count(w) > 1)
            .count()
    }
}

#[test]
fn a_dropped_stopping_future_keeps_no_waker() {
    run(|node: Node| async move {
        let poller = node.spawn::<Poller>(()).await.unwrap();
        for _ in 0..3 {
            let kept = within("the call", poller.poll_and_drop()).await.unwrap();
            assert_eq!(kept, 0, "wakers of dropped stopping() futures still kept");
        }
    });
}
