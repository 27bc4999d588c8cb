//! Operations on processes: spawns (local and remote), calls, casts, stops, crashes and
//! kills, each judged against the ground truth (is the process alive, is the cluster
//! calm) read before and after it.

use std::time::{Duration, Instant};

use noex::{CallError, ExitReason, RemoteSpawnError, SendError};

use crate::behaviours::{Worker, WorkerApi};
use crate::harness::{bounded, log};
use crate::{H, MAX_WORKERS, NAMES, NODES};

impl H {
    pub(crate) async fn op_spawn_local(&mut self) {
        if self.workers.len() >= MAX_WORKERS {
            return;
        }
        let s = self.rng.below(NODES);
        self.next_id += 1;
        let n = self.next_id;
        let r = bounded(Duration::from_secs(5), self.nodes[s].spawn::<Worker>(n)).await;
        match r {
            Some(Ok(w)) => {
                log(format!("#{} spawn on n{s} -> {}", self.step, w.pid()));
                self.workers.push(w.pid().clone());
            }
            other => self.violation(format!(
                "local spawn on n{s}: {:?}",
                other.map(|r| r.map(|_| ()))
            )),
        }
    }

    pub(crate) async fn op_spawn_on(&mut self) {
        if self.workers.len() >= MAX_WORKERS {
            return;
        }
        let a = self.rng.below(NODES);
        let b = (a + 1 + self.rng.below(NODES - 1)) % NODES;
        self.next_id += 1;
        let n = self.next_id;
        let calm_before = self.calm();
        let started = Instant::now();
        let target = self.ids[b].clone();
        let global = self
            .rng
            .chance(25)
            .then(|| NAMES[self.rng.below(NAMES.len())]);
        let options = match global {
            Some(name) => noex::SpawnOptions::new().global_name(name),
            None => noex::SpawnOptions::new(),
        };
        let r = bounded(
            Duration::from_secs(14),
            self.nodes[a].spawn_on_with::<Worker>(&target, n, options),
        )
        .await;
        let calm_after = self.calm();
        let took = started.elapsed();
        match r {
            None => self.violation(format!("spawn_on n{a}->n{b} hung past 14 s")),
            Some(Ok(w)) => {
                log(format!(
                    "#{} spawn_on n{a}->n{b} (global name {global:?}) -> {} ({took:?})",
                    self.step,
                    w.pid()
                ));
                if let Some(name) = global {
                    self.names
                        .entry(name.into())
                        .or_default()
                        .insert(w.pid().clone());
                }
                if w.pid().node() != target.as_str() {
                    self.violation(format!("spawn_on n{a}->n{b} gave {}", w.pid()));
                }
                self.workers.push(w.pid().clone());
            }
            Some(Err(RemoteSpawnError::NameTaken { .. })) if global.is_some() => {
                log(format!(
                    "#{} spawn_on n{a}->n{b} (global name {global:?}) -> name taken",
                    self.step
                ));
            }
            Some(Err(e)) => {
                log(format!(
                    "#{} spawn_on n{a}->n{b} (global name {global:?}) -> {e:?} ({took:?})",
                    self.step
                ));
                if matches!(
                    e,
                    RemoteSpawnError::ConnectionLost { .. } | RemoteSpawnError::Timeout { .. }
                ) {
                    self.spawn_ambiguous += 1;
                }
                if calm_before && calm_after {
                    self.violation(format!(
                        "spawn_on n{a}->n{b} failed in a calm cluster: {e:?}"
                    ));
                }
            }
        }
    }

    pub(crate) async fn op_call(&mut self) {
        let prefer_alive = self.rng.chance(75);
        let Some(pid) = self.pick_worker(prefer_alive) else {
            return;
        };
        let a = self.rng.below(NODES);
        let alive_before = self.alive(&pid);
        let calm_before = self.calm();
        let started = Instant::now();
        let r = self.ping(a, &pid).await;
        let took = started.elapsed();
        let alive_after = self.alive(&pid);
        let calm_after = self.calm();
        log(format!(
            "#{} call n{a} -> {pid} (alive {alive_before}/{alive_after}) = {r:?} ({took:?})",
            self.step
        ));
        let calm = calm_before && calm_after;
        match r {
            None => self.violation(format!("call n{a} -> {pid} hung past 8 s")),
            Some(Ok(_)) if !alive_before => {
                self.violation(format!("call n{a} -> dead {pid} got a reply"))
            }
            Some(Ok(_)) => {}
            Some(Err(CallError::Timeout { .. })) => self.violation(format!(
                "call n{a} -> {pid} (alive {alive_before}/{alive_after}, calm {calm}) timed out"
            )),
            Some(Err(CallError::NoProc { .. })) => {
                if alive_before && alive_after {
                    self.violation(format!("call n{a} -> live {pid} got NoProc"));
                }
            }
            Some(Err(CallError::NoConnection { .. })) => {
                if calm {
                    self.violation(format!(
                        "call n{a} -> {pid} (alive {alive_before}) got NoConnection in a calm cluster"
                    ));
                }
            }
            Some(Err(CallError::Exited(reason))) => {
                if alive_after || !alive_before {
                    self.violation(format!(
                        "call n{a} -> {pid} (alive {alive_before}/{alive_after}) got Exited({reason:?})"
                    ));
                }
            }
            Some(Err(e)) => self.violation(format!("call n{a} -> {pid}: unexpected {e:?}")),
        }
        // Not waiting for the 5 s call timeout, however busy the machine.
        if calm && took > Duration::from_secs(4) {
            self.violation(format!(
                "call n{a} -> {pid} took {took:?} in a calm cluster"
            ));
        }
    }

    pub(crate) fn op_cast(&mut self) {
        let Some((pid, a)) = self.pick_target() else {
            return;
        };
        let alive = self.alive(&pid);
        let calm = self.calm();
        let r = match self.worker_ref(a, &pid) {
            Some(w) => w.bump(),
            None => Err(SendError::NoProc {
                target: noex::Target::Pid(pid.clone()),
            }),
        };
        log(format!(
            "#{} cast n{a} -> {pid} (alive {alive}) = {r:?}",
            self.step
        ));
        match r {
            Ok(()) => {}
            Err(SendError::NoProc { .. }) if !alive => {}
            Err(SendError::NoConnection { .. }) if !calm => {}
            Err(e) => {
                if self.alive(&pid) {
                    self.violation(format!("cast n{a} -> live {pid} (calm {calm}): {e:?}"))
                }
            }
        }
    }
    pub(crate) async fn op_stop(&mut self) {
        let Some((pid, a)) = self.pick_target() else {
            return;
        };
        let reason = match self.rng.below(3) {
            0 => ExitReason::Normal,
            1 => ExitReason::Shutdown,
            _ => ExitReason::Error("chaos stop".into()),
        };
        let alive_before = self.alive(&pid);
        let calm_before = self.calm();
        let r = match self.worker_ref(a, &pid) {
            Some(w) => bounded(Duration::from_secs(9), w.stop(reason.clone())).await,
            None => Some(Err(SendError::NoProc {
                target: noex::Target::Pid(pid.clone()),
            })),
        };
        let alive_after = self.alive(&pid);
        let calm = calm_before && self.calm();
        log(format!(
            "#{} stop n{a} -> {pid} {reason:?} (alive {alive_before}/{alive_after}) = {r:?}",
            self.step
        ));
        match r {
            None => self.violation(format!("stop n{a} -> {pid} hung past 9 s")),
            Some(Ok(ended)) => {
                if alive_after {
                    self.violation(format!("stop n{a} -> {pid} = Ok({ended:?}), still alive"));
                }
                if !alive_before {
                    self.violation(format!("stop n{a} -> dead {pid} = Ok({ended:?})"));
                }
            }
            Some(Err(SendError::NoProc { .. })) => {
                if alive_before && alive_after {
                    self.violation(format!("stop n{a} -> live {pid} = NoProc"));
                }
            }
            Some(Err(SendError::NoConnection { .. })) if !calm => {}
            Some(Err(e)) => self.violation(format!("stop n{a} -> {pid} (calm {calm}): {e:?}")),
        }
    }

    pub(crate) async fn op_crash(&mut self) {
        let Some((pid, a)) = self.pick_target() else {
            return;
        };
        let alive_before = self.alive(&pid);
        let calm_before = self.calm();
        let r = match self.worker_ref(a, &pid) {
            Some(w) => bounded(Duration::from_secs(8), w.crash()).await,
            None => Some(Err(CallError::NoProc {
                target: noex::Target::Pid(pid.clone()),
            })),
        };
        let calm = calm_before && self.calm();
        log(format!(
            "#{} crash n{a} -> {pid} (alive {alive_before}) = {r:?}",
            self.step
        ));
        match r {
            None => self.violation(format!("crash call n{a} -> {pid} hung")),
            Some(Ok(())) => self.violation(format!("crash call n{a} -> {pid} returned Ok")),
            Some(Err(CallError::Exited(ExitReason::Panic(_)))) if alive_before => {}
            Some(Err(CallError::NoProc { .. })) if !alive_before || !calm || !self.alive(&pid) => {}
            Some(Err(CallError::NoConnection { .. })) if !calm => {}
            // The worker may end meanwhile (a link to a lost node).
            Some(Err(CallError::Exited(_))) if !calm => {}
            Some(Err(e)) => self.violation(format!(
                "crash call n{a} -> {pid} (alive {alive_before}, calm {calm}): {e:?}"
            )),
        }
        if alive_before && calm && self.alive(&pid) {
            self.violation(format!("{pid} still alive after its crash"));
        }
    }

    pub(crate) fn op_kill(&mut self) {
        let Some((pid, a)) = self.pick_target() else {
            return;
        };
        let alive = self.alive(&pid);
        let calm = self.calm();
        let sent = self.nodes[a].kill(&pid);
        log(format!(
            "#{} kill n{a} -> {pid} (alive {alive}) = {sent}",
            self.step
        ));
        if alive && calm && !sent {
            self.violation(format!(
                "kill n{a} -> live {pid} in a calm cluster not sent"
            ));
        }
    }
}
