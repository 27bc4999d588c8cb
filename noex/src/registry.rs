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

    /// Removes `name`; returns the process it named.
    pub(crate) fn unregister(&self, name: &str) -> Option<Pid> {
        self.lock().remove(name)
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
