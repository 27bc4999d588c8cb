//! The incarnations of each node this node has been connected to.
//!
//! A pid names its node's incarnation. When that is not the incarnation this node is
//! connected to, the pid is either of an earlier one — its process is gone for good
//! (`NoProc`) — or of a later one, reached through a third node before this node has seen
//! its own connection to the restarted node fail: a process that may well run, which this
//! node cannot reach yet (`NoConnection`). An incarnation this node was connected to
//! before is an earlier one; so is one it never saw that is smaller than one it saw
//! (incarnations grow with the wall clock at start: see `Node::incarnation`), such as a
//! pid of a run before this node joined. Any other is treated as one it cannot reach.
//!
//! An earlier incarnation may turn out to be alive: two live nodes claim one id, and the
//! one connected first was taken for restarted (see `Refusal::IdInUse`). Once this node
//! refuses it (or drops a connection it made to it), that incarnation is marked alive:
//! its processes may well run, this node just has no connection to them
//! (`NoConnection`), until it is connected to it again.
//!
//! An incarnation that announced it is leaving (`Leaving`, as it shuts down) is marked so:
//! a distributed supervisor takes the end of a child there for the node's loss, also
//! once the connection has closed (see `supervisor::placement`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

/// Incarnations kept per node (a node restarted more often than this is rare; an older
/// one forgotten is reported as unreachable rather than ended).
const PER_NODE: usize = 16;

/// Nodes kept in all; past this, one is forgotten to make room.
const NODES: usize = 4096;

/// The incarnations seen of each node, by node id text.
#[derive(Default)]
pub(crate) struct Incarnations {
    seen: Mutex<HashMap<Arc<str>, VecDeque<Seen>>>,
}

/// An incarnation this node was connected to.
struct Seen {
    incarnation: u64,
    /// Found alive since, while another incarnation is connected (and refused for it).
    alive: bool,
    /// It announced that it is leaving the cluster.
    leaving: bool,
}

impl Incarnations {
    /// Notes that this node was connected to `node` in its incarnation `incarnation`.
    pub(crate) fn record(&self, node: &Arc<str>, incarnation: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if !seen.contains_key(node) && seen.len() >= NODES {
            if let Some(forgotten) = seen.keys().next().cloned() {
                seen.remove(&forgotten);
            }
        }
        let history = seen.entry(node.clone()).or_default();
        if let Some(known) = history.iter_mut().find(|s| s.incarnation == incarnation) {
            known.alive = false;
            return;
        }
        if history.len() == PER_NODE {
            history.pop_front();
        }
        history.push_back(Seen {
            incarnation,
            alive: false,
            leaving: false,
        });
    }

    /// Notes that `node`'s incarnation `incarnation`, one connected, announced that it is
    /// leaving the cluster.
    pub(crate) fn leaving(&self, node: &str, incarnation: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let history = seen.get_mut(node);
        let known = history.and_then(|h| h.iter_mut().find(|s| s.incarnation == incarnation));
        if let Some(known) = known {
            known.leaving = true;
        }
    }

    /// `true` if `node`'s incarnation `incarnation` announced that it is leaving.
    pub(crate) fn left(&self, node: &str, incarnation: u64) -> bool {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let history = seen.get(node);
        history.is_some_and(|h| h.iter().any(|s| s.incarnation == incarnation && s.leaving))
    }

    /// Notes that `node`'s incarnation `incarnation`, one seen before, is alive though
    /// another is connected (two live nodes claim its id): its processes are not known to
    /// have ended.
    pub(crate) fn alive(&self, node: &str, incarnation: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let history = seen.get_mut(node);
        let known = history.and_then(|h| h.iter_mut().find(|s| s.incarnation == incarnation));
        if let Some(known) = known {
            known.alive = true;
        }
    }

    /// `true` if this node was once connected to `node` in its incarnation `incarnation`.
    pub(crate) fn seen(&self, node: &str, incarnation: u64) -> bool {
        self.find(node, incarnation).is_some()
    }

    /// `true` if `node`'s incarnation `incarnation` has ended, as far as this node knows:
    /// it was connected to it, and has not found it alive since (see [`alive`]) — or it
    /// never was, and the incarnation is older than one it was connected to.
    ///
    /// [`alive`]: Self::alive
    pub(crate) fn ended(&self, node: &str, incarnation: u64) -> bool {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(history) = seen.get(node) else {
            return false;
        };
        match history.iter().find(|s| s.incarnation == incarnation) {
            Some(known) => !known.alive,
            None => history.iter().any(|s| s.incarnation > incarnation),
        }
    }

    /// Whether `node`'s incarnation `incarnation` was found alive, if it was seen.
    fn find(&self, node: &str, incarnation: u64) -> Option<bool> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let history = seen.get(node)?;
        let known = history.iter().find(|s| s.incarnation == incarnation)?;
        Some(known.alive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incarnation_is_seen_once_recorded_and_the_oldest_go_first() {
        let incarnations = Incarnations::default();
        let node: Arc<str> = Arc::from("b@127.0.0.1:1");
        assert!(!incarnations.seen(&node, 1));
        for incarnation in 0..=PER_NODE as u64 {
            incarnations.record(&node, incarnation);
        }
        assert!(!incarnations.seen(&node, 0), "the oldest was forgotten");
        assert!(incarnations.seen(&node, 1));
        assert!(incarnations.seen(&node, PER_NODE as u64));
        assert!(!incarnations.seen("c@127.0.0.1:1", 1));
    }

    #[test]
    fn an_incarnation_found_alive_is_not_ended_until_connected_again() {
        let incarnations = Incarnations::default();
        let node: Arc<str> = Arc::from("b@127.0.0.1:1");
        incarnations.record(&node, 1);
        incarnations.record(&node, 2);
        assert!(incarnations.ended(&node, 1));
        incarnations.alive(&node, 1);
        assert!(
            incarnations.seen(&node, 1),
            "still an earlier one, to refuse"
        );
        assert!(!incarnations.ended(&node, 1));
        incarnations.alive(&node, 3);
        assert!(!incarnations.seen(&node, 3), "never seen: not recorded");
        incarnations.record(&node, 1);
        assert!(incarnations.ended(&node, 1), "connected again, then lost");
    }

    #[test]
    fn an_incarnation_that_announced_its_leave_is_known_to_leave() {
        let incarnations = Incarnations::default();
        let node: Arc<str> = Arc::from("b@127.0.0.1:1");
        incarnations.leaving(&node, 1);
        assert!(
            !incarnations.left(&node, 1),
            "never connected: not recorded"
        );
        incarnations.record(&node, 1);
        incarnations.record(&node, 2);
        incarnations.leaving(&node, 1);
        assert!(incarnations.left(&node, 1));
        assert!(!incarnations.left(&node, 2), "another incarnation");
        assert!(!incarnations.left("c@127.0.0.1:1", 1));
    }

    #[test]
    fn an_unseen_incarnation_older_than_one_seen_has_ended_and_a_newer_one_not() {
        let incarnations = Incarnations::default();
        let node: Arc<str> = Arc::from("b@127.0.0.1:1");
        assert!(!incarnations.ended(&node, 5), "nothing seen of the node");
        incarnations.record(&node, 10);
        assert!(incarnations.ended(&node, 5), "a run before the one seen");
        assert!(
            !incarnations.ended(&node, 15),
            "a later run, not reached yet"
        );
    }

    /// A pid of node `b` in incarnation `incarnation`.
    fn pid_of(b: &crate::Node, incarnation: u64) -> crate::Pid {
        crate::Pid::new(Arc::from(b.name()), incarnation, 1)
    }

    #[test]
    fn a_pid_of_an_unseen_incarnation_is_unreachable_and_of_an_earlier_one_gone() {
        use std::time::{Duration, Instant};

        use crate::observe::{Agent, Request};
        use crate::{CallError, ExitReason, SendError};

        smol::block_on(async {
            let b = crate::dist::testing::start_node("inc-b", "incarnation tests", None).await;
            let a = crate::dist::testing::start_node("inc-a", "incarnation tests", Some(&b)).await;
            let deadline = Instant::now() + Duration::from_secs(20);
            while a.connected_nodes().is_empty() {
                assert!(Instant::now() < deadline, "a never connected to b");
                smol::Timer::after(Duration::from_millis(1)).await;
            }
            let current = a.connected_nodes()[0].incarnation;
            let (earlier, later) = (current.wrapping_add(1), current.wrapping_add(2));
            let cluster = a.inner.cluster.get().unwrap();
            cluster.incarnations.record(&Arc::from(b.name()), earlier);

            // An earlier incarnation's process is gone for good.
            let gone = pid_of(&b, earlier);
            assert_eq!(a.exited(&gone).await, ExitReason::NoProc);
            let call = |pid| {
                let reference = a.server_ref::<Agent>(pid).unwrap();
                async move { reference.call(Request::Overview).await.map(drop) }
            };
            assert!(matches!(call(&gone).await, Err(CallError::NoProc { .. })));
            // One this node never saw may be of a later incarnation: unreachable.
            let unseen = pid_of(&b, later);
            assert_eq!(a.exited(&unseen).await, ExitReason::NoConnection);
            assert!(matches!(
                call(&unseen).await,
                Err(CallError::NoConnection { .. })
            ));
            assert!(matches!(
                a.stop(&unseen, ExitReason::Normal).await,
                Err(SendError::NoConnection { .. })
            ));
            assert!(matches!(
                a.register_global("unseen", &unseen).await,
                Err(crate::GlobalError::NoConnection { .. })
            ));
            a.shutdown();
            b.shutdown();
        });
    }
}
