//! Names, trees and the pool.

use super::*;

#[test]
fn a_named_child_is_reached_by_name_after_a_restart() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne).child(log.spec("a").name("x"));
        let _sup = start(&node, spec).await;
        log.expect(&["init a"]).await;
        let named = node.named::<Worker>("x");
        let (_, old) = within("a call by name", named.call(Whoami)).await.unwrap();

        // when
        node.kill(&old);

        // then
        log.expect(&["init a"]).await;
        let (_, new) = within("a call by name", named.call(Whoami)).await.unwrap();
        assert_ne!(new, old);
        assert_eq!(&new, log.worker("a").pid());
    });
}

#[test]
fn a_child_process_info_names_its_supervisor() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sub = SupervisorSpec::new(Strategy::OneForOne).child(log.spec("w"));
        let top = start(
            &node,
            SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::supervisor("sub", sub)),
        )
        .await;
        log.expect(&["init w"]).await;

        // when
        let sub = pid_of(&top, "sub").await;
        let supervisor_of = |pid: &Pid| node.process_info(pid).unwrap().supervisor;

        // then
        assert_eq!(supervisor_of(log.worker("w").pid()), Some(sub.clone()));
        assert_eq!(supervisor_of(&sub), Some(top.pid().clone()));
        assert_eq!(supervisor_of(top.pid()), None);
    });
}

#[test]
fn a_pool_of_four_workers_stays_at_four_when_any_worker_is_killed() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let ids = ["w1", "w2", "w3", "w4"];
        let mut spec = SupervisorSpec::new(Strategy::OneForOne).intensity(10, LONG_WINDOW);
        for id in ids {
            spec = spec.child(log.spec(id));
        }
        let pool = start(&node, spec).await;
        log.expect(&["init w1", "init w2", "init w3", "init w4"])
            .await;

        for (i, id) in ids.into_iter().enumerate() {
            let before = children(&pool).await;
            let victim = before[i].1.clone().unwrap();

            // when
            node.kill(&victim);

            // then
            let restarted = format!("init {id}");
            log.expect(&[restarted.as_str()]).await;
            let after = children(&pool).await;
            assert_eq!(
                within("count_children", pool.count_children())
                    .await
                    .unwrap()
                    .active,
                4
            );
            for (j, (child, pid)) in after.iter().enumerate() {
                let pid = pid.as_ref().expect("every worker runs");
                assert!(node.is_alive(pid), "{child} is alive");
                if j == i {
                    assert_ne!(pid, &victim, "{child} was replaced");
                } else {
                    assert_eq!(Some(pid), before[j].1.as_ref(), "{child} was untouched");
                }
            }
        }
    });
}
