//! Process groups (Erlang's `pg`): the replica, and joining and leaving through the
//! member's own node.

use std::collections::HashMap;
use std::sync::Arc;

use super::protocol::{ForwardOp, ForwardResult, GlobalMessage, GroupRecord};
use super::{Global, GlobalEvent};
use crate::error::GlobalError;
use crate::node::NodeInner;
use crate::Pid;

/// The replica of every group: its members across the cluster.
#[derive(Default)]
pub(crate) struct Groups(HashMap<Arc<str>, Vec<Pid>>);

impl Groups {
    /// Adds `pid` to `group`; `true` if it was not a member.
    pub(crate) fn add(&mut self, group: &str, pid: &Pid) -> bool {
        let members = match self.0.get_mut(group) {
            Some(members) => members,
            None => self.0.entry(Arc::from(group)).or_default(),
        };
        if members.contains(pid) {
            return false;
        }
        members.push(pid.clone());
        true
    }

    /// Removes `pid` from `group`; `true` if it was a member.
    pub(crate) fn remove(&mut self, group: &str, pid: &Pid) -> bool {
        let Some(members) = self.0.get_mut(group) else {
            return false;
        };
        let Some(at) = members.iter().position(|p| p == pid) else {
            return false;
        };
        members.swap_remove(at);
        if members.is_empty() {
            self.0.remove(group);
        }
        true
    }

    /// The members of `group`, sorted.
    pub(crate) fn members(&self, group: &str) -> Vec<Pid> {
        let mut members = self.0.get(group).cloned().unwrap_or_default();
        members.sort();
        members
    }

    /// Every group with members, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<_> = self.0.keys().map(|g| g.to_string()).collect();
        names.sort();
        names
    }

    /// The memberships of processes of node `own`, as sent to a new peer: at most `most`
    /// members a record (a large group takes several).
    pub(crate) fn local_records(&self, own: &str, most: usize) -> Vec<GroupRecord> {
        let mut records = Vec::new();
        for (group, members) in &self.0 {
            let serials: Vec<u64> = members
                .iter()
                .filter(|pid| pid.node() == own)
                .map(Pid::serial)
                .collect();
            for chunk in serials.chunks(most.max(1)) {
                records.push(GroupRecord {
                    group: group.to_string(),
                    serials: chunk.to_vec(),
                });
            }
        }
        records
    }

    /// Removes the members of `node` from every group.
    pub(crate) fn remove_node(&mut self, node: &str) -> Vec<(Arc<str>, Pid)> {
        let mut removed = Vec::new();
        self.0.retain(|group, members| {
            members.retain(|pid| {
                let keep = pid.node() != node;
                if !keep {
                    removed.push((group.clone(), pid.clone()));
                }
                keep
            });
            !members.is_empty()
        });
        removed
    }
}

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
        if pid.node() == &*node.name {
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
        if pid.node() == &*node.name {
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
        if !self.groups().add(group, pid) {
            return Ok(false);
        }
        if !process.core().add_group(group) {
            // It has ended (and will not release its groups again).
            self.groups().remove(group, pid);
            return Err(GlobalError::NoProc { pid: pid.clone() });
        }
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
}
