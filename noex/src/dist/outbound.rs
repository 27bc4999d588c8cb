//! The outbound queue of one connection: three lanes, a byte bound, and fragmentation.
//!
//! * **Control** (heartbeats, member lists, goodbye) goes first, always.
//! * **Small** messages are sent in FIFO order, batched into few writes.
//! * **Large** messages (over [`FRAGMENT_SIZE`] encoded) are cut into fragments; one
//!   fragment goes out per batch, between the small messages, so a small call is never
//!   stuck behind a 64 MiB message.
//!
//! Order is kept per sending process, as Erlang guarantees: a small message whose sender
//! still has a large message queued goes to the large lane, behind it.
//!
//! The queue holds at most `limit` bytes of user messages: past it, `try_push` refuses
//! (a cast then fails with `Overloaded`) and `push` waits for room (a call waits up to its
//! timeout). One message larger than the limit is accepted into an empty queue.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use event_listener::Event;

use super::wire::{self, WireMessage, FRAGMENT_SIZE};

/// Bytes written per batch, at most (one large fragment may add to it).
const BATCH: usize = 256 * 1024;

/// A message waiting in the large lane.
enum Large {
    /// A small message held behind its sender's large one.
    Whole { frame: Vec<u8>, sender: usize },
    /// A large message being sent in fragments.
    Fragmented {
        id: u64,
        body: Vec<u8>,
        sent: usize,
        sender: usize,
    },
}

#[derive(Default)]
struct Lanes {
    control: VecDeque<Vec<u8>>,
    small: VecDeque<Vec<u8>>,
    large: VecDeque<Large>,
    /// How many entries each sender has in the large lane.
    senders_in_large: HashMap<usize, usize>,
    /// Bytes of user messages queued.
    bytes: usize,
    next_fragment: u64,
    closed: bool,
}

impl Lanes {
    /// Puts a message in its lane (see the module docs).
    fn push(&mut self, body: Vec<u8>, sender: usize) {
        if body.len() > FRAGMENT_SIZE {
            let id = self.next_fragment;
            self.next_fragment += 1;
            *self.senders_in_large.entry(sender).or_default() += 1;
            self.large.push_back(Large::Fragmented {
                id,
                body,
                sent: 0,
                sender,
            });
        } else {
            let frame = with_prefix(&body);
            match self.senders_in_large.get_mut(&sender) {
                Some(count) => {
                    *count += 1;
                    self.large.push_back(Large::Whole { frame, sender });
                }
                None => self.small.push_back(frame),
            }
        }
    }
}

/// Why a message was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The queue is full.
    Full,
    /// The connection is closed.
    Closed,
}

/// The outbound queue of one connection.
pub(crate) struct Outbound {
    lanes: Mutex<Lanes>,
    limit: usize,
    /// Work for the writer.
    work: Event,
    /// Room for senders.
    room: Event,
}

impl Outbound {
    pub(crate) fn new(limit: usize) -> Self {
        Outbound {
            lanes: Mutex::new(Lanes::default()),
            limit,
            work: Event::new(),
            room: Event::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a control message (never refused for lack of room).
    pub(crate) fn push_control(&self, message: &WireMessage) -> Result<(), PushError> {
        let mut frame = Vec::new();
        if wire::encode_frame(message, &mut frame).is_err() {
            return Ok(());
        }
        let mut lanes = self.lock();
        if lanes.closed {
            return Err(PushError::Closed);
        }
        lanes.control.push_back(frame);
        drop(lanes);
        self.work.notify(1);
        Ok(())
    }

    /// Queues an encoded message from `sender` (a process key, 0 for none) if there is room.
    pub(crate) fn try_push(
        &self,
        body: Vec<u8>,
        sender: usize,
    ) -> Result<(), (PushError, Vec<u8>)> {
        let mut lanes = self.lock();
        if lanes.closed {
            return Err((PushError::Closed, body));
        }
        if lanes.bytes >= self.limit && lanes.bytes > 0 {
            return Err((PushError::Full, body));
        }
        lanes.bytes += body.len();
        lanes.push(body, sender);
        drop(lanes);
        self.work.notify(1);
        Ok(())
    }

    /// Queues an encoded message whatever the queue holds (replies: they are bounded by
    /// the calls in flight, and must not be lost to a full queue).
    pub(crate) fn force_push(&self, body: Vec<u8>, sender: usize) -> Result<(), PushError> {
        let mut lanes = self.lock();
        if lanes.closed {
            return Err(PushError::Closed);
        }
        lanes.bytes += body.len();
        lanes.push(body, sender);
        drop(lanes);
        self.work.notify(1);
        Ok(())
    }

    /// Waits until there is room for a message (or the queue closes).
    pub(crate) async fn room(&self) {
        loop {
            let listener = self.room.listen();
            {
                let lanes = self.lock();
                if lanes.closed || lanes.bytes < self.limit {
                    return;
                }
            }
            listener.await;
        }
    }

    /// Closes the queue: pushes fail from now on, the writer stops, waiters wake.
    pub(crate) fn close(&self) {
        let mut lanes = self.lock();
        lanes.closed = true;
        lanes.control.clear();
        lanes.small.clear();
        lanes.large.clear();
        lanes.bytes = 0;
        drop(lanes);
        self.work.notify(usize::MAX);
        self.room.notify(usize::MAX);
    }

    /// Bytes of user messages queued.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Waits for the next batch of frames to write, appending them to `batch`; returns how
    /// many messages it holds, or `None` once the queue is closed.
    pub(crate) async fn next_batch(&self, batch: &mut Vec<u8>) -> Option<usize> {
        loop {
            let listener = self.work.listen();
            match self.take_batch(batch) {
                Taken::Closed => return None,
                Taken::Messages(0) => listener.await,
                Taken::Messages(n) => return Some(n),
            }
        }
    }

    fn take_batch(&self, batch: &mut Vec<u8>) -> Taken {
        let mut lanes = self.lock();
        if lanes.closed {
            return Taken::Closed;
        }
        let mut messages = 0;
        while let Some(frame) = lanes.control.pop_front() {
            batch.extend_from_slice(&frame);
            messages += 1;
        }
        let mut freed = 0;
        while batch.len() < BATCH {
            let Some(frame) = lanes.small.pop_front() else {
                break;
            };
            freed += frame.len() - 4;
            batch.extend_from_slice(&frame);
            messages += 1;
        }
        if let Some(head) = lanes.large.front_mut() {
            let (done, sender) = match head {
                Large::Whole { frame, sender } => {
                    freed += frame.len() - 4;
                    batch.extend_from_slice(frame);
                    messages += 1;
                    (true, *sender)
                }
                Large::Fragmented {
                    id,
                    body,
                    sent,
                    sender,
                } => {
                    let end = (*sent + FRAGMENT_SIZE).min(body.len());
                    let last = end == body.len();
                    let fragment = WireMessage::Fragment {
                        id: *id,
                        last,
                        bytes: body[*sent..end].to_vec(),
                    };
                    freed += end - *sent;
                    *sent = end;
                    // A fragment always encodes (plain bytes).
                    let _ = wire::encode_frame(&fragment, batch);
                    if last {
                        messages += 1;
                    }
                    (last, *sender)
                }
            };
            if done {
                lanes.large.pop_front();
                if let Some(count) = lanes.senders_in_large.get_mut(&sender) {
                    *count -= 1;
                    if *count == 0 {
                        lanes.senders_in_large.remove(&sender);
                    }
                }
            }
        }
        lanes.bytes = lanes.bytes.saturating_sub(freed);
        drop(lanes);
        if freed > 0 {
            self.room.notify(usize::MAX);
        }
        // A fragment alone counts as progress too.
        Taken::Messages(if batch.is_empty() { 0 } else { messages.max(1) })
    }
}

enum Taken {
    Closed,
    Messages(usize),
}

/// `body` with its frame length prefix.
fn with_prefix(body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(body);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(len: usize, fill: u8) -> Vec<u8> {
        vec![fill; len]
    }

    /// Splits a batch into frame bodies.
    fn frames(mut batch: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !batch.is_empty() {
            let len = u32::from_be_bytes(batch[..4].try_into().unwrap()) as usize;
            out.push(batch[4..4 + len].to_vec());
            batch = &batch[4 + len..];
        }
        out
    }

    #[test]
    fn small_messages_pass_a_large_one_of_another_sender() {
        let queue = Outbound::new(usize::MAX);
        queue.try_push(body(3 * FRAGMENT_SIZE, 1), 1).unwrap();
        queue.try_push(body(10, 2), 2).unwrap();
        let mut batch = Vec::new();
        queue.take_batch(&mut batch);
        let sent = frames(&batch);
        // The small message and the first fragment.
        assert_eq!(sent[0], body(10, 2));
        assert!(matches!(
            wire::decode(&sent[1]),
            Ok(WireMessage::Fragment { last: false, .. })
        ));
    }

    #[test]
    fn a_senders_small_message_waits_behind_its_own_large_one() {
        let queue = Outbound::new(usize::MAX);
        queue.try_push(body(2 * FRAGMENT_SIZE, 1), 1).unwrap();
        queue.try_push(body(10, 2), 1).unwrap();
        let mut bodies = Vec::new();
        for _ in 0..4 {
            let mut batch = Vec::new();
            queue.take_batch(&mut batch);
            bodies.extend(frames(&batch));
        }
        let kinds: Vec<_> = bodies
            .iter()
            .map(|b| matches!(wire::decode(b), Ok(WireMessage::Fragment { .. })))
            .collect();
        assert_eq!(kinds, vec![true, true, false]);
        assert_eq!(bodies[2], body(10, 2));
    }

    #[test]
    fn a_full_queue_refuses_until_the_writer_takes() {
        let queue = Outbound::new(100);
        queue.try_push(body(60, 1), 0).unwrap();
        queue.try_push(body(60, 1), 0).unwrap();
        assert_eq!(
            queue.try_push(body(1, 1), 0).unwrap_err().0,
            PushError::Full
        );
        let mut batch = Vec::new();
        queue.take_batch(&mut batch);
        assert_eq!(queue.queued_bytes(), 0);
        queue.try_push(body(1, 1), 0).unwrap();
        queue.close();
        assert_eq!(
            queue.try_push(body(1, 1), 0).unwrap_err().0,
            PushError::Closed
        );
    }
}
