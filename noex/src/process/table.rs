//! The process table: serial number → live process, for one node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::AnyProcess;

/// Every live process of a node, by serial number.
#[derive(Default)]
pub(crate) struct ProcessTable {
    entries: Mutex<HashMap<u64, Arc<dyn AnyProcess>>>,
}

impl ProcessTable {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<dyn AnyProcess>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, serial: u64, process: Arc<dyn AnyProcess>) {
        self.lock().insert(serial, process);
    }

    pub(crate) fn remove(&self, serial: u64) {
        self.lock().remove(&serial);
    }

    pub(crate) fn get(&self, serial: u64) -> Option<Arc<dyn AnyProcess>> {
        self.lock().get(&serial).cloned()
    }

    /// A snapshot of every live process, in spawn order.
    pub(crate) fn all(&self) -> Vec<Arc<dyn AnyProcess>> {
        let mut all: Vec<_> = self.lock().values().cloned().collect();
        all.sort_by_key(|p| p.core().pid().serial());
        all
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}
