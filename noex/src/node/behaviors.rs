//! The behaviour registry of a node: behaviours it can spawn by name.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use super::Node;
use crate::behavior::{BehaviorEntry, BehaviorInfo, RegistryError, SpawnByNameError};
use crate::Pid;

/// Behaviours by name.
#[derive(Default)]
pub(crate) struct Behaviors {
    entries: RwLock<HashMap<&'static str, &'static BehaviorEntry>>,
}

impl Node {
    /// Registers every behaviour of the program (every `#[behavior]` that is not `local`, in
    /// any crate linked in), so that it can be spawned by name. Usually called through
    /// [`register_all!`](crate::register_all). Returns how many are registered; fails
    /// without registering anything if two behaviours share a name.
    pub fn register_behaviors(&self) -> Result<usize, RegistryError> {
        let mut found: HashMap<&'static str, &'static BehaviorEntry> = HashMap::new();
        for entry in inventory::iter::<BehaviorEntry> {
            if let Some(first) = found.insert(entry.name, entry) {
                // The same type linked twice is one behaviour; two types are a conflict.
                if first.type_name != entry.type_name {
                    let (first, second) = ordered(first.type_name, entry.type_name);
                    return Err(RegistryError::DuplicateName {
                        name: entry.name.to_owned(),
                        first,
                        second,
                    });
                }
            }
        }
        let count = found.len();
        let mut entries = self
            .inner
            .behaviors
            .entries
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *entries = found;
        Ok(count)
    }

    /// The registered behaviours, sorted by name.
    pub fn behaviors(&self) -> Vec<BehaviorInfo> {
        let entries = self
            .inner
            .behaviors
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = entries
            .values()
            .map(|entry| BehaviorInfo {
                name: entry.name,
                type_name: entry.type_name,
                args_type: entry.args_type,
            })
            .collect();
        all.sort_by_key(|info| info.name);
        all
    }

    /// Spawns the registered behaviour `name` with postcard-encoded init arguments: how a
    /// process is started without knowing its type (remote spawn builds on it).
    pub async fn spawn_by_name(&self, name: &str, args: &[u8]) -> Result<Pid, SpawnByNameError> {
        let entry = self
            .inner
            .behaviors
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied()
            .ok_or_else(|| SpawnByNameError::NotFound(name.to_owned()))?;
        (entry.spawn)(self, args).await
    }
}

/// Two type names in a stable order, so the error reads the same on every run.
fn ordered(a: &'static str, b: &'static str) -> (&'static str, &'static str) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}
