//! Erlang/OTP's distribution, through `bench/erlang/noex_bench.escript` when `erl` is
//! installed (Debian: `apt-get install erlang-base`); skipped with a note when it is not.
//!
//! The escript's node A (`-sname`, `+S 2:2`) starts node B with `peer` (`+S 2:2`): two VMs,
//! two OS processes, connected through epmd and a distribution TCP connection on this host.
//! If epmd was not running before, it is stopped (`epmd -kill`) afterwards.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Plan;
use crate::remote::{Results, FIGURES};
use crate::report::{Outcome, Report};

/// How long the whole escript may run.
const ESCRIPT_LIMIT: Duration = Duration::from_secs(15 * 60);

fn escript_path() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/erlang/noex_bench.escript").to_owned()
}

/// The OTP release, if `erl` runs.
pub fn version() -> Option<String> {
    let output = Command::new("erl")
        .args([
            "-noshell",
            "-eval",
            "io:format(\"~s\", [erlang:system_info(otp_release)]), halt().",
        ])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn epmd_running() -> bool {
    Command::new("epmd")
        .arg("-names")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn skipped(reason: &str) -> Results {
    let mut results = Results::new();
    for (key, ..) in FIGURES {
        if key != "big-p99-vec" {
            results.insert(key, Outcome::skipped(reason));
        }
    }
    results
}

pub fn run(plan: &Plan, wanted: &dyn Fn(&str) -> bool, report: &mut Report) -> Results {
    let Some(release) = version() else {
        let reason = "`erl` is not installed (Debian: apt-get install erlang-base)";
        eprintln!("Erlang/OTP skipped: {reason}");
        report.notes.push(format!("Erlang/OTP skipped: {reason}"));
        return skipped(reason);
    };
    let epmd_was_running = epmd_running();
    let result = run_escript(plan, wanted);
    if !epmd_was_running && epmd_running() {
        let _ = Command::new("epmd")
            .arg("-kill")
            .stdout(Stdio::null())
            .status();
    }
    match result {
        Ok(results) => {
            report.notes.push(format!(
                "Erlang/OTP {release}: two VMs (escript node + `peer` node), +S 2:2 each, gen_server call/cast, binaries as payloads"
            ));
            results
        }
        Err(error) => {
            eprintln!("Erlang/OTP: {error}");
            report.notes.push(format!("Erlang/OTP failed: {error}"));
            skipped(&error)
        }
    }
}

fn run_escript(plan: &Plan, wanted: &dyn Fn(&str) -> bool) -> Result<Results, String> {
    let mut args = vec![
        escript_path(),
        plan.reps.to_string(),
        plan.remote_calls.to_string(),
        (plan.call_warmup / 10).to_string(),
        plan.remote_casts_small.to_string(),
        plan.remote_casts_large.to_string(),
        plan.big_size.to_string(),
    ];
    for workload in ["remote-call", "remote-cast", "remote-big"] {
        if wanted(workload) {
            args.push(workload.to_owned());
        }
    }
    let mut child = Command::new("escript")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run escript: {e}"))?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if start.elapsed() > ESCRIPT_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "the escript did not finish within {} s",
                ESCRIPT_LIMIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    if !status.success() {
        let said = stdout
            .lines()
            .chain(stderr.lines())
            .filter(|l| !l.starts_with("RESULT"))
            .take(3)
            .collect::<Vec<_>>()
            .join(" / ");
        return Err(format!("the escript failed ({status}): {said}"));
    }
    let mut results = Results::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("RESULT ") else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let Some(key) = fields.next() else { continue };
        let Some((key, ..)) = FIGURES.iter().find(|(k, ..)| *k == key) else {
            continue;
        };
        let values: Vec<f64> = fields.filter_map(|v| v.parse().ok()).collect();
        results.insert(*key, Outcome::from_samples(values));
    }
    Ok(results)
}
