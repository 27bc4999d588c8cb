//! Timers: messages delivered to a process after a delay, or at every period.
//!
//! A timer belongs to the process it delivers to, as in Erlang: when that process ends, its
//! pending timers are cancelled. A timer's message arrives through
//! [`GenServer::handle_info`] as
//! [`Info::Message`].

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use smol::Task;

use crate::node::executors::timers::{Interval, Sleep};
use crate::node::executors::Executors;

use crate::process::AnyProcess;
use crate::server::process::{Envelope, Process};
use crate::server::{GenServer, Info};

const PENDING: u8 = 0;
const FIRED: u8 = 1;
const CANCELLED: u8 = 2;

/// `delay` from now; a century from now if that is past what an `Instant` can hold (a
/// `Duration::MAX` given for "never" must not overflow).
pub(crate) fn instant_after(delay: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(delay).unwrap_or(now + CENTURY)
}

/// `delay` × `factor` (not negative), saturating at `Duration::MAX`: a backoff whose cap is
/// `Duration::MAX` (none) must not overflow.
pub(crate) fn scaled(delay: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(delay.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// The shared state of one timer.
pub(crate) struct TimerEntry {
    state: AtomicU8,
    task: Mutex<Option<Task<()>>>,
    owner: Mutex<Option<Weak<dyn AnyProcess>>>,
}

impl TimerEntry {
    fn new() -> Self {
        TimerEntry {
            state: AtomicU8::new(PENDING),
            task: Mutex::new(None),
            owner: Mutex::new(None),
        }
    }

    fn is_pending(&self) -> bool {
        self.state.load(Ordering::Acquire) == PENDING
    }

    /// Claims a one-shot timer's delivery; `false` if it was cancelled first.
    fn fire(&self) -> bool {
        self.state
            .compare_exchange(PENDING, FIRED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Cancels the timer; `true` if it was still pending.
    pub(crate) fn cancel(&self) -> bool {
        let was_pending = self
            .state
            .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        // Dropping the task stops its sleep now rather than at the deadline.
        drop(
            self.task
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        was_pending
    }

    fn detach_from_owner(self: &Arc<Self>) {
        let owner = self
            .owner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(owner) = owner.and_then(|weak| weak.upgrade()) {
            owner.core().remove_timer(self);
        }
    }
}

/// Marks its timer as no longer pending when dropped: its task ended, or was dropped
/// unfinished (its node's threads stopped), so it delivers nothing more. (A fired
/// one-shot timer stays fired.)
struct Ends(Arc<TimerEntry>);

impl Drop for Ends {
    fn drop(&mut self) {
        let _ =
            self.0
                .state
                .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// A handle on a timer started with [`Ctx::send_after`](crate::Ctx::send_after),
/// [`Ctx::send_interval`](crate::Ctx::send_interval) or
/// [`Node::send_after`](crate::Node::send_after).
///
/// Dropping the handle does not cancel the timer.
#[derive(Clone)]
pub struct TimerRef {
    entry: Arc<TimerEntry>,
}

impl TimerRef {
    /// Cancels the timer. Returns `true` if it was still pending: its message had not been
    /// delivered (for an interval timer: it was still running). A message delivered before
    /// the cancel may still be in the mailbox.
    pub fn cancel(&self) -> bool {
        let was_pending = self.entry.cancel();
        self.entry.detach_from_owner();
        was_pending
    }

    /// A timer that will never deliver (its target had already ended).
    pub(crate) fn inert() -> TimerRef {
        let entry = TimerEntry::new();
        entry.state.store(CANCELLED, Ordering::Release);
        TimerRef {
            entry: Arc::new(entry),
        }
    }

    /// `true` while the timer may still deliver a message.
    pub fn is_pending(&self) -> bool {
        self.entry.is_pending()
    }
}

impl fmt::Debug for TimerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerRef")
            .field("pending", &self.is_pending())
            .finish()
    }
}

/// Makes the copy of an interval timer's message that each tick delivers.
pub(crate) type Repeat<B> = fn(&<B as GenServer>::Info) -> <B as GenServer>::Info;

/// Starts a timer delivering `message` to `target` after `delay`, or every `delay` when
/// `repeat` is given (it makes the copies).
pub(crate) fn start<B: GenServer>(
    executors: &Executors,
    target: &Arc<Process<B>>,
    message: B::Info,
    delay: Duration,
    repeat: Option<Repeat<B>>,
) -> TimerRef {
    let entry = Arc::new(TimerEntry::new());
    if !target.core.add_timer(entry.clone()) {
        // The target has ended: the timer can never deliver.
        return TimerRef::inert();
    }
    let owner: Arc<dyn AnyProcess> = target.clone();
    *entry.owner.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::downgrade(&owner));
    let weak_target = Arc::downgrade(target);
    let timer = entry.clone();
    let ends = Ends(entry.clone());
    let task = executors.spawn(async move {
        let _ends = ends;
        match repeat {
            None => {
                Sleep::after(delay).await;
                if timer.fire() {
                    timer.detach_from_owner();
                    if let Some(target) = weak_target.upgrade() {
                        // A target that ended meanwhile has cancelled us; nothing to report.
                        let _ = target.deliver(Envelope::Info(Info::Message(message)));
                    }
                }
            }
            Some(copy) => {
                let mut ticks = Interval::new(delay);
                loop {
                    ticks.tick().await;
                    let Some(target) = weak_target.upgrade() else {
                        return;
                    };
                    if !timer.is_pending()
                        || target
                            .deliver(Envelope::Info(Info::Message(copy(&message))))
                            .is_err()
                    {
                        return;
                    }
                    // A period shorter than a delivery (zero, say) is due again at once:
                    // the thread's other tasks go first. (Otherwise the next tick waits
                    // in the thread's timers, which wake it ahead of its queue.)
                    if ticks.is_due() {
                        smol::future::yield_now().await;
                    }
                }
            }
        }
    });
    *entry.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
    if !entry.is_pending() {
        // Cancelled (or, for a zero delay, fired) before the task was stored.
        drop(
            entry
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }
    TimerRef { entry }
}

/// Starts a timer that runs `deliver` after `delay`, owned by no process (for a target on
/// another node).
pub(crate) fn start_detached(
    executors: &Executors,
    delay: Duration,
    deliver: impl FnOnce() + Send + 'static,
) -> TimerRef {
    let entry = Arc::new(TimerEntry::new());
    let timer = entry.clone();
    let ends = Ends(entry.clone());
    let task = executors.spawn(async move {
        let _ends = ends;
        smol::Timer::after(delay).await;
        if timer.fire() {
            deliver();
        }
    });
    *entry.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
    if !entry.is_pending() {
        drop(
            entry
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }
    TimerRef { entry }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_meaning_never_saturate_instead_of_overflowing() {
        let far = instant_after(Duration::MAX);
        assert!(far > Instant::now() + Duration::from_secs(50 * 365 * 24 * 3600));
        assert_eq!(scaled(Duration::MAX, 1.2), Duration::MAX);
        assert_eq!(scaled(Duration::MAX / 2, 3.0), Duration::MAX);
        assert_eq!(
            scaled(Duration::from_secs(1), 0.5),
            Duration::from_millis(500)
        );
    }
}
