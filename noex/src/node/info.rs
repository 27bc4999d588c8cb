//! Introspection of this node's processes, for tools and tests (see `observe` for the
//! whole API, for any node of a cluster).

use super::Node;
use crate::observe::snapshot::process_info;
use crate::observe::ProcessInfo;
use crate::Pid;

impl Node {
    /// A snapshot of every running process, in spawn order (system processes aside).
    pub fn processes(&self) -> Vec<ProcessInfo> {
        self.observable()
            .iter()
            .map(|p| process_info(p.as_ref()))
            .collect()
    }

    /// A snapshot of one process of this node, if it runs (`None` for a process of another
    /// node: [`observer_of`](Node::observer_of) its node reads it there, as
    /// [`observer`](Node::observer)`().process(pid)` does).
    pub fn process_info(&self, pid: &Pid) -> Option<ProcessInfo> {
        self.inner.resolve(pid).map(|p| process_info(p.as_ref()))
    }
}
