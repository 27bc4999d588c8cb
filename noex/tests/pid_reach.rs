//! "A pid of another node is as real as a local one": every operation that takes a pid
//! either works across nodes with the local semantics or fails with a typed error — never
//! a silent wrong answer. Checked API by API, for a live process of a connected node, an
//! ended one, a node not connected, an earlier incarnation of a restarted node, and
//! another unclustered node in the same OS process.

mod common;
use common::id;

use common::{
    cluster_config, next_event, probe, run_blocking, shutdown_all, start_cluster, wait_connected,
    within, Seen,
};
use noex::{
    behavior, CallError, ClusterEvent, Ctx, ExitReason, GenServer, GlobalError, Node, NodeId, Pid,
    RegisterError, RemoteSpawnError, ReplyTo, SendError, SpawnOptions,
};

/// A remote-capable server that says which node it runs on.
#[behavior(name = "audit.echo")]
pub struct Echo {
    tag: u32,
}

#[behavior]
impl Echo {
    #[init]
    fn init(tag: u32) -> Self {
        Echo { tag }
    }

    #[call]
    fn tag(&self) -> u32 {
        self.tag
    }

    #[cast]
    fn set(&mut self, tag: u32) {
        self.tag = tag;
    }

    #[info]
    fn info(&mut self, info: noex::Info<u32>) {
        if let noex::Info::Message(tag) = info {
            self.tag = tag;
        }
    }
}

/// Another remote-capable behaviour.
#[behavior(name = "audit.other")]
pub struct Other;

#[behavior]
impl Other {
    #[init]
    fn init() -> Self {
        Other
    }

    #[call]
    fn ping(&self) {}
}

/// A local process that spawns, linked, by name on the node it is told.
struct Spawner;

impl GenServer for Spawner {
    type Args = ();
    type Call = NodeId;
    type Reply = Result<Pid, RemoteSpawnError>;
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        Ok(Spawner)
    }

    async fn handle_call(
        &mut self,
        node: NodeId,
        reply: ReplyTo<Self::Reply>,
        ctx: &mut Ctx<Self>,
    ) {
        let args = postcard::to_allocvec(&5u32).unwrap();
        let spawned = ctx
            .spawn_link_by_name_on_with(&node, "audit.echo", &args, SpawnOptions::new())
            .await;
        reply.send(spawned);
    }
}

/// A node id no node of the test listens on.
fn elsewhere() -> NodeId {
    "elsewhere@127.0.0.1:9".parse().unwrap()
}

// An unclustered node's `named_on` of another node resolves nothing here.

#[test]
fn named_on_another_node_from_an_unclustered_node_fails_with_no_connection() {
    run_blocking(async {
        let node = Node::new();
        // A process of this node happens to hold the name.
        let options = SpawnOptions::new().name("echo");
        node.spawn_with::<Echo>(1, options).await.unwrap();
        // The name on another node, which this (unclustered) node cannot reach.
        let there = node.named_on::<Echo>("echo", &elsewhere());
        let answer = within("the call", there.tag()).await;
        let cast = there.set(2);
        // The observer of that node goes the same way (it calls "noex.observer" there).
        let observed = within("the observer", node.observer_of(&elsewhere()).overview()).await;
        let seen = (
            match answer {
                Err(CallError::NoConnection { .. }) => "NoConnection".to_owned(),
                other => format!("{other:?}"),
            },
            match cast {
                Err(SendError::NoConnection { .. }) => "NoConnection".to_owned(),
                other => format!("{other:?}"),
            },
            match observed {
                Err(CallError::NoConnection { .. }) => "NoConnection".to_owned(),
                Ok(_) => "Ok(..)".to_owned(),
                Err(other) => format!("{other:?}"),
            },
        );
        assert_eq!(
            seen,
            (
                "NoConnection".into(),
                "NoConnection".into(),
                "NoConnection".into()
            ),
            "\"echo\" on {} answered by this node's own \"echo\" (tag now {:?})",
            elsewhere(),
            node.named::<Echo>("echo").tag().await,
        );
        node.shutdown();
    });
}

// An unclustered node's linked spawn by name on another node spawns nothing here.

#[test]
fn a_linked_spawn_by_name_on_another_node_from_an_unclustered_node_fails_with_no_connection() {
    run_blocking(async {
        let node = Node::new();
        node.register_behaviors().unwrap();
        // The siblings say NoConnection...
        let plain = node
            .spawn_by_name_on(
                &elsewhere(),
                "audit.echo",
                &postcard::to_allocvec(&5u32).unwrap(),
            )
            .await;
        assert!(
            matches!(plain, Err(RemoteSpawnError::NoConnection { .. })),
            "{plain:?}"
        );
        // ...the linked spawn by name from a process spawns here.
        let spawner = node.spawn::<Spawner>(()).await.unwrap();
        let linked = within("the spawn", spawner.call(elsewhere()))
            .await
            .unwrap();
        assert!(
            matches!(linked, Err(RemoteSpawnError::NoConnection { .. })),
            "a linked spawn on {} should fail with NoConnection; got {linked:?} \
             (a process of this node, {} running)",
            elsewhere(),
            node.process_count(),
        );
        node.shutdown();
    });
}

// Unclustered nodes in one OS process share the name `nonode`: a live pid of one is not an
// ended process of another.

#[test]
fn a_live_pid_of_another_unclustered_node_is_not_taken_for_an_ended_one() {
    run_blocking(async {
        let a = Node::new();
        let b = Node::new();
        assert_eq!(a.name(), b.name());
        // The control: a local node with another name, whose pids b handles as those of
        // a node it is not connected to.
        let c = Node::builder().name("other").build();
        let mut seen = Vec::new();
        for owner in [&c, &a] {
            let live = owner.spawn::<Echo>(1).await.unwrap();
            seen.push((owner.name().to_owned(), what_b_says(&b, live.pid()).await));
            // All the while, the process runs.
            assert_eq!(live.tag().await, Ok(1));
        }
        let (other, nonode) = (&seen[0].1, &seen[1].1);
        assert_eq!(
            nonode, other,
            "b answers a live pid of another \"nonode\" node as one of its own that ended"
        );
        shutdown_all(vec![a, b, c]);
    });
}

/// What `b`'s pid-taking APIs say of `pid`, a process b cannot reach.
async fn what_b_says(b: &Node, pid: &Pid) -> Vec<(&'static str, String)> {
    let mut seen: Vec<(&str, String)> = Vec::new();
    let exited = within("b.exited", b.exited(pid)).await;
    seen.push(("exited", format!("{exited:?}")));
    let stop = within("b.stop", b.stop(pid, ExitReason::Normal)).await;
    seen.push(("stop", kind_send(&stop.map(|_| ()))));
    seen.push(("register", kind_register(&b.register("live", pid))));
    let join = within("b.join_group", b.join_group("g", pid)).await;
    seen.push(("join_group", kind_global(&join.map(|_| ()))));
    let global = within("b.register_global", b.register_global("n", pid)).await;
    seen.push(("register_global", kind_global(&global)));
    let detail = within("observer", b.observer().process(pid)).await;
    let detail = match detail {
        Ok(detail) => format!("Ok({})", detail.is_some()),
        Err(CallError::NoConnection { .. }) => "NoConnection".into(),
        Err(other) => format!("{other:?}"),
    };
    seen.push(("observer.process", detail));
    let call = match b.server_ref::<Echo>(pid) {
        Ok(server) => match within("call", server.tag()).await {
            Ok(tag) => format!("Ok({tag})"),
            Err(CallError::NoConnection { .. }) => "NoConnection".into(),
            Err(CallError::NoProc { .. }) => "NoProc".into(),
            Err(other) => format!("{other:?}"),
        },
        Err(error) => format!("server_ref: {error:?}"),
    };
    seen.push(("server_ref+call", call));

    let watcher = probe(b, true).await;
    let monitor = watcher.monitor(pid).await;
    match watcher.next_seen().await {
        Seen::Down {
            monitor: m, reason, ..
        } if m == monitor => seen.push(("monitor", format!("Down {reason:?}"))),
        other => seen.push(("monitor", format!("{other:?}"))),
    }
    watcher.link(pid).await;
    match watcher.next_seen().await {
        Seen::Exit { reason, .. } => seen.push(("link", format!("Exit {reason:?}"))),
        other => seen.push(("link", format!("{other:?}"))),
    }
    seen
}

/// What [`what_b_says`] reports of a process it cannot reach, for the reason `why`
/// (`NoProc`, `NoConnection`): that reason everywhere.
fn what_b_says_of(why: &str) -> Vec<(&'static str, String)> {
    let api = [
        "exited",
        "stop",
        "register",
        "join_group",
        "register_global",
        "observer.process",
        "server_ref+call",
    ];
    let mut seen: Vec<(&str, String)> = api.iter().map(|a| (*a, why.to_owned())).collect();
    if why == "NoProc" {
        seen[5].1 = "Ok(false)".into(); // observer: read there, none
    }
    seen.push(("monitor", format!("Down {why}")));
    seen.push(("link", format!("Exit {why}")));
    seen
}

fn kind_send(result: &Result<(), SendError>) -> String {
    match result {
        Ok(()) => "Ok".into(),
        Err(SendError::NoProc { .. }) => "NoProc".into(),
        Err(SendError::NoConnection { .. }) => "NoConnection".into(),
        Err(other) => format!("{other:?}"),
    }
}

fn kind_register(result: &Result<(), RegisterError>) -> String {
    match result {
        Ok(()) => "Ok".into(),
        Err(RegisterError::NoProc) => "NoProc".into(),
        Err(RegisterError::NotLocal { .. }) => "NotLocal".into(),
        Err(other) => format!("{other:?}"),
    }
}

fn kind_global(result: &Result<(), GlobalError>) -> String {
    match result {
        Ok(()) => "Ok".into(),
        Err(GlobalError::NoProc { .. }) => "NoProc".into(),
        Err(GlobalError::NoConnection { .. }) => "NoConnection".into(),
        Err(other) => format!("{other:?}"),
    }
}

// A pid of an earlier incarnation of a restarted node.

#[test]
fn a_pid_of_an_earlier_incarnation_is_noproc_everywhere() {
    run_blocking(async {
        let s = Node::start(cluster_config("s")).await.unwrap();
        let seed = id(&s).to_string();
        let x = Node::start(cluster_config("x").seed(seed.clone()))
            .await
            .unwrap();
        wait_connected(&s, 1).await;
        let old = x.spawn::<Echo>(1).await.unwrap().pid().clone();
        let old_ref = s.server_ref::<Echo>(&old).unwrap();
        assert_eq!(old_ref.tag().await, Ok(1));
        let events = s.cluster_events();
        let port = id(&x).port();
        x.shutdown();
        within("x's NodeDown", async {
            while !matches!(next_event(&events).await, ClusterEvent::NodeDown { .. }) {}
        })
        .await;
        let config = cluster_config("x")
            .bind(format!("127.0.0.2:{port}").parse().unwrap())
            .advertise_host("127.0.0.1")
            .seed(seed);
        let x2 = Node::start(config).await.unwrap();
        assert_eq!(id(&x2), old.node().parse::<NodeId>().unwrap());
        wait_connected(&s, 1).await;
        // Same serial in the new incarnation, a live process: never reached by `old`.
        let mut newer = x2.spawn::<Echo>(2).await.unwrap();
        while newer.pid().serial() < old.serial() {
            newer = x2.spawn::<Echo>(2).await.unwrap();
        }

        let mut seen: Vec<(&str, String)> = Vec::new();
        seen.push(("is_alive", s.is_alive(&old).to_string()));
        seen.push(("ref.is_alive", old_ref.is_alive().to_string()));
        seen.push(("kill", s.kill(&old).to_string()));
        seen.push((
            "exited",
            format!("{:?}", within("exited", s.exited(&old)).await),
        ));
        let stop = within("stop", s.stop(&old, ExitReason::Normal)).await;
        seen.push(("stop", kind_send(&stop.map(|_| ()))));
        let call = within("call", old_ref.tag()).await;
        seen.push((
            "call",
            format!("{}", matches!(call, Err(CallError::NoProc { .. }))),
        ));
        let join = within("join", s.join_group("g", &old)).await;
        seen.push(("join_group", kind_global(&join.map(|_| ()))));
        let global = within("register_global", s.register_global("n", &old)).await;
        seen.push(("register_global", kind_global(&global)));
        let info = within("observer", s.observer().process(&old)).await;
        seen.push((
            "observer.process",
            format!("{:?}", info.map(|d| d.is_some())),
        ));
        let watcher = probe(&s, true).await;
        let monitor = watcher.monitor(&old).await;
        match watcher.next_seen().await {
            Seen::Down {
                monitor: m, reason, ..
            } if m == monitor => seen.push(("monitor", format!("Down {reason:?}"))),
            other => seen.push(("monitor", format!("{other:?}"))),
        }
        watcher.link(&old).await;
        match watcher.next_seen().await {
            Seen::Exit { reason, .. } => seen.push(("link", format!("Exit {reason:?}"))),
            other => seen.push(("link", format!("{other:?}"))),
        }
        let expected: Vec<(&str, String)> = vec![
            ("is_alive", "false".into()),
            ("ref.is_alive", "false".into()),
            ("kill", "false".into()),
            ("exited", "NoProc".into()),
            ("stop", "NoProc".into()),
            ("call", "true".into()),
            ("join_group", "NoProc".into()),
            ("register_global", "NoProc".into()),
            ("observer.process", "Ok(false)".into()),
            ("monitor", "Down NoProc".into()),
            ("link", "Exit NoProc".into()),
        ];
        assert_eq!(seen, expected);
        // The new incarnation's process was never touched.
        assert_eq!(newer.tag().await, Ok(2));
        shutdown_all(vec![s, x2]);
    });
}

/// A pid of a run of a node that ended before this node ever reached that node: its
/// incarnation, older than the one connected, is an earlier run's (incarnations grow with
/// the start time), so its processes are gone — not a later run's, not yet reached.
#[test]
fn a_pid_of_an_earlier_incarnation_never_seen_is_noproc() {
    run_blocking(async {
        let x = Node::start(cluster_config("x")).await.unwrap();
        let old = x.spawn::<Echo>(1).await.unwrap().pid().clone();
        let port = id(&x).port();
        x.shutdown();
        // s starts after x's first run ended: it never sees that run.
        let s = Node::start(cluster_config("s")).await.unwrap();
        let config = cluster_config("x")
            .bind(format!("127.0.0.2:{port}").parse().unwrap())
            .advertise_host("127.0.0.1")
            .seed(id(&s).to_string());
        let x2 = Node::start(config).await.unwrap();
        assert_eq!(id(&x2), old.node().parse::<NodeId>().unwrap());
        assert!(
            x2.incarnation() > old.incarnation(),
            "a later run, a greater incarnation"
        );
        wait_connected(&s, 1).await;
        let call = within("the call", s.server_ref::<Echo>(&old).unwrap().tag()).await;
        assert!(matches!(call, Err(CallError::NoProc { .. })), "{call:?}");
        assert_eq!(within("exited", s.exited(&old)).await, ExitReason::NoProc);
        let stop = within("stop", s.stop(&old, ExitReason::Normal)).await;
        assert_eq!(kind_send(&stop.map(|_| ())), "NoProc");
        shutdown_all(vec![s, x2]);
    });
}

// An ended process of a connected node, a node not connected.

#[test]
fn an_ended_remote_process_and_a_node_not_connected() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let gone = b.spawn::<Echo>(1).await.unwrap();
        let pid = gone.pid().clone();
        gone.stop(ExitReason::Normal).await.unwrap();
        let expected = |why: &str| {
            let mut seen = what_b_says_of(why);
            seen[2].1 = "NotLocal".into(); // register: of another node, whatever it says
            seen
        };
        assert_eq!(what_b_says(a, &pid).await, expected("NoProc"));

        // A node never connected.
        let c = Node::start(cluster_config("c")).await.unwrap();
        let stranger = c.spawn::<Echo>(3).await.unwrap().pid().clone();
        assert!(!a.is_alive(&stranger));
        assert!(!a.kill(&stranger));
        assert_eq!(what_b_says(a, &stranger).await, expected("NoConnection"));
        c.shutdown();
        shutdown_all(nodes);
    });
}

// A `ServerRef<B>` to a process of another node that runs another behaviour, or has
// ended: its casts and sends are dropped there, and counted.

#[test]
fn casts_a_remote_node_cannot_deliver_are_counted_where_they_are_dropped() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let other = b.spawn::<Other>(()).await.unwrap();
        let local_only = probe(b, false).await;
        let ended = b.spawn::<Echo>(1).await.unwrap();
        ended.stop(ExitReason::Normal).await.unwrap();
        // Locally: refused at once.
        assert!(matches!(
            b.server_ref::<Echo>(other.pid()),
            Err(noex::LookupError::WrongBehavior { .. })
        ));
        let undelivered = || b.cluster_stats().messages_undelivered;
        assert_eq!(undelivered(), 0);
        for pid in [other.pid(), local_only.pid(), ended.pid()] {
            let wrong = a
                .server_ref::<Echo>(pid)
                .expect("not checked for a remote pid");
            let before = undelivered();
            assert_eq!(wrong.set(7), Ok(()));
            assert_eq!(wrong.send(7), Ok(()));
            // A call behind them on the same connection: they have arrived.
            let call = within("the call", wrong.tag()).await;
            assert!(call.is_err(), "the call fails with a typed error: {call:?}");
            assert_eq!(undelivered(), before + 2, "the casts to {pid} are counted");
        }
        // Counted by the receiving node only: the sender queued them.
        assert_eq!(a.cluster_stats().messages_undelivered, 0);
        assert_eq!(a.cluster_stats().casts_dropped, 0);
        shutdown_all(nodes);
    });
}

// A timer to a live process of another node.

#[test]
fn a_timer_to_a_live_remote_process_delivers() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let target = b.spawn::<Echo>(1).await.unwrap();
        let remote = a.server_ref::<Echo>(target.pid()).unwrap();
        let timer = a.send_after(&remote, 9, std::time::Duration::from_millis(20));
        assert!(timer.is_pending());
        within("the timer's message", async {
            while target.tag().await != Ok(9) {
                smol::Timer::after(std::time::Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(!timer.is_pending());
        // Cancelled in time: no longer pending.
        let timer = a.send_after(&remote, 11, std::time::Duration::from_secs(30));
        assert!(a.cancel_timer(&timer));
        assert!(!timer.is_pending());
        // Still waiting when its node shuts down: it never delivers, nor says it may.
        let timer = a.send_after(&remote, 12, std::time::Duration::from_secs(30));
        a.shutdown();
        assert!(
            !timer.is_pending(),
            "a timer of a node shut down is not pending"
        );
        shutdown_all(nodes);
    });
}

// A live process of a connected node.

#[test]
fn a_live_remote_process() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let target = b.spawn::<Echo>(1).await.unwrap();
        let pid = target.pid().clone();
        let remote = a.server_ref::<Echo>(&pid).unwrap();
        assert!(a.is_alive(&pid) && remote.is_alive() && !remote.is_local());
        assert_eq!(remote.tag().await, Ok(1));
        remote.set(3).unwrap();
        remote.send(4).unwrap();
        assert_eq!(remote.tag().await, Ok(4));
        // Names and groups: registered on its node, seen from both.
        assert!(matches!(
            a.register("x", &pid),
            Err(RegisterError::NotLocal { .. })
        ));
        assert_eq!(a.register_global("audit", &pid).await, Ok(()));
        assert_eq!(b.whereis_global("audit"), Some(pid.clone()));
        assert_eq!(a.lookup_global::<Echo>("audit").unwrap().tag().await, Ok(4));
        assert_eq!(a.unregister_global("audit").await, Ok(Some(pid.clone())));
        assert_eq!(b.whereis_global("audit"), None);
        assert_eq!(a.join_group("g", &pid).await, Ok(true));
        assert_eq!(b.local_group_members("g"), vec![pid.clone()]);
        assert_eq!(a.leave_group("g", &pid).await, Ok(true));
        // Introspection: documented None here, read on its node by the observer.
        assert_eq!(a.process_info(&pid), None);
        let detail = a.observer().process(&pid).await.unwrap().unwrap();
        assert_eq!(detail.info.pid, pid);
        // Exit signals: Normal ignored by a process that does not trap; stop works.
        let watcher = probe(a, true).await;
        assert!(watcher.exit(&pid, ExitReason::Normal).await);
        assert_eq!(remote.tag().await, Ok(4));
        let monitor = watcher.monitor(&pid).await;
        watcher.link(&pid).await;
        let stopped = a.stop(&pid, ExitReason::Custom("bye".into())).await;
        assert_eq!(stopped, Ok(ExitReason::Custom("bye".into())));
        let mut seen = vec![watcher.next_seen().await, watcher.next_seen().await];
        seen.sort_by_key(|s| matches!(s, Seen::Down { .. }));
        assert_eq!(
            seen,
            vec![
                Seen::Exit {
                    from: pid.clone(),
                    reason: ExitReason::Custom("bye".into())
                },
                Seen::Down {
                    monitor,
                    pid: pid.clone(),
                    reason: ExitReason::Custom("bye".into())
                },
            ]
        );
        shutdown_all(nodes);
    });
}
