//! Spin locks for state held a few nanoseconds at a time (a mailbox's queue, a
//! connection's outbound lanes), taken patiently.
//!
//! A spin lock is released with a plain store, where a sleeping mutex's release is a
//! read-modify-write (it must look for sleepers) — and on the hot paths every message pays
//! a release. Should the holder be descheduled, waiters yield their thread after
//! [`SPINS`] tries rather than spin on.

use spin::mutex::{SpinMutex, SpinMutexGuard};

/// How many times taking the lock is tried, backing off between tries (up to 64 spins),
/// before yielding the thread between tries: some tens of microseconds, enough to outlast a
/// holder that grows a queue. (With 16 tries, two senders on two threads still often
/// yielded.)
const SPINS: u32 = 40;

/// Takes `lock`, spinning with back-off, then yielding the thread between tries.
pub(crate) fn patiently<T>(lock: &SpinMutex<T>) -> SpinMutexGuard<'_, T> {
    let mut attempt = 0u32;
    loop {
        // Look before trying: a try takes the lock's cache line from its holder, who
        // needs it back to finish.
        if !lock.is_locked() {
            if let Some(guard) = lock.try_lock() {
                return guard;
            }
        }
        if attempt < SPINS {
            for _ in 0..1u32 << attempt.min(6) {
                std::hint::spin_loop();
            }
            attempt += 1;
        } else {
            std::thread::yield_now();
        }
    }
}
