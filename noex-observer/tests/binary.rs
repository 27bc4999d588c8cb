//! The real binary in a terminal: run inside tmux against a small cluster started in this
//! process, it shows a known node and, one key later, a known process.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{id, run, start_cluster, Idle, SECRET};
use noex::SpawnOptions;

/// How long the observer may take to show what the test waits for.
const SHOW_WITHIN: Duration = Duration::from_secs(20);

/// A tmux server of its own (its own socket), killed with everything in it when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket]);
        command
    }

    fn capture(&self, session: &str) -> String {
        let output = self
            .command()
            .args(["capture-pane", "-p", "-t", session])
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Captures the pane until it contains `text`, for at most [`SHOW_WITHIN`].
    fn wait_for(&self, session: &str, text: &str) {
        let deadline = Instant::now() + SHOW_WITHIN;
        loop {
            let screen = self.capture(session);
            if screen.contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} did not show within {SHOW_WITHIN:?}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
    }
}

fn tmux_installed() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|output| output.status.success())
}

#[test]
fn the_binary_shows_a_known_node_and_process_in_a_terminal() {
    if !tmux_installed() {
        eprintln!("note: tmux is not installed; the terminal test of the binary is skipped");
        return;
    }
    // Given a cluster of two nodes, with a named process on the first (which the
    // processes view shows first: nodes are ordered by id).
    let nodes = run(async {
        let nodes = start_cluster(&["alpha", "beta"]).await;
        nodes[0]
            .spawn_with::<Idle>((), SpawnOptions::new().name("known-process"))
            .await
            .unwrap();
        nodes
    });
    let seed = id(&nodes[0]);

    // When the observer runs in a 160×45 terminal, seeded with the first node...
    let tmux = Tmux {
        socket: format!("noex-observer-test-{}", std::process::id()),
    };
    let session = "observer";
    let program = format!(
        "{} --seed {seed} --secret {SECRET} --refresh 200",
        env!("CARGO_BIN_EXE_noex-observer")
    );
    let status = tmux
        .command()
        .args(["new-session", "-d", "-s", session, "-x", "160", "-y", "45"])
        .arg(&program)
        .status()
        .expect("tmux runs");
    assert!(status.success(), "tmux could not start the observer");

    // ...it lists both nodes, and after `2` the processes of the first.
    tmux.wait_for(session, &seed);
    tmux.wait_for(session, &id(&nodes[1]));
    let status = tmux
        .command()
        .args(["send-keys", "-t", session, "2"])
        .status()
        .expect("tmux runs");
    assert!(status.success());
    tmux.wait_for(session, "known-process");

    // `q` quits, and the members never counted it.
    for node in &nodes {
        assert_eq!(node.connected_nodes().len(), 1);
    }
    let _ = tmux
        .command()
        .args(["send-keys", "-t", session, "q"])
        .status();
    drop(tmux);
    for node in nodes {
        node.shutdown();
    }
}
