//! Large messages, traffic counts, and messages that do not encode or decode.

use super::*;

#[test]
fn a_message_larger_than_a_frame_arrives_whole() {
    run_blocking(async {
        let nodes = start_patient_pair().await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let server = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(server.pid()).unwrap();
        // 20 MiB: more than the 16 MiB frame limit, so it must travel in fragments.
        let big: Vec<u8> = (0..20 << 20).map(|i| (i % 251) as u8).collect();
        let echoed = remote
            .echo_with_timeout(big.clone(), Duration::from_secs(30))
            .await
            .unwrap();
        assert!(echoed == big);
        assert_eq!(remote.count().await, Ok(0));
        shutdown_all(nodes);
    });
}

#[test]
fn small_calls_pass_a_large_message_in_flight() {
    run_blocking(async {
        let nodes = start_patient_pair().await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let sink = b.spawn::<Recorder>(()).await.unwrap();
        let echo = b.spawn::<Recorder>(()).await.unwrap();
        let sink = a.server_ref::<Recorder>(sink.pid()).unwrap();
        let echo = a.server_ref::<Recorder>(echo.pid()).unwrap();
        let forwarder = a.spawn::<Forwarder>(sink.clone()).await.unwrap();
        let size = 48 << 20;
        let before = a.cluster_stats().bytes_sent;
        forwarder
            .forward(Note {
                seq: 0,
                text: "x".repeat(size),
            })
            .unwrap();
        // Once a few MiB of it are on their way, small calls go back and forth past the
        // rest: the large message is still not delivered when they return.
        eventually("the large message to be on its way", || {
            a.cluster_stats().bytes_sent - before > 4 << 20
        })
        .await;
        for _ in 0..10 {
            assert_eq!(echo.echo(vec![7]).await, Ok(vec![7]));
        }
        assert_eq!(sink.count().await, Ok(0), "the large message is in flight");
        let arrived = async {
            while sink.count().await != Ok(1) {
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        };
        within("the large message to arrive", arrived).await;
        assert_eq!(sink.notes().await.unwrap()[0].text.len(), size);
        shutdown_all(nodes);
    });
}

#[test]
fn a_large_message_keeps_its_place_among_its_senders_messages() {
    run_blocking(async {
        let nodes = start_patient_pair().await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let recorder = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(recorder.pid()).unwrap();
        let forwarder = a.spawn::<Forwarder>(remote.clone()).await.unwrap();
        // 3 MiB: fragmented on the way, and decoded apart from the scheduler threads on
        // arrival; the small notes around it must not overtake it.
        let note = |seq, len| Note {
            seq,
            text: "x".repeat(len),
        };
        forwarder.forward(note(0, 10)).unwrap();
        forwarder.forward(note(1, 3 << 20)).unwrap();
        forwarder.forward(note(2, 10)).unwrap();
        let arrived = async {
            while remote.count().await != Ok(3) {
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        };
        within("the three notes", arrived).await;
        let notes = remote.notes().await.unwrap();
        let order: Vec<(u64, usize)> = notes.iter().map(|n| (n.seq, n.text.len())).collect();
        assert_eq!(order, vec![(0, 10), (1, 3 << 20), (2, 10)]);
        shutdown_all(nodes);
    });
}

#[test]
fn a_large_call_queued_at_a_process_that_dies_fails_with_noproc_at_once() {
    run_blocking(async {
        let nodes = start_patient_pair().await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let napper = b.spawn::<Napper>(()).await.unwrap();
        let pid = napper.pid().clone();
        let remote = a.server_ref::<Napper>(&pid).unwrap();
        let busy = smol::spawn({
            let remote = remote.clone();
            async move {
                remote
                    .nap_with_timeout(60_000, Duration::from_secs(90))
                    .await
            }
        });
        common::eventually("the nap to start", || {
            b.process_info(&pid).is_some_and(|i| i.message_count == 1)
        })
        .await;
        // 2 MiB: queued still encoded, to be decoded when the process reaches it.
        let large = smol::spawn({
            let remote = remote.clone();
            async move {
                remote
                    .size_with_timeout(vec![0; 2 << 20], Duration::from_secs(60))
                    .await
            }
        });
        common::eventually("the large call to be queued", || {
            b.process_info(&pid).is_some_and(|i| i.mailbox_len == 1)
        })
        .await;
        assert!(b.kill(&pid));
        assert_matches!(
            within("the large call", large).await,
            Err(CallError::NoProc { .. })
        );
        assert!(matches!(
            within("the busy call", busy).await,
            Err(CallError::Exited(_))
        ));
        shutdown_all(nodes);
    });
}

#[test]
fn traffic_is_counted_per_peer_and_node_wide() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let server = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(server.pid()).unwrap();
        for _ in 0..10 {
            remote.count().await.unwrap();
        }
        let _ = remote.hang_with_timeout(Duration::from_millis(20)).await;
        let stats = a.connected_nodes()[0].stats;
        assert!(stats.messages_sent >= 11, "{stats:?}");
        assert!(stats.messages_received >= 10, "{stats:?}");
        assert!(stats.bytes_sent > 0 && stats.bytes_received > 0);
        assert_eq!(stats.calls_timed_out, 1);
        assert_eq!(stats.calls_pending, 0);
        assert_eq!(a.cluster_stats().calls_timed_out, 1);
        shutdown_all(nodes);
    });
}

/// A value whose 1 does not encode and whose 2 does not decode.
#[derive(Debug, Clone, PartialEq)]
pub struct Flaky(u8);

impl Serialize for Flaky {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 == 1 {
            return Err(serde::ser::Error::custom("1 does not encode"));
        }
        serializer.serialize_u8(self.0)
    }
}

impl<'de> Deserialize<'de> for Flaky {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match u8::deserialize(deserializer)? {
            2 => Err(serde::de::Error::custom("2 does not decode")),
            n => Ok(Flaky(n)),
        }
    }
}

#[behavior]
pub struct Mirror;

#[behavior]
impl Mirror {
    #[init]
    fn init() -> Self {
        Mirror
    }

    #[call]
    fn echo(&self, value: Flaky) -> Flaky {
        value
    }

    #[call]
    fn make(&self, n: u8) -> Flaky {
        Flaky(n)
    }

    #[cast]
    fn take(&mut self, _value: Flaky) {}
}

#[test]
fn a_message_that_does_not_encode_or_decode_says_which_and_where() {
    use noex::CodecStep;
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let mirror = b.spawn::<Mirror>(()).await.unwrap();
        let remote = a.server_ref::<Mirror>(mirror.pid()).unwrap();
        let step = |result: Result<Flaky, CallError>| match result {
            Err(CallError::Codec { step, .. }) => step,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(step(remote.echo(Flaky(1)).await), CodecStep::EncodeRequest);
        assert_eq!(step(remote.echo(Flaky(2)).await), CodecStep::DecodeRequest);
        assert_eq!(step(remote.make(1).await), CodecStep::EncodeReply);
        assert_eq!(step(remote.make(2).await), CodecStep::DecodeReply);
        assert_eq!(remote.echo(Flaky(3)).await, Ok(Flaky(3)));
        // A cast that does not encode says so, with the message handed back.
        let codec = |error: &SendError| matches!(error, SendError::Codec { .. });
        let cast = remote.take(Flaky(1));
        assert!(cast.as_ref().is_err_and(codec), "{cast:?}");
        let (error, message) = remote.take_wait(Flaky(1)).await.unwrap_err().into_parts();
        assert!(codec(&error), "{error:?}");
        assert_eq!(message, Flaky(1));
        assert_eq!(a.cluster_stats().casts_dropped, 0);
        assert_eq!(remote.take(Flaky(3)), Ok(()));
        shutdown_all(nodes);
    });
}
