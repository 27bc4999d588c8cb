//! One established connection to a peer node: its writer, reader and heartbeat tasks.
//!
//! The writer (`writer.rs`) drains the [`Outbound`] queue into batched writes (a sender may
//! also write to an idle socket itself: [`Peer::write_now`]). The reader (`reader.rs`)
//! decodes frames and hands them to the cluster; fragments are acknowledged and
//! reassembled first. The ticker sends a heartbeat when nothing was sent for an interval,
//! and declares the peer down when nothing was received for the timeout. Whichever task
//! notices the end first reports it, once.
//!
//! On loopback a socket is almost always ready, so neither the writer nor the reader would
//! ever wait; each yields to the other tasks of its thread every [`YIELD_BYTES`] bytes (the
//! reader also every 128 frames), so a large transfer or a flood of casts never
//! starves the processes that share the thread.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use async_net::TcpStream;
use smol::Async;

use super::cluster::Cluster;
use super::inbound::Payload;
use super::monitor::PeerTies;
use super::node_id::NodeId;
use super::outbound::{is_large, Outbound, PushError, Queued};
use super::spawn::Spawns;
use super::status::{NodeDownReason, TrafficStats};
use super::transport::{ReadHalf, Stream, WriteHalf};
use super::wire::{RemoteOutcome, WireMessage};
use crate::bytes::Lent;
use crate::node::executors;
use crate::process::table::SerialHasher;
use crate::server::slot;

/// The writer and the reader yield after this many bytes.
pub(super) const YIELD_BYTES: usize = 256 * 1024;

/// How a remote call ended on the connection's side: the outcome and its payload.
pub(crate) type CallOutcome = Result<(RemoteOutcome, Payload<'static>), ConnectionLost>;

/// The calls waiting for their reply, by call id (ids are handed out in sequence by this
/// node: hashed by one multiplication, see `SerialHasher`), with the scheduler thread of
/// each caller and its process's key (see `run::current_sender`; 0 for none).
type PendingCalls =
    HashMap<u64, (slot::Sender<CallOutcome>, usize, usize), BuildHasherDefault<SerialHasher>>;

/// The connection carrying a call was lost before its reply arrived.
#[derive(Debug)]
pub(crate) struct ConnectionLost;

/// Why a connection's reader is not reading, if it is not: what liveness means meanwhile
/// (see the ticker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Pause {
    /// Reading: the peer is alive while anything arrives.
    Reading = 0,
    /// Waiting for room to reassemble the peer's next large message, which other
    /// connections' messages hold: not the peer's doing, so it counts as heard from.
    ForRoom = 1,
    /// Waiting until the peer reads the replies queued for it: alive while it does.
    ForReplies = 2,
}

/// Traffic counters of one connection.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) messages_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) calls_timed_out: AtomicU64,
    pub(crate) casts_dropped: AtomicU64,
    pub(crate) messages_undelivered: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Counts the connections of a node whose memory (and socket) is still held, closed or
/// not: one per [`Peer`] alive.
#[derive(Default)]
pub(crate) struct Held(Arc<AtomicUsize>);

impl Held {
    fn track(&self) -> HeldOne {
        self.0.fetch_add(1, Ordering::Relaxed);
        HeldOne(self.0.clone())
    }

    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// One connection's count in its node's [`Held`], until dropped.
struct HeldOne(Arc<AtomicUsize>);

impl Drop for HeldOne {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An established connection to a peer.
pub(crate) struct Peer {
    pub(crate) id: NodeId,
    pub(crate) incarnation: u64,
    /// `true` if this node dialled the connection.
    pub(crate) outbound: bool,
    /// The peer is a hidden node (see `ClusterConfig::hidden`).
    pub(crate) hidden: bool,
    /// Round-trip times, from heartbeats.
    pub(crate) round_trip: super::rtt::RoundTrip,
    pub(crate) queue: Outbound,
    /// The socket, to shut it down.
    tcp: TcpStream,
    /// The same socket, for writes straight from a sender's thread (not over TLS).
    socket: Option<Arc<Async<std::net::TcpStream>>>,
    /// The stream's halves until the reader and the writer take theirs.
    halves: Mutex<(Option<ReadHalf>, Option<WriteHalf>)>,
    /// Calls waiting for their reply, with the scheduler thread of each caller.
    pending: Mutex<PendingCalls>,
    closed: AtomicBool,
    /// Notified when the connection closes.
    closing: event_listener::Event,
    pub(crate) counters: Counters,
    /// Milliseconds since `epoch` when something was last seen received (by the ticker).
    last_received: AtomicU64,
    epoch: Instant,
    /// From the peer's heartbeats.
    pub(crate) process_count: AtomicU64,
    pub(crate) uptime_ms: AtomicU64,
    /// The peer announced that it leaves the cluster (see `leaving`).
    pub(crate) leaving: AtomicBool,
    /// Why the reader is not reading (a [`Pause`]).
    pause: AtomicU8,
    /// Fault injection: drop everything this node writes to the peer.
    pub(crate) silenced: AtomicBool,
    /// Fault injection: the writer stops taking from the queue (a peer that does not read).
    stalled: AtomicBool,
    unstalled: event_listener::Event,
    /// The monitors and links between processes of the two nodes made over this
    /// connection (see `monitor`).
    ties: Mutex<PeerTies>,
    /// The spawns under way over this connection (see `spawn`).
    spawns: Mutex<Spawns>,
    /// This connection's count in its node's [`Held`].
    _held: HeldOne,
}

impl Peer {
    pub(crate) fn new(
        established: super::handshake::Established,
        outbound: bool,
        stream: Stream,
        queue_limit: usize,
        held: &Held,
        spares: &Arc<super::spares::Spares>,
    ) -> Self {
        Peer {
            id: established.peer,
            incarnation: established.incarnation,
            outbound,
            hidden: established.hidden,
            round_trip: super::rtt::RoundTrip::new(),
            queue: Outbound::new(queue_limit, spares.clone()).taking(established.max_message),
            tcp: stream.tcp().clone(),
            socket: (!stream.is_tls()).then(|| stream.tcp().clone().into()),
            halves: Mutex::new({
                let (read, write) = stream.split();
                (Some(read), Some(write))
            }),
            pending: Mutex::default(),
            closed: AtomicBool::new(false),
            closing: event_listener::Event::new(),
            counters: Counters::default(),
            last_received: AtomicU64::new(0),
            epoch: Instant::now(),
            process_count: AtomicU64::new(0),
            uptime_ms: AtomicU64::new(0),
            leaving: AtomicBool::new(false),
            pause: AtomicU8::new(Pause::Reading as u8),
            silenced: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            unstalled: event_listener::Event::new(),
            ties: Mutex::new(PeerTies::default()),
            spawns: Mutex::new(Spawns::default()),
            _held: held.track(),
        }
    }

    /// Fault injection: stops (or resumes) the writer.
    pub(crate) fn stall(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::Release);
        if !stalled {
            self.unstalled.notify(usize::MAX);
        }
    }

    /// Fault injection holds the writer back (see [`Peer::stall`]).
    pub(super) fn is_stalled(&self) -> bool {
        self.stalled.load(Ordering::Acquire)
    }

    pub(super) async fn wait_unstalled(&self) {
        loop {
            let listener = self.unstalled.listen();
            if !self.is_stalled() || self.is_closed() {
                return;
            }
            listener.await;
        }
    }

    /// Records why the reader stops reading, or that it reads again.
    pub(super) fn set_pause(&self, pause: Pause) {
        self.pause.store(pause as u8, Ordering::Relaxed);
    }

    fn pause(&self) -> Pause {
        match self.pause.load(Ordering::Relaxed) {
            1 => Pause::ForRoom,
            2 => Pause::ForReplies,
            _ => Pause::Reading,
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub(super) fn ties(&self) -> MutexGuard<'_, PeerTies> {
        self.ties.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn spawns(&self) -> MutexGuard<'_, Spawns> {
        self.spawns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pending(&self) -> MutexGuard<'_, PendingCalls> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long ago anything was received.
    pub(crate) fn last_seen(&self) -> Duration {
        let now = self.now_ms();
        Duration::from_millis(now.saturating_sub(self.last_received.load(Ordering::Relaxed)))
    }

    /// Registers a call awaiting its reply.
    pub(crate) fn expect_reply(&self, id: u64) -> slot::Receiver<CallOutcome> {
        let (tx, rx) = slot::slot();
        if self.is_closed() {
            tx.send(Err(ConnectionLost));
        } else {
            let caller = crate::server::run::current_sender();
            self.pending()
                .insert(id, (tx, executors::current_scheduler(), caller));
            // Closed meanwhile: make sure nobody waits for a reply that cannot come.
            if self.is_closed() {
                self.fail_pending();
            }
        }
        rx
    }

    /// Forgets a call that will not wait for its reply any more; `true` if it was still
    /// waiting (no reply had arrived).
    pub(crate) fn forget_call(&self, id: u64) -> bool {
        self.pending().remove(&id).is_some()
    }

    /// The key of the process that made call `id` (0 for none), if it still waits.
    pub(super) fn caller_of(&self, id: u64) -> Option<usize> {
        self.pending().get(&id).map(|&(_, _, caller)| caller)
    }

    /// Hands a reply to its caller; returns the caller's scheduler thread (0 if unknown).
    pub(super) fn answer(&self, id: u64, outcome: RemoteOutcome, payload: Payload<'_>) -> usize {
        let Some((waiting, caller, _)) = self.pending().remove(&id) else {
            return 0;
        };
        // The caller may have given up just now; the reply is then dropped.
        waiting.send(Ok((outcome, payload.into_owned())));
        caller
    }

    fn fail_pending(&self) {
        let waiting: Vec<_> = self.pending().drain().map(|(_, (tx, ..))| tx).collect();
        for tx in waiting {
            tx.send(Err(ConnectionLost));
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Resolves once the connection is closed.
    pub(crate) async fn closed(&self) {
        loop {
            let closing = self.closing.listen();
            if self.is_closed() {
                return;
            }
            closing.await;
        }
    }

    /// Closes the connection. Returns `false` if it was already closed. Pending calls fail.
    pub(crate) fn close(&self) -> bool {
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.unstalled.notify(usize::MAX);
        self.closing.notify(usize::MAX);
        self.queue.close();
        let _ = self.tcp.shutdown(std::net::Shutdown::Both);
        self.fail_pending();
        self.fail_spawns();
        true
    }

    /// Writes a small frame straight to the socket from the sender's thread if the
    /// connection is idle: a round trip then involves no hop through the writer task
    /// (which, on another thread, costs a wake-up longer than the write). Returns `false`,
    /// leaving the frame to the queue, if the connection is busy (whose writer batches) or
    /// under fault injection.
    pub(crate) fn write_now(&self, frame: &[u8]) -> bool {
        let Some(socket) = &self.socket else {
            return false;
        };
        if is_large(frame)
            || self.stalled.load(Ordering::Relaxed)
            || self.silenced.load(Ordering::Relaxed)
            || !self.queue.claim_idle()
        {
            return false;
        }
        let mut socket: &std::net::TcpStream = socket.get_ref();
        // A socket that cannot take it all now (or failed: the writer will find out)
        // leaves the rest to the writer.
        let written = socket.write(frame).unwrap_or(0);
        self.queue.release(&frame[written..]);
        Counters::add(&self.counters.bytes_sent, written as u64);
        if written == frame.len() {
            Counters::add(&self.counters.messages_sent, 1);
        }
        true
    }

    /// Queues the frame of a user message from `sender`, waiting in line for room if the
    /// queue is full — or writes it at once if the connection is idle (see
    /// [`Peer::write_now`]).
    /// `lent`: the buffers a large frame borrows (see `outbound::Frame`).
    pub(crate) async fn send(
        &self,
        frame: &mut Vec<u8>,
        lent: Lent,
        sender: usize,
    ) -> Result<(), PushError> {
        if lent.is_empty() && self.write_now(frame) {
            return Ok(());
        }
        self.queue.push_waiting_lent(frame, lent, sender).await
    }

    /// [`send`](Self::send), for a frame that may have to be taken back: its mark if it
    /// was queued (see `Outbound::withdraw`), `None` if it was written at once.
    pub(crate) async fn send_withdrawable(
        &self,
        frame: &mut Vec<u8>,
        sender: usize,
    ) -> Result<Option<Queued>, PushError> {
        if self.write_now(frame) {
            return Ok(None);
        }
        self.queue
            .push_waiting_marked(frame, sender)
            .await
            .map(Some)
    }

    /// The reading half of the stream, for the reader (once).
    pub(super) fn take_reader(&self) -> Option<ReadHalf> {
        self.halves
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .take()
    }

    pub(super) fn take_writer(&self) -> Option<WriteHalf> {
        self.halves
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .take()
    }

    pub(crate) fn traffic(&self) -> TrafficStats {
        let c = &self.counters;
        TrafficStats {
            messages_sent: c.messages_sent.load(Ordering::Relaxed),
            bytes_sent: c.bytes_sent.load(Ordering::Relaxed),
            messages_received: c.messages_received.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
            queued_bytes: self.queue.queued_bytes() as u64,
            calls_pending: self.pending().len() as u64,
            calls_timed_out: c.calls_timed_out.load(Ordering::Relaxed),
            casts_dropped: c.casts_dropped.load(Ordering::Relaxed),
            messages_undelivered: c.messages_undelivered.load(Ordering::Relaxed),
            reconnects: 0,
        }
    }
}

/// Starts the connection's tasks on the node's executors.
pub(crate) fn run(cluster: &Arc<Cluster>, peer: &Arc<Peer>) {
    let weak = Arc::downgrade(cluster);
    cluster.spawn(super::writer::writer(weak.clone(), peer.clone()));
    cluster.spawn(super::reader::reader(weak.clone(), peer.clone()));
    cluster.spawn(ticker(weak, peer.clone()));
}

/// A heartbeat (with this node's load) goes out at least every this many heartbeat
/// intervals, even on a busy link.
const LOAD_EVERY: u32 = 4;

async fn ticker(cluster: Weak<Cluster>, peer: Arc<Peer>) {
    let (interval, timeout) = match cluster.upgrade() {
        Some(c) => (c.config.heartbeat_interval, c.config.heartbeat_timeout),
        None => return,
    };
    peer.last_received.store(peer.now_ms(), Ordering::Relaxed);
    // Traffic is noticed by its counters changing between ticks (no clock read per frame).
    let counted = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let mut received = counted(&peer.counters.bytes_received);
    let mut sent = counted(&peer.counters.bytes_sent);
    let mut ticks = smol::Timer::interval(interval);
    // The peer learns this node's load at once, and at least every few intervals however
    // busy the link (placement by load relies on it).
    let heartbeat = |cluster: &Cluster| {
        let stamps = peer.round_trip.stamps();
        WireMessage::Heartbeat {
            process_count: cluster.process_count() as u64,
            uptime_ms: cluster.uptime().as_millis() as u64,
            stamp_us: stamps.stamp_us,
            echo_us: stamps.echo_us,
            held_us: stamps.held_us,
        }
    };
    match cluster.upgrade() {
        Some(c) if peer.queue.push_control(&heartbeat(&c)).is_ok() => {}
        _ => return,
    }
    let mut since_heartbeat = 0;
    loop {
        smol::stream::StreamExt::next(&mut ticks).await;
        if peer.is_closed() {
            return;
        }
        let now = peer.now_ms();
        let received_now = counted(&peer.counters.bytes_received);
        let sent_now = counted(&peer.counters.bytes_sent);
        // Heard from: something arrived — or, while the reader holds back, the peer is
        // not the cause (waiting for room), or it reads what this node sends (replies).
        let heard = received_now != received
            || match peer.pause() {
                Pause::Reading => false,
                Pause::ForRoom => true,
                Pause::ForReplies => sent_now != sent,
            };
        if heard {
            received = received_now;
            peer.last_received.store(now, Ordering::Relaxed);
        }
        let silent = now.saturating_sub(peer.last_received.load(Ordering::Relaxed));
        if silent > u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX) {
            let text = match peer.pause() {
                Pause::ForReplies => format!("it read none of its replies for {silent} ms"),
                _ => format!("nothing received for {silent} ms"),
            };
            report(&cluster, &peer, NodeDownReason::HeartbeatTimeout, &text);
            return;
        }
        since_heartbeat += 1;
        if sent_now == sent || since_heartbeat >= LOAD_EVERY {
            let Some(cluster) = cluster.upgrade() else {
                return;
            };
            if peer.queue.push_control(&heartbeat(&cluster)).is_err() {
                return;
            }
            since_heartbeat = 0;
        }
        sent = sent_now;
    }
}

/// Reports the end of the connection to the cluster (once).
pub(super) fn report(
    cluster: &Weak<Cluster>,
    peer: &Arc<Peer>,
    reason: NodeDownReason,
    detail: &str,
) {
    match cluster.upgrade() {
        Some(cluster) => cluster.peer_down(peer, reason, detail),
        None => {
            peer.close();
        }
    }
}
