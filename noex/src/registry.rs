//! The local registry: unique names for the processes of one node.
//!
//! A name belongs to at most one process and a process has at most one name, as in Erlang.
//! A name is released when its process ends, before links and monitors hear of the end, so a
//! supervisor restarting a named child can register the new incarnation at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::RegisterError;
use crate::process::Core;
use crate::Pid;

#[derive(Default)]
pub(crate) struct Registry {
    names: Mutex<HashMap<Arc<str>, Pid>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Pid>> {
        self.names.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `name` for the process of `core`.
    pub(crate) fn register(&self, name: &str, core: &Core) -> Result<(), RegisterError> {
        let mut names = self.lock();
        if let Some(holder) = names.get(name) {
            return Err(RegisterError::NameTaken {
                name: name.to_owned(),
                holder: holder.clone(),
            });
        }
        let name: Arc<str> = Arc::from(name);
        // Lock order: registry, then process core (the exit path takes them one at a time).
        match core.set_name(name.clone()) {
            Ok(()) => {
                names.insert(name, core.pid().clone());
                Ok(())
            }
            Err(Some(current)) => Err(RegisterError::AlreadyNamed {
                pid: core.pid().clone(),
                name: current.to_string(),
            }),
            Err(None) => Err(RegisterError::NoProc),
        }
    }

    /// Removes `name` if it still names `pid`, and clears it from the process's `core`
    /// under the same lock: a registration of that process made once the name is seen
    /// gone finds it unnamed. `false` if the name names another process now (or none).
    pub(crate) fn unregister(&self, name: &str, pid: &Pid, core: Option<&Core>) -> bool {
        let mut names = self.lock();
        if names.get(name) != Some(pid) {
            return false;
        }
        names.remove(name);
        // Lock order: registry, then process core (as `register`).
        if let Some(core) = core {
            core.clear_name(name);
        }
        true
    }

    /// Removes `name` if it still names `pid` (the exit path).
    pub(crate) fn release(&self, name: &str, pid: &Pid) {
        let mut names = self.lock();
        if names.get(name) == Some(pid) {
            names.remove(name);
        }
    }

    pub(crate) fn whereis(&self, name: &str) -> Option<Pid> {
        self.lock().get(name).cloned()
    }

    /// Every (name, pid) pair, sorted by name.
    pub(crate) fn all(&self) -> Vec<(String, Pid)> {
        let mut all: Vec<_> = self
            .lock()
            .iter()
            .map(|(name, pid)| (name.to_string(), pid.clone()))
            .collect();
        all.sort();
        all
    }
}
