//! A per-thread buffer that frames are encoded in before they are written or copied into
//! a connection's queue — casts, infos, calls and replies — so that sending a small message
//! allocates nothing.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};

use super::remote::ENCODE_APART;

thread_local! {
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// This thread's scratch buffer, empty, while in use (a frame encoded meanwhile on this
/// thread — by a task that runs while this one waits — gets a fresh one); given back when
/// dropped, unless it outgrew what a thread keeps.
pub(crate) struct Scratch(Vec<u8>);

impl Scratch {
    pub(crate) fn take() -> Scratch {
        let mut buffer = SCRATCH.try_with(Cell::take).unwrap_or_default();
        buffer.clear();
        Scratch(buffer)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // A buffer grown for a large message would hold its memory for good. (One that
        // grew to the size messages are encoded apart at is kept.)
        if self.0.capacity() <= 2 * ENCODE_APART {
            let buffer = std::mem::take(&mut self.0);
            let _ = SCRATCH.try_with(|scratch| scratch.set(buffer));
        }
    }
}

impl Deref for Scratch {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}
