//! Reading a node: what an [`Observer`](super::Observer) of this node returns, and what the
//! node's agent answers to observers of other nodes. Each read walks the node's tables
//! once and asks the supervisors concerned all at once, with one deadline.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use futures_lite::future::yield_now;
use futures_lite::FutureExt;

use super::types::{
    GlobalInfo, NodeOverview, PeerList, ProcessDetail, ProcessInfo, ProcessList, ProcessQuery,
    ProcessStatus, SortBy, SupervisorInfo,
};
use super::RATE_WINDOW;
use crate::process::AnyProcess;
use crate::supervisor::ChildInfo;
use crate::{Node, Pid, Supervisor};

/// How long a supervisor has to list its children for an observer.
const SUPERVISOR_DEADLINE: Duration = Duration::from_secs(1);

/// A read walks this many processes between yields, so that the other processes of its
/// thread wait behind it for tens of microseconds at most, however many there are.
const WALK_CHUNK: usize = 512;

pub(crate) fn process_info(process: &dyn AnyProcess) -> ProcessInfo {
    let core = process.core();
    let view = core.view();
    let mailbox_len = process.mailbox_len();
    let status = if view.ended {
        ProcessStatus::Exiting
    } else if !view.initialized {
        ProcessStatus::Starting
    } else if mailbox_len > 0 {
        ProcessStatus::Busy
    } else {
        ProcessStatus::Idle
    };
    ProcessInfo {
        pid: core.pid().clone(),
        name: view.name,
        behavior: process.behavior().to_owned(),
        status,
        supervisor: core.supervisor(),
        parent: core.parent(),
        message_count: core.message_count(),
        mailbox_len,
        links: view.links,
        trap_exit: core.trap_exit(),
        restarts: None,
    }
}

/// The message counts the `SortBy::MessageRate` queries of each observing node saw, for
/// their next ones: at most [`MAX_RATE_OBSERVERS`] nodes', each for [`RATE_WINDOW`].
#[derive(Default)]
pub(crate) struct RateBases {
    /// By observing node (its incarnation), oldest first.
    bases: Vec<(u64, RateBase)>,
}

/// The message counts one query saw.
struct RateBase {
    at: Instant,
    counts: HashMap<u64, u64>,
}

/// How many observing nodes' counts a node keeps at once (each takes 16 bytes a process);
/// past that, the oldest are forgotten, and their next query counts since the start.
pub(crate) const MAX_RATE_OBSERVERS: usize = 4;

impl RateBases {
    /// The counts of `observer`'s previous query, if it was recent; forgets them.
    fn take(&mut self, observer: u64) -> Option<RateBase> {
        let index = self.bases.iter().position(|(o, _)| *o == observer)?;
        let (_, base) = self.bases.remove(index);
        (base.at.elapsed() < RATE_WINDOW).then_some(base)
    }

    /// Keeps `base` for `observer`'s next query, forgetting the oldest counts kept if
    /// there are too many.
    fn keep(&mut self, observer: u64, base: RateBase) {
        self.bases.retain(|(o, _)| *o != observer);
        if self.bases.len() >= MAX_RATE_OBSERVERS {
            self.bases.remove(0);
        }
        self.bases.push((observer, base));
    }

    /// Forgets `observer`'s counts if they are still those taken at `at`.
    fn expire(&mut self, observer: u64, at: Instant) {
        self.bases.retain(|(o, b)| *o != observer || b.at != at);
    }
}

impl Node {
    /// The counts of `observer`'s previous `MessageRate` query, if it was recent.
    fn take_rate_base(&self, observer: u64) -> Option<RateBase> {
        self.inner
            .rate_bases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(observer)
    }

    /// Keeps `counts` for `observer`'s next `MessageRate` query, and forgets them after
    /// [`RATE_WINDOW`] unless a query has replaced them.
    fn keep_rate_base(&self, observer: u64, counts: HashMap<u64, u64>) {
        let at = Instant::now();
        self.inner
            .rate_bases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keep(observer, RateBase { at, counts });
        let node = Arc::downgrade(&self.inner);
        self.spawn_task(async move {
            smol::Timer::after(RATE_WINDOW).await;
            if let Some(node) = node.upgrade() {
                node.rate_bases
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .expire(observer, at);
            }
        })
        .detach();
    }

    /// The processes an observer sees — the node's, system processes aside — in spawn
    /// order.
    pub(crate) fn observable(&self) -> Vec<Arc<dyn AnyProcess>> {
        let mut all = self.observable_unordered();
        all.sort_unstable_by_key(|p| p.core().pid().serial());
        all
    }

    /// The processes an observer sees, in no particular order.
    fn observable_unordered(&self) -> Vec<Arc<dyn AnyProcess>> {
        let agent = self.inner.agent_serial();
        let mut all = self.inner.table.snapshot();
        all.retain(|p| Some(p.core().pid().serial()) != agent);
        all
    }

    /// The processes `query` asks for, as the node `observer` (its incarnation) sees them:
    /// message rates are since that node's previous `MessageRate` query.
    pub(crate) async fn read_processes(&self, query: ProcessQuery, observer: u64) -> ProcessList {
        let all = self.observable_unordered();
        let total = all.len();
        let limit = query.limit.min(ProcessQuery::MAX_LIMIT);
        // Ordered by the query's key, then by spawn. Only the processes returned are
        // sorted and described: with a million processes, a query for the 50 longest
        // mailboxes reads one number of each, not everything.
        let rates = query.sort == SortBy::MessageRate;
        let before = if rates {
            self.take_rate_base(observer)
        } else {
            None
        };
        let mut counts = HashMap::with_capacity(if rates { total } else { 0 });
        let mut key = |p: &Arc<dyn AnyProcess>| {
            let serial = p.core().pid().serial();
            let primary = match query.sort {
                SortBy::Spawn => 0,
                SortBy::MailboxLen => p.mailbox_len() as u64,
                SortBy::MessageCount => p.core().message_count(),
                SortBy::MessageRate => {
                    let count = p.core().message_count();
                    counts.insert(serial, count);
                    let earlier = before.as_ref().and_then(|b| b.counts.get(&serial));
                    count - earlier.copied().unwrap_or(0).min(count)
                }
            };
            (Reverse(primary), serial)
        };
        let mut keyed = Vec::with_capacity(total);
        for chunk in all.chunks(WALK_CHUNK) {
            keyed.extend(chunk.iter().map(|p| (key(p), p)));
            yield_now().await;
        }
        if rates {
            self.keep_rate_base(observer, counts);
        }
        if keyed.len() > limit {
            keyed.select_nth_unstable_by_key(limit, |(key, _)| *key);
            keyed.truncate(limit);
        }
        keyed.sort_unstable_by_key(|(key, _)| *key);
        let mut processes = Vec::with_capacity(keyed.len());
        for chunk in keyed.chunks(WALK_CHUNK) {
            processes.extend(chunk.iter().map(|(_, p)| process_info(p.as_ref())));
            yield_now().await;
        }
        self.fill_restarts(&mut processes).await;
        ProcessList { total, processes }
    }

    /// Fills in `restarts` for the supervised processes of `processes`, asking each of
    /// their supervisors once.
    async fn fill_restarts(&self, processes: &mut [ProcessInfo]) {
        let mut supervisors: Vec<Pid> = processes
            .iter()
            .filter_map(|p| p.supervisor.clone())
            .collect();
        supervisors.sort();
        supervisors.dedup();
        let mut restarts = HashMap::new();
        for (children, _) in self
            .ask_supervisors(&supervisors, false)
            .await
            .into_iter()
            .flatten()
        {
            for child in children {
                if let Some(pid) = child.pid {
                    restarts.insert(pid, child.restarts);
                }
            }
        }
        for process in processes {
            process.restarts = restarts.get(&process.pid).copied();
        }
    }

    /// What the supervisors `pids` of this node answer, in order: their children, and
    /// (if `distribution`) whether each is distributed; `None` for one that did not answer
    /// within [`SUPERVISOR_DEADLINE`]. They are asked all at once, so that those that
    /// cannot answer (busy starting a child, say) cost the read one deadline in all, not
    /// one each.
    async fn ask_supervisors(
        &self,
        pids: &[Pid],
        distribution: bool,
    ) -> Vec<Option<(Vec<ChildInfo>, bool)>> {
        let deadline = Instant::now() + SUPERVISOR_DEADLINE;
        let asks: Vec<_> = pids
            .iter()
            .map(|pid| {
                let reference = self.server_ref::<Supervisor>(pid).ok();
                self.spawn_task(async move {
                    let reference = reference?;
                    async {
                        let children = reference.which_children().await.ok()?;
                        let distributed = distribution && reference.distribution().await.is_ok();
                        Some((children, distributed))
                    }
                    .or(async {
                        smol::Timer::at(deadline).await;
                        None
                    })
                    .await
                })
            })
            .collect();
        let mut answers = Vec::with_capacity(asks.len());
        for ask in asks {
            answers.push(ask.fallible().await.flatten());
        }
        answers
    }

    pub(crate) async fn read_process(&self, pid: &Pid) -> Option<ProcessDetail> {
        let process = self.inner.resolve(pid)?;
        if Some(pid.serial()) == self.inner.agent_serial() {
            return None;
        }
        let mut info = [process_info(process.as_ref())];
        self.fill_restarts(&mut info).await;
        let [info] = info;
        let view = process.core().view();
        Some(ProcessDetail {
            info,
            monitors: view.monitors,
            monitored_by: view.monitored_by,
            monitored_nodes: view.monitored_nodes,
            global_names: view.global_names,
            groups: view.groups,
            timers: view.timers,
        })
    }

    pub(crate) async fn read_supervisors(&self) -> Vec<SupervisorInfo> {
        let kind = std::any::type_name::<Supervisor>();
        let supervisors: Vec<_> = self
            .observable()
            .into_iter()
            .filter(|p| p.behavior() == kind && p.core().is_alive())
            .collect();
        let pids: Vec<Pid> = supervisors.iter().map(|p| p.core().pid().clone()).collect();
        let answers = self.ask_supervisors(&pids, true).await;
        supervisors
            .iter()
            .zip(pids)
            .zip(answers)
            .map(|((process, pid), answer)| {
                let core = process.core();
                let answered = answer.is_some();
                let (children, distributed) = answer.unwrap_or_default();
                SupervisorInfo {
                    pid,
                    name: core.name().map(|n| n.to_string()),
                    supervisor: core.supervisor(),
                    distributed,
                    answered,
                    children,
                }
            })
            .collect()
    }

    pub(crate) fn read_globals(&self) -> GlobalInfo {
        let mut names = self.global_names();
        names.sort();
        let mut groups: Vec<(String, Vec<Pid>)> = self
            .groups()
            .into_iter()
            .map(|group| {
                let members = self.group_members(&group);
                (group, members)
            })
            .collect();
        groups.sort();
        GlobalInfo { names, groups }
    }

    pub(crate) fn read_peers(&self) -> PeerList {
        let mut peers = self.connected_nodes();
        peers.extend(self.hidden_nodes());
        peers
    }

    pub(crate) async fn read_overview(&self) -> NodeOverview {
        // Ended processes first: one that ends meanwhile is then missed by this reading
        // (it has left the table), never counted twice (as in the metrics).
        let ended = self.inner.ended_messages.load(Ordering::Relaxed);
        let processes = self.observable_unordered();
        let (mut handled, mut queued) = (ended, 0);
        for chunk in processes.chunks(WALK_CHUNK) {
            for p in chunk {
                handled += p.core().message_count();
                queued += p.mailbox_len() as u64;
            }
            yield_now().await;
        }
        NodeOverview {
            node: self.name().to_owned(),
            incarnation: self.incarnation(),
            uptime: self.inner.started.elapsed(),
            threads: self.threads(),
            hidden: self.is_hidden(),
            processes: processes.len(),
            messages_handled: handled,
            messages_queued: queued,
            registered: self.registered().len(),
            behaviors: self.behaviors().len(),
            peers: self.connected_nodes().len(),
            traffic: self.cluster_stats(),
            remote: self.remote_stats(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> RateBase {
        RateBase {
            at: Instant::now(),
            counts: HashMap::new(),
        }
    }

    #[test]
    fn the_counts_of_the_oldest_observer_go_when_too_many_are_kept() {
        let mut bases = RateBases::default();
        for observer in 0..=MAX_RATE_OBSERVERS as u64 {
            bases.keep(observer, base());
        }
        assert!(bases.take(0).is_none(), "the oldest was forgotten");
        for observer in 1..=MAX_RATE_OBSERVERS as u64 {
            assert!(bases.take(observer).is_some());
        }
        // Kept again, an observer's counts replace its earlier ones.
        bases.keep(7, base());
        let at = Instant::now();
        bases.keep(
            7,
            RateBase {
                at,
                counts: HashMap::new(),
            },
        );
        assert_eq!(bases.bases.len(), 1);
        bases.expire(7, at);
        assert!(bases.take(7).is_none());
    }
}
