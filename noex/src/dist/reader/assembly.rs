//! Large messages put back together from their fragments, in room reserved for them
//! within the node's reassembly bound, in a buffer of the node's spares.
//!
//! A fragment that lies whole in the read buffer is copied from there. One that does not
//! (the usual case: a fragment is as long as the read buffer) is read in place: its header
//! and whatever of its payload is buffered are taken from the buffer, and the rest of its
//! payload is read from the socket straight into the message's buffer, so the message's
//! bytes are copied once on their way in, by the kernel (see [`Reading::read_in_place`]).

use std::sync::Arc;

use super::super::cluster::Cluster;
use super::super::header;
use super::super::inbound::Payload;
use super::super::reassembly::Reserved;
use super::super::spares::Pooled;
use super::super::wire::{self, WireMessage};
use super::{protocol_error, Buffered, Ended, Handled, Reading, Wait};

/// A large message being reassembled.
pub(super) struct Assembly {
    id: u64,
    /// Its announced size.
    size: usize,
    /// Its buffer: the first `filled` bytes are the message's so far. (A spare buffer may
    /// be longer, with an earlier message's bytes: they are overwritten, never read.)
    whole: Vec<u8>,
    filled: usize,
    /// The fragment being read in place, if any.
    in_place: Option<InPlace>,
    /// Its room within the node's reassembly bound.
    _room: Reserved,
}

/// A fragment whose payload is being read from the socket into its message's buffer.
struct InPlace {
    /// Payload bytes still to read.
    remaining: usize,
    /// Its whole payload's length, and its frame's (without the length prefix).
    len: usize,
    frame: usize,
    last: bool,
}

impl Assembly {
    /// The next `n` bytes of the message's buffer, to be written.
    fn space(&mut self, n: usize) -> &mut [u8] {
        let end = self.filled + n;
        if self.whole.len() < end {
            // Zeroes in bytes the copy or the read overwrites at once (still in cache).
            self.whole.resize(end, 0);
        }
        &mut self.whole[self.filled..end]
    }
}

/// What the start of the read buffer is, for [`Reading::begin_in_place`].
pub(super) enum InPlaceStart {
    /// Not a fragment to read in place: the frame is read whole.
    No,
    /// A fragment that begins a message the node has no room for yet (nothing taken).
    Later(Wait),
    /// A fragment to read in place; its first this many bytes were taken from the buffer.
    Begun(usize),
}

impl Reading {
    /// `true` while a fragment is being read in place.
    pub(super) fn reading_in_place(&self) -> bool {
        self.assembling
            .as_ref()
            .is_some_and(|assembly| assembly.in_place.is_some())
    }

    /// The bytes of message `id` reassembled so far, if it is the one being reassembled.
    pub(super) fn assembled_so_far(&self, id: u64) -> Option<&[u8]> {
        self.assembling
            .as_ref()
            .filter(|assembly| assembly.id == id)
            .map(|assembly| &assembly.whole[..assembly.filled])
    }

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
        if let Some(wait) = self.accept_piece(id, size, payload.len())? {
            return Ok(Handled::Later(wait));
        }
        let assembly = self.assembling.as_mut().expect("accepted above");
        assembly.space(payload.len()).copy_from_slice(payload);
        assembly.filled += payload.len();
        self.piece_done(cluster, last, payload.len())?;
        Ok(Handled::Done)
    }

    /// If `buffered` begins with a fragment whose frame (of `len` bytes) it does not hold
    /// whole, takes its header and what is buffered of its payload into the message, and
    /// leaves the rest of its payload to [`read_in_place`](Self::read_in_place).
    pub(super) fn begin_in_place(
        &mut self,
        buffered: &[u8],
        len: usize,
    ) -> Result<InPlaceStart, Ended> {
        let Some(body) = buffered.get(4..) else {
            return Ok(InPlaceStart::No);
        };
        // (A header cut short by the buffer's end decodes as nothing: read whole then.)
        let Some((WireMessage::Fragment { id, last, size }, payload)) = header::decode(body) else {
            return Ok(InPlaceStart::No);
        };
        let payload_len = len - (body.len() - payload.len());
        if let Some(wait) = self.accept_piece(id, size, payload_len)? {
            return Ok(InPlaceStart::Later(wait));
        }
        let assembly = self.assembling.as_mut().expect("accepted above");
        assembly.space(payload.len()).copy_from_slice(payload);
        assembly.filled += payload.len();
        assembly.in_place = Some(InPlace {
            remaining: payload_len - payload.len(),
            len: payload_len,
            frame: len,
            last,
        });
        Ok(InPlaceStart::Begun(buffered.len()))
    }

    /// Reads the rest of the fragment begun by [`begin_in_place`](Self::begin_in_place)
    /// from the socket into its message's buffer (and what follows, a little, into
    /// `stream`'s buffer, which must be empty: all it held was the fragment's). Abandoning
    /// the future loses nothing: a later call goes on where this one stopped.
    pub(super) async fn read_in_place(&mut self, stream: &mut Buffered) -> Result<(), Ended> {
        loop {
            let Some(assembly) = self.assembling.as_mut() else {
                unreachable!("begun by `begin_in_place`")
            };
            let Some(in_place) = &mut assembly.in_place else {
                unreachable!("begun by `begin_in_place`")
            };
            let remaining = in_place.remaining;
            if remaining == 0 {
                return Ok(());
            }
            // (A read fills the fragment's place before it puts anything in the buffer.)
            debug_assert!(stream.buffer().is_empty());
            let n = stream
                .read_into(assembly.space(remaining))
                .await
                .map_err(super::io_error)?;
            if n == 0 {
                return Err(Ended::Read(super::incoming::eof()));
            }
            assembly.filled += n;
            if let Some(in_place) = &mut assembly.in_place {
                in_place.remaining -= n;
            }
        }
    }

    /// Handles the fragment read in place, once [`read_in_place`](Self::read_in_place)
    /// is done; returns its frame's length (without the length prefix).
    pub(super) fn end_in_place(&mut self, cluster: &Arc<Cluster>) -> Result<usize, Ended> {
        let in_place = self
            .assembling
            .as_mut()
            .and_then(|assembly| assembly.in_place.take())
            .expect("read by `read_in_place`");
        self.piece_done(cluster, in_place.last, in_place.len)?;
        Ok(in_place.frame)
    }

    /// Takes a fragment of message `id` of `size` bytes with `len` bytes of payload:
    /// begins the message if it is the first, and checks it against what came before.
    /// `Some` if it begins a message the node has no room for yet (nothing taken).
    fn accept_piece(&mut self, id: u64, size: u64, len: usize) -> Result<Option<Wait>, Ended> {
        if self.assembling.is_none() {
            let size = match usize::try_from(size) {
                Ok(size) if size <= self.max_message => size,
                _ => return protocol_error(format!("a message of {size} bytes is too large")),
            };
            if !self.begin(id, size)? {
                return Ok(Some(Wait::Room(size)));
            }
        }
        let Some(assembly) = &self.assembling else {
            unreachable!("begun above")
        };
        if assembly.id != id {
            return protocol_error("fragments of two messages interleaved");
        }
        if len == 0 {
            return protocol_error("an empty fragment");
        }
        if assembly.size as u64 != size {
            return protocol_error("the fragments of a message disagree on its size");
        }
        if assembly.filled + len > assembly.size {
            return protocol_error("a fragmented message exceeds its announced size");
        }
        Ok(None)
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
        // The buffer of an earlier large message, if the node kept one (see `spares`), as
        // it was: its bytes are overwritten, not zeroed first.
        let mut whole = self.peer.queue.spares().take_as_is(size);
        whole.truncate(size);
        if whole.try_reserve_exact(size - whole.len()).is_err() {
            return protocol_error(format!("no memory for a message of {size} bytes"));
        }
        self.assembling = Some(Assembly {
            id,
            size,
            whole,
            filled: 0,
            in_place: None,
            _room: room,
        });
        Ok(true)
    }

    /// A fragment's `len` bytes of payload are in its message's buffer: acknowledged, and
    /// the message delivered once whole.
    fn piece_done(&mut self, cluster: &Arc<Cluster>, last: bool, len: usize) -> Result<(), Ended> {
        self.peer.queue.owe_ack(len);
        if !last {
            return Ok(());
        }
        let Some(Assembly {
            size,
            mut whole,
            filled,
            ..
        }) = self.assembling.take()
        else {
            unreachable!("accepted by `accept_piece`")
        };
        if filled != size {
            return protocol_error("a fragmented message is shorter than announced");
        }
        whole.truncate(size);
        // Whole: its room is released, and the message is its process's.
        let (message, payload) = wire::decode(&whole).map_err(Ended::Read)?;
        let start = whole.len() - payload.len();
        let whole = Arc::new(Pooled::new(whole, self.peer.queue.spares()));
        self.dispatch(cluster, message, Payload::Owned(whole, start))
    }
}
