//! Side-by-side benchmarks: noex next to ractor, kameo, actix, Erlang/OTP and the bare
//! smol / TCP limits. See README.md for what each workload measures and the fairness rules.
//!
//! ```text
//! cargo run --release --manifest-path bench/Cargo.toml -- [--quick] [--json FILE] [workload...]
//! ```
//!
//! Workloads: call, cast, spawn, memory, ring (local); remote-call, remote-cast, remote-big
//! (remote); scale-cluster, scale-processes (scale, noex only); `local`, `remote`, `scale` and
//! `all` (the default) name groups.

mod actix_impl;
mod bare;
mod common;
mod erlang;
mod kameo_impl;
mod local;
mod noex_impl;
mod ractor_cluster_impl;
mod ractor_impl;
mod remote;
mod report;
mod scale;

use std::collections::BTreeMap;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use common::{Plan, Rep};
use local::{Local, LOCAL_LIBRARIES};
use report::{Figure, Outcome, Report};

const LOCAL_WORKLOADS: [&str; 5] = ["call", "cast", "spawn", "memory", "ring"];
const REMOTE_WORKLOADS: [&str; 3] = ["remote-call", "remote-cast", "remote-big"];
const SCALE_WORKLOADS: [&str; 2] = ["scale-cluster", "scale-processes"];

/// The whole run is abandoned after this long (a hung library cannot hang it forever).
const RUN_LIMIT: Duration = Duration::from_secs(60 * 60);

fn usage() -> String {
    format!(
        "usage: noex-bench [--quick] [--json FILE] [workload...]\n\
         workloads: {} | {} | {} | local | remote | scale | all (default)\n\
         --quick (or NOEX_BENCH_QUICK=1): small counts, a smoke run whose figures mean little",
        LOCAL_WORKLOADS.join(", "),
        REMOTE_WORKLOADS.join(", "),
        SCALE_WORKLOADS.join(", ")
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Hidden subcommands: this binary re-executed as a measuring child or a remote node.
    match args.first().map(String::as_str) {
        Some("__memory") => return memory_child(&args[1..]),
        Some("__ractor-node") => return ractor_cluster_impl::node_child(&args[1..]),
        Some("__scale-cluster") => return child(scale::cluster_child(&args[1..])),
        Some("__scale-processes") => return child(scale::processes_child(&args[1..])),
        _ => {}
    }

    let mut quick = std::env::var("NOEX_BENCH_QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
    let mut json = None;
    let mut selected: Vec<String> = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--json" => match iter.next() {
                Some(file) => json = Some(file.clone()),
                None => {
                    eprintln!("--json needs a file\n{}", usage());
                    return ExitCode::FAILURE;
                }
            },
            "-h" | "--help" => {
                println!("{}", usage());
                return ExitCode::SUCCESS;
            }
            "all" => selected.extend(all_workloads()),
            "local" => selected.extend(LOCAL_WORKLOADS.iter().map(|s| s.to_string())),
            "remote" => selected.extend(REMOTE_WORKLOADS.iter().map(|s| s.to_string())),
            "scale" => selected.extend(SCALE_WORKLOADS.iter().map(|s| s.to_string())),
            w if all_workloads().any(|a| a == w) => selected.push(w.to_owned()),
            other => {
                eprintln!("unknown argument {other}\n{}", usage());
                return ExitCode::FAILURE;
            }
        }
    }
    if selected.is_empty() {
        selected.extend(all_workloads());
    }
    let wanted = |w: &str| selected.iter().any(|s| s == w);

    // A watchdog: whatever hangs, the run ends.
    std::thread::spawn(|| {
        std::thread::sleep(RUN_LIMIT);
        eprintln!(
            "the run took longer than {} min; abandoned",
            RUN_LIMIT.as_secs() / 60
        );
        std::process::exit(2);
    });

    let plan = if quick { Plan::quick() } else { Plan::full() };
    let started = Instant::now();
    let mut report = Report {
        command: std::iter::once("noex-bench".to_owned())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
        quick: plan.quick,
        machine: machine(),
        figures: Vec::new(),
        notes: Vec::new(),
    };
    if quick {
        report.notes.push("--quick: small counts (and a 1 MiB instead of a 64 MiB large message); the figures mean little".into());
    }

    if LOCAL_WORKLOADS.iter().any(|w| wanted(w)) {
        run_local(&plan, &wanted, &mut report);
    }
    if REMOTE_WORKLOADS.iter().any(|w| wanted(w)) {
        remote::run(&plan, &wanted, &mut report);
    }
    if SCALE_WORKLOADS.iter().any(|w| wanted(w)) {
        scale::run(&plan, &wanted, &mut report);
    }
    report.notes.push(format!(
        "whole run: {:.0} s",
        started.elapsed().as_secs_f64()
    ));

    println!();
    println!("{}", machine_line(&report.machine));
    println!();
    println!("{}", report::markdown(&report));
    if let Some(file) = json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => {
                if let Err(error) = std::fs::write(&file, text) {
                    eprintln!("could not write {file}: {error}");
                    return ExitCode::FAILURE;
                }
                eprintln!("wrote {file}");
            }
            Err(error) => {
                eprintln!("could not encode the report: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// Every workload's name, in run order.
fn all_workloads() -> impl Iterator<Item = String> {
    LOCAL_WORKLOADS
        .iter()
        .chain(&REMOTE_WORKLOADS)
        .chain(&SCALE_WORKLOADS)
        .map(|s| s.to_string())
}

/// A measuring child's exit: its output is on stdout; an error goes to stderr.
fn child(result: common::Rep<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn progress(what: &str) {
    eprintln!("[{}] {what}", chrono_now());
}

fn chrono_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{:02}:{:02}:{:02}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Runs `reps` repetitions of `one` for every library, interleaved (rep 1 of each library,
/// then rep 2, ...), so that slow drift of the machine hits every library alike. A library
/// whose repetition fails is not run again for this figure.
fn repeat(
    libs: &mut [(&'static str, Box<dyn Local>)],
    reps: usize,
    what: &str,
    mut one: impl FnMut(&str, &mut dyn Local) -> Rep<f64>,
) -> BTreeMap<&'static str, Outcome> {
    let mut samples: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let mut failed: BTreeMap<&'static str, String> = BTreeMap::new();
    for rep in 0..reps {
        for (name, lib) in libs.iter_mut() {
            if failed.contains_key(name) {
                continue;
            }
            match one(name, lib.as_mut()) {
                Ok(value) => samples.entry(name).or_default().push(value),
                Err(error) => {
                    eprintln!("  {name} {what}: {error}");
                    failed.insert(name, error);
                }
            }
        }
        progress(&format!("{what}: repetition {}/{reps}", rep + 1));
    }
    let mut out = BTreeMap::new();
    for (name, _) in libs.iter() {
        let outcome = match failed.remove(name) {
            Some(error) => Outcome::skipped(error),
            None => Outcome::from_samples(samples.remove(name).unwrap_or_default()),
        };
        out.insert(*name, outcome);
    }
    out
}

fn run_local(plan: &Plan, wanted: &dyn Fn(&str) -> bool, report: &mut Report) {
    let mut libs: Vec<(&'static str, Box<dyn Local>)> = LOCAL_LIBRARIES
        .iter()
        .map(|name| (*name, local::make(name)))
        .collect();
    let reps = plan.reps;

    for (name, lib) in libs.iter_mut() {
        match lib.placement() {
            Ok(text) => report.notes.push(format!("placement, {name}: {text}")),
            Err(error) => report
                .notes
                .push(format!("placement, {name}: probe failed: {error}")),
        }
    }

    if wanted("call") {
        let (warmup, calls) = (plan.call_warmup, plan.calls);
        let results = repeat(&mut libs, reps, "local call", |_, lib| {
            Ok(lib.call(warmup, calls)?.as_nanos() as f64 / calls as f64)
        });
        let mut figure = Figure::new("call", "local call round trip", "ns", false);
        for (name, outcome) in results {
            figure.set(name, outcome);
        }
        report.figures.push(figure);
        // The bare variant with one reply channel reused for every call.
        let mut bare = bare::BareLocal::new();
        let mut samples = Vec::new();
        let mut failure = None;
        for _ in 0..reps {
            match bare.call_reused(warmup, calls) {
                Ok(elapsed) => samples.push(elapsed.as_nanos() as f64 / calls as f64),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let mut figure = Figure::new(
            "call",
            "local call round trip, bare with a reused reply channel",
            "ns",
            false,
        );
        figure.set(
            "bare",
            failure.map_or_else(|| Outcome::from_samples(samples), Outcome::skipped),
        );
        report.figures.push(figure);
        report.notes.push(format!(
            "call: {calls} timed calls per repetition after {warmup} untimed, one at a time, from a task inside the runtime"
        ));
    }

    if wanted("cast") {
        let count = plan.casts;
        for senders in [1, 2] {
            let results = repeat(
                &mut libs,
                reps,
                &format!("local cast, {senders} sender(s)"),
                |_, lib| Ok(count as f64 / lib.cast(count, senders)?.as_secs_f64()),
            );
            let label = if senders == 1 {
                "local cast, 1 sender".to_owned()
            } else {
                "local cast, 2 senders".to_owned()
            };
            let mut figure = Figure::new("cast", &label, "msg/s", true);
            for (name, outcome) in results {
                figure.set(name, outcome);
            }
            report.figures.push(figure);
        }
        report.notes.push(format!(
            "cast: {count} u64 casts per repetition (split evenly between 2 senders), each sender yielding every {} casts; the clock stops when the receiver has handled all",
            common::CAST_CHUNK
        ));
    }

    if wanted("spawn") {
        let count = plan.spawns;
        let results = repeat(&mut libs, reps, "spawn/stop", |_, lib| {
            Ok(count as f64 / lib.spawn_stop(count)?.as_secs_f64())
        });
        let mut figure = Figure::new(
            "spawn",
            &format!("spawn + stop of {count} processes"),
            "processes/s",
            true,
        );
        for (name, outcome) in results {
            figure.set(name, outcome);
        }
        report.figures.push(figure);
    }

    if wanted("ring") {
        let (size, hops) = (plan.ring_size, plan.ring_hops);
        let results = repeat(&mut libs, reps, "ring", |_, lib| {
            Ok(hops as f64 / lib.ring(size, hops)?.as_secs_f64())
        });
        let mut figure = Figure::new(
            "ring",
            &format!("ring of {size}, {hops} hops"),
            "hops/s",
            true,
        );
        for (name, outcome) in results {
            figure.set(name, outcome);
        }
        report.figures.push(figure);
    }
    drop(libs);

    if wanted("memory") {
        let count = plan.memory_processes;
        let mut figure = Figure::new(
            "memory",
            &format!("resident memory per idle process ({count} idle)"),
            "bytes",
            false,
        );
        for name in LOCAL_LIBRARIES {
            let mut samples = Vec::new();
            let mut failure = None;
            for _ in 0..reps {
                match memory_in_child(name, count) {
                    Ok((before, after)) => {
                        samples.push(after.saturating_sub(before) as f64 / count as f64)
                    }
                    Err(error) => {
                        failure = Some(error);
                        break;
                    }
                }
            }
            progress(&format!("memory: {name}"));
            figure.set(
                name,
                failure.map_or_else(|| Outcome::from_samples(samples), Outcome::skipped),
            );
        }
        report.figures.push(figure);
        report.notes.push(
            "memory: each repetition is a fresh child process (this binary, re-executed) that spawns and stops 1,000 processes, reads /proc/self/statm, spawns the idle processes from one task, reads it again; (after − before) / count, handles kept by the spawner included".into(),
        );
    }
}

/// Runs this binary as `__memory <library> <count>` and parses its `rss <before> <after>`.
fn memory_in_child(library: &str, count: usize) -> Rep<(u64, u64)> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new(exe)
        .args(["__memory", library, &count.to_string()])
        .output()
        .map_err(|e| format!("could not start the child: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("rss "))
        .ok_or_else(|| {
            format!(
                "the child failed: {}",
                String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .last()
                    .unwrap_or("no output")
            )
        })?;
    let mut fields = line.split(' ').map(|f| f.parse::<u64>().ok());
    match (fields.next().flatten(), fields.next().flatten()) {
        (Some(before), Some(after)) => Ok((before, after)),
        _ => Err(format!("bad child output {line:?}")),
    }
}

fn memory_child(args: &[String]) -> ExitCode {
    let (Some(library), Some(count)) = (args.first(), args.get(1).and_then(|c| c.parse().ok()))
    else {
        eprintln!("usage: __memory LIBRARY COUNT");
        return ExitCode::FAILURE;
    };
    match local::idle_memory(library, count) {
        Ok((before, after)) => {
            println!("rss {before} {after}");
            // Exit at once: tearing the runtimes down is not measured and may be slow.
            std::process::exit(0);
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn run_text(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn machine() -> BTreeMap<String, String> {
    let mut machine = BTreeMap::new();
    machine.insert("nproc".into(), run_text("nproc", &[]));
    machine.insert("kernel".into(), run_text("uname", &["-r"]));
    machine.insert("rustc".into(), run_text("rustc", &["--version"]));
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    machine.insert("cpu".into(), cpu);
    machine.insert(
        "erlang".into(),
        erlang::version().unwrap_or_else(|| "not installed".into()),
    );
    // The noex sources this binary was built from (read-only git queries).
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let head = run_text("git", &["-C", repo, "rev-parse", "--short", "HEAD"]);
    let dirty = !run_text(
        "git",
        &[
            "-C",
            repo,
            "status",
            "--porcelain",
            "--",
            "noex",
            "noex-macros",
        ],
    )
    .is_empty();
    machine.insert(
        "noex".into(),
        if dirty {
            format!("{head} + uncommitted changes")
        } else {
            head
        },
    );
    machine
}

fn machine_line(machine: &BTreeMap<String, String>) -> String {
    let get = |k: &str| machine.get(k).map_or("?", String::as_str);
    format!(
        "machine: {} CPUs ({}), Linux {}, {}, Erlang/OTP {}; noex at {}",
        get("nproc"),
        get("cpu"),
        get("kernel"),
        get("rustc"),
        get("erlang"),
        get("noex")
    )
}
