//! Spawning a registered behaviour on another node.
//!
//! ```text
//! spawner's node                                  target's node
//!   Spawn { id, behaviour, options, link/monitor } + args ──▶  spawns it (link and
//!                                                               monitor set before init)
//!   ◀── SpawnReply { id, Started(serial) | why not }           sent by the new process
//!   records the spawner's link/monitor; answers the spawner
//!   SpawnAck { id, keep } ──▶                                  keeps the process, or
//!                                                               ends it
//! ```
//!
//! The `Started` reply is sent by the new process itself, once `init` has succeeded and
//! before it does anything else, and the spawner's node records the link or monitor the
//! moment it reads that reply: a signal from the process (it may die at once) always comes
//! after, on the same connection, and finds the link or monitor in place — as with a local
//! `spawn_link`, no end is missed and a failed `init` is reported once, as the spawn's
//! result.
//!
//! No process is left behind by a spawn that fails for its spawner: the target keeps a new
//! process only once its spawner says so (`SpawnAck { keep: true }`, sent when the spawn's
//! future takes the pid). If the spawner gave up first (its timeout ran out, or its future
//! was dropped — even with the reply read but not yet taken), if its process ended
//! meanwhile, if the connection is lost, or if no word comes within the spawn's timeout
//! plus the heartbeat timeout, the target kills the process; a link or monitor recorded for
//! it is then undone silently. A word that comes while `init` still runs (the spawner gave
//! up, or the connection was lost) kills it then, `init` and all, rather than once `init`
//! is over: what it holds meanwhile (a global name registered before `init`) does not
//! outlast the spawn.
//!
//! A spawn whose timeout runs out before its request left this node — waiting for room in
//! the connection's queue, or queued and not yet taken by the connection's writer — takes
//! the request back (see `outbound::withdraw`) and fails with `NotSent`: the node was not
//! asked, and never will be, so another node may be tried at once. A request the writer
//! has taken may be on the wire, half written: that spawn fails with `Timeout`, as one
//! the node may have started (and ends, when the spawner's word does not come).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::FutureExt;

use super::cluster::Cluster;
use super::inbound::Payload;
use super::monitor::Watcher;
use super::node_id::NodeId;
use super::peer::Peer;
use super::wire::{self, SpawnRequest, SpawnResult, WireMessage};
use crate::behavior::SpawnParams;
use crate::error::RemoteSpawnError;
use crate::server::deadline::Deadline;
use crate::server::run;
use crate::server::spawn::RemoteSpawner;
use crate::{MonitorRef, Node, Pid, SpawnOptions};

mod results;

use results::failure;

/// The spawns a connection has under way, on either side.
#[derive(Default)]
pub(crate) struct Spawns {
    /// This node's spawns waiting for their reply.
    waiting: HashMap<u64, Waiting>,
    /// This node's spawns whose process has started, until their future takes its pid:
    /// the tie recorded for it, and its serial.
    started: HashMap<u64, (Option<Tie>, u64)>,
    /// The peer's spawns whose process runs here, waiting for the spawner's word.
    unconfirmed: HashMap<u64, oneshot::Sender<bool>>,
}

/// A spawn waiting for its reply, and the ties its spawner holds on the new process.
struct Waiting {
    reply: oneshot::Sender<SpawnResult>,
    tie: Option<Tie>,
}

/// A link or monitor a spawner's process holds on the process it spawns.
#[derive(Clone, Copy)]
pub(crate) struct Tie {
    /// The spawner's serial.
    pub(crate) process: u64,
    pub(crate) link: bool,
    pub(crate) monitor: Option<MonitorRef>,
}

/// Counters of the spawns a node asked of others.
#[derive(Default)]
pub(crate) struct SpawnCounters {
    started: AtomicU64,
    succeeded: AtomicU64,
    timed_out: AtomicU64,
    pending: AtomicU64,
    unreachable: AtomicU64,
    refused: AtomicU64,
    init_failed: AtomicU64,
}

impl SpawnCounters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> super::status::SpawnStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        super::status::SpawnStats {
            started: read(&self.started),
            succeeded: read(&self.succeeded),
            timed_out: read(&self.timed_out),
            pending: read(&self.pending),
            unreachable: read(&self.unreachable),
            refused: read(&self.refused),
            init_failed: read(&self.init_failed),
        }
    }
}

impl Peer {
    /// Fails the spawns under way on this connection (it is closing): waiting spawners
    /// learn the connection is lost, unconfirmed processes are ended.
    pub(crate) fn fail_spawns(&self) {
        let spawns = std::mem::take(&mut *self.spawns());
        drop(spawns);
    }
}

/// A spawn's entries in its connection's table: given up if the spawn's future is dropped
/// or times out before it takes the new process's pid.
struct WaitingEntry<'a> {
    cluster: &'a Cluster,
    peer: &'a Peer,
    id: u64,
    counters: &'a SpawnCounters,
    /// Still counted as pending.
    pending: bool,
}

impl WaitingEntry<'_> {
    /// No longer pending: answered, or given up.
    fn settle(&mut self) {
        if std::mem::take(&mut self.pending) {
            self.counters.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Gives the spawn up if its reply has not been read yet: `true` then, and the target
    /// is told to end the process it may have started. `false` if the reply is read (its
    /// result waits in the channel).
    fn give_up_unanswered(&mut self) -> bool {
        self.settle();
        if self.peer.spawns().waiting.remove(&self.id).is_none() {
            return false;
        }
        self.end_it();
        true
    }

    /// Gives the spawn up without a word to the node: its request was never sent.
    fn unsent(&mut self) {
        self.settle();
        self.peer.spawns().waiting.remove(&self.id);
    }

    /// The spawn's future takes the new process: the target is told to keep it. `false`
    /// if the connection was lost meanwhile.
    fn keep(&mut self) -> bool {
        self.settle();
        if self.peer.spawns().started.remove(&self.id).is_none() {
            return false;
        }
        let keep = WireMessage::SpawnAck {
            id: self.id,
            keep: true,
        };
        send(self.peer, &keep, 0);
        true
    }

    fn end_it(&self) {
        let end = WireMessage::SpawnAck {
            id: self.id,
            keep: false,
        };
        send(self.peer, &end, 0);
    }
}

impl Drop for WaitingEntry<'_> {
    fn drop(&mut self) {
        self.settle();
        let mut spawns = self.peer.spawns();
        let waiting = spawns.waiting.remove(&self.id).is_some();
        let started = spawns.started.remove(&self.id);
        if let Some((Some(tie), child)) = started {
            // The spawner never saw the pid: its tie goes without a word.
            self.cluster.untie_child(self.peer, tie, child);
        }
        drop(spawns);
        if waiting || started.is_some() {
            self.end_it();
        }
    }
}

fn send(peer: &Peer, message: &WireMessage, sender: usize) {
    let mut frame = Vec::new();
    if wire::encode_frame(message, &mut frame).is_ok() {
        let _ = peer.queue.push_signal(&mut frame, sender);
    }
}

impl Cluster {
    /// Spawns the registered behaviour `behavior` on `node` with encoded `args`; `tie` is
    /// the link or monitor the spawning process holds on the new one.
    pub(crate) async fn spawn_remote(
        &self,
        node: &NodeId,
        behavior: &str,
        args: &[u8],
        options: &SpawnOptions,
        tie: Option<Tie>,
    ) -> Result<Pid, RemoteSpawnError> {
        let counters = &self.spawn_counters;
        SpawnCounters::add(&counters.started);
        let unreachable = || {
            SpawnCounters::add(&counters.unreachable);
            RemoteSpawnError::NoConnection { node: node.clone() }
        };
        let lost = || {
            SpawnCounters::add(&counters.unreachable);
            RemoteSpawnError::ConnectionLost { node: node.clone() }
        };
        if let Some(name) = &options.global_name {
            // Refused here rather than by the node asked, which would only say it failed.
            crate::global::check_name(name).map_err(|error| RemoteSpawnError::GlobalName {
                node: node.clone(),
                error,
            })?;
        }
        let peer = self.peer(node.as_str()).ok_or_else(unreachable)?;
        let id = self.next_id();
        let request = SpawnRequest {
            id,
            behavior: behavior.to_owned(),
            name: options.name.clone(),
            global_name: options.global_name.clone(),
            init_timeout_ms: options.init_timeout.map(millis),
            timeout_ms: millis(options.spawn_timeout),
            link: tie.filter(|t| t.link).map(|t| t.process),
            monitor: tie.and_then(|t| t.monitor.map(|m| (m.0, t.process))),
        };
        let mut frame = Vec::new();
        let message = WireMessage::Spawn(Box::new(request));
        let encoded = wire::encode_frame_with(&message, &mut frame, |out| {
            out.extend_from_slice(args);
            Ok(())
        });
        if encoded.is_err() {
            return Err(unreachable());
        }
        // Larger than the node takes: refused here, the node not asked.
        let too_large = |error| results::too_large(counters, node, behavior, error);
        peer.queue.check_size(frame.len()).map_err(too_large)?;
        let (tx, mut reply) = oneshot::async_channel();
        peer.spawns().waiting.insert(id, Waiting { reply: tx, tie });
        if peer.is_closed() {
            peer.fail_spawns();
        }
        SpawnCounters::add(&counters.pending);
        let mut entry = WaitingEntry {
            cluster: self,
            peer: &peer,
            id,
            counters,
            pending: true,
        };
        let not_sent = || {
            SpawnCounters::add(&counters.timed_out);
            RemoteSpawnError::NotSent {
                behavior: behavior.to_owned(),
                node: node.clone(),
                timeout: options.spawn_timeout,
            }
        };
        // The spawn timeout bounds it all, the wait for room in the queue included.
        let mut deadline = Deadline::after(options.spawn_timeout);
        let sent = deadline
            .run(peer.send_withdrawable(&mut frame, run::current_sender()))
            .await;
        let (answered, queued) = match sent {
            Some(Ok(queued)) => match deadline.run(&mut reply).await {
                Some(answered) => (Some(answered), queued),
                // Too late, and still queued: taken back, the node was not asked.
                None if queued.as_ref().is_some_and(|q| peer.queue.withdraw(q)) => {
                    entry.unsent();
                    return Err(not_sent());
                }
                None => (None, queued),
            },
            Some(Err(_)) => {
                entry.give_up_unanswered();
                return Err(unreachable());
            }
            // Never queued: the node was not asked.
            None => {
                entry.unsent();
                return Err(not_sent());
            }
        };
        let answered = match answered {
            Some(answered) => answered,
            // Too late — unless the reply was read just then.
            None if entry.give_up_unanswered() => {
                SpawnCounters::add(&counters.timed_out);
                return Err(RemoteSpawnError::Timeout {
                    behavior: behavior.to_owned(),
                    node: node.clone(),
                    timeout: options.spawn_timeout,
                });
            }
            None => reply.await,
        };
        entry.settle();
        // No result: the connection was lost — the request perhaps read there, unless it
        // was still queued as the connection closed.
        let Ok(result) = answered else {
            return match queued.as_ref().is_some_and(|q| peer.queue.withdraw(q)) {
                true => Err(unreachable()),
                false => Err(lost()),
            };
        };
        let error = match result {
            SpawnResult::Started(serial) if entry.keep() => {
                SpawnCounters::add(&counters.succeeded);
                return Ok(peer.pid_of(serial));
            }
            // Started, and the connection lost as the reply was read.
            SpawnResult::Started(_) => return Err(lost()),
            failure => failure,
        };
        Err(results::refused(counters, node, behavior, options, error))
    }

    /// The reply to one of this node's spawns, read from `peer`: the spawner's link or
    /// monitor is recorded now, before any later signal of the new process is read. The
    /// process is kept once the spawn's future takes its pid (see [`WaitingEntry::keep`]).
    /// If the tie cannot be made (the spawner has ended, the connection is being lost),
    /// the target is told to end the process and the future learns the node is lost.
    pub(crate) fn spawn_answered(&self, peer: &Arc<Peer>, id: u64, result: SpawnResult) {
        let mut spawns = peer.spawns();
        let Some(waiting) = spawns.waiting.remove(&id) else {
            // Given up: the target has been told.
            return;
        };
        if let SpawnResult::Started(serial) = result {
            let tied = match waiting.tie {
                Some(tie) => self.tie_to_child(peer, tie, serial),
                None => !peer.ties().lost,
            };
            if !tied {
                drop(spawns);
                send(peer, &WireMessage::SpawnAck { id, keep: false }, 0);
                // The reply channel closes: the spawn fails as unreachable.
                return;
            }
            spawns.started.insert(id, (waiting.tie, serial));
        }
        drop(spawns);
        let _ = waiting.reply.send(result);
    }

    /// Records the link or monitor a spawning process holds on its new process of `peer`;
    /// `false` (with nothing recorded) if the spawner has ended or the connection is lost.
    fn tie_to_child(&self, peer: &Peer, tie: Tie, child: u64) -> bool {
        let Some(node) = self.node() else {
            return false;
        };
        let Some(spawner) = node.table.get(tie.process) else {
            return false;
        };
        let core = spawner.core();
        let child_pid = peer.pid_of(child);
        let mut ties = peer.ties();
        if ties.lost {
            return false;
        }
        if tie.link {
            if !core.add_link(&child_pid) {
                return false;
            }
            ties.links.insert((tie.process, child));
        }
        if let Some(monitor) = tie.monitor {
            if !core.add_watching(monitor, &child_pid) {
                drop(ties);
                self.untie_child(
                    peer,
                    Tie {
                        monitor: None,
                        ..tie
                    },
                    child,
                );
                return false;
            }
            ties.watching
                .insert(monitor, (Watcher::Process(tie.process), child));
        }
        true
    }

    /// Undoes what [`tie_to_child`](Self::tie_to_child) recorded, without a word to anyone:
    /// the spawner never saw the new process.
    fn untie_child(&self, peer: &Peer, tie: Tie, child: u64) {
        let child_pid = peer.pid_of(child);
        {
            let mut ties = peer.ties();
            if tie.link {
                ties.links.remove(&(tie.process, child));
            }
            if let Some(monitor) = tie.monitor {
                ties.watching.remove(&monitor);
            }
        }
        let spawner = self.node().and_then(|node| node.table.get(tie.process));
        if let Some(spawner) = spawner {
            let core = spawner.core();
            if tie.link {
                core.remove_link(&child_pid);
            }
            if let Some(monitor) = tie.monitor {
                core.remove_watching(monitor);
            }
        }
    }

    /// The spawner's word on a process spawned here for `peer`.
    pub(crate) fn spawn_confirmed(&self, peer: &Peer, id: u64, keep: bool) {
        if let Some(waiting) = peer.spawns().unconfirmed.remove(&id) {
            let _ = waiting.send(keep);
        }
    }

    /// A request from `peer` to spawn a registered behaviour here.
    pub(crate) fn receive_spawn(
        self: &Arc<Self>,
        peer: &Arc<Peer>,
        request: SpawnRequest,
        args: Payload<'_>,
    ) {
        let (tx, confirmed) = oneshot::async_channel();
        peer.spawns().unconfirmed.insert(request.id, tx);
        if peer.is_closed() {
            peer.fail_spawns();
        }
        let args = args.bytes().to_vec();
        let (cluster, peer) = (self.clone(), peer.clone());
        self.spawn(async move { cluster.serve_spawn(peer, request, args, confirmed).await });
    }

    async fn serve_spawn(
        self: Arc<Self>,
        peer: Arc<Peer>,
        request: SpawnRequest,
        args: Vec<u8>,
        confirmed: oneshot::AsyncReceiver<bool>,
    ) {
        let id = request.id;
        // However this task ends, the spawner's word is no longer awaited.
        let _unconfirmed = Unconfirmed { peer: &peer, id };
        // Answered once: by the new process when it has started, or by this task.
        let answered = Arc::new(AtomicBool::new(false));
        let answer = |result: SpawnResult| {
            if !answered.swap(true, Ordering::AcqRel) {
                send(&peer, &WireMessage::SpawnReply { id, result }, 0);
            }
        };
        let Some(node) = self.node() else {
            return answer(SpawnResult::ShuttingDown);
        };
        if self.config.hidden {
            return answer(SpawnResult::Hidden);
        }
        let entry = match node.behaviors.find(&request.behavior) {
            Ok(entry) => entry,
            Err(error) => return answer(failure(error)),
        };
        let link = request.link.map(|serial| peer.pid_of(serial));
        let monitor = request
            .monitor
            .map(|(monitor, watcher)| (MonitorRef(monitor), peer.pid_of(watcher)));
        let on_started = {
            let (peer, answered) = (peer.clone(), answered.clone());
            let ties = (request.link, request.monitor);
            move |pid: &Pid, key: usize| {
                if answered.swap(true, Ordering::AcqRel) {
                    return;
                }
                {
                    let mut peer_ties = peer.ties();
                    if let Some(spawner) = ties.0 {
                        peer_ties.links.insert((pid.serial(), spawner));
                    }
                    if let Some((monitor, watcher)) = ties.1 {
                        peer_ties
                            .watched
                            .insert((MonitorRef(monitor), watcher), pid.serial());
                    }
                }
                let result = SpawnResult::Started(pid.serial());
                send(&peer, &WireMessage::SpawnReply { id, result }, key);
            }
        };
        let spawned_pid = Arc::new(std::sync::OnceLock::new());
        let options = SpawnOptions {
            name: request.name.clone(),
            global_name: request.global_name.clone(),
            init_timeout: request.init_timeout_ms.map(Duration::from_millis),
            ..SpawnOptions::new()
        };
        let params = SpawnParams {
            options,
            remote: Some(Box::new(RemoteSpawner {
                link,
                monitor,
                on_started: Box::new(on_started),
                spawned: spawned_pid.clone(),
            })),
            linked: None,
        };
        let local = Node::from_inner(node.clone());
        // The spawner's word: `keep` once it has the pid; `false` if it gives up (its
        // timeout, its future dropped) or the connection is lost — which may come while
        // `init` still runs.
        let mut word = std::pin::pin!(async { confirmed.await.unwrap_or(false) }.or(async {
            peer.closed().await;
            false
        }));
        let mut spawning = std::pin::pin!((entry.spawn)(&local, &args, params));
        // The word, if it comes before the spawn has ended (a `keep` can: the process
        // sends its pid as soon as `init` has succeeded).
        let mut early = None;
        let ended = async { Some(spawning.as_mut().await) }
            .or(async {
                early = Some(word.as_mut().await);
                None
            })
            .await;
        let spawned = match (ended, early) {
            (Some(spawned), _) => spawned,
            (None, Some(true)) => spawning.as_mut().await,
            (None, _) => {
                // Ended now rather than once `init` is over: its side effects (a global
                // name it holds) would outlast a spawn nobody waits for.
                if let Some(pid) = spawned_pid.get() {
                    tracing::debug!(%pid, "its spawner gave up during init; ending it");
                    node.kill(pid);
                }
                return;
            }
        };
        let pid = match spawned {
            Ok(pid) => pid,
            Err(error) => return answer(failure(error)),
        };
        // Kept only on the spawner's word.
        let keep = match early {
            Some(keep) => keep,
            None => {
                let wait = Duration::from_millis(request.timeout_ms)
                    .saturating_add(self.config.heartbeat_timeout);
                Deadline::after(wait).run(word.as_mut()).await == Some(true)
            }
        };
        if !keep {
            tracing::debug!(%pid, "its spawner did not keep it; ending it");
            node.kill(&pid);
        }
    }
}

/// Removes a spawn's wait for its spawner's word when the task serving it ends.
struct Unconfirmed<'a> {
    peer: &'a Peer,
    id: u64,
}

impl Drop for Unconfirmed<'_> {
    fn drop(&mut self) {
        self.peer.spawns().unconfirmed.remove(&self.id);
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
