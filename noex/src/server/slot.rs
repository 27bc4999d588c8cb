//! The reply slot of a call (a local call, or a remote call waiting for its reply frame): a one-shot rendezvous between the server that answers
//! and the caller that waits, **reused** from one call to the next.
//!
//! A call needs somewhere for its reply to land. A fresh one-shot channel per call costs an
//! allocation, a free and a clone of the caller's waker each time; this slot is taken from
//! a small per-thread cache of spares instead, and goes back to it when the call ends with
//! the server's end already let go (the usual case: the server answers, drops its end, and
//! the caller reads the reply). A slot that comes back keeps the waker of its last caller,
//! so a task calling again and again registers itself once. (That waker holds its task's
//! allocation: a task that ended after a call stays allocated until a later call's slot
//! replaces that spare — at most [`spares::KEPT`] tasks a thread.)
//!
//! This is the crate's only `unsafe` module (away from Linux, `node::executors::poller`
//! makes one `unsafe` call too: `polling::Poller::add`): the value and the waker live in
//! `UnsafeCell`s whose access is ruled by one atomic state, and the slot is shared by its
//! two ends through a count of its holders rather than an `Arc` (see [`Inner`]). Its tests
//! run under Miri in CI (`cargo +nightly miri test -p noex --lib server::slot`).

#![allow(unsafe_code)]

use std::any::TypeId;
use std::cell::{RefCell, UnsafeCell};
use std::fmt;
use std::future::Future;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::task::{Context, Poll, Waker};

/// No value; no waker registered (or one the sender must not use).
const EMPTY: u8 = 0;
/// No value; the receiver's waker is in `waker`.
const WAITING: u8 = 1;
/// The sender wrote the value.
const FULL: u8 = 2;
/// The receiver moved the value out.
const TAKEN: u8 = 3;
/// The sender went away without a value.
const CLOSED: u8 = 4;

/// The shared part of a slot, owned by its two ends together.
///
/// Who touches what:
/// * `value` is written by the [`Sender`] only, once, before it moves the state to `FULL`
///   (release); it is moved out by the [`Receiver`] only, after it reads `FULL` (acquire),
///   and the receiver then sets `TAKEN`. If it is still `FULL` when the slot is freed,
///   the free drops it.
/// * `waker` is written by the receiver only, and only while the state is `EMPTY` — a state
///   only the receiver leaves for `WAITING`. While it is `WAITING` the receiver and the
///   sender may both read it (the sender wakes through a shared reference); to change it,
///   the receiver first takes it back to `EMPTY` with a compare-exchange that fails if the
///   sender got there first.
/// * `holders` counts the ends that have not let go (2, then 1, then 0). Each end lets go
///   once, with a release decrement, after its last access; the one that takes it to 0
///   frees the slot (after an acquire fence). The receiver, done first in the usual case,
///   reads 1 instead — the sender gone — and then holds the slot alone: it reuses it without
///   a read-modify-write. (An `Arc` per slot cost two more: a clone per call, and the
///   compare-and-swap `Arc::get_mut` makes.)
/// * A slot is reset for reuse only by an end that holds it alone.
struct Inner<T> {
    state: AtomicU8,
    holders: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
    waker: UnsafeCell<Option<Waker>>,
}

impl<T> Inner<T> {
    fn new() -> Self {
        Inner {
            state: AtomicU8::new(EMPTY),
            holders: AtomicU8::new(2),
            value: UnsafeCell::new(MaybeUninit::uninit()),
            waker: UnsafeCell::new(None),
        }
    }

    /// A new slot, on the heap, held by both ends.
    fn allocate() -> NonNull<Self> {
        NonNull::from(Box::leak(Box::new(Inner::new())))
    }

    /// Lets go of the slot for one end, after its last access; frees it if the other end
    /// has let go too.
    ///
    /// # Safety
    /// `inner` is a live slot, and the calling end holds it (it lets go once, and touches
    /// the slot no more).
    unsafe fn let_go(inner: NonNull<Self>) {
        // SAFETY: the caller holds the slot, so it is live.
        if unsafe { inner.as_ref() }.holders.fetch_sub(1, Release) == 1 {
            std::sync::atomic::fence(Acquire);
            // SAFETY: both ends have let go: nothing else can reach the slot, and the
            // fence orders the other end's accesses before this free.
            drop(unsafe { Box::from_raw(inner.as_ptr()) });
        }
    }
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        if *self.state.get_mut() == FULL {
            // SAFETY: `FULL` means the sender wrote the value and no receiver moved it out;
            // `&mut self` means nobody else can.
            unsafe { self.value.get_mut().assume_init_drop() }
        }
    }
}

/// The sending end: held by the [`ReplyTo`](super::ReplyTo) of the request.
pub(crate) struct Sender<T> {
    /// `None` once it has let go (after `send`).
    inner: Option<NonNull<Inner<T>>>,
}

/// The receiving end: held by the caller's call future.
pub(crate) struct Receiver<T> {
    inner: NonNull<Inner<T>>,
}

// SAFETY: an end moves to another thread with its share of the slot: the `T` it sends or
// receives moves from the sender's thread to the receiver's (hence `T: Send`), and the
// slot is freed by whichever end lets go last, on its thread (dropping a `T` there: `T:
// Send` again, and `Waker: Send`). Access to the cells follows the protocol on `Inner`.
unsafe impl<T: Send> Send for Sender<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Receiver<T> {}
// SAFETY: `&Sender` and `&Receiver` give no access to the slot (every method that touches
// it takes `&mut self` or `self`).
unsafe impl<T: Send> Sync for Sender<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Receiver<T> {}

/// A slot for one call: a spare from this thread's cache if there is one of this type.
pub(crate) fn slot<T: Send + 'static>() -> (Sender<T>, Receiver<T>) {
    let inner = match spares::take::<T>() {
        Some(spare) => {
            // SAFETY: a spare is held by nobody else (see `Receiver::recycle`), so a plain
            // store makes both ends its holders.
            unsafe { spare.as_ref() }.holders.store(2, Relaxed);
            spare
        }
        None => Inner::allocate(),
    };
    (Sender { inner: Some(inner) }, Receiver { inner })
}

impl<T> Sender<T> {
    /// Hands the value to the receiver (dropped with the slot if the receiver is gone).
    /// Inlined: a value passed in memory to a call was read back whole right after its
    /// maker wrote it in pieces, which stalled on store forwarding (perf).
    #[inline]
    pub(crate) fn send(mut self, value: T) {
        let Some(inner) = self.inner.take() else {
            unreachable!("a sender sends once: `send` takes it by value")
        };
        // SAFETY: this end holds the slot until it lets go below, so it is live; only the
        // sender writes `value`, once (this is the one `send` of the one sender), and the
        // receiver reads it only after seeing `FULL`, set in `finish`.
        unsafe {
            (*inner.as_ref().value.get()).write(value);
            Self::finish(inner, FULL);
        }
    }

    /// Moves the state to `end`, wakes the receiver if it registered, and lets go.
    ///
    /// # Safety
    /// `inner` is held by this sender, which lets go here and touches it no more.
    unsafe fn finish(inner: NonNull<Inner<T>>, end: u8) {
        // SAFETY: held by this end until `let_go`.
        let shared = unsafe { inner.as_ref() };
        if shared.state.swap(end, AcqRel) == WAITING {
            // SAFETY: the state was `WAITING`, so the receiver's waker is in place and the
            // receiver writes it only after moving the state from `WAITING` to `EMPTY`,
            // which it can no longer do (the state is now `end`): shared reads only. The
            // slot cannot be reset or freed meanwhile: this end still holds it.
            if let Some(waker) = unsafe { &*shared.waker.get() } {
                waker.wake_by_ref();
            }
        }
        // SAFETY: this end holds the slot and is done with it.
        unsafe { Inner::let_go(inner) }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            // SAFETY: still held by this end (taken out of `self` just now).
            unsafe { Self::finish(inner, CLOSED) }
        }
    }
}

impl<T> Receiver<T> {
    /// The shared slot.
    fn shared(&self) -> &Inner<T> {
        // SAFETY: the receiver holds the slot until it is dropped or recycled, both of
        // which take it by value.
        unsafe { self.inner.as_ref() }
    }

    /// The value once sent: `Some(value)`, or `None` if the sender went away without one.
    /// Not to be polled again after it returned `Ready`.
    pub(crate) fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let inner = self.shared();
        let mut state = inner.state.load(Acquire);
        if state == WAITING {
            // SAFETY: while the state is `WAITING` the waker is only read (by us and by a
            // sender waking it).
            let registered = unsafe { &*inner.waker.get() };
            if registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                return Poll::Pending;
            }
            // Take the waker back to change it, unless the sender finished meanwhile.
            match inner
                .state
                .compare_exchange(WAITING, EMPTY, Acquire, Acquire)
            {
                Ok(_) => state = EMPTY,
                Err(now) => state = now,
            }
        }
        if state == EMPTY {
            // SAFETY: in `EMPTY` only the receiver touches the waker (the sender reads it
            // only when it finds `WAITING`), and we are the receiver.
            let waker = unsafe { &mut *inner.waker.get() };
            match waker {
                Some(kept) if kept.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
            match inner
                .state
                .compare_exchange(EMPTY, WAITING, AcqRel, Acquire)
            {
                Ok(_) => return Poll::Pending,
                Err(now) => state = now,
            }
        }
        match state {
            FULL => {
                inner.state.store(TAKEN, Relaxed);
                // SAFETY: `FULL` was read with acquire ordering after the sender's release
                // swap, so the value is written; only the receiver moves it out, once (it
                // sets `TAKEN` and is not polled again).
                Poll::Ready(Some(unsafe { (*inner.value.get()).assume_init_read() }))
            }
            CLOSED => Poll::Ready(None),
            _ => unreachable!("a reply slot polled after its value was taken"),
        }
    }
}

impl<T: Send + 'static> Receiver<T> {
    /// Gives the slot back to this thread's spares if the sender has let go of it (else
    /// lets go, as a drop does).
    pub(crate) fn recycle(self) {
        let this = ManuallyDrop::new(self);
        let inner = this.inner;
        // SAFETY: this end holds the slot (taken by value; its drop is not run).
        let shared = unsafe { inner.as_ref() };
        let state = shared.state.load(Relaxed);
        if shared.holders.load(Acquire) == 1 && (state == TAKEN || state == CLOSED) {
            // The sender has let go (its release decrement is what this acquire load
            // read), and the value is out: the slot is this end's alone, with nothing in
            // it but the waker it keeps.
            shared.state.store(EMPTY, Relaxed);
            spares::put(inner);
        } else {
            // SAFETY: this end holds the slot and touches it no more.
            unsafe { Inner::let_go(inner) }
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // SAFETY: this end holds the slot and touches it no more.
        unsafe { Inner::let_go(self.inner) }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().poll_reply(cx)
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// The spare slots of each thread, a few types at a time.
mod spares {
    use super::*;

    /// How many slot types a thread keeps a spare of.
    pub(super) const KEPT: usize = 4;

    /// A place for a spare slot of some type, held by nobody but this thread's cache (and
    /// freed with it). Written field by field where it lies: a spare built apart and moved
    /// in was read back whole right after its fields were written, which stalled on store
    /// forwarding (some 3 % of a local call, perf).
    struct Spare {
        /// The type of the values the slot carries (`None` until a slot is kept here).
        of: Option<TypeId>,
        /// `None`: an empty place.
        slot: Option<NonNull<()>>,
        /// Frees `slot` (the free of its own type).
        free: unsafe fn(NonNull<()>),
    }

    impl Spare {
        const EMPTY: Spare = Spare {
            of: None,
            slot: None,
            free: free::<()>,
        };

        /// Frees the slot kept here, if any.
        fn clear(&mut self) {
            if let Some(slot) = self.slot.take() {
                // SAFETY: `free` is the free of the slot's own type, and the place is the
                // slot's only holder.
                unsafe { (self.free)(slot) }
            }
        }
    }

    impl Drop for Spare {
        fn drop(&mut self) {
            self.clear();
        }
    }

    /// Frees a spare slot carrying `T`s.
    ///
    /// # Safety
    /// `slot` is an `Inner<T>` held by nobody else.
    unsafe fn free<T>(slot: NonNull<()>) {
        // SAFETY: as the caller promises; a spare's state is `EMPTY` (no value to drop).
        drop(unsafe { Box::from_raw(slot.cast::<Inner<T>>().as_ptr()) });
    }

    thread_local! {
        static SPARES: RefCell<[Spare; KEPT]> = const { RefCell::new([Spare::EMPTY; KEPT]) };
    }

    /// This thread's spare slot for `T`s, if it has one: held by nobody.
    #[inline]
    pub(super) fn take<T: 'static>() -> Option<NonNull<Inner<T>>> {
        let of = TypeId::of::<T>();
        SPARES
            .try_with(|spares| {
                let mut spares = spares.try_borrow_mut().ok()?;
                let place = spares
                    .iter_mut()
                    .find(|place| place.slot.is_some() && place.of == Some(of))?;
                // Out of the cache, and not freed with it.
                place.slot.take().map(NonNull::cast::<Inner<T>>)
            })
            .ok()
            .flatten()
    }

    /// Keeps `slot` (held by nobody else) for this thread's next slot of its type, in
    /// place of the oldest kind if all places are taken; frees it if the cache is busy or
    /// gone (the thread is ending).
    #[inline]
    pub(super) fn put<T: 'static>(slot: NonNull<Inner<T>>) {
        let kept = SPARES.try_with(|spares| {
            let Ok(mut spares) = spares.try_borrow_mut() else {
                return false;
            };
            let index = spares
                .iter()
                .position(|place| place.slot.is_none())
                .unwrap_or(KEPT - 1);
            let place = &mut spares[index];
            place.clear();
            place.of = Some(TypeId::of::<T>());
            place.free = free::<T>;
            place.slot = Some(slot.cast());
            true
        });
        if kept != Ok(true) {
            // SAFETY: held by nobody else, and not kept.
            unsafe { free::<T>(slot.cast()) }
        }
    }
}

#[cfg(test)]
mod tests;
