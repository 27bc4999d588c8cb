//! A burst: several operations at once, from several nodes, with a fault injected while
//! they run; each result is judged when it comes.

use std::collections::BTreeSet;
use std::time::Duration;

use noex::{CallError, GlobalError, MonitorRef, Pid, RemoteSpawnError};

use crate::behaviours::{Worker, WorkerApi};
use crate::harness::{bounded, log};
use crate::watches::{LinkRec, MonRec};
use crate::{GROUPS, H, MAX_WORKERS, NAMES, NODES};

#[derive(Debug)]
enum Burst {
    Call {
        a: usize,
        pid: Pid,
        alive: bool,
        r: Option<Result<u64, CallError>>,
    },
    SpawnOn {
        a: usize,
        b: usize,
        r: Option<Result<Pid, RemoteSpawnError>>,
    },
    Register {
        a: usize,
        name: &'static str,
        pid: Pid,
        r: Option<Result<(), GlobalError>>,
    },
    Join {
        group: &'static str,
        pid: Pid,
        r: Option<Result<bool, GlobalError>>,
    },
    Monitor {
        w: usize,
        winc: u64,
        pid: Pid,
        r: Option<Option<MonitorRef>>,
    },
    Link {
        w: usize,
        winc: u64,
        pid: Pid,
        r: Option<bool>,
    },
}

impl H {
    /// Several operations at once, with a fault injected while they run.
    pub(crate) async fn op_burst(&mut self) {
        let count = 3 + self.rng.below(6);
        log(format!("#{} BURST of {count}", self.step));
        let mut tasks: Vec<smol::Task<Burst>> = Vec::new();
        let mut burst_links = BTreeSet::new();
        for _ in 0..count {
            let a = self.rng.below(NODES);
            let node = self.nodes[a].clone();
            let kind = self.rng.below(6);
            let pid = self.pick_worker(true);
            match (kind, pid) {
                (0, Some(pid)) => {
                    let alive = self.alive(&pid);
                    let Some(w) = self.worker_ref(a, &pid) else {
                        continue;
                    };
                    tasks.push(smol::spawn(async move {
                        let r = bounded(Duration::from_secs(15), w.ping()).await;
                        Burst::Call { a, pid, alive, r }
                    }));
                }
                (2, Some(pid)) => {
                    let name = NAMES[self.rng.below(NAMES.len())];
                    tasks.push(smol::spawn(async move {
                        let r = bounded(Duration::from_secs(15), node.register_global(name, &pid))
                            .await;
                        Burst::Register { a, name, pid, r }
                    }));
                }
                (3, Some(pid)) => {
                    let group = GROUPS[self.rng.below(GROUPS.len())];
                    tasks.push(smol::spawn(async move {
                        let r =
                            bounded(Duration::from_secs(15), node.join_group(group, &pid)).await;
                        Burst::Join { group, pid, r }
                    }));
                }
                (4, Some(pid)) => {
                    let watcher = self.watchers[a].server.clone();
                    let winc = node.incarnation();
                    tasks.push(smol::spawn(async move {
                        let r = bounded(
                            Duration::from_secs(15),
                            watcher.call(crate::common::ProbeCall::Monitor(pid.clone())),
                        )
                        .await;
                        let r = r.map(|r| match r {
                            Ok(crate::common::ProbeReply::Monitor(m)) => Some(m),
                            _ => None,
                        });
                        Burst::Monitor { w: a, winc, pid, r }
                    }));
                }
                (5, Some(pid)) => {
                    let winc = node.incarnation();
                    if self.linked(a, winc, &pid) || !burst_links.insert((a, pid.clone())) {
                        continue;
                    }
                    let watcher = self.watchers[a].server.clone();
                    tasks.push(smol::spawn(async move {
                        let r = bounded(
                            Duration::from_secs(15),
                            watcher.call(crate::common::ProbeCall::Link(pid.clone())),
                        )
                        .await;
                        let r = r.map(|r| r.is_ok());
                        Burst::Link { w: a, winc, pid, r }
                    }));
                }
                _ => {
                    if self.workers.len() + tasks.len() >= MAX_WORKERS {
                        continue;
                    }
                    let b = (a + 1 + self.rng.below(NODES - 1)) % NODES;
                    let target = self.ids[b].clone();
                    self.next_id += 1;
                    let n = self.next_id;
                    tasks.push(smol::spawn(async move {
                        let r =
                            bounded(Duration::from_secs(15), node.spawn_on::<Worker>(&target, n))
                                .await
                                .map(|r| r.map(|w| w.pid().clone()));
                        Burst::SpawnOn { a, b, r }
                    }));
                }
            }
        }
        // Let them start, then strike.
        if self.rng.chance(50) {
            smol::future::yield_now().await;
        } else {
            smol::Timer::after(Duration::from_micros(self.rng.below(3000) as u64)).await;
        }
        match self.rng.below(6) {
            0 => self.fault_isolate(),
            1 => self.fault_cut_pair(),
            2 => self.fault_restart().await,
            3 => self.fault_bounce(),
            4 => self.fault_stall(),
            _ => self.fault_silence(),
        }
        for task in tasks {
            let result = task.await;
            self.burst_result(result);
        }
    }

    fn burst_result(&mut self, result: Burst) {
        log(format!("  burst: {result:?}"));
        match result {
            Burst::Call {
                a, pid, r: None, ..
            } => self.violation(format!("burst call n{a} -> {pid} hung past 15 s")),
            Burst::Call {
                a,
                pid,
                alive: false,
                r: Some(Ok(_)),
            } => self.violation(format!("burst call n{a} -> dead {pid} got a reply")),
            Burst::Call {
                a,
                pid,
                r: Some(Err(CallError::Timeout { .. })),
                ..
            } => self.violation(format!("burst call n{a} -> {pid} timed out")),
            Burst::Call { .. } => {}
            Burst::SpawnOn { a, b, r: None } => {
                self.violation(format!("burst spawn_on n{a}->n{b} hung past 15 s"))
            }
            Burst::SpawnOn {
                r: Some(Ok(pid)), ..
            } => self.workers.push(pid),
            Burst::SpawnOn {
                r: Some(Err(e)), ..
            } => {
                if matches!(
                    e,
                    RemoteSpawnError::ConnectionLost { .. } | RemoteSpawnError::Timeout { .. }
                ) {
                    self.spawn_ambiguous += 1;
                }
            }
            Burst::Register {
                a, name, r: None, ..
            } => self.violation(format!("burst register_global n{a} {name} hung past 15 s")),
            Burst::Register {
                name,
                pid,
                r: Some(Ok(())),
                ..
            } => {
                self.registered(name, pid);
            }
            Burst::Register {
                name,
                pid,
                r: Some(Err(e)),
                ..
            } => {
                if !matches!(
                    e,
                    GlobalError::NameTaken { .. } | GlobalError::NoProc { .. }
                ) {
                    self.maybe_registered(name, pid);
                }
            }
            Burst::Join { group, r: None, .. } => {
                self.violation(format!("burst join_group {group} hung past 15 s"))
            }
            Burst::Join {
                group,
                pid,
                r: Some(Ok(_)),
            } => {
                self.joined(group, pid);
            }
            Burst::Join {
                group,
                pid,
                r: Some(Err(_)),
            } => {
                self.maybe_joined(group, pid);
            }
            Burst::Monitor { w, r: None, .. } => {
                self.violation(format!("burst monitor by watcher n{w} hung"))
            }
            Burst::Monitor {
                w,
                winc,
                pid,
                r: Some(Some(mref)),
            } => {
                if winc == self.nodes[w].incarnation() {
                    let watch = self.watch(w, winc, pid, None);
                    self.monitors.push(MonRec {
                        watch,
                        mref,
                        demon: None,
                    });
                }
            }
            Burst::Monitor { .. } => {}
            Burst::Link { w, r: None, .. } => {
                self.violation(format!("burst link by watcher n{w} hung"))
            }
            Burst::Link {
                w,
                winc,
                pid,
                r: Some(true),
            } => {
                if winc == self.nodes[w].incarnation() && !self.linked(w, winc, &pid) {
                    let watch = self.watch(w, winc, pid, None);
                    self.links.push(LinkRec {
                        watch,
                        unlinked: false,
                    });
                }
            }
            Burst::Link { .. } => {}
        }
    }
}
