//! The global registry and process groups across a cluster: one owner per name, found from
//! every node; names and members that follow their processes and nodes; races, partitions
//! and joins.

mod common;

use std::time::Duration;

use common::{
    cluster_config, eventually, isolate, run_blocking, shutdown_all, start_cluster, wait_connected,
    watch_end, within,
};
use futures_lite::future::zip;
use noex::supervisor::{ChildSpec, SupervisorSpec};
use noex::{
    behavior, CallError, Ctx, ExitReason, GlobalError, GlobalEvent, Info, LookupError, Node,
    NodeId, Pid, RemoteSpawnError, SendError, SpawnError, SpawnOptions, Supervisor, Target,
};

#[behavior(name = "global-counter")]
pub struct Counter {
    count: u64,
    /// Exit signals it trapped.
    trapped: Vec<(Pid, ExitReason)>,
}

#[behavior]
impl Counter {
    #[init]
    fn init(start: u64) -> Self {
        Counter {
            count: start,
            trapped: Vec::new(),
        }
    }

    #[call]
    fn get(&self) -> u64 {
        self.count
    }

    #[cast]
    fn add(&mut self, n: u64) {
        self.count += n;
    }

    #[call]
    fn trap_exits(&mut self, ctx: &mut Ctx<Self>) {
        ctx.trap_exits(true);
    }

    #[call]
    fn trapped(&self) -> Vec<(Pid, ExitReason)> {
        self.trapped.clone()
    }

    #[info]
    fn info(&mut self, info: Info<()>) {
        if let Info::Exit { from, reason } = info {
            self.trapped.push((from, reason));
        }
    }
}

#[behavior(name = "global-other")]
pub struct Other;

#[behavior]
impl Other {
    #[init]
    fn init() -> Self {
        Other
    }

    #[call]
    fn hello(&self) -> String {
        "hello".into()
    }
}

/// Checks, at `init`, that its global name is already its own.
#[behavior(name = "global-self-aware")]
pub struct SelfAware;

#[behavior]
impl SelfAware {
    #[init]
    fn init(name: String, ctx: &mut Ctx<Self>) -> Result<Self, String> {
        match ctx.node().whereis_global(&name) {
            Some(pid) if &pid == ctx.pid() => Ok(SelfAware),
            other => Err(format!("{name:?} names {other:?} during init")),
        }
    }
}

async fn counter(node: &Node, start: u64) -> noex::ServerRef<Counter> {
    within("a counter to start", node.spawn::<Counter>(start))
        .await
        .expect("counter starts")
}

fn id(node: &Node) -> NodeId {
    node.local_node_id().unwrap().clone()
}

/// Waits until every node's replica says `name` is held by `holder`.
async fn everywhere(nodes: &[Node], name: &str, holder: Option<&Pid>) {
    let what = format!("every node to see {name:?} held by {holder:?}");
    eventually(&what, || {
        nodes
            .iter()
            .all(|node| node.whereis_global(name).as_ref() == holder)
    })
    .await;
}

/// A counter started on `nodes[at]`, registered there as `name`, once every node sees it.
async fn registered(nodes: &[Node], at: usize, name: &str, start: u64) -> noex::ServerRef<Counter> {
    let server = counter(&nodes[at], start).await;
    nodes[at].register_global(name, server.pid()).await.unwrap();
    everywhere(nodes, name, Some(server.pid())).await;
    server
}

#[test]
fn a_name_registered_on_one_node_is_found_and_called_from_every_other() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let cache = registered(&nodes, 0, "cache", 41).await;
        for node in &nodes {
            let named = node.named_global::<Counter>("cache");
            named.add(1).unwrap();
            let typed = node.lookup_global::<Counter>("cache").unwrap();
            assert_eq!(typed.pid(), cache.pid());
            assert!(within("a call by global name", named.get()).await.unwrap() >= 42);
            assert_eq!(
                node.global_names(),
                vec![("cache".to_owned(), cache.pid().clone())]
            );
        }
        assert_eq!(cache.get().await, Ok(44));
        shutdown_all(nodes);
    });
}

#[test]
fn a_typed_lookup_of_the_wrong_behaviour_is_an_error() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let _cache = registered(&nodes, 0, "cache", 0).await;
        for node in &nodes {
            match node.lookup_global::<Other>("cache") {
                Err(LookupError::WrongBehavior { name, found, .. }) => {
                    assert_eq!(name, "cache");
                    assert!(
                        found.contains("Counter") || found == "global-counter",
                        "{found}"
                    );
                }
                other => panic!("expected WrongBehavior, got {:?}", other.map(|_| ())),
            }
            let named = node.named_global::<Other>("cache");
            let call = within("a call of the wrong behaviour", named.hello()).await;
            assert!(
                matches!(call, Err(CallError::WrongBehavior { .. })),
                "{call:?}"
            );
            assert!(matches!(
                node.lookup_global::<Counter>("nobody"),
                Err(LookupError::NotFound(_))
            ));
            let nobody = node.named_global::<Counter>("nobody");
            let target = Target::Global {
                name: "nobody".into(),
            };
            assert_eq!(
                nobody.get().await,
                Err(CallError::NoProc {
                    target: target.clone()
                })
            );
            assert_eq!(nobody.add(1), Err(SendError::NoProc { target }));
        }
        shutdown_all(nodes);
    });
}

#[test]
fn a_name_follows_a_restart_of_its_owner_under_a_supervisor() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let spec = SupervisorSpec::new(noex::Strategy::OneForOne)
            .child(ChildSpec::worker::<Counter>("cache", 7).global_name("cache"));
        let supervisor = nodes[0].spawn::<Supervisor>(spec).await.unwrap();
        let first = within("the name", async {
            loop {
                if let Some(pid) = nodes[1].whereis_global("cache") {
                    break pid;
                }
                smol::Timer::after(Duration::from_millis(1)).await;
            }
        })
        .await;
        let named = nodes[1].named_global::<Counter>("cache");
        assert_eq!(within("a call", named.get()).await, Ok(7));
        assert!(nodes[0].kill(&first));
        let what = "the restarted child's name to reach the other node";
        eventually(what, || {
            nodes[1]
                .whereis_global("cache")
                .is_some_and(|pid| pid != first)
        })
        .await;
        assert_eq!(within("a call", named.get()).await, Ok(7));
        drop(supervisor);
        shutdown_all(nodes);
    });
}

#[test]
fn a_name_disappears_everywhere_when_its_process_ends_or_its_node_is_lost() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let events = nodes[1].global_events();
        let ending = counter(&nodes[2], 0).await;
        nodes[2]
            .register_global("ending", ending.pid())
            .await
            .unwrap();
        let staying = counter(&nodes[2], 0).await;
        nodes[0]
            .register_global("on-lost-node", staying.pid())
            .await
            .unwrap();
        everywhere(&nodes, "ending", Some(ending.pid())).await;
        everywhere(&nodes, "on-lost-node", Some(staying.pid())).await;

        ending.stop(ExitReason::Normal).await.unwrap();
        everywhere(&nodes, "ending", None).await;

        // The node is cut off from the others: its names go with it.
        let lost = id(&nodes[2]);
        for node in &nodes[..2] {
            node.faults().partition(&lost, true);
        }
        everywhere(&nodes[..2], "on-lost-node", None).await;
        let mut seen = Vec::new();
        while let Some(event) = events.try_recv() {
            seen.push(event);
        }
        assert!(seen.contains(&GlobalEvent::Unregistered {
            name: "ending".into(),
            pid: ending.pid().clone()
        }));
        assert!(seen.contains(&GlobalEvent::Unregistered {
            name: "on-lost-node".into(),
            pid: staying.pid().clone()
        }));
        shutdown_all(nodes);
    });
}

#[test]
fn two_nodes_racing_for_one_name_make_exactly_one_winner_every_round() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        for round in 0..100 {
            let name = format!("race-{round}");
            let a = counter(&nodes[1], 0).await;
            let b = counter(&nodes[2], 0).await;
            let (ra, rb) = zip(
                nodes[1].register_global(&name, a.pid()),
                nodes[2].register_global(&name, b.pid()),
            )
            .await;
            let winner = match (&ra, &rb) {
                (Ok(()), Err(GlobalError::NameTaken { holder, .. })) if holder == a.pid() => {
                    a.pid()
                }
                (Err(GlobalError::NameTaken { holder, .. }), Ok(())) if holder == b.pid() => {
                    b.pid()
                }
                other => panic!("round {round}: not exactly one winner: {other:?}"),
            };
            everywhere(&nodes, &name, Some(winner)).await;
        }
        shutdown_all(nodes);
    });
}

#[test]
fn registrations_of_one_node_in_a_row_wait_for_each_other() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let a = counter(&nodes[0], 0).await;
        let b = counter(&nodes[0], 0).await;
        let (ra, rb) = zip(
            nodes[0].register_global("one", a.pid()),
            nodes[0].register_global("one", b.pid()),
        )
        .await;
        assert_eq!(ra, Ok(()));
        assert!(matches!(rb, Err(GlobalError::NameTaken { holder, .. }) if &holder == a.pid()));
        // Registering again under the same name is no change.
        assert_eq!(nodes[1].register_global("one", a.pid()).await, Ok(()));
        assert_eq!(nodes[0].global_names().len(), 1);
        shutdown_all(nodes);
    });
}

#[test]
fn a_process_of_another_node_is_registered_and_unregistered_through_its_node() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let remote = counter(&nodes[1], 0).await;
        nodes[0]
            .register_global("remote", remote.pid())
            .await
            .unwrap();
        // Registered by its own node, which now releases it when it ends.
        assert_eq!(
            nodes[1].whereis_global("remote").as_ref(),
            Some(remote.pid())
        );
        everywhere(&nodes, "remote", Some(remote.pid())).await;
        assert_eq!(
            nodes[0].unregister_global("remote").await,
            Ok(Some(remote.pid().clone()))
        );
        everywhere(&nodes, "remote", None).await;
        assert_eq!(nodes[0].unregister_global("remote").await, Ok(None));

        // A process that is not running cannot take a name.
        remote.stop(ExitReason::Normal).await.unwrap();
        let gone = nodes[0].register_global("remote", remote.pid()).await;
        assert_eq!(
            gone,
            Err(GlobalError::NoProc {
                pid: remote.pid().clone()
            })
        );
        let local = counter(&nodes[0], 0).await;
        local.stop(ExitReason::Normal).await.unwrap();
        let gone = nodes[0].register_global("local", local.pid()).await;
        assert!(matches!(gone, Err(GlobalError::NoProc { .. })), "{gone:?}");
        assert_eq!(nodes[0].faults().global_pending(), (0, 0));
        shutdown_all(nodes);
    });
}

#[test]
fn a_healed_partition_keeps_one_owner_per_name_and_tells_the_loser() {
    run_blocking(async {
        let nodes = start_cluster(4).await;
        let ids: Vec<NodeId> = nodes.iter().map(id).collect();
        let (left, right) = nodes.split_at(2);
        for (a, b) in [(0, 2), (0, 3), (1, 2), (1, 3)] {
            nodes[a].faults().partition(&ids[b], true);
            nodes[b].faults().partition(&ids[a], true);
        }
        for node in &nodes {
            wait_connected(node, 1).await;
        }
        let events: Vec<_> = nodes.iter().map(Node::global_events).collect();
        let on_left = counter(&left[1], 1).await;
        let on_right = counter(&right[0], 2).await;
        // The right one traps exits: it is told by a message, and keeps running.
        on_right.trap_exits().await.unwrap();
        left[0]
            .register_global("leader", on_left.pid())
            .await
            .unwrap();
        right[1]
            .register_global("leader", on_right.pid())
            .await
            .unwrap();
        everywhere(left, "leader", Some(on_left.pid())).await;
        everywhere(right, "leader", Some(on_right.pid())).await;

        for (a, b) in [(0, 2), (0, 3), (1, 2), (1, 3)] {
            nodes[a].faults().partition(&ids[b], false);
            nodes[b].faults().partition(&ids[a], false);
        }
        let healed = std::time::Instant::now();
        let agreed = async {
            loop {
                let owners: Vec<_> = nodes.iter().map(|n| n.whereis_global("leader")).collect();
                let agreed = owners[0].is_some() && owners.iter().all(|o| *o == owners[0]);
                if agreed && nodes.iter().all(|n| n.connected_nodes().len() == 3) {
                    break owners[0].clone().unwrap();
                }
                smol::Timer::after(Duration::from_millis(2)).await;
            }
        };
        let winner = within("one owner everywhere", agreed).await;
        assert!(
            healed.elapsed() < Duration::from_secs(2),
            "took {:?}",
            healed.elapsed()
        );
        if &winner == on_left.pid() {
            // The right one traps: a message, and it runs on without the name.
            let told = async {
                loop {
                    let trapped = on_right.trapped().await.unwrap();
                    if !trapped.is_empty() {
                        break trapped;
                    }
                    smol::Timer::after(Duration::from_millis(2)).await;
                }
            };
            let trapped = within("the loser to be told", told).await;
            assert_eq!(
                trapped,
                vec![(winner.clone(), ExitReason::NameConflict("leader".into()))]
            );
        } else {
            assert_eq!(&winner, on_right.pid());
            let reason = within("the loser to end", on_left.exited()).await;
            assert_eq!(reason, ExitReason::NameConflict("leader".into()));
        }
        // The loser's node settled the conflict (others may have heard of the loser's
        // registration only after that).
        let loser = if &winner == on_left.pid() {
            on_right.pid()
        } else {
            on_left.pid()
        };
        let at = nodes.iter().position(|n| n.name() == loser.node()).unwrap();
        let conflict = within("a conflict event", async {
            loop {
                if let Some(GlobalEvent::Conflict {
                    name, winner: w, ..
                }) = events[at].recv().await
                {
                    break (name, w);
                }
            }
        })
        .await;
        assert_eq!(conflict, ("leader".to_owned(), winner));
        shutdown_all(nodes);
    });
}

#[test]
fn a_joining_node_learns_every_name_and_group() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let mut held = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            for j in 0..50 {
                let server = counter(node, 0).await;
                let name = format!("name-{i}-{j}");
                node.register_global(&name, server.pid()).await.unwrap();
                node.join_group("all", server.pid()).await.unwrap();
                node.join_group(&format!("group-{i}"), server.pid())
                    .await
                    .unwrap();
                held.push((name, server.pid().clone()));
            }
        }
        held.sort();
        let seed = id(&nodes[0]).to_string();
        let late = Node::start(cluster_config("late").seed(seed))
            .await
            .unwrap();
        wait_connected(&late, 2).await;
        eventually("the late node to learn every name", || {
            late.global_names() == held
        })
        .await;
        eventually("the late node to learn every group", || {
            late.group_members("all").len() == 100
                && late.group_members("group-0").len() == 50
                && late.group_members("group-1").len() == 50
        })
        .await;
        assert_eq!(late.groups(), vec!["all", "group-0", "group-1"]);
        assert!(late.local_group_members("all").is_empty());
        late.shutdown();
        shutdown_all(nodes);
    });
}

#[test]
fn group_membership_follows_joins_leaves_exits_and_node_loss() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let a = counter(&nodes[0], 0).await;
        let b = counter(&nodes[1], 0).await;
        let c = counter(&nodes[2], 0).await;
        assert_eq!(nodes[0].join_group("workers", a.pid()).await, Ok(true));
        assert_eq!(nodes[0].join_group("workers", a.pid()).await, Ok(false));
        // A process of another node joins through its node.
        assert_eq!(nodes[0].join_group("workers", b.pid()).await, Ok(true));
        assert_eq!(nodes[2].join_group("workers", c.pid()).await, Ok(true));
        let mut all = vec![a.pid().clone(), b.pid().clone(), c.pid().clone()];
        all.sort();
        let members = |expected: Vec<Pid>| {
            let nodes = nodes.clone();
            async move {
                let what = format!("every node to see members {expected:?}");
                eventually(&what, || {
                    nodes.iter().all(|n| n.group_members("workers") == expected)
                })
                .await
            }
        };
        members(all.clone()).await;
        assert_eq!(
            nodes[1].local_group_members("workers"),
            vec![b.pid().clone()]
        );

        assert_eq!(nodes[2].leave_group("workers", b.pid()).await, Ok(true));
        assert_eq!(nodes[2].leave_group("workers", b.pid()).await, Ok(false));
        all.retain(|p| p != b.pid());
        members(all.clone()).await;

        a.stop(ExitReason::Normal).await.unwrap();
        all.retain(|p| p != a.pid());
        members(all.clone()).await;

        let lost = id(&nodes[2]);
        for node in &nodes[..2] {
            node.faults().partition(&lost, true);
        }
        let what = "the lost node's members to leave";
        eventually(what, || {
            nodes[..2]
                .iter()
                .all(|n| n.group_members("workers").is_empty() && n.groups().is_empty())
        })
        .await;
        let gone = nodes[0].join_group("workers", a.pid()).await;
        assert!(matches!(gone, Err(GlobalError::NoProc { .. })), "{gone:?}");
        shutdown_all(nodes);
    });
}

#[test]
fn many_cycles_leave_no_names_groups_or_claims_behind() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        for round in 0..300 {
            let node = &nodes[round % 2];
            let server = counter(node, 0).await;
            let name = format!("cycle-{round}");
            node.register_global(&name, server.pid()).await.unwrap();
            node.join_group("cycling", server.pid()).await.unwrap();
            if round % 3 == 0 {
                node.unregister_global(&name).await.unwrap();
            }
            server.stop(ExitReason::Normal).await.unwrap();
        }
        eventually("every table to empty", || {
            nodes.iter().all(|n| {
                n.global_names().is_empty()
                    && n.groups().is_empty()
                    && n.faults().global_pending() == (0, 0)
                    && n.faults().global_records() == 0
            })
        })
        .await;
        shutdown_all(nodes);
    });
}

#[test]
fn a_spawn_with_a_global_name_registers_before_init_and_fails_if_the_name_is_held() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        for node in &nodes {
            node.register_behaviors().unwrap();
        }
        let target = id(&nodes[1]);
        let options = SpawnOptions::new().global_name("aware");
        let aware = nodes[0]
            .spawn_on_with::<SelfAware>(&target, "aware".to_owned(), options.clone())
            .await
            .unwrap();
        everywhere(&nodes, "aware", Some(aware.pid())).await;

        let count = nodes[1].process_count();
        let again = nodes[0]
            .spawn_on_with::<SelfAware>(&target, "aware".to_owned(), options.clone())
            .await;
        match again {
            Err(RemoteSpawnError::NameTaken { name, holder, .. }) => {
                assert_eq!((name.as_str(), &holder), ("aware", aware.pid()));
            }
            other => panic!("expected NameTaken, got {:?}", other.map(|_| ())),
        }
        assert_eq!(nodes[1].process_count(), count);

        // Held on another node than the target: the same.
        let here = counter(&nodes[0], 0).await;
        nodes[0].register_global("here", here.pid()).await.unwrap();
        let options = SpawnOptions::new().global_name("here");
        let taken = nodes[0]
            .spawn_on_with::<SelfAware>(&target, "here".to_owned(), options.clone())
            .await;
        assert!(
            matches!(&taken, Err(RemoteSpawnError::NameTaken { holder, .. }) if holder == here.pid()),
            "{:?}",
            taken.map(|_| ())
        );
        assert_eq!(nodes[1].process_count(), count);

        // And locally.
        let local = nodes[1].spawn_with::<Counter>(0, options).await;
        assert!(
            matches!(&local, Err(SpawnError::NameTaken { holder, .. }) if holder == here.pid()),
            "{:?}",
            local.map(|_| ())
        );
        assert_eq!(nodes[1].process_count(), count);
        shutdown_all(nodes);
    });
}

/// a and c register one name while c is cut off; then b (but not a) reaches c again, so a
/// and c still do not meet. b sees both registrations and keeps one by the rule, and tells
/// the loser's node: its process gives the name up and is told (`NameConflict`) while a
/// and c are still apart. Once every link heals, every node sees the winner, and nobody
/// is told anything more.
#[test]
fn a_conflict_seen_by_a_third_node_is_settled_though_the_two_nodes_do_not_meet() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        isolate(&nodes, 2, true);
        wait_connected(a, 1).await;
        wait_connected(c, 0).await;
        let on_a = counter(a, 0).await;
        let on_c = counter(c, 0).await;
        for counter in [&on_a, &on_c] {
            counter.trap_exits().await.unwrap();
        }
        a.register_global("x", on_a.pid()).await.unwrap();
        c.register_global("x", on_c.pid()).await.unwrap();
        b.faults().partition(&id(c), false);
        c.faults().partition(&id(b), false);
        wait_connected(c, 1).await;
        // b keeps one by the rule; the other's node withdraws it once told.
        eventually("b to keep one", || {
            b.faults().global_records() == 1 && b.whereis_global("x").is_some()
        })
        .await;
        let winner = b.whereis_global("x").unwrap();
        let (won, lost, losers_node) = match &winner == on_a.pid() {
            true => (&on_a, &on_c, c),
            false => (&on_c, &on_a, a),
        };
        let told = async {
            loop {
                let trapped = lost.trapped().await.unwrap();
                if !trapped.is_empty() {
                    break trapped;
                }
                smol::Timer::after(Duration::from_millis(2)).await;
            }
        };
        assert_eq!(
            within("the loser to be told", told).await,
            vec![(winner.clone(), ExitReason::NameConflict("x".into()))]
        );
        // The loser's node does not reach the winner's: it sees nobody.
        eventually("the loser's node to give the name up", || {
            losers_node.whereis_global("x").is_none()
        })
        .await;
        assert_eq!(a.connected_nodes().len(), 1, "a and c are still apart");
        a.faults().partition(&id(c), false);
        c.faults().partition(&id(a), false);
        for node in &nodes {
            wait_connected(node, 2).await;
        }
        everywhere(&nodes, "x", Some(&winner)).await;
        assert!(won.trapped().await.unwrap().is_empty());
        assert_eq!(lost.trapped().await.unwrap().len(), 1, "told once");
        let other = counter(b, 0).await;
        let taken = b.register_global("x", other.pid()).await;
        assert!(
            matches!(&taken, Err(GlobalError::NameTaken { holder, .. }) if holder == &winner),
            "{taken:?}"
        );
        shutdown_all(nodes);
    });
}

#[test]
fn long_names_are_refused_and_large_tables_reach_a_node_with_small_frames() {
    run_blocking(async {
        // The smallest frames a node accepts: its table goes in several parts.
        let config = |name: &str| cluster_config(name).limits(noex::MIN_FRAME_SIZE, 1 << 20);
        let a = Node::start(config("a")).await.unwrap();
        let server = counter(&a, 0).await;
        let too_long = "y".repeat(noex::MAX_NAME_LEN + 1);
        assert_eq!(
            a.register_global(&too_long, server.pid()).await,
            Err(GlobalError::NameTooLong {
                len: noex::MAX_NAME_LEN + 1,
                max: noex::MAX_NAME_LEN
            })
        );
        let mut held = Vec::new();
        for i in 0..100 {
            let server = counter(&a, 0).await;
            let name = format!("{i:03}{}", "z".repeat(noex::MAX_NAME_LEN - 3));
            a.register_global(&name, server.pid()).await.unwrap();
            a.join_group(&name, server.pid()).await.unwrap();
            held.push((name, server.pid().clone()));
        }
        let seed = id(&a).to_string();
        let b = Node::start(config("b").seed(seed)).await.unwrap();
        wait_connected(&b, 1).await;
        eventually("b to learn every long name", || b.global_names() == held).await;
        // The groups come in the parts after the names'.
        eventually("b to learn every group", || b.groups().len() == 100).await;
        assert_eq!(b.cluster_stats().reconnects, 0);
        a.shutdown();
        b.shutdown();
    });
}

#[test]
fn a_spawn_given_up_while_registering_its_global_name_tells_its_watchers() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let watcher = common::probe(&nodes[0], false).await;
        // The peer hears nothing: the claim waits for its grant.
        nodes[0].faults().silence(&id(&nodes[1]), true);
        let options = SpawnOptions::new().name("svc").global_name("g");
        let mut spawn = Box::pin(nodes[0].spawn_with::<Counter>(0, options));
        assert!(futures_lite::future::poll_once(&mut spawn).await.is_none());
        let pid = nodes[0].whereis("svc").expect("named before init");
        let monitor = watcher.monitor(&pid).await;
        drop(spawn);
        assert_eq!(
            watcher.next_seen().await,
            common::Seen::Down {
                monitor,
                pid: pid.clone(),
                reason: ExitReason::NoProc
            }
        );
        assert_eq!(nodes[0].whereis("svc"), None);
        assert_eq!(nodes[0].faults().global_pending(), (0, 0));
        shutdown_all(nodes);
    });
}

#[test]
fn a_hidden_node_and_its_processes_are_refused_by_the_registry_and_groups() {
    run_blocking(async {
        let nodes = start_cluster(1).await;
        let a = &nodes[0];
        let hidden = Node::start(cluster_config("hidden").hidden().seed(id(a).to_string()))
            .await
            .unwrap();
        eventually("the hidden node to connect", || a.hidden_nodes().len() == 1).await;
        let refused = |node: &Node| GlobalError::HiddenNode {
            node: id(node).to_string(),
        };
        let on_hidden = counter(&hidden, 0).await;
        let on_a = counter(a, 0).await;

        // A member cannot register a hidden node's process, nor make it join a group.
        let hidden_pid = on_hidden.pid();
        assert_eq!(
            a.register_global("h", hidden_pid).await,
            Err(refused(&hidden))
        );
        assert_eq!(a.join_group("g", hidden_pid).await, Err(refused(&hidden)));
        assert_eq!(a.whereis_global("h"), None);
        assert!(a.group_members("g").is_empty());

        // A hidden node registers nothing, its own process or a member's.
        assert_eq!(
            hidden.register_global("h", hidden_pid).await,
            Err(refused(&hidden))
        );
        assert_eq!(
            hidden.register_global("m", on_a.pid()).await,
            Err(refused(&hidden))
        );
        assert_eq!(
            hidden.join_group("g", on_a.pid()).await,
            Err(refused(&hidden))
        );
        assert_eq!(a.whereis_global("m"), None);
        let named = SpawnOptions::new().global_name("spawned");
        match hidden.spawn_with::<Counter>(0, named).await {
            Err(SpawnError::GlobalName(error)) => assert_eq!(error, refused(&hidden)),
            other => panic!("unexpected {other:?}"),
        }
        hidden.shutdown();
        shutdown_all(nodes);
    });
}

#[test]
fn a_global_name_too_long_fails_the_spawn_with_that_reason() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let long = "n".repeat(noex::MAX_NAME_LEN + 1);
        let too_long = GlobalError::NameTooLong {
            len: long.len(),
            max: noex::MAX_NAME_LEN,
        };
        let named = SpawnOptions::new().global_name(long.clone());
        match nodes[0].spawn_with::<Counter>(0, named.clone()).await {
            Err(SpawnError::GlobalName(error)) => assert_eq!(error, too_long),
            other => panic!("unexpected {other:?}"),
        }
        nodes[1].register_behaviors().unwrap();
        match nodes[0]
            .spawn_on_with::<Counter>(&id(&nodes[1]), 0, named)
            .await
        {
            Err(RemoteSpawnError::GlobalName { error, .. }) => assert_eq!(error, too_long),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(nodes[1].process_count(), 0, "nothing was started");
        shutdown_all(nodes);
    });
}

#[test]
fn a_local_name_refuses_a_process_of_another_node() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let on_b = counter(&nodes[1], 0).await;
        assert_eq!(
            nodes[0].register("local", on_b.pid()),
            Err(noex::RegisterError::NotLocal {
                pid: on_b.pid().clone()
            })
        );
        assert_eq!(nodes[0].whereis("local"), None);
        shutdown_all(nodes);
    });
}

#[test]
fn a_supervisor_that_loses_its_global_name_when_a_partition_heals_stops_with_its_children() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let ids: Vec<NodeId> = nodes.iter().map(id).collect();
        nodes[0].faults().partition(&ids[1], true);
        nodes[1].faults().partition(&ids[0], true);
        eventually("the cut", || {
            nodes.iter().all(|n| n.connected_nodes().is_empty())
        })
        .await;
        // One supervisor named "sup" on each side, each with its own child; their ends
        // watched from before the heal.
        let mut sides = Vec::new();
        for node in &nodes {
            let spec =
                SupervisorSpec::new(noex::Strategy::OneForOne)
                    .child(ChildSpec::worker::<Counter>("counter", 0));
            let named = SpawnOptions::new().global_name("sup");
            let supervisor = node.spawn_with::<Supervisor>(spec, named).await.unwrap();
            let child = supervisor.which_children().await.unwrap()[0]
                .pid
                .clone()
                .unwrap();
            let ends = (
                watch_end(node, supervisor.pid()).await,
                watch_end(node, &child).await,
            );
            sides.push((supervisor.pid().clone(), child, ends));
        }
        nodes[0].faults().partition(&ids[1], false);
        nodes[1].faults().partition(&ids[0], false);
        let winner = within("one owner everywhere", async {
            loop {
                let owners: Vec<_> = nodes.iter().map(|n| n.whereis_global("sup")).collect();
                if owners[0].is_some() && owners[0] == owners[1] {
                    break owners[0].clone().unwrap();
                }
                smol::Timer::after(Duration::from_millis(2)).await;
            }
        })
        .await;
        let loser = sides.iter().position(|(s, _, _)| *s != winner).unwrap();
        let (_, kept_child, _) = &sides[1 - loser];
        let kept_child = kept_child.clone();
        let (_, _, (supervisor_end, child_end)) = sides.swap_remove(loser);
        assert_eq!(
            within("the loser to stop", supervisor_end).await,
            ExitReason::NameConflict("sup".into())
        );
        assert_eq!(
            within("its child to stop", child_end).await,
            ExitReason::Shutdown
        );
        assert!(nodes[1 - loser].is_alive(&kept_child));
        shutdown_all(nodes);
    });
}

#[test]
fn a_node_started_after_a_name_was_taken_loses_its_own_registration_of_it() {
    run_blocking(async {
        let nodes = start_cluster(1).await;
        let old = &nodes[0];
        // The old node has registered a few names before; its holder is registered next.
        for n in 0..3 {
            let other = counter(old, n).await;
            old.register_global(&format!("other-{n}"), other.pid())
                .await
                .unwrap();
        }
        let holder = counter(old, 1).await;
        old.register_global("leader", holder.pid()).await.unwrap();
        let registered = std::time::SystemTime::now();
        // Later, a node on its own (it has seen no claim) registers the name too...
        let late = Node::start(cluster_config("late")).await.unwrap();
        eventually("the wall clock to move on", || {
            registered.elapsed().unwrap_or_default() >= Duration::from_millis(20)
        })
        .await;
        let newcomer = counter(&late, 2).await;
        late.register_global("leader", newcomer.pid())
            .await
            .unwrap();
        let newcomer_end = watch_end(&late, newcomer.pid()).await;
        // ...then meets the old one: the earlier registration keeps the name.
        let address = id(old).to_string();
        late.faults().dial(address.split('@').nth(1).unwrap());
        wait_connected(&late, 1).await;
        let both = [old, &late];
        eventually("one owner everywhere", || {
            both.iter()
                .all(|n| n.whereis_global("leader").as_ref() == Some(holder.pid()))
        })
        .await;
        assert_eq!(
            within("the newcomer to lose", newcomer_end).await,
            ExitReason::NameConflict("leader".into())
        );
        late.shutdown();
        shutdown_all(nodes);
    });
}
