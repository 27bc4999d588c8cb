//! The peer's messages a reader withholds while the peer is behind in reading its
//! replies.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::super::cluster::Cluster;
use super::super::inbound;
use super::super::monitor::{sender_key, Watcher};
use super::super::peer::Peer;
use super::super::wire::{RemoteSignal, WireMessage};
use super::{Ended, Handled, Reading};
use crate::MonitorRef;

/// Whom a withheld frame is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum For {
    /// A local process, by its key (see `monitor::sender_key`).
    Process(usize),
    /// Not known: a piece of a large message.
    Unknown,
    /// No process (one that does not run, a goodbye...).
    Nobody,
}

/// Whom `message`, withheld, is for.
pub(super) fn target(cluster: &Cluster, peer: &Peer, message: &WireMessage) -> For {
    let process = |process: Option<std::sync::Arc<dyn crate::process::AnyProcess>>| {
        process.map_or(For::Nobody, |process| For::Process(sender_key(&*process)))
    };
    let local = |serial: u64| process(cluster.node().and_then(|node| node.table.get(serial)));
    match message {
        WireMessage::Call { to, .. }
        | WireMessage::Cast { to, .. }
        | WireMessage::Info { to, .. } => process(inbound::resolve(cluster, to)),
        WireMessage::Trace(traced) => target(cluster, peer, &traced.message),
        WireMessage::Fragment { .. } => For::Unknown,
        WireMessage::Signal(signal) => match **signal {
            RemoteSignal::Exit { to, .. } => local(to),
            RemoteSignal::Down { monitor, .. } => {
                let watcher = match peer.ties().watching.get(&MonitorRef(monitor)) {
                    Some((Watcher::Process(serial), _)) => Some(*serial),
                    _ => None,
                };
                watcher.map_or(For::Nobody, local)
            }
            _ => For::Nobody,
        },
        _ => For::Nobody,
    }
}

/// The peer's messages the reader has read but not handled, in order, while the peer is
/// behind in reading its replies (`Outbound::holding_back`): a peer that calls without
/// reading its replies gets no more calls handled, and yet its heartbeats and the
/// acknowledgements that let this node's large replies drain still get through. At most
/// the outbound bound's worth of messages is withheld; past it the reader reads nothing
/// more (and a peer that then neither reads nor lets this node read is down after the
/// heartbeat timeout). Withheld messages are taken up, in order, as soon as the peer has
/// caught up — or, if it hangs up first, before its connection is reported down.
///
/// Each frame is kept with whom it is for, so that a reply to a call of a local process
/// can be preceded by the messages withheld for that process (see `Reading::withhold`).
#[derive(Default)]
pub(super) struct Withheld {
    frames: VecDeque<(Vec<u8>, For)>,
    bytes: usize,
    /// How many frames are withheld for each process, and for no known one.
    for_process: HashMap<usize, usize>,
    unknown: usize,
}

impl Withheld {
    pub(super) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Room for a frame of `len` bytes within `limit` (always for the first one).
    pub(super) fn has_room(&self, len: usize, limit: usize) -> bool {
        self.bytes == 0 || self.bytes + len <= limit
    }

    /// `true` if a frame withheld may be for the process of key `key` (0: none).
    pub(super) fn may_hold_for(&self, key: usize) -> bool {
        key != 0 && (self.unknown > 0 || self.for_process.contains_key(&key))
    }

    /// `true` if a frame withheld is for no known process (a piece of a large message).
    pub(super) fn holds_unknown(&self) -> bool {
        self.unknown > 0
    }

    fn count(&mut self, target: For, add: bool) {
        let count = match target {
            For::Process(key) => self.for_process.entry(key).or_default(),
            For::Unknown => &mut self.unknown,
            For::Nobody => return,
        };
        match add {
            true => *count += 1,
            false => *count -= 1,
        }
        if let (For::Process(key), 0) = (target, *count) {
            self.for_process.remove(&key);
        }
    }

    pub(super) fn push(&mut self, frame: &[u8], target: For) {
        self.bytes += frame.len();
        self.count(target, true);
        self.frames.push_back((frame.to_vec(), target));
    }

    pub(super) fn pop(&mut self) -> Option<(Vec<u8>, For)> {
        let (frame, target) = self.frames.pop_front()?;
        self.bytes -= frame.len();
        self.count(target, false);
        Some((frame, target))
    }

    pub(super) fn put_back(&mut self, frame: Vec<u8>, target: For) {
        self.bytes += frame.len();
        self.count(target, true);
        self.frames.push_front((frame, target));
    }

    /// Takes out the frames withheld for the process of key `key`, in order.
    pub(super) fn take_for(&mut self, key: usize) -> Vec<Vec<u8>> {
        let target = For::Process(key);
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.frames.len());
        for (frame, of) in self.frames.drain(..) {
            match of == target {
                true => taken.push(frame),
                false => kept.push_back((frame, of)),
            }
        }
        self.frames = kept;
        self.for_process.remove(&key);
        self.bytes -= taken.iter().map(Vec::len).sum::<usize>();
        taken
    }
}

impl Reading {
    /// Hands on, before the reply to call `id`, the withheld messages for its caller: they
    /// may come from the replying process, and a reply does not pass what its sender sent
    /// before (the caller would see them after the call returned). Those for other
    /// processes stay withheld. Whom a piece of a large message is for is not known: with
    /// one withheld, every message before the reply goes first — before a `large` reply
    /// (one in fragments, about to be reassembled) whoever its caller, since the pieces of
    /// two large messages cannot be reassembled at once. `false` if that cannot be done
    /// now (such a piece waits for reassembly room): the reply is withheld behind.
    #[cold]
    pub(super) fn before_reply(
        &mut self,
        cluster: &Arc<Cluster>,
        id: u64,
        large: bool,
    ) -> Result<bool, Ended> {
        let caller = self.peer.caller_of(id).unwrap_or(0);
        let unknown = self.withheld.holds_unknown();
        let hand_on_first = self.withheld.may_hold_for(caller) || (large && unknown);
        if !hand_on_first {
            return Ok(true);
        }
        self.lost()?;
        if unknown {
            while let Some((frame, target)) = self.withheld.pop() {
                if let Handled::Later(_) = self.frame(cluster, &frame)? {
                    self.withheld.put_back(frame, target);
                    return Ok(false);
                }
            }
            return Ok(true);
        }
        // (No piece of a large message among them: each is handled, none waits.)
        for frame in self.withheld.take_for(caller) {
            self.frame(cluster, &frame)?;
        }
        Ok(true)
    }
}
