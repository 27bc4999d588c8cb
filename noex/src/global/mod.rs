//! The global registry and process groups: cluster-wide unique names, and Erlang's `pg`.
//!
//! The operations are methods of [`Node`](crate::Node): [`register_global`](crate::Node::register_global),
//! [`whereis_global`](crate::Node::whereis_global), [`lookup_global`](crate::Node::lookup_global),
//! [`named_global`](crate::Node::named_global), [`unregister_global`](crate::Node::unregister_global),
//! [`join_group`](crate::Node::join_group), [`group_members`](crate::Node::group_members),
//! [`monitor_group`](crate::Node::monitor_group) and their kin;
//! [`SpawnOptions::global_name`](crate::SpawnOptions::global_name) registers a process
//! (on any node) before its `init`. This page says how they work.
//!
//! Every node keeps a replica of the whole table, so a lookup is a read of local memory
//! (one lock and one hash lookup, like the local registry). Each node is the authority
//! for the names and group memberships of its own processes: it is the only one that
//! registers, unregisters or releases them, and it tells every peer (`Registered`,
//! `Unregistered`, `Joined`, `Left`, `LeftGroups`, on the connection's control lane, in
//! order). A node that connects receives, from every peer, everything that peer's
//! processes hold (`Sync`); a node that goes down takes its processes' names and
//! memberships with it, on every node at the moment each sees it go.
//!
//! # Registering a name: one winner
//!
//! A registration runs on the node of the process (a registration of a process of
//! another node is forwarded there) as a round of Ricart–Agrawala mutual exclusion for
//! the name, among the nodes connected at that moment:
//!
//! 1. The node stamps its claim with its clock, `(time, node id)`, and sends
//!    `Claim` to every connected node (and to any node that connects while it waits).
//! 2. A node that has its own earlier claim to the same name (a smaller stamp) keeps the
//!    answer back until its claim is settled; any other node answers `Grant` at once —
//!    unless its replica has the name held by a process of a third node, which it then
//!    asks first (see *Partial partitions* below). A claim seen moves the receiver's
//!    clock past it, so a claim made afterwards on any node has a greater stamp.
//! 3. With every grant in, the claiming node looks at its replica: if the name is free it
//!    registers it and tells every node (`Registered`), then sends the grants it kept
//!    back. If not, or if a node refused the claim, it fails with `Taken`. A node that
//!    holds the name itself sends its registration along with its grant, so a claimant
//!    whose replica missed it learns of it in time.
//!
//! So of two concurrent claims to one name, the one with the smaller stamp is settled
//! first, everywhere; the other is settled after its node has seen the first one's
//! `Registered` (it travels on the same connection, before the grant), and fails with
//! `Taken`. Exactly one wins. Claims of different names never wait for each other, and a
//! registration costs one round trip to the slowest peer (two if a peer asks first), with
//! no cluster-wide lock: nothing waits for a node that is lost, whose grant is no longer
//! awaited.
//!
//! The round covers the nodes each claimant is connected to. While a node is joining —
//! connected to some members but not yet to all — it and a member it has not reached can
//! both register one name; they meet moments later, and the conflict rule below keeps one.
//! Names are at most [`MAX_NAME_LEN`] bytes (as Erlang's atoms).
//!
//! # Partitions: the conflict rule
//!
//! Nodes that cannot reach each other register independently, so when a partition heals,
//! one name may be held on both sides. Every node applies the same rule to the two
//! registrations, whatever order it learns them in: **the registration with the smaller
//! stamp keeps the name** — the one registered earlier in Lamport time, ties broken by
//! the owners' node ids. The clock is a hybrid one: a Lamport clock that is never behind
//! the wall clock (in milliseconds), so that of two registrations made on two sides of a
//! partition, the earlier in real time wins (up to the nodes' clock skew), whatever
//! either side did before — a node that restarted does not take a name held for hours.
//! The loser's node removes its registration, tells every node (`Unregistered`), and
//! sends the losing process an exit signal from the winner with reason
//! [`ExitReason::NameConflict`](crate::ExitReason::NameConflict): a process that does not
//! trap exits ends; one that does receives `Info::Exit` and decides. Every node
//! that sees the conflict publishes [`GlobalEvent::Conflict`]. A node that hears of the
//! loser's registration keeps it aside until the loser's node withdraws it: should the
//! winner go first (its process ends, its node is lost), the loser holds the name there as
//! it does on its own node.
//!
//! # How stale a replica can be
//!
//! A change reaches another node one message after it is made (the `Registered` or
//! `Unregistered` of the owning node, sent before anything else that node sends later),
//! so a replica is behind by at most the time a message takes between the two nodes —
//! well under a millisecond on a LAN. A node that is lost is dropped from the tables when
//! its loss is detected (at most the failure-detection timeout). Names converge once
//! every pair of nodes is connected: a node that reaches one side of a partition but not
//! the other holds what it has heard.
//!
//! # Partial partitions
//!
//! A partition need not split the cluster cleanly: with nodes a, b and c, the link a–c
//! may fail while a–b and b–c work. a and c then see each other as lost, b sees both.
//! noex keeps every connection that works (Erlang's `global` instead disconnects nodes
//! until the partitions are clean, its `prevent_overlapping_partitions`), and each view
//! is what that node can reach:
//!
//! - **Lookups answer the node's own view.** a drops the names and group members of c's
//!   processes as it does for any lost node, so on a [`whereis_global`](crate::Node::whereis_global)
//!   of a name held on c answers `None` and a call by that name fails with
//!   [`CallError::NoProc`](crate::CallError::NoProc), while on b and c the name reaches
//!   c's process. A call from a to a process of c fails at once with
//!   [`CallError::NoConnection`](crate::CallError::NoConnection).
//! - **A name held on c cannot be registered on a.** b, whose replica has the name held
//!   by c's process, cannot tell a cut link from a replica merely behind (the holder gave
//!   the name up, or c crashed, and a saw it first), so it asks c (`Ask`) before it
//!   answers a's claim. If c's process still holds the name, b refuses (`Held`) and the
//!   registration fails with [`GlobalError::NameTaken`] naming it (a records nothing of a
//!   node it does not reach). If not — c answers after its `Unregistered` — or if b loses
//!   c first, b grants as before: a registration waits at most one more round trip, or,
//!   when c has crashed, until b sees it lost. A holder that gives the name up just after
//!   c answered still fails the registration, as one the claimant's replica shows would.
//! - **Two registrations at the same moment, on a and on c**, are both granted if b takes
//!   both claims before either is registered. b then holds both registrations and
//!   applies the conflict rule to them (below) as to any pair; since a and c may not
//!   hear of each other, b tells the loser's node (`Superseded`), whose process gives
//!   the name up and is told as on any conflict. The name has two holders only for that
//!   round trip, and one, everywhere, once the link heals.
//! - **A longer chain a–b–c–d** is a known limitation: records travel one hop, so no
//!   node sees both a name held on a and a claim from d, and both registrations succeed.
//!   Each side answers its own holder until a link between them heals; then the rule
//!   keeps one, everywhere, and the loser is told.
//! - **Groups** need nothing of the kind: a sees the members on a and b, c those on b
//!   and c, b all of them, until the link heals and every node sees every member.
//!
//! # Groups
//!
//! Groups work as Erlang's `pg`: no claims and no cluster-wide lock. A process joins and
//! leaves through its own node, which tells every peer; a group's members across the
//! cluster are the union of every node's local members. Joins are counted, as in `pg`:
//! the process keeps how many times it joined each group, and its node tells its peers
//! only of its first join and its last leave, so every replica has each member once. It
//! leaves its groups when it ends: its node tells each peer of all of them in one message
//! (`LeftGroups`, as `pg` batches them; a few for groups whose names fill more than a
//! `Sync` part), which the peer applies in one step. A join, a leave and a lost node's
//! removal cost O(log n) a member, n the group's size, and O(log k) for a process in k
//! groups; a group's members are kept in order, so
//! [`group_members`](crate::Node::group_members) is a copy.
//! [`monitor_group`](crate::Node::monitor_group) takes a group's members and subscribes
//! to its changes at one moment (as `pg:monitor/2`), and
//! [`monitor_groups`](crate::Node::monitor_groups) every group's (as
//! `pg:monitor_scope/1`): the replica tells the monitors of each change as it makes it,
//! under the lock the snapshot is read under.

mod ask;
mod forward;
mod groups;
mod key;
mod membership;
mod names;
mod probe;
pub(crate) mod protocol;
mod replica;
mod verdict;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use event_listener::Event;

use self::membership::Groups;
use self::names::Claim;
use self::protocol::{ForwardResult, GlobalMessage, SYNC_BYTES};
use self::replica::{Change, Table};
use crate::dist::peer::Peer;
use crate::dist::wire::WireMessage;
use crate::error::GlobalError;
use crate::events::EventBus;
use crate::node::NodeInner;
use crate::Pid;

pub use membership::GroupEvent;
pub(crate) use replica::Behavior;

/// How long a registration (or a forwarded operation) may wait for the cluster before it
/// fails with [`GlobalError::Timeout`]. A lost node's answer is not awaited past its
/// loss, so this only bounds waits on a node that is connected but does not answer.
pub const GLOBAL_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest global name or group name, in bytes (as Erlang's atoms).
pub const MAX_NAME_LEN: usize = 255;

/// Milliseconds since the Unix epoch (0 for a clock set before it).
fn wall_millis() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX >> 2))
}

/// The most a `Sync` part (or a `LeftGroups`) holds, roughly: [`SYNC_BYTES`], or a quarter
/// of the frames the peers take if that is less.
fn sync_budget(node: &NodeInner) -> usize {
    node.cluster.get().map_or(SYNC_BYTES, |cluster| {
        (cluster.config.max_frame_size / 4).clamp(1024, SYNC_BYTES)
    })
}

/// Refuses an operation of a hidden node, which takes no part in the global registry.
fn check_visible(node: &NodeInner) -> Result<(), GlobalError> {
    match node.cluster.get().is_some_and(|c| c.config.hidden) {
        true => Err(GlobalError::HiddenNode {
            node: node.name.to_string(),
        }),
        false => Ok(()),
    }
}

/// Refuses a name longer than [`MAX_NAME_LEN`].
pub(crate) fn check_name(name: &str) -> Result<(), GlobalError> {
    match name.len() <= MAX_NAME_LEN {
        true => Ok(()),
        false => Err(GlobalError::NameTooLong {
            len: name.len(),
            max: MAX_NAME_LEN,
        }),
    }
}

/// A change of the global registry or of a process group, seen by one node (from
/// [`Node::global_events`](crate::Node::global_events); the group changes alone from
/// [`Node::monitor_groups`](crate::Node::monitor_groups)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GlobalEvent {
    /// A process now holds a global name.
    Registered {
        /// The name.
        name: String,
        /// The process.
        pid: Pid,
    },
    /// A process no longer holds a global name: it was unregistered, the process ended,
    /// its node was lost, or it lost a conflict.
    Unregistered {
        /// The name.
        name: String,
        /// The process.
        pid: Pid,
    },
    /// Two processes held one name (registered on both sides of a partition): `winner`
    /// keeps it, `loser` was told with an exit signal.
    Conflict {
        /// The name.
        name: String,
        /// The process that keeps it.
        winner: Pid,
        /// The process that lost it.
        loser: Pid,
    },
    /// A process joined a group (its first join: see
    /// [`Node::join_group`](crate::Node::join_group)).
    Joined {
        /// The group.
        group: String,
        /// The process.
        pid: Pid,
    },
    /// A process left a group (as many times as it joined), ended, or its node was lost.
    Left {
        /// The group.
        group: String,
        /// The process.
        pid: Pid,
    },
}

/// The global registry and groups of one node: its replica and its part in the protocol.
#[derive(Default)]
pub(crate) struct Global {
    /// The replica of every name in the cluster.
    names: Mutex<Table>,
    /// The replica of every group.
    groups: Mutex<Groups>,
    /// Claims and forwarded operations under way. Every change of the tables is made
    /// under this lock (then the table's own), so that what a new peer is sent at connect
    /// and what every peer is told afterwards follow one order.
    state: Mutex<State>,
    /// The Lamport clock of claims.
    clock: AtomicU64,
    /// Notified when a claim of this node is settled.
    settled: Event,
    pub(crate) events: EventBus<GlobalEvent>,
}

#[derive(Default)]
struct State {
    claims: HashMap<u64, Claim>,
    /// This node's claim of each name, if any (one at a time per name).
    claimed: HashMap<Arc<str>, u64>,
    next_id: u64,
    /// Operations forwarded to other nodes, awaiting their answer: (node, the connection
    /// it went over, answer).
    forwards: HashMap<u64, Forward>,
    /// Claims of other nodes this node answers once the holder's node has (see `ask`).
    questions: HashMap<u64, ask::Question>,
    /// Claims of other nodes taken, for tests (`probe`).
    claims_taken: u64,
    /// Messages taken from peers, for tests (`probe`).
    messages_received: u64,
}

type Forward = (Arc<str>, Weak<Peer>, oneshot::Sender<ForwardResult>);

impl State {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Global {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn names(&self) -> MutexGuard<'_, Table> {
        lock(&self.names)
    }

    fn groups(&self) -> MutexGuard<'_, Groups> {
        lock(&self.groups)
    }

    /// The process holding `name`.
    pub(crate) fn whereis(&self, name: &str) -> Option<Pid> {
        self.names().get(name).map(|entry| entry.pid.clone())
    }

    /// The process holding `name` and its behaviour.
    pub(crate) fn entry(&self, name: &str) -> Option<(Pid, Behavior)> {
        self.names()
            .get(name)
            .map(|entry| (entry.pid.clone(), entry.behavior.clone()))
    }

    /// Every (name, pid) pair, sorted by name.
    pub(crate) fn all(&self) -> Vec<(String, Pid)> {
        let mut all: Vec<_> = self
            .names()
            .iter()
            .map(|(name, entry)| (name.as_str().to_owned(), entry.pid.clone()))
            .collect();
        all.sort();
        all
    }

    /// The members of `group` across the cluster, sorted.
    pub(crate) fn members(&self, group: &str) -> Vec<Pid> {
        self.groups().members(group)
    }

    /// The members of `group` on node `own`, sorted.
    pub(crate) fn node_members(&self, group: &str, own: &str) -> Vec<Pid> {
        self.groups().node_members(group, own)
    }

    /// Every group with members, sorted.
    pub(crate) fn which_groups(&self) -> Vec<String> {
        self.groups().names()
    }

    /// Moves the clock past `time`. A time no clock reaches (past 2^62, from a peer that
    /// misbehaves) is ignored, so the clock never wraps.
    fn observe(&self, time: u64) {
        if time < 1 << 62 {
            self.clock.fetch_max(time, Ordering::Relaxed);
        }
    }

    /// The stamp of a new claim: past every stamp this node made or saw, and at least the
    /// wall clock in milliseconds (a hybrid logical clock). So a registration made after
    /// another in real time (by more than the nodes' clock skew) has the greater stamp
    /// even when its node has just started and seen nothing — a restarted node does not
    /// win back a name held since long before it started.
    fn tick(&self) -> u64 {
        self.clock.fetch_max(wall_millis(), Ordering::Relaxed);
        self.clock.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Holds this node's global state while a new connection is installed, so that the
    /// connection it replaces can have its node's names and members removed before the
    /// loss is reported (see `Replacing`). Taken before the cluster's lock, as the global
    /// state always is.
    pub(crate) fn replacing(&self) -> Replacing<'_> {
        Replacing {
            global: self,
            state: self.state(),
        }
    }

    /// A connection to `peer` is up: what an earlier connection to its node left is
    /// cleared, then this node sends what its processes hold, and the claims it is waiting
    /// on (the new node's grant is needed too). Runs before the connection's reader takes
    /// anything.
    pub(crate) fn peer_up(&self, node: &NodeInner, peer: &Peer) {
        let mut state = self.state();
        let id = peer.id.as_str();
        self.forget_node(&mut state, id, Some(peer));
        for claim in state.claims.values_mut() {
            // Asked again over this connection by `claims_meet`.
            claim.waiting.retain(|n| &**n != id);
        }
        let budget = sync_budget(node);
        let own = node.name.as_ref();
        let names = self.names().local_records(own);
        let groups = self.groups().local_records(own, budget / 10);
        let (mut names, mut groups) = (names.into_iter().peekable(), groups.into_iter().peekable());
        // At least one part, so that the peer hears from this node even when it holds
        // nothing; each part within the budget (and at least one record).
        loop {
            let (mut part, mut bytes) = (GlobalMessage::sync(), 0);
            let GlobalMessage::Sync {
                names: n,
                groups: g,
            } = &mut part
            else {
                unreachable!()
            };
            while let Some(record) = names.next_if(|r| n.is_empty() || bytes + r.size() <= budget) {
                bytes += record.size();
                n.push(record);
            }
            while let Some(record) =
                groups.next_if(|r| n.len() + g.len() == 0 || bytes + r.size() <= budget)
            {
                bytes += record.size();
                g.push(record);
            }
            let last = names.peek().is_none() && groups.peek().is_none();
            let _ = peer
                .queue
                .push_control(&WireMessage::Global(Box::new(part)));
            if last {
                break;
            }
        }
        self.claims_meet(&mut state, peer);
        self.questions_meet(&mut state, peer);
    }

    /// The connection to `peer` is lost: its node's names and members leave the tables,
    /// its grants are no longer awaited, and what was forwarded to it fails. Nothing
    /// happens if a newer connection to its node is up already (that one's `peer_up`
    /// cleared what this one left).
    pub(crate) fn peer_down(&self, node: &NodeInner, peer: &Arc<Peer>) {
        let mut state = self.state();
        // A newer connection this node shares the tables over takes it from here (see
        // `peer_up`); a hidden one (the node came back hidden) does not.
        let current = node.cluster.get().and_then(|c| {
            c.peer(peer.id.as_str())
                .filter(|current| c.shares_with(current))
        });
        if current.is_some_and(|current| !Arc::ptr_eq(&current, peer)) {
            return;
        }
        self.forget_node(&mut state, peer.id.as_str(), None);
        self.claims_lose(node, &mut state, peer);
        self.questions_lose(node, &mut state, peer.id.as_str());
    }

    /// Forgets what node `lost` held and what this node awaits of it, but its grants and
    /// the answers awaited over `kept`, its connection that has just come up.
    fn forget_node(&self, state: &mut State, lost: &str, kept: Option<&Peer>) {
        let removed = self.names().remove_node(lost);
        for (name, pid, change) in removed {
            self.released(&name, &pid, change);
        }
        let left = self.groups().remove_node(lost);
        for (group, pid) in left {
            self.events.publish(GlobalEvent::Left {
                group: group.to_string(),
                pid,
            });
        }
        // Dropped answers: their callers learn the node is lost. An operation forwarded
        // over the new connection (found in the moment before this runs) is answered.
        let over = |conn: &Weak<Peer>| kept.is_some_and(|k| std::ptr::eq(conn.as_ptr(), k));
        state
            .forwards
            .retain(|_, (node, conn, _)| &**node != lost || over(conn));
        for claim in state.claims.values_mut() {
            claim.deferred.retain(|(p, _)| p.id.as_str() != lost);
        }
    }

    /// A message of the global protocol from `peer`.
    pub(crate) fn receive(&self, node: &Arc<NodeInner>, peer: &Arc<Peer>, message: GlobalMessage) {
        let mut state = self.state();
        state.messages_received += 1;
        // A message read just as its connection was lost would outlive the cleanup.
        if peer.is_closed() {
            return;
        }
        match message {
            GlobalMessage::Sync { names, groups } => {
                for record in names {
                    self.merge(node, peer, record);
                }
                for record in groups {
                    for serial in record.serials {
                        self.joined(peer, &record.group, serial);
                    }
                }
            }
            GlobalMessage::Claim { id, name, time } => {
                self.claimed(node, &mut state, (peer, id), &name, time)
            }
            GlobalMessage::Grant { id } => self.granted(node, &mut state, peer, id),
            GlobalMessage::Registered(record) => self.merge(node, peer, record),
            GlobalMessage::Unregistered { name, serial } => {
                let pid = peer.pid_of(serial);
                let change = self.names().release(&name, &pid);
                self.released(&name, &pid, change);
            }
            GlobalMessage::Joined { group, serial } => self.joined(peer, &group, serial),
            GlobalMessage::Left { group, serial } => self.left(peer, serial, &[group]),
            GlobalMessage::LeftGroups { serial, groups } => self.left(peer, serial, &groups),
            GlobalMessage::Forward { id, op } => {
                drop(state);
                forward::forwarded(node, peer, id, op);
            }
            GlobalMessage::Forwarded { id, result } => {
                if let Some((_, _, answer)) = state.forwards.remove(&id) {
                    let _ = answer.send(result);
                }
            }
            GlobalMessage::Ask { id, name } => self.asked(node, peer, id, &name),
            GlobalMessage::Answer { id, holder } => {
                self.answered(node, &mut state, peer, (id, holder))
            }
            GlobalMessage::Held { id, holder } => self.refused(&mut state, peer, id, holder),
            GlobalMessage::Superseded {
                name,
                serial,
                time,
                winner,
                winner_time,
            } => self.superseded(node, &name, (serial, time), (winner, winner_time)),
        }
    }

    /// Tells every peer `message`.
    fn broadcast(&self, node: &NodeInner, message: GlobalMessage) {
        let Some(cluster) = node.cluster.get() else {
            return;
        };
        let message = WireMessage::Global(Box::new(message));
        for peer in cluster.peers() {
            let _ = peer.queue.push_control(&message);
        }
    }

    /// The process `pid` of this node ended holding `names` and member of `groups`: they
    /// are released here and on every peer, before its links and monitors hear of its
    /// end.
    pub(crate) fn process_ended<'a>(
        &self,
        node: &NodeInner,
        pid: &Pid,
        names: &[Arc<str>],
        groups: impl Iterator<Item = &'a Arc<str>>,
    ) {
        let _state = self.state();
        for name in names {
            let change = self.names().release(name, pid);
            if !matches!(change, Change::None) {
                self.broadcast(
                    node,
                    GlobalMessage::Unregistered {
                        name: name.to_string(),
                        serial: pid.serial(),
                    },
                );
                self.released(name, pid, change);
            }
        }
        self.ended_in_groups(node, pid, groups);
    }
}

/// This node's global state, held while `Cluster::register` installs a new connection.
pub(crate) struct Replacing<'a> {
    global: &'a Global,
    state: MutexGuard<'a, State>,
}

impl Replacing<'_> {
    /// The connection to `node` is being replaced (its node restarted, or a second
    /// connection won): what it held goes now, before its `NodeDown` is published —
    /// as `peer_down` does for a connection lost on its own. Its pending claims are left
    /// to `peer_up`, which asks them again over the new connection — or, if the new one is
    /// hidden (it shares no tables), to `peer_down` of the old one, which stops waiting
    /// for its grants.
    pub(crate) fn connection_replaced(&mut self, node: &str) {
        self.global.forget_node(&mut self.state, node, None);
    }
}
