//! Operations on a process of another node (registering, unregistering, joining,
//! leaving), forwarded to its node, which alone changes what its processes hold.

use std::sync::Arc;

use super::protocol::{ForwardOp, ForwardResult, GlobalMessage};
use super::{check_visible, Global, GLOBAL_TIMEOUT};
use crate::dist::peer::Peer;
use crate::dist::wire::WireMessage;
use crate::error::GlobalError;
use crate::node::NodeInner;
use crate::Pid;

/// How much longer than [`GLOBAL_TIMEOUT`] a forwarded operation waits for its answer.
const FORWARD_MARGIN: std::time::Duration = std::time::Duration::from_secs(2);

impl Global {
    /// Asks the node of `pid` to do `op`, and waits for its answer.
    pub(crate) async fn forward(
        &self,
        node: &NodeInner,
        pid: &Pid,
        op: ForwardOp,
        name: &str,
    ) -> Result<ForwardResult, GlobalError> {
        let no_connection = || GlobalError::NoConnection {
            node: pid.node().to_owned(),
        };
        let cluster = node.cluster.get().ok_or_else(no_connection)?;
        let peer = cluster.peer(pid.node()).ok_or_else(no_connection)?;
        if peer.hidden {
            return Err(GlobalError::HiddenNode {
                node: pid.node().to_owned(),
            });
        }
        if peer.incarnation != pid.incarnation() {
            return Err(match cluster.other_incarnation(pid) {
                crate::ExitReason::NoProc => GlobalError::NoProc { pid: pid.clone() },
                _ => no_connection(),
            });
        }
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut state = self.state();
            let id = state.next_id();
            state
                .forwards
                .insert(id, (peer.id.as_arc(), Arc::downgrade(&peer), tx));
            id
        };
        let message = WireMessage::Global(Box::new(GlobalMessage::Forward { id, op }));
        if peer.queue.push_control(&message).is_err() || peer.is_closed() {
            self.state().forwards.remove(&id);
            return Err(no_connection());
        }
        drop(peer);
        // The node asked may take GLOBAL_TIMEOUT itself: its answer gets a margin.
        let answer = crate::server::deadline::Deadline::after(GLOBAL_TIMEOUT + FORWARD_MARGIN)
            .run(async { rx.await })
            .await;
        match answer {
            Some(Ok(result)) => Ok(result),
            Some(Err(_)) => Err(no_connection()),
            None => {
                self.state().forwards.remove(&id);
                Err(GlobalError::Timeout {
                    name: name.to_owned(),
                    timeout: GLOBAL_TIMEOUT,
                })
            }
        }
    }
}

/// Runs an operation a peer forwarded for one of this node's processes, and answers.
pub(super) fn forwarded(node: &Arc<NodeInner>, peer: &Arc<Peer>, id: u64, op: ForwardOp) {
    let weak = Arc::downgrade(peer);
    let (name, incarnation) = (node.name.clone(), node.incarnation);
    let pid = move |serial| Pid::new(name.clone(), incarnation, serial);
    // Neither a hidden node nor one asked by a hidden node takes part.
    let hidden = peer.hidden || check_visible(node).is_err();
    let task = {
        let node = node.clone();
        async move {
            let result = match op {
                _ if hidden => ForwardResult::Hidden,
                ForwardOp::Register { name, serial } => {
                    match node.global.register(&node, &name, &pid(serial)).await {
                        Ok(()) => ForwardResult::Done(true),
                        Err(error) => error.into(),
                    }
                }
                ForwardOp::Unregister { name, serial } => {
                    ForwardResult::Done(node.global.unregister(&node, &name, &pid(serial)))
                }
                ForwardOp::Join { group, serial } => {
                    match node.global.join(&node, &group, &pid(serial)) {
                        Ok(changed) => ForwardResult::Done(changed),
                        Err(error) => error.into(),
                    }
                }
                ForwardOp::Leave { group, serial } => {
                    ForwardResult::Done(node.global.leave(&node, &group, &pid(serial)))
                }
            };
            if let Some(peer) = weak.upgrade() {
                let answer = GlobalMessage::Forwarded { id, result };
                let _ = peer
                    .queue
                    .push_control(&WireMessage::Global(Box::new(answer)));
            }
        }
    };
    node.executors.spawn(task).detach();
}

impl From<GlobalError> for ForwardResult {
    fn from(error: GlobalError) -> Self {
        match error {
            GlobalError::NameTaken { holder, .. } => ForwardResult::Taken(holder),
            GlobalError::NoProc { .. } => ForwardResult::NoProc,
            GlobalError::Timeout { .. } => ForwardResult::Timeout,
            GlobalError::HiddenNode { .. } => ForwardResult::Hidden,
            GlobalError::NoConnection { .. }
            | GlobalError::ShuttingDown
            | GlobalError::NameTooLong { .. } => ForwardResult::ShuttingDown,
        }
    }
}
