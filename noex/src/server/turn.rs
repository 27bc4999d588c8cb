//! A process's turn on its scheduler thread: how long it runs before letting its
//! neighbours on the same thread have theirs.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How many messages a process handles before letting its neighbours on the same thread
/// run (tokio's budget), once it has also finished the batch it took from its mailbox.
/// Finishing the batch keeps a process abreast of a sender on its own thread, however
/// many messages that sender queues between its own yields: each turn handles at least
/// what was queued when it began, so the queue cannot grow turn after turn.
const BUDGET: u32 = 128;

/// A turn past [`BUDGET`] also ends, mid-batch, once it has lasted this long (slow handlers)
/// or handled [`TURN_LIMIT`] messages (a long queue).
const TURN_TIME: Duration = Duration::from_millis(1);
const TURN_LIMIT: u32 = 32 * BUDGET;

/// The clock is read every this many messages of a turn (not per message: reading it
/// costs as much as handling a cast).
const CLOCK_EVERY: u32 = 64;

/// A process's turn on its thread: what decides when it yields to its neighbours.
#[derive(Default)]
pub(super) struct Turn {
    handled: u32,
    /// When the turn had handled [`CLOCK_EVERY`] messages, in [`clock`] ticks; 0 before.
    /// (Not an `Option<Instant>`: four times the size, in every process's future.)
    mark: u32,
}

/// Nanoseconds in one tick of [`clock`].
const TICK_NANOS: u32 = 1 << TICK_SHIFT;
const TICK_SHIFT: u32 = 10;

/// [`TURN_TIME`] in ticks of [`clock`].
const TURN_TICKS: u32 = (TURN_TIME.as_nanos() / TICK_NANOS as u128) as u32;

/// Ticks of about a microsecond (1,024 ns) since the first call, wrapping after some 73
/// minutes (compared with wrapping arithmetic); never 0.
fn clock() -> u32 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    // Truncated on purpose: only differences of a few ticks are ever looked at.
    let ticks = (epoch.elapsed().as_nanos() >> TICK_SHIFT) as u32;
    ticks.max(1)
}

impl Turn {
    /// Counts a message taken for handling.
    #[inline]
    pub(super) fn count(&mut self) {
        self.handled += 1;
        if self.handled % CLOCK_EVERY == 0 {
            let now = clock();
            if self.mark == 0 {
                self.mark = now;
            }
            if now.wrapping_sub(self.mark) >= TURN_TICKS {
                // Let `over` see it at once, and the thread serve the outside next.
                self.handled = self.handled.max(TURN_LIMIT);
                crate::node::executors::ran_long();
            }
        }
    }

    /// `true` if the process should give up its thread before its next message.
    #[inline]
    pub(super) fn over(&self, batch_is_empty: bool) -> bool {
        self.handled >= BUDGET && (batch_is_empty || self.handled >= TURN_LIMIT)
    }
}
