//! The outbound queue of one connection: three lanes, byte bounds, fragmentation and a
//! window on fragments in flight.
//!
//! * **Control** (heartbeats, member lists, fragment acknowledgements) goes first,
//!   always.
//! * **Small** messages are sent in FIFO order. They are appended to one buffer of frames,
//!   which the writer takes whole (swapping in its emptied buffer): one copy per message,
//!   no allocation, one write per batch.
//! * **Large** messages (over [`FRAGMENT_SIZE`] encoded) are cut into fragments, sent after
//!   the small messages of each batch. The receiver acknowledges the fragments it reads and
//!   at most [`FRAGMENT_WINDOW`](wire::FRAGMENT_WINDOW) bytes of them are unacknowledged, so the sockets' buffers
//!   never hold more than that in front of a small message: a small call is never stuck
//!   behind a 64 MiB message.
//!
//! Order is kept per sending process, as Erlang guarantees: a small message whose sender
//! still has a large message queued goes to the large lane, behind it. A signal sent by no
//! process (a demonitor when a waiter gives up, the answer to a peer's signal) goes behind
//! everything queued, so it never overtakes a signal it follows.
//!
//! Small and large messages are each bounded by `limit` bytes: past it, `try_push` refuses
//! (a cast then fails with `Overloaded`) and [`Outbound::push_waiting`] (a call, an awaited
//! cast) waits in line for room (see [`line`](mod@line)). A large message in flight thus never makes
//! small ones wait. One message larger than the limit is accepted when its lane is empty.
//!
//! A message larger than the peer takes (its max message size, said in the handshake) is
//! refused whatever the lanes hold, with [`PushError::TooLarge`]: the peer would close the
//! connection over it (see [`limit`](mod@limit)). Only a large frame can be, so a small
//! cast costs nothing for it, and a small reply or signal one compare.
//!
//! Replies are never refused for lack of room (a caller waits for each), but they are
//! counted, and so are the peer's calls that local handlers have yet to take (each will
//! add a reply): while the peer is behind in reading its replies (see
//! [`Outbound::holding_back`]), the connection's reader takes no more of the peer's
//! messages, so a peer that calls without reading its replies is held up in its own socket
//! instead of growing this queue.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use event_listener::Event;
use spin::mutex::{SpinMutex, SpinMutexGuard};

use super::spares::Spares;
use super::wire::{self, WireMessage, FRAGMENT_SIZE};
use crate::bytes::Lent;
use crate::node::executors;

mod apart;
mod batch;
mod frame;
mod limit;
mod line;
mod withdraw;

pub(crate) use frame::Frame;
use line::Line;
pub(crate) use withdraw::Queued;

/// While any reply waits to be sent, this many of the peer's calls waiting for a handler
/// hold its reader back (see [`Outbound::holding_back`]).
pub(crate) const OWED_WHILE_BEHIND: usize = 256;

/// This many of the peer's calls waiting for a handler hold its reader back in any case:
/// the replies a peer can have queued, should it stop reading, are those to at most this
/// many calls beyond the bound.
pub(crate) const OWED_MOST: usize = 1024;

/// `true` if a frame (with its length prefix) is sent in fragments.
pub(crate) fn is_large(frame: &[u8]) -> bool {
    is_large_len(frame.len())
}

/// `true` if a frame of `len` bytes (its length prefix included) is sent in fragments.
fn is_large_len(len: usize) -> bool {
    len > FRAGMENT_SIZE + 4
}

/// A message waiting in the large lane.
enum Large {
    /// A place kept for a message being encoded off the scheduler threads (see
    /// [`apart`]): what its sender queues meanwhile waits behind it.
    Encoding {
        slot: u64,
        sender: usize,
        /// A reply's place (counted as a reply once filled).
        reply: bool,
    },
    /// A small message held behind its sender's large one (a frame).
    Whole {
        frame: Vec<u8>,
        sender: usize,
        reply: bool,
        /// Its mark, if it may be taken back (see [`withdraw`]).
        mark: Option<u64>,
    },
    /// A large message being sent in fragments: a frame, sent up to `sent`.
    Fragmented {
        id: u64,
        frame: Frame,
        sent: usize,
        sender: usize,
        reply: bool,
        mark: Option<u64>,
    },
}

#[derive(Default)]
struct Lanes {
    /// Frames of control messages, and how many.
    control: Vec<u8>,
    control_count: usize,
    /// Frames of small messages, and how many.
    small: Vec<u8>,
    small_count: usize,
    large: VecDeque<Large>,
    /// How many entries each sender has in the large lane.
    senders_in_large: HashMap<usize, usize>,
    /// Bytes of small messages queued (wherever they wait).
    small_bytes: usize,
    /// Bytes of large messages not yet sent.
    large_bytes: usize,
    /// Places held for messages being encoded (see [`apart`]): the large lane has no
    /// room while there are any, their sizes being unknown.
    encoding: usize,
    /// Bytes of replies queued (wherever they wait, counted in the two above too), and
    /// those of them in the small lane.
    reply_bytes: usize,
    small_reply_bytes: usize,
    /// Bytes of fragments sent and not yet acknowledged.
    unacked: usize,
    /// Bytes of the peer's fragments received and not yet acknowledged: one
    /// `FragmentAck` per batch covers them all (so a peer cannot grow this queue by
    /// sending fragments while not reading).
    ack_due: u64,
    next_fragment: u64,
    /// The socket is being written: by the writer task (a batch), or by a sender (its
    /// frame, straight from its thread; see [`Outbound::claim_idle`]).
    writing: bool,
    /// The tail of a frame a sender wrote only in part: it goes out before anything else.
    partial: Vec<u8>,
    /// The senders waiting for room in each lane, and the next place in line.
    small_line: Line,
    large_line: Line,
    next_ticket: u64,
    closed: bool,
    /// Frames of large messages sent in full, for the node's spares (see `spares`).
    finished: Vec<Frame>,
    /// The frames of the small lane that may be taken back (see [`withdraw`]).
    small_marks: Vec<withdraw::SmallMark>,
    next_mark: u64,
    /// Once closed: the marks of the frames still queued then, never sent (see
    /// [`withdraw`]).
    unsent: Vec<u64>,
}

impl Lanes {
    /// Nothing to write.
    fn is_empty(&self) -> bool {
        self.partial.is_empty()
            && self.control_count == 0
            && self.small_count == 0
            && self.large.is_empty()
            && self.ack_due == 0
    }

    fn has_room(&self, large: bool, limit: usize) -> bool {
        if large && self.encoding > 0 {
            return false;
        }
        let bytes = if large {
            self.large_bytes
        } else {
            self.small_bytes
        };
        bytes == 0 || bytes < limit
    }

    /// Puts a frame in its lane (see the module docs), taking it out of `frame`. `reply`
    /// says whether it counts as a reply (see [`Outbound::holding_back`]); `behind_all`
    /// sends a small frame of no process (`sender` 0) behind everything already queued,
    /// as a signal must not overtake what was queued before it.
    ///
    /// Returns `false` if the writer need not be told: the frame joined small frames it
    /// has not taken yet, whose first one told it (see [`Outbound::try_push`]).
    #[inline]
    fn push(&mut self, frame: &mut Vec<u8>, sender: usize, reply: bool, behind_all: bool) -> bool {
        self.push_lent(frame, Lent::new(), sender, reply, behind_all)
    }

    /// [`push`](Self::push) for a frame that borrows `lent` (see [`Frame`]).
    #[inline]
    fn push_lent(
        &mut self,
        frame: &mut Vec<u8>,
        lent: Lent,
        sender: usize,
        reply: bool,
        behind_all: bool,
    ) -> bool {
        if !lent.is_empty() || is_large(frame) {
            let frame = Frame {
                own: std::mem::take(frame),
                lent,
            };
            if !is_large_len(frame.len()) {
                let mut whole = frame.into_vec();
                return self.push(&mut whole, sender, reply, behind_all);
            }
            let len = frame.len();
            let id = self.next_fragment;
            self.next_fragment += 1;
            self.large_bytes += len - 4;
            if reply {
                self.reply_bytes += len - 4;
            }
            *self.senders_in_large.entry(sender).or_default() += 1;
            self.large.push_back(Large::Fragmented {
                id,
                frame,
                sent: 4,
                sender,
                reply,
                mark: None,
            });
            true
        } else {
            // (Most of the time no sender has a large message queued: no hashing then.)
            let held = !self.senders_in_large.is_empty()
                && match self.senders_in_large.get_mut(&sender) {
                    Some(count) => {
                        *count += 1;
                        true
                    }
                    None => false,
                };
            let held = held
                || (behind_all && sender == 0 && !self.large.is_empty() && {
                    self.senders_in_large.insert(sender, 1);
                    true
                });
            if held {
                self.small_bytes += frame.len();
                if reply {
                    self.reply_bytes += frame.len();
                }
                let frame = std::mem::take(frame);
                self.large.push_back(Large::Whole {
                    frame,
                    sender,
                    reply,
                    mark: None,
                });
                true
            } else {
                self.push_small(frame, reply)
            }
        }
    }

    /// `true` if a small frame of any sender may go straight to the small lane: the queue
    /// is open, nobody waits for room, no sender has a message in the large lane (which a
    /// frame of that sender would wait behind), and the small lane has room.
    #[inline]
    fn clear_for_small(&self, limit: usize) -> bool {
        !self.closed
            && self.nobody_waits()
            && self.senders_in_large.is_empty()
            && self.has_room(false, limit)
    }

    /// Appends a small frame to the small lane (see [`clear_for_small`]), as `push` does;
    /// `true` if the writer must be told.
    ///
    /// [`clear_for_small`]: Self::clear_for_small
    #[inline]
    fn push_small(&mut self, frame: &mut Vec<u8>, reply: bool) -> bool {
        self.small_bytes += frame.len();
        self.small.extend_from_slice(frame);
        if reply {
            self.reply_bytes += frame.len();
            self.small_reply_bytes += frame.len();
        }
        frame.clear();
        let first = self.small_count == 0;
        self.small_count += 1;
        first
    }
}

/// Why a message was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The queue is full.
    Full,
    /// The connection is closed.
    Closed,
    /// The message is larger than the peer takes: it would close the connection over it.
    TooLarge {
        /// The message's size: its frame's bytes after the length prefix (what the peer
        /// measures).
        size: usize,
        /// The largest message the peer takes (see [`Outbound::taking`]).
        limit: usize,
    },
}

/// The outbound queue of one connection.
pub(crate) struct Outbound {
    lanes: SpinMutex<Lanes>,
    limit: usize,
    /// The largest message the peer takes (see [`limit`](mod@limit)).
    peer_takes: usize,
    /// `Lanes::reply_bytes`, for a look without the lock.
    replies: AtomicUsize,
    /// The peer's calls handed to local processes whose handlers have not taken them yet.
    owed: AtomicUsize,
    /// A local process the peer's messages went to is over its mailbox limit (see
    /// [`Outbound::hold_for_backlog`]).
    backlog: AtomicBool,
    /// The node's spare buffers, which the frames of large messages go back to.
    spares: Arc<Spares>,
    /// The scheduler thread (a key, 0 for none) of the last task that told the writer of
    /// work: where the writer would rather be (see `writer`).
    told_from: AtomicUsize,
    /// The scheduler thread the writer last started on (for tests of its moves).
    #[cfg(test)]
    pub(crate) writer_at: AtomicUsize,
    /// Work for the writer.
    work: Event,
    /// Room for senders (and for the reader, see [`Outbound::room_to_take`]).
    room: Event,
}

impl Outbound {
    pub(crate) fn new(limit: usize, spares: Arc<Spares>) -> Self {
        Outbound {
            lanes: SpinMutex::new(Lanes::default()),
            spares,
            limit,
            peer_takes: usize::MAX,
            replies: AtomicUsize::new(0),
            owed: AtomicUsize::new(0),
            backlog: AtomicBool::new(false),
            told_from: AtomicUsize::new(0),
            #[cfg(test)]
            writer_at: AtomicUsize::new(0),
            work: Event::new(),
            room: Event::new(),
        }
    }

    /// Takes the lanes' lock: held for a push, a take or a look — never across a write to
    /// the socket (see `crate::lock`).
    fn lock(&self) -> SpinMutexGuard<'_, Lanes> {
        crate::lock::patiently(&self.lanes)
    }

    /// Queues a control message (never refused for lack of room).
    pub(crate) fn push_control(&self, message: &WireMessage) -> Result<(), PushError> {
        let mut lanes = self.lock();
        if lanes.closed {
            return Err(PushError::Closed);
        }
        let lanes = &mut *lanes;
        if wire::encode_frame(message, &mut lanes.control).is_ok() {
            lanes.control_count += 1;
        }
        self.work.notify(1);
        Ok(())
    }

    /// Queues a frame from `sender` (a process key, 0 for none) if there is room and
    /// nobody waits for it (see [`line`](mod@line)). A queued frame is taken out of `frame` (which
    /// keeps its allocation if it was copied); a refused one is left there.
    pub(crate) fn try_push(&self, frame: &mut Vec<u8>, sender: usize) -> Result<(), PushError> {
        let large = is_large(frame);
        let mut lanes = self.lock();
        let tell = if !large && lanes.clear_for_small(self.limit) {
            // Nothing in the way (what nearly every cast finds): straight to the small lane.
            lanes.push_small(frame, false)
        } else {
            if lanes.closed {
                return Err(PushError::Closed);
            }
            if large {
                self.check_size(frame.len())?;
            }
            if !lanes.may_queue(large, sender, None, self.limit) {
                return Err(PushError::Full);
            }
            lanes.push(frame, sender, false, false)
        };
        drop(lanes);
        // Only the first small frame since the writer last took them tells it (a notify
        // is a fence and a lock): whoever queued that one woke the writer, which takes
        // them all. (A writer busy writing looks again when done: see `written`.)
        if tell {
            self.tell_writer();
        }
        Ok(())
    }

    /// Wakes the writer for the first frame queued since it last took them.
    #[inline]
    pub(super) fn tell_writer(&self) {
        self.told_from
            .store(executors::current_scheduler(), Ordering::Relaxed);
        self.work.notify(1);
    }

    /// The scheduler thread of the task that last woke the writer for a frame (0: none of a
    /// scheduler's).
    pub(crate) fn told_from(&self) -> usize {
        self.told_from.load(Ordering::Relaxed)
    }

    /// Queues a signal (a link, monitor or exit signal between processes) whatever the queue
    /// holds: signals are small, and a process's end must not be lost to a full queue. A
    /// signal of no process (`sender` 0) goes behind everything queued before it.
    pub(crate) fn push_signal(&self, frame: &mut Vec<u8>, sender: usize) -> Result<(), PushError> {
        self.push_unrefused(frame, sender, false, true)
    }

    /// Queues a reply whatever the queue holds: a reply is never lost to a full queue (only
    /// one larger than the peer takes is refused, [`PushError::TooLarge`]).
    /// Replies are bounded by the reader instead, which stops taking the peer's messages
    /// while [`holding_back`](Self::holding_back). The answers the peer's signals provoke
    /// (a `Down` for a monitor of a process that is not running...) are replies too.
    pub(crate) fn push_reply(&self, frame: &mut Vec<u8>, sender: usize) -> Result<(), PushError> {
        self.push_unrefused(frame, sender, true, false)
    }

    /// Queues the answer to a signal of the peer, as a reply (counted) that goes behind
    /// everything queued before it, like a signal.
    pub(crate) fn push_answer(&self, frame: &mut Vec<u8>) -> Result<(), PushError> {
        self.push_unrefused(frame, 0, true, true)
    }

    fn push_unrefused(
        &self,
        frame: &mut Vec<u8>,
        sender: usize,
        reply: bool,
        behind_all: bool,
    ) -> Result<(), PushError> {
        self.check_size(frame.len())?;
        let mut lanes = self.lock();
        if lanes.closed {
            return Err(PushError::Closed);
        }
        let tell = lanes.push(frame, sender, reply, behind_all);
        if reply {
            self.replies.store(lanes.reply_bytes, Ordering::Relaxed);
        }
        drop(lanes);
        if tell {
            self.tell_writer();
        }
        Ok(())
    }

    /// The bound on bytes queued (of each lane, and of replies).
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// A call from the peer was handed to a local process.
    pub(crate) fn owe_reply(&self) {
        self.owed.fetch_add(1, Ordering::Relaxed);
    }

    /// A call from the peer was taken by its handler (or dropped untaken).
    pub(crate) fn reply_owed_taken(&self) {
        let owed = self.owed.fetch_sub(1, Ordering::Relaxed);
        if owed == OWED_WHILE_BEHIND || owed == OWED_MOST {
            self.room.notify(usize::MAX);
        }
    }

    /// `true` while the peer is behind in reading its replies — they reach the limit, or
    /// some wait to be sent while [`OWED_WHILE_BEHIND`] of its calls still wait for a
    /// handler (each will add a reply) — or while [`OWED_MOST`] of its calls wait for a
    /// handler (its calls come faster than they are taken) — or while a local process
    /// its messages went to is over its mailbox limit ([`hold_for_backlog`]). The
    /// connection's reader then takes no more of its messages, so the replies queued stay
    /// within the limit plus the replies to at most `OWED_MOST` calls. A cheap look, for
    /// every frame the reader reads.
    ///
    /// [`hold_for_backlog`]: Self::hold_for_backlog
    #[inline]
    pub(crate) fn holding_back(&self) -> bool {
        let replies = self.replies.load(Ordering::Relaxed);
        let owed = self.owed.load(Ordering::Relaxed);
        replies >= self.limit
            || (replies > 0 && owed >= OWED_WHILE_BEHIND)
            || owed >= OWED_MOST
            || self.backlog.load(Ordering::Relaxed)
    }

    /// Holds the reader back while a local process is behind on the peer's messages, until
    /// [`backlog_cleared`](Self::backlog_cleared). `false` if it was held for that already.
    pub(crate) fn hold_for_backlog(&self) -> bool {
        !self.backlog.swap(true, Ordering::Relaxed)
    }

    /// The process is no longer behind: the reader may take the peer's messages again.
    pub(crate) fn backlog_cleared(&self) {
        self.backlog.store(false, Ordering::Relaxed);
        self.room.notify(usize::MAX);
    }

    /// Waits until the reader may take the peer's messages again (or the queue closes).
    pub(crate) async fn room_to_take(&self) {
        loop {
            let listener = self.room.listen();
            if !self.holding_back() || self.lock().closed {
                return;
            }
            listener.await;
        }
    }

    /// Records that `bytes` of the peer's fragments were received: acknowledged with the
    /// next batch.
    pub(crate) fn owe_ack(&self, bytes: usize) {
        let mut lanes = self.lock();
        if lanes.closed {
            return;
        }
        lanes.ack_due += bytes as u64;
        drop(lanes);
        self.work.notify(1);
    }

    /// The peer acknowledged `bytes` of fragments.
    pub(crate) fn acknowledged(&self, bytes: usize) {
        let mut lanes = self.lock();
        lanes.unacked = lanes.unacked.saturating_sub(bytes);
        drop(lanes);
        self.work.notify(1);
    }

    /// Closes the queue: pushes fail from now on, the writer stops, waiters wake.
    pub(crate) fn close(&self) {
        let mut lanes = self.lock();
        *lanes = Lanes {
            closed: true,
            unsent: lanes.marked(),
            ..Lanes::default()
        };
        self.replies.store(0, Ordering::Relaxed);
        drop(lanes);
        self.work.notify(usize::MAX);
        self.room.notify(usize::MAX);
    }

    /// Claims the socket for one frame that its sender writes itself, from its own thread:
    /// granted only when nothing is queued, being written or waiting for room (the frame
    /// is next in line anyway, so order is kept), and until [`release`](Self::release).
    pub(crate) fn claim_idle(&self) -> bool {
        let mut lanes = self.lock();
        let idle = !lanes.closed && !lanes.writing && lanes.is_empty() && lanes.nobody_waits();
        if idle {
            lanes.writing = true;
        }
        idle
    }

    /// Ends a claim. `rest` is what the socket did not take of the frame: it goes out
    /// first, before anything queued meanwhile.
    pub(crate) fn release(&self, rest: &[u8]) {
        let mut lanes = self.lock();
        lanes.writing = false;
        if lanes.closed {
            return;
        }
        lanes.partial.extend_from_slice(rest);
        let work = !lanes.is_empty();
        drop(lanes);
        if work {
            self.work.notify(1);
        }
    }

    /// Bytes of user messages queued.
    pub(crate) fn queued_bytes(&self) -> usize {
        let lanes = self.lock();
        lanes.small_bytes + lanes.large_bytes
    }

    /// The node's spare buffers.
    pub(crate) fn spares(&self) -> &Arc<Spares> {
        &self.spares
    }
}

#[cfg(test)]
mod tests;
