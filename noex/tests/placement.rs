//! Where a distributed supervisor places a child, and what becomes of it when that fails.

mod common;
use common::id;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{run_blocking, shutdown_all, start_cluster, within};
use noex::supervisor::{ChildSpec, NodeSelector, Strategy, SupervisorSpec};
use noex::{behavior, DistributedSupervisor, Pid, ServerRef};

#[behavior(name = "placement-worker")]
pub struct Worker {
    label: String,
}

#[behavior]
impl Worker {
    #[init]
    fn init(label: String) -> Self {
        Worker { label }
    }

    #[call]
    fn label(&self) -> String {
        self.label.clone()
    }
}

/// A worker whose `init` takes as long as it is told.
#[behavior(name = "placement-slow")]
pub struct Slow;

#[behavior]
impl Slow {
    #[init]
    async fn init(millis: u64) -> Self {
        smol::Timer::after(Duration::from_millis(millis)).await;
        Slow
    }
}

async fn pids(sup: &ServerRef<DistributedSupervisor>) -> BTreeMap<String, Option<Pid>> {
    let children = sup.which_children().await.unwrap().into_iter();
    children.map(|c| (c.id, c.pid)).collect()
}

fn by_name(id: &str) -> ChildSpec {
    let args = postcard::to_allocvec(&id.to_owned()).unwrap();
    ChildSpec::by_name(id, "placement-worker", args)
}

#[test]
fn a_child_by_name_goes_where_its_behaviour_is_registered() {
    run_blocking(async {
        // The supervisor's node, n0, does not register the behaviour; n1 does.
        let nodes = start_cluster(2).await;
        nodes[1].register_behaviors().unwrap();
        let far = id(&nodes[1]);
        for selector in [NodeSelector::LocalFirst, NodeSelector::RoundRobin] {
            let spec = SupervisorSpec::distributed(Strategy::OneForOne, selector.clone())
                .child(by_name("a"))
                .child(by_name("b"));
            let started = nodes[0].spawn::<DistributedSupervisor>(spec);
            let sup = within("the supervisor to start", started).await;
            let sup = sup.unwrap_or_else(|e| panic!("{selector:?}: {e}"));
            for (child, pid) in pids(&sup).await {
                assert_eq!(pid.unwrap().node(), far.as_str(), "{selector:?}: {child}");
            }
            within(
                "the supervisor to stop",
                sup.stop(noex::ExitReason::Shutdown),
            )
            .await
            .unwrap();
        }
        shutdown_all(nodes);
    });
}

#[test]
fn a_child_whose_init_outlasts_the_default_spawn_timeout_starts_on_another_node() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        nodes[1].register_behaviors().unwrap();
        let far = id(&nodes[1]);
        let spec =
            SupervisorSpec::distributed(Strategy::OneForOne, NodeSelector::Specific(far.clone()));
        let sup = nodes[0].spawn::<DistributedSupervisor>(spec).await.unwrap();
        // Its init may take 30 s, and takes a little more than a remote spawn's default
        // timeout: it is as much a success as on the supervisor's own node.
        let slow = noex::DEFAULT_SPAWN_TIMEOUT + Duration::from_millis(500);
        let child = ChildSpec::worker::<Slow>("slow", slow.as_millis() as u64)
            .init_timeout(Duration::from_secs(30));
        let asked = Instant::now();
        let started = sup.start_child(child).await;
        assert_eq!(started.unwrap().node(), far.as_str());
        assert!(asked.elapsed() >= slow);
        shutdown_all(nodes);
    });
}
