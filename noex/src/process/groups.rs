//! A process's memberships of process groups, counted as Erlang's `pg` counts them: it
//! stays a member of a group until it has left it as many times as it joined. (Its node's
//! replica of the groups, `global::membership`, has each member once.)

use std::sync::Arc;

use super::Core;

impl Core {
    /// Records one more join of `group` by this process: its joins of the group now, or
    /// `None` if it has ended.
    pub(crate) fn add_group(&self, group: &str) -> Option<u64> {
        let mut state = self.lock();
        let groups = &mut state.live_ties()?.groups;
        let joins = match groups.get_mut(group) {
            Some(joins) => joins,
            None => groups.entry(Arc::from(group)).or_default(),
        };
        *joins += 1;
        Some(*joins)
    }

    /// Undoes one join of `group`: the joins left (0: it is no longer a member), or `None`
    /// if it is not a member (or has ended).
    pub(crate) fn remove_group(&self, group: &str) -> Option<u64> {
        let mut state = self.lock();
        let groups = &mut state.ties.as_mut()?.groups;
        let joins = groups.get_mut(group)?;
        *joins -= 1;
        let left = *joins;
        if left == 0 {
            groups.remove(group);
        }
        Some(left)
    }
}
