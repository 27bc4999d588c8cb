//! Erlang/OTP's distribution, through `bench/erlang/noex_bench.escript` when `erl` is
//! installed (Debian: `apt-get install erlang-base`); skipped with a note when it is not.
//!
//! The escript's node A (`-sname`, `+S 2:2`) starts node B with `peer` (`+S 2:2`): two VMs,
//! two OS processes, connected through epmd and a distribution TCP connection on this host.
//! The escript stays up for the whole remote run and measures one repetition per command
//! read from its stdin, so that its repetitions interleave with the other libraries'. If
//! epmd was not running before, it is stopped (`epmd -kill`) afterwards.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{Plan, Rep, PHASE_LIMIT};
use crate::remote::{peer_keys, Remote, Step};

/// How long the escript may take to start its peer node.
const START_LIMIT: Duration = Duration::from_secs(60);

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

/// The running escript: its stdin for commands, its stdout and stderr lines on a channel.
pub struct ErlangRemote {
    release: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    epmd_was_running: bool,
}

/// Sends every line of `from` on `to`, `prefix` before each.
fn forward(from: impl Read + Send + 'static, prefix: &'static str, to: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if to.send(format!("{prefix}{line}")).is_err() {
                break;
            }
        }
    });
}

impl ErlangRemote {
    pub fn start(plan: &Plan) -> Result<ErlangRemote, String> {
        let Some(release) = version() else {
            let reason = "`erl` is not installed (Debian: apt-get install erlang-base)";
            eprintln!("Erlang/OTP skipped: {reason}");
            return Err(reason.into());
        };
        let epmd_was_running = epmd_running();
        let mut child = Command::new("escript")
            .args([
                escript_path(),
                plan.remote_calls.to_string(),
                (plan.call_warmup / 10).to_string(),
                plan.remote_casts_small.to_string(),
                plan.remote_casts_large.to_string(),
                plan.big_size.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not run escript: {e}"))?;
        let (send, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            forward(stdout, "", send.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            forward(stderr, "stderr: ", send);
        }
        let stdin = child.stdin.take();
        let mut erlang = ErlangRemote {
            release,
            child,
            stdin,
            lines,
            epmd_was_running,
        };
        erlang.until("READY", START_LIMIT)?;
        Ok(erlang)
    }

    pub fn release(&self) -> &str {
        &self.release
    }

    /// The `RESULT` lines until `end` (within `limit`).
    fn until(&mut self, end: &str, limit: Duration) -> Rep<Vec<(String, f64)>> {
        let deadline = Instant::now() + limit;
        let mut results = Vec::new();
        let mut said = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == end => return Ok(results),
                Ok(line) => match line.strip_prefix("RESULT ").and_then(|r| {
                    let (key, value) = r.split_once(' ')?;
                    Some((key.to_owned(), value.trim().parse::<f64>().ok()?))
                }) {
                    Some(result) => results.push(result),
                    None => said.push(line),
                },
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "the escript did not answer within {} s",
                        limit.as_secs()
                    ))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|s| s.to_string());
                    return Err(format!(
                        "the escript ended ({}): {}",
                        status.unwrap_or_else(|e| e.to_string()),
                        said.iter().take(3).cloned().collect::<Vec<_>>().join(" / ")
                    ));
                }
            }
        }
    }
}

impl Remote for ErlangRemote {
    fn rep(&mut self, step: Step, _: &Plan) -> Rep<Vec<f64>> {
        let command = match step {
            Step::Call => "call",
            Step::Cast16 => "cast16",
            Step::Cast1k => "cast1k",
            Step::Big => "big",
            Step::BigVec | Step::BigMemory => return Err("noex only".into()),
        };
        let stdin = self.stdin.as_mut().ok_or("the escript's stdin is closed")?;
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("could not write to the escript: {e}"))?;
        let results = match self.until("DONE", PHASE_LIMIT) {
            Ok(results) => results,
            Err(error) => {
                // The escript is in an unknown state: no more commands.
                self.stdin = None;
                let _ = self.child.kill();
                return Err(error);
            }
        };
        peer_keys(step)
            .iter()
            .map(|key| {
                results
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| *v)
                    .ok_or_else(|| format!("the escript gave no {key}"))
            })
            .collect()
    }
}

impl Drop for ErlangRemote {
    fn drop(&mut self) {
        // End of stdin: the escript stops its peer node and exits.
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
            }
        }
        if !self.epmd_was_running && epmd_running() {
            let _ = Command::new("epmd")
                .arg("-kill")
                .stdout(Stdio::null())
                .status();
        }
    }
}
