//! Tests of the wire format: unit tests, and property tests.

use super::*;

fn frame(message: &WireMessage, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame_with(message, &mut out, |out| {
        out.extend_from_slice(payload);
        Ok(())
    })
    .unwrap();
    out
}

#[test]
fn frames_round_trip_with_their_payload() {
    let message = WireMessage::Call {
        id: 7,
        to: Address::Name("counter".into()),
        behavior: 42,
        timeout_ms: 5_000,
    };
    let bytes = frame(&message, &[1, 2, 3]);
    assert_eq!(
        u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize,
        bytes.len() - 4
    );
    let mut buffer = Vec::new();
    smol::block_on(read_frame(&mut &bytes[..], 1024, &mut buffer)).unwrap();
    assert_eq!(decode(&buffer).unwrap(), (message, &[1u8, 2, 3][..]));
}

#[test]
fn a_failed_payload_leaves_the_output_as_it_was() {
    let mut out = vec![9];
    let failed = encode_frame_with(&WireMessage::Goodbye, &mut out, |_| {
        Err(postcard::Error::SerializeBufferFull)
    });
    assert!(failed.is_err());
    assert_eq!(out, vec![9]);
}

#[test]
fn an_oversized_length_is_refused_before_reading_the_body() {
    let mut bytes = u32::MAX.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0; 8]);
    let mut buffer = Vec::new();
    let error = smol::block_on(read_frame(&mut &bytes[..], 1024, &mut buffer)).unwrap_err();
    assert!(matches!(error, WireError::Oversized { len, max: 1024 } if len == u32::MAX as usize));
    assert!(
        buffer.capacity() < 1024,
        "nothing was allocated for the frame"
    );
}

#[test]
fn truncated_garbage_and_trailing_bytes_are_errors() {
    let bytes = frame(&WireMessage::Goodbye, &[]);
    let mut buffer = Vec::new();
    assert!(smol::block_on(read_frame(&mut &bytes[..bytes.len() - 1], 64, &mut buffer)).is_err());
    assert!(decode(&[0xff, 0xff, 0xff]).is_err());
    // A kind without payload followed by bytes.
    let goodbye = frame(&WireMessage::Goodbye, &[0]);
    assert!(decode(&goodbye[4..]).is_err());
    let no_reply = frame(
        &WireMessage::Reply {
            id: 1,
            outcome: RemoteOutcome::NoProc,
        },
        &[0],
    );
    assert!(decode(&no_reply[4..]).is_err());
}

/// Property tests: whatever bytes arrive, decoding ends in a value or an error, never a
/// panic, and what is encoded decodes back.
mod fuzz {
    use proptest::prelude::*;

    use super::super::strategies::message;
    use super::*;

    /// A message with a payload if its kind has one.
    fn framed() -> impl Strategy<Value = (WireMessage, Vec<u8>)> {
        (message(), proptest::collection::vec(any::<u8>(), 0..200)).prop_map(
            |(message, mut payload)| {
                if !message.has_payload() {
                    payload.clear();
                }
                (message, payload)
            },
        )
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn arbitrary_streams_never_panic_the_frame_reader(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut buffer = Vec::new();
            let mut input = &bytes[..];
            // Read frames until the stream ends or breaks the protocol.
            while smol::block_on(read_frame(&mut input, 256, &mut buffer)).is_ok() {
                let _ = decode(&buffer);
            }
            prop_assert!(buffer.len() <= 256);
        }

        #[test]
        fn what_is_encoded_decodes_back((message, payload) in framed()) {
            let mut frame = Vec::new();
            encode_frame_with(&message, &mut frame, |out| {
                out.extend_from_slice(&payload);
                Ok(())
            }).unwrap();
            let mut buffer = Vec::new();
            smol::block_on(read_frame(&mut &frame[..], usize::MAX, &mut buffer)).unwrap();
            let (decoded, rest) = decode(&buffer).unwrap();
            prop_assert_eq!(decoded, message);
            prop_assert_eq!(rest, &payload[..]);
        }

        #[test]
        fn a_corrupted_frame_is_an_error_or_another_message_never_a_panic(
            (message, payload) in framed(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let mut body = Vec::new();
            encode_frame_with(&message, &mut body, |out| {
                out.extend_from_slice(&payload);
                Ok(())
            }).unwrap();
            let mut body = body.split_off(4);
            for (at, byte) in flips {
                if !body.is_empty() {
                    let at = at % body.len();
                    body[at] ^= byte;
                }
            }
            let _ = decode(&body);
        }
    }
}
