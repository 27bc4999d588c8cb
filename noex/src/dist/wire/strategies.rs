//! Arbitrary messages, for the property tests of `wire` and `header`.

use proptest::prelude::*;

use super::*;

pub(crate) fn address() -> impl Strategy<Value = Address> {
    prop_oneof![
        any::<u64>().prop_map(|serial| Address::Pid { serial }),
        ".{0,20}".prop_map(Address::Name),
    ]
}

/// A message of every kind.
pub(crate) fn message() -> impl Strategy<Value = WireMessage> {
    prop_oneof![
        (
            any::<u16>(),
            ".{0,30}",
            any::<u64>(),
            any::<[u8; 32]>(),
            any::<bool>(),
            any::<u64>()
        )
            .prop_map(|(version, node, incarnation, nonce, hidden, max_message)| {
                WireMessage::Hello(Box::new(Hello {
                    version,
                    node,
                    incarnation,
                    nonce,
                    hidden,
                    max_message,
                }))
            }),
        (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
            |(process_count, stamp_us, echo_us, held_us)| WireMessage::Heartbeat {
                process_count,
                uptime_ms: stamp_us / 1000,
                stamp_us,
                echo_us,
                held_us,
            }
        ),
        any::<[u8; 32]>().prop_map(|proof| WireMessage::Proof { proof }),
        (any::<u64>(), address(), any::<u32>(), any::<u64>()).prop_map(
            |(id, to, behavior, timeout_ms)| WireMessage::Call {
                id,
                to,
                behavior,
                timeout_ms
            }
        ),
        (address(), any::<u32>()).prop_map(|(to, behavior)| WireMessage::Cast { to, behavior }),
        (address(), any::<u32>()).prop_map(|(to, behavior)| WireMessage::Info { to, behavior }),
        any::<u64>().prop_map(|id| WireMessage::Reply {
            id,
            outcome: RemoteOutcome::Reply
        }),
        any::<u64>().prop_map(|id| WireMessage::Reply {
            id,
            outcome: RemoteOutcome::NoProc
        }),
        any::<u64>().prop_map(|id| WireMessage::Reply {
            id,
            outcome: RemoteOutcome::NotDecoded("no".into())
        }),
        any::<u64>().prop_map(|id| WireMessage::Reply {
            id,
            outcome: RemoteOutcome::NoReply
        }),
        (any::<u64>(), any::<bool>(), any::<u64>())
            .prop_map(|(id, last, size)| WireMessage::Fragment { id, last, size }),
        any::<u32>().prop_map(|bytes| WireMessage::FragmentAck { bytes }),
        (any::<u64>(), address()).prop_map(|(id, to)| WireMessage::Stop(Box::new(Stop {
            id,
            to,
            reason: ExitReason::Normal,
            grace_ms: None,
        }))),
        Just(WireMessage::Goodbye),
        Just(WireMessage::Leaving),
        proptest::collection::vec(".{0,20}", 0..5).prop_map(|nodes| WireMessage::Members { nodes }),
    ]
}
