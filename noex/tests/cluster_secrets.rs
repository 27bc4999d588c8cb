//! Safe secrets: a node reachable beyond loopback needs one, it can come from a file or
//! the environment, and connections that never finish their handshake are closed while the
//! node goes on serving its peers and letting others join.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use futures_lite::future::poll_once;
use socket2::{Domain, Socket, Type};

use common::raw::Raw;
use common::{cluster_config, eventually, run_blocking, wait_connected, within};
use noex::{ClusterConfig, ClusterEvent, Node, RefusedReason, StartError};

#[test]
fn a_node_listening_beyond_loopback_refuses_to_start_without_a_secret() {
    run_blocking(async {
        let everywhere = "0.0.0.0:0".parse().unwrap();
        let config = ClusterConfig::new("open")
            .bind(everywhere)
            .advertise_host("127.0.0.1");
        match Node::start(config).await {
            Err(StartError::MissingSecret { address }) => assert_eq!(address, everywhere),
            Err(other) => panic!("expected MissingSecret, got {other}"),
            Ok(node) => {
                node.shutdown();
                panic!("started without a secret");
            }
        }
        let message = StartError::MissingSecret {
            address: everywhere,
        }
        .to_string();
        assert!(
            message.contains("secret_file") && message.contains("openssl rand"),
            "{message}"
        );
        // On loopback, a node alone on its machine may go without (tests, a laptop).
        let local = Node::start(ClusterConfig::new("local")).await.unwrap();
        local.shutdown();
    });
}

#[test]
fn the_secret_can_come_from_a_file_or_the_environment() {
    run_blocking(async {
        let dir = std::env::temp_dir().join(format!("noex-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A variable every environment has (setting one would race with other threads):
        // its value is the secret, in the file as well (with a final newline).
        let variable = "PATH";
        let secret = std::env::var(variable).expect("PATH is set");
        let file = dir.join("secret");
        std::fs::write(&file, format!("{secret}\n")).unwrap();

        let base = |name: &str| {
            ClusterConfig::new(name)
                .heartbeat(Duration::from_millis(100), Duration::from_millis(800))
                .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        };
        let a = Node::start(base("a").secret_file(&file)).await.unwrap();
        let seed = a.local_node_id().unwrap().to_string();
        let b = Node::start(base("b").secret_env(variable).seed(seed.clone()))
            .await
            .unwrap();
        let c = Node::start(base("c").secret(secret.trim()).seed(seed))
            .await
            .unwrap();
        for node in [&a, &b, &c] {
            wait_connected(node, 2).await;
        }

        let missing = Node::start(base("d").secret_file(dir.join("nothing here"))).await;
        assert!(
            matches!(missing, Err(StartError::Secret { .. })),
            "{missing:?}"
        );
        let unset = Node::start(base("e").secret_env("NOEX_TEST_SECRET_NEVER_SET")).await;
        assert!(matches!(unset, Err(StartError::Secret { .. })), "{unset:?}");
        std::fs::write(&file, "\n").unwrap();
        let empty = Node::start(base("f").secret_file(&file)).await;
        assert!(
            matches!(&empty, Err(StartError::Secret { error, .. }) if error.contains("empty")),
            "{empty:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        for node in [a, b, c] {
            node.shutdown();
        }
    });
}

/// A secret that is not UTF-8 is refused without being shown: `std::env::VarError`'s
/// text quotes the value. (The variable is set for a child process, this test's binary
/// again: setting one here would race with other threads.)
#[cfg(unix)]
#[test]
fn a_secret_that_cannot_be_read_is_not_shown_in_the_error() {
    const CHILD: &str = "NOEX_TEST_SECRET_CHILD";
    const VARIABLE: &str = "NOEX_TEST_SECRET_NOT_UTF8";
    const TEST: &str = "a_secret_that_cannot_be_read_is_not_shown_in_the_error";
    if std::env::var_os(CHILD).is_some() {
        run_blocking(async {
            let started = Node::start(ClusterConfig::new("g").secret_env(VARIABLE)).await;
            let error = match started {
                Ok(node) => {
                    node.shutdown();
                    panic!("started with a secret that is not UTF-8");
                }
                Err(error) => error,
            };
            assert!(matches!(error, StartError::Secret { .. }), "{error:?}");
            for text in [error.to_string(), format!("{error:?}")] {
                assert!(!text.contains("hunter"), "the secret is shown: {text}");
            }
        });
        return;
    }
    use std::os::unix::ffi::OsStrExt;
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--test-threads=1", "--nocapture"])
        .env(CHILD, "1")
        .env(VARIABLE, std::ffi::OsStr::from_bytes(b"hunter2\xff"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("1 passed"), "the child ran no test: {said}");
}

#[test]
fn a_wrong_secret_is_reported_as_a_refusal_on_both_sides() {
    run_blocking(async {
        let a = Node::start(cluster_config("a")).await.unwrap();
        let a_events = a.cluster_events();
        let seed = a.local_node_id().unwrap().to_string();
        let b = Node::start(cluster_config("b").secret("another secret").seed(seed))
            .await
            .unwrap();
        let b_events = b.cluster_events();
        let refused = |events: noex::ClusterEvents| async move {
            within("a refusal", async {
                loop {
                    if let ClusterEvent::Refused {
                        inbound,
                        by_peer,
                        reason,
                        ..
                    } = events.recv().await.unwrap()
                    {
                        return (inbound, by_peer, reason);
                    }
                }
            })
            .await
        };
        // b checks a's proof first, and refuses.
        assert_eq!(
            refused(b_events).await,
            (false, false, RefusedReason::Secret)
        );
        assert_eq!(refused(a_events).await, (true, true, RefusedReason::Secret));
        assert!(a.connected_nodes().is_empty());
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn connections_that_never_finish_their_handshake_are_closed_and_peers_are_served() {
    run_blocking(async {
        let config = |name: &str| cluster_config(name).connect_timeout(Duration::from_millis(300));
        let a = Node::start(config("a")).await.unwrap();
        let seed = a.local_node_id().unwrap().to_string();
        let b = Node::start(config("b").seed(seed)).await.unwrap();
        wait_connected(&a, 1).await;

        // Fifty connections that say nothing.
        let mut silent = Vec::new();
        for _ in 0..50 {
            silent.push(Raw::connect(&a).await);
        }
        // Meanwhile a serves its peer: a registration needs b's grant and a's.
        let server = b.spawn::<Idle>(()).await.unwrap();
        let registered = within("a registration across the nodes", {
            a.register_global("served", server.pid())
        })
        .await;
        assert_eq!(registered, Ok(()));
        // Each silent one is closed by a (the raw client's wait is bounded).
        for raw in &mut silent {
            raw.closed().await;
        }
        assert_eq!(a.connected_nodes().len(), 1);
        assert_eq!(a.faults().connections_held(), 1);
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_flood_of_connections_holds_at_most_64_handshakes_open() {
    run_blocking(async {
        // Long enough that the silent connections are not closed for their silence here.
        let config = |name: &str| cluster_config(name).connect_timeout(Duration::from_secs(30));
        // All from one address, which may take every slot while no other source needs one.
        let a = Node::start(config("a")).await.unwrap();
        let seed = a.local_node_id().unwrap().to_string();
        let b = Node::start(config("b").seed(seed)).await.unwrap();
        wait_connected(&a, 1).await;
        let mut silent = Vec::new();
        for _ in 0..100 {
            silent.push(Raw::connect(&a).await);
        }
        // The 36 beyond the bound are closed at once; the 64 wait for their deadline.
        let mut closed = vec![false; silent.len()];
        let mut count_closed = || {
            for (raw, closed) in silent.iter_mut().zip(closed.iter_mut()) {
                let mut byte = [0u8; 1];
                let read = futures_lite::AsyncReadExt::read(&mut raw.stream, &mut byte);
                if let Some(Ok(0) | Err(_)) = futures_lite::future::block_on(poll_once(read)) {
                    *closed = true;
                }
            }
            closed.iter().filter(|c| **c).count()
        };
        eventually("the connections beyond the bound to be closed", || {
            count_closed() >= 36
        })
        .await;
        assert_eq!(count_closed(), 36);
        // Meanwhile a serves its peer.
        let server = b.spawn::<Idle>(()).await.unwrap();
        let registered = within("a registration across the nodes", {
            a.register_global("served", server.pid())
        })
        .await;
        assert_eq!(registered, Ok(()));
        a.shutdown();
        b.shutdown();
    });
}

/// A connection to `to` from `source` (an address of this host: any of 127/8 on Linux).
fn connect_from(source: &str, to: SocketAddr) -> std::net::TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let source = SocketAddr::new(source.parse().unwrap(), 0);
    socket.bind(&source.into()).unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

#[test]
fn silent_connections_from_one_address_do_not_keep_other_nodes_out() {
    run_blocking(async {
        // a gives a handshake long: a silent connection holds its slot all the test.
        let a = Node::start(cluster_config("a").connect_timeout(Duration::from_secs(60)))
            .await
            .unwrap();
        let at: SocketAddr = a.local_node_id().unwrap().address().parse().unwrap();
        // As many silent connections as a lets be in their handshake in all, from
        // 127.0.0.2, made before b dials: a accepts them first.
        let silent: Vec<_> = (0..64).map(|_| connect_from("127.0.0.2", at)).collect();
        // b, from 127.0.0.1, joins all the same.
        let seed = a.local_node_id().unwrap().to_string();
        let b = Node::start(cluster_config("b").seed(seed)).await.unwrap();
        wait_connected(&b, 1).await;
        wait_connected(&a, 1).await;
        drop(silent);
        a.shutdown();
        b.shutdown();
    });
}

struct Idle;

impl noex::GenServer for Idle {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(_: (), _: &mut noex::Ctx<Self>) -> Result<Self, Self::InitError> {
        Ok(Idle)
    }
}

#[test]
fn a_hello_changed_on_the_way_fails_the_proofs() {
    run_blocking(async {
        use common::raw::{Refusal, Wire, PROTOCOL_VERSION};
        let node = Node::start(cluster_config("n")).await.unwrap();
        // A member's hello says incarnation 7; something on the path made it 9 before it
        // reached the node. The member proves who it is as it said it: the node refuses.
        let mut raw = Raw::connect(&node).await;
        let mut hello = raw.hello(PROTOCOL_VERSION);
        if let Wire::Hello { incarnation, .. } = &mut hello {
            *incarnation = 9;
        }
        let answer = raw.handshake_sent(&node, b"test secret", hello).await;
        let refused = Wire::Refused {
            reason: Refusal::Authentication,
        };
        assert_eq!(answer, Some(refused));
        node.shutdown();
    });
}
