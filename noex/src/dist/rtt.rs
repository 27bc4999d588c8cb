//! Round-trip times from heartbeats: each heartbeat carries its sender's clock, and echoes
//! the last clock reading it received with how long it held it, so a node measures its
//! round trip to a peer with no extra message and no clocks in common.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One connection's round-trip clock.
#[derive(Debug)]
pub(crate) struct RoundTrip {
    epoch: Instant,
    /// The peer's last `stamp_us`, and when it arrived (µs of `epoch`).
    echo: AtomicU64,
    arrived: AtomicU64,
    /// The last measured round trip in µs; 0 while unknown.
    last_us: AtomicU64,
}

/// The clock fields of an outgoing heartbeat.
pub(crate) struct Stamps {
    pub(crate) stamp_us: u64,
    pub(crate) echo_us: u64,
    pub(crate) held_us: u64,
}

impl RoundTrip {
    pub(crate) fn new() -> Self {
        RoundTrip {
            epoch: Instant::now(),
            echo: AtomicU64::new(0),
            arrived: AtomicU64::new(0),
            last_us: AtomicU64::new(0),
        }
    }

    fn now_us(&self) -> u64 {
        // Never 0: 0 means "none" on the wire.
        (self.epoch.elapsed().as_micros() as u64).max(1)
    }

    /// The stamps for a heartbeat sent now.
    pub(crate) fn stamps(&self) -> Stamps {
        let now = self.now_us();
        let echo_us = self.echo.load(Ordering::Relaxed);
        let held_us = if echo_us == 0 {
            0
        } else {
            now.saturating_sub(self.arrived.load(Ordering::Relaxed))
        };
        Stamps {
            stamp_us: now,
            echo_us,
            held_us,
        }
    }

    /// A heartbeat arrived with these stamps.
    pub(crate) fn heard(&self, stamp_us: u64, echo_us: u64, held_us: u64) {
        let now = self.now_us();
        self.echo.store(stamp_us, Ordering::Relaxed);
        self.arrived.store(now, Ordering::Relaxed);
        // An echo of a time this clock has not reached is a confused peer: ignored.
        if echo_us != 0 && echo_us <= now {
            let rtt = (now - echo_us).saturating_sub(held_us).max(1);
            self.last_us.store(rtt, Ordering::Relaxed);
        }
    }

    /// The last measured round trip.
    pub(crate) fn last(&self) -> Option<Duration> {
        match self.last_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_trip_is_measured_from_an_echo_less_the_time_held() {
        let (a, b) = (RoundTrip::new(), RoundTrip::new());
        assert_eq!(a.last(), None);
        let first = a.stamps();
        assert_eq!(first.echo_us, 0);
        b.heard(first.stamp_us, first.echo_us, first.held_us);
        assert_eq!(b.last(), None, "nothing echoed yet");
        let answer = b.stamps();
        assert_eq!(answer.echo_us, first.stamp_us);
        a.heard(answer.stamp_us, answer.echo_us, answer.held_us);
        let rtt = a.last().expect("measured");
        assert!(rtt <= a.epoch.elapsed().max(Duration::from_micros(1)));
    }

    #[test]
    fn an_echo_from_the_future_is_ignored() {
        let a = RoundTrip::new();
        a.heard(5, u64::MAX, 0);
        assert_eq!(a.last(), None);
    }
}
