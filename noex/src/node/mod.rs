//! `Node`: one runtime instance, owning its processes, names, timers and threads.
//!
//! Nothing in noex is global: every process lives in exactly one `Node`, and several nodes
//! can run side by side in one OS process (that is how multi-node tests run). A node is a
//! cheap handle; clones share the same runtime.
//!
//! A node runs its processes on its own scheduler threads (by default one per CPU). A
//! process spawned from inside another process starts on the same thread, so processes
//! that talk to each other avoid cross-thread wake-ups; work started from outside the node
//! is spread round-robin.

mod behaviors;
mod builder;
mod cluster;
pub(crate) mod executors;
mod global;
mod info;
mod remote_spawn;
mod shutdown;
mod signals;
mod spin;

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use smol::Task;

use crate::dist::Cluster;
use crate::error::{LookupError, RegisterError, SendError, SpawnError};
use crate::events::{EventBus, Events};
use crate::global::Global;
use crate::process::table::ProcessTable;
use crate::process::AnyProcess;
use crate::registry::Registry;
use crate::server::process::Process;
use crate::server::spawn::{self, Relation};
use crate::server::{GenServer, NamedRef, ServerRef, SpawnOptions};
use crate::timer::{self, TimerRef};
use crate::{ExitReason, MonitorRef, Pid};

pub use builder::{BuildError, NodeBuilder};
pub use cluster::{ClusterEvents, Faults};
use executors::Executors;
pub use global::{GlobalEvents, GroupEvents};
pub(crate) use signals::stop_process;

/// The grace period of [`Node::stop`]: how long `terminate` may take before a kill.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(5);

/// How long a node's threads busy-wait for work before they sleep, unless configured
/// otherwise ([`NodeBuilder::busy_wait`], [`ClusterConfig::busy_wait`](crate::ClusterConfig::busy_wait)).
///
/// Chosen from measurements on a 2-vCPU VM (two nodes on 127.0.0.1, one thread each):
/// with busy-waiting off, a call from `block_on` to the node took about 60 µs at the
/// median and a remote call's p99 was about 45 µs; at 20 µs the remote p99 was still
/// 26 µs; at 50 µs they were 1.7 µs and 14 µs, and 100 µs bought nothing more. A round trip
/// between nodes leaves each side idle for about 10 µs, which 50 µs covers with room.
pub const DEFAULT_BUSY_WAIT: Duration = Duration::from_micros(50);

/// A noex runtime instance: it owns its processes, names, timers and threads.
///
/// Nothing in noex is global: every process lives in exactly one `Node`, and several nodes
/// can run side by side in one OS process. A `Node` is a cheap handle; clones share the
/// same runtime, and dropping the last one shuts it down. A handle kept by the node's own
/// processes or tasks (a `Node` from [`Ctx::node`](crate::Ctx::node) stored in a
/// process's state, a [`NamedRef`], a task holding a clone) counts too:
/// such a node runs until [`shutdown`](Self::shutdown) is called.
///
/// A node runs its processes on its own scheduler threads (by default one per CPU). A
/// process spawned from inside another process starts on the same thread, so processes
/// that talk to each other avoid cross-thread wake-ups; work started from outside the node
/// is spread round-robin.
///
/// ```
/// use noex::Node;
///
/// let node = Node::builder().name("worker").threads(2).build();
/// assert_eq!(node.name(), "worker");
/// assert_eq!(node.process_count(), 0);
/// node.shutdown();
/// ```
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<NodeInner>,
}

/// The state a node owns. Processes hold it weakly, so dropping the last [`Node`] handle
/// shuts the node down.
pub(crate) struct NodeInner {
    pub(crate) name: Arc<str>,
    pub(crate) incarnation: u64,
    serials: AtomicU64,
    monitor_refs: AtomicU64,
    pub(crate) table: ProcessTable,
    pub(crate) registry: Registry,
    /// This node's replica of the global registry and groups, and its part in them.
    pub(crate) global: Global,
    pub(crate) executors: Executors,
    pub(crate) events: EventBus,
    pub(crate) behaviors: behaviors::Behaviors,
    /// The cluster state, for a node started with [`Node::start`].
    pub(crate) cluster: OnceLock<Arc<Cluster>>,
    shutting_down: AtomicBool,
    /// When the node started.
    pub(crate) started: std::time::Instant,
    /// The serial of the node's agent (see `observe`), a system process that answers
    /// observers of other nodes; clustered nodes only.
    pub(crate) agent: OnceLock<u64>,
    /// The message counts of the last `SortBy::MessageRate` queries (see `observe`).
    pub(crate) rate_bases: Mutex<crate::observe::snapshot::RateBases>,
    /// Messages handled by the node's processes that have ended (added as each leaves the
    /// table), for the node's count of messages handled (overview and metrics).
    pub(crate) ended_messages: AtomicU64,
}

impl NodeInner {
    /// A node's state, its threads started; fails if they cannot be.
    fn new(name: &str, threads: usize, busy_wait: Duration) -> std::io::Result<NodeInner> {
        let thread_name = name.split('@').next().unwrap_or(name);
        Ok(NodeInner {
            executors: Executors::start(thread_name, threads, busy_wait)?,
            name: Arc::from(name),
            incarnation: new_incarnation(),
            serials: AtomicU64::new(1),
            monitor_refs: AtomicU64::new(1),
            table: ProcessTable::default(),
            registry: Registry::default(),
            global: Global::default(),
            events: EventBus::default(),
            behaviors: behaviors::Behaviors::default(),
            cluster: OnceLock::new(),
            shutting_down: AtomicBool::new(false),
            started: std::time::Instant::now(),
            agent: OnceLock::new(),
            rate_bases: Mutex::default(),
            ended_messages: AtomicU64::new(0),
        })
    }
}

/// Random bits at the bottom of an incarnation.
const INCARNATION_RANDOM_BITS: u32 = 22;

/// A new incarnation number: the wall-clock time of the start, in milliseconds since the
/// Unix epoch, above [`INCARNATION_RANDOM_BITS`] random bits. A later run of a node has
/// a greater one (unless the clock went back by more than the time between the runs), so
/// a node can tell a pid of an earlier run it never saw from one of a later run it has
/// not reached yet (see `dist::incarnations`); two runs started within one millisecond
/// differ by their random bits.
fn new_incarnation() -> u64 {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    let random = random_u64() & ((1 << INCARNATION_RANDOM_BITS) - 1);
    (millis << INCARNATION_RANDOM_BITS) | random
}

fn random_u64() -> u64 {
    // RandomState is seeded from the OS per instance: enough for an incarnation number.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(std::process::id() as u64);
    hasher.finish()
}

impl NodeInner {
    pub(crate) fn next_pid(&self) -> Pid {
        let serial = self.serials.fetch_add(1, Ordering::Relaxed);
        Pid::new(self.name.clone(), self.incarnation, serial)
    }

    pub(crate) fn next_monitor_ref(&self) -> MonitorRef {
        MonitorRef(self.monitor_refs.fetch_add(1, Ordering::Relaxed))
    }

    /// The live process behind `pid`, if `pid` belongs to this node's current incarnation.
    pub(crate) fn resolve(&self, pid: &Pid) -> Option<Arc<dyn AnyProcess>> {
        if pid.incarnation() != self.incarnation || pid.node() != &*self.name {
            return None;
        }
        self.table.get(pid.serial())
    }

    /// The live process behind `pid` as a process of behaviour `B`.
    pub(crate) fn resolve_as<B: GenServer>(&self, pid: &Pid) -> Result<Arc<Process<B>>, String> {
        let process = self.resolve(pid).ok_or_else(String::new)?;
        let behavior = process.behavior();
        process
            .into_any()
            .downcast::<Process<B>>()
            .map_err(|_| behavior.to_owned())
    }

    /// The serial of the node's agent, if it has one.
    pub(crate) fn agent_serial(&self) -> Option<u64> {
        self.agent.get().copied()
    }

    /// The number of running processes, system processes aside.
    pub(crate) fn process_count(&self) -> usize {
        let system = self
            .agent_serial()
            .is_some_and(|serial| self.table.get(serial).is_some());
        self.table.len().saturating_sub(usize::from(system))
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}

impl Drop for NodeInner {
    fn drop(&mut self) {
        self.executors.stop();
    }
}

impl Default for Node {
    fn default() -> Self {
        Node::new()
    }
}

impl Node {
    /// Starts a local node named `nonode` with one scheduler thread per CPU.
    ///
    /// # Panics
    ///
    /// If its threads cannot be started; [`NodeBuilder::try_build`] returns the error.
    pub fn new() -> Node {
        NodeBuilder::default().build()
    }

    /// Configures a node; see [`NodeBuilder`].
    pub fn builder() -> NodeBuilder {
        NodeBuilder::default()
    }

    pub(crate) fn from_inner(inner: Arc<NodeInner>) -> Node {
        Node { inner }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The node's incarnation, drawn at start: its start time (milliseconds since the Unix
    /// epoch) in the high bits, random low bits, so that a later run of a node has a
    /// greater one. Pids of other incarnations never reach this node's processes.
    pub fn incarnation(&self) -> u64 {
        self.inner.incarnation
    }

    /// The number of scheduler threads.
    pub fn threads(&self) -> usize {
        self.inner.executors.threads()
    }

    /// Spawns a process running `B` and waits for its `init` (default timeout 5 s).
    ///
    /// From inside a process, the new process starts on the caller's thread.
    // Not an `async fn`, here and in `spawn_with`: each would wrap the spawn's future in
    // one more, copying its arguments in and its result out (~70 instructions a spawn).
    pub fn spawn<B: GenServer>(
        &self,
        args: B::Args,
    ) -> impl Future<Output = Result<ServerRef<B>, SpawnError<B::InitError>>> + '_ {
        spawn::spawn(&self.inner, args, SpawnOptions::new(), Relation::None)
    }

    /// Spawns a process with options: a registered name, an init timeout.
    ///
    /// A name that is taken fails the spawn with [`SpawnError::NameTaken`] before any
    /// process starts.
    pub fn spawn_with<B: GenServer>(
        &self,
        args: B::Args,
        options: SpawnOptions,
    ) -> impl Future<Output = Result<ServerRef<B>, SpawnError<B::InitError>>> + '_ {
        spawn::spawn(&self.inner, args, options, Relation::None)
    }

    /// Spawns with the parameters of a spawn by name (see `BehaviorEntry::spawn`).
    pub(crate) async fn spawn_with_params<B: GenServer>(
        &self,
        args: B::Args,
        params: crate::behavior::SpawnParams,
    ) -> Result<ServerRef<B>, SpawnError<B::InitError>> {
        let relation = match (params.remote, &params.linked) {
            (Some(remote), _) => Relation::Remote(remote),
            (None, Some(spawner)) => Relation::Link(spawner.core()),
            (None, None) => Relation::None,
        };
        spawn::spawn(&self.inner, args, params.options, relation).await
    }

    /// Runs a future to completion on the current thread, driving timers and I/O: the
    /// entry point of `main` functions and tests.
    ///
    /// # Panics
    ///
    /// On a node's scheduler thread (in a process or a task of any node): blocking it would
    /// hang it and its processes, as what the future waits for needs that thread.
    #[track_caller]
    pub fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        assert!(
            executors::current_scheduler() == 0,
            "Node::block_on called on a node's scheduler thread (from a process or a task): \
             it would block the thread and every process on it; await the future instead"
        );
        smol::block_on(spin::SpinFirst::new(
            future,
            self.inner.executors.busy_wait(),
        ))
    }

    /// Runs a plain task (not a process) on the node's scheduler threads.
    ///
    /// Processes spawned from the task start on its thread, which makes it the fastest
    /// place for a driver loop that talks to them.
    ///
    /// A task still pending when the node shuts down is dropped with the node's threads;
    /// awaiting its `Task` then panics, as awaiting any cancelled smol task does. Await
    /// [`task.fallible()`](Task::fallible) instead where the node may shut down first: it
    /// gives `None` for a task that never finished.
    pub fn spawn_task<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Task<T> {
        self.inner.executors.spawn(future)
    }

    /// Stops a process gracefully with `reason`: it finishes its current message, runs
    /// `terminate`, and is killed if that takes longer than 5 s. Resolves with the reason it
    /// actually ended with. Asked from the process's own handler, it fails with
    /// [`SendError::StoppingSelf`] (the end cannot come while the handler waits for it).
    pub async fn stop(&self, pid: &Pid, reason: ExitReason) -> Result<ExitReason, SendError> {
        self.inner.stop(pid, reason, Some(DEFAULT_STOP_GRACE)).await
    }

    /// Like [`stop`](Self::stop) with a grace period of your choice; `None` waits for
    /// `terminate` however long it takes.
    pub async fn stop_with_grace(
        &self,
        pid: &Pid,
        reason: ExitReason,
        grace: Option<Duration>,
    ) -> Result<ExitReason, SendError> {
        self.inner.stop(pid, reason, grace).await
    }

    /// Kills a process: it ends at once with [`ExitReason::Killed`], even if it traps exits;
    /// `terminate` does not run. Returns `false` if it was not running — for a process of
    /// another node, if that node is not connected (the kill is sent to it otherwise).
    pub fn kill(&self, pid: &Pid) -> bool {
        self.inner.kill(pid)
    }

    /// `true` while the process runs. For a process of another node: while that node is
    /// connected (with the incarnation the pid belongs to) — a node learns of a remote
    /// process's end through a monitor, or [`exited`](Self::exited).
    pub fn is_alive(&self, pid: &Pid) -> bool {
        self.inner.is_alive(pid)
    }

    /// Waits until the process has ended and returns why. For a process that is not running
    /// (or never existed), resolves at once with [`ExitReason::NoProc`]; for a process of
    /// another node, with [`ExitReason::NoConnection`] if that node is lost first.
    pub async fn exited(&self, pid: &Pid) -> ExitReason {
        self.inner.exited(pid).await
    }

    /// Registers `name` for a running process of this node. Names are unique on the node,
    /// a process has at most one, and the name is released when the process ends. A
    /// process of another node is refused ([`RegisterError::NotLocal`]): register it on
    /// its node, or cluster-wide with [`register_global`](Self::register_global).
    pub fn register(&self, name: &str, pid: &Pid) -> Result<(), RegisterError> {
        if self.inner.is_remote(pid) {
            return Err(RegisterError::NotLocal { pid: pid.clone() });
        }
        let process = self.inner.resolve(pid).ok_or(RegisterError::NoProc)?;
        self.inner.registry.register(name, process.core())
    }

    /// Removes a name; returns the process it named.
    pub fn unregister(&self, name: &str) -> Option<Pid> {
        loop {
            // The process is looked up first: the registry's lock is not held over the
            // process table's.
            let pid = self.inner.registry.whereis(name)?;
            let process = self.inner.resolve(&pid);
            let core = process.as_ref().map(|process| process.core());
            if self.inner.registry.unregister(name, &pid, core) {
                return Some(pid);
            }
            // Registered for another process meanwhile: that one is unregistered.
        }
    }

    /// The process registered under `name`.
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        self.inner.registry.whereis(name)
    }

    /// Every registered (name, pid) pair, sorted by name.
    pub fn registered(&self) -> Vec<(String, Pid)> {
        self.inner.registry.all()
    }

    /// The process registered under `name`, as a typed reference to behaviour `B`.
    ///
    /// Fails with [`LookupError::WrongBehavior`] (not a panic) if the process runs another
    /// behaviour.
    pub fn lookup<B: GenServer>(&self, name: &str) -> Result<ServerRef<B>, LookupError> {
        let not_found = || LookupError::NotFound(name.to_owned());
        let pid = self.whereis(name).ok_or_else(not_found)?;
        self.server_ref::<B>(&pid).map_err(|error| match error {
            LookupError::NotFound(_) | LookupError::OnAnotherNode(_) => not_found(),
            LookupError::LocalOnly(behavior) => LookupError::LocalOnly(behavior),
            LookupError::WrongBehavior {
                expected, found, ..
            } => LookupError::WrongBehavior {
                name: name.to_owned(),
                expected,
                found,
            },
        })
    }

    /// A typed reference to the running process `pid`.
    ///
    /// Fails with [`LookupError::NotFound`] if it does not run, and with
    /// [`LookupError::WrongBehavior`] if it runs another behaviour than `B`. A process of
    /// another node is not looked at here (that would take a round trip): its node checks
    /// each message — a call to a process that has ended or runs another behaviour fails
    /// with [`CallError::NoProc`](crate::CallError::NoProc) or
    /// [`CallError::WrongBehavior`](crate::CallError::WrongBehavior), and a cast or a send
    /// is dropped there, logged and counted in its connection's
    /// [`TrafficStats::messages_undelivered`](crate::TrafficStats::messages_undelivered).
    /// Its behaviour must be able to cross nodes ([`LookupError::LocalOnly`] if not).
    pub fn server_ref<B: GenServer>(&self, pid: &Pid) -> Result<ServerRef<B>, LookupError> {
        if self.inner.is_remote(pid) {
            return self.remote_ref(pid);
        }
        match self.inner.resolve_as::<B>(pid) {
            Ok(process) => Ok(ServerRef::from_process(process)),
            Err(found) if found.is_empty() => Err(LookupError::NotFound(pid.to_string())),
            Err(found) => Err(LookupError::WrongBehavior {
                name: pid.to_string(),
                expected: std::any::type_name::<B>().to_owned(),
                found,
            }),
        }
    }

    /// A reference that finds the process registered under `name` at each use, so it keeps
    /// working when a supervisor restarts that process under the same name.
    pub fn named<B: GenServer>(&self, name: impl Into<String>) -> NamedRef<B> {
        NamedRef::new(self.clone(), name.into())
    }

    /// Delivers `message` to `target`'s [`handle_info`](GenServer::handle_info) after
    /// `delay`. The timer is cancelled if `target` ends first. For a process of another
    /// node, the message is sent at the deadline whatever happened; if it cannot be sent
    /// then (the process ended, its node is not connected) it is dropped, as for a local
    /// target that ended — logged at debug level.
    pub fn send_after<B: GenServer>(
        &self,
        target: &ServerRef<B>,
        message: B::Info,
        delay: Duration,
    ) -> TimerRef {
        match target.local_process() {
            Some(process) => timer::start(&self.inner.executors, process, message, delay, None),
            None => {
                let target = target.clone();
                timer::start_detached(&self.inner.executors, delay, move || {
                    // A remote target's end is not known here; a failed send is the answer.
                    if let Err(error) = target.send(message) {
                        let pid = target.pid();
                        tracing::debug!(%pid, %error, "a timer's message was not delivered");
                    }
                })
            }
        }
    }

    /// Cancels a timer; `true` if it was still pending. Same as [`TimerRef::cancel`].
    pub fn cancel_timer(&self, timer: &TimerRef) -> bool {
        timer.cancel()
    }

    /// Subscribes to the node's [`LifecycleEvent`](crate::LifecycleEvent)s, from now on.
    /// The subscription holds up to [`EVENT_QUEUE`](crate::EVENT_QUEUE) unread events: one
    /// that falls further behind loses the newest (counted by
    /// [`missed`](crate::Subscription::missed)) rather than growing without bound.
    pub fn events(&self) -> Events {
        self.inner.events.subscribe()
    }

    /// The number of running processes (the node's own system process aside, see
    /// [`observe`](crate::observe)).
    pub fn process_count(&self) -> usize {
        self.inner.process_count()
    }

    /// A typed reference to `pid` of another node of the cluster. Whether the process runs
    /// there is not checked: calls to it fail with `NoProc` (or `NoConnection`) if not.
    pub(crate) fn remote_ref<B: GenServer>(&self, pid: &Pid) -> Result<ServerRef<B>, LookupError> {
        let codec = B::__remote_codec()
            .ok_or_else(|| LookupError::LocalOnly(std::any::type_name::<B>().to_owned()))?;
        let cluster = self
            .inner
            .cluster
            .get()
            .map(Arc::downgrade)
            .unwrap_or_default();
        let target = crate::dist::remote::RemoteTarget::by_pid(pid, cluster, codec);
        Ok(ServerRef::remote(pid.clone(), target))
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name())
            .field("incarnation", &self.incarnation())
            .field("processes", &self.process_count())
            .finish()
    }
}
