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
//! * **Intensity.** Every restart — including each failed attempt, which is retried — is
//!   counted. More than `max_restarts` within `within` (default 3 in 5 s) and the supervisor
//!   gives up: it logs and publishes [`LifecycleEvent::MaxRestartsExceeded`], stops its
//!   children in reverse order and exits with [`ExitReason::Shutdown`], leaving the decision
//!   to its own supervisor.
//! * **Stop.** Children stop in reverse start order, each fully ended before the next is
//!   asked, each by its [`Shutdown`]: `BrutalKill` kills at once; `Timeout(d)` (5 s by
//!   default for workers) asks it to stop, which runs its `terminate`, and kills it after
//!   `d`; `Infinity` (the default for supervisors) waits. A simple_one_for_one supervisor
//!   stops its children concurrently.
//! * **Auto shutdown.** With [`AutoShutdown::AnySignificant`] (or `AllSignificant`), a
//!   significant child that ends by itself and is not restarted makes the supervisor shut
//!   down with `Shutdown`. A child stopped by the supervisor does not count.
//! * **Names.** A child spec with a [`name`](ChildSpec::name) registers every incarnation
//!   of the child under that name, so callers using [`Node::named`](crate::Node::named) reach
//!   the current one.
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

mod client;
mod shutdown;
mod spec;

use std::any::TypeId;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::events::LifecycleEvent;
use crate::server::{Ctx, GenServer, Info, ReplyTo, SpawnOptions};
use crate::{ExitReason, Pid};

pub use client::{ChildCounts, ChildInfo, ChildKey, SupervisorError};
#[doc(hidden)]
pub use client::{Request, Response};
pub use spec::{
    AutoShutdown, ChildKind, ChildSpec, ChildTemplate, Restart, Shutdown, Strategy, SupervisorSpec,
    DEFAULT_MAX_RESTARTS, DEFAULT_RESTART_WINDOW, DEFAULT_WORKER_SHUTDOWN,
};

use spec::Started;

/// Why a supervisor could not start.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
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

/// A message a supervisor sends itself (the `Cast` type of [`Supervisor`]). Only the
/// supervisor can make one.
#[doc(hidden)]
pub struct Internal(InternalKind);

enum InternalKind {
    /// Try again to restart a child whose restart failed.
    TryAgain(String),
}

/// The supervisor behaviour. See the [module docs](self) for its contract.
pub struct Supervisor {
    strategy: Strategy,
    intensity: Intensity,
    auto_shutdown: AutoShutdown,
    template: Option<ChildTemplate>,
    children: Vec<Child>,
    simple_serial: u64,
}

struct Child {
    spec: ChildSpec,
    pid: Option<Pid>,
}

/// Restart intensity: at most `max` restarts within `within`.
struct Intensity {
    max: u32,
    within: Duration,
    restarts: VecDeque<Instant>,
}

impl Intensity {
    /// Counts a restart now; `false` if that exceeds the limit.
    fn allow(&mut self, now: Instant) -> bool {
        self.restarts.push_back(now);
        while let Some(&first) = self.restarts.front() {
            if now.duration_since(first) > self.within {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        self.restarts.len() as u32 <= self.max
    }
}

/// Whether a child that ended with `reason` is restarted.
fn restarts(restart: Restart, reason: &ExitReason) -> bool {
    match restart {
        Restart::Permanent => true,
        Restart::Transient => !reason.is_clean(),
        Restart::Temporary => false,
    }
}

fn validate(spec: &SupervisorSpec) -> Result<(), String> {
    let mut ids = std::collections::HashSet::new();
    for child in &spec.children {
        if !ids.insert(child.id.as_str()) {
            return Err(format!("two children have the id {:?}", child.id));
        }
        validate_child(child, spec.auto_shutdown)?;
    }
    match (spec.strategy, &spec.template) {
        (Strategy::SimpleOneForOne, None) => {
            Err("a simple_one_for_one supervisor needs a child template".into())
        }
        (Strategy::SimpleOneForOne, Some(_)) if !spec.children.is_empty() => {
            Err("a simple_one_for_one supervisor takes no static children".into())
        }
        (Strategy::SimpleOneForOne, Some(_)) | (_, None) => Ok(()),
        (_, Some(_)) => Err("only a simple_one_for_one supervisor takes a child template".into()),
    }
}

fn validate_child(child: &ChildSpec, auto_shutdown: AutoShutdown) -> Result<(), String> {
    if child.significant && auto_shutdown == AutoShutdown::Never {
        return Err(format!(
            "child {:?} is significant but auto_shutdown is Never",
            child.id
        ));
    }
    if child.significant && child.restart == Restart::Permanent {
        return Err(format!(
            "child {:?} is significant, so it must be transient or temporary",
            child.id
        ));
    }
    Ok(())
}

/// Starts one child, linked to the supervisor and registered under the spec's name.
async fn start(ctx: &mut Ctx<Supervisor>, spec: &ChildSpec) -> Result<Started, String> {
    let mut options = SpawnOptions::new()
        .supervised_by(ctx.pid().clone())
        .init_timeout(spec.init_timeout);
    if let Some(name) = &spec.name {
        options = options.name(name.clone());
    }
    if let Some(name) = &spec.global_name {
        options = options.global_name(name.clone());
    }
    (spec.start)(ctx, options).await
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
        };
        for child in spec.children {
            match start(ctx, &child).await {
                Ok(started) => supervisor.children.push(Child {
                    spec: child,
                    pid: Some(started.pid),
                }),
                Err(error) => {
                    supervisor.stop_all(ctx).await;
                    return Err(SupervisorInitError::ChildStart {
                        id: child.id,
                        error,
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
        };
        reply.send(response);
    }

    async fn handle_cast(&mut self, message: Internal, ctx: &mut Ctx<Self>) {
        match message.0 {
            InternalKind::TryAgain(id) => {
                // Unless it was restarted (or removed) by request meanwhile.
                if self
                    .position(&id)
                    .is_some_and(|i| self.children[i].pid.is_none())
                {
                    self.restart(ctx, &id).await;
                }
            }
        }
    }

    async fn handle_info(&mut self, info: Info<()>, ctx: &mut Ctx<Self>) {
        if let Info::Exit { from, reason } = info {
            self.child_exited(ctx, from, reason).await;
        }
    }

    async fn terminate(&mut self, _reason: &ExitReason, ctx: &mut Ctx<Self>) {
        self.stop_all(ctx).await;
    }
}

impl Supervisor {
    fn position(&self, id: &str) -> Option<usize> {
        self.children.iter().position(|c| c.spec.id == id)
    }

    /// A child ended by itself: restart it (and its group) or let it go.
    async fn child_exited(&mut self, ctx: &mut Ctx<Self>, pid: Pid, reason: ExitReason) {
        let Some(index) = self
            .children
            .iter()
            .position(|c| c.pid.as_ref() == Some(&pid))
        else {
            return; // Not a current child (already stopped by us, or replaced).
        };
        self.children[index].pid = None;
        let spec = &self.children[index].spec;
        let id = spec.id.clone();
        if restarts(spec.restart, &reason) {
            tracing::error!(supervisor = %ctx.pid(), child = %id, %pid, %reason, "child terminated; restarting");
            self.restart(ctx, &id).await;
            return;
        }
        let significant = spec.significant;
        if spec.restart == Restart::Temporary || self.strategy == Strategy::SimpleOneForOne {
            self.children.remove(index);
        }
        let shut_down = significant
            && match self.auto_shutdown {
                AutoShutdown::Never => false,
                AutoShutdown::AnySignificant => true,
                AutoShutdown::AllSignificant => !self
                    .children
                    .iter()
                    .any(|c| c.spec.significant && c.pid.is_some()),
            };
        if shut_down {
            tracing::info!(supervisor = %ctx.pid(), child = %id, "significant child ended; shutting down");
            ctx.stop(ExitReason::Shutdown);
        }
    }

    /// Restarts the group of `id` (by strategy), counting one restart toward intensity.
    async fn restart(&mut self, ctx: &mut Ctx<Self>, id: &str) {
        if !self.intensity.allow(Instant::now()) {
            tracing::error!(
                supervisor = %ctx.pid(),
                max_restarts = self.intensity.max,
                within = ?self.intensity.within,
                "MaxRestartsExceeded: too many restarts; shutting down"
            );
            if let Some(node) = ctx.node_inner() {
                node.events.publish(LifecycleEvent::MaxRestartsExceeded {
                    supervisor: ctx.pid().clone(),
                    max_restarts: self.intensity.max,
                    within: self.intensity.within,
                });
            }
            ctx.stop(ExitReason::Shutdown);
            return;
        }
        let Some(index) = self.position(id) else {
            return;
        };
        let group: Vec<String> = match self.strategy {
            Strategy::OneForOne | Strategy::SimpleOneForOne => vec![id.to_owned()],
            Strategy::OneForAll => self.children.iter().map(|c| c.spec.id.clone()).collect(),
            Strategy::RestForOne => self.children[index..]
                .iter()
                .map(|c| c.spec.id.clone())
                .collect(),
        };
        for member in group.iter().rev() {
            if let Some(i) = self.position(member) {
                self.stop_child(ctx, i).await;
            }
        }
        // Temporary siblings stopped for the group are gone for good.
        self.children
            .retain(|c| c.spec.restart != Restart::Temporary || !group.contains(&c.spec.id));
        for member in &group {
            let Some(i) = self.position(member) else {
                continue;
            };
            match start(ctx, &self.children[i].spec).await {
                Ok(started) => {
                    tracing::info!(supervisor = %ctx.pid(), child = %member, pid = %started.pid, "child restarted");
                    self.publish(ctx, || LifecycleEvent::ChildRestarted {
                        supervisor: ctx.pid().clone(),
                        child: member.clone(),
                        pid: started.pid.clone(),
                    });
                    self.children[i].pid = Some(started.pid);
                }
                Err(error) => {
                    tracing::error!(supervisor = %ctx.pid(), child = %member, %error, "child restart failed; trying again");
                    self.publish(ctx, || LifecycleEvent::ChildStartFailed {
                        supervisor: ctx.pid().clone(),
                        child: member.clone(),
                        error: error.clone(),
                    });
                    // Our own mailbox is open while we run.
                    let _ = ctx
                        .server_ref()
                        .cast(Internal(InternalKind::TryAgain(member.clone())));
                    return;
                }
            }
        }
    }

    fn publish(&self, ctx: &Ctx<Self>, event: impl FnOnce() -> LifecycleEvent) {
        if let Some(node) = ctx.node_inner() {
            if node.events.is_active() {
                node.events.publish(event());
            }
        }
    }

    /// Stops the child at `index` if it runs, by its shutdown spec. No restart follows.
    async fn stop_child(&mut self, ctx: &mut Ctx<Self>, index: usize) {
        let Some(pid) = self.children[index].pid.take() else {
            return;
        };
        ctx.unlink(&pid);
        if let Some(node) = ctx.node_inner() {
            shutdown::stop_child(&node, &pid, self.children[index].spec.shutdown).await;
        }
    }

    /// Stops every child: in reverse start order, or all at once for simple_one_for_one.
    async fn stop_all(&mut self, ctx: &mut Ctx<Self>) {
        if self.strategy == Strategy::SimpleOneForOne {
            let mut running = Vec::new();
            for child in &mut self.children {
                if let Some(pid) = child.pid.take() {
                    ctx.unlink(&pid);
                    running.push((pid, child.spec.shutdown));
                }
            }
            if let Some(node) = ctx.node_inner() {
                shutdown::stop_children_concurrently(&node, running).await;
            }
            return;
        }
        for index in (0..self.children.len()).rev() {
            self.stop_child(ctx, index).await;
        }
    }

    async fn start_child(
        &mut self,
        ctx: &mut Ctx<Self>,
        spec: ChildSpec,
    ) -> Result<(Pid, Box<dyn std::any::Any + Send>), SupervisorError> {
        if self.strategy == Strategy::SimpleOneForOne {
            return Err(SupervisorError::SimpleOneForOne);
        }
        if let Some(existing) = self.position(&spec.id).map(|i| &self.children[i]) {
            return Err(match &existing.pid {
                Some(pid) => SupervisorError::AlreadyStarted {
                    id: spec.id,
                    pid: pid.clone(),
                },
                None => SupervisorError::AlreadyPresent(spec.id),
            });
        }
        validate_child(&spec, self.auto_shutdown).map_err(|error| {
            SupervisorError::StartFailed {
                id: spec.id.clone(),
                error,
            }
        })?;
        self.add_started(ctx, spec).await
    }

    async fn start_simple(
        &mut self,
        ctx: &mut Ctx<Self>,
        args: Box<dyn std::any::Any + Send>,
        behavior: TypeId,
        behavior_name: &'static str,
    ) -> Result<(Pid, Box<dyn std::any::Any + Send>), SupervisorError> {
        let template = self.template.as_ref().ok_or(SupervisorError::NotSimple)?;
        if template.behavior != behavior {
            return Err(SupervisorError::WrongBehavior {
                expected: template.behavior_name,
                found: behavior_name,
            });
        }
        self.simple_serial += 1;
        let id = format!("{}-{}", template.id, self.simple_serial);
        let spec = (template.instantiate)(id, args)
            .expect("arguments of the template's own behaviour")
            .restart(template.restart)
            .shutdown(template.shutdown);
        self.add_started(ctx, spec).await
    }

    /// Starts a child from a new spec and appends it.
    async fn add_started(
        &mut self,
        ctx: &mut Ctx<Self>,
        spec: ChildSpec,
    ) -> Result<(Pid, Box<dyn std::any::Any + Send>), SupervisorError> {
        match start(ctx, &spec).await {
            Ok(started) => {
                self.children.push(Child {
                    spec,
                    pid: Some(started.pid.clone()),
                });
                Ok((started.pid, started.server))
            }
            Err(error) => Err(SupervisorError::StartFailed { id: spec.id, error }),
        }
    }

    async fn terminate_child(
        &mut self,
        ctx: &mut Ctx<Self>,
        key: ChildKey,
    ) -> Result<(), SupervisorError> {
        let index = match &key {
            ChildKey::Id(id) => self.position(id),
            ChildKey::Pid(pid) => self
                .children
                .iter()
                .position(|c| c.pid.as_ref() == Some(pid)),
        }
        .ok_or(SupervisorError::NotFound(key))?;
        self.stop_child(ctx, index).await;
        if self.strategy == Strategy::SimpleOneForOne
            || self.children[index].spec.restart == Restart::Temporary
        {
            self.children.remove(index);
        }
        Ok(())
    }

    async fn restart_child(
        &mut self,
        ctx: &mut Ctx<Self>,
        id: String,
    ) -> Result<(Pid, Box<dyn std::any::Any + Send>), SupervisorError> {
        if self.strategy == Strategy::SimpleOneForOne {
            return Err(SupervisorError::SimpleOneForOne);
        }
        let index = self
            .position(&id)
            .ok_or_else(|| SupervisorError::NotFound(ChildKey::Id(id.clone())))?;
        if self.children[index].pid.is_some() {
            return Err(SupervisorError::Running(id));
        }
        match start(ctx, &self.children[index].spec).await {
            Ok(started) => {
                self.children[index].pid = Some(started.pid.clone());
                Ok((started.pid, started.server))
            }
            Err(error) => Err(SupervisorError::StartFailed { id, error }),
        }
    }

    fn delete_child(&mut self, id: String) -> Result<(), SupervisorError> {
        if self.strategy == Strategy::SimpleOneForOne {
            return Err(SupervisorError::SimpleOneForOne);
        }
        let index = self
            .position(&id)
            .ok_or_else(|| SupervisorError::NotFound(ChildKey::Id(id.clone())))?;
        if self.children[index].pid.is_some() {
            return Err(SupervisorError::Running(id));
        }
        self.children.remove(index);
        Ok(())
    }

    fn which_children(&self) -> Vec<ChildInfo> {
        self.children
            .iter()
            .map(|c| ChildInfo {
                id: c.spec.id.clone(),
                pid: c.pid.clone(),
                kind: c.spec.kind,
                restart: c.spec.restart,
            })
            .collect()
    }

    fn count_children(&self) -> ChildCounts {
        let supervisors = self
            .children
            .iter()
            .filter(|c| c.spec.kind == ChildKind::Supervisor)
            .count();
        ChildCounts {
            specs: self.children.len(),
            active: self.children.iter().filter(|c| c.pid.is_some()).count(),
            supervisors,
            workers: self.children.len() - supervisors,
        }
    }
}
