//! The behaviour registry of a node: behaviours it can spawn by name.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use super::{Node, NodeInner};
use crate::behavior::{
    BehaviorEntry, BehaviorInfo, LocalBehaviorEntry, RegistryError, SpawnByNameError, SpawnParams,
};
use crate::{Pid, SpawnOptions};

/// Behaviours by name.
#[derive(Default)]
pub(crate) struct Behaviors {
    entries: RwLock<Registered>,
}

#[derive(Default)]
struct Registered {
    spawnable: HashMap<&'static str, &'static BehaviorEntry>,
    /// Behaviours declared local-only: known, but not spawned by name.
    local: HashMap<&'static str, &'static str>,
}

impl Behaviors {
    /// The registry entry of behaviour `name`.
    pub(crate) fn find(&self, name: &str) -> Result<&'static BehaviorEntry, SpawnByNameError> {
        let registered = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        match registered.spawnable.get(name) {
            Some(entry) => Ok(*entry),
            None if registered.local.contains_key(name) => {
                Err(SpawnByNameError::LocalOnly(name.to_owned()))
            }
            None => Err(SpawnByNameError::NotFound(name.to_owned())),
        }
    }
}

impl NodeInner {
    /// Registers every behaviour linked into the program (see
    /// [`Node::register_behaviors`]).
    pub(crate) fn register_behaviors(&self) -> Result<usize, RegistryError> {
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
        let mut local = HashMap::new();
        for entry in inventory::iter::<LocalBehaviorEntry> {
            let clash = found
                .get(entry.name)
                .map(|other| other.type_name)
                .or_else(|| local.insert(entry.name, entry.type_name))
                .filter(|other| *other != entry.type_name);
            if let Some(other) = clash {
                let (first, second) = ordered(other, entry.type_name);
                return Err(RegistryError::DuplicateName {
                    name: entry.name.to_owned(),
                    first,
                    second,
                });
            }
        }
        let count = found.len();
        let mut registered = self
            .behaviors
            .entries
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *registered = Registered {
            spawnable: found,
            local,
        };
        Ok(count)
    }
}

impl Node {
    /// Registers every behaviour of the program (every `#[behavior]` that is not `local`, in
    /// any crate linked in), so that it can be spawned by name. Usually called through
    /// [`register_all!`](crate::register_all); a clustered node can do it before it
    /// listens, with [`ClusterConfig::register_behaviors`](crate::ClusterConfig::register_behaviors).
    /// Returns how many are registered; fails without registering anything if two
    /// behaviours share a name.
    pub fn register_behaviors(&self) -> Result<usize, RegistryError> {
        self.inner.register_behaviors()
    }

    /// `true` if a behaviour named `name` can be spawned by name here.
    pub fn has_behavior(&self, name: &str) -> bool {
        self.inner.behaviors.find(name).is_ok()
    }

    /// The registered behaviours, sorted by name.
    pub fn behaviors(&self) -> Vec<BehaviorInfo> {
        let registered = self
            .inner
            .behaviors
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = registered
            .spawnable
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
        self.spawn_by_name_with(name, args, SpawnOptions::new())
            .await
    }

    /// [`spawn_by_name`](Self::spawn_by_name) with options: a name, an init timeout.
    pub async fn spawn_by_name_with(
        &self,
        name: &str,
        args: &[u8],
        options: SpawnOptions,
    ) -> Result<Pid, SpawnByNameError> {
        let entry = self.inner.behaviors.find(name)?;
        (entry.spawn)(self, args, SpawnParams::local(options)).await
    }

    /// [`spawn_by_name_with`](Self::spawn_by_name_with), linked to `spawner` (a process
    /// of this node) before `init` runs.
    pub(crate) async fn spawn_by_name_linked(
        &self,
        name: &str,
        args: &[u8],
        options: SpawnOptions,
        spawner: Option<std::sync::Arc<dyn crate::process::AnyProcess>>,
    ) -> Result<Pid, SpawnByNameError> {
        let entry = self.inner.behaviors.find(name)?;
        let params = SpawnParams {
            linked: spawner,
            ..SpawnParams::local(options)
        };
        (entry.spawn)(self, args, params).await
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
