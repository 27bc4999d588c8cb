//! Starting a process: name, link or monitor, task, `init`, and the guard that records its
//! end however the task finishes.

use std::future::Future;
use std::num::NonZeroU64;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use async_task::{FallibleTask, Task};
use futures_lite::future::CatchUnwind;
use futures_lite::FutureExt;

use super::ctx::Ctx;
use super::deadline::Deadline;
use super::process::Process;
use super::reference::ServerRef;
use super::run::{self, InitFailure};
use super::GenServer;
use crate::error::{GlobalError, RegisterError, SpawnError};
use crate::exit::panic_message;
use crate::node::executors::pace_starts;
use crate::node::NodeInner;
use crate::process::{AnyProcess, Core, Identity, Signal};
use crate::{ExitReason, MonitorRef, Pid};

/// How long a spawn waits for `init` unless told otherwise, as in noex.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Options for [`Node::spawn_with`](crate::Node::spawn_with) and
/// [`Ctx::spawn_link_with`](crate::Ctx::spawn_link_with).
///
/// ```
/// use std::time::Duration;
/// use noex::SpawnOptions;
///
/// let options = SpawnOptions::new().name("cache").init_timeout(Duration::from_secs(1));
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
#[must_use = "SpawnOptions do nothing until a spawn takes them (`spawn_with` and its kin)"]
pub struct SpawnOptions {
    pub(crate) name: Option<String>,
    pub(crate) global_name: Option<String>,
    pub(crate) init_timeout: Option<Duration>,
    pub(crate) spawn_timeout: Duration,
    pub(crate) supervisor: Option<Pid>,
}

/// How long a spawn on another node may take in all, unless told otherwise.
pub const DEFAULT_SPAWN_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for SpawnOptions {
    fn default() -> Self {
        SpawnOptions {
            name: None,
            global_name: None,
            init_timeout: Some(DEFAULT_INIT_TIMEOUT),
            spawn_timeout: DEFAULT_SPAWN_TIMEOUT,
            supervisor: None,
        }
    }
}

impl SpawnOptions {
    /// No name, init timeout 5 s, spawn timeout (on another node) 10 s.
    pub fn new() -> Self {
        SpawnOptions::default()
    }

    /// Registers the process under `name` before `init` runs. If the name is taken, the
    /// spawn fails with [`SpawnError::NameTaken`] and no process is left behind.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Registers the process under the global `name` (unique in the cluster, see
    /// [`Node::register_global`](crate::Node::register_global)) before `init` runs. If any
    /// process of the cluster holds the name, the spawn fails with
    /// [`SpawnError::NameTaken`] and no process is left behind.
    pub fn global_name(mut self, name: impl Into<String>) -> Self {
        self.global_name = Some(name.into());
        self
    }

    /// How long `init` may take; past it the process is killed and the spawn fails with
    /// [`SpawnError::InitTimeout`]. `None` waits however long `init` takes (supervisors
    /// are started that way, since their `init` starts their children).
    pub fn init_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.init_timeout = timeout.into();
        self
    }

    /// How long a spawn on another node ([`Node::spawn_on_with`](crate::Node::spawn_on_with))
    /// may take in all — the request, `init` there, the answer — before it fails with
    /// [`RemoteSpawnError::Timeout`](crate::RemoteSpawnError::Timeout) (a process that
    /// started too late is then ended), or with
    /// [`RemoteSpawnError::NotSent`](crate::RemoteSpawnError::NotSent) if the request had
    /// not left this node by then. 10 s by default.
    pub fn spawn_timeout(mut self, timeout: Duration) -> Self {
        self.spawn_timeout = timeout;
        self
    }

    /// Marks the process as a child of `supervisor` (for introspection).
    pub(crate) fn supervised_by(mut self, supervisor: Pid) -> Self {
        self.supervisor = Some(supervisor);
        self
    }
}

/// How the new process relates to its spawner.
pub(crate) enum Relation<'a> {
    None,
    /// Linked to the spawner (whose core this is).
    Link(&'a Core),
    /// Monitored by the spawner with this reference.
    Monitor(&'a Core, MonitorRef),
    /// Spawned for a process of another node (see `dist::spawn`).
    Remote(Box<RemoteSpawner>),
}

/// A spawner of another node: the link and monitor it holds on the new process (set before
/// `init`, as for a local spawner), and what to do once `init` has succeeded — in the new
/// process's task, before it does anything else, so that the spawner hears of the process
/// before any signal from it.
pub(crate) struct RemoteSpawner {
    pub(crate) link: Option<Pid>,
    pub(crate) monitor: Option<(MonitorRef, Pid)>,
    pub(crate) on_started: OnStarted,
    /// Given the new process's pid before its `init` runs: what its node ends it by if
    /// the spawner gives up meanwhile.
    pub(crate) spawned: Arc<std::sync::OnceLock<Pid>>,
}

/// What runs in a new process's task once its `init` has succeeded: called with its pid
/// and its key (see `run::current_sender`).
pub(crate) type OnStarted = Box<dyn FnOnce(&Pid, usize) + Send>;

/// The ties a spawner of another node holds on the new process.
pub(crate) struct RemoteTies {
    link: Option<Pid>,
    monitor: Option<(MonitorRef, Pid)>,
}

/// The ties of the new process to its spawner that a failed `init` must undo (the
/// spawner hears of the failure through the spawn's result only).
enum Spawner {
    /// A monitor held by a spawner of this node.
    Monitor(MonitorRef),
    /// A spawner of another node.
    Remote(RemoteTies),
}

/// What a process keeps of its spawn until `init` has ended, in its core's ties (see
/// `Core::set_spawning`) rather than in its task: only spawns with a monitor or for
/// another node have any, and a task's memory is kept for the process's life.
pub(crate) struct Spawning {
    /// Runs in the process's task once `init` has succeeded, before anything else.
    pub(crate) on_started: Option<OnStarted>,
    /// What a failed `init` undoes.
    undo: Spawner,
}

/// Spawns a process of behaviour `B` and waits for its `init`.
pub(crate) async fn spawn<B: GenServer>(
    node: &Arc<NodeInner>,
    args: B::Args,
    options: SpawnOptions,
    relation: Relation<'_>,
) -> Result<ServerRef<B>, SpawnError<B::InitError>> {
    if node.is_shutting_down() {
        return Err(SpawnError::ShuttingDown);
    }
    let pid = node.next_pid();
    let parent = match &relation {
        Relation::Link(spawner) => NonZeroU64::new(spawner.pid().serial()),
        _ => None,
    };
    let process = Arc::new(Process::<B>::new(Identity {
        pid: pid.clone(),
        parent,
    }));
    if let Some(supervisor) = options.supervisor.as_ref() {
        if let Some(serial) = NonZeroU64::new(supervisor.serial()) {
            process.core.set_supervisor(serial);
        }
    }
    node.table.insert(process.clone());
    if let Some(name) = &options.name {
        if let Err(error) = node.registry.register(name, &process.core) {
            node.table.remove(pid.serial());
            return Err(match error {
                RegisterError::NameTaken { name, holder } => SpawnError::NameTaken { name, holder },
                // A fresh process is alive, local, and has no name yet.
                other => unreachable!("registering a fresh process failed: {other}"),
            });
        }
    }
    if let Some(name) = &options.global_name {
        let unstarted = Unstarted {
            node,
            process: Some(process.clone()),
        };
        let registered = node.global.register(node, name, &pid).await;
        if let Err(error) = registered {
            drop(unstarted);
            return Err(match error {
                GlobalError::NameTaken { name, holder } => SpawnError::NameTaken { name, holder },
                GlobalError::Timeout { name, .. } => SpawnError::RegistrationTimeout { name },
                GlobalError::ShuttingDown => SpawnError::ShuttingDown,
                other => SpawnError::GlobalName(other),
            });
        }
        unstarted.started();
    }
    let spawner = match relation {
        Relation::None => None,
        Relation::Link(spawner) => {
            spawner.add_link(&pid);
            process.core.add_link(spawner.pid());
            Some((spawner, None))
        }
        Relation::Monitor(spawner, monitor) => {
            spawner.add_watching(monitor, &pid);
            process.core.add_monitored_by(monitor, spawner.pid());
            process.core.set_spawning(Box::new(Spawning {
                on_started: None,
                undo: Spawner::Monitor(monitor),
            }));
            Some((spawner, Some(monitor)))
        }
        Relation::Remote(remote) => {
            let RemoteSpawner {
                link,
                monitor,
                on_started: then,
                spawned,
            } = *remote;
            let _ = spawned.set(pid.clone());
            if let Some(spawner) = &link {
                process.core.add_link(spawner);
                process.core.set_remote_parent(spawner);
            }
            if let Some((monitor, watcher)) = &monitor {
                process.core.add_monitored_by(*monitor, watcher);
            }
            process.core.set_spawning(Box::new(Spawning {
                on_started: Some(then),
                undo: Spawner::Remote(RemoteTies { link, monitor }),
            }));
            None
        }
    };

    let ctx = Ctx::new(process.clone(), Arc::downgrade(node));
    let weak = Arc::downgrade(node);
    let make = move || process_task(weak, ctx, args);
    #[cfg(feature = "tracing-context")]
    let make = {
        let span = crate::trace::process_span(&pid, &node.name);
        move || tracing::Instrument::instrument(make(), span)
    };
    // Its first poll runs `init` at once, here, when spawned from one of the node's threads:
    // `init` has then usually succeeded by now, and there is nothing to wait for.
    let task = node.executors.spawn_started(make);
    let outcome = if process.core.is_initialized() {
        task.detach();
        Ok(())
    } else {
        match init_outcome(&process, task, options.init_timeout).await {
            // Killed by the node's shutdown as `init` ran: that is what the spawner hears.
            Err(SpawnError::Exited(ExitReason::Killed)) if node.is_shutting_down() => {
                Err(SpawnError::ShuttingDown)
            }
            outcome => outcome,
        }
    };
    if let (Err(_), Some((spawner, monitor))) = (&outcome, spawner) {
        // The spawner hears of the failure through the result, not through a signal.
        spawner.remove_link(&pid);
        if let Some(monitor) = monitor {
            spawner.remove_watching(monitor);
        }
    }
    // A spawner in a loop yields now and then, as if some spawns had made it wait.
    pace_starts().await;
    outcome.map(|()| ServerRef::from_process(process))
}

/// Waits until the process's `init` has succeeded, or its task has ended (the failure is
/// its output), or `timeout` has passed (the process is then killed).
async fn init_outcome<B: GenServer>(
    process: &Process<B>,
    task: Task<Option<InitFailure<B>>>,
    timeout: Option<Duration>,
) -> Result<(), SpawnError<B::InitError>> {
    // Detached however this ends: the process runs on if the spawner gives up.
    let mut task = Detaching(Some(task.fallible()));
    let ended = async {
        let initialized = async {
            process.core.initialized().await;
            Init::<B>::Succeeded
        };
        let task_ended = async {
            match task.ended().await {
                Some(None) => Init::Succeeded,
                Some(Some(failure)) => Init::Failed(failure),
                None => Init::Dropped,
            }
        };
        initialized.or(task_ended).await
    };
    // A thread's deadline table rather than a reactor timer: init is usually over before
    // the timer would even be registered.
    let outcome = match timeout {
        Some(timeout) => Deadline::after(timeout).run(ended).await,
        None => Some(ended.await),
    };
    match outcome {
        Some(Init::Succeeded) => Ok(()),
        Some(Init::Failed(failure)) => Err(*failure),
        Some(Init::Dropped) => Err(match process.core.exited().await {
            ExitReason::Panic(message) => SpawnError::InitPanicked(message),
            reason => SpawnError::Exited(reason),
        }),
        None => {
            process.core.signal(Signal::Die(ExitReason::Killed));
            process.core.exited().await;
            Err(SpawnError::InitTimeout)
        }
    }
}

/// How a process's `init` went, as its spawner learns it.
enum Init<B: GenServer> {
    /// It succeeded (the process may have ended since).
    Succeeded,
    Failed(InitFailure<B>),
    /// The process's task was dropped unfinished: its node is gone.
    Dropped,
}

/// A process's task while its spawner waits for `init`: detached when dropped, rather
/// than cancelled.
struct Detaching<T>(Option<FallibleTask<T>>);

impl<T> Detaching<T> {
    /// The task's output once it has ended; `None` if it was dropped unfinished.
    async fn ended(&mut self) -> Option<T> {
        match self.0.as_mut() {
            Some(task) => task.await,
            None => None,
        }
    }
}

impl<T> Drop for Detaching<T> {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.detach();
        }
    }
}

/// A process not started yet, whose spawn may still fail or be dropped: ended with reason
/// `NoProc` (it never ran) unless [`started`](Self::started). Its local name made it
/// visible meanwhile, so whoever linked to or monitored it is told.
struct Unstarted<'a, B: GenServer> {
    node: &'a NodeInner,
    process: Option<Arc<Process<B>>>,
}

impl<B: GenServer> Unstarted<'_, B> {
    fn started(mut self) {
        self.process = None;
    }
}

impl<B: GenServer> Drop for Unstarted<'_, B> {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            self.node.finalize(process.as_ref(), ExitReason::NoProc);
        }
    }
}

pin_project_lite::pin_project! {
    /// The task of one process: runs it, catches panics, and records its end.
    ///
    /// Written as a plain struct rather than an `async fn` so that the arguments of the
    /// process loop are stored once, in the loop's own future: idle processes are many.
    struct ProcessTask<B: GenServer, F> {
        #[pin]
        body: CatchUnwind<AssertUnwindSafe<F>>,
        guard: ExitGuard<B>,
    }
}

fn process_task<B: GenServer>(
    node: Weak<NodeInner>,
    ctx: Ctx<B>,
    args: B::Args,
) -> ProcessTask<B, impl Future<Output = Result<ExitReason, (ExitReason, InitFailure<B>)>>> {
    let process = ctx.process().clone();
    ProcessTask {
        body: AssertUnwindSafe(run::run(ctx, args)).catch_unwind(),
        guard: ExitGuard {
            node,
            process: Some(process),
        },
    }
}

impl<B, F> Future for ProcessTask<B, F>
where
    B: GenServer,
    F: Future<Output = Result<ExitReason, (ExitReason, InitFailure<B>)>>,
{
    /// What a failed `init` tells the spawner (see [`init_outcome`]).
    type Output = Option<InitFailure<B>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (reason, failure) = match std::task::ready!(this.body.poll(cx)) {
            Ok(Ok(reason)) => (reason, None),
            Ok(Err((reason, failure))) => (reason, Some(failure)),
            Err(payload) => {
                let message = panic_message(&*payload);
                let initialized = this
                    .guard
                    .process
                    .as_ref()
                    .is_none_or(|process| process.core.is_initialized());
                let failure =
                    (!initialized).then(|| Box::new(SpawnError::InitPanicked(message.clone())));
                (ExitReason::Panic(message), failure)
            }
        };
        if let Some(process) = &this.guard.process {
            let core = &process.core;
            if !core.is_initialized() {
                // A failed init is reported to the spawner as the spawn's result; its link
                // and monitor must not deliver a second report. (A local spawner's link is
                // the process's parent link.)
                if let Some(parent) = core.id.parent() {
                    core.remove_link(&parent);
                }
                match core.take_spawning().map(|spawning| spawning.undo) {
                    None => {}
                    Some(Spawner::Monitor(monitor)) => core.remove_spawner_monitor(monitor),
                    Some(Spawner::Remote(ties)) => {
                        if let Some(spawner) = &ties.link {
                            core.remove_link(spawner);
                        }
                        if let Some((monitor, watcher)) = &ties.monitor {
                            core.remove_monitored_by(*monitor, watcher);
                        }
                    }
                }
            }
        }
        this.guard.finish(reason);
        Poll::Ready(failure)
    }
}

/// Records the end of a process exactly once: when its task returns, or — if the task is
/// dropped unfinished (the node was dropped) — with reason `Killed`.
///
/// Typed, so that it holds a thin pointer: it is part of every process's task.
struct ExitGuard<B: GenServer> {
    node: Weak<NodeInner>,
    process: Option<Arc<Process<B>>>,
}

impl<B: GenServer> ExitGuard<B> {
    fn finish(&mut self, reason: ExitReason) {
        let Some(process) = self.process.take() else {
            return;
        };
        match self.node.upgrade() {
            Some(node) => node.finalize(process.as_ref(), reason),
            None => {
                // The node is gone: no table or names to update, but waiters must wake.
                if process.core().mark_exited(reason).is_some() {
                    process.close_mailbox();
                    process.core().notify_exited();
                }
            }
        }
    }
}

impl<B: GenServer> Drop for ExitGuard<B> {
    fn drop(&mut self) {
        self.finish(ExitReason::Killed);
    }
}
