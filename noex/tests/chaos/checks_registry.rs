//! The checkpoint's checks of the global registry: every node holds the same names and
//! groups, only of live processes that were registered (or joined), and each group
//! monitor's events add up to the group.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use noex::Pid;

use crate::{GROUPS, H, NAMES};

impl H {
    /// Every node holds the same global names, each of a live process registered as
    /// it (or the supervised child it names), and a name registered to a live process
    /// is held by it.
    pub(crate) async fn check_globals(&mut self) {
        self.until_clear(Duration::from_secs(6), async |h: &mut H| {
            h.global_problems()
        })
        .await;
    }

    pub(crate) fn global_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let tables: Vec<Vec<(String, Pid)>> = self.nodes.iter().map(|n| n.global_names()).collect();
        for (s, table) in tables.iter().enumerate().skip(1) {
            if *table != tables[0] {
                problems.push(format!(
                    "global names differ: n0 {:?} / n{s} {:?}",
                    tables[0], table
                ));
            }
        }
        for (s, table) in tables.iter().enumerate() {
            let map: BTreeMap<&String, &Pid> = table.iter().map(|(n, p)| (n, p)).collect();
            for (name, pid) in table {
                if !self.alive(pid) {
                    problems.push(format!("n{s}: {name} held by ended {pid}"));
                }
                if self.labels.contains(name) {
                    let running = self.alive_children();
                    if running.get(name).is_none_or(|pids| !pids.contains(pid)) {
                        problems.push(format!(
                            "n{s}: supervised child's name {name} held by {pid}, not the running child {:?}",
                            running.get(name)
                        ));
                    }
                    continue;
                }
                let known = self.names.get(name).is_some_and(|s| s.contains(pid))
                    || self.names_maybe.get(name).is_some_and(|s| s.contains(pid));
                if !known {
                    problems.push(format!("n{s}: {name} held by {pid}, never registered"));
                }
            }
            let label = &self.labels[0];
            if !map.contains_key(label) {
                problems.push(format!(
                    "n{s}: supervised child's name {label} is held by nobody"
                ));
            }
            for name in NAMES {
                let alive: Vec<&Pid> = self
                    .names
                    .get(name)
                    .map(|set| set.iter().filter(|p| self.alive(p)).collect())
                    .unwrap_or_default();
                if alive.len() > 1 {
                    problems.push(format!(
                        "{name}: {} live registered holders {alive:?}",
                        alive.len()
                    ));
                }
                if let Some(holder) = alive.first() {
                    if map.get(&name.to_owned()) != Some(holder) {
                        problems.push(format!(
                            "n{s}: {name} should be held by live {holder}, is {:?}",
                            map.get(&name.to_owned())
                        ));
                    }
                }
            }
        }
        problems
    }

    /// Every node sees the same members of each group, all live and joined, and each
    /// group monitor's events add up to them.
    pub(crate) async fn check_groups(&mut self) {
        self.until_clear(Duration::from_secs(6), async |h: &mut H| {
            for problem in h.drain_group_monitors() {
                h.violation(problem);
            }
            h.group_problems()
        })
        .await;
    }

    /// Applies what each group monitor received to its members.
    pub(crate) fn drain_group_monitors(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for (s, monitors) in self.group_monitors.iter_mut().enumerate() {
            for (g, (members, events)) in monitors.iter_mut().enumerate() {
                while let Some(event) = events.try_recv() {
                    match event {
                        noex::GroupEvent::Joined(pid) => {
                            if !members.insert(pid.clone()) {
                                problems.push(format!(
                                    "n{s}: monitor of {} told Joined({pid}), a member already",
                                    GROUPS[g]
                                ));
                            }
                        }
                        noex::GroupEvent::Left(pid) => {
                            if !members.remove(&pid) {
                                problems.push(format!(
                                    "n{s}: monitor of {} told Left({pid}), not a member",
                                    GROUPS[g]
                                ));
                            }
                        }
                        other => problems.push(format!("n{s}: unknown group event {other:?}")),
                    }
                }
                if events.missed() > 0 {
                    problems.push(format!("n{s}: monitor of {} missed events", GROUPS[g]));
                }
            }
        }
        problems
    }

    pub(crate) fn group_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (s, monitors) in self.group_monitors.iter().enumerate() {
            for (g, (members, _)) in monitors.iter().enumerate() {
                let actual: BTreeSet<Pid> =
                    self.nodes[s].group_members(GROUPS[g]).into_iter().collect();
                if *members != actual {
                    problems.push(format!(
                        "n{s}: monitor_group({}) events give {members:?}, group_members {actual:?}",
                        GROUPS[g]
                    ));
                }
            }
        }
        for group in GROUPS {
            let views: Vec<Vec<Pid>> = self.nodes.iter().map(|n| n.group_members(group)).collect();
            for (s, view) in views.iter().enumerate() {
                if *view != views[0] {
                    problems.push(format!(
                        "{group} differs: n0 {:?} / n{s} {view:?}",
                        views[0]
                    ));
                }
                for pid in view {
                    if !self.alive(pid) {
                        problems.push(format!("n{s}: {group} has ended {pid}"));
                    }
                    let key = (group.to_owned(), pid.clone());
                    if !self.groups.contains_key(&key) && !self.groups_maybe.contains(&key) {
                        problems.push(format!("n{s}: {group} has {pid}, which did not join"));
                    }
                }
                for (g, pid) in self.groups.keys() {
                    if g == group && self.alive(pid) && !view.contains(pid) {
                        problems.push(format!("n{s}: {group} misses live member {pid}"));
                    }
                }
            }
        }
        problems
    }
}
