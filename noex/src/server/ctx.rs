//! `Ctx`: what a running process can do to itself and the processes around it.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::process::Process;
use super::reference::ServerRef;
use super::spawn::{self, Relation, SpawnOptions};
use super::GenServer;
use crate::error::SpawnError;
use crate::node::{Node, NodeInner};
use crate::process::send_exit;
use crate::timer::{self, TimerRef};
use crate::{ExitReason, MonitorRef, Pid};

/// The context of a running process, given to every [`GenServer`] callback.
///
/// Through it a process links and monitors, traps exits, starts children and timers, and
/// asks to stop.
///
/// ```
/// use std::time::Duration;
/// use noex::{Ctx, ExitReason, GenServer, Info, Node};
///
/// /// Ticks three times, then stops.
/// struct Metronome {
///     ticks: u32,
/// }
///
/// impl GenServer for Metronome {
///     type Args = ();
///     type Call = ();
///     type Reply = ();
///     type Cast = ();
///     type Info = &'static str;
///     type InitError = std::convert::Infallible;
///
///     async fn init(_: (), ctx: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
///         ctx.send_interval("tick", Duration::from_millis(1));
///         Ok(Metronome { ticks: 0 })
///     }
///
///     async fn handle_info(&mut self, info: Info<&'static str>, ctx: &mut Ctx<Self>) {
///         if let Info::Message("tick") = info {
///             self.ticks += 1;
///             if self.ticks == 3 {
///                 ctx.stop(ExitReason::Normal); // its interval timer dies with it
///             }
///         }
///     }
/// }
///
/// let node = Node::new();
/// node.block_on(async {
///     let metronome = node.spawn::<Metronome>(()).await.unwrap();
///     assert_eq!(metronome.exited().await, ExitReason::Normal);
/// });
/// node.shutdown();
/// ```
pub struct Ctx<B: GenServer> {
    process: Arc<Process<B>>,
    node: Weak<NodeInner>,
    /// The continuation asked for, handled before the next message.
    proceed: Option<B::Info>,
    /// The idle timeout in milliseconds (0: none), and whether it is armed (no `Timeout`
    /// since the last message). Small: every process carries its `Ctx`.
    idle_ms: u32,
    idle_armed: bool,
}

impl<B: GenServer> Ctx<B> {
    pub(crate) fn new(process: Arc<Process<B>>, node: Weak<NodeInner>) -> Self {
        Ctx {
            process,
            node,
            proceed: None,
            idle_ms: 0,
            idle_armed: false,
        }
    }

    pub(crate) fn take_continue(&mut self) -> Option<B::Info> {
        self.proceed.take()
    }

    /// The idle timeout to wait for now, if one is set and armed.
    #[inline]
    pub(crate) fn idle_due(&self) -> Option<Duration> {
        (self.idle_armed && self.idle_ms > 0).then(|| Duration::from_millis(self.idle_ms.into()))
    }

    /// A message arrived (`true`) or the idle timeout fired (`false`).
    #[inline]
    pub(crate) fn idle_arm(&mut self, armed: bool) {
        self.idle_armed = armed;
    }

    pub(crate) fn process(&self) -> &Arc<Process<B>> {
        &self.process
    }

    pub(crate) fn node_inner(&self) -> Option<Arc<NodeInner>> {
        self.node.upgrade()
    }

    /// This process's pid.
    pub fn pid(&self) -> &Pid {
        self.process.core.pid()
    }

    /// A typed reference to this process, to hand to others.
    pub fn server_ref(&self) -> ServerRef<B> {
        ServerRef::from_process(self.process.clone())
    }

    /// The process that spawned this one with a link, if any.
    pub fn parent(&self) -> Option<Pid> {
        self.process.core.parent()
    }

    /// The node this process runs on. A handle kept in the process's state keeps the node
    /// running when every other handle is dropped: call [`Node::shutdown`] to stop it.
    ///
    /// # Panics
    ///
    /// If the node has been dropped — which only happens while it tears its processes down.
    pub fn node(&self) -> Node {
        Node::from_inner(
            self.node_inner()
                .expect("noex: the node of a running process was dropped"),
        )
    }

    /// Asks this process to stop with `reason` once the current callback returns:
    /// `terminate` runs, then the process ends.
    pub fn stop(&mut self, reason: ExitReason) {
        // Kept in the core, not here: every process carries its `Ctx`.
        self.process.core.note_own_stop(reason);
    }

    /// Asks for `info` to be handled as [`Info::Continue`](crate::Info::Continue) by
    /// `handle_info` right after the current callback, before any message in the mailbox —
    /// OTP's `handle_continue`. From `init`, it runs work that must come first (loading
    /// data, connecting somewhere) without keeping the spawner waiting: `spawn` returns
    /// once `init` does, and nothing sent afterwards overtakes the continuation. A later
    /// call replaces an earlier one not yet handled.
    ///
    /// ```
    /// use noex::{Ctx, GenServer, Info, Node, ReplyTo};
    ///
    /// /// Loads its data after `init`, before any call.
    /// struct Store(Vec<u32>);
    ///
    /// impl GenServer for Store {
    ///     type Args = ();
    ///     type Call = ();
    ///     type Reply = usize;
    ///     type Cast = ();
    ///     type Info = &'static str;
    ///     type InitError = std::convert::Infallible;
    ///
    ///     async fn init(_: (), ctx: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
    ///         ctx.continue_with("load");
    ///         Ok(Store(Vec::new()))
    ///     }
    ///
    ///     async fn handle_info(&mut self, info: Info<&'static str>, _: &mut Ctx<Self>) {
    ///         if let Info::Continue("load") = info {
    ///             self.0 = (1..=3).collect(); // slow work, after spawn returned
    ///         }
    ///     }
    ///
    ///     async fn handle_call(&mut self, _: (), reply: ReplyTo<usize>, _: &mut Ctx<Self>) {
    ///         reply.send(self.0.len());
    ///     }
    /// }
    ///
    /// let node = Node::new();
    /// node.block_on(async {
    ///     let store = node.spawn::<Store>(()).await.unwrap();
    ///     assert_eq!(store.call(()).await, Ok(3)); // the continuation ran first
    /// });
    /// node.shutdown();
    /// ```
    pub fn continue_with(&mut self, info: B::Info) {
        self.proceed = Some(info);
    }

    /// Asks for [`Info::Timeout`](crate::Info::Timeout) when no message arrives for
    /// `after` (in whole milliseconds, at least one; at most about 49 days) — once per
    /// silence: any message starts the clock again, and after a timeout the next one needs
    /// another message first. `None` turns it off. It stays set until changed.
    pub fn idle_timeout(&mut self, after: impl Into<Option<Duration>>) {
        self.idle_ms = after.into().map_or(0, |after| {
            u32::try_from(after.as_millis()).unwrap_or(u32::MAX).max(1)
        });
        self.idle_armed = self.idle_ms > 0;
    }

    /// Resolves once a graceful stop of this process is asked for
    /// ([`stop`](crate::ServerRef::stop), a supervisor's `Timeout` shutdown...): a
    /// handler that awaits something long can `select` on it and wind down in time; the
    /// stop then takes effect when the handler returns (`terminate` runs). It works
    /// wherever it is awaited: in a handler, under a combinator of its own, or in a task
    /// the process started. It also resolves once the process has ended without a stop
    /// asked for (killed, crashed), so such a task is not left waiting for ever.
    pub fn stopping(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let process = self.process.clone();
        async move { process.core.stop_asked().await }
    }

    /// Turns trapping of exit signals on or off (off at start).
    ///
    /// While trapping, an exit signal from a linked process (or sent with [`Ctx::exit`])
    /// arrives as [`Info::Exit`](crate::Info::Exit), in order behind everything its sender
    /// sent before, instead of ending this process — except a [kill](crate::Node::kill),
    /// which cannot be trapped. An exit from the parent (the process that spawn-linked this
    /// one) is not given to `handle_info`: when the server reaches it, it terminates with the
    /// parent's reason, as in OTP. A parent of another node whose node is lost
    /// ([`NoConnection`](crate::ExitReason::NoConnection)) ends this process at once, as a
    /// kill would: a distributed supervisor may start it again elsewhere (see
    /// [`placement`](crate::supervisor::placement)).
    pub fn trap_exits(&mut self, trap: bool) {
        self.process.core.set_trap_exit(trap);
    }

    /// Whether this process traps exits.
    pub fn traps_exits(&self) -> bool {
        self.process.core.trap_exit()
    }

    /// Links this process with `pid`: when either ends abnormally, the other gets an exit
    /// signal. Linking to a process that is not running sends this process an exit signal
    /// with reason [`ExitReason::NoProc`] (for one caught in the middle of ending, once its
    /// end is processed).
    ///
    /// `pid` may be a process of another node: the link works the same, and if that node is
    /// lost (or is not connected when linking) the link breaks with an exit signal with
    /// reason [`ExitReason::NoConnection`].
    pub fn link(&mut self, pid: &Pid) {
        if let Some(node) = self.node_inner() {
            node.link(self.process.as_ref(), pid);
        }
    }

    /// Removes the link with `pid`. No exit signal from that link has an effect afterwards;
    /// as in OTP, an [`Info::Exit`](crate::Info::Exit) that reached the mailbox before the
    /// unlink (while trapping) is still delivered.
    pub fn unlink(&mut self, pid: &Pid) {
        if let Some(node) = self.node_inner() {
            node.unlink(&self.process.core, pid);
        }
    }

    /// Monitors `pid`: when it ends, this process gets exactly one
    /// [`Info::Down`](crate::Info::Down) with the returned reference. A process that is not
    /// running produces a `Down` with reason [`ExitReason::NoProc`] at once — or, for one
    /// caught in the middle of ending, once its end is processed (its names and groups
    /// released, its earlier watchers told).
    ///
    /// `pid` may be a process of another node: the `Down` carries the reason it ended with,
    /// after every message it sent this process before; if its node is lost (or is not
    /// connected when monitoring), the reason is [`ExitReason::NoConnection`].
    pub fn monitor(&mut self, pid: &Pid) -> MonitorRef {
        match self.node_inner() {
            Some(node) => node.monitor(self.process.as_ref(), pid),
            None => MonitorRef(0),
        }
    }

    /// Removes a monitor. No `Down` for it is handled afterwards, even one already queued.
    /// Returns `true` if the monitor was active (its `Down`, if already queued, is
    /// discarded), `false` if its `Down` was already handled or it was removed before.
    pub fn demonitor(&mut self, monitor: MonitorRef) -> bool {
        self.node_inner()
            .is_some_and(|node| node.demonitor(&self.process.core, monitor))
    }

    /// Monitors the node `node`: this process gets one [`Info::NodeDown`](crate::Info::NodeDown)
    /// when the node is lost (its connection closes or falls silent) — at once if it is not
    /// connected now. Each call is one monitor, each with its own `NodeDown`. Like Erlang's
    /// `monitor_node/2`; [`Node::cluster_events`](crate::Node::cluster_events) reports the
    /// same to anyone, not only processes.
    pub fn monitor_node(&mut self, node: &crate::NodeId) {
        let Some(inner) = self.node_inner() else {
            return;
        };
        match inner.cluster.get() {
            Some(cluster) if cluster.id != *node => {
                cluster.monitor_node(self.process.as_ref(), node)
            }
            // This node itself is never down to its processes.
            Some(_) => {}
            None => {
                let key = node.as_arc();
                if self.process.core.add_monitored_node(&key) {
                    crate::process::AnyProcess::deliver_system(
                        self.process.as_ref(),
                        crate::process::SystemInfo::NodeDown { node: node.clone() },
                    );
                }
            }
        }
    }

    /// Removes one monitor of `node`; `true` if this process held one. No `NodeDown` for it
    /// is handled afterwards, even one already queued.
    pub fn demonitor_node(&mut self, node: &crate::NodeId) -> bool {
        let Some(inner) = self.node_inner() else {
            return false;
        };
        match inner.cluster.get() {
            Some(cluster) => cluster.demonitor_node(&self.process.core, node),
            None => self.process.core.remove_monitored_node(node.as_str()),
        }
    }

    /// Sends `pid` an exit signal with `reason`, as if from a link: it ends unless it traps
    /// exits (then it gets [`Info::Exit`](crate::Info::Exit)); `Normal` is ignored by a
    /// process that does not trap. Returns `false` if `pid` is not running — for a process
    /// of another node, if its node is not connected (the signal is sent otherwise).
    pub fn exit(&mut self, pid: &Pid, reason: ExitReason) -> bool {
        if pid == self.pid() {
            // A process exiting itself follows the same rules.
            send_exit(self.process.as_ref(), pid, reason, false);
            return true;
        }
        self.node_inner()
            .is_some_and(|node| node.exit(self.pid(), pid, reason))
    }

    /// Spawns a process linked to this one, atomically: there is no moment at which the
    /// child runs unlinked. If `init` fails, the spawn returns the error and no exit signal
    /// arrives.
    // Not an `async fn`: it would wrap the spawn's future in one more.
    pub fn spawn_link<C: GenServer>(
        &mut self,
        args: C::Args,
    ) -> impl Future<Output = Result<ServerRef<C>, SpawnError<C::InitError>>> + '_ {
        self.spawn_link_with(args, SpawnOptions::new())
    }

    /// [`spawn_link`](Self::spawn_link) with options.
    pub async fn spawn_link_with<C: GenServer>(
        &mut self,
        args: C::Args,
        options: SpawnOptions,
    ) -> Result<ServerRef<C>, SpawnError<C::InitError>> {
        let node = self.node_inner().ok_or(SpawnError::ShuttingDown)?;
        spawn::spawn(&node, args, options, Relation::Link(&self.process.core)).await
    }

    /// Spawns a process monitored by this one, atomically. If `init` fails, the spawn
    /// returns the error and no `Down` arrives.
    pub async fn spawn_monitor<C: GenServer>(
        &mut self,
        args: C::Args,
    ) -> Result<(ServerRef<C>, MonitorRef), SpawnError<C::InitError>> {
        self.spawn_monitor_with(args, SpawnOptions::new()).await
    }

    /// [`spawn_monitor`](Self::spawn_monitor) with options.
    pub async fn spawn_monitor_with<C: GenServer>(
        &mut self,
        args: C::Args,
        options: SpawnOptions,
    ) -> Result<(ServerRef<C>, MonitorRef), SpawnError<C::InitError>> {
        let node = self.node_inner().ok_or(SpawnError::ShuttingDown)?;
        let monitor = node.next_monitor_ref();
        let relation = Relation::Monitor(&self.process.core, monitor);
        let server = spawn::spawn(&node, args, options, relation).await?;
        Ok((server, monitor))
    }

    /// Delivers `message` to this process's [`handle_info`](GenServer::handle_info) after
    /// `delay`. The timer is cancelled when this process ends.
    pub fn send_after(&mut self, message: B::Info, delay: Duration) -> TimerRef {
        self.start_timer(message, delay, None)
    }

    /// Delivers a copy of `message` to this process every `period` until the timer is
    /// cancelled or this process ends. The ticks keep their times when one comes late;
    /// ticks missed altogether (the thread busy for a whole period) are skipped, not
    /// delivered in a burst. A period of zero ticks as often as the thread gets to it.
    pub fn send_interval(&mut self, message: B::Info, period: Duration) -> TimerRef
    where
        B::Info: Clone,
    {
        self.start_timer(message, period, Some(B::Info::clone))
    }

    /// Cancels a timer; `true` if it was still pending. Same as [`TimerRef::cancel`].
    pub fn cancel_timer(&mut self, timer: &TimerRef) -> bool {
        timer.cancel()
    }

    fn start_timer(
        &mut self,
        message: B::Info,
        delay: Duration,
        repeat: Option<timer::Repeat<B>>,
    ) -> TimerRef {
        match self.node_inner() {
            Some(node) => timer::start(&node.executors, &self.process, message, delay, repeat),
            None => TimerRef::inert(),
        }
    }
}

impl<B: GenServer> std::fmt::Debug for Ctx<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("pid", self.pid()).finish()
    }
}
