//! The global side of `Node`: cluster-wide names and process groups (see `global`).

use std::collections::BTreeMap;

use super::Node;
use crate::error::{GlobalError, LookupError};
use crate::events::Subscription;
use crate::global::protocol::{ForwardOp, ForwardResult};
use crate::global::{GlobalEvent, GroupEvent};
use crate::server::{GenServer, NamedRef, ServerRef};
use crate::Pid;

/// A subscription to [`GlobalEvent`]s, from [`Node::global_events`].
pub type GlobalEvents = Subscription<GlobalEvent>;

/// A subscription to the changes of one process group, from [`Node::monitor_group`].
pub type GroupEvents = Subscription<GroupEvent>;

impl Node {
    /// Registers `name` for the process `pid` across the cluster: from now on every node
    /// finds it under that name, with no round trip ([`whereis_global`](Self::whereis_global),
    /// [`lookup_global`](Self::lookup_global), [`named_global`](Self::named_global)), until
    /// it is unregistered, the process ends or its node is lost.
    ///
    /// The name is unique in the cluster: if any process holds it, or another node
    /// registers it at the same moment and is settled first, this fails with
    /// [`GlobalError::NameTaken`] (naming the holder). A process may hold several global names.
    /// It runs on the process's node (a process of another node is registered there),
    /// and takes one round trip to every connected node; it fails with
    /// [`GlobalError::Timeout`] only if a connected node does not answer within
    /// [`GLOBAL_TIMEOUT`](crate::GLOBAL_TIMEOUT). A local node ([`Node::new`]) is a cluster
    /// of one. The protocol, and what happens to a name registered on both sides of a
    /// partition, are described in [`global`](crate::global).
    ///
    /// ```
    /// # use noex::{Ctx, GenServer, Node, ReplyTo};
    /// # struct Cache;
    /// # impl GenServer for Cache {
    /// #     type Args = (); type Call = (); type Reply = (); type Cast = (); type Info = ();
    /// #     type InitError = std::convert::Infallible;
    /// #     async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> { Ok(Cache) }
    /// # }
    /// use noex::GlobalError;
    ///
    /// let node = Node::new();
    /// node.block_on(async {
    ///     let cache = node.spawn::<Cache>(()).await.unwrap();
    ///     node.register_global("cache", cache.pid()).await.unwrap();
    ///     assert_eq!(node.whereis_global("cache").as_ref(), Some(cache.pid()));
    ///
    ///     let other = node.spawn::<Cache>(()).await.unwrap();
    ///     let taken = node.register_global("cache", other.pid()).await;
    ///     assert!(matches!(taken, Err(GlobalError::NameTaken { holder, .. }) if &holder == cache.pid()));
    /// });
    /// node.shutdown();
    /// ```
    pub async fn register_global(&self, name: &str, pid: &Pid) -> Result<(), GlobalError> {
        self.inner.global.register(&self.inner, name, pid).await
    }

    /// Removes the global `name`, on the node of the process that holds it; returns that
    /// process (`None` if nobody held the name).
    pub async fn unregister_global(&self, name: &str) -> Result<Option<Pid>, GlobalError> {
        let Some(pid) = self.whereis_global(name) else {
            return Ok(None);
        };
        let global = &self.inner.global;
        if pid.node() == self.name() {
            return Ok(global.unregister(&self.inner, name, &pid).then_some(pid));
        }
        let op = ForwardOp::Unregister {
            name: name.to_owned(),
            serial: pid.serial(),
        };
        match global.forward(&self.inner, &pid, op, name).await? {
            ForwardResult::Done(true) => Ok(Some(pid)),
            _ => Ok(None),
        }
    }

    /// The process holding the global `name`, from this node's replica (no round trip).
    pub fn whereis_global(&self, name: &str) -> Option<Pid> {
        self.inner.global.whereis(name)
    }

    /// The process holding the global `name`, as a typed reference to behaviour `B`.
    ///
    /// Fails with [`LookupError::NotFound`] if nobody holds it, and with
    /// [`LookupError::WrongBehavior`] if its process runs another behaviour than `B`
    /// (checked here: the registry knows every holder's behaviour).
    pub fn lookup_global<B: GenServer>(&self, name: &str) -> Result<ServerRef<B>, LookupError> {
        let not_found = || LookupError::NotFound(name.to_owned());
        let (pid, behavior) = self.inner.global.entry(name).ok_or_else(not_found)?;
        if pid.node() == self.name() {
            return self.server_ref::<B>(&pid).map_err(|error| match error {
                LookupError::WrongBehavior {
                    expected, found, ..
                } => LookupError::WrongBehavior {
                    name: name.to_owned(),
                    expected,
                    found,
                },
                _ => not_found(),
            });
        }
        let codec = B::__remote_codec()
            .ok_or_else(|| LookupError::LocalOnly(std::any::type_name::<B>().to_owned()))?;
        if codec.hash != behavior.hash {
            return Err(LookupError::WrongBehavior {
                name: name.to_owned(),
                expected: codec.name.to_owned(),
                found: behavior.name.to_string(),
            });
        }
        self.remote_ref(&pid)
    }

    /// A reference that finds the holder of the global `name` at each use, from any node:
    /// it keeps reaching the name's current owner when it is restarted, or moves.
    pub fn named_global<B: GenServer>(&self, name: impl Into<String>) -> NamedRef<B> {
        NamedRef::global(self.clone(), name.into())
    }

    /// Every global (name, pid) pair this node knows, sorted by name.
    pub fn global_names(&self) -> Vec<(String, Pid)> {
        self.inner.global.all()
    }

    /// Subscribes to changes of the global registry and groups, as this node sees them,
    /// from now on (up to [`EVENT_QUEUE`](crate::EVENT_QUEUE) unread events, see
    /// [`Subscription::missed`](crate::Subscription::missed)).
    pub fn global_events(&self) -> GlobalEvents {
        self.inner.global.events.subscribe()
    }

    /// Makes `pid` a member of `group`, cluster-wide (through its node, as Erlang's `pg`
    /// does: no lock, no round trip for a process of this node). `Ok(true)` if it was not
    /// a member, `Ok(false)` if it was one already.
    ///
    /// Joins are counted, as in `pg`: a process that joins a group twice stays a member
    /// until it has [left](Self::leave_group) it twice — so two parts of a program can
    /// each join and leave on their own. It is listed once in
    /// [`group_members`](Self::group_members) however many times it joined, and
    /// [`GroupEvent::Joined`] and [`GlobalEvent::Joined`] report only its first join. It
    /// leaves its groups when it ends, whatever its joins.
    ///
    /// A process of another node is joined by its node: if that fails with
    /// [`GlobalError::NoConnection`] or [`GlobalError::Timeout`], the join may have been
    /// made all the same (the answer was lost on the way back), so a program that must
    /// count its joins exactly joins through the process's own node, where no answer is
    /// lost. The same holds for [`leave_group`](Self::leave_group).
    ///
    /// ```
    /// # use noex::{Ctx, GenServer, Node};
    /// # struct Worker;
    /// # impl GenServer for Worker {
    /// #     type Args = (); type Call = (); type Reply = (); type Cast = (); type Info = ();
    /// #     type InitError = std::convert::Infallible;
    /// #     async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> { Ok(Worker) }
    /// # }
    /// let node = Node::new();
    /// node.block_on(async {
    ///     let worker = node.spawn::<Worker>(()).await.unwrap();
    ///     assert_eq!(node.join_group("workers", worker.pid()).await, Ok(true));
    ///     assert_eq!(node.group_members("workers"), vec![worker.pid().clone()]);
    /// });
    /// node.shutdown();
    /// ```
    pub async fn join_group(&self, group: &str, pid: &Pid) -> Result<bool, GlobalError> {
        self.inner.global.join_group(&self.inner, group, pid).await
    }

    /// Undoes one join of `pid` to `group` (through its node): at its last join, the
    /// process leaves the group cluster-wide; if it joined more times than it has left,
    /// it stays a member. `Ok(true)` if it was a member, `Ok(false)` if not (`pg`'s
    /// `not_joined`).
    ///
    /// ```
    /// # use noex::{Ctx, GenServer, Node};
    /// # struct Worker;
    /// # impl GenServer for Worker {
    /// #     type Args = (); type Call = (); type Reply = (); type Cast = (); type Info = ();
    /// #     type InitError = std::convert::Infallible;
    /// #     async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> { Ok(Worker) }
    /// # }
    /// let node = Node::new();
    /// node.block_on(async {
    ///     let worker = node.spawn::<Worker>(()).await.unwrap();
    ///     assert_eq!(node.join_group("workers", worker.pid()).await, Ok(true));
    ///     assert_eq!(node.join_group("workers", worker.pid()).await, Ok(false));
    ///     assert_eq!(node.leave_group("workers", worker.pid()).await, Ok(true));
    ///     assert_eq!(node.group_members("workers"), vec![worker.pid().clone()]);
    ///     assert_eq!(node.leave_group("workers", worker.pid()).await, Ok(true));
    ///     assert!(node.group_members("workers").is_empty());
    ///     assert_eq!(node.leave_group("workers", worker.pid()).await, Ok(false));
    /// });
    /// node.shutdown();
    /// ```
    pub async fn leave_group(&self, group: &str, pid: &Pid) -> Result<bool, GlobalError> {
        self.inner.global.leave_group(&self.inner, group, pid).await
    }

    /// The members of `group` on every node, sorted, each once (however many times it
    /// joined).
    pub fn group_members(&self, group: &str) -> Vec<Pid> {
        self.inner.global.members(group)
    }

    /// The members of `group` on this node, sorted.
    pub fn local_group_members(&self, group: &str) -> Vec<Pid> {
        self.inner.global.node_members(group, self.name())
    }

    /// The members of `group` on every node, sorted, and a subscription to the group's
    /// changes from that moment on, as Erlang's `pg:monitor/2`: the two are taken at one
    /// moment of this node's replica, so the subscription delivers every join and leave
    /// of the group this node sees after the snapshot, in order, and none it already
    /// shows. Applied to the snapshot in order, the events received give
    /// [`group_members`](Self::group_members) as of the last one (up to
    /// [`EVENT_QUEUE`](crate::EVENT_QUEUE) unread events, see
    /// [`Subscription::missed`](crate::Subscription::missed): a subscription that falls
    /// further behind should be dropped and the group monitored again).
    ///
    /// [`group_members`](Self::group_members) followed by
    /// [`global_events`](Self::global_events) leaves a gap: a change made between the two
    /// calls is either missed or reported again. A member that ends, or whose node is
    /// lost, is reported as [`GroupEvent::Left`]. Dropping the subscription ends the
    /// monitor.
    ///
    /// ```
    /// # use noex::{Ctx, GenServer, Node};
    /// # struct Worker;
    /// # impl GenServer for Worker {
    /// #     type Args = (); type Call = (); type Reply = (); type Cast = (); type Info = ();
    /// #     type InitError = std::convert::Infallible;
    /// #     async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> { Ok(Worker) }
    /// # }
    /// use noex::GroupEvent;
    ///
    /// let node = Node::new();
    /// node.block_on(async {
    ///     let first = node.spawn::<Worker>(()).await.unwrap();
    ///     node.join_group("workers", first.pid()).await.unwrap();
    ///
    ///     let (mut members, events) = node.monitor_group("workers");
    ///     assert_eq!(members, vec![first.pid().clone()]);
    ///
    ///     let second = node.spawn::<Worker>(()).await.unwrap();
    ///     node.join_group("workers", second.pid()).await.unwrap();
    ///     node.leave_group("workers", first.pid()).await.unwrap();
    ///     for _ in 0..2 {
    ///         match events.recv().await.unwrap() {
    ///             GroupEvent::Joined(pid) => members.push(pid),
    ///             GroupEvent::Left(pid) => members.retain(|p| *p != pid),
    ///             _ => {} // (the enum is non-exhaustive)
    ///         }
    ///     }
    ///     assert_eq!(members, node.group_members("workers"));
    /// });
    /// node.shutdown();
    /// ```
    pub fn monitor_group(&self, group: &str) -> (Vec<Pid>, GroupEvents) {
        self.inner.global.monitor_group(group)
    }

    /// Every group's members (each group with members, and its members sorted), and a
    /// subscription to the changes of every group from that moment on, as Erlang's
    /// `pg:monitor_scope/1`: [`monitor_group`](Self::monitor_group) for all the groups at
    /// once, groups created later included. The two are taken at one moment of this
    /// node's replica, so the subscription delivers every join and leave this node sees
    /// after the snapshot, in order, and none it already shows: applied to the snapshot
    /// in order, the events received give each group's
    /// [`group_members`](Self::group_members) as of the last one (up to
    /// [`EVENT_QUEUE`](crate::EVENT_QUEUE) unread events, see
    /// [`Subscription::missed`](crate::Subscription::missed)).
    ///
    /// It delivers [`GlobalEvent::Joined`] and [`GlobalEvent::Left`] only, which name
    /// their group ([`global_events`](Self::global_events) delivers the same and the
    /// changes of global names, with no snapshot). A member that ends, or whose node is
    /// lost, is reported as leaving each of its groups. Dropping the subscription ends the
    /// monitor.
    ///
    /// ```
    /// # use noex::{Ctx, GenServer, Node};
    /// # struct Worker;
    /// # impl GenServer for Worker {
    /// #     type Args = (); type Call = (); type Reply = (); type Cast = (); type Info = ();
    /// #     type InitError = std::convert::Infallible;
    /// #     async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> { Ok(Worker) }
    /// # }
    /// use noex::GlobalEvent;
    ///
    /// let node = Node::new();
    /// node.block_on(async {
    ///     let worker = node.spawn::<Worker>(()).await.unwrap();
    ///     node.join_group("workers", worker.pid()).await.unwrap();
    ///
    ///     let (mut groups, events) = node.monitor_groups();
    ///     assert_eq!(groups["workers"], vec![worker.pid().clone()]);
    ///
    ///     node.join_group("cache", worker.pid()).await.unwrap();
    ///     node.leave_group("workers", worker.pid()).await.unwrap();
    ///     for _ in 0..2 {
    ///         match events.recv().await.unwrap() {
    ///             GlobalEvent::Joined { group, pid } => {
    ///                 groups.entry(group).or_default().push(pid);
    ///             }
    ///             GlobalEvent::Left { group, pid } => {
    ///                 let members = groups.get_mut(&group).unwrap();
    ///                 members.retain(|p| *p != pid);
    ///                 if members.is_empty() {
    ///                     groups.remove(&group);
    ///                 }
    ///             }
    ///             _ => {} // (only group events come; the enum is non-exhaustive)
    ///         }
    ///     }
    ///     assert_eq!(groups.keys().cloned().collect::<Vec<_>>(), node.groups());
    ///     assert_eq!(groups["cache"], node.group_members("cache"));
    /// });
    /// node.shutdown();
    /// ```
    pub fn monitor_groups(&self) -> (BTreeMap<String, Vec<Pid>>, GlobalEvents) {
        self.inner.global.monitor_groups()
    }

    /// Every group with members, sorted.
    pub fn groups(&self) -> Vec<String> {
        self.inner.global.which_groups()
    }
}
