//! A per-thread buffer that frames are encoded in before they are written or copied into
//! a connection's queue — casts, infos, calls and replies — so that sending a small message
//! allocates nothing.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use super::remote::ENCODE_APART;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A buffer this large is not kept: it would hold the memory of one large message for good.
/// (One that grew to the size messages are encoded apart at is kept.)
const KEEP: usize = 2 * ENCODE_APART;

/// Runs `f` with this thread's scratch buffer, empty — or with a new one if the buffer is
/// in use (by a [`Scratch`] taken, or by a `with` further up this thread's stack). For
/// frames encoded and queued without waiting: one look at a thread-local, where
/// [`Scratch::take`] and its drop take two.
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut f = Some(f);
    let mut run = |buffer: &mut Vec<u8>| f.take().map(|f| f(buffer));
    let ran = SCRATCH.try_with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buffer) => {
            buffer.clear();
            let ran = run(&mut buffer);
            if buffer.capacity() > KEEP {
                *buffer = Vec::new();
            }
            ran
        }
        Err(_) => None,
    });
    match ran {
        Ok(Some(ran)) => ran,
        _ => run(&mut Vec::new()).unwrap_or_else(|| unreachable!("`f` runs once")),
    }
}

/// This thread's scratch buffer, empty, while in use (a frame encoded meanwhile on this
/// thread — by a task that runs while this one waits — gets a fresh one); given back when
/// dropped, unless it outgrew what a thread keeps.
pub(crate) struct Scratch(Vec<u8>);

impl Scratch {
    pub(crate) fn take() -> Scratch {
        let taken = SCRATCH.try_with(|scratch| {
            scratch
                .try_borrow_mut()
                .map(|mut buffer| std::mem::take(&mut *buffer))
        });
        let mut buffer = taken.ok().and_then(Result::ok).unwrap_or_default();
        buffer.clear();
        Scratch(buffer)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.0.capacity() <= KEEP {
            let buffer = std::mem::take(&mut self.0);
            let _ = SCRATCH.try_with(|scratch| {
                if let Ok(mut kept) = scratch.try_borrow_mut() {
                    if kept.capacity() < buffer.capacity() {
                        *kept = buffer;
                    }
                }
            });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_in_use_is_never_handed_out_twice() {
        with(|outer| {
            outer.extend_from_slice(b"outer");
            // Nested, and taken meanwhile: fresh buffers, the outer one untouched.
            with(|inner| {
                assert!(inner.is_empty());
                inner.extend_from_slice(b"inner");
            });
            let mut taken = Scratch::take();
            assert!(taken.is_empty());
            taken.extend_from_slice(b"taken");
            drop(taken);
            assert_eq!(&outer[..], b"outer");
        });
        // Given back: the next use gets it, emptied, with its room.
        with(|buffer| {
            assert!(buffer.is_empty());
            assert!(buffer.capacity() >= 5);
        });
    }
}
