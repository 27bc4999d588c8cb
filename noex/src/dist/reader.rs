//! The reading side of a connection: frames are read, reassembled from fragments and
//! handed to the local processes (or to the callers waiting for replies) they are for.
//!
//! Casts and infos for one process that lie one after the other in the read buffer are
//! delivered together, as a run (see [`run`]): one lookup, one lock of the mailbox, one
//! wake-up for the lot.
//!
//! The reader follows its deliveries: once they settle on processes of another scheduler
//! thread, it moves there (see [`Follow`]), so that handing a message over wakes no other
//! thread.
//!
//! The reader holds back in two cases. While the replies queued for the peer reach the
//! outbound bound (a peer that calls without reading its replies), or while a local process
//! the peer's messages went to is past its mailbox limit (see `inbound::hold_back`), it
//! handles no more of the peer's messages: it withholds them, up to that bound again, and
//! then reads nothing more, leaving the rest in the peer's socket (see [`Withheld`]) —
//! save those that fill no mailbox, replies among them, large ones included (see
//! [`large_reply`]). And it reads nothing more before the first fragment of a message
//! for which the node-wide reassembly bound has no room yet (see `reassembly`).

use std::sync::{Arc, Weak};

use futures_lite::FutureExt;
use smol::future::yield_now;

use super::cluster::Cluster;
use super::inbound::{Payload, Resolver, RunFrame, Staging};
use super::peer::{report, Counters, Pause, Peer, YIELD_BYTES};
use super::reassembly::{Reassembly, Reserved};
use super::status::NodeDownReason;
use super::wire::{self, WireError, WireMessage};
use crate::node::executors::yield_until_idle;
use crate::node::NodeInner;

mod assembly;
mod buffered;
mod dispatch;
pub(super) mod follow;
mod incoming;
mod large_reply;
mod run;
mod withheld;

use assembly::{Assembly, InPlaceStart};
use buffered::Buffered;
use dispatch::dispatch;
use follow::Follow;
use incoming::Incoming;
use large_reply::Arriving;
use withheld::Withheld;

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

fn io_error(error: std::io::Error) -> Ended {
    Ended::Read(WireError::Io(error))
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
    let (max_frame, max_message, reassembly) = match cluster.upgrade() {
        Some(c) => (
            c.config.max_frame_size,
            c.config.max_message_size,
            c.reassembly.clone(),
        ),
        None => return,
    };
    let Some(stream) = peer.take_reader() else {
        return;
    };
    let state = ReaderState {
        stream: Buffered::new(stream),
        incoming: Incoming::default(),
        reading: Reading {
            peer: peer.clone(),
            max_message,
            reassembly,
            room: None,
            assembling: None,
            arriving: None,
            withheld: Withheld::default(),
            unreported: Unreported::default(),
            resolver: Resolver::default(),
            follow: Follow::default(),
            run_frames: Vec::new(),
            staging: Staging::default(),
        },
        max_frame,
    };
    read(cluster, state).await;
}

/// What a connection's reader holds, all of which moves with it to another thread.
struct ReaderState {
    stream: Buffered,
    /// A frame that does not lie whole in the read buffer, as far as it has been read.
    incoming: Incoming,
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
    // A peer that closed its side: what it sent before is handled, its goodbye included.
    let ended = match ended {
        Ended::Read(WireError::Io(error)) => match cluster.upgrade() {
            Some(cluster_now) => state
                .reading
                .flush_withheld(&cluster_now)
                .err()
                .unwrap_or(Ended::Read(WireError::Io(error))),
            None => Ended::Gone,
        },
        ended => ended,
    };
    // Counted before the connection's end is reported (its counters are added to the
    // node's totals then): what came with a goodbye, or before a bad frame.
    state.reading.unreported.report(&peer.counters);
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
    node.executors
        .go_on(scheduler, state, |state| read(cluster, state))
}

/// The reader's loop, until the connection ends (`Err`) or the reader should move to the
/// thread of another scheduler (`Ok`, its key).
async fn read_until_moved(
    cluster: &Weak<Cluster>,
    state: &mut ReaderState,
) -> Result<usize, Ended> {
    let ReaderState {
        stream,
        incoming,
        reading,
        max_frame,
    } = state;
    let max_frame = *max_frame;
    let (mut frames, mut bytes) = (0u32, 0usize);
    // Frames were handled since the read buffer was last filled.
    let mut handled = false;
    loop {
        if !reading.withheld.is_empty() && !reading.peer.queue.holding_back() {
            reading.release_withheld(cluster).await?;
        }
        // A frame begun in `incoming` comes first. Otherwise a frame that lies whole in the
        // read buffer is handled where it lies, and one that does not is read (copied)
        // into `incoming`.
        let buffered = match incoming.is_empty() {
            true => buffered_frame(stream.buffer(), max_frame).map_err(Ended::Read)?,
            false => None,
        };
        let (taken, len) = match buffered {
            Some(len) => {
                // (Upgraded here, where a frame is handled: a wake-up that finds none is
                // spared its two read-modify-writes.)
                let cluster_now = cluster.upgrade().ok_or(Ended::Gone)?;
                // A run of casts for one process is delivered together.
                let run = reading.run(
                    &cluster_now,
                    stream.buffer(),
                    max_frame,
                    YIELD_FRAMES - frames,
                    YIELD_BYTES - bytes,
                );
                if run.frames > 0 {
                    stream.consume(run.bytes);
                    (run.frames, run.bytes)
                } else {
                    match reading.take(&cluster_now, &stream.buffer()[4..4 + len])? {
                        Handled::Done => {
                            stream.consume(4 + len);
                            (1, len)
                        }
                        // The frame stays where it is, to be taken once the reader may go on.
                        Handled::Later(wait) => {
                            drop(cluster_now);
                            reading.wait(wait).await?;
                            continue;
                        }
                    }
                }
            }
            // A fragment begun in place is finished, and handled, even if the reader has
            // started to hold back meanwhile: it was taken before.
            None if reading.reading_in_place() => {
                reading.read_in_place(stream).await?;
                let cluster_now = cluster.upgrade().ok_or(Ended::Gone)?;
                let len = reading.end_in_place(&cluster_now)?;
                reading.unreported.bytes += len as u64 + 4;
                (1, len)
            }
            None => {
                if incoming.is_empty() && reading.may_handle() {
                    // A fragment is read in place (see `assembly`), anything else whole.
                    let buffered = stream.buffer();
                    if buffered.is_empty() {
                        if std::mem::take(&mut handled) {
                            // What the frames woke runs first (a process's reply goes out
                            // before this read, which most likely finds nothing yet).
                            yield_until_idle().await;
                            continue;
                        }
                        reading.unreported.report(&reading.peer.counters);
                        // While a message is reassembled, little: the payload of its next
                        // fragment is to be read in place.
                        let most = match reading.assembling {
                            Some(_) => buffered::TAIL,
                            None => usize::MAX,
                        };
                        if stream.fill(most).await.map_err(io_error)?.is_empty() {
                            return Err(Ended::Read(incoming::eof()));
                        }
                        continue;
                    }
                    let len = buffered
                        .first_chunk::<4>()
                        .map_or(0, |prefix| u32::from_be_bytes(*prefix) as usize);
                    match reading.begin_in_place(buffered, len)? {
                        InPlaceStart::Begun(taken) => {
                            stream.consume(taken);
                            continue;
                        }
                        InPlaceStart::Later(wait) => {
                            reading.wait(wait).await?;
                            continue;
                        }
                        InPlaceStart::No => {}
                    }
                }
                if incoming.whole().is_none() {
                    if stream.buffer().is_empty() {
                        // The read may wait: bring the counters up to date first.
                        reading.unreported.report(&reading.peer.counters);
                    }
                    let read = incoming.read(stream, max_frame);
                    if reading.withheld.is_empty() {
                        read.await.map_err(Ended::Read)?;
                    } else {
                        // Messages are withheld: the peer catching up on its replies
                        // must not wait for its next frame to release them.
                        let room = reading.peer.queue.room_to_take();
                        match async { Some(read.await) }
                            .or(async {
                                room.await;
                                None
                            })
                            .await
                        {
                            Some(read) => read.map_err(Ended::Read)?,
                            None => continue,
                        }
                    }
                }
                let cluster_now = cluster.upgrade().ok_or(Ended::Gone)?;
                let frame = incoming.whole().unwrap_or_default();
                match reading.take(&cluster_now, frame)? {
                    Handled::Done => (1, incoming.clear()),
                    Handled::Later(wait) => {
                        drop(cluster_now);
                        reading.wait(wait).await?;
                        continue;
                    }
                }
            }
        };
        if let Some(destination) = reading.follow.destination() {
            reading.unreported.report(&reading.peer.counters);
            return Ok(destination);
        }
        frames += taken;
        bytes += len;
        handled = true;
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

/// What became of a frame.
enum Handled {
    /// Handled, or withheld with the peer's other messages.
    Done,
    /// Left untouched: the reader must wait before it takes this frame.
    Later(Wait),
}

/// What the reader waits for.
#[derive(Clone, Copy)]
enum Wait {
    /// Room in the node's reassembly bound for a message of this size, which the frame
    /// begins.
    Room(usize),
    /// The replies queued for the peer to go under the bound: the reader withholds no more
    /// of the peer's messages than that bound either.
    Replies,
}

/// What the reader of a connection keeps from one frame to the next.
struct Reading {
    peer: Arc<Peer>,
    max_message: usize,
    reassembly: Arc<Reassembly>,
    /// Room reserved for the next message to reassemble.
    room: Option<Reserved>,
    /// The large message being reassembled. (A sender sends one large message at a
    /// time, so fragments of two never interleave.)
    assembling: Option<Assembly>,
    /// The large message whose fragments arrive while messages are withheld, and whether
    /// it is handed on (see [`large_reply`]).
    arriving: Option<Arriving>,
    /// The peer's messages read but not yet handled, while the replies queued for it are
    /// over the bound.
    withheld: Withheld,
    unreported: Unreported,
    resolver: Resolver,
    follow: Follow,
    /// The frames of the run being delivered (see [`run`]), kept for the next.
    run_frames: Vec<RunFrame>,
    staging: Staging,
}

fn protocol_error<T>(text: impl Into<String>) -> Result<T, Ended> {
    Err(Ended::Down(NodeDownReason::ProtocolError(text.into())))
}

impl Reading {
    /// `true` if frames are handled as they are read (none is withheld: see [`Withheld`]).
    #[inline]
    fn may_handle(&self) -> bool {
        self.withheld.is_empty() && !self.peer.queue.holding_back()
    }

    /// Takes a frame just read: handles it — or, while the replies queued for the peer
    /// are over the bound, withholds it with the peer's other messages (see
    /// [`Withheld`]) — or leaves it, for the reader to wait before taking it.
    #[inline]
    fn take(&mut self, cluster: &Arc<Cluster>, frame: &[u8]) -> Result<Handled, Ended> {
        let handled = if self.may_handle() {
            self.frame(cluster, frame)?
        } else {
            self.withhold(cluster, frame)?
        };
        if let Handled::Done = handled {
            self.unreported.bytes += frame.len() as u64 + 4;
        }
        Ok(handled)
    }

    /// Withholds a frame for a mailbox — a user message (a call, a cast, an info, a
    /// piece of a large one other than a reply), an exit signal its process traps, a
    /// `Down` — which keeps its place behind the messages withheld before it, as does a
    /// goodbye (the messages sent before it are handled before the connection ends).
    /// Every other frame is handled at once: those that keep the connection going
    /// (heartbeats, acknowledgements of this node's fragments: the replies cannot drain
    /// without those), and those that fill no mailbox — replies to this node's calls
    /// (after the messages withheld for their caller: see
    /// [`before_reply`](Self::before_reply); a large one piece by piece, see
    /// [`large_reply`]) and spawns, signals that act on a process at once as they would
    /// locally (a kill, a stop, an exit signal not trapped, links and monitors: see
    /// [`Cluster::acts_at_once`]), spawn requests, the global registry's messages. A
    /// process stuck behind its messages can then still be killed or stopped from the node
    /// holding them, and that node's replies and registry traffic do not wait behind it.
    #[inline(never)]
    fn withhold(&mut self, cluster: &Arc<Cluster>, frame: &[u8]) -> Result<Handled, Ended> {
        let (message, payload) = wire::decode(frame).map_err(Ended::Read)?;
        let in_order = match &message {
            WireMessage::Call { .. }
            | WireMessage::Cast { .. }
            | WireMessage::Info { .. }
            | WireMessage::Trace(_)
            | WireMessage::Goodbye => true,
            WireMessage::Signal(signal) => !cluster.acts_at_once(signal),
            WireMessage::Reply { id, .. } => !self.before_reply(cluster, *id, false)?,
            WireMessage::Fragment { id, .. } => !self.passes(cluster, *id, payload)?,
            // Named one by one, so that a new kind of frame is placed here on purpose.
            WireMessage::Heartbeat { .. }
            | WireMessage::FragmentAck { .. }
            | WireMessage::Stop(_)
            | WireMessage::Spawn(_)
            | WireMessage::SpawnReply { .. }
            | WireMessage::SpawnAck { .. }
            | WireMessage::Global(_)
            | WireMessage::Members { .. }
            // Before what follows it: the exits of the peer's processes as it stops them.
            | WireMessage::Leaving
            // (Handshake frames, out of place here: `frame` refuses them.)
            | WireMessage::Hello(_)
            | WireMessage::Challenge(_)
            | WireMessage::Proof { .. }
            | WireMessage::Welcome
            | WireMessage::Refused { .. } => false,
        };
        let handled = if !in_order {
            self.frame(cluster, frame)?
        } else if !self.withheld.has_room(frame.len(), self.peer.queue.limit()) {
            Handled::Later(Wait::Replies)
        } else {
            let target = withheld::target(cluster, &self.peer, &message);
            self.withheld.push(frame, target);
            Handled::Done
        };
        // (A fragment left in place is asked about again when it is taken.)
        if let (WireMessage::Fragment { id, last: true, .. }, Handled::Done) = (&message, &handled)
        {
            self.arrived(*id);
        }
        Ok(handled)
    }

    /// Handles the withheld messages, in order, until none is left or the replies are
    /// over the bound again.
    async fn release_withheld(&mut self, cluster: &Weak<Cluster>) -> Result<(), Ended> {
        let mut since_yield = 0;
        while !self.peer.queue.holding_back() {
            self.lost()?;
            let Some((frame, target)) = self.withheld.pop() else {
                break;
            };
            let cluster_now = cluster.upgrade().ok_or(Ended::Gone)?;
            if let Handled::Later(wait) = self.frame(&cluster_now, &frame)? {
                drop(cluster_now);
                self.withheld.put_back(frame, target);
                self.wait(wait).await?;
            }
            since_yield += 1;
            if since_yield == YIELD_FRAMES {
                since_yield = 0;
                yield_now().await;
            }
        }
        Ok(())
    }

    /// Handles every withheld message, bound or not, once the connection has ended. (A
    /// message that would wait for reassembly room is lost with the connection.)
    fn flush_withheld(&mut self, cluster: &Arc<Cluster>) -> Result<(), Ended> {
        self.lost()?;
        while let Some((frame, _)) = self.withheld.pop() {
            self.frame(cluster, &frame)?;
        }
        Ok(())
    }

    /// Handles one frame's bytes — unless it begins a message the node has no room for
    /// yet (then nothing is done).
    #[inline]
    fn frame(&mut self, cluster: &Arc<Cluster>, frame: &[u8]) -> Result<Handled, Ended> {
        let (message, payload) = wire::decode(frame).map_err(Ended::Read)?;
        if let WireMessage::Fragment { id, last, size } = message {
            return self.piece(cluster, id, last, size, payload);
        }
        self.dispatch(cluster, message, Payload::Borrowed(payload))?;
        Ok(Handled::Done)
    }

    /// Reads nothing more until `wait` is over: until the node has room for a message
    /// of that size (reserved then for the message the next frame begins), or until the
    /// replies queued for the peer are under the bound.
    /// `Err` if the connection was closed meanwhile (see [`Reading::lost`]).
    async fn wait(&mut self, wait: Wait) -> Result<(), Ended> {
        self.unreported.report(&self.peer.counters);
        match wait {
            Wait::Room(size) => {
                self.peer.set_pause(Pause::ForRoom);
                // Room may take for ever to free up (other peers' unfinished messages
                // hold it): a connection closed meanwhile stops waiting.
                let reserved = async { Some(self.reassembly.reserve(size).await) };
                let closed = async {
                    self.peer.closed().await;
                    None
                };
                self.room = reserved.or(closed).await;
            }
            Wait::Replies => {
                self.peer.set_pause(Pause::ForReplies);
                self.peer.queue.room_to_take().await;
            }
        }
        self.peer.set_pause(Pause::Reading);
        self.lost()
    }

    /// `Err` if this node has closed the connection (lost, replaced, the node stopping):
    /// its loss is reported already — monitors of the peer's processes have fired
    /// `NoConnection` — so nothing read on it and not yet handed on (withheld) may reach
    /// a process any more, after its `Down`. (A peer that hangs up is another matter: what
    /// it sent before is handed on before its loss is reported, see [`read`].)
    fn lost(&self) -> Result<(), Ended> {
        match self.peer.is_closed() {
            true => Err(Ended::Gone),
            false => Ok(()),
        }
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

#[cfg(test)]
mod tests;
