//! Supervisors: processes that start children, watch them, and restart them when they fail.
//!
//! A supervisor is a [`GenServer`] like any other, started with
//! `node.spawn::<Supervisor>(spec)` (or as a child of another supervisor, which builds
//! trees) and driven through the methods of `ServerRef<Supervisor>`.
//!
//! # Contract
//!
//! * **Start.** Children start in the order of the spec, each `init` finishing before the
//!   next starts, each linked to the supervisor (which traps exits). If one fails to start,
//!   those already started are stopped in reverse order and the supervisor's own start fails
//!   with [`SupervisorInitError::ChildStart`] naming the child.
//! * **A child ends.** Whether it is restarted depends on its [`Restart`] type:
//!
//!   | restart | ends with `Normal` / `Shutdown` | ends with any other reason |
//!   |---|---|---|
//!   | `Permanent` | restarted | restarted |
//!   | `Transient` | not restarted (spec kept) | restarted |
//!   | `Temporary` | not restarted (spec removed) | not restarted (spec removed) |
//!
//!   What is restarted with it depends on the [`Strategy`]: only the child
//!   (`OneForOne`, `SimpleOneForOne`), every child (`OneForAll`), or the child and those
//!   started after it (`RestForOne`). Siblings are stopped in reverse start order, then
//!   everything is started again in start order; a temporary sibling stopped this way is
//!   removed, not restarted.
//! * **Backoff.** A child spec with a [`Backoff`] waits before each restart — a fixed
//!   delay, or one growing exponentially with jitter up to a cap and back to the first
//!   once the child has run for a while. The child shows as
//!   [`restarting`](ChildInfo::restarting) meanwhile; the restart counts toward the
//!   intensity when it is decided; a supervisor stopped meanwhile stops cleanly (the
//!   waiting child is not started). In a group restart (`OneForAll`, `RestForOne`) the
//!   children after one that waits wait too, and start after it, in start order.
//! * **Intensity.** Every restart — including each failed attempt, which is retried (the
//!   child showing as [`restarting`](ChildInfo::restarting) until then) — is counted. More than `max_restarts` within `within` (default 3 in 5 s) and the supervisor
//!   gives up: it logs and publishes [`LifecycleEvent::MaxRestartsExceeded`], stops its
//!   children in reverse order and exits with [`ExitReason::Shutdown`], leaving the decision
//!   to its own supervisor.
//! * **Stop.** Children stop in reverse start order, each fully ended before the next is
//!   asked, each by its [`Shutdown`]: `BrutalKill` kills at once; `Timeout(d)` (5 s by
//!   default for workers) asks it to stop, which runs its `terminate`, and kills it after
//!   `d`; `Infinity` (the default for supervisors) waits. A simple_one_for_one supervisor
//!   stops its children concurrently. A child stays linked to the supervisor until it has
//!   ended: should the supervisor be killed meanwhile (its own stop's grace ran out), the
//!   child ends with it.
//! * **Auto shutdown.** With [`AutoShutdown::AnySignificant`] (or `AllSignificant`), a
//!   significant child that ends by itself and is not restarted makes the supervisor shut
//!   down with `Shutdown` — under `AllSignificant`, once no other significant child runs
//!   or waits to be started again. A child stopped by the supervisor does not count.
//! * **Names.** A child spec with a [`name`](ChildSpec::name) registers every incarnation
//!   of the child under that name, so callers using [`Node::named`](crate::Node::named) reach
//!   the current one; with a [`global_name`](ChildSpec::global_name), callers on any node
//!   ([`Node::named_global`](crate::Node::named_global)) do.
//! * **Nodes.** A spec made with [`SupervisorSpec::distributed`] (a
//!   [`DistributedSupervisor`]) places its children on the nodes of the cluster by a
//!   [`NodeSelector`], and moves them when their node is lost; see [`placement`] for the
//!   rules, partitions included.
//!
//! # Example
//!
//! ```
//! use noex::supervisor::{ChildSpec, Strategy, SupervisorSpec};
//! use noex::{Ctx, GenServer, Node, Supervisor};
//! # struct Worker;
//! # impl GenServer for Worker {
//! #     type Args = (); type Call = (); type Reply = (); type Cast = (); type Info = ();
//! #     type InitError = std::convert::Infallible;
//! #     async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> { Ok(Worker) }
//! # }
//!
//! let node = Node::new();
//! node.block_on(async {
//!     let spec = SupervisorSpec::new(Strategy::OneForOne)
//!         .child(ChildSpec::worker::<Worker>("a", ()))
//!         .child(ChildSpec::worker::<Worker>("b", ()).name("b"));
//!     let sup = node.spawn::<Supervisor>(spec).await.unwrap();
//!
//!     let before = node.whereis("b").unwrap();
//!     node.kill(&before);
//!     // The supervisor restarts `b`; the name follows the new incarnation.
//!     let after = loop {
//!         match node.whereis("b") {
//!             Some(pid) if pid != before => break pid,
//!             _ => smol::future::yield_now().await,
//!         }
//!     };
//!     assert!(node.is_alive(&after));
//!     assert_eq!(sup.count_children().await.unwrap().active, 2);
//! });
//! node.shutdown();
//! ```

mod backoff;
mod client;
mod held;
pub mod placement;
mod requests;
mod restart;
mod shutdown;
pub mod singleton;
mod spec;
mod validate;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::events::LifecycleEvent;
use crate::server::{Ctx, GenServer, Info, ReplyTo, SpawnOptions};
use crate::{ExitReason, Pid};

pub use backoff::Backoff;
pub use client::{ChildCounts, ChildInfo, ChildKey, SupervisorError};
#[doc(hidden)]
pub use client::{Request, Response};
pub use placement::{
    Choose, DistributedSupervisor, DistributionStats, NodeSelector, MAJORITY_RETRY,
};
pub use singleton::{
    Singleton, SingletonInitError, SingletonRequest, SingletonSpec, SingletonState,
};
pub use spec::{
    AutoShutdown, ChildKind, ChildSpec, ChildTemplate, Restart, Shutdown, Strategy, SupervisorSpec,
    DEFAULT_MAX_RESTARTS, DEFAULT_RESTART_WINDOW, DEFAULT_WORKER_SHUTDOWN,
};

use held::Held;
use placement::Placement;
use restart::Intensity;
use spec::{PlaceError, Started};
use validate::{validate, validate_child};

/// Why a child did not start (see [`start`]).
struct Failed {
    error: String,
    /// The node asked that gave no answer: the child may run there (see
    /// [`PlaceError::Lost`]).
    lost: Option<String>,
}

impl From<String> for Failed {
    fn from(error: String) -> Self {
        Failed { error, lost: None }
    }
}

/// Why a supervisor could not start.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SupervisorInitError {
    /// A child failed to start; the children started before it were stopped.
    #[error("child {id:?} failed to start: {error}")]
    ChildStart {
        /// The child's id.
        id: String,
        /// Why it failed.
        error: String,
    },
    /// The spec contradicts itself.
    #[error("invalid supervisor spec: {0}")]
    InvalidSpec(String),
}

/// The `Cast` type of [`Supervisor`]: a supervisor takes no casts, and no value of this
/// type can be made.
#[doc(hidden)]
pub struct Internal(InternalKind);

/// None today: a failed restart is tried again through the timer of held children.
enum InternalKind {}

/// The supervisor behaviour. See the [module docs](self) for its contract.
pub struct Supervisor {
    strategy: Strategy,
    intensity: Intensity,
    auto_shutdown: AutoShutdown,
    template: Option<ChildTemplate>,
    children: Vec<Child>,
    simple_serial: u64,
    /// Where children go, for a distributed supervisor.
    placement: Option<Placement>,
    /// The timer of held children (see `held`): when it fires.
    timer: Option<(Instant, crate::TimerRef)>,
    /// Children it stopped that had ended losing a global name: the exit signal of their
    /// end, still linked, may follow, and is a child's conflict, not this supervisor's.
    conflicted: Vec<Pid>,
}

struct Child {
    spec: ChildSpec,
    pid: Option<Pid>,
    /// Waiting to be started again (see `held`), not before the instant given.
    held: Option<(Held, Instant)>,
    /// Stopped by request (`terminate_child`): no pending restart brings it back.
    terminated: bool,
    /// When it last started, and the delay its next restart waits (see `Backoff`).
    started: Instant,
    backoff: Duration,
    /// Starts after the first (see `ChildInfo::restarts`).
    restarts: u32,
    /// Set once it was lost with its node (its last run may still go on there, unseen,
    /// unless that node, leaving, told its end): until it runs again, it starts only while
    /// this side sees a majority, and its start counts as a migration (see `placement`).
    lost: Option<Lost>,
}

/// Where a child's last run was lost: it ended with that node, or a start there got no
/// answer.
struct Lost {
    node: String,
    /// When it may start elsewhere: the migration delay after the loss was seen (at once
    /// if its leaving node told its end), or later, with the others lost with that node.
    safe_at: Instant,
}

impl Child {
    /// Records that it runs as `pid` now.
    fn started(&mut self, pid: Pid) {
        self.restarts = self.restarts.saturating_add(1);
        self.pid = Some(pid);
        self.held = None;
        self.terminated = false;
        self.started = Instant::now();
        self.lost = None;
    }

    /// The delay its restart waits, by its spec's backoff (none without one).
    fn backoff(&mut self) -> Option<Duration> {
        let backoff = self.spec.backoff?;
        let (delay, remembered) = backoff.next(self.backoff, self.started.elapsed());
        self.backoff = remembered;
        Some(delay)
    }

    fn new(spec: ChildSpec, pid: Pid) -> Self {
        Child {
            spec,
            pid: Some(pid),
            held: None,
            terminated: false,
            started: Instant::now(),
            backoff: Duration::ZERO,
            restarts: 0,
            lost: None,
        }
    }
}

/// How long a child's start on another node may take: its init timeout and the slack the
/// defaults leave for the request and the answer, at least the default — an `init` that
/// takes as long as its spec allows is no more a failure there than here.
fn spawn_timeout(init_timeout: Option<Duration>) -> Duration {
    let slack = crate::DEFAULT_SPAWN_TIMEOUT.saturating_sub(crate::DEFAULT_INIT_TIMEOUT);
    init_timeout.map_or(Duration::MAX, |init| {
        crate::DEFAULT_SPAWN_TIMEOUT.max(init.saturating_add(slack))
    })
}

/// Starts one child, linked to the supervisor and registered under the spec's names: on
/// the node `placement` picks (trying the next one while a node cannot take it, but not
/// after one that was asked and gave no answer), given the supervisor's running
/// `children`; on the supervisor's node without placement.
async fn start(
    ctx: &mut Ctx<Supervisor>,
    spec: &ChildSpec,
    placement: Option<(&mut Placement, &[Child])>,
) -> Result<Started, Failed> {
    let mut options = SpawnOptions::new()
        .supervised_by(ctx.pid().clone())
        .init_timeout(spec.init_timeout)
        .spawn_timeout(spawn_timeout(spec.init_timeout));
    if let Some(name) = &spec.name {
        options = options.name(name.clone());
    }
    if let Some(name) = &spec.global_name {
        options = options.global_name(name.clone());
    }
    let node = ctx.node();
    let (Some(place), Some((placement, children)), Some(here)) =
        (&spec.place, placement, node.local_node_id().cloned())
    else {
        return Ok((spec.start)(ctx, options).await?);
    };
    let mut load = std::collections::HashMap::new();
    for pid in children.iter().filter_map(|c| c.pid.as_ref()) {
        *load.entry(pid.node().to_owned()).or_insert(0) += 1;
    }
    let mut excluded = Vec::new();
    let mut last = "no node of the cluster can take it".to_owned();
    while let Some(target) = placement.choose(&node, &load, &excluded) {
        if target == here && !spec.by_name {
            // Typed, and no need for the behaviour's registration here.
            return Ok((spec.start)(ctx, options).await?);
        }
        match place(ctx, target.clone(), options.clone()).await {
            Ok(started) => return Ok(started),
            Err(PlaceError::Child(error)) => return Err(error.into()),
            Err(PlaceError::Lost(error)) => {
                return Err(Failed {
                    error,
                    lost: Some(target.to_string()),
                })
            }
            Err(PlaceError::Node(error)) => {
                tracing::warn!(supervisor = %ctx.pid(), node = %target, %error, "cannot place a child there; trying another node");
                last = error;
                excluded.push(target);
            }
        }
    }
    Err(last.into())
}

impl GenServer for Supervisor {
    type Args = SupervisorSpec;
    type Call = Request;
    type Reply = Response;
    type Cast = Internal;
    type Info = ();
    type InitError = SupervisorInitError;

    async fn init(spec: SupervisorSpec, ctx: &mut Ctx<Self>) -> Result<Self, SupervisorInitError> {
        ctx.trap_exits(true);
        validate(&spec).map_err(SupervisorInitError::InvalidSpec)?;
        let mut supervisor = Supervisor {
            strategy: spec.strategy,
            intensity: Intensity {
                max: spec.max_restarts,
                within: spec.within,
                restarts: VecDeque::new(),
            },
            auto_shutdown: spec.auto_shutdown,
            template: spec.template,
            children: Vec::with_capacity(spec.children.len()),
            simple_serial: 0,
            placement: spec.selector.map(Placement::new),
            timer: None,
            conflicted: Vec::new(),
        };
        for child in spec.children {
            let placement = supervisor
                .placement
                .as_mut()
                .map(|p| (p, &supervisor.children[..]));
            match start(ctx, &child, placement).await {
                Ok(started) => supervisor.children.push(Child::new(child, started.pid)),
                Err(failed) => {
                    supervisor.publish(ctx, || LifecycleEvent::ChildStartFailed {
                        supervisor: ctx.pid().clone(),
                        child: child.id.clone(),
                        error: failed.error.clone(),
                    });
                    supervisor.stop_all(ctx).await;
                    return Err(SupervisorInitError::ChildStart {
                        id: child.id,
                        error: failed.error,
                    });
                }
            }
        }
        Ok(supervisor)
    }

    async fn handle_call(
        &mut self,
        request: Request,
        reply: ReplyTo<Response>,
        ctx: &mut Ctx<Self>,
    ) {
        let response = match request {
            Request::StartChild(spec) => Response::Started(self.start_child(ctx, spec).await),
            Request::StartSimple(args, behavior, name) => {
                Response::Started(self.start_simple(ctx, args, behavior, name).await)
            }
            Request::Terminate(key) => Response::Done(self.terminate_child(ctx, key).await),
            Request::Restart(id) => Response::Started(self.restart_child(ctx, id).await),
            Request::Delete(id) => Response::Done(self.delete_child(id)),
            Request::Which => Response::Children(self.which_children()),
            Request::Count => Response::Counts(self.count_children()),
            Request::SetSelector(selector) => Response::Done(self.set_selector(selector)),
            Request::Distribution => Response::Distribution(self.distribution()),
        };
        reply.send(response);
    }

    async fn handle_cast(&mut self, message: Internal, _ctx: &mut Ctx<Self>) {
        match message.0 {}
    }

    async fn handle_info(&mut self, info: Info<()>, ctx: &mut Ctx<Self>) {
        match info {
            // It lost its global name to another supervisor when a partition healed (the
            // winner tells it; a child losing its own name is a child's exit): that one
            // runs the children now. A supervisor traps exits to see its children's, not
            // to outlive this: it stops, and its children with it.
            Info::Exit { from, reason }
                if matches!(reason, ExitReason::NameConflict(_)) && !self.is_child(&from) =>
            {
                match self.conflicted.iter().position(|pid| *pid == from) {
                    Some(former) => drop(self.conflicted.swap_remove(former)),
                    None => ctx.stop(reason),
                }
            }
            Info::Exit { from, reason } => self.child_exited(ctx, from, reason).await,
            // The timer of children waiting to be started again.
            Info::Message(()) => self.start_held_back(ctx).await,
            _ => {}
        }
    }

    async fn terminate(&mut self, _reason: &ExitReason, ctx: &mut Ctx<Self>) {
        self.stop_all(ctx).await;
    }
}

impl Supervisor {
    /// Starts the child at `index` (see [`start`]).
    async fn start_at(&mut self, ctx: &mut Ctx<Self>, index: usize) -> Result<Started, Failed> {
        let placement = self.placement.as_mut().map(|p| (p, &self.children[..]));
        start(ctx, &self.children[index].spec, placement).await
    }

    /// `true` if `pid` is one of the current children.
    fn is_child(&self, pid: &Pid) -> bool {
        self.children.iter().any(|c| c.pid.as_ref() == Some(pid))
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.children.iter().position(|c| c.spec.id == id)
    }

    fn publish(&self, ctx: &Ctx<Self>, event: impl FnOnce() -> LifecycleEvent) {
        if let Some(node) = ctx.node_inner() {
            if node.events.is_active() {
                node.events.publish(event());
            }
        }
    }

    /// Stops the child at `index` if it runs, by its shutdown spec, and returns how it
    /// ended. No restart follows.
    ///
    /// The link stays until the child has ended (as in OTP): should this supervisor be
    /// killed meanwhile — its own grace running out while the child's lasts — the child
    /// ends with it rather than run on, linked to nobody. The exit signal of its end is
    /// then a message for a pid no longer a child's, which `child_exited` ignores (and
    /// `handle_info` too, if the child ended losing a global name: see `conflicted`).
    async fn stop_child(&mut self, ctx: &mut Ctx<Self>, index: usize) -> Option<ExitReason> {
        let pid = self.children[index].pid.take()?;
        let node = ctx.node_inner()?;
        let reason = shutdown::stop_child(&node, &pid, self.children[index].spec.shutdown).await;
        ctx.unlink(&pid);
        self.ended_on(ctx, &pid);
        if matches!(reason, ExitReason::NameConflict(_)) {
            self.conflicted.push(pid);
        }
        Some(reason)
    }

    /// Stops every child: in reverse start order, or all at once for simple_one_for_one
    /// (each linked until it has ended, as in [`stop_child`](Self::stop_child)).
    async fn stop_all(&mut self, ctx: &mut Ctx<Self>) {
        if self.strategy == Strategy::SimpleOneForOne {
            let running: Vec<_> = self
                .children
                .iter_mut()
                .filter_map(|child| Some((child.pid.take()?, child.spec.shutdown)))
                .collect();
            let pids: Vec<Pid> = running.iter().map(|(pid, _)| pid.clone()).collect();
            if let Some(node) = ctx.node_inner() {
                shutdown::stop_children_concurrently(&node, running).await;
            }
            for pid in &pids {
                ctx.unlink(pid);
            }
            return;
        }
        for index in (0..self.children.len()).rev() {
            self.stop_child(ctx, index).await;
        }
    }
}
