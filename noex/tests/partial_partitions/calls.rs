//! Calls across a link that falls silent.

use super::*;

/// A call from a to a process of c made as the a–c link falls silent (b still reaching
/// both) waits only until a notices the loss (its failure-detection window), then fails
/// with `NoConnection` — not at its own timeout. Once the loss is known, a call fails at
/// once.
#[test]
fn a_call_across_a_link_that_falls_silent_fails_when_the_loss_is_noticed() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let (a, c) = (&nodes[0], &nodes[2]);
        let on_c = counter(c, "on c").await;
        let from_a: ServerRef<Counter> = a.server_ref(on_c.pid()).unwrap();
        assert_eq!(within("a call", from_a.label()).await.unwrap(), "on c");
        c.faults().refuse_connections(true);
        a.faults().silence(&id(c), true);
        c.faults().silence(&id(a), true);
        let started = Instant::now();
        let timeout = Duration::from_secs(4);
        let call = within(
            "a call across the silent link",
            from_a.label_with_timeout(timeout),
        )
        .await;
        let took = started.elapsed();
        assert!(
            matches!(&call, Err(CallError::NoConnection { .. })),
            "{call:?} after {took:?}"
        );
        // The detection window of the tests' settings is 800 ms.
        assert!(took < Duration::from_secs(2), "{took:?}");
        wait_connected(a, 1).await;
        let started = Instant::now();
        let call = within("a call after the loss", from_a.label()).await;
        assert!(
            matches!(&call, Err(CallError::NoConnection { .. })),
            "{call:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(500));
        c.faults().refuse_connections(false);
        for node in &nodes {
            wait_connected(node, 2).await;
        }
        // The process on c ran on: reached again through the same reference.
        assert_eq!(within("a call", from_a.label()).await.unwrap(), "on c");
        shutdown_all(nodes);
    });
}
