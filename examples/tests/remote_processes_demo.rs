//! The `remote_processes` demo in one process: workers spawned on other nodes move to a
//! survivor when their node is cut off, and every task is answered.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_remote_processes");

#[test]
fn the_local_cluster_demo_moves_the_workers_of_a_lost_node_and_answers_every_task() {
    let output = Command::new(BIN)
        .args(["--local-cluster", "3"])
        .output()
        .expect("the demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let count = |needle: &str| stdout.lines().filter(|l| l.contains(needle)).count();
    // Four workers spawned on the other nodes, the lost node's moved to the survivor.
    assert_eq!(count("(RoundRobin)"), 2, "{stdout}");
    let moved = count("down (noconnection)");
    assert!(moved >= 1, "{stdout}");
    assert_eq!(count("(LeastLoaded)"), 2 + moved, "{stdout}");
    // Twenty tasks answered, and the workers all on node2 at the end.
    assert_eq!(count("-> worker"), 20, "{stdout}");
    assert_eq!(count("runs on node2@"), 4, "{stdout}");
}
