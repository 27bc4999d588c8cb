//! Introspection: what runs on a node, for tools and tests.

use super::Node;
use crate::process::AnyProcess;
use crate::Pid;

/// A snapshot of one process, from [`Node::processes`] or [`Node::process_info`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessInfo {
    /// The process.
    pub pid: Pid,
    /// Its registered name.
    pub name: Option<String>,
    /// The type name of its behaviour.
    pub behavior: &'static str,
    /// The supervisor it is a child of.
    pub supervisor: Option<Pid>,
    /// The process that spawned it with a link.
    pub parent: Option<Pid>,
    /// How many messages it has handled.
    pub message_count: u64,
    /// How many messages wait in its mailbox.
    pub mailbox_len: usize,
    /// The processes it is linked to.
    pub links: Vec<Pid>,
    /// Whether it traps exits.
    pub trap_exit: bool,
}

impl ProcessInfo {
    fn of(process: &dyn AnyProcess) -> ProcessInfo {
        let core = process.core();
        ProcessInfo {
            pid: core.pid().clone(),
            name: core.name().map(|n| n.to_string()),
            behavior: process.behavior(),
            supervisor: core.supervisor(),
            parent: core.parent(),
            message_count: core.message_count(),
            mailbox_len: process.mailbox_len(),
            links: core.links(),
            trap_exit: core.trap_exit(),
        }
    }
}

impl Node {
    /// A snapshot of every running process, in spawn order.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        self.inner
            .table
            .all()
            .iter()
            .map(|p| ProcessInfo::of(p.as_ref()))
            .collect()
    }

    /// A snapshot of one process, if it runs.
    pub fn process_info(&self, pid: &Pid) -> Option<ProcessInfo> {
        self.inner.resolve(pid).map(|p| ProcessInfo::of(p.as_ref()))
    }
}
