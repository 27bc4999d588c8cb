//! The mailbox: a multi-producer, single-consumer queue of one process's messages.
//!
//! Senders push under a short spin lock; the process takes everything queued in one swap and
//! works through that batch without touching the lock again, so a busy process pays one
//! lock per batch rather than one per message. Once closed (the process ended), pushes fail
//! and hand the message back, which is how senders learn `NoProc`.

use spin::mutex::{SpinMutex, SpinMutexGuard};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A closable FIFO of messages of type `M`.
pub(crate) struct Mailbox<M> {
    shared: SpinMutex<Shared<M>>,
    /// Set by a push, cleared when the consumer takes the queue: lets the consumer check for
    /// work without the lock.
    queued: AtomicBool,
    /// How many messages the consumer has taken so far, updated once per take: with the
    /// count it has handled, how many it holds (for introspection) — without a write per
    /// message to the cache line that senders on other threads lock. An entry that
    /// carries several messages has those beyond the first counted here as it is queued.
    /// Written under the lock only.
    taken: AtomicU64,
    /// The queue's buffer may be larger than [`KEEP_CAPACITY`] (known at each take).
    large: AtomicBool,
    /// Set once the process has ended; read and written under the lock only (an atomic
    /// beside the locked queue rather than in it: that packs with the flags above).
    closed: AtomicBool,
}

struct Shared<M> {
    queue: VecDeque<M>,
}

/// A batch larger than this is released when the mailbox runs dry, so a burst does not
/// pin its memory for the rest of the process's life.
const KEEP_CAPACITY: usize = 64;

/// The most messages to push at once with [`Mailbox::push_all`]: the buffers such runs go
/// through then stay within what the consumer keeps when it goes idle.
pub(crate) const RUN_MOST: usize = KEEP_CAPACITY;

impl<M> Mailbox<M> {
    pub(crate) fn new() -> Self {
        Mailbox {
            shared: SpinMutex::new(Shared {
                queue: VecDeque::new(),
            }),
            queued: AtomicBool::new(false),
            taken: AtomicU64::new(0),
            large: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// Takes the lock, held for a push or a swap: a few nanoseconds (see `crate::lock`).
    fn lock(&self) -> SpinMutexGuard<'_, Shared<M>> {
        crate::lock::patiently(&self.shared)
    }

    /// Appends `msg`, or hands it back if the mailbox is closed. Returns `true` if the
    /// consumer must be woken: only the first message since it last took the queue needs
    /// to (whoever pushed that one wakes it, and it takes them all).
    ///
    /// [`push_several`](Self::push_several) without the count, written out: every local
    /// call and cast comes through here, and calling that one instead changed what the
    /// compiler inlined around it (~45 more instructions a local call, callgrind).
    pub(crate) fn push(&self, msg: M) -> Result<bool, M> {
        let mut shared = self.lock();
        if self.closed.load(Ordering::Relaxed) {
            return Err(msg);
        }
        shared.queue.push_back(msg);
        // Written only under the lock: a load and a store, not a read-modify-write.
        let first = !self.queued.load(Ordering::Relaxed);
        if first {
            self.queued.store(true, Ordering::Release);
        }
        Ok(first)
    }

    /// Appends `msg`, an entry that carries `count` (at least one) messages — which the
    /// consumer counts as handled one by one — or hands it back if the mailbox is closed.
    /// Returns `true` if the consumer must be woken (see [`push`](Self::push)).
    pub(crate) fn push_several(&self, msg: M, count: usize) -> Result<bool, M> {
        let mut shared = self.lock();
        if self.closed.load(Ordering::Relaxed) {
            return Err(msg);
        }
        shared.queue.push_back(msg);
        // The messages beyond the first are counted as taken at once (the entry itself is
        // when it is): queued and taken together still count each message once. Under the
        // lock, as every write of `taken`.
        let taken = self.taken.load(Ordering::Relaxed) + count.saturating_sub(1) as u64;
        self.taken.store(taken, Ordering::Relaxed);
        let first = !self.queued.load(Ordering::Relaxed);
        if first {
            self.queued.store(true, Ordering::Release);
        }
        Ok(first)
    }

    /// Appends every message of `run`, in order, under one lock — or, if the mailbox is
    /// closed, drops them (`Err`). Returns `true` if the consumer must be woken (see
    /// [`push`](Self::push)). `run` is left empty, with a buffer for the next run: its
    /// own, or the queue's if the queue was empty (then the two swap, and nothing is
    /// copied). A run of at most [`RUN_MOST`] messages allocates nothing once the buffers
    /// have grown to that.
    pub(crate) fn push_all(&self, run: &mut VecDeque<M>) -> Result<bool, ()> {
        let mut shared = self.lock();
        if self.closed.load(Ordering::Relaxed) {
            drop(shared);
            run.clear();
            return Err(());
        }
        if shared.queue.is_empty() {
            std::mem::swap(&mut shared.queue, run);
        } else {
            shared.queue.append(run);
        }
        let first = !self.queued.load(Ordering::Relaxed);
        if first {
            self.queued.store(true, Ordering::Release);
        }
        Ok(first)
    }

    /// Moves every queued message to the back of `batch` (which the consumer owns).
    pub(crate) fn take_into(&self, batch: &mut VecDeque<M>) {
        // Nothing pushed since the last take: no need for the lock. (A push under way
        // sets `queued` after this look and then wakes the consumer.)
        if !self.queued.load(Ordering::Acquire) {
            return;
        }
        let mut shared = self.lock();
        self.queued.store(false, Ordering::Relaxed);
        let taken = self.taken.load(Ordering::Relaxed) + shared.queue.len() as u64;
        self.taken.store(taken, Ordering::Relaxed);
        if batch.is_empty() {
            std::mem::swap(&mut shared.queue, batch);
        } else {
            batch.append(&mut shared.queue);
        }
        self.large
            .store(shared.queue.capacity() > KEEP_CAPACITY, Ordering::Relaxed);
    }

    /// Releases the memory of a burst once the consumer has nothing left to do: both
    /// buffers (the queue, and the consumer's `batch`) keep their capacity while messages
    /// keep coming, and go back to nothing when it goes idle with more than
    /// [`KEEP_CAPACITY`].
    pub(crate) fn trim(&self, batch: &mut VecDeque<M>) {
        if batch.capacity() > KEEP_CAPACITY {
            *batch = VecDeque::new();
        }
        if !self.large.load(Ordering::Relaxed) {
            return;
        }
        self.large.store(false, Ordering::Relaxed);
        let mut shared = self.lock();
        if shared.queue.is_empty() && shared.queue.capacity() > KEEP_CAPACITY {
            let burst = std::mem::take(&mut shared.queue);
            drop(shared);
            drop(burst);
        }
    }

    /// `true` if messages were pushed since the consumer last took the queue.
    pub(crate) fn has_queued(&self) -> bool {
        self.queued.load(Ordering::Acquire)
    }

    /// Messages queued and not yet taken, and how many the consumer has taken since the
    /// mailbox was made: read together, so that a take in between cannot hide its batch
    /// from both.
    pub(crate) fn queued_and_taken(&self) -> (usize, u64) {
        let shared = self.lock();
        (shared.queue.len(), self.taken.load(Ordering::Relaxed))
    }

    /// Closes the mailbox and returns what was still queued. Later pushes fail.
    pub(crate) fn close(&self) -> VecDeque<M> {
        let mut shared = self.lock();
        self.closed.store(true, Ordering::Relaxed);
        std::mem::take(&mut shared.queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_fifo_order_across_takes() {
        let mailbox = Mailbox::new();
        let mut batch = VecDeque::new();
        mailbox.push(1).unwrap();
        mailbox.push(2).unwrap();
        mailbox.take_into(&mut batch);
        mailbox.push(3).unwrap();
        mailbox.take_into(&mut batch);
        assert_eq!(batch.into_iter().collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn only_the_first_message_since_the_last_take_wakes_the_consumer() {
        let mailbox = Mailbox::new();
        let mut batch = VecDeque::new();
        assert_eq!(mailbox.push(1), Ok(true));
        assert_eq!(mailbox.push(2), Ok(false));
        mailbox.take_into(&mut batch);
        assert_eq!(mailbox.push(3), Ok(true));
    }

    #[test]
    fn a_burst_keeps_its_buffers_until_the_consumer_goes_idle() {
        let mailbox = Mailbox::new();
        let mut batch = VecDeque::new();
        for round in 0..3 {
            for n in 0..1_000 {
                mailbox.push(round * 1_000 + n).unwrap();
            }
            mailbox.take_into(&mut batch);
            assert_eq!(batch.len(), 1_000);
            batch.clear();
            // Busy: the next burst finds both buffers grown.
            assert!(mailbox.lock().queue.capacity() >= 1_000 || round == 0);
        }
        mailbox.trim(&mut batch);
        assert!(batch.capacity() <= KEEP_CAPACITY);
        assert!(mailbox.lock().queue.capacity() <= KEEP_CAPACITY);
    }

    #[test]
    fn senders_on_several_threads_lose_nothing_and_keep_their_order() {
        const EACH: u32 = 50_000;
        let mailbox = std::sync::Arc::new(Mailbox::new());
        let senders: Vec<_> = (0..2u32)
            .map(|sender| {
                let mailbox = mailbox.clone();
                std::thread::spawn(move || {
                    for n in 0..EACH {
                        mailbox.push((sender, n)).unwrap();
                    }
                })
            })
            .collect();
        let mut next = [0u32; 2];
        let mut batch = VecDeque::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while next != [EACH; 2] {
            assert!(
                std::time::Instant::now() < deadline,
                "messages lost: {next:?} of {EACH} each arrived"
            );
            mailbox.take_into(&mut batch);
            for (sender, n) in batch.drain(..) {
                assert_eq!(
                    n, next[sender as usize],
                    "sender {sender}'s messages in order"
                );
                next[sender as usize] += 1;
            }
            std::thread::yield_now();
        }
        for sender in senders {
            sender.join().unwrap();
        }
    }

    #[test]
    fn a_run_keeps_its_order_among_single_pushes_and_wakes_once() {
        let mailbox = Mailbox::new();
        let mut run: VecDeque<_> = [2, 3, 4].into();
        assert_eq!(mailbox.push(1), Ok(true));
        assert_eq!(mailbox.push_all(&mut run), Ok(false));
        assert!(run.is_empty());
        let mut batch = VecDeque::new();
        mailbox.take_into(&mut batch);
        run.extend([5, 6]);
        assert_eq!(mailbox.push_all(&mut run), Ok(true));
        mailbox.take_into(&mut batch);
        assert_eq!(
            batch.into_iter().collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 6]
        );
        mailbox.close();
        run.extend([7]);
        assert_eq!(mailbox.push_all(&mut run), Err(()));
        assert!(run.is_empty());
    }

    #[test]
    fn an_entry_of_several_messages_counts_them_all_queued_and_taken() {
        let mailbox = Mailbox::new();
        let counted = |mailbox: &Mailbox<&str>| {
            let (queued, taken) = mailbox.queued_and_taken();
            queued as u64 + taken
        };
        mailbox.push("one").unwrap();
        assert_eq!(mailbox.push_several("twenty", 20), Ok(false));
        assert_eq!(counted(&mailbox), 21, "each message once, queued or taken");
        let mut batch = VecDeque::new();
        mailbox.take_into(&mut batch);
        assert_eq!(batch.len(), 2);
        assert_eq!(mailbox.queued_and_taken(), (0, 21));
        mailbox.push_several("three", 3).unwrap();
        assert_eq!(counted(&mailbox), 24);
        mailbox.close();
        assert_eq!(mailbox.push_several("late", 2), Err("late"));
    }

    #[test]
    fn push_after_close_hands_the_message_back() {
        let mailbox = Mailbox::new();
        mailbox.push("queued").unwrap();
        let left = mailbox.close();
        assert_eq!(left.into_iter().collect::<Vec<_>>(), vec!["queued"]);
        assert_eq!(mailbox.push("late"), Err("late"));
    }
}
