//! One established connection to a peer node: its writer, reader and heartbeat tasks.
//!
//! The writer drains the [`Outbound`] queue into batched writes. The reader decodes frames
//! and hands them to the cluster; fragments are reassembled first. The ticker sends a
//! heartbeat when the link was quiet for an interval, and declares the peer down when it
//! was silent for the timeout. Whichever task notices the end first reports it, once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use async_net::TcpStream;
use futures_lite::io::BufReader;
use futures_lite::AsyncWriteExt;

use super::cluster::Cluster;
use super::config::{NodeDownReason, TrafficStats};
use super::node_id::NodeId;
use super::outbound::{Outbound, PushError};
use super::wire::{self, RemoteOutcome, WireError, WireMessage};

/// How a remote call ended on the connection's side.
pub(crate) type CallOutcome = Result<RemoteOutcome, ConnectionLost>;

/// The connection carrying a call was lost before its reply arrived.
#[derive(Debug)]
pub(crate) struct ConnectionLost;

/// Traffic counters of one connection.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) messages_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) calls_timed_out: AtomicU64,
    pub(crate) casts_dropped: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// An established connection to a peer.
pub(crate) struct Peer {
    pub(crate) id: NodeId,
    pub(crate) incarnation: u64,
    /// `true` if this node dialled the connection.
    pub(crate) outbound: bool,
    pub(crate) queue: Outbound,
    stream: TcpStream,
    pending: Mutex<HashMap<u64, oneshot::Sender<CallOutcome>>>,
    closed: AtomicBool,
    pub(crate) counters: Counters,
    /// Milliseconds since `epoch` when something was last received / sent.
    last_received: AtomicU64,
    last_sent: AtomicU64,
    epoch: Instant,
    /// From the peer's heartbeats.
    pub(crate) process_count: AtomicU64,
    pub(crate) uptime_ms: AtomicU64,
    /// Fault injection: drop everything this node writes to the peer.
    pub(crate) silenced: AtomicBool,
    /// Fault injection: the writer stops taking from the queue (a peer that does not read).
    stalled: AtomicBool,
    unstalled: event_listener::Event,
}

impl Peer {
    pub(crate) fn new(
        id: NodeId,
        incarnation: u64,
        outbound: bool,
        stream: TcpStream,
        queue_limit: usize,
    ) -> Self {
        Peer {
            id,
            incarnation,
            outbound,
            queue: Outbound::new(queue_limit),
            stream,
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            counters: Counters::default(),
            last_received: AtomicU64::new(0),
            last_sent: AtomicU64::new(0),
            epoch: Instant::now(),
            process_count: AtomicU64::new(0),
            uptime_ms: AtomicU64::new(0),
            silenced: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            unstalled: event_listener::Event::new(),
        }
    }

    /// Fault injection: stops (or resumes) the writer.
    pub(crate) fn stall(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::Release);
        if !stalled {
            self.unstalled.notify(usize::MAX);
        }
    }

    async fn wait_unstalled(&self) {
        loop {
            let listener = self.unstalled.listen();
            if !self.stalled.load(Ordering::Acquire) || self.is_closed() {
                return;
            }
            listener.await;
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<CallOutcome>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long ago anything was received.
    pub(crate) fn last_seen(&self) -> Duration {
        let now = self.now_ms();
        Duration::from_millis(now.saturating_sub(self.last_received.load(Ordering::Relaxed)))
    }

    /// Registers a call awaiting its reply.
    pub(crate) fn expect_reply(&self, id: u64) -> oneshot::AsyncReceiver<CallOutcome> {
        let (tx, rx) = oneshot::async_channel();
        if self.is_closed() {
            let _ = tx.send(Err(ConnectionLost));
        } else {
            self.pending().insert(id, tx);
            // Closed meanwhile: make sure nobody waits for a reply that cannot come.
            if self.is_closed() {
                self.fail_pending();
            }
        }
        rx
    }

    /// Forgets a call (it timed out).
    pub(crate) fn forget_call(&self, id: u64) {
        if self.pending().remove(&id).is_some() {
            Counters::add(&self.counters.calls_timed_out, 1);
        }
    }

    fn answer(&self, id: u64, outcome: RemoteOutcome) {
        if let Some(waiting) = self.pending().remove(&id) {
            // The caller may have given up just now; the reply is then dropped.
            let _ = waiting.send(Ok(outcome));
        }
    }

    fn fail_pending(&self) {
        let waiting: Vec<_> = self.pending().drain().map(|(_, tx)| tx).collect();
        for tx in waiting {
            let _ = tx.send(Err(ConnectionLost));
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the connection. Returns `false` if it was already closed. Pending calls fail.
    pub(crate) fn close(&self) -> bool {
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.unstalled.notify(usize::MAX);
        self.queue.close();
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        self.fail_pending();
        true
    }

    /// Queues a user message (a call, cast, info or reply) from `sender`.
    pub(crate) fn try_send(&self, message: &WireMessage, sender: usize) -> Result<(), PushError> {
        let body = wire::encode(message).map_err(|_| PushError::Closed)?;
        self.queue
            .try_push(body, sender)
            .map_err(|(error, _)| error)
    }

    /// Queues a user message, waiting for room if the queue is full.
    pub(crate) async fn send(&self, message: &WireMessage, sender: usize) -> Result<(), PushError> {
        let mut body = wire::encode(message).map_err(|_| PushError::Closed)?;
        loop {
            match self.queue.try_push(body, sender) {
                Ok(()) => return Ok(()),
                Err((PushError::Full, back)) => {
                    body = back;
                    self.queue.room().await;
                }
                Err((error, _)) => return Err(error),
            }
        }
    }

    pub(crate) fn traffic(&self) -> TrafficStats {
        let c = &self.counters;
        TrafficStats {
            messages_sent: c.messages_sent.load(Ordering::Relaxed),
            bytes_sent: c.bytes_sent.load(Ordering::Relaxed),
            messages_received: c.messages_received.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
            calls_pending: self.pending().len() as u64,
            calls_timed_out: c.calls_timed_out.load(Ordering::Relaxed),
            casts_dropped: c.casts_dropped.load(Ordering::Relaxed),
            reconnects: 0,
        }
    }
}

/// Starts the connection's tasks on the node's executors.
pub(crate) fn run(cluster: &Arc<Cluster>, peer: &Arc<Peer>) {
    let weak = Arc::downgrade(cluster);
    cluster.spawn(writer(weak.clone(), peer.clone()));
    cluster.spawn(reader(weak.clone(), peer.clone()));
    cluster.spawn(ticker(weak, peer.clone()));
}

async fn writer(cluster: Weak<Cluster>, peer: Arc<Peer>) {
    let mut stream = peer.stream.clone();
    let mut batch = Vec::with_capacity(64 * 1024);
    loop {
        peer.wait_unstalled().await;
        let Some(messages) = peer.queue.next_batch(&mut batch).await else {
            return;
        };
        if !peer.silenced.load(Ordering::Relaxed) {
            if let Err(error) = stream.write_all(&batch).await {
                report(
                    &cluster,
                    &peer,
                    NodeDownReason::ConnectionClosed,
                    &error.to_string(),
                );
                return;
            }
        }
        Counters::add(&peer.counters.bytes_sent, batch.len() as u64);
        Counters::add(&peer.counters.messages_sent, messages as u64);
        peer.last_sent.store(peer.now_ms(), Ordering::Relaxed);
        batch.clear();
        if batch.capacity() > 1 << 20 {
            batch.shrink_to(64 * 1024);
        }
    }
}

async fn reader(cluster: Weak<Cluster>, peer: Arc<Peer>) {
    let (max_frame, max_message) = match cluster.upgrade() {
        Some(c) => (c.config.max_frame_size, c.config.max_message_size),
        None => return,
    };
    let mut stream = BufReader::with_capacity(64 * 1024, peer.stream.clone());
    let mut buffer = Vec::new();
    let mut fragments: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut assembling = 0usize;
    loop {
        let message = match wire::read_frame(&mut stream, max_frame, &mut buffer).await {
            Ok(()) => {
                Counters::add(&peer.counters.bytes_received, buffer.len() as u64 + 4);
                peer.last_received.store(peer.now_ms(), Ordering::Relaxed);
                wire::decode(&buffer)
            }
            Err(error) => Err(error),
        };
        let message = match message {
            Ok(WireMessage::Fragment { id, last, bytes }) => {
                assembling += bytes.len();
                if assembling > max_message {
                    let text = format!("a fragmented message exceeds {max_message} bytes");
                    report(
                        &cluster,
                        &peer,
                        NodeDownReason::ProtocolError(text.clone()),
                        &text,
                    );
                    return;
                }
                let whole = fragments.entry(id).or_default();
                whole.extend_from_slice(&bytes);
                if !last {
                    continue;
                }
                let whole = fragments.remove(&id).unwrap_or_default();
                assembling -= whole.len();
                wire::decode(&whole)
            }
            other => other,
        };
        let Some(cluster_now) = cluster.upgrade() else {
            return;
        };
        match message {
            Ok(message) => {
                if let Err(reason) = dispatch(&cluster_now, &peer, message) {
                    let text = reason.to_string();
                    report(&cluster, &peer, reason, &text);
                    return;
                }
            }
            Err(WireError::Io(error)) => {
                report(
                    &cluster,
                    &peer,
                    NodeDownReason::ConnectionClosed,
                    &error.to_string(),
                );
                return;
            }
            Err(error) => {
                let text = error.to_string();
                report(
                    &cluster,
                    &peer,
                    NodeDownReason::ProtocolError(text.clone()),
                    &text,
                );
                return;
            }
        }
    }
}

/// Handles one message from the peer; an error ends the connection.
fn dispatch(
    cluster: &Arc<Cluster>,
    peer: &Arc<Peer>,
    message: WireMessage,
) -> Result<(), NodeDownReason> {
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
        WireMessage::Reply { id, outcome } => {
            Counters::add(&peer.counters.messages_received, 1);
            peer.answer(id, outcome);
        }
        message @ (WireMessage::Call { .. }
        | WireMessage::Cast { .. }
        | WireMessage::Info { .. }
        | WireMessage::Stop { .. }) => {
            Counters::add(&peer.counters.messages_received, 1);
            super::remote::deliver(cluster, peer, message);
        }
        WireMessage::Hello { .. }
        | WireMessage::Challenge { .. }
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
    Ok(())
}

async fn ticker(cluster: Weak<Cluster>, peer: Arc<Peer>) {
    let (interval, timeout) = match cluster.upgrade() {
        Some(c) => (c.config.heartbeat_interval, c.config.heartbeat_timeout),
        None => return,
    };
    peer.last_received.store(peer.now_ms(), Ordering::Relaxed);
    let mut ticks = smol::Timer::interval(interval);
    loop {
        smol::stream::StreamExt::next(&mut ticks).await;
        if peer.is_closed() {
            return;
        }
        let now = peer.now_ms();
        let silent = now.saturating_sub(peer.last_received.load(Ordering::Relaxed));
        if silent > timeout.as_millis() as u64 {
            let text = format!("nothing received for {silent} ms");
            report(&cluster, &peer, NodeDownReason::HeartbeatTimeout, &text);
            return;
        }
        let quiet = now.saturating_sub(peer.last_sent.load(Ordering::Relaxed));
        if quiet >= interval.as_millis() as u64 {
            let Some(cluster) = cluster.upgrade() else {
                return;
            };
            let heartbeat = WireMessage::Heartbeat {
                process_count: cluster.process_count() as u64,
                uptime_ms: cluster.uptime().as_millis() as u64,
            };
            if peer.queue.push_control(&heartbeat).is_err() {
                return;
            }
        }
    }
}

/// Reports the end of the connection to the cluster (once).
fn report(cluster: &Weak<Cluster>, peer: &Arc<Peer>, reason: NodeDownReason, detail: &str) {
    match cluster.upgrade() {
        Some(cluster) => cluster.peer_down(peer, reason, detail),
        None => {
            peer.close();
        }
    }
}
