//! Remote calls and casts: like local ones, in order, from every thread.

use super::*;

#[test]
fn remote_calls_and_casts_work_like_local_ones() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let local = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(local.pid()).unwrap();
        assert!(!remote.is_local() && remote.is_alive());
        remote
            .record(Note {
                seq: 1,
                text: "hello".into(),
            })
            .unwrap();
        assert_eq!(remote.count().await, Ok(1));
        assert_eq!(remote.node_name().await, Ok(id(b).to_string()));
        assert_eq!(remote.fail("no".into()).await, Ok(Err("no".into())));
        assert_eq!(
            remote.count_with_timeout(Duration::from_secs(1)).await,
            Ok(1)
        );
        // The same process, reached locally, saw the same message.
        assert_eq!(local.count().await, Ok(1));
        shutdown_all(nodes);
    });
}

#[test]
fn calls_and_casts_by_name_on_a_given_node() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        b.spawn_with::<Recorder>((), SpawnOptions::new().name("log"))
            .await
            .unwrap();
        let log = a.named_on::<Recorder>("log", &id(b));
        log.record(Note {
            seq: 1,
            text: "by name".into(),
        })
        .unwrap();
        assert_eq!(log.count().await, Ok(1));
        assert_eq!(
            log.resolve().err(),
            Some(LookupError::OnAnotherNode("log".into()))
        );
        let nobody = a.named_on::<Recorder>("nobody", &id(b));
        assert_matches!(nobody.count().await, Err(CallError::NoProc { .. }));
        // The local id falls back to a local name.
        let here = a.named_on::<Recorder>("log", &id(a));
        assert_matches!(here.count().await, Err(CallError::NoProc { .. }));
        shutdown_all(nodes);
    });
}

#[test]
fn remote_call_errors_are_the_local_ones() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let server = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(server.pid()).unwrap();

        assert_matches!(
            remote.hang_with_timeout(Duration::from_millis(50)).await,
            Err(CallError::Timeout { .. })
        );
        assert_eq!(
            remote.crash().await,
            Err(CallError::Exited(ExitReason::Panic(
                "asked to crash".into()
            )))
        );
        assert_matches!(remote.count().await, Err(CallError::NoProc { .. }));
        assert_eq!(
            remote.record(Note {
                seq: 0,
                text: String::new()
            }),
            Ok(()),
            "a cast to a dead remote process is not known to fail"
        );

        let other = b
            .spawn_with::<Other>((), SpawnOptions::new().name("x"))
            .await
            .unwrap();
        let wrong = a.named_on::<Recorder>("x", &id(b));
        assert!(matches!(
            wrong.count().await,
            Err(CallError::WrongBehavior { found, .. }) if found == "other"
        ));
        let _ = other;

        // A local-only behaviour on another node: neither a cast nor a call can reach it.
        let forwarder = b.spawn::<Forwarder>(server.clone()).await.unwrap();
        b.register_global("fwd", forwarder.pid()).await.unwrap();
        common::eventually("a to know the name", || a.whereis_global("fwd").is_some()).await;
        let local_only = a.named_global::<Forwarder>("fwd");
        let note = Note {
            seq: 1,
            text: String::new(),
        };
        assert_eq!(
            local_only.forward(note),
            Err(SendError::LocalOnly {
                behavior: std::any::type_name::<Forwarder>().to_owned()
            })
        );
        shutdown_all(nodes);
    });
}

#[test]
fn a_deferred_remote_call_fails_with_exited_when_the_server_dies() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let server = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(server.pid()).unwrap();
        let waiting = smol::spawn({
            let remote = remote.clone();
            async move { remote.hang().await }
        });
        common::eventually("the deferred call to be taken", || {
            b.process_info(server.pid())
                .is_some_and(|i| i.message_count == 1)
        })
        .await;
        b.kill(server.pid());
        assert_eq!(
            within("the deferred call's failure", waiting).await,
            Err(CallError::Exited(ExitReason::Killed))
        );
        shutdown_all(nodes);
    });
}

#[test]
fn a_remote_process_is_stopped_with_its_reason() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let server = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(server.pid()).unwrap();
        let reason = ExitReason::Custom("retired".into());
        assert_eq!(remote.stop(reason.clone()).await, Ok(reason.clone()));
        assert_eq!(server.exited().await, reason);
        assert_matches!(
            remote.stop(ExitReason::Normal).await,
            Err(SendError::NoProc { .. })
        );
        shutdown_all(nodes);
    });
}

#[test]
fn messages_from_one_process_arrive_in_order() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let server = b.spawn::<Recorder>(()).await.unwrap();
        let remote = a.server_ref::<Recorder>(server.pid()).unwrap();
        let count = 5_000;
        for seq in 0..count {
            loop {
                match remote.record(Note {
                    seq,
                    text: String::new(),
                }) {
                    Ok(()) => break,
                    Err(SendError::Overloaded) => smol::future::yield_now().await,
                    Err(error) => panic!("{error}"),
                }
            }
        }
        let notes = remote.notes().await.unwrap();
        let seqs: Vec<u64> = notes.iter().map(|n| n.seq).collect();
        assert_eq!(seqs, (0..count).collect::<Vec<_>>());
        shutdown_all(nodes);
    });
}

#[test]
fn concurrent_callers_on_every_thread_each_get_their_own_replies() {
    // Callers on both of a's threads and servers on both of b's write their frames
    // straight to the socket when the connection is idle, and through the writer when it
    // is not: however they interleave, every frame must arrive whole and in place.
    run_blocking(async {
        let nodes = start_patient_pair().await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let servers = remote_recorders(a, b, 3).await;
        let callers: Vec<_> = (0..8u8)
            .map(|caller| {
                let servers = servers.clone();
                a.spawn_task(async move {
                    for i in 0..150usize {
                        let server = &servers[(caller as usize + i) % servers.len()];
                        let len = [0, 90, 9_000, 60_000][i % 4];
                        let bytes: Vec<u8> = (0..len).map(|j| caller ^ (i + j) as u8).collect();
                        let seq = u64::from(caller) << 32 | i as u64;
                        server
                            .record(Note {
                                seq,
                                text: String::new(),
                            })
                            .unwrap();
                        let echoed = server
                            .echo_with_timeout(bytes.clone(), Duration::from_secs(20))
                            .await
                            .unwrap();
                        assert!(echoed == bytes, "caller {caller}, call {i}: wrong reply");
                    }
                })
            })
            .collect();
        for caller in callers {
            within("a caller's 150 calls", caller).await;
        }
        let mut recorded = 0;
        for server in &servers {
            recorded += server.count().await.unwrap();
        }
        assert_eq!(recorded, 8 * 150);
        shutdown_all(nodes);
    });
}

#[test]
fn calls_and_casts_go_on_while_the_readers_move_to_their_processes_threads() {
    // A connection's reader moves to the thread of the processes it feeds once its
    // deliveries settle there (after 64 in a row): on b towards the server, on a towards
    // the caller. Servers on both of b's threads, sent bursts and calls in turn, make each
    // reader move several times mid-stream.
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let servers = remote_recorders(a, b, 2).await;
        let caller = a.spawn_task(async move {
            let mut seq = 0;
            for round in 0..6 {
                let server = &servers[round % 2];
                // A burst, which b's reader reads many frames at a time: it moves with
                // frames still in its buffer...
                for _ in 0..300 {
                    let note = Note {
                        seq,
                        text: String::new(),
                    };
                    server.record(note).unwrap();
                    seq += 1;
                }
                // ...and calls one at a time.
                for i in 0..100u64 {
                    let bytes = i.to_le_bytes().to_vec();
                    assert_eq!(server.echo(bytes.clone()).await.unwrap(), bytes);
                }
            }
            let mut seqs = Vec::new();
            for server in &servers {
                seqs.extend(server.notes().await.unwrap().into_iter().map(|n| n.seq));
            }
            seqs.sort_unstable();
            let all: Vec<u64> = (0..1_800).collect();
            assert_eq!(seqs, all, "every cast arrived once");
        });
        within("the calls and casts", caller).await;
        shutdown_all(nodes);
    });
}

#[test]
fn casts_from_both_threads_keep_each_senders_order_while_the_writer_follows_them() {
    // A connection's writer moves to the thread whose tasks queue its frames, once they
    // settle there. Senders on both of a's threads casting bursts in turn make it move
    // back and forth mid-stream; each sender's casts still arrive once, in order.
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let server = remote_recorders(a, b, 1).await.remove(0);
        let senders: Vec<_> = (0..4u64)
            .map(|sender| {
                let server = server.clone();
                a.spawn_task(async move {
                    for i in 0..1_200u64 {
                        let note = Note {
                            seq: sender << 32 | i,
                            text: String::new(),
                        };
                        while let Err(error) = server.try_record(note.clone()) {
                            assert!(matches!(error.into_parts().0, SendError::Overloaded));
                            smol::future::yield_now().await;
                        }
                        if i % 200 == 199 {
                            smol::future::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for sender in senders {
            within("a sender's casts", sender).await;
        }
        let notes = within("the casts to arrive", async {
            loop {
                let notes = server.notes().await.unwrap();
                if notes.len() >= 4 * 1_200 {
                    return notes;
                }
                smol::future::yield_now().await;
            }
        })
        .await;
        for sender in 0..4u64 {
            let seqs: Vec<u64> = notes
                .iter()
                .filter(|note| note.seq >> 32 == sender)
                .map(|note| note.seq & 0xffff_ffff)
                .collect();
            let all: Vec<u64> = (0..1_200).collect();
            assert_eq!(seqs, all, "sender {sender}: each cast once, in order");
        }
        shutdown_all(nodes);
    });
}
