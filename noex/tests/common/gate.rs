//! A gate a test opens: code that reaches it (a message's encoding, say) waits there, so
//! that a test can hold something in place and know it is held.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// How long a closed gate holds at most, so that a failing test ends.
pub const GATE_LIMIT: Duration = Duration::from_secs(20);

/// Closed until a test opens it: whatever reaches it waits (at most [`GATE_LIMIT`]).
pub struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    /// Set once something has reached the gate.
    reached: AtomicBool,
}

impl Gate {
    pub const fn new() -> Gate {
        Gate {
            open: Mutex::new(false),
            opened: Condvar::new(),
            reached: AtomicBool::new(false),
        }
    }

    /// `true` once something has reached the gate.
    pub fn reached(&self) -> bool {
        self.reached.load(Ordering::SeqCst)
    }

    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    pub fn is_open(&self) -> bool {
        *self.open.lock().unwrap()
    }

    /// Waits, blocking the thread, until the gate opens (or [`GATE_LIMIT`] has passed).
    pub fn wait(&self) {
        self.reached.store(true, Ordering::SeqCst);
        let open = self.open.lock().unwrap();
        let _open = self
            .opened
            .wait_timeout_while(open, GATE_LIMIT, |open| !*open)
            .unwrap();
    }
}
