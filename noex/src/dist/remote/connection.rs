//! The connection a reference sends on: found once per scheduler thread, not once per
//! message.
//!
//! Each scheduler thread keeps the connection it last sent on. A message to a process of
//! the same node, sent from that thread, finds it with a few plain loads — where looking it
//! up through the reference's own cache takes a lock and upgrades a `Weak` (read-modify-
//! writes on lines other threads write too, some 10 % of a small cast's cost) and drops a
//! strong count afterwards. The thread lets go of a closed connection when it is next idle
//! (so a quiet thread holds no closed socket), or as soon as it sends to another node.
//! Other threads use the reference's own cache.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use super::super::cluster::Cluster;
use super::super::peer::Peer;

/// The connection a scheduler thread last sent on, and what it was found for.
struct Last {
    /// Compared by address; a `Weak` keeps that address from being reused while held.
    cluster: Weak<Cluster>,
    /// The node's id text, as the reference that found it has it.
    node: Arc<str>,
    peer: Arc<Peer>,
}

impl Last {
    /// `true` if this is the open connection to `node` of `cluster`.
    #[inline]
    fn is_for(&self, cluster: &Weak<Cluster>, node: &Arc<str>) -> bool {
        Weak::ptr_eq(&self.cluster, cluster)
            && (Arc::ptr_eq(&self.node, node) || self.node == *node)
            && !self.peer.is_closed()
    }
}

struct Kept {
    /// Set on a node's scheduler thread: other threads keep nothing.
    enabled: bool,
    last: Option<Last>,
}

thread_local! {
    static KEPT: RefCell<Kept> = const {
        RefCell::new(Kept {
            enabled: false,
            last: None,
        })
    };
}

/// Makes the calling thread keep the connection it last sent on: called by each scheduler
/// thread as it starts.
pub(crate) fn keep_on_this_thread() {
    KEPT.with_borrow_mut(|kept| kept.enabled = true);
}

/// Lets go of the connection the calling thread keeps if it is closed: called by a
/// scheduler thread about to wait for work.
#[inline]
pub(crate) fn forget_closed() {
    let _ = KEPT.try_with(|kept| {
        if let Ok(mut kept) = kept.try_borrow_mut() {
            if kept.last.as_ref().is_some_and(|last| last.peer.is_closed()) {
                kept.last = None;
            }
        }
    });
}

/// Runs `send` with the connection to `node` of `cluster`: the one the calling scheduler
/// thread keeps if it is that one and open, else the one `find` finds (then kept); `None`
/// if there is none. A message sent meanwhile from within `send` (by a `Serialize`
/// impl...) finds its own.
#[inline]
pub(super) fn with_peer<R>(
    cluster: &Weak<Cluster>,
    node: &Arc<str>,
    find: impl FnOnce() -> Option<Arc<Peer>>,
    send: impl FnOnce(Option<&Arc<Peer>>) -> R,
) -> R {
    let mut both = Some((find, send));
    let kept = KEPT.try_with(|kept| {
        let mut kept = kept.try_borrow_mut().ok().filter(|kept| kept.enabled)?;
        let (find, send) = both.take()?;
        if let Some(last) = kept.last.as_ref().filter(|last| last.is_for(cluster, node)) {
            return Some(send(Some(&last.peer)));
        }
        let Some(peer) = find() else {
            drop(kept);
            return Some(send(None));
        };
        let last = kept.last.insert(Last {
            cluster: cluster.clone(),
            node: node.clone(),
            peer,
        });
        Some(send(Some(&last.peer)))
    });
    if let Ok(Some(sent)) = kept {
        return sent;
    }
    // Not kept here: not a scheduler thread, a message sent from within `send`, or the
    // thread is ending.
    let (find, send) = both.take().expect("not taken when nothing is kept");
    send(find().as_ref())
}
