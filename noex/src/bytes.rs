//! [`Bytes`]: a byte buffer that arrives from another node without being copied.

use std::cell::RefCell;
use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::dist::spares::Pooled;

/// An immutable byte buffer, cheap to clone, for large binary payloads — noex's Erlang
/// binary.
///
/// In a message to another node it is encoded as one block of bytes (as `serde_bytes`
/// does, where a `Vec<u8>` is encoded byte by byte). In a large message (1 MiB or more) it
/// is not copied on either side: the sending node lends a `Bytes` of 64 KiB or more to the
/// message's frame and writes it to the socket from where it is (the frame keeps a clone
/// until then), and the receiving node reads the message straight into one buffer and
/// decodes a `Bytes` in it as a view of that buffer: no copy, and no fresh memory to fill,
/// however large. (The buffer is freed once every view of it is dropped.) In smaller
/// messages, and through other serde formats, it is copied as any byte buffer.
///
/// ```
/// use noex::Bytes;
///
/// let bytes = Bytes::from(vec![1, 2, 3, 4]);
/// let tail = bytes.slice(2..4);
/// assert_eq!(&*tail, &[3, 4]);
/// assert_eq!(bytes.len(), 4);
/// ```
#[derive(Clone)]
pub struct Bytes {
    owner: Owner,
    range: Range<usize>,
}

#[derive(Clone)]
enum Owner {
    Vec(Arc<Vec<u8>>),
    Static(&'static [u8]),
    /// The buffer a large message from another node was received in.
    Received(Arc<Pooled>),
}

impl Owner {
    fn bytes(&self) -> &[u8] {
        match self {
            Owner::Vec(bytes) => bytes,
            Owner::Static(bytes) => bytes,
            Owner::Received(buffer) => buffer.bytes(),
        }
    }
}

impl Bytes {
    /// An empty buffer.
    pub const fn new() -> Self {
        Bytes {
            owner: Owner::Static(&[]),
            range: 0..0,
        }
    }

    /// A buffer of static bytes (not copied).
    pub const fn from_static(bytes: &'static [u8]) -> Self {
        Bytes {
            owner: Owner::Static(bytes),
            range: 0..bytes.len(),
        }
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// `true` if there are none.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// A view of part of this buffer (no copy).
    ///
    /// # Panics
    ///
    /// If `range` is out of bounds, as slicing does.
    #[must_use = "`slice` returns a view and leaves this buffer as it is"]
    pub fn slice(&self, range: Range<usize>) -> Bytes {
        let _ = &self[range.clone()];
        Bytes {
            owner: self.owner.clone(),
            range: self.range.start + range.start..self.range.start + range.end,
        }
    }

    /// The bytes as a `Vec` (moved out if this is the only handle of a `Vec` it was made
    /// from, copied otherwise).
    pub fn into_vec(self) -> Vec<u8> {
        match self.owner {
            Owner::Vec(vec) if self.range == (0..vec.len()) => {
                Arc::try_unwrap(vec).unwrap_or_else(|vec| vec.as_ref().clone())
            }
            owner => owner.bytes()[self.range].to_vec(),
        }
    }
}

impl Default for Bytes {
    fn default() -> Self {
        Bytes::new()
    }
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.owner.bytes()[self.range.clone()]
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        let range = 0..bytes.len();
        Bytes {
            owner: Owner::Vec(Arc::new(bytes)),
            range,
        }
    }
}

impl From<&'static [u8]> for Bytes {
    fn from(bytes: &'static [u8]) -> Self {
        Bytes::from_static(bytes)
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(bytes: Bytes) -> Self {
        bytes.into_vec()
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.len())
    }
}

impl PartialEq for Bytes {
    fn eq(&self, other: &Bytes) -> bool {
        **self == **other
    }
}

impl Eq for Bytes {}

impl std::hash::Hash for Bytes {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.len() < LEND_FROM {
            return serializer.serialize_bytes(self);
        }
        offer(self);
        let serialized = serializer.serialize_bytes(self);
        withdraw();
        serialized
    }
}

/// A `Bytes` of at least this many bytes, in a large message encoded off the scheduler
/// threads, is lent to the frame rather than copied into it (see [`lending`]).
pub(crate) const LEND_FROM: usize = 64 * 1024;

/// The `Bytes` a frame being encoded on this thread borrows, each with the offset in the
/// frame's own bytes before which it goes.
pub(crate) type Lent = Vec<(usize, Bytes)>;

/// What [`lending`] keeps while it runs.
struct Lending {
    /// The `Bytes` being serialized, until the encoder takes its slice.
    offered: Option<Bytes>,
    lent: Lent,
}

thread_local! {
    /// Set while a large frame is encoded on this thread (see [`lending`]).
    static LENDING: RefCell<Option<Lending>> = const { RefCell::new(None) };
}

/// Runs `encode` with the `Bytes` of [`LEND_FROM`] bytes or more it serializes lent to
/// the frame instead of copied: the encoder (`wire::append_within`) asks [`lend`] for each
/// long slice it is given, and skips the slices lent. Returns what was lent, in order.
///
/// A `Bytes` is immutable and shares its buffer, so a frame holding one instead of a copy
/// holds the same bytes, without copying megabytes to the frame first.
pub(crate) fn lending<T>(encode: impl FnOnce() -> T) -> (T, Lent) {
    struct Reset(Option<Lending>);
    impl Drop for Reset {
        fn drop(&mut self) {
            LENDING.with(|current| *current.borrow_mut() = self.0.take());
        }
    }
    let fresh = Lending {
        offered: None,
        lent: Vec::new(),
    };
    let previous = LENDING.with(|current| current.borrow_mut().replace(fresh));
    let mut reset = Reset(previous);
    let encoded = encode();
    let lent = LENDING.with(|current| {
        std::mem::replace(&mut *current.borrow_mut(), reset.0.take())
            .map(|lending| lending.lent)
            .unwrap_or_default()
    });
    (encoded, lent)
}

/// A `Bytes` about to be serialized offers itself (if a frame is being encoded).
fn offer(bytes: &Bytes) {
    LENDING.with(|current| {
        if let Some(lending) = current.borrow_mut().as_mut() {
            lending.offered = Some(bytes.clone());
        }
    });
}

/// The serialization is over: an offer not taken lapses.
fn withdraw() {
    LENDING.with(|current| {
        if let Some(lending) = current.borrow_mut().as_mut() {
            lending.offered = None;
        }
    });
}

/// Called by the encoder with a slice it is to append at `at` in the frame's own bytes:
/// `true` if the slice is that of the `Bytes` being serialized, which is lent to the frame
/// instead (see [`lending`]).
pub(crate) fn lend(slice: &[u8], at: usize) -> bool {
    LENDING.with(|current| {
        let mut current = current.borrow_mut();
        let Some(lending) = current.as_mut() else {
            return false;
        };
        let offered = lending.offered.as_ref().is_some_and(|bytes| {
            std::ptr::eq(bytes.as_ptr(), slice.as_ptr()) && bytes.len() == slice.len()
        });
        if let (true, Some(bytes)) = (offered, lending.offered.take()) {
            lending.lent.push((at, bytes));
        }
        offered
    })
}

thread_local! {
    /// The buffer of the large message being decoded on this thread, if any: a `Bytes`
    /// decoded from bytes inside it becomes a view of it.
    static RECEIVED: RefCell<Option<Arc<Pooled>>> = const { RefCell::new(None) };
}

/// Runs `decode` with `buffer` as the buffer `Bytes` may share (see [`Bytes`]).
pub(crate) fn sharing<T>(buffer: &Arc<Pooled>, decode: impl FnOnce() -> T) -> T {
    struct Reset(Option<Arc<Pooled>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            RECEIVED.with(|current| *current.borrow_mut() = self.0.take());
        }
    }
    let previous = RECEIVED.with(|current| current.borrow_mut().replace(buffer.clone()));
    let _reset = Reset(previous);
    decode()
}

/// A view of the buffer being decoded if `bytes` lies in it.
fn shared(bytes: &[u8]) -> Option<Bytes> {
    RECEIVED.with(|current| {
        let current = current.borrow();
        let buffer = current.as_ref()?;
        let whole = buffer.bytes();
        let start = (bytes.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
        let end = start.checked_add(bytes.len())?;
        (end <= whole.len()).then(|| Bytes {
            owner: Owner::Received(buffer.clone()),
            range: start..end,
        })
    })
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;

        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = Bytes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }

            fn visit_borrowed_bytes<E: de::Error>(self, bytes: &'de [u8]) -> Result<Bytes, E> {
                Ok(shared(bytes).unwrap_or_else(|| Bytes::from(bytes.to_vec())))
            }

            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes::from(bytes.to_vec()))
            }

            fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes::from(bytes))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(byte) = seq.next_element()? {
                    bytes.push(byte);
                }
                Ok(Bytes::from(bytes))
            }
        }

        deserializer.deserialize_bytes(BytesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_inside_the_received_buffer_are_shared_and_others_copied() {
        let frame: Vec<u8> = postcard::to_allocvec(&Bytes::from(vec![9u8; 100])).unwrap();
        let buffer = Arc::new(Pooled::unpooled(frame));
        let inside: Bytes = sharing(&buffer, || postcard::from_bytes(buffer.bytes())).unwrap();
        assert_eq!(&*inside, &[9u8; 100][..]);
        assert!(matches!(inside.owner, Owner::Received(_)), "a view");
        assert_eq!(Arc::strong_count(&buffer), 2);
        let elsewhere = postcard::to_allocvec(&Bytes::from_static(b"abc")).unwrap();
        let copied: Bytes = sharing(&buffer, || postcard::from_bytes(&elsewhere)).unwrap();
        assert!(matches!(copied.owner, Owner::Vec(_)));
        let outside: Bytes = postcard::from_bytes(buffer.bytes()).unwrap();
        assert!(matches!(outside.owner, Owner::Vec(_)), "not while decoding");
        drop(inside);
        assert_eq!(Arc::strong_count(&buffer), 1);
    }

    #[test]
    fn slices_and_conversions() {
        let bytes = Bytes::from(vec![1, 2, 3, 4, 5]);
        let middle = bytes.slice(1..4);
        assert_eq!(&*middle, &[2, 3, 4]);
        assert_eq!(middle.slice(1..2).as_ref(), &[3]);
        assert_eq!(middle.clone().into_vec(), vec![2, 3, 4]);
        drop(middle);
        assert_eq!(Vec::from(bytes), vec![1, 2, 3, 4, 5]);
        assert!(Bytes::new().is_empty());
        assert_eq!(Bytes::from_static(b"xy"), Bytes::from(b"xy".to_vec()));
    }
}
