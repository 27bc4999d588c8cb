//! The replica of the global names: every name's holder, the registrations that lost a
//! conflict and wait to be withdrawn, and the conflict rule that orders them.

use std::collections::hash_map;
use std::collections::HashMap;
use std::sync::Arc;

use super::key::Key;
use super::protocol::NameRecord;
use crate::process::AnyProcess;
use crate::Pid;

/// The behaviour a named process runs, as far as typed lookups need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Behavior {
    /// Its name (its registered name if it can cross nodes, its type name if not).
    pub(crate) name: Arc<str>,
    /// The FNV-1a hash of that name for a behaviour that can cross nodes; 0 if local-only.
    pub(crate) hash: u32,
}

impl Behavior {
    pub(crate) fn of(process: &dyn AnyProcess) -> Self {
        let (name, hash) = process.behavior_tag();
        Behavior {
            name: Arc::from(name),
            hash,
        }
    }
}

/// Orders registrations of one name: the smaller keeps it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp {
    /// The registration's logical time.
    pub(super) time: u64,
    /// The owner's node id.
    pub(super) node: Arc<str>,
}

/// A name's holder in the replica.
pub(crate) struct Entry {
    pub(crate) pid: Pid,
    pub(super) stamp: Stamp,
    pub(crate) behavior: Behavior,
}

/// The replica of every global name.
///
/// Besides each name's holder, it keeps the registrations of other nodes that lost to the
/// holder by the conflict rule and are not withdrawn yet (their nodes have not heard of the
/// winner): should the holder go first, the next one holds the name here as it does on
/// its own node. A conflict is the only way a name has more than one record.
#[derive(Default)]
pub(crate) struct Table {
    pub(super) held: HashMap<Key, Entry>,
    shadows: HashMap<Key, Vec<Entry>>,
}

/// What a change of the table did to a name's holder.
pub(crate) enum Change {
    /// Nothing visible.
    None,
    /// `pid` holds the name now.
    Held(Pid),
    /// Nobody holds the name now.
    Free,
}

impl Table {
    pub(crate) fn get(&self, name: &str) -> Option<&Entry> {
        self.held.get(name.as_bytes())
    }

    pub(crate) fn iter(&self) -> hash_map::Iter<'_, Key, Entry> {
        self.held.iter()
    }

    /// The names held by processes of node `own`, as sent to a new peer.
    pub(crate) fn local_records(&self, own: &str) -> Vec<NameRecord> {
        self.held
            .iter()
            .filter(|(_, entry)| entry.pid.node() == own)
            .map(|(name, entry)| record(name.as_str(), entry))
            .collect()
    }

    /// Removes every record of processes of `node`: the names it held, with their next
    /// holders (if a shadowed record takes over).
    pub(crate) fn remove_node(&mut self, node: &str) -> Vec<(Arc<str>, Pid, Change)> {
        self.shadows.retain(|_, shadows| {
            shadows.retain(|entry| entry.pid.node() != node);
            !shadows.is_empty()
        });
        let lost: Vec<(Arc<str>, Pid)> = self
            .held
            .iter()
            .filter(|(_, entry)| entry.pid.node() == node)
            .map(|(name, entry)| (Arc::from(name.as_str()), entry.pid.clone()))
            .collect();
        lost.into_iter()
            .map(|(name, pid)| {
                let change = self.release(&name, &pid);
                (name, pid, change)
            })
            .collect()
    }

    /// Removes the record of `pid` for `name`; if it held the name, the next record (if
    /// any) takes over.
    pub(crate) fn release(&mut self, name: &str, pid: &Pid) -> Change {
        let bytes = name.as_bytes();
        if self.held.get(bytes).is_some_and(|entry| entry.pid == *pid) {
            let (name, _) = self.held.remove_entry(bytes).expect("just seen");
            return match self.next_shadow(name.as_bytes()) {
                Some(next) => {
                    let pid = next.pid.clone();
                    self.held.insert(name, next);
                    Change::Held(pid)
                }
                None => Change::Free,
            };
        }
        if let Some(shadows) = self.shadows.get_mut(bytes) {
            shadows.retain(|entry| entry.pid != *pid);
            if shadows.is_empty() {
                self.shadows.remove(bytes);
            }
        }
        Change::None
    }

    /// Takes the shadowed record of `name` with the smallest stamp.
    fn next_shadow(&mut self, name: &[u8]) -> Option<Entry> {
        let shadows = self.shadows.get_mut(name)?;
        let at = (0..shadows.len()).min_by(|&a, &b| shadows[a].stamp.cmp(&shadows[b].stamp))?;
        let next = shadows.swap_remove(at);
        if shadows.is_empty() {
            self.shadows.remove(name);
        }
        Some(next)
    }

    /// Keeps `entry` as a record that lost to the holder of `name`: one per node (a node
    /// holds a name once; a newer record of its replaces the older), so that a name's
    /// shadows stay as few as the nodes, whatever a peer sends.
    pub(super) fn shadow(&mut self, name: &str, entry: Entry) {
        let shadows = self.shadows.entry(Key::new(name)).or_default();
        match shadows
            .iter_mut()
            .find(|e| e.pid.node() == entry.pid.node())
        {
            Some(same_node) => *same_node = entry,
            None => shadows.push(entry),
        }
    }

    /// How many records the table holds, shadows included.
    pub(crate) fn records(&self) -> usize {
        self.held.len() + self.shadows.values().map(Vec::len).sum::<usize>()
    }
}

/// The wire record of a name's registration.
pub(super) fn record(name: &str, entry: &Entry) -> NameRecord {
    NameRecord {
        name: name.to_owned(),
        serial: entry.pid.serial(),
        time: entry.stamp.time,
        behavior: entry.behavior.name.to_string(),
        hash: entry.behavior.hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(node: &str, serial: u64, time: u64) -> Entry {
        Entry {
            pid: Pid::new(Arc::from(node), 1, serial),
            stamp: Stamp {
                time,
                node: Arc::from(node),
            },
            behavior: Behavior {
                name: Arc::from("b"),
                hash: 0,
            },
        }
    }

    #[test]
    fn a_name_keeps_one_shadow_per_node_whatever_a_peer_sends() {
        let mut table = Table::default();
        for serial in 0..10_000 {
            table.shadow("x", entry("a@h:1", serial, serial));
        }
        table.shadow("x", entry("b@h:1", 1, 1));
        assert_eq!(table.records(), 2);
    }
}
