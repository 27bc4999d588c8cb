//! The messages sent once per user message — calls, casts, infos, replies, fragments and
//! their acknowledgements — encoded and decoded by hand: byte for byte what postcard writes
//! for these [`WireMessage`]s, in a small fraction of the instructions serde's generic path
//! takes (which was a quarter of the cost of a remote cast). Anything this module does not
//! recognise is left to serde, which remains the definition of the format; property tests
//! check that the two agree on every message and on arbitrary bytes.
//!
//! postcard writes an enum variant as its index (a varint), integers as varints (7 bits a
//! byte, least significant first, high bit set on all but the last), a `bool` as one byte
//! 0 or 1, and a string as its length (a varint) and its UTF-8 bytes.

use super::wire::{Address, RemoteOutcome, WireMessage};

/// Variant indices of [`WireMessage`] (its declaration order).
const CALL: u8 = 8;
const REPLY: u8 = 9;
const CAST: u8 = 10;
const INFO: u8 = 11;
const FRAGMENT: u8 = 13;
const FRAGMENT_ACK: u8 = 14;

/// Variant indices of [`Address`] and [`RemoteOutcome`].
const PID: u8 = 0;
const NAME: u8 = 1;
const OUTCOME_REPLY: u8 = 0;

/// Appends `message` if it is of a kind handled here; `false` (and nothing appended)
/// otherwise.
pub(crate) fn encode(message: &WireMessage, out: &mut Vec<u8>) -> bool {
    match message {
        WireMessage::Call {
            id,
            to,
            behavior,
            timeout_ms,
        } => {
            out.push(CALL);
            varint(out, *id);
            address(out, to);
            varint(out, u64::from(*behavior));
            varint(out, *timeout_ms);
        }
        WireMessage::Cast { to, behavior } | WireMessage::Info { to, behavior } => {
            let kind = if matches!(message, WireMessage::Cast { .. }) {
                CAST
            } else {
                INFO
            };
            out.push(kind);
            address(out, to);
            varint(out, u64::from(*behavior));
        }
        WireMessage::Reply {
            id,
            outcome: RemoteOutcome::Reply,
        } => {
            out.push(REPLY);
            varint(out, *id);
            out.push(OUTCOME_REPLY);
        }
        WireMessage::Fragment { id, last, size } => {
            out.push(FRAGMENT);
            varint(out, *id);
            out.push(u8::from(*last));
            varint(out, *size);
        }
        WireMessage::FragmentAck { bytes } => {
            out.push(FRAGMENT_ACK);
            varint(out, u64::from(*bytes));
        }
        _ => return false,
    }
    true
}

/// The encoding of a `Cast` or an `Info` to one pid, for one behaviour: what a reference to
/// a process of another node encodes once, so that each of its casts copies it rather
/// than encoding it (a tenth of the instructions).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PidHead {
    /// A `Cast`'s bytes: the kind, the address (`PID` and a varint of up to 10 bytes) and
    /// the behaviour hash (a varint of up to 5).
    bytes: [u8; 17],
    len: u8,
}

impl PidHead {
    pub(crate) fn new(serial: u64, behavior: u32) -> Self {
        let mut bytes = Vec::with_capacity(17);
        let cast = WireMessage::Cast {
            to: Address::Pid { serial },
            behavior,
        };
        encode(&cast, &mut bytes);
        let mut head = PidHead {
            bytes: [0; 17],
            len: bytes.len() as u8,
        };
        head.bytes[..bytes.len()].copy_from_slice(&bytes);
        head
    }

    /// Appends the `Cast` (or, with `info`, the `Info`).
    #[inline]
    pub(crate) fn append(&self, info: bool, out: &mut Vec<u8>) {
        let start = out.len();
        // All 17 bytes, then cut: a copy of a known size is a few moves, where one of a
        // varying size calls `memcpy`.
        out.extend_from_slice(&self.bytes);
        out.truncate(start + usize::from(self.len));
        if info {
            out[start] = INFO;
        }
    }
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn address(out: &mut Vec<u8>, address: &Address) {
    match address {
        Address::Pid { serial } => {
            out.push(PID);
            varint(out, *serial);
        }
        Address::Name(name) => {
            out.push(NAME);
            varint(out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
        }
    }
}

/// Decodes the message at the start of `bytes` if it is of a kind handled here, with the
/// bytes after it. `None` leaves the verdict to serde — for other kinds, and for anything
/// irregular, which serde then accepts or refuses as it always would.
#[inline]
pub(crate) fn decode(bytes: &[u8]) -> Option<(WireMessage, &[u8])> {
    let mut input = Input(bytes);
    let message = match input.byte()? {
        CALL => WireMessage::Call {
            id: input.u64()?,
            to: input.address()?,
            behavior: input.u32()?,
            timeout_ms: input.u64()?,
        },
        CAST => WireMessage::Cast {
            to: input.address()?,
            behavior: input.u32()?,
        },
        INFO => WireMessage::Info {
            to: input.address()?,
            behavior: input.u32()?,
        },
        REPLY => {
            let id = input.u64()?;
            if input.byte()? != OUTCOME_REPLY {
                return None;
            }
            WireMessage::Reply {
                id,
                outcome: RemoteOutcome::Reply,
            }
        }
        FRAGMENT => WireMessage::Fragment {
            id: input.u64()?,
            last: match input.byte()? {
                0 => false,
                1 => true,
                _ => return None,
            },
            size: input.u64()?,
        },
        FRAGMENT_ACK => WireMessage::FragmentAck {
            bytes: input.u32()?,
        },
        _ => return None,
    };
    Some((message, input.0))
}

/// A `Cast` or an `Info` to a pid: the message of nearly every frame of a stream of casts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OneWay {
    /// An `Info` (`ServerRef::send`), not a `Cast`.
    pub(crate) info: bool,
    /// The pid's serial.
    pub(crate) serial: u64,
    /// The FNV-1a hash of the behaviour name the sender expects.
    pub(crate) behavior: u32,
}

/// Decodes the `Cast` or `Info` to a pid at the start of `bytes`, with the bytes after it
/// (its payload), without building a [`WireMessage`]; `None` for anything else, which
/// [`decode`] (or serde) then decodes as it would anyway.
#[inline]
pub(crate) fn one_way(bytes: &[u8]) -> Option<(OneWay, &[u8])> {
    let info = match bytes.first_chunk::<2>()? {
        [CAST, PID] => false,
        [INFO, PID] => true,
        _ => return None,
    };
    let mut input = Input(&bytes[2..]);
    let serial = input.u64()?;
    let behavior = input.u32()?;
    let message = OneWay {
        info,
        serial,
        behavior,
    };
    Some((message, input.0))
}

/// What is left to decode.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    #[inline]
    fn byte(&mut self) -> Option<u8> {
        let (&byte, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(byte)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(taken)
    }

    /// A varint of at most `max_bytes` bytes whose last byte is at most `max_last` (as
    /// postcard checks them).
    #[inline]
    fn varint(&mut self, max_bytes: usize, max_last: u8) -> Option<u64> {
        let bytes = self.0;
        let mut value = 0u64;
        for (i, &byte) in bytes.iter().take(max_bytes).enumerate() {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if i == max_bytes - 1 && byte > max_last {
                    return None;
                }
                self.0 = &bytes[i + 1..];
                return Some(value);
            }
        }
        None
    }

    fn u64(&mut self) -> Option<u64> {
        self.varint(10, 0x01)
    }

    fn u32(&mut self) -> Option<u32> {
        self.varint(5, 0x0f).map(|n| n as u32)
    }

    #[inline]
    fn address(&mut self) -> Option<Address> {
        match self.byte()? {
            PID => Some(Address::Pid {
                serial: self.u64()?,
            }),
            NAME => {
                let len = usize::try_from(self.u64()?).ok()?;
                let name = std::str::from_utf8(self.take(len)?).ok()?;
                Some(Address::Name(name.to_owned()))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    use crate::dist::wire::strategies::message;

    proptest! {
        #[test]
        fn encodes_what_serde_encodes(message in message(), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
            let serde = postcard::to_allocvec(&message).unwrap();
            let mut ours = Vec::new();
            if encode(&message, &mut ours) {
                prop_assert_eq!(&ours, &serde);
            } else {
                prop_assert!(ours.is_empty());
            }
            // And decodes it as serde does, leaving what follows.
            let mut bytes = serde;
            bytes.extend_from_slice(&tail);
            if let Some((decoded, rest)) = decode(&bytes) {
                prop_assert_eq!(decoded, message);
                prop_assert_eq!(rest, &tail[..]);
            }
        }

        #[test]
        fn a_pid_head_is_the_cast_or_info_it_stands_for(serial in any::<u64>(), behavior in any::<u32>(), info in any::<bool>()) {
            let to = Address::Pid { serial };
            let message = if info {
                WireMessage::Info { to, behavior }
            } else {
                WireMessage::Cast { to, behavior }
            };
            let mut ours = vec![1, 2];
            PidHead::new(serial, behavior).append(info, &mut ours);
            let mut serde = vec![1, 2];
            serde.extend(postcard::to_allocvec(&message).unwrap());
            prop_assert_eq!(ours, serde);
        }

        #[test]
        fn decodes_nothing_serde_would_not(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Some((ours, rest)) = decode(&bytes) {
                let serde = postcard::take_from_bytes::<WireMessage>(&bytes);
                prop_assert_eq!(serde.ok(), Some((ours, rest)));
            }
        }

        #[test]
        fn decodes_every_one_way_message_to_a_pid(message in message(), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut bytes = postcard::to_allocvec(&message).unwrap();
            bytes.extend_from_slice(&tail);
            let expected = match message {
                WireMessage::Cast { to: Address::Pid { serial }, behavior } => Some(OneWay { info: false, serial, behavior }),
                WireMessage::Info { to: Address::Pid { serial }, behavior } => Some(OneWay { info: true, serial, behavior }),
                _ => None,
            };
            prop_assert_eq!(one_way(&bytes), expected.map(|one| (one, &tail[..])));
        }

        #[test]
        fn decodes_one_way_messages_as_decode_does(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            if let Some((ours, rest)) = one_way(&bytes) {
                let to = Address::Pid { serial: ours.serial };
                let behavior = ours.behavior;
                let message = if ours.info {
                    WireMessage::Info { to, behavior }
                } else {
                    WireMessage::Cast { to, behavior }
                };
                prop_assert_eq!(decode(&bytes), Some((message, rest)));
            } else if let Some((message, _)) = decode(&bytes) {
                let pid_one_way = matches!(
                    message,
                    WireMessage::Cast { to: Address::Pid { .. }, .. }
                        | WireMessage::Info { to: Address::Pid { .. }, .. }
                );
                prop_assert!(!pid_one_way);
            }
        }

        #[test]
        fn decodes_mutated_headers_as_serde_does(
            message in message(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = postcard::to_allocvec(&message).unwrap();
            for (at, byte) in flips {
                let at = at % bytes.len();
                bytes[at] ^= byte;
            }
            if let Some((ours, rest)) = decode(&bytes) {
                let serde = postcard::take_from_bytes::<WireMessage>(&bytes);
                prop_assert_eq!(serde.ok(), Some((ours, rest)));
            }
        }
    }

    #[test]
    fn handled_kinds_are_the_ones_sent_per_message() {
        let reply = WireMessage::Reply {
            id: 1,
            outcome: RemoteOutcome::Reply,
        };
        assert!(encode(&reply, &mut Vec::new()));
        assert!(!encode(&WireMessage::Goodbye, &mut Vec::new()));
        // A varint past its type's range is left to serde (which refuses it).
        let mut ack = vec![FRAGMENT_ACK];
        ack.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x1f]);
        assert!(decode(&ack).is_none());
        assert!(postcard::from_bytes::<WireMessage>(&ack).is_err());
    }
}
