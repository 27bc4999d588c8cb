//! The process table: serial number → live process, for one node.
//!
//! A node hands out serials one after the other, and most processes are short-lived or
//! live about as long as their neighbours in spawn order. So the table keeps the recent
//! serials in a window — a queue indexed by serial, where adding a process is a push at
//! the back and a lookup is an index — and only the processes that outlive the window's
//! start in a hash set. The window's start moves on past ended processes; while fewer
//! than half its places hold live processes, each removal also moves its first few live
//! ones to the set (each process moves at most once), so the window stays within about
//! twice the number of processes it holds, however long some early process lives.

use std::borrow::Borrow;
use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::AnyProcess;

/// What the table holds: something with a serial number, read from itself.
trait Serial {
    fn serial(&self) -> &u64;
}

impl Serial for Arc<dyn AnyProcess> {
    fn serial(&self) -> &u64 {
        self.core().pid().serial_ref()
    }
}

/// The processes that outlived the window's start, looked up by serial: the serial is
/// read from the process itself rather than stored beside it, so an entry is 16 bytes,
/// not 24.
type Older<T> = HashSet<Entry<T>, BuildHasherDefault<SerialHasher>>;

/// A live process, equal to and hashed as its serial number.
struct Entry<T>(T);

impl<T: Serial> Borrow<u64> for Entry<T> {
    fn borrow(&self) -> &u64 {
        self.0.serial()
    }
}

impl<T: Serial> Hash for Entry<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `u64` hashes, which `Borrow` requires.
        Borrow::<u64>::borrow(self).hash(state);
    }
}

impl<T: Serial> PartialEq for Entry<T> {
    fn eq(&self, other: &Entry<T>) -> bool {
        Borrow::<u64>::borrow(self) == Borrow::<u64>::borrow(other)
    }
}

impl<T: Serial> Eq for Entry<T> {}

/// Hashes a serial number with one multiplication (Fibonacci hashing): serials are
/// handed out by the node itself, one after the other, so they need spreading, not
/// protection from chosen collisions (they are not chosen by anyone outside). The ids of
/// remote calls (see `dist::peer`) are hashed so too, for the same reasons.
#[derive(Default)]
pub(crate) struct SerialHasher(u64);

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

/// While the window is at least this long and fewer than half its places are live,
/// removals move its first live processes to [`Entries::older`].
const SPARSE_FROM: usize = 64;

/// How many places at the window's start a removal looks at while the window is sparse:
/// more than the one place each removal empties, so the window shrinks back.
const STEPS_PER_REMOVAL: usize = 2;

/// The table's contents (generic for its tests).
struct Entries<T> {
    /// The serial of `window`'s first place.
    base: u64,
    /// The processes with serials from `base` on, each at `serial - base`; `None` where
    /// a process ended (or its serial was never used, or is not added yet).
    window: VecDeque<Option<T>>,
    /// How many places of `window` hold a process.
    live: usize,
    /// The processes with serials before `base`.
    older: Older<T>,
}

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Entries {
            base: 0,
            window: VecDeque::new(),
            live: 0,
            older: Older::default(),
        }
    }
}

impl<T: Serial> Entries<T> {
    fn insert(&mut self, process: T) {
        let serial = *process.serial();
        let Some(at) = serial.checked_sub(self.base) else {
            // Added after the window moved past its serial (a spawn slower than later ones).
            self.older.insert(Entry(process));
            return;
        };
        let mut at = usize::try_from(at).expect("a window fits in memory");
        if self.window.is_empty() {
            // Start the window here rather than after a run of empty places.
            self.base = serial;
            at = 0;
        }
        while self.window.len() <= at {
            self.window.push_back(None);
        }
        if self.window[at].replace(process).is_none() {
            self.live += 1;
        }
    }

    fn remove(&mut self, serial: u64) {
        let place = serial
            .checked_sub(self.base)
            .and_then(|at| usize::try_from(at).ok())
            .and_then(|at| self.window.get_mut(at));
        match place {
            Some(place) => {
                if place.take().is_some() {
                    self.live -= 1;
                }
            }
            None => {
                self.older.remove(&serial);
            }
        }
        let mut steps = if self.is_sparse() {
            STEPS_PER_REMOVAL
        } else {
            0
        };
        while let Some(first) = self.window.front() {
            if first.is_some() {
                if steps == 0 {
                    break;
                }
                steps -= 1;
            }
            if let Some(Some(process)) = self.window.pop_front() {
                self.live -= 1;
                self.older.insert(Entry(process));
            }
            self.base += 1;
        }
    }

    fn is_sparse(&self) -> bool {
        self.window.len() >= SPARSE_FROM && self.live * 2 < self.window.len()
    }

    fn get(&self, serial: u64) -> Option<&T> {
        let window = serial
            .checked_sub(self.base)
            .and_then(|at| usize::try_from(at).ok())
            .map(|at| self.window.get(at));
        match window {
            Some(place) => place?.as_ref(),
            None => self.older.get(&serial).map(|entry| &entry.0),
        }
    }

    fn len(&self) -> usize {
        self.live + self.older.len()
    }

    /// Every process, the older ones first.
    fn iter(&self) -> impl Iterator<Item = &T> {
        let older = self.older.iter().map(|entry| &entry.0);
        older.chain(self.window.iter().flatten())
    }
}

/// Every live process of a node, by serial number.
#[derive(Default)]
pub(crate) struct ProcessTable {
    entries: Mutex<Entries<Arc<dyn AnyProcess>>>,
}

impl ProcessTable {
    fn lock(&self) -> MutexGuard<'_, Entries<Arc<dyn AnyProcess>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `process` under its serial number (a serial is never reused by a node).
    pub(crate) fn insert(&self, process: Arc<dyn AnyProcess>) {
        self.lock().insert(process);
    }

    pub(crate) fn remove(&self, serial: u64) {
        self.lock().remove(serial);
    }

    pub(crate) fn get(&self, serial: u64) -> Option<Arc<dyn AnyProcess>> {
        self.lock().get(serial).cloned()
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
        all.extend(entries.iter().cloned());
        all
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process that is only its serial.
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Fake(u64);

    impl Serial for Fake {
        fn serial(&self) -> &u64 {
            &self.0
        }
    }

    fn serials(entries: &Entries<Fake>) -> Vec<u64> {
        let mut all: Vec<u64> = entries.iter().map(|fake| fake.0).collect();
        all.sort_unstable();
        all
    }

    #[test]
    fn processes_are_found_by_serial_until_removed() {
        let mut entries = Entries::default();
        for serial in 1..=10 {
            entries.insert(Fake(serial));
        }
        entries.remove(4);
        assert_eq!(entries.get(3), Some(&Fake(3)));
        assert_eq!(entries.get(4), None, "a removed serial finds nothing");
        assert_eq!(
            entries.get(11),
            None,
            "a serial not handed out finds nothing"
        );
        assert_eq!(entries.get(0), None);
        assert_eq!(entries.len(), 9);
    }

    #[test]
    fn serials_added_out_of_order_or_late_are_found() {
        let mut entries = Entries::default();
        entries.insert(Fake(5));
        entries.insert(Fake(7));
        // Spawned before 5 and 7 but added after them: before the window's start.
        entries.insert(Fake(3));
        entries.insert(Fake(6));
        entries.remove(5);
        entries.remove(6);
        // The window has moved past 5 and 6; 4 comes late.
        entries.insert(Fake(4));
        assert_eq!(serials(&entries), [3, 4, 7]);
        for serial in [3, 4, 7] {
            assert_eq!(entries.get(serial), Some(&Fake(serial)));
        }
        for serial in [3, 4, 7] {
            entries.remove(serial);
        }
        assert_eq!(entries.len(), 0);
        assert!(entries.window.is_empty() && entries.older.is_empty());
    }

    #[test]
    fn a_long_lived_early_process_does_not_keep_the_window_growing() {
        let mut entries = Entries::default();
        entries.insert(Fake(1));
        // Many short-lived processes after it, a few live at a time.
        for serial in 2..100_000 {
            entries.insert(Fake(serial));
            if serial >= 10 {
                entries.remove(serial - 8);
            }
        }
        assert_eq!(
            entries.get(1),
            Some(&Fake(1)),
            "the early one moved, still found"
        );
        assert_eq!(entries.get(50_000), None);
        assert_eq!(entries.get(99_999), Some(&Fake(99_999)));
        assert_eq!(entries.len(), 9);
        assert!(
            entries.window.len() <= 2 * SPARSE_FROM,
            "the window spans {} places for {} processes",
            entries.window.len(),
            entries.len()
        );
    }

    #[test]
    fn a_sparse_window_shrinks_to_about_twice_its_processes() {
        let mut entries = Entries::default();
        for serial in 0..10_000 {
            entries.insert(Fake(serial));
        }
        // Every third one lives on.
        for serial in (0..10_000).filter(|serial| serial % 3 != 0) {
            entries.remove(serial);
        }
        assert_eq!(entries.len(), 3_334);
        assert!(entries.window.len() <= 2 * entries.live + SPARSE_FROM);
        for serial in 0..10_000 {
            let expected = (serial % 3 == 0).then_some(Fake(serial));
            assert_eq!(entries.get(serial).copied(), expected, "serial {serial}");
        }
    }
}
