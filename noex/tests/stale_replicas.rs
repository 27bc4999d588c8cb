//! Global registrations in a healthy cluster whose replicas are a moment apart: a node that
//! grants a claim while its replica still shows a holder that is gone elsewhere (its
//! process unregistered or ended, or its node lost) must not fail the registration.

mod common;
use common::id;

use common::{eventually, run_blocking, shutdown_all, start_cluster, wait_connected, within};
use futures_lite::future::poll_once;
use noex::{behavior, ExitReason, Node, Pid, ServerRef};

#[behavior(name = "stale-counter")]
pub struct Counter;

#[behavior]
impl Counter {
    #[init]
    fn init() -> Self {
        Counter
    }

    #[call]
    fn ping(&self) {}
}

async fn counter(node: &Node) -> ServerRef<Counter> {
    within("a counter to start", node.spawn::<Counter>(()))
        .await
        .expect("counter starts")
}

/// Waits until each node's replica says `name` is held by what `expected` gives for it.
async fn holders(nodes: &[Node], name: &str, expected: &[Option<&Pid>]) {
    let what = format!("the nodes to see {name:?} held by {expected:?}");
    eventually(&what, || {
        nodes
            .iter()
            .zip(expected)
            .all(|(node, holder)| node.whereis_global(name).as_ref() == *holder)
    })
    .await;
}

/// Three nodes a, b and c, and a process of c holding "x", as every node sees.
async fn held_on_c() -> (Vec<Node>, ServerRef<Counter>) {
    let nodes = start_cluster(3).await;
    let on_c = counter(&nodes[2]).await;
    nodes[2].register_global("x", on_c.pid()).await.unwrap();
    holders(&nodes, "x", &[Some(on_c.pid()); 3]).await;
    (nodes, on_c)
}

/// c's process gives up a name (unregisters it, or ends); a hears of it while b does not
/// yet (c's writes to b are held back). A registration of the name on a is then fresh:
/// b's replica is only behind, and the registration succeeds once b is up to date.
#[test]
fn a_name_given_up_is_registered_anew_while_a_replica_is_behind() {
    run_blocking(async {
        for ends in [false, true] {
            let (nodes, on_c) = held_on_c().await;
            let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);

            c.faults().stall(&id(b), true);
            match ends {
                true => {
                    on_c.stop(ExitReason::Normal).await.unwrap();
                }
                false => {
                    let unregistered = c.unregister_global("x").await;
                    assert_eq!(unregistered, Ok(Some(on_c.pid().clone())));
                }
            }
            eventually("a to see the name free", || a.whereis_global("x").is_none()).await;
            assert_eq!(
                b.whereis_global("x").as_ref(),
                Some(on_c.pid()),
                "b is behind"
            );

            let on_a = counter(a).await;
            let mut registered = Box::pin(a.register_global("x", on_a.pid()));
            assert!(poll_once(&mut registered).await.is_none(), "claims sent");
            // Behind the claim on the a–b connection: once b has this, it has the claim.
            let marker = counter(a).await;
            a.join_group("marker", marker.pid()).await.unwrap();
            eventually("b to take the claim", || {
                b.group_members("marker") == [marker.pid().clone()]
            })
            .await;
            c.faults().stall(&id(b), false);
            assert_eq!(within("a's registration", registered).await, Ok(()));
            holders(&nodes, "x", &[Some(on_a.pid()); 3]).await;
            shutdown_all(nodes);
        }
    });
}

/// c crashes (here: falls silent, and takes no new connection) holding a name; a sees it
/// lost at once, b only when its failure detector fires. A failover registration on a
/// meanwhile succeeds (at the latest once b sees c lost), and the name stays with it.
#[test]
fn a_failover_registration_succeeds_before_every_node_sees_the_holder_lost() {
    run_blocking(async {
        let (nodes, on_c) = held_on_c().await;
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);

        c.faults().refuse_connections(true);
        c.faults().silence(&id(b), true);
        a.faults().partition(&id(c), true);
        wait_connected(a, 1).await;
        assert_eq!(a.whereis_global("x"), None);
        assert_eq!(
            b.whereis_global("x").as_ref(),
            Some(on_c.pid()),
            "b is behind"
        );

        let on_a = counter(a).await;
        let registered = within("a's registration", a.register_global("x", on_a.pid())).await;
        assert_eq!(registered, Ok(()));
        wait_connected(b, 1).await;
        holders(&nodes[..2], "x", &[Some(on_a.pid()); 2]).await;
        assert_eq!(a.whereis_global("x").as_ref(), Some(on_a.pid()));
        within("a call by the name", a.named_global::<Counter>("x").ping())
            .await
            .unwrap();
        shutdown_all(nodes);
    });
}
