//! Global names: the claims that register a name (see the module docs of `global`), and
//! how this node applies registrations to its replica (`replica.rs`).

use std::sync::Arc;

use super::ask::Question;
use super::key::Key;
use super::protocol::{ForwardOp, ForwardResult, GlobalMessage, NameRecord};
use super::replica::{record, Behavior, Change, Entry, Stamp};
use super::verdict::Verdict;
use super::{Global, GlobalEvent, State, GLOBAL_TIMEOUT};
use crate::dist::peer::Peer;
use crate::dist::wire::WireMessage;
use crate::error::GlobalError;
use crate::node::NodeInner;
use crate::process::send_exit;
use crate::server::deadline::Deadline;
use crate::{ExitReason, Pid};

/// A claim of this node to a name, waiting for grants.
pub(crate) struct Claim {
    pub(super) name: Arc<str>,
    time: u64,
    pid: Pid,
    /// The nodes whose grant is awaited.
    pub(super) waiting: Vec<Arc<str>>,
    /// Claims of other nodes to the name whose grant waits for this one: (their
    /// connection, their id).
    pub(super) deferred: Vec<(Arc<Peer>, u64)>,
    done: Option<oneshot::Sender<Result<(), GlobalError>>>,
}

impl Claim {
    /// `true` if this claim goes before a claim stamped `(time, node)`.
    fn precedes(&self, own: &str, time: u64, node: &str) -> bool {
        (self.time, own) < (time, node)
    }
}

fn grant(peer: &Peer, id: u64) {
    let message = WireMessage::Global(Box::new(GlobalMessage::Grant { id }));
    let _ = peer.queue.push_control(&message);
}

/// Ends a claim that was not settled when its registration stopped waiting (a timeout, or
/// the future was dropped): the grants it kept back go out.
struct Pending<'a> {
    global: &'a Global,
    id: u64,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let mut state = self.global.state();
        if let Some(claim) = state.claims.remove(&self.id) {
            // Nobody waits for the result any more.
            self.global.finish(&mut state, claim, Ok(()));
        }
    }
}

impl Global {
    /// Registers `name` for `pid`, cluster-wide (see the module docs). A process of
    /// another node is registered by its node.
    pub(crate) async fn register(
        &self,
        node: &NodeInner,
        name: &str,
        pid: &Pid,
    ) -> Result<(), GlobalError> {
        super::check_name(name)?;
        super::check_visible(node)?;
        if node.is_remote(pid) {
            let op = ForwardOp::Register {
                name: name.to_owned(),
                serial: pid.serial(),
            };
            return match self.forward(node, pid, op, name).await? {
                ForwardResult::Done(_) => Ok(()),
                other => Err(from_forwarded(other, name, pid)),
            };
        }
        let registered = Deadline::after(GLOBAL_TIMEOUT)
            .run(self.claim(node, name, pid))
            .await;
        registered.unwrap_or_else(|| {
            Err(GlobalError::Timeout {
                name: name.to_owned(),
                timeout: GLOBAL_TIMEOUT,
            })
        })
    }

    async fn claim(&self, node: &NodeInner, name: &str, pid: &Pid) -> Result<(), GlobalError> {
        if node.is_shutting_down() {
            return Err(GlobalError::ShuttingDown);
        }
        let (id, settled) = loop {
            let listener = {
                let mut state = self.state();
                if let Some(entry) = self.names().get(name) {
                    return match entry.pid == *pid {
                        true => Ok(()),
                        false => Err(GlobalError::NameTaken {
                            name: name.to_owned(),
                            holder: entry.pid.clone(),
                        }),
                    };
                }
                if node.resolve(pid).is_none() {
                    return Err(GlobalError::NoProc { pid: pid.clone() });
                }
                if state.claimed.contains_key(name) {
                    // Another registration of this node claims the name: after it.
                    self.settled.listen()
                } else {
                    break self.start_claim(node, &mut state, name, pid);
                }
            };
            listener.await;
        };
        let _pending = Pending { global: self, id };
        settled.await.unwrap_or(Err(GlobalError::ShuttingDown))
    }

    /// Sends a claim to every peer; settles it at once if there is none.
    fn start_claim(
        &self,
        node: &NodeInner,
        state: &mut State,
        name: &str,
        pid: &Pid,
    ) -> (u64, oneshot::Receiver<Result<(), GlobalError>>) {
        let id = state.next_id();
        let time = self.tick();
        let name: Arc<str> = Arc::from(name);
        let peers = node.cluster.get().map(|c| c.peers()).unwrap_or_default();
        let claim = GlobalMessage::Claim {
            id,
            name: name.to_string(),
            time,
        };
        let claim = WireMessage::Global(Box::new(claim));
        let mut waiting = Vec::with_capacity(peers.len());
        for peer in &peers {
            if peer.queue.push_control(&claim).is_ok() {
                waiting.push(peer.id.as_arc());
            }
        }
        let (tx, rx) = oneshot::channel();
        state.claimed.insert(name.clone(), id);
        state.claims.insert(
            id,
            Claim {
                name,
                time,
                pid: pid.clone(),
                waiting,
                deferred: Vec::new(),
                done: Some(tx),
            },
        );
        self.settle_if_granted(node, state, id);
        (id, rx)
    }

    /// A peer claims `name`: granted now, once this node's earlier claim is settled, or
    /// once the node holding the name has answered (see `ask.rs`).
    pub(super) fn claimed(
        &self,
        node: &NodeInner,
        state: &mut State,
        claim: (&Arc<Peer>, u64),
        name: &str,
        time: u64,
    ) {
        self.observe(time);
        state.claims_taken += 1;
        self.consider(node, state, claim, (name, time), None);
    }

    /// Decides on a peer's claim: asks the holder's node (not `skip`, which has just
    /// answered) if a third node's process holds the name, else grants it now or keeps
    /// it back behind this node's earlier claim.
    pub(super) fn consider(
        &self,
        node: &NodeInner,
        state: &mut State,
        (peer, id): (&Arc<Peer>, u64),
        (name, time): (&str, u64),
        skip: Option<&str>,
    ) {
        // A name held here: the claimant hears of it before the grant, whatever its
        // replica says (it may have dropped the record as a conflict's loser). Held on a
        // third node: that node is asked first.
        let (held, owner) = match self.names().get(name) {
            Some(entry) if entry.pid.node() == &*node.name => {
                (Some(GlobalMessage::Registered(record(name, entry))), None)
            }
            Some(entry) => (None, Some(entry.pid.node_arc())),
            None => (None, None),
        };
        if let Some(held) = held {
            let _ = peer
                .queue
                .push_control(&WireMessage::Global(Box::new(held)));
        }
        let third = |owner: &Arc<str>| ![Some(peer.id.as_str()), skip].contains(&Some(owner));
        if let Some(asked) = owner.filter(third) {
            let question = Question {
                claimant: peer.clone(),
                claim: id,
                time,
                name: Arc::from(name),
                asked,
            };
            if self.ask(node, state, question) {
                return;
            }
        }
        if let Some(mine) = state.claimed.get(name).copied() {
            if let Some(claim) = state.claims.get_mut(&mine) {
                if claim.precedes(&node.name, time, peer.id.as_str()) {
                    claim.deferred.push((peer.clone(), id));
                    return;
                }
            }
        }
        grant(peer, id);
    }

    /// A peer granted this node's claim `id`.
    pub(super) fn granted(&self, node: &NodeInner, state: &mut State, peer: &Peer, id: u64) {
        if let Some(claim) = state.claims.get_mut(&id) {
            claim.waiting.retain(|n| **n != *peer.id.as_str());
            self.settle_if_granted(node, state, id);
        }
    }

    /// Every claim under way now also awaits the grant of `peer`, just connected.
    pub(super) fn claims_meet(&self, state: &mut State, peer: &Peer) {
        let node = peer.id.as_arc();
        for (id, claim) in &mut state.claims {
            if claim.waiting.contains(&node) {
                continue;
            }
            let message = GlobalMessage::Claim {
                id: *id,
                name: claim.name.to_string(),
                time: claim.time,
            };
            if peer
                .queue
                .push_control(&WireMessage::Global(Box::new(message)))
                .is_ok()
            {
                claim.waiting.push(node.clone());
            }
        }
    }

    /// `peer` is lost: its grants are no longer awaited, and its claims no longer wait
    /// for this node's.
    pub(super) fn claims_lose(&self, node: &NodeInner, state: &mut State, peer: &Peer) {
        let lost = peer.id.as_str();
        let mut ready = Vec::new();
        for (id, claim) in &mut state.claims {
            claim.deferred.retain(|(p, _)| p.id.as_str() != lost);
            let before = claim.waiting.len();
            claim.waiting.retain(|n| &**n != lost);
            if claim.waiting.len() != before {
                ready.push(*id);
            }
        }
        for id in ready {
            self.settle_if_granted(node, state, id);
        }
    }

    /// Settles claim `id` if every grant is in: registers the name if it is free, tells
    /// every peer, then lets the claims kept back go.
    fn settle_if_granted(&self, node: &NodeInner, state: &mut State, id: u64) {
        if !state.claims.get(&id).is_some_and(|c| c.waiting.is_empty()) {
            return;
        }
        let Some(claim) = state.claims.remove(&id) else {
            return;
        };
        let result = self.commit(node, &claim);
        self.finish(state, claim, result);
    }

    /// Ends `claim`, taken out of the claims under way: the name may be claimed again,
    /// the grants it kept back go, and its registration learns `result`.
    pub(super) fn finish(
        &self,
        state: &mut State,
        mut claim: Claim,
        result: Result<(), GlobalError>,
    ) {
        state.claimed.remove(&claim.name);
        for (peer, id) in claim.deferred.drain(..) {
            grant(&peer, id);
        }
        if let Some(done) = claim.done.take() {
            let _ = done.send(result);
        }
        self.settled.notify(usize::MAX);
    }

    fn commit(&self, node: &NodeInner, claim: &Claim) -> Result<(), GlobalError> {
        let name = &claim.name;
        let mut names = self.names();
        if let Some(entry) = names.get(name) {
            return match entry.pid == claim.pid {
                true => Ok(()),
                false => Err(GlobalError::NameTaken {
                    name: name.to_string(),
                    holder: entry.pid.clone(),
                }),
            };
        }
        let no_proc = || GlobalError::NoProc {
            pid: claim.pid.clone(),
        };
        let process = node.resolve(&claim.pid).ok_or_else(no_proc)?;
        if !process.core().add_global_name(name) {
            return Err(no_proc());
        }
        let entry = Entry {
            pid: claim.pid.clone(),
            stamp: Stamp {
                time: claim.time,
                node: node.name.clone(),
            },
            behavior: Behavior::of(process.as_ref()),
        };
        let registered = GlobalMessage::Registered(record(name, &entry));
        names.held.insert(Key::new(name), entry);
        drop(names);
        self.broadcast(node, registered);
        self.events.publish(GlobalEvent::Registered {
            name: name.to_string(),
            pid: claim.pid.clone(),
        });
        Ok(())
    }

    /// Removes `name` if the process `pid` of this node holds it, here and on every peer;
    /// `true` if it did.
    pub(crate) fn unregister(&self, node: &NodeInner, name: &str, pid: &Pid) -> bool {
        let _state = self.state();
        let change = self.names().release(name, pid);
        if matches!(change, Change::None) {
            return false;
        }
        if let Some(process) = node.resolve(pid) {
            process.core().remove_global_name(name);
        }
        self.broadcast(
            node,
            GlobalMessage::Unregistered {
                name: name.to_owned(),
                serial: pid.serial(),
            },
        );
        self.released(name, pid, change);
        true
    }

    /// A name held by a process of `peer`'s node: added to the replica, or — if another
    /// process holds the name — settled by the conflict rule.
    pub(super) fn merge(&self, node: &NodeInner, peer: &Peer, record: NameRecord) {
        self.observe(record.time);
        let pid = peer.pid_of(record.serial);
        let stamp = Stamp {
            time: record.time,
            node: peer.id.as_arc(),
        };
        let name: Arc<str> = Arc::from(record.name);
        let entry = Entry {
            pid: pid.clone(),
            stamp,
            behavior: Behavior {
                name: Arc::from(record.behavior),
                hash: record.hash,
            },
        };
        let mut names = self.names();
        let loser = match names.held.get(name.as_bytes()) {
            None => None,
            Some(held) if held.pid == pid => return,
            Some(held) if held.stamp <= entry.stamp => {
                // The holder keeps it. The newcomer's node applies the same rule once it
                // hears of the holder (told now, in case it does not reach the holder's
                // node); until then its record waits here, in case the holder goes first.
                let winner = held.pid.clone();
                let verdict = Verdict::new(&name, &entry, held);
                names.shadow(&name, entry);
                drop(names);
                verdict.tell(node);
                self.events.publish(GlobalEvent::Conflict {
                    name: name.to_string(),
                    winner,
                    loser: pid,
                });
                return;
            }
            Some(held) => Some(held.pid.clone()),
        };
        let replaced = names.held.insert(Key::new(&name), entry);
        let Some(loser) = loser else {
            drop(names);
            self.events.publish(GlobalEvent::Registered {
                name: name.to_string(),
                pid,
            });
            return;
        };
        let local = loser.node() == &*node.name;
        let mut verdict = None;
        if let Some(replaced) = replaced.filter(|_| !local) {
            // Withdrawn by its own node once it hears of the winner (told now, in case it
            // does not reach the winner's node).
            verdict = names
                .get(&name)
                .map(|won| Verdict::new(&name, &replaced, won));
            names.shadow(&name, replaced);
        }
        drop(names);
        if let Some(verdict) = verdict {
            verdict.tell(node);
        }
        self.events.publish(GlobalEvent::Conflict {
            name: name.to_string(),
            winner: pid.clone(),
            loser: loser.clone(),
        });
        if local {
            self.lost(node, &name, &loser, &pid);
        }
    }

    /// Publishes what a release did to a name's holder.
    pub(super) fn released(&self, name: &str, pid: &Pid, change: Change) {
        match change {
            Change::None => {}
            Change::Free => self.events.publish(GlobalEvent::Unregistered {
                name: name.to_owned(),
                pid: pid.clone(),
            }),
            Change::Held(next) => {
                self.events.publish(GlobalEvent::Unregistered {
                    name: name.to_owned(),
                    pid: pid.clone(),
                });
                self.events.publish(GlobalEvent::Registered {
                    name: name.to_owned(),
                    pid: next,
                });
            }
        }
    }

    /// A process of this node lost `name` to `winner`: every peer is told, and so is the
    /// process, by an exit signal.
    pub(super) fn lost(&self, node: &NodeInner, name: &str, loser: &Pid, winner: &Pid) {
        self.broadcast(
            node,
            GlobalMessage::Unregistered {
                name: name.to_owned(),
                serial: loser.serial(),
            },
        );
        if let Some(process) = node.resolve(loser) {
            process.core().remove_global_name(name);
            tracing::warn!(%name, %loser, %winner, "global name conflict: the loser is told to exit");
            send_exit(
                process.as_ref(),
                winner,
                ExitReason::NameConflict(name.to_owned()),
                false,
            );
        }
    }
}

/// The error of a forwarded registration that did not succeed.
fn from_forwarded(result: ForwardResult, name: &str, pid: &Pid) -> GlobalError {
    match result {
        ForwardResult::Taken(holder) => GlobalError::NameTaken {
            name: name.to_owned(),
            holder,
        },
        ForwardResult::Timeout => GlobalError::Timeout {
            name: name.to_owned(),
            timeout: GLOBAL_TIMEOUT,
        },
        ForwardResult::ShuttingDown => GlobalError::NoConnection {
            node: pid.node().to_owned(),
        },
        ForwardResult::Hidden => GlobalError::HiddenNode {
            node: pid.node().to_owned(),
        },
        ForwardResult::NoProc | ForwardResult::Done(_) => GlobalError::NoProc { pid: pid.clone() },
    }
}
