//! The `supervision_tree` example: runs to its end and draws its tree as its docs do.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_supervision_tree");

#[test]
fn the_example_restarts_its_crashed_children_and_draws_its_tree() {
    let output = Command::new(BIN).output().expect("the example runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("event: worker-2 restarted as"), "{stdout}");
    assert!(stdout.contains("event: cache restarted as"), "{stdout}");
    // Drawn twice: at the start and after the restarts.
    for line in [
        "  ├── cache",
        "  └── pool",
        "      ├── worker-1",
        "      └── worker-4",
    ] {
        assert_eq!(stdout.matches(line).count(), 2, "{line:?} in\n{stdout}");
    }
}
