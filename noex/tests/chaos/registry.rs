//! Operations on the global registry: names registered and unregistered, groups joined
//! and left. What may have been applied despite an error is recorded as a maybe.

use std::time::{Duration, Instant};

use noex::{GlobalError, Pid};

use crate::harness::{bounded, log};
use crate::{GROUPS, H, NAMES, NODES};

impl H {
    pub(crate) fn registered(&mut self, name: &str, pid: Pid) {
        self.names.entry(name.into()).or_default().insert(pid);
    }

    /// `pid` may hold `name`: registering it failed, but may have been applied.
    pub(crate) fn maybe_registered(&mut self, name: &str, pid: Pid) {
        self.names_maybe.entry(name.into()).or_default().insert(pid);
    }

    /// One more join of `pid` to `group` (a member whose joins are not known stays so).
    pub(crate) fn joined(&mut self, group: &str, pid: Pid) {
        let key = (group.to_owned(), pid);
        if !self.groups_maybe.contains(&key) {
            *self.groups.entry(key).or_default() += 1;
        }
    }

    /// `pid` may be a member of `group`: joining failed, but may have been applied (so
    /// its joins are not known any more).
    pub(crate) fn maybe_joined(&mut self, group: &str, pid: Pid) {
        let key = (group.to_owned(), pid);
        self.groups.remove(&key);
        self.groups_maybe.insert(key);
    }

    pub(crate) async fn op_register(&mut self) {
        let Some((pid, a)) = self.pick_target() else {
            return;
        };
        let name = NAMES[self.rng.below(NAMES.len())];
        let calm_before = self.calm();
        let alive = self.alive(&pid);
        let started = Instant::now();
        let r = bounded(
            Duration::from_secs(13),
            self.nodes[a].register_global(name, &pid),
        )
        .await;
        let calm = calm_before && self.calm();
        log(format!(
            "#{} register_global n{a} {name} -> {pid} (alive {alive}) = {r:?} ({:?})",
            self.step,
            started.elapsed()
        ));
        match r {
            None => self.violation(format!("register_global n{a} {name} hung past 13 s")),
            Some(Ok(())) => {
                if !alive {
                    self.violation(format!("register_global of dead {pid} as {name} succeeded"));
                }
                self.registered(name, pid);
            }
            Some(Err(GlobalError::NameTaken { .. })) => {}
            // (A remote kill sent before may land meanwhile.)
            Some(Err(GlobalError::NoProc { .. })) if !alive || !calm || !self.alive(&pid) => {}
            Some(Err(GlobalError::NoConnection { .. })) if !calm => {
                self.maybe_registered(name, pid);
            }
            Some(Err(e)) => {
                self.names_maybe
                    .entry(name.into())
                    .or_default()
                    .insert(pid.clone());
                self.violation(format!(
                    "register_global n{a} {name} -> {pid} (alive {alive}, calm {calm}): {e:?}"
                ))
            }
        }
    }

    pub(crate) async fn op_unregister(&mut self) {
        let a = self.rng.below(NODES);
        let name = NAMES[self.rng.below(NAMES.len())];
        let calm_before = self.calm();
        let holder = self.nodes[a].whereis_global(name);
        let r = bounded(
            Duration::from_secs(13),
            self.nodes[a].unregister_global(name),
        )
        .await;
        let calm = calm_before && self.calm();
        log(format!(
            "#{} unregister_global n{a} {name} (held by {holder:?}) = {r:?}",
            self.step
        ));
        match r {
            None => self.violation(format!("unregister_global n{a} {name} hung")),
            Some(Ok(Some(pid))) => {
                if let Some(set) = self.names.get_mut(name) {
                    set.remove(&pid);
                }
                if let Some(set) = self.names_maybe.get_mut(name) {
                    set.remove(&pid);
                }
            }
            Some(Ok(None)) => {}
            Some(Err(e)) => {
                if let Some(pid) = holder {
                    // It may have been applied there.
                    if let Some(set) = self.names.get_mut(name) {
                        if set.remove(&pid) {
                            self.maybe_registered(name, pid);
                        }
                    }
                }
                if calm {
                    self.violation(format!("unregister_global n{a} {name} (calm): {e:?}"));
                }
            }
        }
    }

    pub(crate) async fn op_join(&mut self) {
        let Some((pid, a)) = self.pick_target() else {
            return;
        };
        let group = GROUPS[self.rng.below(GROUPS.len())];
        let calm_before = self.calm();
        let alive = self.alive(&pid);
        let r = bounded(
            Duration::from_secs(13),
            self.nodes[a].join_group(group, &pid),
        )
        .await;
        let calm = calm_before && self.calm();
        log(format!(
            "#{} join n{a} {group} {pid} (alive {alive}) = {r:?}",
            self.step
        ));
        match r {
            None => self.violation(format!("join_group n{a} {group} hung")),
            Some(Ok(_)) => {
                self.joined(group, pid);
            }
            Some(Err(GlobalError::NoProc { .. })) if !alive || !calm || !self.alive(&pid) => {}
            Some(Err(e)) => {
                if calm {
                    self.violation(format!("join_group n{a} {group} {pid} (calm): {e:?}"));
                }
                self.maybe_joined(group, pid);
            }
        }
    }

    pub(crate) async fn op_leave(&mut self) {
        let joined: Vec<(String, Pid)> = self.groups.keys().cloned().collect();
        if joined.is_empty() {
            return;
        }
        let (group, pid) = joined[self.rng.below(joined.len())].clone();
        let a = self.rng.below(NODES);
        let calm_before = self.calm();
        let r = bounded(
            Duration::from_secs(13),
            self.nodes[a].leave_group(&group, &pid),
        )
        .await;
        let calm = calm_before && self.calm();
        log(format!("#{} leave n{a} {group} {pid} = {r:?}", self.step));
        let key = (group.clone(), pid.clone());
        match r {
            None => self.violation(format!("leave_group n{a} {group} hung")),
            Some(Ok(true)) => {
                let joins = self.groups.get_mut(&key).expect("picked from the joined");
                *joins -= 1;
                if *joins == 0 {
                    self.groups.remove(&key);
                }
            }
            Some(Ok(false)) => {
                self.groups.remove(&key);
            }
            Some(Err(e)) => {
                self.groups.remove(&key);
                self.groups_maybe.insert(key);
                if calm && self.alive(&pid) {
                    self.violation(format!("leave_group n{a} {group} {pid} (calm): {e:?}"));
                }
            }
        }
    }
}
