//! The local registry: unique names, typed lookups, calls by name, release on exit.

mod common;

use common::{probe, run, Probe, ProbeCall, ProbeReply, Seen};
use noex::{
    CallError, Ctx, ExitReason, GenServer, LookupError, RegisterError, ReplyTo, SendError,
    SpawnOptions,
};

/// A behaviour other than `Probe`, to look up under the wrong type.
struct Other;

impl GenServer for Other {
    type Args = ();
    type Call = ();
    type Reply = &'static str;
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        Ok(Other)
    }

    async fn handle_call(&mut self, _: (), reply: ReplyTo<&'static str>, _: &mut Ctx<Self>) {
        reply.send("other");
    }
}

#[test]
fn a_registered_name_finds_its_process() {
    run(|node| async move {
        let probe = probe(&node, false).await;
        node.register("db", probe.pid()).unwrap();
        assert_eq!(node.whereis("db").as_ref(), Some(probe.pid()));
        assert_eq!(
            node.registered(),
            vec![("db".to_owned(), probe.pid().clone())]
        );
        assert_eq!(
            node.process_info(probe.pid()).unwrap().name.as_deref(),
            Some("db")
        );
    });
}

#[test]
fn a_taken_name_cannot_be_registered_again() {
    run(|node| async move {
        let first = probe(&node, false).await;
        let second = probe(&node, false).await;
        node.register("db", first.pid()).unwrap();
        assert_eq!(
            node.register("db", second.pid()),
            Err(RegisterError::NameTaken {
                name: "db".into(),
                holder: first.pid().clone()
            })
        );
    });
}

#[test]
fn a_process_has_at_most_one_name() {
    run(|node| async move {
        let probe = probe(&node, false).await;
        node.register("primary", probe.pid()).unwrap();
        assert_eq!(
            node.register("alias", probe.pid()),
            Err(RegisterError::AlreadyNamed {
                pid: probe.pid().clone(),
                name: "primary".into()
            })
        );
    });
}

#[test]
fn a_process_that_is_not_running_cannot_be_registered() {
    run(|node| async move {
        let probe = probe(&node, false).await;
        probe.server.stop(ExitReason::Normal).await.unwrap();
        assert_eq!(
            node.register("ghost", probe.pid()),
            Err(RegisterError::NoProc)
        );
    });
}

#[test]
fn unregister_frees_the_name_for_another_process() {
    run(|node| async move {
        let first = probe(&node, false).await;
        let second = probe(&node, false).await;
        node.register("db", first.pid()).unwrap();
        assert_eq!(node.unregister("db").as_ref(), Some(first.pid()));
        assert_eq!(node.whereis("db"), None);
        assert_eq!(node.process_info(first.pid()).unwrap().name, None);
        node.register("db", second.pid()).unwrap();
        assert_eq!(node.unregister("nothing"), None);
    });
}

#[test]
fn a_name_is_released_when_its_process_ends() {
    run(|node| async move {
        let probe = probe(&node, false).await;
        node.register("db", probe.pid()).unwrap();
        node.kill(probe.pid());
        probe.exited().await;
        assert_eq!(node.whereis("db"), None);
        let successor = common::probe(&node, false).await;
        node.register("db", successor.pid()).unwrap();
    });
}

#[test]
fn a_name_is_released_before_monitors_hear_of_the_end() {
    run(|node| async move {
        let named = probe(&node, false).await;
        let watcher = probe(&node, false).await;
        node.register("db", named.pid()).unwrap();
        watcher.monitor(named.pid()).await;
        node.kill(named.pid());
        assert!(matches!(watcher.next_seen().await, Seen::Down { .. }));
        assert_eq!(node.whereis("db"), None);
    });
}

#[test]
fn calls_and_casts_by_name_reach_the_registered_process() {
    run(|node| async move {
        let options = SpawnOptions::new().name("other");
        node.spawn_with::<Other>((), options).await.unwrap();
        let other = node.named::<Other>("other");
        assert_eq!(other.call(()).await, Ok("other"));
        assert_eq!(other.cast(()), Ok(()));
        assert_eq!(other.send(()), Ok(()));
    });
}

#[test]
fn calls_and_casts_to_an_unregistered_name_return_noproc() {
    run(|node| async move {
        let nobody = node.named::<Other>("nobody");
        assert_matches!(nobody.call(()).await, Err(CallError::NoProc { .. }));
        assert_matches!(nobody.cast(()), Err(SendError::NoProc { .. }));
        assert_eq!(
            nobody.resolve().err(),
            Some(LookupError::NotFound("nobody".into()))
        );
    });
}

#[test]
fn a_typed_lookup_of_the_wrong_behaviour_is_an_error_not_a_panic() {
    run(|node| async move {
        let probe = probe(&node, false).await;
        node.register("probe", probe.pid()).unwrap();
        let wrong = node.lookup::<Other>("probe");
        assert!(
            matches!(&wrong, Err(LookupError::WrongBehavior { name, found, .. })
                if name == "probe" && found.ends_with("Probe")),
            "{wrong:?}"
        );
        let call = node.named::<Other>("probe").call(()).await;
        assert!(
            matches!(call, Err(CallError::WrongBehavior { .. })),
            "{call:?}"
        );

        let right = node.lookup::<Probe>("probe").unwrap();
        assert!(matches!(
            right.call(ProbeCall::Ping).await,
            Ok(ProbeReply::Done)
        ));
    });
}

/// Once `unregister` has freed a name, its process is unnamed: a registration of it under
/// another name that sees the name gone never fails with `AlreadyNamed` (the process's own
/// record of its name was cleared after the registry's, outside its lock). Two threads race
/// for many rounds.
#[test]
fn a_process_seen_unnamed_after_unregister_takes_another_name() {
    run(|node| async move {
        let probe = probe(&node, false).await;
        let pid = probe.pid().clone();
        for round in 0..60_000 {
            node.register("first", &pid).unwrap();
            let racing = std::thread::spawn({
                let (node, pid) = (node.clone(), pid.clone());
                move || {
                    while node.whereis("first").is_some() {
                        std::hint::spin_loop();
                    }
                    node.register("second", &pid)
                }
            });
            assert_eq!(node.unregister("first"), Some(pid.clone()));
            let second = racing.join().unwrap();
            assert_eq!(second, Ok(()), "round {round}");
            assert_eq!(node.unregister("second"), Some(pid.clone()));
        }
    });
}
