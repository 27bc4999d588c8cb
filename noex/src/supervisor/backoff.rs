//! Restart backoff: how long a child's restart waits, growing while it keeps failing.

use std::time::Duration;

use crate::timer::scaled;

/// How long a supervisor waits before restarting a child: a fixed delay, or one that grows
/// exponentially (with jitter, up to a cap) while the child keeps crashing soon after its
/// start, back to the first delay once it has run for a while. Akka's `BackoffSupervisor`
/// is the model. A restart waiting for its delay counts toward the restart intensity as
/// any restart does, and [`which_children`](crate::ServerRef::which_children) shows the
/// child as restarting.
///
/// ```
/// use std::time::Duration;
/// use noex::supervisor::Backoff;
///
/// let fixed = Backoff::fixed(Duration::from_millis(100));
/// let growing = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(5))
///     .jitter(0.2)
///     .reset_after(Duration::from_secs(30));
/// # let _ = (fixed, growing);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[must_use = "a Backoff does nothing until a ChildSpec or ChildTemplate takes it"]
pub struct Backoff {
    min: Duration,
    max: Duration,
    factor: f64,
    jitter: f64,
    reset_after: Duration,
}

impl Backoff {
    /// Always `delay`.
    pub fn fixed(delay: Duration) -> Self {
        Backoff {
            min: delay,
            max: delay,
            factor: 1.0,
            jitter: 0.0,
            reset_after: Duration::ZERO,
        }
    }

    /// `min` first, doubling at each restart up to `max` (`Duration::MAX`: no cap);
    /// ±10 % jitter; back to `min` once the child has run for `max` (or
    /// [`reset_after`](Self::reset_after)).
    pub fn exponential(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            factor: 2.0,
            jitter: 0.1,
            reset_after: max.max(min),
        }
    }

    /// Each delay varies at random by up to this fraction either way (0.0 to 1.0); a
    /// delay never goes below the first one.
    pub fn jitter(mut self, fraction: f64) -> Self {
        // (NaN: none.)
        self.jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// A child that ran this long before it ended starts again from the first delay.
    pub fn reset_after(mut self, ran: Duration) -> Self {
        self.reset_after = ran;
        self
    }

    /// The delay of the next restart of a child that ran for `ran`, whose previous delay
    /// was `previous` (zero at first); returns it and the delay to remember.
    pub(crate) fn next(&self, previous: Duration, ran: Duration) -> (Duration, Duration) {
        let base = if previous.is_zero() || ran >= self.reset_after {
            self.min
        } else {
            scaled(previous, self.factor).min(self.max)
        };
        let random = getrandom::u32().unwrap_or(0) as f64 / u32::MAX as f64;
        let jittered = scaled(base, 1.0 + self.jitter * (2.0 * random - 1.0));
        (
            jittered.clamp(self.min, scaled(self.max, 1.0 + self.jitter)),
            base,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_reset_after_a_long_run() {
        let ms = Duration::from_millis;
        let backoff = Backoff::exponential(ms(100), ms(800)).jitter(0.0);
        let mut previous = Duration::ZERO;
        let mut delays = Vec::new();
        for _ in 0..6 {
            let (delay, remembered) = backoff.next(previous, ms(10));
            delays.push(delay);
            previous = remembered;
        }
        assert_eq!(
            delays,
            [ms(100), ms(200), ms(400), ms(800), ms(800), ms(800)]
        );
        assert_eq!(backoff.next(previous, ms(800)).0, ms(100));
        let fixed = Backoff::fixed(ms(100));
        assert_eq!(fixed.next(ms(100), ms(1)).0, ms(100));
        let jittered = Backoff::exponential(ms(100), ms(100)).jitter(0.5);
        for _ in 0..100 {
            let (delay, _) = jittered.next(ms(100), ms(1));
            assert!(delay >= ms(100) && delay <= ms(150), "{delay:?}");
        }
    }

    #[test]
    fn a_nan_jitter_is_none() {
        let ms = Duration::from_millis;
        let backoff = Backoff::exponential(ms(100), ms(800)).jitter(f64::NAN);
        assert_eq!(backoff.next(Duration::ZERO, Duration::ZERO).0, ms(100));
    }

    #[test]
    fn an_uncapped_backoff_saturates_instead_of_overflowing() {
        let backoff = Backoff::exponential(Duration::from_secs(1), Duration::MAX);
        let mut previous = Duration::ZERO;
        for _ in 0..80 {
            let (delay, remembered) = backoff.next(previous, Duration::ZERO);
            assert!(delay >= Duration::from_secs(1));
            previous = remembered;
        }
        assert_eq!(previous, Duration::MAX);
    }
}
