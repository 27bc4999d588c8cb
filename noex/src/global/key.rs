//! The global table's keys: a name held inline when short, so that a lookup compares it
//! where the table stores it, with no pointer to follow (the replica's names arrive over
//! time, on several threads, and would otherwise lie scattered in memory).

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Names up to this many bytes are held inline.
const INLINE: usize = 22;

/// A name as a key of the global table; looked up by its bytes.
#[derive(Clone)]
pub(crate) enum Key {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Arc<[u8]>),
}

impl Key {
    pub(crate) fn new(name: &str) -> Key {
        let source = name.as_bytes();
        if source.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..source.len()].copy_from_slice(source);
            Key::Inline {
                len: source.len() as u8,
                bytes,
            }
        } else {
            Key::Heap(Arc::from(source))
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(bytes) => bytes,
        }
    }

    /// The name (always UTF-8: a key is made from a `&str`).
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl Hash for Key {
    // The same as the bytes' own hash, which lookups use.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::Key;

    #[test]
    fn short_and_long_names_are_found_by_their_bytes() {
        let names = [
            "",
            "a",
            "exactly-22-bytes-long!",
            "twenty-three bytes long",
            "é",
        ];
        let map: HashMap<Key, usize> = names.iter().map(|n| (Key::new(n), n.len())).collect();
        for name in names {
            assert_eq!(map.get(name.as_bytes()), Some(&name.len()));
            assert_eq!(Key::new(name).as_str(), name);
        }
        assert!(matches!(
            Key::new("exactly-22-bytes-long!"),
            Key::Inline { .. }
        ));
        assert!(matches!(Key::new("twenty-three bytes long"), Key::Heap(_)));
        assert_eq!(map.get("nobody".as_bytes()), None);
    }
}
