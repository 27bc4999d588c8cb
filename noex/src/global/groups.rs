//! Process groups (Erlang's `pg`): joining and leaving through the member's own node
//! (the replica they change is `membership.rs`).

use super::membership::GroupEvent;
use super::protocol::{ForwardOp, ForwardResult, GlobalMessage};
use super::{Global, GlobalEvent};
use crate::error::GlobalError;
use crate::events::Subscription;
use crate::node::NodeInner;
use crate::Pid;

impl Global {
    /// Makes `pid` a member of `group` (through its node); `true` if it was not one.
    pub(crate) async fn join_group(
        &self,
        node: &NodeInner,
        group: &str,
        pid: &Pid,
    ) -> Result<bool, GlobalError> {
        super::check_name(group)?;
        super::check_visible(node)?;
        if !node.is_remote(pid) {
            return self.join(node, group, pid);
        }
        let op = ForwardOp::Join {
            group: group.to_owned(),
            serial: pid.serial(),
        };
        self.forward_change(node, pid, op, group).await
    }

    /// Removes `pid` from `group` (through its node); `true` if it was a member.
    pub(crate) async fn leave_group(
        &self,
        node: &NodeInner,
        group: &str,
        pid: &Pid,
    ) -> Result<bool, GlobalError> {
        if !node.is_remote(pid) {
            return Ok(self.leave(node, group, pid));
        }
        let op = ForwardOp::Leave {
            group: group.to_owned(),
            serial: pid.serial(),
        };
        self.forward_change(node, pid, op, group).await
    }

    /// Forwards a membership change to the node of `pid`; `true` if it changed something.
    async fn forward_change(
        &self,
        node: &NodeInner,
        pid: &Pid,
        op: ForwardOp,
        group: &str,
    ) -> Result<bool, GlobalError> {
        match self.forward(node, pid, op, group).await? {
            ForwardResult::Done(changed) => Ok(changed),
            ForwardResult::Hidden => Err(GlobalError::HiddenNode {
                node: pid.node().to_owned(),
            }),
            _ => Err(GlobalError::NoProc { pid: pid.clone() }),
        }
    }

    /// Makes the process `pid` of this node a member of `group`, here and on every peer.
    pub(crate) fn join(
        &self,
        node: &NodeInner,
        group: &str,
        pid: &Pid,
    ) -> Result<bool, GlobalError> {
        let _state = self.state();
        let process = node
            .resolve(pid)
            .ok_or_else(|| GlobalError::NoProc { pid: pid.clone() })?;
        if self.groups().contains(group, pid) {
            return Ok(false);
        }
        if !process.core().add_group(group) {
            // It has ended (and has released its groups: both are done under `state`).
            return Err(GlobalError::NoProc { pid: pid.clone() });
        }
        self.groups().add(group, pid);
        self.broadcast(
            node,
            GlobalMessage::Joined {
                group: group.to_owned(),
                serial: pid.serial(),
            },
        );
        self.events.publish(GlobalEvent::Joined {
            group: group.to_owned(),
            pid: pid.clone(),
        });
        Ok(true)
    }

    /// Removes the process `pid` of this node from `group`, here and on every peer.
    pub(crate) fn leave(&self, node: &NodeInner, group: &str, pid: &Pid) -> bool {
        let _state = self.state();
        if !self.groups().remove(group, pid) {
            return false;
        }
        if let Some(process) = node.resolve(pid) {
            process.core().remove_group(group);
        }
        self.broadcast(
            node,
            GlobalMessage::Left {
                group: group.to_owned(),
                serial: pid.serial(),
            },
        );
        self.events.publish(GlobalEvent::Left {
            group: group.to_owned(),
            pid: pid.clone(),
        });
        true
    }

    /// Ends every subscription to the node's global and group events (the node has shut
    /// down).
    pub(crate) fn close_events(&self) {
        self.events.close();
        self.groups().close_monitors();
    }

    /// The members of `group` and a subscription to its changes from then on, taken at
    /// one moment of the replica (see [`Node::monitor_group`](crate::Node::monitor_group)).
    pub(crate) fn monitor_group(&self, group: &str) -> (Vec<Pid>, Subscription<GroupEvent>) {
        self.groups().monitor(group)
    }
}
