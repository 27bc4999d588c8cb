//! How a node shuts down: its processes stop from the top of their trees, a node of a
//! cluster leaving its peers around that (see `dist::leaving`), then its threads.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;

use super::Node;
use crate::process::Signal;
use crate::ExitReason;

/// How long [`Node::shutdown`] waits for its processes to end, stopped then killed.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

impl Node {
    /// Shuts the node down: refuses new processes, stops every running one with
    /// [`ExitReason::Shutdown`], kills those still running after 5 s, and stops the
    /// scheduler threads. Processes are stopped from the top of their trees: each one
    /// spawned without a link to a parent on this node (a top-level supervisor, a process
    /// on its own, a child of a supervisor of another node) is asked to stop, as
    /// [`stop`](Self::stop) does, and runs its `terminate`; a supervisor stops its
    /// children in reverse start order by their [`Shutdown`](crate::supervisor::Shutdown)
    /// specs, and a process linked to its parent ends with it. Their links and monitors
    /// see their true reasons (`Shutdown`, or how they ended), on this node and on others.
    ///
    /// A node of a cluster first tells its peers that it leaves (they place no new
    /// children of a distributed supervisor here, and move those that end here
    /// meanwhile, without waiting as for a lost node), then stops its processes over the connections still open — so
    /// monitors, links and callers on other nodes see the same reasons, and global names
    /// are released as their processes end — then says goodbye (its peers report it down
    /// with [`NodeDownReason::Shutdown`](crate::NodeDownReason::Shutdown)) and closes its
    /// connections. Only a process still running then, killed, is reported to other nodes
    /// with `NoConnection`, as for a node that was lost.
    ///
    /// Call it from outside the node (a `main` function or a test) to wait for all that.
    /// Called from inside the node (a process or a task of the node), it returns at once
    /// and the same happens on a thread of its own: the node's threads must keep running
    /// for its processes to stop and its goodbyes to go out. Only the first call does
    /// this: another, made meanwhile (from the node's threads or from outside), returns
    /// at once, before the node has stopped. Dropping the last handle of a node stops its
    /// threads, without any of this.
    ///
    /// A handler stuck in blocking code cannot be interrupted: the shutdown waits 5 s in
    /// all for the processes to end (stopped, then killed), half a second for the
    /// goodbyes, and 5 s for the threads, then returns, leaving such a thread behind.
    pub fn shutdown(&self) {
        if self.inner.shutting_down.swap(true, Ordering::AcqRel) {
            return;
        }
        if self.inner.executors.on_own_thread() {
            let node = self.clone();
            let helper = std::thread::Builder::new()
                .name("noex-shutdown".to_owned())
                .spawn(move || node.shut_down());
            if helper.is_ok() {
                return;
            }
            // No thread to spare: the connections close without goodbyes.
            tracing::warn!("no thread for the shutdown; connections closed without goodbyes");
            if let Some(cluster) = self.inner.cluster.get() {
                cluster.close_all();
            }
        }
        self.shut_down();
    }

    /// The body of [`shutdown`](Self::shutdown), once.
    fn shut_down(&self) {
        let own_thread = self.inner.executors.on_own_thread();
        // A handler stuck in blocking code cannot be interrupted; do not wait forever.
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        let until_deadline = || async move {
            smol::Timer::at(deadline).await;
        };
        if !own_thread {
            let cluster = self.inner.cluster.get().cloned();
            if let Some(cluster) = &cluster {
                cluster.announce_leaving();
            }
            smol::block_on(self.stop_processes().or(until_deadline()));
            // Say goodbye once the processes' ends have gone out: peers report this node
            // down as `Shutdown`, and its processes' monitors and links with their reasons.
            if let Some(cluster) = &cluster {
                smol::block_on(cluster.shutdown());
            }
        }
        for process in self.inner.table.all() {
            process.core().signal(Signal::Die(ExitReason::Killed));
        }
        if !own_thread {
            let all_ended = async {
                for process in self.inner.table.all() {
                    process.core().exited().await;
                }
            };
            smol::block_on(all_ended.or(until_deadline()));
        }
        self.inner.executors.stop();
        // No event comes any more: the subscriptions end once read.
        self.inner.events.close();
        self.inner.global.close_events();
        if let Some(cluster) = self.inner.cluster.get() {
            cluster.events.close();
        }
    }

    /// Stops every process with `Shutdown`, from the top of their trees (see
    /// [`shutdown`](Self::shutdown)), and waits until they have ended.
    async fn stop_processes(&self) {
        loop {
            // A process whose parent runs on this node ends with it (a supervisor stops
            // its children; a linked one, trapping exits or not, ends with its parent);
            // one whose parent ended first (cleanly, leaving it running) is taken on the
            // next round.
            let roots: Vec<_> = self
                .inner
                .table
                .all()
                .into_iter()
                .filter(|process| {
                    let parent = process.core().id.parent();
                    parent.is_none_or(|parent| self.inner.resolve(&parent).is_none())
                })
                .collect();
            if roots.is_empty() {
                return;
            }
            for root in &roots {
                root.core().signal(Signal::Stop(ExitReason::Shutdown));
            }
            for root in &roots {
                root.core().exited().await;
            }
            // A process is out of the table once its end is processed: one still there
            // would be found again, and this would go round for ever.
            let table = &self.inner.table;
            if roots
                .iter()
                .any(|root| table.get(root.core().pid().serial()).is_some())
            {
                return;
            }
        }
    }
}
