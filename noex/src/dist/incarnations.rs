//! The incarnations of each node this node has been connected to.
//!
//! A pid names its node's incarnation. When that is not the incarnation this node is
//! connected to, the pid is either of an earlier one — its process is gone for good
//! (`NoProc`) — or of a later one, reached through a third node before this node has seen
//! its own connection to the restarted node fail: a process that may well run, which this
//! node cannot reach yet (`NoConnection`). Incarnations are random numbers, not counters,
//! so only the history tells the two apart: an incarnation this node was connected to
//! before is an earlier one; any other is treated as one it cannot reach.

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
    seen: Mutex<HashMap<Arc<str>, VecDeque<u64>>>,
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
        if history.contains(&incarnation) {
            return;
        }
        if history.len() == PER_NODE {
            history.pop_front();
        }
        history.push_back(incarnation);
    }

    /// `true` if this node was once connected to `node` in its incarnation `incarnation`.
    pub(crate) fn seen(&self, node: &str, incarnation: u64) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(node)
            .is_some_and(|history| history.contains(&incarnation))
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
