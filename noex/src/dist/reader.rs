//! The reading side of a connection: frames are read, reassembled from fragments and
//! handed to the local processes (or to the callers waiting for replies) they are for.
//!
//! The reader follows its deliveries: once they settle on processes of another scheduler
//! thread, it moves there (see [`Follow`]), so that handing a message over wakes no other
//! thread.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use async_net::TcpStream;
use futures_lite::io::BufReader;
use futures_lite::AsyncBufReadExt;
use smol::future::yield_now;

use super::cluster::Cluster;
use super::config::NodeDownReason;
use super::peer::{report, Counters, Peer, YIELD_BYTES};
use super::remote::{Payload, Resolver};
use super::wire::{self, WireError, WireMessage};
use crate::node::{executors, NodeInner};

/// The reader yields after this many frames (or [`YIELD_BYTES`]).
const YIELD_FRAMES: u32 = 128;

/// What the reader counted and has not yet added to the connection's counters.
#[derive(Default)]
struct Unreported {
    bytes: u64,
    messages: u64,
}

impl Unreported {
    fn report(&mut self, counters: &Counters) {
        if self.bytes > 0 {
            Counters::add(&counters.bytes_received, std::mem::take(&mut self.bytes));
        }
        if self.messages > 0 {
            Counters::add(
                &counters.messages_received,
                std::mem::take(&mut self.messages),
            );
        }
    }
}

/// Ends the connection because of `error`, read or decoded.
fn read_failed(cluster: &Weak<Cluster>, peer: &Arc<Peer>, error: WireError) {
    let text = error.to_string();
    let reason = match error {
        WireError::Io(_) => NodeDownReason::ConnectionClosed,
        _ => NodeDownReason::ProtocolError(text.clone()),
    };
    report(cluster, peer, reason, &text);
}

pub(super) async fn reader(cluster: Weak<Cluster>, peer: Arc<Peer>) {
    let (max_frame, max_message) = match cluster.upgrade() {
        Some(c) => (c.config.max_frame_size, c.config.max_message_size),
        None => return,
    };
    let state = ReaderState {
        stream: BufReader::with_capacity(64 * 1024, peer.stream.clone()),
        buffer: Vec::new(),
        reading: Reading {
            peer: peer.clone(),
            max_message,
            assembling: None,
            unreported: Unreported::default(),
            resolver: Resolver::default(),
            follow: Follow::default(),
        },
        max_frame,
    };
    read(cluster, state).await;
}

/// What a connection's reader holds, all of which moves with it to another thread.
struct ReaderState {
    stream: BufReader<TcpStream>,
    buffer: Vec<u8>,
    reading: Reading,
    max_frame: usize,
}

/// Reads and handles frames until the connection ends — or until the deliveries settle on
/// another scheduler thread: the reader then goes on in a task there (see [`Follow`]).
async fn read(cluster: Weak<Cluster>, mut state: ReaderState) {
    let ended = loop {
        let destination = match read_until_moved(&cluster, &mut state).await {
            Ok(destination) => destination,
            Err(ended) => break ended,
        };
        let Some(node) = cluster.upgrade().and_then(|c| c.node()) else {
            return;
        };
        match move_reader(&node, destination, cluster.clone(), state) {
            None => return,
            // Not one of this node's threads (a caller of another node in this process).
            Some(kept) => state = kept,
        }
    };
    let peer = state.reading.peer.clone();
    match ended {
        Ended::Read(error) => read_failed(&cluster, &peer, error),
        Ended::Down(reason) => {
            let text = reason.to_string();
            report(&cluster, &peer, reason, &text);
        }
        Ended::Gone => {}
    }
}

/// Goes on reading in a task on the thread of `scheduler`, or hands the state back if that
/// is not one of `node`'s threads. (A plain function, so that the reader's future does not
/// contain itself.)
fn move_reader(
    node: &NodeInner,
    scheduler: usize,
    cluster: Weak<Cluster>,
    state: ReaderState,
) -> Option<ReaderState> {
    if !node.executors.is_scheduler(scheduler) {
        return Some(state);
    }
    let moved = node
        .executors
        .spawn_on_scheduler(scheduler, read(cluster, state));
    if let Some(task) = moved {
        task.detach();
    }
    None
}

/// The reader's loop, until the connection ends (`Err`) or the reader should move to the
/// thread of another scheduler (`Ok`, its key).
async fn read_until_moved(
    cluster: &Weak<Cluster>,
    state: &mut ReaderState,
) -> Result<usize, Ended> {
    let ReaderState {
        stream,
        buffer,
        reading,
        max_frame,
    } = state;
    let max_frame = *max_frame;
    let (mut frames, mut bytes) = (0u32, 0usize);
    loop {
        let cluster_now = cluster.upgrade().ok_or(Ended::Gone)?;
        // A frame that lies whole in the read buffer is handled where it lies; one that
        // does not is read (copied) into `buffer`.
        let len = match buffered_frame(stream.buffer(), max_frame).map_err(Ended::Read)? {
            Some(len) => {
                let handled = reading.frame(&cluster_now, &stream.buffer()[4..4 + len]);
                stream.consume(4 + len);
                handled?;
                len
            }
            None => {
                if stream.buffer().is_empty() {
                    // The read may wait: bring the counters up to date first.
                    reading.unreported.report(&reading.peer.counters);
                }
                drop(cluster_now);
                wire::read_frame(stream, max_frame, buffer)
                    .await
                    .map_err(Ended::Read)?;
                let cluster_now = cluster.upgrade().ok_or(Ended::Gone)?;
                reading.frame(&cluster_now, buffer)?;
                buffer.len()
            }
        };
        if let Some(destination) = reading.follow.destination() {
            reading.unreported.report(&reading.peer.counters);
            return Ok(destination);
        }
        frames += 1;
        bytes += len;
        if frames >= YIELD_FRAMES || bytes >= YIELD_BYTES {
            (frames, bytes) = (0, 0);
            reading.unreported.report(&reading.peer.counters);
            yield_now().await;
        }
    }
}

/// The length of the frame at the start of `buffered` if it lies there whole; an error if
/// its length prefix exceeds `max`.
fn buffered_frame(buffered: &[u8], max: usize) -> Result<Option<usize>, WireError> {
    let Some(prefix) = buffered.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*prefix) as usize;
    if len > max {
        return Err(WireError::Oversized { len, max });
    }
    Ok((buffered.len() - 4 >= len).then_some(len))
}

/// Why a reader stops.
enum Ended {
    Read(WireError),
    Down(NodeDownReason),
    /// The cluster is gone: nothing to report to.
    Gone,
}

/// What the reader of a connection keeps from one frame to the next.
struct Reading {
    peer: Arc<Peer>,
    max_message: usize,
    /// The large message being reassembled: its id and its bytes so far. (A sender sends
    /// one large message at a time, so fragments of two never interleave.)
    assembling: Option<(u64, Vec<u8>)>,
    unreported: Unreported,
    resolver: Resolver,
    follow: Follow,
}

/// After this many deliveries in a row to one other scheduler thread, the reader moves
/// there.
const FOLLOW_AFTER: u32 = 64;

/// Where the reader's deliveries go: the scheduler thread of the processes (or callers)
/// that got the last ones, and how many in a row. A reader on the thread of the process it
/// feeds hands it each message without waking another thread; with 2 threads per node, a
/// remote call round trip otherwise pays such a wake-up on each node whenever the
/// connection's tasks and the processes ended up on different threads.
#[derive(Default)]
struct Follow {
    target: usize,
    run: u32,
}

impl Follow {
    fn note(&mut self, target: usize) {
        if target == 0 {
            return;
        }
        if target == self.target {
            self.run = self.run.saturating_add(1);
        } else {
            *self = Follow { target, run: 1 };
        }
    }

    /// The thread to move to, if the deliveries have settled on one other than this one.
    fn destination(&mut self) -> Option<usize> {
        if self.run < FOLLOW_AFTER || self.target == executors::current_scheduler() {
            return None;
        }
        let target = self.target;
        *self = Follow::default();
        Some(target)
    }
}

impl Reading {
    /// Handles one frame's bytes.
    fn frame(&mut self, cluster: &Arc<Cluster>, frame: &[u8]) -> Result<(), Ended> {
        self.unreported.bytes += frame.len() as u64 + 4;
        let (message, payload) = wire::decode(frame).map_err(Ended::Read)?;
        let WireMessage::Fragment { id, last } = message else {
            return self.dispatch(cluster, message, Payload::Borrowed(payload));
        };
        let protocol_error = |text: String| Err(Ended::Down(NodeDownReason::ProtocolError(text)));
        if payload.is_empty() {
            return protocol_error("an empty fragment".into());
        }
        let (_, whole) = match &mut self.assembling {
            Some((current, _)) if *current != id => {
                return protocol_error("fragments of two messages interleaved".into())
            }
            Some(assembling) => assembling,
            None => self.assembling.insert((id, Vec::new())),
        };
        if whole.len() + payload.len() > self.max_message {
            let text = format!("a fragmented message exceeds {} bytes", self.max_message);
            return protocol_error(text);
        }
        whole.extend_from_slice(payload);
        self.peer.queue.owe_ack(payload.len());
        if !last {
            return Ok(());
        }
        let (_, whole) = self.assembling.take().unwrap_or_default();
        let (message, payload) = wire::decode(&whole).map_err(Ended::Read)?;
        let start = whole.len() - payload.len();
        self.dispatch(cluster, message, Payload::Owned(whole, start))
    }

    #[inline]
    fn dispatch(
        &mut self,
        cluster: &Arc<Cluster>,
        message: WireMessage,
        payload: Payload<'_>,
    ) -> Result<(), Ended> {
        let state = (&mut self.unreported, &mut self.resolver);
        let target = dispatch(cluster, &self.peer, message, payload, state).map_err(Ended::Down)?;
        self.follow.note(target);
        Ok(())
    }
}

/// Handles one message from the peer; an error ends the connection.
#[inline]
fn dispatch(
    cluster: &Arc<Cluster>,
    peer: &Arc<Peer>,
    message: WireMessage,
    payload: Payload<'_>,
    (unreported, resolver): (&mut Unreported, &mut Resolver),
) -> Result<usize, NodeDownReason> {
    let mut target = 0;
    match message {
        WireMessage::Heartbeat {
            process_count,
            uptime_ms,
        } => {
            peer.process_count.store(process_count, Ordering::Relaxed);
            peer.uptime_ms.store(uptime_ms, Ordering::Relaxed);
        }
        WireMessage::Members { nodes } => cluster.learn(&nodes),
        WireMessage::Goodbye => return Err(NodeDownReason::Shutdown),
        WireMessage::FragmentAck { bytes } => peer.queue.acknowledged(bytes as usize),
        WireMessage::Reply { id, outcome } => {
            unreported.messages += 1;
            target = peer.answer(id, outcome, payload);
        }
        message @ (WireMessage::Call { .. }
        | WireMessage::Cast { .. }
        | WireMessage::Info { .. }
        | WireMessage::Stop(_)) => {
            unreported.messages += 1;
            target = super::remote::deliver(cluster, peer, message, payload, resolver);
        }
        WireMessage::Hello(_)
        | WireMessage::Challenge(_)
        | WireMessage::Proof { .. }
        | WireMessage::Welcome
        | WireMessage::Refused { .. } => {
            return Err(NodeDownReason::ProtocolError(
                "a handshake message on an established connection".into(),
            ))
        }
        WireMessage::Fragment { .. } => {
            return Err(NodeDownReason::ProtocolError(
                "a fragment inside a fragment".into(),
            ))
        }
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_follows_only_a_settled_run_of_deliveries_to_another_thread() {
        // A test thread runs no scheduler (its key is 0): any other key is "elsewhere".
        let mut follow = Follow::default();
        for _ in 1..FOLLOW_AFTER {
            follow.note(7);
        }
        assert_eq!(follow.destination(), None, "not yet");
        follow.note(0); // a delivery to nobody in particular does not break the run
        follow.note(7);
        assert_eq!(follow.destination(), Some(7));
        assert_eq!(follow.destination(), None, "moving starts a new count");
        // Deliveries spread over two threads never settle.
        for i in 0..10 * FOLLOW_AFTER {
            follow.note(if i % 2 == 0 { 7 } else { 9 });
        }
        assert_eq!(follow.destination(), None);
    }
}
