//! A node restarted under its id before its peers noticed it was gone: its new connection
//! replaces the old one, and what the old incarnation held goes with it.

mod common;
use common::id;

use common::{cluster_config, eventually, next_event, probe, run_blocking, wait_connected, within};
use noex::{ClusterEvent, Node};

#[test]
fn a_restarted_nodes_old_members_and_names_are_gone_when_its_node_down_is_seen() {
    run_blocking(async {
        let s = Node::start(cluster_config("s")).await.unwrap();
        let seed = id(&s).to_string();
        let first = Node::start(cluster_config("x").seed(seed.clone()));
        let mut x = first.await.unwrap();
        let port = id(&x).port();
        let events = s.cluster_events();
        let mut stale = Vec::new();
        // Each round, x "restarts": a new incarnation under its id (bound to another
        // loopback address, advertising the same one) connects while s still holds the
        // old one's connection, which it replaces.
        for round in 0..30u32 {
            let worker = probe(&x, false).await;
            assert_eq!(x.join_group("g", worker.pid()).await, Ok(true));
            let name = format!("w{round}");
            x.register_global(&name, worker.pid()).await.unwrap();
            eventually("the member and the name to reach s", || {
                s.group_members("g").contains(worker.pid()) && s.whereis_global(&name).is_some()
            })
            .await;
            let bind = format!("127.0.0.{}:{port}", round + 2).parse().unwrap();
            let config = cluster_config("x")
                .bind(bind)
                .advertise_host("127.0.0.1")
                .seed(seed.clone());
            let next = Node::start(config).await.unwrap();
            assert_eq!(id(&next), id(&x));
            within("the old incarnation's NodeDown", async {
                while !matches!(next_event(&events).await, ClusterEvent::NodeDown { .. }) {}
            })
            .await;
            let (members, holder) = (s.group_members("g"), s.whereis_global(&name));
            if members.contains(worker.pid()) || holder.is_some() {
                stale.push((round, members, holder));
            }
            x.shutdown();
            x = next;
        }
        assert!(stale.is_empty(), "seen after NodeDown: {stale:?}");
        x.shutdown();
        s.shutdown();
    });
}

/// Node s, and node x seeded with s; s's id as a seed.
async fn s_and_x() -> (Node, Node, String) {
    let s = Node::start(cluster_config("s")).await.unwrap();
    let seed = id(&s).to_string();
    let x = Node::start(cluster_config("x").seed(seed.clone()))
        .await
        .unwrap();
    (s, x, seed)
}

/// x back under its id as a hidden node (bound elsewhere, advertising x's address)
/// before its peers saw it go.
fn back_hidden(x: &Node, seed: String) -> noex::ClusterConfig {
    let port = id(x).port();
    cluster_config("x")
        .bind(format!("127.0.0.2:{port}").parse().unwrap())
        .advertise_host("127.0.0.1")
        .hidden()
        .seed(seed)
}

#[test]
fn a_node_restarted_hidden_under_its_id_leaves_none_of_its_old_names_and_members() {
    run_blocking(async {
        let (s, x, seed) = s_and_x().await;
        let worker = probe(&x, false).await;
        assert_eq!(x.join_group("g", worker.pid()).await, Ok(true));
        x.register_global("w", worker.pid()).await.unwrap();
        eventually("the member and the name to reach s", || {
            s.group_members("g").contains(worker.pid()) && s.whereis_global("w").is_some()
        })
        .await;
        // x comes back under its id as a hidden node (an observer, say), before s noticed
        // it was gone: its new connection replaces the old one, and shares no names.
        let hidden = Node::start(back_hidden(&x, seed)).await.unwrap();
        eventually("s to take the hidden incarnation", || {
            s.hidden_nodes().iter().any(|n| n.id == id(&x))
        })
        .await;
        assert!(s.group_members("g").is_empty());
        assert_eq!(s.whereis_global("w"), None);
        x.shutdown();
        hidden.shutdown();
        s.shutdown();
    });
}

#[test]
fn a_claim_waiting_for_a_node_that_comes_back_hidden_is_settled_at_once() {
    run_blocking(async {
        let (s, x, seed) = s_and_x().await;
        eventually("s and x to connect", || !s.connected_nodes().is_empty()).await;
        let worker = probe(&s, false).await;
        // s's claim to x stays queued: x never grants it.
        assert!(s.faults().stall(&id(&x), true));
        let registered = smol::spawn({
            let s = s.clone();
            let pid = worker.pid().clone();
            async move { s.register_global("n", &pid).await }
        });
        eventually("the claim to wait for x", || {
            s.faults().global_pending().0 > 0
        })
        .await;
        // x comes back under its id as a hidden node: it will never grant the claim (a
        // hidden node shares no names), so s no longer waits for it.
        let hidden = Node::start(back_hidden(&x, seed)).await.unwrap();
        // Well within `GLOBAL_TIMEOUT` (10 s), which it waited for before.
        let settled = futures_lite::future::or(async { Some(registered.await) }, async {
            smol::Timer::after(std::time::Duration::from_secs(5)).await;
            None
        })
        .await;
        assert_eq!(settled, Some(Ok(())));
        x.shutdown();
        hidden.shutdown();
        s.shutdown();
    });
}

/// b asks x whether x's process still holds a name a claims (a does not reach x); before
/// x answers, x comes back under its id, and its new connection to b replaces the old
/// one. b asks the new incarnation, which holds nothing: a's registration goes ahead.
#[test]
fn a_question_pending_when_the_holders_node_restarts_is_asked_again() {
    run_blocking(async {
        let (b, x, seed) = s_and_x().await;
        let a = Node::start(cluster_config("a").seed(seed.clone()))
            .await
            .unwrap();
        wait_connected(&b, 2).await;
        a.faults().partition(&id(&x), true);
        x.faults().partition(&id(&a), true);
        wait_connected(&a, 1).await;
        let held = probe(&x, false).await;
        x.register_global("w", held.pid()).await.unwrap();
        eventually("b to see the name", || b.whereis_global("w").is_some()).await;
        // x's answers to b stay queued.
        assert!(x.faults().stall(&id(&b), true));
        let on_a = probe(&a, false).await;
        let registered = smol::spawn({
            let (a, pid) = (a.clone(), on_a.pid().clone());
            async move { a.register_global("w", &pid).await }
        });
        eventually("b to ask x", || b.faults().global_pending().0 > 0).await;
        let port = id(&x).port();
        let config = cluster_config("x")
            .bind(format!("127.0.0.2:{port}").parse().unwrap())
            .advertise_host("127.0.0.1")
            .seed(seed);
        let next = Node::start(config).await.unwrap();
        assert_eq!(within("a's registration", registered).await, Ok(()));
        eventually("b to see a's process hold the name", || {
            b.whereis_global("w").as_ref() == Some(on_a.pid())
        })
        .await;
        for node in [x, next, a, b] {
            node.shutdown();
        }
    });
}
