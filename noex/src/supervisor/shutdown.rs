//! Stopping children by their shutdown spec, one at a time or all at once.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

use futures_lite::future::poll_once;

use super::spec::Shutdown;
use crate::node::{stop_process, NodeInner};
use crate::process::Signal;
use crate::{ExitReason, Pid};

/// Stops one child by its shutdown spec and waits until it has ended; returns its reason.
///
/// The caller keeps its link to the child until then (see `Supervisor::stop_child`).
pub(crate) async fn stop_child(node: &NodeInner, pid: &Pid, shutdown: Shutdown) -> ExitReason {
    if node.is_remote(pid) {
        return stop_remote_child(node, pid, shutdown).await;
    }
    let Some(child) = node.resolve(pid) else {
        return ExitReason::NoProc;
    };
    let core = child.core();
    let grace = match shutdown {
        Shutdown::BrutalKill => {
            core.signal(Signal::Die(ExitReason::Killed));
            return core.exited().await;
        }
        Shutdown::Timeout(grace) => Some(grace),
        Shutdown::Infinity => None,
    };
    // `Err`: it ended meanwhile, on its own.
    match stop_process(core, ExitReason::Shutdown, grace).await {
        Ok(reason) => reason,
        Err(_) => core.exited().await,
    }
}

/// [`stop_child`] for a child on another node (a distributed supervisor's): the same
/// steps, over the connection; a lost node's child has ended already (`NoConnection`).
async fn stop_remote_child(node: &NodeInner, pid: &Pid, shutdown: Shutdown) -> ExitReason {
    let grace = match shutdown {
        Shutdown::BrutalKill => {
            // The monitor first (the first poll sends it), then the kill: the child's end
            // is then seen as the kill's (a monitor after it would find no process).
            let mut exited = std::pin::pin!(node.exited(pid));
            if let Some(reason) = poll_once(exited.as_mut()).await {
                return reason;
            }
            node.kill(pid);
            return exited.await;
        }
        Shutdown::Timeout(grace) => Some(grace),
        Shutdown::Infinity => None,
    };
    match node.stop(pid, ExitReason::Shutdown, grace).await {
        Ok(reason) => reason,
        Err(_) => node.exited(pid).await,
    }
}

/// Stops several children at once (simple_one_for_one), each by its own spec.
pub(crate) async fn stop_children_concurrently(node: &NodeInner, children: Vec<(Pid, Shutdown)>) {
    let mut stops: Vec<Option<Pin<Box<dyn Future<Output = ExitReason> + Send + '_>>>> = children
        .into_iter()
        .map(|(pid, shutdown)| {
            let stop: Pin<Box<dyn Future<Output = ExitReason> + Send + '_>> =
                Box::pin(async move { stop_child(node, &pid, shutdown).await });
            Some(stop)
        })
        .collect();
    poll_fn(|cx| {
        for slot in stops.iter_mut() {
            if let Some(stop) = slot {
                if stop.as_mut().poll(cx).is_ready() {
                    *slot = None;
                }
            }
        }
        if stops.iter().all(Option::is_none) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}
