//! What a node's loss costs a supervisor's restart intensity: one restart, however many
//! children it held.

use super::*;

/// A supervisor with the default intensity (3 restarts in 5 s) whose five children run on
/// one node: that node is lost, and the five move together, as one restart — the
/// supervisor runs on (five restarts would have exceeded the intensity and stopped it,
/// and with it every child on every node).
#[test]
fn children_lost_with_one_node_cost_one_restart_of_the_intensity() {
    run_blocking(async {
        let nodes = cluster(3, Duration::from_millis(100)).await;
        let spec =
            SupervisorSpec::distributed(Strategy::OneForOne, NodeSelector::Specific(id(&nodes[2])));
        let sup = nodes[0].spawn::<DistributedSupervisor>(spec).await.unwrap();
        for label in ["i1", "i2", "i3", "i4", "i5"] {
            let child = ChildSpec::worker::<Stamped>(label, label.to_owned());
            let child = within("a child to start", sup.start_child(child)).await;
            assert_eq!(child.unwrap().node(), id(&nodes[2]).as_str());
        }
        sup.set_selector(NodeSelector::RoundRobin).await.unwrap();
        let before = pids(&sup).await;
        isolate(&nodes, 2, true);
        all_restarted(&sup, &before).await;
        let stats = sup.distribution().await.unwrap();
        assert_eq!(stats.migrations, 5, "{stats:?}");
        for (_, pid) in pids(&sup).await {
            assert_ne!(pid.unwrap().node(), id(&nodes[2]).as_str());
        }
        assert!(sup.is_alive());
        isolate(&nodes, 2, false);
        shutdown_all(nodes);
    });
}
