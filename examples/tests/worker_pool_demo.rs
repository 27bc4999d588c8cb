//! The `worker_pool` demo: every task completed exactly once, and no worker node left
//! running when the demo itself is killed.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_worker_pool");

#[test]
fn the_demo_completes_every_task_exactly_once() {
    let output = Command::new(BIN).output().expect("the demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("every task completed exactly once"),
        "{stdout}"
    );
    assert!(stdout.contains("duplicates  0"), "{stdout}");
}

/// Whether OS process `pid` still runs (a zombie does not: nothing reaps orphans here).
#[cfg(target_os = "linux")]
fn runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit(')').next().unwrap_or_default().trim_start();
        !state.starts_with('Z') && !state.starts_with('X')
    })
}

/// Kills the worker nodes the test found still running, whatever happens to the test.
#[cfg(target_os = "linux")]
struct Orphans(Vec<u32>);

#[cfg(target_os = "linux")]
impl Drop for Orphans {
    fn drop(&mut self) {
        for pid in self.0.iter().filter(|pid| runs(**pid)) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_demo_killed_with_sigkill_leaves_no_worker_node_running() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let mut demo = Command::new(BIN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the demo starts");
    let mut orphans = Orphans(Vec::new());
    // Open until the demo is killed: it must not end of a closed output instead.
    let mut lines = BufReader::new(demo.stdout.take().expect("piped stdout")).lines();
    for line in lines.by_ref() {
        let line = line.expect("a line");
        if let Some(pid) = line.split("(OS process ").nth(1) {
            orphans
                .0
                .push(pid.trim_end_matches(')').parse().expect("a pid"));
        }
        if orphans.0.len() == 2 {
            break;
        }
    }
    assert_eq!(orphans.0.len(), 2, "the demo named no two worker nodes");
    demo.kill().expect("SIGKILL the demo");
    demo.wait().expect("reap the demo");
    drop(lines);
    let deadline = Instant::now() + Duration::from_secs(10);
    while orphans.0.iter().any(|pid| runs(*pid)) {
        assert!(
            Instant::now() < deadline,
            "worker nodes still running 10 s after the demo was killed: {:?}",
            orphans.0
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
