//! The writing side of a connection: the [`Outbound`](super::outbound::Outbound) queue
//! drained into batched writes.
//!
//! The writer follows the senders, as the reader follows its deliveries (see [`Follow`]):
//! once the frames that wake it come from the tasks of another scheduler thread, it moves
//! there. Waking it then wakes no other thread, and — as, woken, it lets the tasks of its
//! thread go first (see `Outbound::next_batch`) — a sender that casts many messages in a
//! row has them written together rather than a few at a time from another thread, which
//! would also take a core from the receiving side on a small machine.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use futures_lite::AsyncWriteExt;
use smol::future::yield_now;

use super::cluster::Cluster;
use super::outbound::Frame;
use super::peer::{report, Counters, Peer, YIELD_BYTES};
use super::reader::follow::Follow;
use super::status::NodeDownReason;
use super::transport::WriteHalf;
use crate::node::NodeInner;

/// What a connection's writer holds, all of which moves with it to another thread.
struct WriterState {
    stream: WriteHalf,
    /// The batch being written; its buffer is kept for the next.
    batch: Frame,
    follow: Follow,
}

pub(super) async fn writer(cluster: Weak<Cluster>, peer: Arc<Peer>) {
    let Some(stream) = peer.take_writer() else {
        return;
    };
    let state = WriterState {
        stream,
        batch: Frame::owned(Vec::with_capacity(64 * 1024)),
        follow: Follow::default(),
    };
    write(cluster, peer, state).await;
}

/// Writes batches until the connection ends — or until the senders settle on another
/// scheduler thread: the writer then goes on in a task there.
async fn write(cluster: Weak<Cluster>, peer: Arc<Peer>, mut state: WriterState) {
    #[cfg(test)]
    peer.queue.writer_at.store(
        crate::node::executors::current_scheduler(),
        Ordering::Relaxed,
    );
    while let Some(destination) = write_until_moved(&cluster, &peer, &mut state).await {
        let Some(node) = cluster.upgrade().and_then(|c| c.node()) else {
            return;
        };
        match move_writer(&node, destination, cluster.clone(), peer.clone(), state) {
            None => return,
            // Not one of this node's threads.
            Some(kept) => state = kept,
        }
    }
}

/// Goes on writing in a task on the thread of `scheduler`, or hands the state back if that
/// is not one of `node`'s threads. (A plain function, so that the writer's future does not
/// contain itself.)
fn move_writer(
    node: &NodeInner,
    scheduler: usize,
    cluster: Weak<Cluster>,
    peer: Arc<Peer>,
    state: WriterState,
) -> Option<WriterState> {
    node.executors
        .go_on(scheduler, state, |state| write(cluster, peer, state))
}

/// The writer's loop, until the connection ends (`None`) or the writer should move to the
/// thread of another scheduler (`Some`, its key).
async fn write_until_moved(
    cluster: &Weak<Cluster>,
    peer: &Arc<Peer>,
    state: &mut WriterState,
) -> Option<usize> {
    let WriterState {
        stream,
        batch,
        follow,
    } = state;
    let mut since_yield = 0;
    loop {
        peer.wait_unstalled().await;
        let taken = peer.queue.next_batch(batch, || peer.is_stalled()).await?;
        if taken.messages == 0 {
            // Stalled while it waited: nothing was taken. (Closed meanwhile, the stall
            // no longer holds it back: the queue's closing follows at once.)
            if peer.is_closed() {
                return None;
            }
            continue;
        }
        let messages = taken.messages;
        let silenced = peer.silenced.load(Ordering::Relaxed);
        // Fault injection drops the batch — all but the end of a frame already begun.
        let end = if silenced { taken.head } else { batch.len() };
        if silenced {
            // Its fragments will never be acknowledged; they must not close the window
            // for good.
            peer.queue.acknowledged(usize::MAX);
        }
        // Counted as it goes: a peer that reads slowly through a large batch is seen to
        // read (see the ticker).
        let mut written = 0;
        while written < end {
            // The buffers fragments lend (see `outbound::Frame`) are written from where
            // they are.
            let wrote = if batch.lent.is_empty() {
                stream.write(&batch.own[written..end]).await
            } else {
                stream.write_vectored(&batch.io_slices(written, end)).await
            };
            match wrote {
                Ok(0) => {
                    let error = std::io::Error::from(std::io::ErrorKind::WriteZero);
                    report(
                        cluster,
                        peer,
                        NodeDownReason::ConnectionClosed,
                        &error.to_string(),
                    );
                    return None;
                }
                Ok(n) => {
                    written += n;
                    Counters::add(&peer.counters.bytes_sent, n as u64);
                }
                Err(error) => {
                    let text = error.to_string();
                    report(cluster, peer, NodeDownReason::ConnectionClosed, &text);
                    return None;
                }
            }
        }
        // Over TLS, the end of the batch may still be in the session.
        if let Err(error) = stream.flush().await {
            let text = error.to_string();
            report(cluster, peer, NodeDownReason::ConnectionClosed, &text);
            return None;
        }
        if silenced {
            // What fault injection dropped counts as sent.
            Counters::add(&peer.counters.bytes_sent, (batch.len() - written) as u64);
        }
        let more = peer.queue.written();
        Counters::add(&peer.counters.messages_sent, taken.counted as u64);
        since_yield += batch.len();
        batch.own.clear();
        batch.lent.clear();
        // The batch's buffer goes back and forth with the queue's: while more is queued it
        // keeps its size (made again, a large buffer's pages are touched for the first
        // time again); once the connection is quiet, a large one goes.
        if !more && batch.own.capacity() > 1 << 20 {
            batch.own.shrink_to(64 * 1024);
        }
        // Whoever queued the first frame of the batch (and woke the writer for it).
        follow.note_many(peer.queue.told_from(), messages as u32);
        if let Some(destination) = follow.destination() {
            return Some(destination);
        }
        if since_yield >= YIELD_BYTES {
            since_yield = 0;
            yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use crate::dist::wire::{self, Address, WireMessage};
    use crate::node::executors::current_scheduler;
    use crate::Node;

    async fn start(name: &str, seed: Option<&Node>) -> Node {
        crate::dist::testing::start_node(name, "writer tests", seed).await
    }

    #[test]
    fn the_writer_moves_to_the_thread_its_frames_come_from() {
        smol::block_on(async {
            let b = start("writer-b", None).await;
            let a = start("writer-a", Some(&b)).await;
            let deadline = Instant::now() + Duration::from_secs(20);
            while a.connected_nodes().is_empty() {
                assert!(Instant::now() < deadline, "a never connected to b");
                smol::Timer::after(Duration::from_millis(1)).await;
            }
            let cluster = a.inner.cluster.get().unwrap().clone();
            let peer = cluster
                .peer(&b.local_node_id().unwrap().to_string())
                .unwrap();
            // The keys of a's two scheduler threads, and the one the writer is not on.
            let mut threads = BTreeSet::new();
            while threads.len() < 2 {
                assert!(
                    Instant::now() < deadline,
                    "a's threads never both ran a task"
                );
                threads.insert(a.inner.executors.spawn(async { current_scheduler() }).await);
            }
            let writer_at = peer.queue.writer_at.load(Ordering::Relaxed);
            let other = *threads.iter().find(|&&key| key != writer_at).unwrap();
            // Frames queued from a task of the other thread (casts to a pid b does not
            // have, which b drops), in bursts, until the writer is there.
            let queue_from_there = {
                let peer = peer.clone();
                async move {
                    let mut frame = Vec::new();
                    let cast = WireMessage::Cast {
                        to: Address::Pid { serial: u64::MAX },
                        behavior: 0,
                    };
                    while peer.queue.writer_at.load(Ordering::Relaxed) != other {
                        if Instant::now() > deadline {
                            return false;
                        }
                        for _ in 0..100 {
                            wire::encode_frame(&cast, &mut frame).unwrap();
                            let _ = peer.queue.try_push(&mut frame, 0);
                            frame.clear();
                        }
                        smol::future::yield_now().await;
                    }
                    true
                }
            };
            let moved = a
                .inner
                .executors
                .spawn_on_scheduler(other, queue_from_there);
            assert!(moved.unwrap().await, "the writer stayed on its thread");
            a.shutdown();
            b.shutdown();
        });
    }
}
