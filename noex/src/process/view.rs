//! What introspection reads of a process's core: one look under its lock.

use super::Core;
use crate::{MonitorRef, Pid};

/// A process's ties and state as introspection sees them (see `observe`).
pub(crate) struct CoreView {
    pub(crate) ended: bool,
    pub(crate) initialized: bool,
    pub(crate) name: Option<String>,
    pub(crate) links: Vec<Pid>,
    pub(crate) monitors: Vec<(MonitorRef, Pid)>,
    pub(crate) monitored_by: Vec<(MonitorRef, Pid)>,
    pub(crate) monitored_nodes: Vec<String>,
    pub(crate) global_names: Vec<String>,
    pub(crate) groups: Vec<String>,
    pub(crate) timers: usize,
}

impl Core {
    /// Everything introspection shows of this process, read in one step.
    pub(crate) fn view(&self) -> CoreView {
        let initialized = self.is_initialized();
        let state = self.lock();
        let strings = |names: &[std::sync::Arc<str>]| names.iter().map(|n| n.to_string()).collect();
        let mut view = CoreView {
            ended: state.exit.is_some(),
            initialized,
            name: None,
            links: Vec::new(),
            monitors: Vec::new(),
            monitored_by: Vec::new(),
            monitored_nodes: Vec::new(),
            global_names: Vec::new(),
            groups: Vec::new(),
            timers: 0,
        };
        if let Some(ties) = &state.ties {
            view.name = ties.name.as_ref().map(|n| n.to_string());
            view.links = ties.links.clone();
            view.monitors = ties.watching.clone();
            view.monitored_by = ties.monitored_by.clone();
            view.monitored_nodes = strings(&ties.monitored_nodes);
            view.global_names = strings(&ties.global_names);
            view.groups = ties.groups.keys().map(|g| g.to_string()).collect();
            view.timers = ties.timers.len();
        }
        view
    }
}
