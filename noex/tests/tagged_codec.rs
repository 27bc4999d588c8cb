//! The direct encoding of `#[behavior]`'s message enums (`noex::__private::Tagged`, what
//! remote calls, replies and casts use) against their serde impls, which define the wire
//! format: the same bytes written, the same bytes accepted, the same budget.

use noex::__private::Tagged;
use noex::behavior;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    x: i32,
    label: String,
}

/// Messages of every shape: no argument, a `Vec<u8>`, several, nested serde types.
#[behavior(name = "tagged-codec-shapes")]
pub struct Shapes;

#[behavior]
impl Shapes {
    #[init]
    fn init() -> Self {
        Shapes
    }

    #[cast]
    fn nothing(&mut self) {}

    #[cast]
    fn bytes(&mut self, payload: Vec<u8>) {
        let _ = payload;
    }

    #[cast]
    fn several(&mut self, count: u64, payload: Vec<u8>, name: String, point: Option<Point>) {
        let _ = (count, payload, name, point);
    }

    #[cast]
    #[tag = 7]
    fn small_tag(&mut self, values: Vec<u16>) {
        let _ = values;
    }

    #[call]
    fn echo(&mut self, payload: Vec<u8>) -> Vec<u8> {
        payload
    }

    #[call]
    fn pair(&mut self, a: i64, b: Point) -> (i64, Point) {
        (a, b)
    }

    #[call]
    fn ping(&mut self) {}
}

type Cast = __NoexShapesCast;
type Call = __NoexShapesCall;
type Reply = __NoexShapesReply;

fn point() -> impl Strategy<Value = Point> {
    (any::<i32>(), ".{0,8}").prop_map(|(x, label)| Point { x, label })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..300)
}

/// The arguments the messages below are built from (the message enums are neither `Debug`
/// nor `Clone`, which strategies need).
#[derive(Clone, Debug)]
struct Parts {
    kind: u8,
    count: u64,
    payload: Vec<u8>,
    name: String,
    point: Option<Point>,
    values: Vec<u16>,
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        any::<u8>(),
        any::<u64>(),
        bytes(),
        ".{0,8}",
        proptest::option::of(point()),
        proptest::collection::vec(any::<u16>(), 0..8),
    )
        .prop_map(|(kind, count, payload, name, point, values)| Parts {
            kind,
            count,
            payload,
            name,
            point,
            values,
        })
}

fn cast(parts: &Parts) -> Cast {
    let Parts {
        count,
        payload,
        name,
        point,
        values,
        ..
    } = parts.clone();
    match parts.kind % 4 {
        0 => Cast::Nothing(),
        1 => Cast::Bytes(payload),
        2 => Cast::Several(count, payload, name, point),
        _ => Cast::SmallTag(values),
    }
}

fn call(parts: &Parts) -> Call {
    let point = parts.point.clone().unwrap_or(Point {
        x: 1,
        label: parts.name.clone(),
    });
    match parts.kind % 3 {
        0 => Call::Echo(parts.payload.clone()),
        1 => Call::Pair(parts.count as i64, point),
        _ => Call::Ping(),
    }
}

fn reply(parts: &Parts) -> Reply {
    let point = parts.point.clone().unwrap_or(Point {
        x: -1,
        label: parts.name.clone(),
    });
    match parts.kind % 3 {
        0 => Reply::Echo(parts.payload.clone()),
        1 => Reply::Pair((parts.count as i64, point)),
        _ => Reply::Ping,
    }
}

fn direct<T: Tagged>(message: &T) -> Vec<u8> {
    let mut out = vec![0xee];
    message.encode_tagged(&mut out, usize::MAX).unwrap();
    out.split_off(1)
}

/// Encodes as serde does, and decodes what it encodes back to the same bytes.
fn same_bytes<T: Tagged + Serialize>(message: &T) -> Result<Vec<u8>, TestCaseError> {
    let serde = postcard::to_allocvec(message).unwrap();
    let ours = direct(message);
    prop_assert_eq!(&ours, &serde);
    let decoded = T::decode_tagged(&serde).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(direct(&decoded), serde.clone());
    Ok(serde)
}

/// Accepts exactly what serde accepts, as the same message.
fn same_verdict<T>(bytes: &[u8]) -> Result<(), TestCaseError>
where
    T: Tagged + Serialize + serde::de::DeserializeOwned,
{
    let serde = postcard::from_bytes::<T>(bytes);
    let ours = T::decode_tagged(bytes);
    prop_assert_eq!(serde.is_ok(), ours.is_ok());
    if let (Ok(serde), Ok(ours)) = (serde, ours) {
        prop_assert_eq!(direct(&serde), direct(&ours));
    }
    Ok(())
}

fn mutate(mut bytes: Vec<u8>, flips: &[(usize, u8)], cut: usize) -> Vec<u8> {
    if !bytes.is_empty() {
        for &(at, byte) in flips {
            let at = at % bytes.len();
            bytes[at] ^= byte;
        }
        bytes.truncate(bytes.len() - cut % (bytes.len() + 1));
    }
    bytes
}

proptest! {
    #[test]
    fn casts_are_encoded_as_serde_encodes_them(parts in parts()) {
        same_bytes(&cast(&parts))?;
    }

    #[test]
    fn calls_and_replies_are_encoded_as_serde_encodes_them(parts in parts()) {
        same_bytes(&call(&parts))?;
        same_bytes(&reply(&parts))?;
    }

    #[test]
    fn damaged_messages_are_refused_or_accepted_as_serde_does(
        parts in parts(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        cut in any::<usize>(),
        tail in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let mut bytes = mutate(same_bytes(&cast(&parts))?, &flips, cut);
        bytes.extend_from_slice(&tail);
        same_verdict::<Cast>(&bytes)?;
        same_verdict::<Call>(&mutate(same_bytes(&call(&parts))?, &flips, cut))?;
        same_verdict::<Reply>(&mutate(same_bytes(&reply(&parts))?, &flips, cut))?;
    }

    #[test]
    fn arbitrary_bytes_are_refused_or_accepted_as_serde_does(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
        same_verdict::<Cast>(&bytes)?;
        same_verdict::<Call>(&bytes)?;
        same_verdict::<Reply>(&bytes)?;
    }

    #[test]
    fn a_message_over_the_budget_is_refused_as_buffer_full(parts in parts(), most in 0usize..64) {
        let message = cast(&parts);
        let len = direct(&message).len();
        let mut out = vec![1, 2, 3];
        let encoded = message.encode_tagged(&mut out, most);
        if len <= most {
            prop_assert!(encoded.is_ok());
            prop_assert_eq!(out.len(), 3 + len);
        } else {
            prop_assert_eq!(encoded, Err(postcard::Error::SerializeBufferFull));
        }
        prop_assert_eq!(&out[..3], &[1, 2, 3]);
    }
}

#[test]
fn an_unknown_tag_is_refused() {
    // Tag 8 is no message of `Shapes` (7 is `small_tag`).
    assert!(Cast::decode_tagged(&[8, 0]).is_err());
    assert!(postcard::from_bytes::<Cast>(&[8, 0]).is_err());
    assert!(Cast::decode_tagged(&[7, 0]).is_ok());
}
