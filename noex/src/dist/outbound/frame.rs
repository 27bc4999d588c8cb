//! Large frames that borrow the `Bytes` in them instead of holding copies.
//!
//! A large message is encoded off the scheduler threads (see `remote::apart`); a `Bytes`
//! of `bytes::LEND_FROM` bytes or more in it is lent to the frame rather than copied into
//! it (see `bytes::lending`). The frame is then its own bytes — everything else, its
//! length prefix first — with the lent buffers between them, each before the byte at its
//! offset. The writer copies fragments out of the two as if they were one frame.

use std::io::IoSlice;
use std::ops::Range;

use crate::bytes::Lent;
use crate::Bytes;

/// A frame: its own bytes and the buffers it borrows.
#[derive(Default)]
pub(crate) struct Frame {
    pub(crate) own: Vec<u8>,
    /// The lent buffers, by offset in `own`, in order.
    pub(crate) lent: Lent,
}

impl Frame {
    /// A frame that borrows nothing.
    pub(crate) fn owned(own: Vec<u8>) -> Self {
        Frame {
            own,
            lent: Lent::new(),
        }
    }

    /// Its length, the length prefix included.
    pub(crate) fn len(&self) -> usize {
        self.own.len()
            + self
                .lent
                .iter()
                .map(|(_, bytes)| bytes.len())
                .sum::<usize>()
    }

    /// Calls `each` with the pieces that overlap `wanted`, in order, cut to it: own bytes
    /// (`None`), then a lent buffer (`Some`, the buffer and the range of it wanted), and
    /// so on.
    fn pieces<'a>(
        &'a self,
        wanted: Range<usize>,
        mut each: impl FnMut(&'a [u8], Option<(&'a Bytes, Range<usize>)>),
    ) {
        // Where the next piece begins in the frame, and in the own bytes.
        let (mut at, mut own_from) = (0, 0);
        let mut piece = |bytes: &'a [u8], lent: Option<&'a Bytes>, at: &mut usize| {
            let (from, to) = (wanted.start.max(*at), wanted.end.min(*at + bytes.len()));
            if from < to {
                let range = from - *at..to - *at;
                each(&bytes[range.clone()], lent.map(|lent| (lent, range)));
            }
            *at += bytes.len();
        };
        for (offset, bytes) in &self.lent {
            if at >= wanted.end {
                return;
            }
            piece(&self.own[own_from..*offset], None, &mut at);
            piece(bytes, Some(bytes), &mut at);
            own_from = *offset;
        }
        piece(&self.own[own_from..], None, &mut at);
    }

    /// Its bytes in `start..end` appended to `out`.
    pub(crate) fn copy(&self, start: usize, end: usize, out: &mut Vec<u8>) {
        self.pieces(start..end, |bytes, _| out.extend_from_slice(bytes));
    }

    /// Its bytes in `start..end` appended to `out`: its own bytes copied, its lent ones
    /// lent again (a view of the same buffer).
    pub(crate) fn share(&self, start: usize, end: usize, out: &mut Frame) {
        self.pieces(start..end, |bytes, lent| match lent {
            None => out.own.extend_from_slice(bytes),
            Some((lent, range)) => out.lent.push((out.own.len(), lent.slice(range))),
        });
    }

    /// Its bytes in `start..end`, as slices for a vectored write.
    pub(crate) fn io_slices(&self, start: usize, end: usize) -> Vec<IoSlice<'_>> {
        let mut slices = Vec::with_capacity(2 * self.lent.len() + 1);
        self.pieces(start..end, |bytes, _| slices.push(IoSlice::new(bytes)));
        slices
    }

    /// Its bytes, the lent ones copied in.
    pub(crate) fn into_vec(self) -> Vec<u8> {
        if self.lent.is_empty() {
            return self.own;
        }
        let len = self.len();
        let mut whole = Vec::with_capacity(len);
        self.copy(0, len, &mut whole);
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_as_its_own_bytes_with_the_lent_ones_between() {
        let frame = Frame {
            own: b"abcdef".to_vec(),
            lent: vec![
                (2, Bytes::from(b"XYZ".to_vec())),
                (2, Bytes::from(b"12".to_vec())),
                (6, Bytes::from(b"!".to_vec())),
            ],
        };
        let whole = b"abXYZ12cdef!";
        assert_eq!(frame.len(), whole.len());
        for start in 0..=whole.len() {
            for end in start..=whole.len() {
                let mut out = vec![0xee];
                frame.copy(start, end, &mut out);
                assert_eq!(&out[1..], &whole[start..end], "{start}..{end}");
            }
        }
        let mut shared = Frame::owned(b"<".to_vec());
        frame.share(1, 11, &mut shared);
        assert_eq!(shared.lent.len(), 2, "views of the lent buffers");
        assert_eq!(shared.into_vec(), b"<bXYZ12cdef");
        let slices = frame.io_slices(3, 9);
        let sliced: Vec<u8> = slices
            .iter()
            .flat_map(|slice| slice.iter().copied())
            .collect();
        assert_eq!(sliced, b"YZ12cd");
        assert_eq!(frame.into_vec(), whole);
        assert_eq!(Frame::owned(b"ab".to_vec()).into_vec(), b"ab");
    }
}
