//! One process in the whole cluster, started again on another node when its node is lost:
//! a cluster singleton (Akka's `ClusterSingletonManager`, Erlang's distributed
//! applications' failover).
//!
//! Start a [`Singleton`] manager on every node that may run the process, with the same
//! name: the managers agree, through the [global registry](crate::global), on one of them
//! to run it, registered under that global name — call it from anywhere with
//! [`Node::named_global`](crate::Node::named_global). When its node is lost or shuts
//! down, another manager starts it again; when it ends, its manager starts it again — after
//! a growing [`Backoff`] when it failed, and one that cannot start there is left to
//! another node.
//!
//! A [`DistributedSupervisor`](crate::DistributedSupervisor) run as a singleton removes
//! the supervisor's node as a single point of failure: should that node die, the
//! supervisor starts again on another node and starts its children again (those that ran
//! on surviving nodes end when they lose their supervisor, see
//! [`placement`](super::placement)).
//!
//! # At most one, also under partitions
//!
//! The rules are those of the distributed supervisor:
//!
//! 1. **Only a manager whose node sees a strict majority of the cluster's known members
//!    starts the singleton** — and, after the node that ran it was lost, only once the
//!    loss delay has passed ([`MAJORITY_RETRY`] plus three heartbeat intervals): by then
//!    the lost node has noticed the loss too, and applied rule 2.
//! 2. **A singleton whose node no longer sees a majority is killed** (with
//!    [`ExitReason::Killed`]: `terminate` does not run, as for a child cut off from its
//!    supervisor; what it linked to itself gets the exit signal). Its manager looks every
//!    [`MAJORITY_RETRY`], also while the singleton's `init` runs: it runs user code from
//!    the start, however long its init timeout lets it take.
//!
//! The managers agree through a lock: a global name of their own (`noex.singleton/` and
//! the singleton's name), which the registry gives to one manager at a time. The manager
//! holding it starts the singleton; the others monitor it, and wait the loss delay when
//! its node is lost. A manager takes the lock only when no node was lost within the loss
//! delay — whether or not it knew the singleton ran there — and gives it back at once if a
//! node was lost while its claim was under way (that loss may be what let the claim
//! through). A manager that starts where not every known member is connected (it may
//! have missed a loss) first waits the loss delay. A singleton that no longer holds its
//! global name — it lost it to an earlier registration when a partition healed and
//! trapped the exit signal that told it so, or it gave the name up — is no longer the
//! singleton: its manager kills it and gives the lock up.
//!
//! A node counts its cluster's members as those it has been connected to (see
//! [`Node::members`](crate::Node::members)), so a node that dials seeds (or discovery
//! sources) and has not yet been connected to any of them — it has just started, or
//! restarted under a new id, cut off from its cluster — would be a majority of itself
//! alone: it starts nothing until it has joined. A node that dials no one is the first
//! of its cluster: alone, it runs the singleton.
//!
//! With an even split neither side has a majority, and the singleton runs nowhere until
//! the partition heals. A cluster of two nodes therefore loses its singleton with either
//! node, unless the lost node is forgotten ([`Node::forget_node`](crate::Node::forget_node));
//! run three or more. Every node must use the same heartbeat settings. What runs on the
//! minority side after its singleton was killed (the `terminate` of processes it linked
//! to itself, say) is not bounded by these rules: keep it short.
//!
//! A node alone (not clustered) is its own majority: the singleton runs there.
//!
//! A process other than a singleton holding the name (one of yours, or a singleton whose
//! manager ended while it ran on) is waited for: the manager holding the lock starts the
//! singleton once that process has ended.
//!
//! # Known limits
//!
//! - **A second failure during a partial partition.** With links a–b and b–c up and a–c
//!   cut, c sees the singleton on a through b and starts nothing; should the a–b link fail
//!   too, c's next claim goes through, and c waits the loss delay before it starts the
//!   singleton, as it never saw it end. But a manager on a fourth node d, connected to b
//!   and c only, that never tried to claim the lock meanwhile would not know to wait.
//! - **A node that joins during a partition** learns the members of the side it joins
//!   only: joining the minority side, it may count that side a majority.
//! - **While the singleton's `init` runs, or its manager claims the lock** (up to
//!   [`GLOBAL_TIMEOUT`](crate::GLOBAL_TIMEOUT) if a connected node does not answer), the
//!   manager answers no [`state`](crate::ServerRef::state) call (a call may time out), and a
//!   shutdown waits for it.
//!
//! ```
//! use noex::supervisor::{Singleton, SingletonSpec, SingletonState};
//! use noex::{behavior, Node};
//!
//! #[behavior]
//! pub struct Scheduler {
//!     ticks: u64,
//! }
//!
//! #[behavior]
//! impl Scheduler {
//!     #[init]
//!     fn init(start: u64) -> Self {
//!         Scheduler { ticks: start }
//!     }
//!
//!     #[call]
//!     fn ticks(&self) -> u64 {
//!         self.ticks
//!     }
//! }
//!
//! let node = Node::new();
//! node.block_on(async {
//!     // On every node that may run it, the same name.
//!     let manager = node
//!         .spawn::<Singleton<Scheduler>>(SingletonSpec::new("scheduler", 7))
//!         .await
//!         .unwrap();
//!     // A node alone runs it at once.
//!     let Some(pid) = manager.where_running().await.unwrap() else {
//!         unreachable!("a node alone runs its singleton")
//!     };
//!     assert!(matches!(manager.state().await.unwrap(), SingletonState::Here(_)));
//!     // Reach it wherever it runs by its global name.
//!     let scheduler = node.named_global::<Scheduler>("scheduler");
//!     assert_eq!(scheduler.ticks().await.unwrap(), 7);
//!     assert_eq!(node.whereis_global("scheduler"), Some(pid));
//! });
//! node.shutdown();
//! ```

mod api;

use std::convert::Infallible;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;

use super::backoff::Backoff;
use super::placement::{loss_delay, sees_majority, MAJORITY_RETRY};
use crate::server::{Ctx, GenServer, Info, ReplyTo, SpawnOptions};
use crate::{ExitReason, GlobalError, MonitorRef, Node, Pid, SpawnError, TimerRef, MAX_NAME_LEN};

pub use api::{SingletonInitError, SingletonRequest, SingletonSpec, SingletonState};

/// The global name of the lock of the singleton `name`, held by the manager that runs it.
fn lock_name(name: &str) -> String {
    format!("{LOCK_PREFIX}{name}")
}

/// What the lock's global name starts with.
const LOCK_PREFIX: &str = "noex.singleton/";

/// The longest name of a singleton: its lock's name is a global name too.
pub const MAX_SINGLETON_NAME_LEN: usize = MAX_NAME_LEN - LOCK_PREFIX.len();

/// The manager of a cluster singleton of behaviour `B` (see the [module docs](self)): spawn
/// one on every node that may run it, with the same [`SingletonSpec`], as you spawn any
/// process (also as a supervisor's child, [`ChildSpec::worker`](super::ChildSpec::worker)).
///
/// The managers agree on one of them through a lock, a global name of their own
/// (`noex.singleton/` and the singleton's name); the one holding it starts the singleton,
/// linked to itself, and starts it again when it ends (after its [`Backoff`] if it
/// failed; a singleton that cannot start there is left to another manager). Stopping that
/// manager stops the singleton, and another manager starts it. Reach the singleton by its
/// global name ([`Node::named_global`](crate::Node::named_global)); calls made while it
/// moves fail with [`CallError::NoProc`](crate::CallError::NoProc) or
/// [`CallError::NoConnection`](crate::CallError::NoConnection), as calls to any
/// process that ended do.
pub struct Singleton<B: GenServer> {
    name: String,
    lock: String,
    args: B::Args,
    backoff: Backoff,
    init_timeout: Option<Duration>,
    /// `true` while this manager holds the lock.
    owner: bool,
    /// The singleton, when this manager runs it, and when it started.
    running: Option<(Pid, Instant)>,
    /// The manager holding the lock, elsewhere, monitored.
    holder: Option<(Pid, MonitorRef)>,
    /// Another process holding the singleton's name while this manager holds the lock (a
    /// user's, or a singleton whose manager ended while it ran on), monitored: the
    /// singleton starts once it has ended.
    blocker: Option<(Pid, MonitorRef)>,
    /// The manager holding the lock on a node this one does not reach, as the last refusal
    /// of this manager's claim said (through a third node): it cannot be monitored.
    unreached: Option<Pid>,
    /// No start before this instant: the loss delay, or the backoff.
    not_before: Instant,
    /// The backoff's last delay (zero: none yet).
    last_backoff: Duration,
    /// This node has joined its cluster: it dials no seeds, or it has been connected to a
    /// member since this manager started (see [`may_run`](Self::may_run)).
    joined: bool,
    _ticks: TimerRef,
    _behavior: PhantomData<fn() -> B>,
}

impl<B> GenServer for Singleton<B>
where
    B: GenServer,
    B::Args: Clone + Sync,
{
    type Args = SingletonSpec<B>;
    type Call = SingletonRequest;
    type Reply = SingletonState;
    type Cast = Infallible;
    type Info = ();
    type InitError = SingletonInitError;

    async fn init(spec: SingletonSpec<B>, ctx: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        if spec.name.len() > MAX_SINGLETON_NAME_LEN {
            return Err(SingletonInitError::NameTooLong {
                len: spec.name.len(),
                max: MAX_SINGLETON_NAME_LEN,
            });
        }
        let node = ctx.node();
        if node.is_hidden() {
            return Err(SingletonInitError::HiddenNode);
        }
        ctx.trap_exits(true);
        // A manager that does not see every known member may have missed the loss of the
        // node running the singleton: it waits as if it had seen it.
        let known = node.known_members();
        let unseen = node.local_node_id().is_some() && node.connected_nodes().len() < known;
        let not_before = match unseen {
            true => crate::timer::instant_after(loss_delay(&node)),
            false => Instant::now(),
        };
        let joined = !seeded(&node) || known > 0;
        let ticks = ctx.send_interval((), MAJORITY_RETRY);
        ctx.continue_with(());
        Ok(Singleton {
            lock: lock_name(&spec.name),
            name: spec.name,
            args: spec.args,
            backoff: spec.backoff,
            init_timeout: spec.init_timeout,
            owner: false,
            running: None,
            holder: None,
            blocker: None,
            unreached: None,
            not_before,
            last_backoff: Duration::ZERO,
            joined,
            _ticks: ticks,
            _behavior: PhantomData,
        })
    }

    async fn handle_call(
        &mut self,
        _request: SingletonRequest,
        reply: ReplyTo<SingletonState>,
        ctx: &mut Ctx<Self>,
    ) {
        reply.send(self.state(ctx));
    }

    async fn handle_info(&mut self, info: Info<()>, ctx: &mut Ctx<Self>) {
        match info {
            Info::Message(()) | Info::Continue(()) => self.check(ctx).await,
            Info::Down {
                monitor, reason, ..
            } if self.blocker.as_ref().is_some_and(|(_, m)| *m == monitor) => {
                self.blocker = None;
                if reason == ExitReason::NoConnection {
                    self.wait_loss_delay(&ctx.node());
                }
                self.check(ctx).await;
            }
            Info::Down {
                monitor,
                pid,
                reason,
            } if self.holder.as_ref().is_some_and(|(_, m)| *m == monitor) => {
                self.holder = None;
                if reason == ExitReason::NoConnection {
                    // Its node is lost: the singleton may run on there until that node
                    // notices.
                    self.wait_loss_delay(&ctx.node());
                }
                tracing::debug!(singleton = %self.name, manager = %pid, %reason, "the manager running the singleton ended");
                self.check(ctx).await;
            }
            // The lock (or the singleton's name) went to another node's manager when a
            // partition healed: that one runs it.
            Info::Exit {
                reason: ExitReason::NameConflict(_),
                ..
            } if self.owner => {
                self.give_up(ctx, "another node runs the singleton");
                self.check(ctx).await;
            }
            Info::Exit { from, reason } if self.running_pid() == Some(&from) => {
                let (_, started) = self.running.take().expect("running");
                match reason {
                    ExitReason::Normal | ExitReason::Shutdown => {
                        tracing::info!(singleton = %self.name, pid = %from, %reason, "the singleton ended; starting it again");
                    }
                    _ => {
                        tracing::warn!(singleton = %self.name, pid = %from, %reason, "the singleton failed; starting it again after the backoff");
                        self.back_off(started.elapsed());
                    }
                }
                self.check(ctx).await;
            }
            _ => {}
        }
    }

    async fn terminate(&mut self, _reason: &ExitReason, ctx: &mut Ctx<Self>) {
        // The lock goes with this process.
        if let Some((pid, _)) = self.running.take() {
            let _ = ctx.node().stop(&pid, ExitReason::Shutdown).await;
        }
    }
}

impl<B> Singleton<B>
where
    B: GenServer,
    B::Args: Clone + Sync,
{
    fn running_pid(&self) -> Option<&Pid> {
        self.running.as_ref().map(|(pid, _)| pid)
    }

    fn state(&self, ctx: &Ctx<Self>) -> SingletonState {
        let node = ctx.node();
        if let Some(pid) = self.running_pid() {
            return SingletonState::Here(pid.clone());
        }
        if let Some(pid) = node.whereis_global(&self.name) {
            return SingletonState::Elsewhere(pid);
        }
        if let Some(manager) = &self.unreached {
            let node = manager.node().to_owned();
            return SingletonState::Unreachable { node };
        }
        match (self.joined || node.known_members() > 0) && sees_majority(&node) {
            true => SingletonState::Waiting,
            false => SingletonState::NoMajority,
        }
    }

    /// `true` while this manager may run the singleton (rule 1 without the loss delay): its
    /// node sees a strict majority of its cluster's known members, and has joined that
    /// cluster. A node that dials seeds (or discovery sources) and has not been connected
    /// to any of its members yet knows none of them: alone, it would be a majority of
    /// itself, beside the cluster it is cut off from.
    fn may_run(&mut self, node: &Node) -> bool {
        self.joined = self.joined || node.known_members() > 0;
        self.joined && sees_majority(node)
    }

    /// No start before the loss delay is over, from now.
    fn wait_loss_delay(&mut self, node: &Node) {
        let safe_at = crate::timer::instant_after(loss_delay(node));
        self.not_before = self.not_before.max(safe_at);
    }

    /// The next start waits for the backoff, after a run of `ran`.
    fn back_off(&mut self, ran: Duration) {
        let (delay, remembered) = self.backoff.next(self.last_backoff, ran);
        self.last_backoff = remembered;
        self.not_before = self.not_before.max(crate::timer::instant_after(delay));
    }

    /// `true` if a node lost lately may still run the singleton, unseen — whether or not
    /// this manager knew it ran there (it may have been lost before this manager looked,
    /// or while it claimed the lock) — or this manager waits for its backoff.
    fn must_wait(&self, node: &Node) -> bool {
        let now = Instant::now();
        let after_loss = node.last_loss().map(|at| at + loss_delay(node));
        now < self.not_before || after_loss.is_some_and(|safe| now < safe)
    }

    /// Applies the rules: the manager holding the lock gives it up, killing the singleton,
    /// when this node no longer sees a majority, and otherwise keeps the singleton
    /// running; another takes the lock when nobody holds it in this node's view and that
    /// is safe.
    async fn check(&mut self, ctx: &mut Ctx<Self>) {
        let node = ctx.node();
        if self.owner {
            let named = node.whereis_global(&self.name);
            let locked = node.whereis_global(&self.lock).as_ref() == Some(ctx.pid());
            if !self.may_run(&node) {
                self.give_up(ctx, "this node no longer sees a majority of the cluster");
                self.wait_loss_delay(&node);
            } else if !locked {
                // The lock went to another manager as a partition healed (the exit signal
                // that says so may still be on its way).
                self.give_up(ctx, "another node's manager holds the lock");
            } else if self
                .running_pid()
                .is_some_and(|pid| named.as_ref() != Some(pid))
            {
                // It lost its name to an earlier registration when a partition healed and
                // trapped the exit signal that told it so (or it gave the name up): it is
                // not the singleton any more.
                self.give_up(ctx, "the singleton here no longer holds its global name");
            } else if self.running.is_none() && self.blocker.is_none() {
                match named {
                    Some(other) => self.block(ctx, other),
                    None if Instant::now() >= self.not_before => self.start(ctx).await,
                    None => {}
                }
            }
            return;
        }
        if let Some((holder, monitor)) = &self.holder {
            // Given up without ending (a manager that could not start it): look again.
            if node.whereis_global(&self.lock).as_ref() != Some(holder) {
                ctx.demonitor(*monitor);
                self.holder = None;
            } else {
                return;
            }
        }
        // Watched also while this manager may not take it: should its node be lost, the
        // `Down` tells this manager to wait.
        if let Some(holder) = node.whereis_global(&self.lock) {
            self.watch(ctx, holder);
            return;
        }
        if self.must_wait(&node) || !self.may_run(&node) {
            return;
        }
        let unreached = self.unreached.take();
        let claimed = Instant::now();
        match node.register_global(&self.lock, ctx.pid()).await {
            Ok(()) if node.last_loss().is_some_and(|at| at >= claimed) => {
                // A node lost while the claim was under way may have held the lock (its
                // loss is what let the claim through): its singleton may still run there.
                self.release(ctx);
            }
            Ok(()) => {
                self.owner = true;
                match unreached {
                    // As far as this manager knew, it ran on a node this one does not
                    // reach: its end was not seen here — the third node that reached both
                    // may merely have lost that node, which may not have noticed yet.
                    Some(manager) => {
                        tracing::debug!(singleton = %self.name, %manager, "the lock was free where it was held out of reach: starting the singleton after the loss delay");
                        self.wait_loss_delay(&node);
                    }
                    None => self.start(ctx).await,
                }
            }
            Err(GlobalError::NameTaken { holder, .. }) if reaches(&node, &holder) => {
                self.watch(ctx, holder);
            }
            // Held on a node this one does not reach, refused by a third node that reaches
            // both (a partial partition): it cannot be monitored from here. Tried again
            // after the loss delay, as if it had just been lost.
            Err(GlobalError::NameTaken { holder, .. }) => {
                tracing::debug!(singleton = %self.name, manager = %holder, "the singleton runs on a node this one does not reach");
                self.unreached = Some(holder);
                self.wait_loss_delay(&node);
            }
            // The node shuts down: nothing more to do.
            Err(GlobalError::ShuttingDown) => {}
            // A connected node did not answer in time: tried again at the next look.
            Err(error) => {
                tracing::debug!(singleton = %self.name, %error, "the singleton's lock could not be taken");
            }
        }
    }

    /// Starts the singleton here (this manager holds the lock). One that cannot start is
    /// left to another manager: the lock is given up, and this manager waits its backoff.
    async fn start(&mut self, ctx: &mut Ctx<Self>) {
        let options = SpawnOptions::new()
            .global_name(self.name.clone())
            .init_timeout(self.init_timeout);
        let node = ctx.node();
        let cut_off = kill_if_cut_off(node.clone(), &self.name, ctx.pid().clone());
        let spawn = ctx.spawn_link_with::<B>(self.args.clone(), options);
        match spawn.or(cut_off).await {
            Ok(server) => {
                tracing::info!(singleton = %self.name, pid = %server.pid(), "the singleton started here");
                self.running = Some((server.pid().clone(), Instant::now()));
            }
            Err(SpawnError::ShuttingDown) => {}
            Err(SpawnError::NameTaken { holder, .. }) => self.block(ctx, holder),
            // Killed in its `init` by `kill_if_cut_off`, or failed there as this node lost
            // its majority: as if it had been killed running.
            Err(error) if !sees_majority(&node) => {
                self.give_up(ctx, &format!("it did not start ({error})"));
                self.wait_loss_delay(&node);
            }
            Err(error) => {
                tracing::warn!(singleton = %self.name, %error, "the singleton could not start here; leaving it to another node");
                self.back_off(Duration::ZERO);
                self.give_up(ctx, "it could not start here");
            }
        }
    }

    /// Kills the singleton if it runs here, and gives the lock up.
    fn give_up(&mut self, ctx: &mut Ctx<Self>, why: &str) {
        let node = ctx.node();
        if let Some((pid, _)) = self.running.take() {
            tracing::warn!(singleton = %self.name, %pid, "{why}: killing the singleton here");
            node.kill(&pid);
        }
        if let Some((_, monitor)) = self.blocker.take() {
            ctx.demonitor(monitor);
        }
        self.owner = false;
        self.release(ctx);
    }

    /// Gives the lock up, if this manager holds it (not another, which took it over).
    fn release(&self, ctx: &Ctx<Self>) {
        if let Some(node) = ctx.node_inner() {
            node.global.unregister(&node, &self.lock, ctx.pid());
        }
    }

    /// Waits, holding the lock, for `other` — which holds the singleton's name — to end.
    fn block(&mut self, ctx: &mut Ctx<Self>, other: Pid) {
        tracing::info!(singleton = %self.name, %other, "another process holds the singleton's name: starting it once that one has ended");
        let monitor = ctx.monitor(&other);
        self.blocker = Some((other, monitor));
    }

    fn watch(&mut self, ctx: &mut Ctx<Self>, holder: Pid) {
        self.unreached = None;
        let monitor = ctx.monitor(&holder);
        self.holder = Some((holder, monitor));
    }
}

/// `true` if `pid` is a process of `node` or of a node connected to it.
fn reaches(node: &Node, pid: &Pid) -> bool {
    let local = node
        .local_node_id()
        .is_none_or(|id| id.as_str() == pid.node());
    local
        || node
            .connected_nodes()
            .iter()
            .any(|n| n.id.as_str() == pid.node())
}

/// `true` for a clustered node that dials seeds or discovery sources: it has a cluster to
/// join.
fn seeded(node: &Node) -> bool {
    let cluster = node.inner.cluster.get();
    cluster.is_some_and(|c| !c.config.sources().is_empty())
}

/// Never ends: rule 2 while a manager waits for the `init` of the singleton it spawned
/// (which may take as long as its init timeout allows, and the manager handles nothing
/// meanwhile). Every [`MAJORITY_RETRY`] that `node` does not see a majority, it kills the
/// holder of the singleton's global `name` if it is the process `manager` spawned: the
/// name is registered before `init` runs.
async fn kill_if_cut_off<T>(node: Node, name: &str, manager: Pid) -> T {
    loop {
        smol::Timer::after(MAJORITY_RETRY).await;
        if sees_majority(&node) {
            continue;
        }
        let starting = node.whereis_global(name).filter(|pid| {
            let info = node.process_info(pid);
            info.is_some_and(|info| info.parent.as_ref() == Some(&manager))
        });
        if let Some(pid) = starting {
            tracing::warn!(singleton = %name, %pid, "this node no longer sees a majority of the cluster: killing the singleton in its init");
            node.kill(&pid);
        }
    }
}
