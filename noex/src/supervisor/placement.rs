//! Placing children on the nodes of a cluster: what makes a [`Supervisor`] a
//! [`DistributedSupervisor`].
//!
//! A supervisor whose spec has a [`NodeSelector`] ([`SupervisorSpec::distributed`]) starts
//! each child that can cross nodes — a behaviour with serde messages, given typed
//! ([`ChildSpec::worker`]) or by registered name ([`ChildSpec::by_name`]) — on the node the
//! selector picks among this node and the connected ones, linked to the supervisor across
//! the nodes. Everything else is the supervisor's contract: strategies, restart types,
//! shutdowns, intensity, names (a child's global name follows it from node to node).
//!
//! # When a node goes down
//!
//! The link of every child that ran there breaks with [`ExitReason::NoConnection`]: the
//! child is restarted by its restart type and the strategy (a temporary child is dropped),
//! on a node the selector picks among those still connected. That is a *migration*,
//! counted in [`DistributionStats`]. The children lost with one node move together and
//! cost the restart intensity one restart, however many there were (a node's loss is no
//! child's fault; counted one per child, a node that held four children would take a
//! supervisor of the default 3 in 5 s down with it, and every child on every node); the
//! intensity still bounds storms of nodes lost one after another. The supervisor
//! decides a while after the loss (see below; a node that leaves is no such wait), on
//! the view of the cluster then — a loss that takes several nodes (a partition) is seen
//! whole, not one connection at a time. A
//! restart that fails (no node can take the child, say) is tried again every
//! `MAJORITY_RETRY`, each attempt counting toward the intensity.
//!
//! # When the supervisor's node goes down
//!
//! Its children end where they run (rule 2 below), and nothing starts them again: run the
//! supervisor as a [`Singleton`](super::Singleton) — a manager on every node that may host
//! it — and another node starts the supervisor again, which starts its children again.
//! A supervisor's requests ([`which_children`](crate::ServerRef::which_children),
//! [`start_child`]...) do not cross nodes (a [`ChildSpec`](super::ChildSpec) holds
//! functions): ask them on the node where it runs
//! ([`Node::lookup_global`](crate::Node::lookup_global) there).
//!
//! # When a node leaves
//!
//! A node that shuts down ([`Node::shutdown`](crate::Node::shutdown)) first tells its
//! peers that it leaves: from then on no new child is placed there (it shows as
//! [`NodeStatus::Leaving`]). It then stops its processes
//! before it says goodbye, so a child there ends with [`ExitReason::Shutdown`] (or however
//! its `terminate` left it) rather than `NoConnection`. The end of a child on a node that
//! announced its leave is taken for the node's loss, whatever its reason: the child moves
//! as above (a transient child stopped there is not gone for good; a temporary one is
//! dropped), in the same single restart for the node.
//!
//! It moves without the migration delay, though: its node told its end, so it has ended,
//! and nothing runs on there unseen. The node stops the children of this supervisor
//! together (each by its `terminate`); once the last of them there has ended, they move
//! together, in one restart — as soon as this side sees a majority. A leaving node is no
//! longer seen but still a known member until its goodbye: a cluster of three that loses
//! one this way still sees two of three, and the children move at once; the other node of
//! a cluster of two waits for the goodbye, which leaves it the whole cluster. A rolling
//! restart thus moves each node's children as soon as they have stopped, however slow the
//! heartbeats.
//!
//! A child still running when the leaving node closes its connections (its `terminate`
//! outlasting the shutdown's 5 s, or the connection lost meanwhile) ends with
//! `NoConnection`, as on any lost node: it may run on there, unseen, and the node's
//! children — those that ended before it too — move together after the migration delay.
//!
//! A loss costs one restart of the child's group, whatever the strategy: children lost
//! with one node move together; with `OneForAll` or `RestForOne`, a child lost with its
//! node while its group restarts anyway (for a sibling that crashed, or a child of another
//! lost node) starts with that restart, once its own wait below is over, and is not
//! restarted again for its own loss. Every start of a lost child counts as a migration.
//!
//! A start on another node may take the child's init timeout and 5 s more (10 s at
//! least, the default spawn timeout; without an init timeout, as long as it takes).
//! A node that was asked to start a child and gave no answer — the connection was lost,
//! or the spawn timed out ([`RemoteSpawnError::ConnectionLost`],
//! [`RemoteSpawnError::Timeout`]) — may run it until it notices: the child is then
//! treated as lost with that node (a restart waits as a migration does; a start asked
//! for with [`start_child`] fails instead of trying another node). A spawn that timed out
//! before its request left the supervisor's node ([`RemoteSpawnError::NotSent`]: the
//! connection was backed up) asked nothing: another node is tried at once.
//!
//! # Partitions: a child never runs twice
//!
//! Two rules keep a child from running on both sides of a partition:
//!
//! 1. **Only the majority side moves children.** The supervisor restarts a child lost
//!    with its node only while it sees a strict majority of the cluster's known members
//!    (every node its node has been connected to since it started, itself included, but
//!    those that left with a goodbye — whenever the supervisor started, so one started
//!    during a partition counts the nodes it cannot reach). On the minority side the child waits, not running, and
//!    is started once a majority is connected again (looked at every [`MAJORITY_RETRY`]),
//!    even if it was waiting for its restart [`Backoff`](super::Backoff) only.
//!    A node that crashes stays a member: a cluster whose nodes come back under new ids
//!    (a new port each time) grows its known members, until its live nodes are no
//!    majority of them — forget those known to be gone for good with
//!    [`Node::forget_node`](crate::Node::forget_node) — and a node restarted there starts
//!    afresh.
//! 2. **Children cut off from their supervisor stop.** A child is linked to its
//!    supervisor across the nodes, and a link to a lost node delivers
//!    [`ExitReason::NoConnection`] — which ends the child at once, even if it traps exits:
//!    from a parent of another node, that exit cannot be trapped, and a handler under way
//!    is cut short (`terminate` does not run), so a child in a long handler does not run
//!    on beside its replacement. So a child whose node loses the supervisor's node ends
//!    within that node's failure-detection window. The two nodes notice a silent link
//!    up to about three heartbeat intervals apart, so the supervisor moves a lost child
//!    only `MAJORITY_RETRY` plus three heartbeat intervals after it noticed the loss:
//!    by then the child has ended. This needs every node to use the same heartbeat
//!    settings. (A child whose end its leaving node told has ended: it does not wait.)
//!
//! A partial partition — the link between the supervisor's node a and a child's node c
//! fails while a third node b reaches both — is no exception: a sees a majority (a and
//! b of three) and moves the child, and c, which sees b and c, ends the child all the
//! same when its link to the supervisor breaks (rule 2 does not depend on a majority).
//! When the link heals, the child runs once, where it was moved.
//!
//! A supervisor on the minority side thus stops what it cannot see and starts nothing; the
//! majority side starts again what it lost. With an even split neither side has a
//! majority, and the children stay down until the partition heals, as Akka's
//! keep-majority does.
//!
//! [`Supervisor`]: super::Supervisor
//! [`SupervisorSpec::distributed`]: super::SupervisorSpec::distributed
//! [`ChildSpec::worker`]: super::ChildSpec::worker
//! [`ChildSpec::by_name`]: super::ChildSpec::by_name
//! [`ExitReason::NoConnection`]: crate::ExitReason::NoConnection
//! [`ExitReason::Shutdown`]: crate::ExitReason::Shutdown
//! [`NodeStatus::Leaving`]: crate::NodeStatus::Leaving
//! [`RemoteSpawnError::ConnectionLost`]: crate::RemoteSpawnError::ConnectionLost
//! [`RemoteSpawnError::Timeout`]: crate::RemoteSpawnError::Timeout
//! [`RemoteSpawnError::NotSent`]: crate::RemoteSpawnError::NotSent
//! [`start_child`]: crate::ServerRef::start_child

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{Node, NodeId, NodeStatus};

/// A supervisor whose children are placed on the nodes of a cluster: a [`Supervisor`]
/// started with a [`SupervisorSpec::distributed`] spec (see the [module docs](self)).
///
/// ```
/// use noex::supervisor::{ChildSpec, NodeSelector, Strategy, SupervisorSpec};
/// use noex::{behavior, DistributedSupervisor, Node};
///
/// #[behavior(name = "doc-worker")]
/// pub struct Worker;
///
/// #[behavior]
/// impl Worker {
///     #[init]
///     fn init() -> Self {
///         Worker
///     }
/// }
///
/// let node = Node::builder().register_behaviors().build();
/// node.block_on(async {
///     let spec = SupervisorSpec::distributed(Strategy::OneForOne, NodeSelector::RoundRobin)
///         .intensity(10, std::time::Duration::from_secs(60))
///         .child(ChildSpec::worker::<Worker>("w1", ()))
///         .child(ChildSpec::worker::<Worker>("w2", ()));
///     let sup = node.spawn::<DistributedSupervisor>(spec).await.unwrap();
///     // A node alone places its children on itself.
///     let stats = sup.distribution().await.unwrap();
///     assert_eq!(stats.children_per_node.values().sum::<usize>(), 2);
/// });
/// node.shutdown();
/// ```
///
/// [`Supervisor`]: super::Supervisor
/// [`SupervisorSpec::distributed`]: super::SupervisorSpec::distributed
pub type DistributedSupervisor = super::Supervisor;

/// How often a supervisor on the minority side of a partition looks again for a
/// majority, to start the children it holds back.
pub const MAJORITY_RETRY: Duration = Duration::from_millis(250);

/// `true` while `node` sees a strict majority of the known members of its cluster: itself
/// and the connected nodes but those leaving, out of every node it has been connected to
/// since it started (itself included) but those that left with a goodbye or were
/// forgotten. A node alone (not clustered) is all of its cluster.
pub(crate) fn sees_majority(node: &Node) -> bool {
    if node.local_node_id().is_none() {
        return true;
    }
    let connected = node.connected_nodes();
    let seen = 1 + connected
        .iter()
        .filter(|info| info.status != NodeStatus::Leaving)
        .count();
    // `known_members` leaves this node out (it includes those connected now).
    2 * seen > node.known_members() + 1
}

/// How long after this node saw another node lost the processes there may still run,
/// unseen: the other node notices the loss up to about three heartbeat intervals later
/// (each side hears from the other at least every other interval, and checks once an
/// interval), and what it stops on noticing — a child cut off from its supervisor, a
/// [`Singleton`](super::Singleton) on the minority side — has ended by then, with
/// [`MAJORITY_RETRY`] to spare for a periodic check. Zero for a node alone.
pub(crate) fn loss_delay(node: &Node) -> Duration {
    let interval = node
        .inner
        .cluster
        .get()
        .map(|c| c.config.heartbeat_interval)
        .unwrap_or_default();
    MAJORITY_RETRY.saturating_add(interval.saturating_mul(3))
}

/// Where a distributed supervisor starts a child, among this node and the connected ones.
#[derive(Clone)]
#[non_exhaustive]
pub enum NodeSelector {
    /// Each node in turn (by node id).
    RoundRobin,
    /// The node with the fewest children of this supervisor; ties go to the node with the
    /// fewest processes (from its heartbeats), then by node id.
    LeastLoaded,
    /// This node, unless the child cannot start here; then as `RoundRobin`.
    LocalFirst,
    /// Any node, at random.
    Random,
    /// That node only: while it is not connected, a start fails (and a restart is tried
    /// again, each attempt counting toward the intensity).
    Specific(NodeId),
    /// Your choice among the candidates (this node first, then the connected ones by id);
    /// `None` places nothing.
    Custom(Arc<Choose>),
}

/// A selector function: picks among the candidates (see [`NodeSelector::Custom`]).
pub type Choose = dyn Fn(&[NodeId]) -> Option<NodeId> + Send + Sync;

impl NodeSelector {
    /// A selector of your own: `choose` gets the candidates (this node first, then the
    /// connected ones by id).
    pub fn custom(choose: impl Fn(&[NodeId]) -> Option<NodeId> + Send + Sync + 'static) -> Self {
        NodeSelector::Custom(Arc::new(choose))
    }
}

impl fmt::Debug for NodeSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeSelector::RoundRobin => f.write_str("RoundRobin"),
            NodeSelector::LeastLoaded => f.write_str("LeastLoaded"),
            NodeSelector::LocalFirst => f.write_str("LocalFirst"),
            NodeSelector::Random => f.write_str("Random"),
            NodeSelector::Specific(node) => f.debug_tuple("Specific").field(node).finish(),
            NodeSelector::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// What a distributed supervisor did, from
/// [`distribution`](crate::ServerRef::distribution).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DistributionStats {
    /// Children restarted (migrations included), since the supervisor started.
    pub restarts: u64,
    /// Starts of children whose last run was lost with its node (or whose start there
    /// got no answer).
    pub migrations: u64,
    /// Running children per node id.
    pub children_per_node: BTreeMap<String, usize>,
    /// Children waiting to be started again: until this side sees a majority, or a node
    /// can take them.
    pub waiting_for_majority: usize,
    /// The selector in use.
    pub selector: String,
}

/// A supervisor's placement state.
pub(crate) struct Placement {
    pub(crate) selector: NodeSelector,
    turn: usize,
    pub(crate) restarts: u64,
    pub(crate) migrations: u64,
}

impl Placement {
    pub(crate) fn new(selector: NodeSelector) -> Self {
        Placement {
            selector,
            turn: 0,
            restarts: 0,
            migrations: 0,
        }
    }

    /// This node (if clustered) and the connected ones, sorted by id after this node —
    /// but those leaving the cluster.
    fn candidates(&mut self, node: &Node) -> Vec<NodeId> {
        let mut candidates: Vec<NodeId> = node.local_node_id().cloned().into_iter().collect();
        let connected = node.connected_nodes().into_iter();
        candidates.extend(
            connected
                .filter(|info| info.status != NodeStatus::Leaving)
                .map(|info| info.id),
        );
        candidates
    }

    /// `true` while this node sees a strict majority of the known members.
    pub(crate) fn sees_majority(&mut self, node: &Node) -> bool {
        sees_majority(node)
    }

    /// Picks the node for the next child: `load` holds this supervisor's children per
    /// node; `excluded` the nodes that could not take it. `None`: no node can.
    pub(crate) fn choose(
        &mut self,
        node: &Node,
        load: &HashMap<String, usize>,
        excluded: &[NodeId],
    ) -> Option<NodeId> {
        let mut candidates = self.candidates(node);
        candidates.retain(|c| !excluded.contains(c));
        if candidates.is_empty() {
            return None;
        }
        let by_turn = |turn: &mut usize, candidates: &[NodeId]| {
            let mut sorted = candidates.to_vec();
            sorted.sort();
            let chosen = sorted[*turn % sorted.len()].clone();
            *turn = turn.wrapping_add(1);
            chosen
        };
        match &self.selector {
            NodeSelector::RoundRobin => Some(by_turn(&mut self.turn, &candidates)),
            NodeSelector::LocalFirst => match node.local_node_id() {
                Some(here) if candidates.contains(here) => Some(here.clone()),
                _ => Some(by_turn(&mut self.turn, &candidates)),
            },
            NodeSelector::LeastLoaded => {
                let processes: HashMap<String, u64> = node
                    .connected_nodes()
                    .into_iter()
                    .map(|info| (info.id.to_string(), info.process_count))
                    .collect();
                let count = |id: &NodeId| match node.local_node_id() == Some(id) {
                    true => node.process_count() as u64,
                    false => processes.get(id.as_str()).copied().unwrap_or(u64::MAX),
                };
                candidates.into_iter().min_by_key(|id| {
                    (
                        load.get(id.as_str()).copied().unwrap_or(0),
                        count(id),
                        id.clone(),
                    )
                })
            }
            NodeSelector::Random => {
                let random = getrandom::u32().unwrap_or(0) as usize;
                Some(candidates[random % candidates.len()].clone())
            }
            NodeSelector::Specific(wanted) => candidates.into_iter().find(|c| c == wanted),
            NodeSelector::Custom(choose) => {
                let chosen = choose(&candidates)?;
                if !candidates.contains(&chosen) {
                    tracing::warn!(node = %chosen, "a custom node selector chose a node that is not connected");
                    return None;
                }
                Some(chosen)
            }
        }
    }
}
