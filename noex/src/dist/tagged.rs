//! The message enums `#[behavior]` writes, encoded and decoded without serde's generic path.
//!
//! A message is its tag (a `u32` varint), then its arguments one after the other — what
//! the enum's `Serialize` impl writes (a tuple of the tag and a tuple of the arguments;
//! postcard writes a tuple as its elements in turn). Serde stays the definition of the
//! format: the code `#[behavior]` generates calls the helpers here for the tag and for
//! `Vec<u8>` arguments (a length and the bytes), and postcard for every other argument.
//! Going through serde for the tag and the enum cost about 150 instructions each way for a
//! 16 B cast, a tenth of its cost from sender to handler; the tests in
//! `tests/tagged_codec.rs` check that both paths write the same bytes and accept the same.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::wire;

/// The error of an encoding or a decoding.
pub type Error = postcard::Error;

/// A message enum written by `#[behavior]` (calls, replies or casts), with its direct
/// encoding.
pub trait Tagged: Sized {
    /// Appends the message — unless its encoding is longer than `most` bytes: then `out`
    /// holds a part of it and the error is `SerializeBufferFull` (as `wire::append_within`).
    fn encode_tagged(&self, out: &mut Vec<u8>, most: usize) -> Result<(), Error>;

    /// Decodes a message from the start of `bytes` (what follows it is ignored, as
    /// `postcard::from_bytes` ignores it).
    fn decode_tagged(bytes: &[u8]) -> Result<Self, Error>;
}

/// Where the encoding of a message begun at the end of `out` must end, at most.
#[inline]
pub fn end(out: &[u8], most: usize) -> usize {
    out.len().saturating_add(most)
}

#[inline]
fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A message's tag, encoded (a varint: at most 5 bytes), at compile time.
#[derive(Clone, Copy, Debug)]
pub struct TagBytes {
    bytes: [u8; 5],
    len: u8,
}

impl TagBytes {
    /// The encoding of `tag`.
    pub const fn new(tag: u32) -> Self {
        let (mut bytes, mut len, mut n) = ([0u8; 5], 0, tag);
        while n >= 0x80 {
            bytes[len] = n as u8 | 0x80;
            n >>= 7;
            len += 1;
        }
        bytes[len] = n as u8;
        TagBytes {
            bytes,
            len: len as u8 + 1,
        }
    }
}

/// Appends a message's tag (the encoding must end by `end`).
#[inline]
pub fn put_tag(out: &mut Vec<u8>, tag: &TagBytes, end: usize) -> Result<(), Error> {
    let start = out.len();
    // All 5 bytes, then cut: a copy of a known size is a few moves, where one of a
    // varying size calls `memcpy`.
    out.extend_from_slice(&tag.bytes);
    out.truncate(start + usize::from(tag.len));
    within(out, end)
}

/// Appends a `Vec<u8>` argument: its length, then its bytes (checked against `end` before
/// they are copied).
#[inline]
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8], end: usize) -> Result<(), Error> {
    match u8::try_from(bytes.len()) {
        Ok(len) if len < 0x80 => out.push(len),
        _ => varint(out, bytes.len() as u64),
    }
    if bytes.len() > end.saturating_sub(out.len()) {
        return Err(Error::SerializeBufferFull);
    }
    out.extend_from_slice(bytes);
    Ok(())
}

/// Appends any other argument, postcard-encoded.
#[inline]
pub fn put_value<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
    end: usize,
) -> Result<(), Error> {
    let most = end
        .checked_sub(out.len())
        .ok_or(Error::SerializeBufferFull)?;
    wire::append_within(value, out, most)
}

#[inline]
fn within(out: &[u8], end: usize) -> Result<(), Error> {
    if out.len() > end {
        Err(Error::SerializeBufferFull)
    } else {
        Ok(())
    }
}

/// The error for a tag no message of the enum has (what serde's path raises, through
/// `unknown_tag`, as postcard reports it).
#[cold]
pub fn unknown_tag() -> Error {
    Error::SerdeDeCustom
}

/// What is left of a message being decoded.
pub struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    /// The bytes of a message.
    #[inline]
    pub fn new(bytes: &'a [u8]) -> Self {
        Input(bytes)
    }

    /// A varint of at most `max_bytes` bytes whose last byte is at most `max_last`, checked
    /// as postcard checks them.
    #[inline]
    fn varint(&mut self, max_bytes: usize, max_last: u8) -> Result<u64, Error> {
        // Mostly one byte (a length under 128).
        if let [byte @ 0..0x80, rest @ ..] = self.0 {
            self.0 = rest;
            return Ok(u64::from(*byte));
        }
        self.long_varint(max_bytes, max_last)
    }

    /// [`varint`](Self::varint) of more than one byte (out of line: the callers inline the
    /// one-byte case only).
    #[inline(never)]
    fn long_varint(&mut self, max_bytes: usize, max_last: u8) -> Result<u64, Error> {
        let bytes = self.0;
        let mut value = 0u64;
        for i in 0..max_bytes {
            let Some(&byte) = bytes.get(i) else {
                return Err(Error::DeserializeUnexpectedEnd);
            };
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if i == max_bytes - 1 && byte > max_last {
                    return Err(Error::DeserializeBadVarint);
                }
                self.0 = &bytes[i + 1..];
                return Ok(value);
            }
        }
        Err(Error::DeserializeBadVarint)
    }

    /// The message's tag.
    #[inline(always)]
    pub fn tag(&mut self) -> Result<u32, Error> {
        // Mostly 5 bytes (a hash), lying whole in the input: the first four read as one
        // word, their 7-bit groups moved together with masks and shifts, where reading
        // them a byte at a time took some 40 instructions.
        if let Some((five, rest)) = self.0.split_first_chunk::<5>() {
            let (low, b4) = match five.split_first_chunk::<4>() {
                Some((four, &[b4])) => (u32::from_le_bytes(*four), b4),
                _ => unreachable!("five bytes are four and one"),
            };
            if low & 0x8080_8080 == 0x8080_8080 && b4 <= 0x0f {
                self.0 = rest;
                return Ok((low & 0x7f)
                    | (low >> 1 & 0x7f << 7)
                    | (low >> 2 & 0x7f << 14)
                    | (low >> 3 & 0x7f << 21)
                    | u32::from(b4) << 28);
            }
        }
        self.varint(5, 0x0f).map(|n| n as u32)
    }

    /// A `Vec<u8>` argument.
    #[inline]
    pub fn bytes(&mut self) -> Result<Vec<u8>, Error> {
        // A `usize` varint, as postcard bounds it on this platform.
        const BYTES: usize = (usize::BITS as usize).div_ceil(7);
        const LAST: u8 = (1u8 << (usize::BITS % 7)) - 1;
        let len = self.varint(BYTES, LAST)? as usize;
        if len > self.0.len() {
            return Err(Error::DeserializeUnexpectedEnd);
        }
        let (bytes, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(bytes.to_vec())
    }

    /// Any other argument, postcard-decoded.
    #[inline]
    pub fn value<T: DeserializeOwned>(&mut self) -> Result<T, Error> {
        let (value, rest) = postcard::take_from_bytes(self.0)?;
        self.0 = rest;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Bytes that are mostly varint-like: continuation bits set, small last bytes.
    fn varint_like() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![0x80u8..=0xff, 0u8..=0x0f, 0x10u8..=0x7f];
        proptest::collection::vec(byte, 0..12)
    }

    proptest! {
        #[test]
        fn tags_and_lengths_decode_as_postcard_decodes_them(bytes in varint_like()) {
            let mut input = Input::new(&bytes);
            let ours = input.tag().ok().map(|tag| (tag, input.0));
            let theirs = postcard::take_from_bytes::<u32>(&bytes).ok();
            prop_assert_eq!(ours, theirs);
            let mut input = Input::new(&bytes);
            let ours = input.bytes().ok().map(|bytes| (bytes, input.0));
            let theirs = postcard::take_from_bytes::<crate::__private::ByteBuf>(&bytes)
                .ok()
                .map(|(bytes, rest)| (bytes.0, rest));
            prop_assert_eq!(ours, theirs);
        }
    }
}
