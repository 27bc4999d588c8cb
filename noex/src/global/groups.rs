//! Process groups (Erlang's `pg`): joining and leaving through the member's own node
//! (the replica they change is `membership.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::membership::GroupEvent;
use super::protocol::{ForwardOp, ForwardResult, GlobalMessage};
use super::{Global, GlobalEvent};
use crate::dist::peer::Peer;
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

    /// Adds a join of `group` to the process `pid` of this node; if it was not a member,
    /// it becomes one here and on every peer (`true`). The process counts its joins, the
    /// replica has each member once.
    pub(crate) fn join(
        &self,
        node: &NodeInner,
        group: &str,
        pid: &Pid,
    ) -> Result<bool, GlobalError> {
        let _state = self.state();
        let joins = node
            .resolve(pid)
            .and_then(|process| process.core().add_group(group));
        match joins {
            // It has ended (and releases its groups: both are done under `state`).
            None => return Err(GlobalError::NoProc { pid: pid.clone() }),
            Some(1) => {}
            Some(_) => return Ok(false),
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

    /// Undoes one join of `group` by the process `pid` of this node (`true` if it was a
    /// member); at its last, it leaves the group here and on every peer.
    pub(crate) fn leave(&self, node: &NodeInner, group: &str, pid: &Pid) -> bool {
        let _state = self.state();
        let joins_left = node
            .resolve(pid)
            .and_then(|process| process.core().remove_group(group));
        if joins_left.is_some_and(|left| left > 0) {
            return true;
        }
        // Its last join; or it is not a member, or has ended and is not released yet:
        // the replica says which (its release then finds it gone).
        if !self.groups().remove(group, pid) {
            return false;
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

    /// The process `pid` of this node ended, a member of `groups`: it leaves them here in
    /// one step, and every peer is told in one message (a few for more groups than a
    /// `Sync` part holds), whatever their number.
    pub(super) fn ended_in_groups<'a>(
        &self,
        node: &NodeInner,
        pid: &Pid,
        groups: impl Iterator<Item = &'a Arc<str>>,
    ) {
        let left = self.groups().remove_all(groups.map(|g| &**g), pid);
        let (budget, serial) = (super::sync_budget(node), pid.serial());
        let (mut part, mut bytes) = (Vec::new(), 0);
        for group in &left {
            // At least its encoded size.
            let size = group.len() + 8;
            if !part.is_empty() && bytes + size > budget {
                let groups = std::mem::take(&mut part);
                self.broadcast(node, GlobalMessage::LeftGroups { serial, groups });
                bytes = 0;
            }
            bytes += size;
            part.push(group.to_string());
        }
        if !part.is_empty() {
            self.broadcast(
                node,
                GlobalMessage::LeftGroups {
                    serial,
                    groups: part,
                },
            );
        }
        self.publish_left(left, pid);
    }

    /// A peer's process `serial` left `groups` (a `Left` or a `LeftGroups`): it leaves them
    /// here in one step.
    pub(super) fn left(&self, peer: &Peer, serial: u64, groups: &[String]) {
        let pid = peer.pid_of(serial);
        let left = self
            .groups()
            .remove_all(groups.iter().map(String::as_str), &pid);
        self.publish_left(left, &pid);
    }

    /// A peer's process `serial` joined `group`.
    pub(super) fn joined(&self, peer: &Peer, group: &str, serial: u64) {
        let pid = peer.pid_of(serial);
        if self.groups().add(group, &pid) {
            self.events.publish(GlobalEvent::Joined {
                group: group.to_owned(),
                pid,
            });
        }
    }

    /// Tells the subscribers of [`GlobalEvent`]s that `pid` left `groups`.
    fn publish_left(&self, groups: Vec<Arc<str>>, pid: &Pid) {
        for group in groups {
            self.events.publish(GlobalEvent::Left {
                group: group.to_string(),
                pid: pid.clone(),
            });
        }
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

    /// Every group's members and a subscription to every group's changes from then on,
    /// taken at one moment of the replica (see
    /// [`Node::monitor_groups`](crate::Node::monitor_groups)).
    pub(crate) fn monitor_groups(&self) -> (BTreeMap<String, Vec<Pid>>, Subscription<GlobalEvent>) {
        self.groups().monitor_all()
    }
}

#[cfg(test)]
mod tests {
    use super::super::protocol::round_trip;
    use super::*;

    #[test]
    fn the_groups_a_process_left_round_trip() {
        let groups = vec!["a".to_owned(), "b".repeat(super::super::MAX_NAME_LEN)];
        round_trip(GlobalMessage::LeftGroups { serial: 7, groups });
    }
}
