use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dist::testing::start_node;
use crate::{ExitReason, Pid};

/// A monitor that took the connection just before its loss was recorded (its `route`
/// raced `peer_down`) still ends: the connection's ties stay marked lost, so nothing is
/// added to them, and the monitor fails at once.
#[test]
fn a_monitor_over_a_connection_whose_loss_was_recorded_fails_at_once() {
    smol::block_on(async {
        let b = start_node("ties-b", "ties", None).await;
        let a = start_node("ties-a", "ties", Some(&b)).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while a.connected_nodes().is_empty() {
            assert!(Instant::now() < deadline, "a and b did not connect");
            smol::Timer::after(Duration::from_millis(1)).await;
        }
        let cluster = a.inner.cluster.get().unwrap();
        let peer = cluster.peer(b.name()).unwrap();
        // What `peer_down` does, seen by a monitor that holds the peer already.
        peer.close();
        cluster.ties_lost(&peer);
        assert!(peer.ties().lost);
        let pid = Pid::new(Arc::from(b.name()), peer.incarnation, 1);
        let watched = futures_lite::future::or(async { Some(cluster.watch(&pid).await) }, async {
            smol::Timer::after(Duration::from_secs(10)).await;
            None
        })
        .await;
        assert_eq!(watched, Some(ExitReason::NoConnection));
        a.shutdown();
        b.shutdown();
    });
}
