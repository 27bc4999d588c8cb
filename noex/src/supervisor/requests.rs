//! What a running supervisor is asked (the `Request`s of its client API): start, stop,
//! restart and delete children, and report them.

use std::any::{Any, TypeId};

use super::client::{ChildCounts, ChildInfo, ChildKey, SupervisorError};
use super::held::Held;
use super::placement::{DistributionStats, NodeSelector};
use super::spec::{ChildKind, ChildSpec, Restart, Strategy};
use super::{start, validate_child, Child, Supervisor};
use crate::events::LifecycleEvent;
use crate::server::Ctx;
use crate::{ExitReason, Pid};

impl Supervisor {
    pub(super) async fn start_child(
        &mut self,
        ctx: &mut Ctx<Self>,
        spec: ChildSpec,
    ) -> Result<(Pid, Box<dyn Any + Send>), SupervisorError> {
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

    pub(super) async fn start_simple(
        &mut self,
        ctx: &mut Ctx<Self>,
        args: Box<dyn Any + Send>,
        behavior: TypeId,
        behavior_name: &'static str,
    ) -> Result<(Pid, Box<dyn Any + Send>), SupervisorError> {
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
        let spec = match template.backoff {
            Some(backoff) => spec.backoff(backoff),
            None => spec,
        };
        self.add_started(ctx, spec).await
    }

    /// Starts a child from a new spec and appends it.
    pub(super) async fn add_started(
        &mut self,
        ctx: &mut Ctx<Self>,
        spec: ChildSpec,
    ) -> Result<(Pid, Box<dyn Any + Send>), SupervisorError> {
        let placement = self.placement.as_mut().map(|p| (p, &self.children[..]));
        match start(ctx, &spec, placement).await {
            Ok(started) => {
                self.children.push(Child::new(spec, started.pid.clone()));
                Ok((started.pid, started.server))
            }
            Err(failed) => {
                self.publish(ctx, || LifecycleEvent::ChildStartFailed {
                    supervisor: ctx.pid().clone(),
                    child: spec.id.clone(),
                    error: failed.error.clone(),
                });
                Err(SupervisorError::StartFailed {
                    id: spec.id,
                    error: failed.error,
                })
            }
        }
    }

    pub(super) async fn terminate_child(
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
        let (pid, started) = (
            self.children[index].pid.clone(),
            self.children[index].started,
        );
        let stopped = self.stop_child(ctx, index).await;
        if let (Some(pid), Some(reason), Some(_)) = (pid, stopped, &self.placement) {
            if Self::lost_with_node(ctx, &pid, started, &reason) {
                // Found lost with its node as it was stopped: it may run there still, and
                // is not started again (by request, or with its group) until that is safe.
                let ended = reason != ExitReason::NoConnection;
                self.hold_lost(ctx, index, pid.node(), ended, Held::GroupMigration);
            }
        }
        // No pending restart brings it back.
        self.children[index].held = None;
        self.children[index].terminated = true;
        if self.strategy == Strategy::SimpleOneForOne
            || self.children[index].spec.restart == Restart::Temporary
        {
            self.children.remove(index);
        }
        Ok(())
    }

    pub(super) async fn restart_child(
        &mut self,
        ctx: &mut Ctx<Self>,
        id: String,
    ) -> Result<(Pid, Box<dyn Any + Send>), SupervisorError> {
        if self.strategy == Strategy::SimpleOneForOne {
            return Err(SupervisorError::SimpleOneForOne);
        }
        let index = self
            .position(&id)
            .ok_or_else(|| SupervisorError::NotFound(ChildKey::Id(id.clone())))?;
        if self.children[index].pid.is_some() {
            return Err(SupervisorError::Running(id));
        }
        if !self.safe_to_start(ctx, index) {
            // Started now, it could run beside its last run (see `placement`).
            let node = self.children[index].lost.as_ref().map(|l| l.node.clone());
            let node = node.unwrap_or_default();
            return Err(SupervisorError::WaitingToMove { id, node });
        }
        match self.start_at(ctx, index).await {
            Ok(started) => {
                self.record_started(index, started.pid.clone());
                Ok((started.pid, started.server))
            }
            Err(failed) => {
                self.publish(ctx, || LifecycleEvent::ChildStartFailed {
                    supervisor: ctx.pid().clone(),
                    child: id.clone(),
                    error: failed.error.clone(),
                });
                if let Some(node) = &failed.lost {
                    // It may run where it was asked to start: it starts by itself once
                    // that is safe (it was asked for), as a child lost with that node.
                    self.children[index].terminated = false;
                    self.hold_lost(ctx, index, node, false, Held::GroupMigration);
                }
                Err(SupervisorError::StartFailed {
                    id,
                    error: failed.error,
                })
            }
        }
    }

    pub(super) fn delete_child(&mut self, id: String) -> Result<(), SupervisorError> {
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

    pub(super) fn which_children(&self) -> Vec<ChildInfo> {
        self.children
            .iter()
            .map(|c| ChildInfo {
                id: c.spec.id.clone(),
                pid: c.pid.clone(),
                node: c.pid.as_ref().map(|pid| pid.node().to_owned()),
                restarting: c.held.is_some(),
                kind: c.spec.kind,
                restart: c.spec.restart,
                restarts: c.restarts,
            })
            .collect()
    }

    pub(super) fn count_children(&self) -> ChildCounts {
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

    pub(super) fn set_selector(&mut self, selector: NodeSelector) -> Result<(), SupervisorError> {
        let placement = self
            .placement
            .as_mut()
            .ok_or(SupervisorError::NotDistributed)?;
        placement.selector = selector;
        Ok(())
    }

    pub(super) fn distribution(&self) -> Result<DistributionStats, SupervisorError> {
        let placement = self
            .placement
            .as_ref()
            .ok_or(SupervisorError::NotDistributed)?;
        let mut children_per_node = std::collections::BTreeMap::new();
        for pid in self.children.iter().filter_map(|c| c.pid.as_ref()) {
            *children_per_node.entry(pid.node().to_owned()).or_insert(0) += 1;
        }
        Ok(DistributionStats {
            restarts: placement.restarts,
            migrations: placement.migrations,
            children_per_node,
            waiting_for_majority: self.children.iter().filter(|c| c.held.is_some()).count(),
            selector: format!("{:?}", placement.selector),
        })
    }
}
