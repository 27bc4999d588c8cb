//! The process table: serial number → live process, for one node.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::AnyProcess;

type Entries = HashMap<u64, Arc<dyn AnyProcess>, BuildHasherDefault<SerialHasher>>;

/// Every live process of a node, by serial number.
#[derive(Default)]
pub(crate) struct ProcessTable {
    entries: Mutex<Entries>,
}

/// Hashes a serial number with one multiplication (Fibonacci hashing): serials are
/// handed out by the node itself, one after the other, so they need spreading, not
/// protection from chosen collisions (they are not chosen by anyone outside).
#[derive(Default)]
struct SerialHasher(u64);

impl Hasher for SerialHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

impl ProcessTable {
    fn lock(&self) -> MutexGuard<'_, Entries> {
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
