//! The process table: serial number → live process, for one node.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::AnyProcess;

/// A set of processes looked up by serial: the serial is read from the process itself
/// rather than stored beside it, so an entry is 16 bytes, not 24 (idle processes are many).
type Entries = HashSet<Entry, BuildHasherDefault<SerialHasher>>;

/// A live process, equal to and hashed as its serial number.
struct Entry(Arc<dyn AnyProcess>);

impl Borrow<u64> for Entry {
    fn borrow(&self) -> &u64 {
        self.0.core().pid().serial_ref()
    }
}

impl Hash for Entry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `u64` hashes, which `Borrow` requires.
        Borrow::<u64>::borrow(self).hash(state);
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        Borrow::<u64>::borrow(self) == Borrow::<u64>::borrow(other)
    }
}

impl Eq for Entry {}

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

    /// Adds `process` under its serial number (a serial is never reused by a node).
    pub(crate) fn insert(&self, process: Arc<dyn AnyProcess>) {
        self.lock().insert(Entry(process));
    }

    pub(crate) fn remove(&self, serial: u64) {
        self.lock().remove(&serial);
    }

    pub(crate) fn get(&self, serial: u64) -> Option<Arc<dyn AnyProcess>> {
        self.lock().get(&serial).map(|entry| entry.0.clone())
    }

    /// A snapshot of every live process, in spawn order.
    pub(crate) fn all(&self) -> Vec<Arc<dyn AnyProcess>> {
        let mut all = self.snapshot();
        all.sort_unstable_by_key(|p| p.core().pid().serial());
        all
    }

    /// A snapshot of every live process, in no particular order.
    pub(crate) fn snapshot(&self) -> Vec<Arc<dyn AnyProcess>> {
        let entries = self.lock();
        let mut all = Vec::with_capacity(entries.len());
        all.extend(entries.iter().map(|entry| entry.0.clone()));
        all
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}
