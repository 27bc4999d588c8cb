//! Large messages put back together from their fragments, in room reserved for them
//! within the node's reassembly bound, in a buffer of the node's spares.

use std::sync::Arc;

use super::super::cluster::Cluster;
use super::super::inbound::Payload;
use super::super::reassembly::Reserved;
use super::super::spares::Pooled;
use super::super::wire;
use super::{protocol_error, Ended, Handled, Reading, Wait};

/// A large message being reassembled.
pub(super) struct Assembly {
    id: u64,
    /// Its announced size.
    size: usize,
    /// Its bytes so far.
    whole: Vec<u8>,
    /// Its room within the node's reassembly bound.
    _room: Reserved,
}

impl Reading {
    /// Handles a fragment — unless it begins a message the node has no room for yet.
    #[inline(never)]
    pub(super) fn piece(
        &mut self,
        cluster: &Arc<Cluster>,
        id: u64,
        last: bool,
        size: u64,
        payload: &[u8],
    ) -> Result<Handled, Ended> {
        if self.assembling.is_none() {
            let size = match usize::try_from(size) {
                Ok(size) if size <= self.max_message => size,
                _ => return protocol_error(format!("a message of {size} bytes is too large")),
            };
            if !self.begin(id, size)? {
                return Ok(Handled::Later(Wait::Room(size)));
            }
        }
        self.fragment(cluster, id, last, size, payload)?;
        Ok(Handled::Done)
    }

    /// Begins reassembling a message of `size` bytes in room reserved for it; `false` if
    /// the node has no room for it now.
    fn begin(&mut self, id: u64, size: usize) -> Result<bool, Ended> {
        let room = match self.room.take() {
            Some(room) if room.bytes() == size => room,
            _ => match self.reassembly.try_reserve(size) {
                Some(room) => room,
                None => return Ok(false),
            },
        };
        // The buffer of an earlier large message, if the node kept one (see `spares`).
        let mut whole = self.peer.queue.spares().take(size);
        if whole.try_reserve_exact(size).is_err() {
            return protocol_error(format!("no memory for a message of {size} bytes"));
        }
        self.assembling = Some(Assembly {
            id,
            size,
            whole,
            _room: room,
        });
        Ok(true)
    }

    /// Adds a fragment to the message being reassembled; delivers the message once whole.
    fn fragment(
        &mut self,
        cluster: &Arc<Cluster>,
        id: u64,
        last: bool,
        size: u64,
        payload: &[u8],
    ) -> Result<(), Ended> {
        let Some(assembly) = &mut self.assembling else {
            unreachable!("begun by `frame`")
        };
        if assembly.id != id {
            return protocol_error("fragments of two messages interleaved");
        }
        if payload.is_empty() {
            return protocol_error("an empty fragment");
        }
        if assembly.size as u64 != size {
            return protocol_error("the fragments of a message disagree on its size");
        }
        if assembly.whole.len() + payload.len() > assembly.size {
            return protocol_error("a fragmented message exceeds its announced size");
        }
        assembly.whole.extend_from_slice(payload);
        self.peer.queue.owe_ack(payload.len());
        if !last {
            return Ok(());
        }
        let Some(Assembly { size, whole, .. }) = self.assembling.take() else {
            unreachable!("assembling above")
        };
        if whole.len() != size {
            return protocol_error("a fragmented message is shorter than announced");
        }
        // Whole: its room is released, and the message is its process's.
        let (message, payload) = wire::decode(&whole).map_err(Ended::Read)?;
        let start = whole.len() - payload.len();
        let whole = Arc::new(Pooled::new(whole, self.peer.queue.spares()));
        self.dispatch(cluster, message, Payload::Owned(whole, start))
    }
}
