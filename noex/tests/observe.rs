//! Introspection through `Observer`: this node and another through the same API, the
//! agent left out of counts, restarts from supervisors, round-trip times, and hidden nodes.

mod common;
use common::id;

use std::time::Duration;

use common::{cluster_config, eventually, next_event, run_blocking, start_cluster, within};
use noex::observe::{ProcessQuery, ProcessStatus, SortBy};
use noex::supervisor::{ChildSpec, NodeSelector, Strategy, SupervisorSpec};
use noex::{
    behavior, ClusterEvent, Ctx, DistributedSupervisor, ExitReason, MonitorRef, Node, NodeId, Pid,
    Supervisor,
};

#[behavior(name = "observe-worker")]
pub struct Worker;

#[behavior]
impl Worker {
    #[init]
    fn init() -> Self {
        Worker
    }

    #[call]
    fn ping(&self) {}

    #[call]
    fn watch(&mut self, pid: Pid, ctx: &mut Ctx<Self>) -> MonitorRef {
        ctx.link(&pid);
        ctx.monitor(&pid)
    }

    /// Keeps the process busy for a while, so that what follows waits in its mailbox.
    #[cast]
    async fn stall(&mut self, ms: u64) {
        smol::Timer::after(Duration::from_millis(ms)).await;
    }
}

/// A worker whose `init` does not end (in a test's time): the supervisor starting it waits.
#[behavior(name = "observe-slow")]
pub struct Slow;

#[behavior]
impl Slow {
    #[init]
    async fn init() -> Self {
        smol::Timer::after(Duration::from_secs(600)).await;
        Slow
    }
}

#[test]
fn another_node_is_read_through_its_agent_as_this_one_is() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let busy = b
            .spawn_with::<Worker>((), noex::SpawnOptions::default().name("busy"))
            .await
            .unwrap();
        busy.stall(60_000).unwrap();
        eventually("the stall to be taken", || {
            b.process_info(busy.pid()).unwrap().mailbox_len == 0
        })
        .await;
        for _ in 0..5 {
            busy.stall(0).unwrap();
        }
        let quiet = b.spawn::<Worker>(()).await.unwrap();
        for _ in 0..3 {
            quiet.ping().await.unwrap();
        }

        // The agent is no process of b's as far as anyone counts.
        assert_eq!(b.process_count(), 2);
        assert_eq!(b.processes().len(), 2);

        for observer in [a.observer_of(&id(b)), b.observer(), b.observer_of(&id(b))] {
            let overview = within("an overview", observer.overview()).await.unwrap();
            assert_eq!(overview.node, b.name());
            assert_eq!(overview.processes, 2);
            assert_eq!(overview.messages_queued, 5);
            assert_eq!(overview.peers, 1);

            let list = within(
                "a process list",
                observer.processes(ProcessQuery::new(SortBy::MailboxLen, 1)),
            )
            .await
            .unwrap();
            assert_eq!(list.total, 2);
            assert_eq!(list.processes.len(), 1);
            let top = &list.processes[0];
            assert_eq!(top.pid, *busy.pid());
            assert_eq!(top.name.as_deref(), Some("busy"));
            assert_eq!(top.mailbox_len, 5);
            assert_eq!(top.status, ProcessStatus::Busy);
            assert!(top.behavior.ends_with("Worker"), "{}", top.behavior);

            let by_count = observer
                .processes(ProcessQuery::new(SortBy::MessageCount, 10))
                .await
                .unwrap();
            assert_eq!(by_count.processes[0].pid, *quiet.pid());
            assert_eq!(by_count.processes[1].status, ProcessStatus::Busy);
            assert_eq!(by_count.processes[0].status, ProcessStatus::Idle);

            // A process that ended; and one of a, read on a whichever node is observed.
            let ended = b.spawn::<Worker>(()).await.unwrap();
            b.stop(ended.pid(), ExitReason::Normal).await.unwrap();
            assert_eq!(observer.process(ended.pid()).await.unwrap(), None);
            let elsewhere = a.spawn::<Worker>(()).await.unwrap();
            let detail = observer.process(elsewhere.pid()).await.unwrap();
            assert_eq!(detail.map(|d| d.info.pid), Some(elsewhere.pid().clone()));
        }
        for node in nodes {
            node.shutdown();
        }
    });
}

#[test]
fn the_busiest_processes_are_those_of_the_last_interval() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let old = b.spawn::<Worker>(()).await.unwrap();
        let new = b.spawn::<Worker>(()).await.unwrap();
        for _ in 0..50 {
            old.ping().await.unwrap();
        }
        new.ping().await.unwrap();
        let observer = a.observer_of(&id(b));
        let query = ProcessQuery::new(SortBy::MessageRate, 1);
        // The first query has nothing to compare with: by messages handled in all.
        let first = observer.processes(query).await.unwrap();
        assert_eq!(first.processes[0].pid, *old.pid());
        for _ in 0..5 {
            new.ping().await.unwrap();
        }
        let second = observer.processes(query).await.unwrap();
        assert_eq!(second.processes[0].pid, *new.pid(), "5 recent against none");
        for node in nodes {
            node.shutdown();
        }
    });
}

#[test]
fn observers_on_two_nodes_each_see_the_rates_of_their_own_interval() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        let old = b.spawn::<Worker>(()).await.unwrap();
        let new = b.spawn::<Worker>(()).await.unwrap();
        for _ in 0..50 {
            old.ping().await.unwrap();
        }
        let query = ProcessQuery::new(SortBy::MessageRate, 1);
        let (from_a, from_c) = (a.observer_of(&id(b)), c.observer_of(&id(b)));
        let first = from_a.processes(query).await.unwrap();
        assert_eq!(first.processes[0].pid, *old.pid());
        for _ in 0..5 {
            new.ping().await.unwrap();
        }
        // c's first query counts since the start; it must not become a's base.
        let of_c = from_c.processes(query).await.unwrap();
        assert_eq!(of_c.processes[0].pid, *old.pid());
        let second = from_a.processes(query).await.unwrap();
        assert_eq!(
            second.processes[0].pid,
            *new.pid(),
            "5 since a's query, against none"
        );
        for node in nodes {
            node.shutdown();
        }
    });
}

#[test]
fn a_process_in_detail_shows_its_links_monitors_names_and_groups() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let target = b.spawn::<Worker>(()).await.unwrap();
        let watcher = a.spawn::<Worker>(()).await.unwrap();
        // A monitor and a link from a process of a to the process of b.
        let monitor = watcher.watch(target.pid().clone()).await.unwrap();
        a.register_global("observed", target.pid()).await.unwrap();
        b.join_group("observers", target.pid()).await.unwrap();

        let observer = a.observer_of(&id(b));
        let detail = within("the detail to show the ties", async {
            loop {
                let detail = observer.process(target.pid()).await.unwrap().unwrap();
                if !detail.monitored_by.is_empty() && !detail.info.links.is_empty() {
                    break detail;
                }
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert_eq!(detail.monitored_by, vec![(monitor, watcher.pid().clone())]);
        assert_eq!(detail.info.links, vec![watcher.pid().clone()]);
        assert_eq!(detail.global_names, vec!["observed".to_owned()]);
        assert_eq!(detail.groups, vec!["observers".to_owned()]);

        let globals = observer.globals().await.unwrap();
        assert_eq!(
            globals.names,
            vec![("observed".to_owned(), target.pid().clone())]
        );
        assert_eq!(
            globals.groups,
            vec![("observers".to_owned(), vec![target.pid().clone()])]
        );
        for node in nodes {
            node.shutdown();
        }
    });
}

#[test]
fn supervision_trees_show_children_their_nodes_and_restarts() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        for node in &nodes {
            node.register_behaviors().unwrap();
        }
        let local = SupervisorSpec::new(Strategy::OneForOne)
            .child(ChildSpec::worker::<Worker>("w", ()).name("w"));
        let sup = b.spawn::<Supervisor>(local).await.unwrap();
        let first = b.whereis("w").unwrap();
        b.kill(&first);
        eventually("the child to be restarted", || {
            b.whereis("w").is_some_and(|pid| pid != first)
        })
        .await;
        let spread =
            SupervisorSpec::distributed(Strategy::OneForOne, NodeSelector::Specific(id(a)))
                .child(ChildSpec::worker::<Worker>("remote", ()));
        let dsup = b.spawn::<DistributedSupervisor>(spread).await.unwrap();

        let observer = a.observer_of(&id(b));
        let supervisors = within("the supervisors", observer.supervisors())
            .await
            .unwrap();
        assert_eq!(supervisors.len(), 2);
        let plain = supervisors.iter().find(|s| s.pid == *sup.pid()).unwrap();
        assert!(plain.answered && !plain.distributed);
        assert_eq!(plain.children.len(), 1);
        assert_eq!(plain.children[0].id, "w");
        assert_eq!(plain.children[0].restarts, 1);
        let spread = supervisors.iter().find(|s| s.pid == *dsup.pid()).unwrap();
        assert!(spread.distributed);
        assert_eq!(spread.children[0].node.as_deref(), Some(id(a).as_str()));
        assert_eq!(spread.children[0].restarts, 0);

        // The process list says how often each supervised process was restarted.
        let list = observer.processes(ProcessQuery::default()).await.unwrap();
        let child = list
            .processes
            .iter()
            .find(|p| p.name.as_deref() == Some("w"))
            .unwrap();
        assert_eq!(child.restarts, Some(1));
        assert_eq!(child.supervisor.as_ref(), Some(sup.pid()));
        assert_eq!(
            b.processes()
                .iter()
                .find(|p| p.pid == child.pid)
                .unwrap()
                .restarts,
            None
        );
        for node in nodes {
            node.shutdown();
        }
    });
}

#[test]
fn peers_report_traffic_and_a_round_trip_time() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let peers = within("a round trip and traffic to be measured", async {
            loop {
                let peers = a.observer_of(&id(b)).peers().await.unwrap();
                // Both come in time: the counters are brought up to date in batches (see
                // `TrafficStats`), so the observer's first call may not be counted yet.
                if peers
                    .iter()
                    .all(|p| p.round_trip.is_some() && p.stats.messages_received > 0)
                {
                    break peers;
                }
                smol::Timer::after(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].id, id(a));
        assert!(
            peers[0].stats.messages_received > 0,
            "the observer's own calls"
        );
        assert!(peers[0].round_trip.unwrap() < Duration::from_secs(1));
        for node in nodes {
            node.shutdown();
        }
    });
}

#[test]
fn an_unreachable_node_is_a_typed_error_and_a_local_node_can_be_observed() {
    run_blocking(async {
        let nodes = start_cluster(1).await;
        let nowhere: NodeId = "ghost@127.0.0.1:1".parse().unwrap();
        let error = nodes[0].observer_of(&nowhere).overview().await.unwrap_err();
        assert!(
            matches!(error, noex::CallError::NoConnection { .. }),
            "{error:?}"
        );
        let local = Node::new();
        let worker = local.spawn::<Worker>(()).await.unwrap();
        let list = local
            .observer()
            .processes(ProcessQuery::default())
            .await
            .unwrap();
        assert_eq!(list.total, 1);
        assert_eq!(list.processes[0].pid, *worker.pid());
        local.shutdown();
        nodes[0].shutdown();
    });
}

#[test]
fn a_hidden_node_is_left_out_of_members_events_and_the_global_registry() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let events = a.cluster_events();
        let seed = id(a).to_string();
        let hidden = Node::start(cluster_config("observer").hidden().seed(seed.clone()))
            .await
            .unwrap();
        assert!(hidden.is_hidden());
        // It connects to every member (b learnt from a's list), and they see it as hidden.
        eventually("the hidden node to reach both", || {
            hidden.connected_nodes().len() == 2
                && a.hidden_nodes().len() == 1
                && b.hidden_nodes().len() == 1
        })
        .await;
        assert_eq!(a.connected_nodes().len(), 1);
        assert!(a.hidden_nodes()[0].hidden);

        // A later member is not told of it, and a's events never mentioned it; it is told
        // of the later member (by every member it reaches), and reaches it too: an
        // observer sees the cluster grow.
        let late = Node::start(cluster_config("late").seed(seed))
            .await
            .unwrap();
        match next_event(&events).await {
            ClusterEvent::NodeUp { node, .. } => assert_eq!(node, id(&late)),
            other => panic!("expected late's NodeUp, got {other:?}"),
        }
        eventually("late to join", || late.connected_nodes().len() == 2).await;
        eventually("the hidden node to reach late", || {
            hidden.connected_nodes().len() == 3 && late.hidden_nodes().len() == 1
        })
        .await;
        assert_eq!(late.connected_nodes().len(), 2);

        // The global registry is not shared with it.
        let worker = a.spawn::<Worker>(()).await.unwrap();
        a.register_global("shared", worker.pid()).await.unwrap();
        eventually("b to know the name", || {
            b.whereis_global("shared").is_some()
        })
        .await;
        assert_eq!(hidden.whereis_global("shared"), None);

        // It takes no spawns from the others, and no distributed supervisor places on it.
        let refused = a.spawn_on::<Worker>(&id(&hidden), ()).await.unwrap_err();
        assert!(
            matches!(refused, noex::RemoteSpawnError::HiddenNode { .. }),
            "{refused:?}"
        );
        for node in [a, b, &late] {
            node.register_behaviors().unwrap();
        }
        let spread = (0..6).fold(
            SupervisorSpec::distributed(Strategy::OneForOne, NodeSelector::RoundRobin),
            |spec, i| spec.child(ChildSpec::worker::<Worker>(format!("w{i}"), ())),
        );
        let dsup = a.spawn::<DistributedSupervisor>(spread).await.unwrap();
        for child in dsup.which_children().await.unwrap() {
            assert_ne!(child.node.as_deref(), Some(id(&hidden).as_str()));
        }

        // It observes as any node does.
        let overview = hidden.observer_of(&id(b)).overview().await.unwrap();
        assert_eq!(overview.peers, 2, "a and late, not the hidden node");
        assert_eq!(hidden.observer().overview().await.unwrap().processes, 0);

        // It leaves without a NodeDown on a.
        hidden.shutdown();
        eventually("the hidden node to be gone", || a.hidden_nodes().is_empty()).await;
        late.shutdown();
        match next_event(&events).await {
            ClusterEvent::NodeDown { node, .. } => assert_eq!(node, id(&late)),
            other => panic!("expected late's NodeDown, got {other:?}"),
        }
        for node in nodes {
            node.shutdown();
        }
    });
}

#[test]
fn a_process_is_read_on_its_own_node_whichever_node_is_observed() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let on_b = b.spawn::<Worker>(()).await.unwrap();
        let detail = a.observer().process(on_b.pid()).await.unwrap();
        assert_eq!(detail.map(|d| d.info.pid), Some(on_b.pid().clone()));
        let on_a = a.spawn::<Worker>(()).await.unwrap();
        let detail = a.observer_of(&id(b)).process(on_a.pid()).await.unwrap();
        assert_eq!(detail.map(|d| d.info.pid), Some(on_a.pid().clone()));
        for node in nodes {
            node.shutdown();
        }
    });
}

#[test]
fn supervisors_that_cannot_answer_are_waited_for_together() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let mut stuck = Vec::new();
        for _ in 0..4 {
            let sup = b
                .spawn::<Supervisor>(SupervisorSpec::new(Strategy::OneForOne))
                .await
                .unwrap();
            // Busy starting a child whose init does not end, it answers nobody.
            let busy = sup.clone();
            let slow = ChildSpec::worker::<Slow>("slow", ()).init_timeout(None);
            b.spawn_task(async move { busy.start_child(slow).await })
                .detach();
            stuck.push(sup);
        }
        let fine = SupervisorSpec::new(Strategy::OneForOne)
            .child(ChildSpec::worker::<Worker>("w", ()).name("w"));
        let fine = b.spawn::<Supervisor>(fine).await.unwrap();
        eventually("the slow children to be starting", || {
            b.processes()
                .iter()
                .filter(|p| p.status == ProcessStatus::Starting)
                .count()
                == 4
        })
        .await;

        // Each of them is given its second at the same time, not one after the other:
        // the reads end well within the observer's timeout.
        let observer = a.observer_of(&id(b)).timeout(Duration::from_secs(3));
        let supervisors = within("the supervisors", observer.supervisors())
            .await
            .unwrap();
        assert_eq!(supervisors.len(), 5);
        for sup in &stuck {
            let info = supervisors.iter().find(|s| s.pid == *sup.pid()).unwrap();
            assert!(!info.answered && info.children.is_empty());
        }
        let answered = supervisors.iter().find(|s| s.pid == *fine.pid()).unwrap();
        assert!(answered.answered);
        assert_eq!(answered.children.len(), 1);

        let list = within("the processes", observer.processes(ProcessQuery::default()))
            .await
            .unwrap();
        let child = list
            .processes
            .iter()
            .find(|p| p.name.as_deref() == Some("w"))
            .unwrap();
        assert_eq!(child.restarts, Some(0));
        for node in nodes {
            node.shutdown();
        }
    });
}
