//! The poller against a real cluster in this process: what it puts in the model, and that
//! the observer stays out of the members' counts.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{cluster_config, eventually, id, run, start_cluster, Idle};
use noex::supervisor::{ChildSpec, Strategy, SupervisorSpec};
use noex::{ExitReason, Node, SpawnOptions, Supervisor};
use noex_observer::model::{Action, Detail, Model, NodeState, TreeKind, View};
use noex_observer::poll::Poller;

#[test]
fn a_known_process_and_a_supervision_tree_of_a_real_cluster_reach_the_model() {
    run(async {
        // Given two members; on the second, a named process and a named supervisor with
        // one worker.
        let nodes = start_cluster(&["alpha", "beta"]).await;
        let (alpha, beta) = (&nodes[0], &nodes[1]);
        let known = beta
            .spawn_with::<Idle>((), SpawnOptions::new().name("known-process"))
            .await
            .unwrap();
        let spec =
            SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::worker::<Idle>("leaf", ()));
        let root = beta
            .spawn_with::<Supervisor>(spec, SpawnOptions::new().name("tree-root"))
            .await
            .unwrap();

        // And an observer, seeded with the first member only.
        let observer = Node::start(cluster_config("observer").seed(id(alpha)).hidden())
            .await
            .unwrap();
        eventually("the observer to reach both members", || {
            observer.connected_nodes().len() == 2
        })
        .await;
        eventually("both members to see the hidden observer", || {
            nodes.iter().all(|n| n.hidden_nodes().len() == 1)
        })
        .await;

        // The members do not count it.
        for node in &nodes {
            assert_eq!(node.connected_nodes().len(), 1);
            assert!(node.connected_nodes().iter().all(|n| !n.hidden));
        }

        // When the poller refreshes the nodes view...
        let model = Mutex::new(Model::new(id(&observer)));
        let mut poller = Poller::new(observer.clone());
        poller.refresh(&model).await;
        {
            let model = model.lock().unwrap();
            let ids: Vec<&str> = model.nodes.iter().map(|n| n.id.as_str()).collect();
            assert_eq!(ids, [id(alpha), id(beta)]);
            assert!(model.nodes.iter().all(|n| n.state == NodeState::Up));
            assert_eq!(model.nodes[1].processes, 3);
            assert_eq!(model.peers_of.as_deref(), Some(id(alpha).as_str()));
            assert!(model
                .peers
                .iter()
                .any(|p| p.hidden && p.id == id(&observer)));
            assert!(model.errors.is_empty(), "{:?}", model.errors);
        }

        // ...the processes view of the second member...
        {
            let mut model = model.lock().unwrap();
            model.selected_node = Some(id(beta));
            model.view = View::Processes;
        }
        poller.refresh(&model).await;
        {
            let model = model.lock().unwrap();
            assert_eq!(model.processes_of.as_deref(), Some(id(beta).as_str()));
            assert_eq!(model.process_total, 3);
            let row = model
                .processes
                .iter()
                .find(|p| p.name.as_deref() == Some("known-process"))
                .expect("the known process is listed");
            assert_eq!(row.pid, *known.pid());
            assert!(row.behavior.ends_with("Idle"), "{}", row.behavior);
        }

        // ...and the supervision view:
        model.lock().unwrap().view = View::Tree;
        poller.refresh(&model).await;
        {
            let model = model.lock().unwrap();
            assert_eq!(model.tree.len(), 2, "{:?}", model.tree);
            let (top, leaf) = (&model.tree[0], &model.tree[1]);
            assert_eq!((top.depth, top.label.as_str()), (0, "tree-root"));
            assert_eq!(top.pid.as_ref(), Some(root.pid()));
            assert_eq!((leaf.depth, leaf.label.as_str()), (1, "leaf"));
            assert_eq!(leaf.kind, TreeKind::Worker);
            assert_eq!(leaf.node.as_deref(), Some(id(beta).as_str()));
        }

        // The detail view follows one process, a mailbox sample per refresh.
        {
            let mut model = model.lock().unwrap();
            model.view = View::Detail;
            model.detail = Some(Detail::new(known.pid().clone()));
        }
        poller.refresh(&model).await;
        poller.refresh(&model).await;
        {
            let model = model.lock().unwrap();
            let detail = model.detail.as_ref().unwrap();
            let info = detail.info.as_ref().expect("the detail was read");
            assert_eq!(info.name.as_deref(), Some("known-process"));
            assert_eq!(detail.history.len(), 2);
            assert!(!detail.gone);
        }

        // Killing it from the observer ends it on its node.
        poller.act(Action::Kill, known.pid(), &model).await;
        assert!(model.lock().unwrap().status.starts_with("killed"));
        eventually("the process to end", || {
            beta.whereis("known-process").is_none()
        })
        .await;
        poller.refresh(&model).await;
        assert!(model.lock().unwrap().detail.as_ref().unwrap().gone);

        observer.shutdown();
        for node in nodes {
            node.shutdown();
        }
    });
}

#[test]
fn a_member_that_leaves_stays_listed_as_left_and_one_lost_as_down() {
    run(async {
        let nodes = start_cluster(&["one", "three", "two"]).await;
        let observer = Node::start(cluster_config("observer").seed(id(&nodes[0])).hidden())
            .await
            .unwrap();
        eventually("the observer to reach the members", || {
            observer.connected_nodes().len() == 3
        })
        .await;
        let model = Mutex::new(Model::new(id(&observer)));
        let mut poller = Poller::new(observer.clone());
        poller.refresh(&model).await;
        assert_eq!(model.lock().unwrap().nodes.len(), 3);

        // "two" shuts down (says goodbye); the link to "three" is cut (lost).
        nodes[2].shutdown();
        let three = nodes[1].local_node_id().unwrap().clone();
        observer.faults().partition(&three, true);
        nodes[1]
            .faults()
            .partition(&id(&observer).parse().unwrap(), true);
        eventually("the observer to lose both members", || {
            observer.connected_nodes().len() == 1
        })
        .await;
        poller.refresh(&model).await;
        let states: Vec<_> = model
            .lock()
            .unwrap()
            .nodes
            .iter()
            .map(|n| n.state)
            .collect();
        assert_eq!(states, [NodeState::Up, NodeState::Down, NodeState::Left]);

        observer.shutdown();
        nodes[0].shutdown();
        nodes[1].shutdown();
    });
}

#[test]
fn a_seed_that_refuses_the_observer_says_why() {
    run(async {
        let nodes = start_cluster(&["gamma"]).await;
        // The observer has another secret: the member refuses it.
        let observer = Node::start(
            cluster_config("observer")
                .secret("not the cluster's secret")
                .seed(id(&nodes[0]))
                .hidden(),
        )
        .await
        .unwrap();
        let model = Mutex::new(Model::new(id(&observer)));
        let mut poller = Poller::new(observer.clone());
        let mut shown = String::new();
        for _ in 0..500 {
            poller.refresh(&model).await;
            shown = model.lock().unwrap().errors.join("; ");
            if !shown.is_empty() {
                break;
            }
            smol::Timer::after(std::time::Duration::from_millis(10)).await;
        }
        assert!(shown.contains("refused"), "{shown:?}");
        assert!(shown.contains("secret"), "{shown:?}");
        observer.shutdown();
        for node in nodes {
            node.shutdown();
        }
    });
}

#[test]
fn messages_handled_by_a_process_that_ended_between_two_refreshes_count_in_the_rate() {
    run(async {
        let nodes = start_cluster(&["churn"]).await;
        let observer = Node::start(cluster_config("observer").seed(id(&nodes[0])).hidden())
            .await
            .unwrap();
        eventually("the observer to reach the member", || {
            observer.connected_nodes().len() == 1
        })
        .await;
        let model = Mutex::new(Model::new(id(&observer)));
        let mut poller = Poller::new(observer.clone());
        poller.refresh(&model).await;

        // A short-lived process handles twenty messages, and ends before the next refresh.
        let short = nodes[0].spawn::<Echo>(()).await.unwrap();
        for _ in 0..20 {
            short.call(()).await.unwrap();
        }
        nodes[0]
            .stop(short.pid(), ExitReason::Normal)
            .await
            .unwrap();
        poller.refresh(&model).await;
        let handled = model.lock().unwrap().nodes[0].handled;
        assert!(handled > 0.0, "messages handled per second: {handled}");

        observer.shutdown();
        for node in nodes {
            node.shutdown();
        }
    });
}

/// Answers every call.
struct Echo;

impl noex::GenServer for Echo {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(_: (), _: &mut noex::Ctx<Self>) -> Result<Self, Self::InitError> {
        Ok(Echo)
    }

    async fn handle_call(&mut self, _: (), reply: noex::ReplyTo<()>, _: &mut noex::Ctx<Self>) {
        reply.send(());
    }
}

/// The tree view asks every member for its supervisors at once: members that do not answer
/// cost one timeout together, not one timeout each.
#[test]
fn members_that_do_not_answer_cost_the_tree_view_one_timeout_together() {
    run(async {
        // Heartbeats that let a member stay connected, silent, for as long as the test.
        let patient = |name: &str| {
            cluster_config(name).heartbeat(Duration::from_millis(100), Duration::from_secs(60))
        };
        let first = Node::start(patient("one")).await.unwrap();
        let mut nodes = vec![first];
        for name in ["three", "two"] {
            let config = patient(name).seed(id(&nodes[0]));
            nodes.push(Node::start(config).await.unwrap());
        }
        let observer = Node::start(patient("observer").seed(id(&nodes[0])).hidden())
            .await
            .unwrap();
        eventually("the observer to reach the members", || {
            observer.connected_nodes().len() == 3
        })
        .await;
        let timeout = Duration::from_millis(1500);
        let model = Mutex::new(Model::new(id(&observer)));
        model.lock().unwrap().view = View::Tree;
        let mut poller = Poller::new(observer.clone()).timeout(timeout);
        poller.refresh(&model).await;
        assert!(model.lock().unwrap().errors.is_empty());
        // Every member stops writing to the observer: its answers wait.
        let seen_by = id(&observer).parse().unwrap();
        for node in &nodes {
            assert!(node.faults().stall(&seen_by, true));
        }
        let started = Instant::now();
        poller.refresh(&model).await;
        let took = started.elapsed();
        let errors = model.lock().unwrap().errors.clone();
        assert_eq!(
            errors.iter().filter(|e| e.contains("supervisors")).count(),
            3,
            "{errors:?}"
        );
        // The overviews (asked together) and the supervisors (together): two timeouts;
        // one after the other, the supervisors alone would take three.
        assert!(took < timeout * 3, "the refresh took {took:?}");
        for node in &nodes {
            node.faults().stall(&seen_by, false);
        }
        observer.shutdown();
        for node in nodes {
            node.shutdown();
        }
    });
}
