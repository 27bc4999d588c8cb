//! A node killed and started again under the same name and port: the pids of its old
//! incarnation answer `NoProc`, the new one joins, and the global names stay consistent.
#![cfg(unix)]

mod common;

use std::time::Duration;

use common::{poll, start_cluster, wait_full_mesh, wait_until, Phase};
use noex::Pid;

fn pid_arg(pid: &Pid) -> String {
    serde_json::to_string(pid).unwrap()
}

/// A call that failed with NoProc or NoConnection.
fn unreachable(answer: &Result<String, String>) -> bool {
    matches!(
        answer.as_ref().map_err(String::as_str),
        Err("NoProc" | "NoConnection")
    )
}

#[test]
fn a_restarted_node_joins_as_a_new_incarnation_and_its_old_names_are_gone() {
    let phase = Phase::new("restart");
    let mut nodes = start_cluster(3);
    let victim = nodes[2].id.clone();
    let stay = nodes[0].hold("g-stay").expect("g-stay registers");
    let held = nodes[2].hold("g-victim").expect("g-victim registers");
    let plain: Pid = nodes[2].ask("spawn-holder");
    for node in nodes.iter_mut() {
        wait_until(
            "the names to reach every node",
            Duration::from_secs(10),
            || {
                node.whereis("g-victim").as_ref() == Some(&held)
                    && node.whereis("g-stay").as_ref() == Some(&stay)
            },
        );
    }
    for node in nodes[..2].iter_mut() {
        let pong = node.cmd(&format!("ping-holder {}", pid_arg(&plain)));
        assert_eq!(pong.as_deref(), Ok("\"pong\""));
    }
    let old_incarnation = nodes[0]
        .peers()
        .into_iter()
        .find(|p| p.id == victim)
        .expect("the victim is connected")
        .incarnation;
    phase.log("names everywhere; killing n2");

    nodes[2].kill();
    for node in nodes[..2].iter_mut() {
        wait_until("the loss to be seen", Duration::from_secs(10), || {
            !node.peer_ids().contains(&victim)
        });
        // The dead node's name is gone everywhere; the others' stay.
        wait_until("g-victim to disappear", Duration::from_secs(10), || {
            node.whereis("g-victim").is_none()
        });
        assert_eq!(node.whereis("g-stay"), Some(stay.clone()));
        // While the node is down, its pids cannot be reached.
        let call = node.cmd(&format!("ping-holder {}", pid_arg(&plain)));
        assert!(unreachable(&call), "{call:?}");
    }
    phase.log("loss seen; restarting n2 on the same port");

    nodes[2].restart();
    wait_full_mesh(&mut nodes, Duration::from_secs(20));
    let new_incarnation = nodes[0]
        .peers()
        .into_iter()
        .find(|p| p.id == victim)
        .expect("the new incarnation is connected")
        .incarnation;
    assert_ne!(new_incarnation, old_incarnation);
    phase.log("new incarnation joined");

    // Old pids: NoProc from everywhere (NoConnection only while not yet reconnected).
    for node in nodes.iter_mut() {
        let mut answers = Vec::new();
        let no_proc = poll(Duration::from_secs(10), || {
            let call = node.cmd(&format!("ping-holder {}", pid_arg(&plain)));
            let done = call == Err("NoProc".into());
            answers.push(call);
            done
        });
        assert!(
            no_proc,
            "an old pid called from {} never answered NoProc: {answers:?}",
            node.name
        );
        assert!(answers.iter().all(unreachable), "{answers:?}");
        assert!(!node.ask::<bool>(&format!("alive {}", pid_arg(&held))));
    }

    // The new node learnt the names that survived and none of its old life's.
    wait_until(
        "the new node to learn g-stay",
        Duration::from_secs(10),
        || nodes[2].whereis("g-stay").as_ref() == Some(&stay),
    );
    for node in nodes.iter_mut() {
        assert_eq!(node.whereis("g-victim"), None);
    }
    // The name can be registered again, once.
    let again = nodes[2].hold("g-victim").expect("g-victim registers again");
    assert_ne!(again, held);
    for node in nodes.iter_mut() {
        wait_until(
            "the new g-victim everywhere",
            Duration::from_secs(10),
            || node.whereis("g-victim").as_ref() == Some(&again),
        );
    }
    let taken = nodes[1].hold("g-victim");
    assert!(taken.is_err(), "a second owner for g-victim: {taken:?}");
    for node in nodes.iter_mut() {
        let names: Vec<(String, Pid)> = node.ask("names");
        assert_eq!(
            names,
            vec![
                ("g-stay".to_owned(), stay.clone()),
                ("g-victim".to_owned(), again.clone())
            ],
            "on {}",
            node.name
        );
    }
    phase.log("names consistent");
}
