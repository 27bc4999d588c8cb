//! Faults: a node isolated, a link cut, one direction of a link silenced or stalled,
//! connections refused, a node restarted under its id (shut down first, or replaced while
//! it still runs); and the heal that undoes them all.

use std::time::{Duration, Instant};

use noex::{CallError, Node};

use crate::behaviours::{Worker, WorkerApi};
use crate::common::probe;
use crate::harness::{bounded, config, id, log, monitor_groups};
use crate::proxy::proxy;
use crate::{H, NODES};

impl H {
    pub(crate) fn cut_pair(&mut self, a: usize, b: usize) {
        let (ia, ib) = (self.ids[a].clone(), self.ids[b].clone());
        self.nodes[a].faults().partition(&ib, true);
        self.nodes[b].faults().partition(&ia, true);
        self.cut.insert((a.min(b), a.max(b)));
    }

    pub(crate) fn fault_isolate(&mut self) {
        let s = self.rng.below(NODES);
        log(format!("#{} FAULT isolate n{s}", self.step));
        for o in 0..NODES {
            if o != s {
                self.cut_pair(s, o);
            }
        }
    }

    pub(crate) fn fault_cut_pair(&mut self) {
        let a = self.rng.below(NODES);
        let b = (a + 1 + self.rng.below(NODES - 1)) % NODES;
        log(format!("#{} FAULT cut n{a} - n{b}", self.step));
        self.cut_pair(a, b);
    }

    pub(crate) fn fault_silence(&mut self) {
        let a = self.rng.below(NODES);
        let b = (a + 1 + self.rng.below(NODES - 1)) % NODES;
        let peer = self.ids[b].clone();
        self.drain_events();
        let before = (self.losses[b][a], self.losses[a][b]);
        let done = self.nodes[a].faults().silence(&peer, true);
        log(format!(
            "#{} FAULT silence n{a} -> n{b} ({done})",
            self.step
        ));
        if done {
            self.silenced.entry((a, b)).or_insert(before);
        }
    }

    pub(crate) fn fault_stall(&mut self) {
        let a = self.rng.below(NODES);
        let b = (a + 1 + self.rng.below(NODES - 1)) % NODES;
        let peer = self.ids[b].clone();
        let done = self.nodes[a].faults().stall(&peer, true);
        log(format!("#{} FAULT stall n{a} -> n{b} ({done})", self.step));
        if done {
            self.stalled.insert((a, b));
        }
    }

    pub(crate) fn fault_bounce(&mut self) {
        let s = self.rng.below(NODES);
        log(format!("#{} FAULT refuse+disconnect n{s}", self.step));
        self.nodes[s].faults().refuse_connections(true);
        self.refusing.insert(s);
        for o in 0..NODES {
            if o != s {
                let peer = self.ids[o].clone();
                self.nodes[s].faults().disconnect(&peer);
            }
        }
    }

    pub(crate) async fn fault_restart(&mut self) {
        // Never node 0: the supervisor runs there.
        let s = 1 + self.rng.below(NODES - 1);
        // A node bound to another address than the one it advertises (replaced, below)
        // is no seed: nobody reaches it at its address.
        let seeds: Vec<usize> = (0..NODES)
            .filter(|&o| o != s && self.alt_bound != Some(o))
            .collect();
        let seed_slot = seeds[self.rng.below(seeds.len())];
        let old_inc = self.nodes[s].incarnation();
        log(format!(
            "#{} FAULT restart n{s} (seed n{seed_slot}), old incarnation {old_inc}",
            self.step
        ));
        self.drain();
        // Either shut down first (peers see its goodbye), or replaced: the new
        // incarnation (bound to another loopback address, advertising the same one)
        // connects while the old one still runs, as after a crash its peers did not
        // notice yet; the old one is shut down after.
        // At most one node at a time is replaced (behind the proxy).
        let replace = self.alt_bound.is_none_or(|o| o == s) && self.rng.chance(40);
        if self.alt_bound == Some(s) {
            // Its proxy holds its advertised port: gone with it.
            if let Some(proxy) = self.alt_proxy.take() {
                proxy.cancel().await;
            }
        }
        self.alt_bound = match (replace, self.alt_bound) {
            (true, _) => Some(s),
            (false, Some(o)) if o == s => None,
            (false, other) => other,
        };
        let old = self.nodes[s].clone();
        let port = self.ids[s].port();
        let bind: std::net::SocketAddr = if replace {
            // Frozen as a crashed machine is: no new connection either way (its open
            // ones stay until replaced). A live old incarnation that could reconnect
            // would be two live nodes claiming one id, another matter.
            old.faults().refuse_connections(true);
            self.alt_ip = if self.alt_ip >= 250 {
                2
            } else {
                self.alt_ip + 1
            };
            format!("127.0.0.{}:{port}", self.alt_ip).parse().unwrap()
        } else {
            old.shutdown();
            format!("127.0.0.1:{port}").parse().unwrap()
        };
        log(format!(
            "  n{s}: {} at {bind}",
            if replace { "replaced" } else { "restarted" }
        ));
        let deadline = Instant::now() + Duration::from_secs(5);
        let node = loop {
            let cfg = config(&format!("n{s}"))
                .bind(bind)
                .advertise_host("127.0.0.1")
                .seed(self.ids[seed_slot].to_string());
            match Node::start(cfg).await {
                Ok(node) => break node,
                Err(e) => {
                    if Instant::now() > deadline {
                        panic!("n{s} did not restart: {e}");
                    }
                    smol::Timer::after(Duration::from_millis(20)).await;
                }
            }
        };
        assert_eq!(id(&node), self.ids[s], "restarted under its id");
        assert_ne!(node.incarnation(), old_inc);
        if replace {
            let ms = self.rng.below(300) as u64;
            smol::Timer::after(Duration::from_millis(ms)).await;
            old.shutdown();
            log(format!("  n{s}: old incarnation shut down after {ms} ms"));
            let advertised = format!("127.0.0.1:{port}").parse().unwrap();
            self.alt_proxy = Some(proxy(advertised, bind));
        }
        self.events[s] = node.cluster_events();
        self.group_monitors[s] = monitor_groups(&node);
        self.watchers[s] = probe(&node, true).await;
        log(format!(
            "  n{s} is back as incarnation {} (dialling {})",
            node.incarnation(),
            node.faults().dials()
        ));
        self.nodes[s] = node;
        self.losses[s] = vec![0; NODES];
        self.downs[s].clear();
        self.exits[s].clear();
        self.nodedowns[s] = vec![0; NODES];
        self.refusing.remove(&s);
        self.silenced.retain(|(a, b), _| *a != s && *b != s);
        self.stalled.retain(|(a, b)| *a != s && *b != s);
    }

    /// Heals every fault and waits until the cluster is whole again.
    pub(crate) async fn heal(&mut self) -> bool {
        let dials: Vec<usize> = self.nodes.iter().map(|n| n.faults().dials()).collect();
        log(format!("  heal: dialling {dials:?}"));
        // A silenced link is not un-silenced (frames dropped on a connection that lives
        // on is no network failure: TCP never loses the middle of a stream): wait until
        // its reader has declared the writer down, which closes that connection — or
        // until its writer lost the reader (its connection was closed already, by the
        // reader or a fault, and the next one is not silenced).
        let deadline = Instant::now() + Duration::from_secs(4);
        loop {
            self.drain_events();
            let waiting: Vec<(usize, usize)> = self
                .silenced
                .iter()
                .filter(|((a, b), before)| (self.losses[*b][*a], self.losses[*a][*b]) == **before)
                .map(|(pair, _)| *pair)
                .collect();
            if waiting.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                self.violation(format!(
                    "silenced links not closed within 4 s (writer, reader): {waiting:?}"
                ));
                break;
            }
            smol::Timer::after(Duration::from_millis(10)).await;
        }
        for (a, b) in std::mem::take(&mut self.stalled) {
            let peer = self.ids[b].clone();
            self.nodes[a].faults().stall(&peer, false);
        }
        for a in 0..NODES {
            self.nodes[a].faults().refuse_connections(false);
            for b in 0..NODES {
                if a != b {
                    let peer = self.ids[b].clone();
                    self.nodes[a].faults().partition(&peer, false);
                }
            }
        }
        self.cut.clear();
        self.refusing.clear();
        self.silenced.clear();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.fully_connected() {
            if Instant::now() > deadline {
                let view: Vec<usize> = self
                    .nodes
                    .iter()
                    .map(|n| n.connected_nodes().len())
                    .collect();
                self.drain();
                let dials: Vec<usize> = self.nodes.iter().map(|n| n.faults().dials()).collect();
                let members: Vec<Vec<Option<usize>>> = self
                    .nodes
                    .iter()
                    .map(|n| {
                        n.members()
                            .iter()
                            .map(|m| self.slot_of(m.as_str()))
                            .collect()
                    })
                    .collect();
                self.violation(format!(
                    "the cluster did not re-form within 15 s: connected {view:?}, dialling {dials:?}, members {members:?}"
                ));
                return false;
            }
            smol::Timer::after(Duration::from_millis(10)).await;
        }
        self.drain();
        true
    }

    /// Heals, then waits until the cluster is settled: every link carries a round trip
    /// both ways (so no heartbeat timeout is pending on it) and no node lost a peer
    /// meanwhile. `false` (with a violation) if it does not within 20 s.
    pub(crate) async fn settle(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if !self.heal().await {
                return false;
            }
            self.drain_events();
            let losses = self.losses.clone();
            let mut answered = true;
            for a in 0..NODES {
                for b in (0..NODES).filter(|&b| b != a) {
                    // A name nobody holds: the peer answers NoProc.
                    let nobody = self.nodes[a].named_on::<Worker>("chaos-nobody", &self.ids[b]);
                    let r = bounded(Duration::from_secs(5), nobody.ping()).await;
                    answered &= matches!(r, Some(Err(CallError::NoProc { .. })));
                }
            }
            self.drain_events();
            if answered && self.losses == losses && self.fully_connected() {
                return true;
            }
            if Instant::now() > deadline {
                self.violation("the cluster did not settle within 20 s".into());
                return false;
            }
            log("  settle: a link was lost meanwhile; again".into());
        }
    }
}
