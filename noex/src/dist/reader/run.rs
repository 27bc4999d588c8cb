//! Runs: the casts and infos for one process that lie one after the other in the read
//! buffer, delivered together. The process is looked up once and its behaviour's codec
//! found once; each message is decoded from its frame straight into the process's own
//! message type (no `WireMessage` is built for it) — a long run's when the process reaches
//! it (`server::process::Frames`) — and the run is queued under one lock of the mailbox,
//! with at most one wake-up. A stream of casts to one process — what a
//! busy connection mostly carries — costs about half the instructions it did frame by
//! frame.
//!
//! A run ends at the first frame that is anything else (a call, a cast to another
//! process, a frame not yet read whole), after [`RUN_MOST`] frames or at the reader's
//! budget before it yields, and after the message that takes its process to the mailbox
//! limit (which then holds the connection back, as for a single message: see
//! `inbound::hold_back`).

use std::sync::Arc;

use super::super::cluster::Cluster;
use super::super::header;
use super::super::inbound::{self, RunFrame};
use super::super::peer::Counters;
use super::{buffered_frame, Reading};
use crate::process::mailbox::RUN_MOST;
use crate::process::AnyProcess;

/// What a run took from the read buffer: frames, and their bytes (length prefixes
/// included). Nothing if the reader must take the next frame on its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Taken {
    pub(super) frames: u32,
    pub(super) bytes: usize,
}

impl Reading {
    /// Delivers the run that begins the frames lying whole in `buffered`, of at most
    /// `most_frames` frames and little more than `most_bytes` bytes. Takes nothing if the
    /// first frame is not a cast or info to a pid, or if the reader is holding the peer's
    /// messages back (see `Reading::take`).
    pub(super) fn run(
        &mut self,
        cluster: &Arc<Cluster>,
        buffered: &[u8],
        max_frame: usize,
        most_frames: u32,
        most_bytes: usize,
    ) -> Taken {
        if !self.withheld.is_empty() || self.peer.queue.holding_back() {
            return Taken::default();
        }
        let limit = cluster.config.mailbox_limit;
        self.run_frames.clear();
        let mut at = 0;
        // The run's pid serial, and its process (`None`: there is none).
        let mut target: Option<(u64, Option<Arc<dyn AnyProcess>>)> = None;
        let mut behind = None;
        // The last message decoded, and its bytes.
        let mut last: Option<(header::OneWay, Head)> = None;
        let most_frames = (most_frames as usize).min(RUN_MOST);
        while self.run_frames.len() < most_frames && at < most_bytes {
            // A frame not read whole ends the run, and so does an oversized one: the reader
            // refuses it once the run before it is delivered.
            let Ok(Some(len)) = buffered_frame(&buffered[at..], max_frame) else {
                break;
            };
            let end = at + 4 + len;
            let body = &buffered[at + 4..end];
            // Mostly the same message as the run's first one, byte for byte: compared,
            // not decoded again.
            let (message, payload) = match &last {
                Some((message, head)) if head.begins(body) => (*message, &body[head.len..]),
                _ => match header::one_way(body) {
                    Some((message, payload)) => {
                        last = Some((message, Head::of(&body[..body.len() - payload.len()])));
                        (message, payload)
                    }
                    None => break,
                },
            };
            let process = match &target {
                Some((serial, process)) if *serial == message.serial => process,
                Some(_) => break,
                None => {
                    let process = self.resolver.resolve_pid(cluster, message.serial);
                    &target.insert((message.serial, process)).1
                }
            };
            self.run_frames.push(RunFrame {
                info: message.info,
                behavior: message.behavior,
                start: end - payload.len(),
                end,
            });
            at = end;
            if let Some(process) = process {
                let staged = self.run_frames.len() - 1;
                behind = self.resolver.behind(process, limit, staged);
                if behind.is_some() {
                    break;
                }
            }
        }
        let frames = self.run_frames.len() as u32;
        let undelivered = match &target {
            Some((_, Some(process))) => {
                let dropped =
                    process.deliver_run(buffered, &self.run_frames, &mut self.staging, &self.peer);
                self.follow.note_many(process.core().home(), frames);
                if let Some(process) = behind {
                    inbound::hold_back(cluster, &self.peer, process, limit);
                }
                dropped
            }
            // The process has ended.
            _ => frames,
        };
        if undelivered > 0 {
            Counters::add(
                &self.peer.counters.messages_undelivered,
                u64::from(undelivered),
            );
        }
        self.unreported.messages += u64::from(frames);
        self.unreported.bytes += at as u64;
        Taken { frames, bytes: at }
    }
}

/// The bytes of a one-way message's header, to compare the next frames' with: in one
/// masked comparison of 16 bytes where they fit, where comparing slices calls `memcmp`.
struct Head {
    /// The bytes, zero past `len`, and the mask of the first `len`.
    word: u128,
    mask: u128,
    len: usize,
    /// The bytes, for a header longer than 16 (a pid serial of 8 bytes or more).
    bytes: Vec<u8>,
}

impl Head {
    fn of(head: &[u8]) -> Head {
        let len = head.len();
        if len <= 16 {
            let mut padded = [0; 16];
            padded[..len].copy_from_slice(head);
            let mask = u128::MAX
                .checked_shl(8 * len as u32)
                .map_or(u128::MAX, |high| !high);
            Head {
                word: u128::from_le_bytes(padded),
                mask,
                len,
                bytes: Vec::new(),
            }
        } else {
            Head {
                word: 0,
                mask: 0,
                len,
                bytes: head.to_vec(),
            }
        }
    }

    /// `true` if `body` begins with these bytes.
    #[inline]
    fn begins(&self, body: &[u8]) -> bool {
        match body.first_chunk::<16>() {
            Some(first) if self.len <= 16 => u128::from_le_bytes(*first) & self.mask == self.word,
            _ if self.len <= 16 => {
                body.len() >= self.len && {
                    let mut padded = [0; 16];
                    padded[..self.len].copy_from_slice(&body[..self.len]);
                    u128::from_le_bytes(padded) == self.word
                }
            }
            _ => body.starts_with(&self.bytes),
        }
    }
}

#[cfg(test)]
mod head_tests {
    use super::Head;

    #[test]
    fn a_head_begins_exactly_the_bodies_that_start_with_its_bytes() {
        let bodies: [&[u8]; 6] = [
            &[
                10, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
            ],
            &[10, 0, 3, 1, 2, 9],
            &[10, 0, 3],
            &[10, 0],
            &[
                11, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
            ],
            &[],
        ];
        for head_len in 0..=18 {
            let head_bytes: Vec<u8> = bodies[0]
                .iter()
                .chain(&[99, 98])
                .take(head_len)
                .copied()
                .collect();
            let head = Head::of(&head_bytes);
            for body in bodies {
                assert_eq!(
                    head.begins(body),
                    body.starts_with(&head_bytes),
                    "{head_bytes:?} {body:?}"
                );
            }
        }
    }
}
