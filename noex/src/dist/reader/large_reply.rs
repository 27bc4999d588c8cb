//! Large replies while the reader withholds the peer's messages.
//!
//! A reply fills no mailbox, so the reader hands it on while it withholds the peer's other
//! messages (see `Reading::withhold`) — a large one (sent in fragments) included: each of
//! its fragments is reassembled and acknowledged as it is read, instead of withheld and
//! left unacknowledged, which stopped the peer sending the rest of it (see
//! [`FRAGMENT_WINDOW`](super::super::wire::FRAGMENT_WINDOW)) until the call timed out —
//! and its caller could be the very process whose mailbox holds the connection back.
//!
//! Whether a large message is a reply is read from its first fragment, whose payload
//! begins with the message's header. The decision is the message's: all its fragments are
//! handed on, or all withheld, in order. A reply handed on from its first fragment has the
//! messages withheld for its caller handed on before that fragment (see
//! [`before_reply`](Reading::before_reply)): the messages its server sent before it were
//! read before its first fragment (a sender's messages queued after a large one wait
//! behind it), so it passes none of them; what is withheld while its later fragments come
//! in stays withheld. A reply begun while the reader handled messages at once has nothing
//! withheld before it, and its remaining fragments are handed on too.

use std::sync::Arc;

use super::super::cluster::Cluster;
use super::super::header;
use super::super::wire::WireMessage;
use super::{Ended, Reading};

/// The large message whose fragments the reader is taking while it withholds messages,
/// and whether they are handed on (a reply) or withheld.
#[derive(Clone, Copy, Debug)]
pub(super) struct Arriving {
    id: u64,
    passes: bool,
}

impl Reading {
    /// `true` if the fragment of message `id` with `payload`, read while the reader
    /// withholds the peer's messages, is handed on at once: if its message is a reply.
    /// For the first fragment of a reply, the messages withheld for its caller are handed
    /// on first; if that cannot be done now, the reply is withheld with them.
    pub(super) fn passes(
        &mut self,
        cluster: &Arc<Cluster>,
        id: u64,
        payload: &[u8],
    ) -> Result<bool, Ended> {
        if let Some(arriving) = self.arriving.filter(|arriving| arriving.id == id) {
            return Ok(arriving.passes);
        }
        let passes = match self.assembled_so_far(id) {
            // Begun while the reader handled messages at once: nothing withheld came
            // before it.
            Some(begun) => reply_to(begun).is_some(),
            // Its first fragment.
            None => match reply_to(payload) {
                Some(call) => self.before_reply(cluster, call, true)?,
                None => false,
            },
        };
        self.arriving = Some(Arriving { id, passes });
        Ok(passes)
    }

    /// The last fragment of the message `passes` was asked about is taken.
    pub(super) fn arrived(&mut self, id: u64) {
        if self.arriving.is_some_and(|arriving| arriving.id == id) {
            self.arriving = None;
        }
    }
}

/// The call whose reply a message is, read from its first bytes (those of its first
/// fragment); `None` for any other message, or if its header is not all there.
fn reply_to(begins: &[u8]) -> Option<u64> {
    let message = match header::decode(begins) {
        Some((message, _)) => message,
        // (A reply whose outcome is not `Reply`, or anything else: serde decodes it.)
        None => postcard::take_from_bytes::<WireMessage>(begins).ok()?.0,
    };
    match message {
        WireMessage::Reply { id, .. } => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::reply_to;
    use crate::dist::wire::{self, RemoteOutcome, WireMessage};

    fn encoded(message: &WireMessage, payload: &[u8]) -> Vec<u8> {
        let mut bytes = postcard::to_allocvec(message).unwrap();
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn a_reply_is_recognised_from_its_first_bytes() {
        let reply = WireMessage::Reply {
            id: 300,
            outcome: RemoteOutcome::Reply,
        };
        let bytes = encoded(&reply, &[7; 100]);
        assert_eq!(reply_to(&bytes), Some(300));
        // Its kind, the id (a varint of 2 bytes) and the outcome.
        assert_eq!(reply_to(&bytes[..4]), Some(300), "its header alone");
        assert_eq!(reply_to(&bytes[..3]), None, "its header cut short");
        assert_eq!(reply_to(&[]), None);
        let exited = WireMessage::Reply {
            id: 5,
            outcome: RemoteOutcome::Exited(crate::ExitReason::Normal),
        };
        assert_eq!(reply_to(&encoded(&exited, &[])), Some(5));
        let cast = WireMessage::Cast {
            to: wire::Address::Pid { serial: 9 },
            behavior: 1,
        };
        assert_eq!(reply_to(&encoded(&cast, &[7; 100])), None);
        for byte in 0..=u8::MAX {
            // Whatever the bytes, an answer, not a panic.
            let _ = reply_to(&[byte, 0x80, 0x80, 0x80]);
            let _ = reply_to(&[byte]);
        }
    }
}
