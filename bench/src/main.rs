//! Side-by-side benchmarks: noex next to ractor, kameo, actix, Erlang/OTP and the bare
//! smol / TCP limits. See README.md for what each workload measures and the fairness rules.
//!
//! ```text
//! cargo run --release --manifest-path bench/Cargo.toml -- [--quick] [--json FILE] [workload...]
//! ```
//!
//! Workloads: call, call-outside, cast, spawn, memory, ring (local); remote-call, remote-cast, remote-big
//! (remote); scale-cluster, scale-processes, fairness (scale, noex only); `local`, `remote`,
//! `scale` and `all` (the default) name groups.

mod actix_impl;
mod bare;
mod big_memory;
mod common;
mod erlang;
mod fairness;
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

const LOCAL_WORKLOADS: [&str; 6] = ["call", "call-outside", "cast", "spawn", "memory", "ring"];
const REMOTE_WORKLOADS: [&str; 3] = ["remote-call", "remote-cast", "remote-big"];
const SCALE_WORKLOADS: [&str; 3] = ["scale-cluster", "scale-processes", "fairness"];

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
        Some("__noex-big-a") => return big_memory::a_child(&args[1..]),
        Some("__noex-big-b") => return big_memory::b_child(),
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
        if wanted("fairness") {
            fairness::run(&plan, &mut report);
        }
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

/// Runs `reps` repetitions of `one` for every entry of `names`, interleaved (repetition 1 of
/// each entry, then repetition 2, ...), so that slow drift of the machine hits every library
/// alike. One repetition gives one value per figure (`figures` values); an entry whose
/// repetition fails is not run again. Returns, per entry, one outcome per figure.
fn interleave(
    names: &[&'static str],
    reps: usize,
    figures: usize,
    what: &str,
    mut one: impl FnMut(&'static str) -> Rep<Vec<f64>>,
) -> BTreeMap<&'static str, Vec<Outcome>> {
    let mut samples: BTreeMap<&'static str, Vec<Vec<f64>>> = BTreeMap::new();
    let mut failed: BTreeMap<&'static str, String> = BTreeMap::new();
    for rep in 0..reps {
        for &name in names {
            if failed.contains_key(name) {
                continue;
            }
            match one(name) {
                Ok(values) => {
                    debug_assert_eq!(values.len(), figures);
                    let columns = samples
                        .entry(name)
                        .or_insert_with(|| vec![Vec::new(); figures]);
                    for (column, value) in columns.iter_mut().zip(values) {
                        column.push(value);
                    }
                }
                Err(error) => {
                    eprintln!("  {name} {what}: {error}");
                    failed.insert(name, error);
                }
            }
        }
        progress(&format!("{what}: repetition {}/{reps}", rep + 1));
    }
    let mut out = BTreeMap::new();
    for &name in names {
        let outcomes = match failed.remove(name) {
            Some(error) => vec![Outcome::skipped(error); figures],
            None => match samples.remove(name) {
                Some(columns) => columns.into_iter().map(Outcome::from_samples).collect(),
                None => vec![Outcome::skipped("no repetition ran"); figures],
            },
        };
        out.insert(name, outcomes);
    }
    out
}

/// The library named `name` among `libs`.
fn lib<'a>(libs: &'a mut [(&'static str, Box<dyn Local>)], name: &str) -> &'a mut dyn Local {
    libs.iter_mut()
        .find(|(n, _)| *n == name)
        .map(|(_, lib)| lib.as_mut())
        .expect("a local library")
}

/// Adds one figure per (label, unit, higher is better) to the report, each from the outcome
/// of that index; `columns` maps an entry of `results` to its column (entries it leaves
/// out are not in these figures).
fn push_figures(
    report: &mut Report,
    workload: &str,
    rows: &[(&str, &str, bool)],
    results: &BTreeMap<&'static str, Vec<Outcome>>,
    columns: impl Fn(&str) -> Option<&'static str>,
) {
    for (index, (label, unit, higher)) in rows.iter().enumerate() {
        let mut figure = Figure::new(workload, label, unit, *higher);
        for (name, outcomes) in results {
            if let Some(column) = columns(name) {
                figure.set(column, outcomes[index].clone());
            }
        }
        report.figures.push(figure);
    }
}

/// The columns of the local libraries (each its own).
fn own_column(name: &str) -> Option<&'static str> {
    LOCAL_LIBRARIES.iter().find(|l| **l == name).copied()
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
        // The bare variant with one reply channel reused for every call is an extra entry.
        let mut bare_reused = bare::BareLocal::new();
        let mut names: Vec<&'static str> = LOCAL_LIBRARIES.to_vec();
        names.push("bare-reused");
        let results = interleave(&names, reps, 1, "local call", |name| {
            let elapsed = match name {
                "bare-reused" => bare_reused.call_reused(warmup, calls)?,
                _ => lib(&mut libs, name).call(warmup, calls)?,
            };
            Ok(vec![elapsed.as_nanos() as f64 / calls as f64])
        });
        push_figures(
            report,
            "call",
            &[("local call round trip", "ns", false)],
            &results,
            own_column,
        );
        push_figures(
            report,
            "call",
            &[(
                "local call round trip, bare with a reused reply channel",
                "ns",
                false,
            )],
            &results,
            |name| (name == "bare-reused").then_some("bare"),
        );
        report.notes.push(format!(
            "call: {calls} timed calls per repetition after {warmup} untimed, one at a time, from a task inside the runtime"
        ));
    }

    if wanted("call-outside") {
        let (warmup, calls) = (plan.outside_warmup, plan.outside_calls);
        // noex again on a node with busy-waiting off, for the extra rows.
        let quiet = noex_impl::node_with_busy_wait(Duration::ZERO);
        let mut names: Vec<&'static str> = LOCAL_LIBRARIES.to_vec();
        names.push("noex-busy-off");
        let results = interleave(&names, reps, 2, "local call from outside", |name| {
            let times = match name {
                "noex-busy-off" => noex_impl::call_outside(&quiet, warmup, calls)?,
                _ => lib(&mut libs, name).call_outside(warmup, calls)?,
            };
            Ok(vec![
                common::percentile(&times, 50.0) as f64 / 1e3,
                common::percentile(&times, 99.0) as f64 / 1e3,
            ])
        });
        quiet.shutdown();
        push_figures(
            report,
            "call-outside",
            &[
                ("local call from outside the node, p50", "µs", false),
                ("local call from outside the node, p99", "µs", false),
            ],
            &results,
            own_column,
        );
        push_figures(
            report,
            "call-outside",
            &[
                (
                    "local call from outside the node, p50, noex with busy-waiting off",
                    "µs",
                    false,
                ),
                (
                    "local call from outside the node, p99, noex with busy-waiting off",
                    "µs",
                    false,
                ),
            ],
            &results,
            |name| (name == "noex-busy-off").then_some("noex"),
        );
        report.notes.push(format!(
            "call-outside: {calls} calls per repetition after {warmup} untimed, each timed alone, from the bench thread blocking on them (noex `Node::block_on`, tokio `Runtime::block_on`, actix and bare `smol::block_on`) to a server on the runtime's threads; noex's busy-wait is {} µs by default",
            noex::DEFAULT_BUSY_WAIT.as_micros()
        ));
    }

    if wanted("cast") {
        let count = plan.casts;
        for senders in [1, 2] {
            let results = interleave(
                &LOCAL_LIBRARIES,
                reps,
                1,
                &format!("local cast, {senders} sender(s)"),
                |name| {
                    let elapsed = lib(&mut libs, name).cast(count, senders)?;
                    Ok(vec![count as f64 / elapsed.as_secs_f64()])
                },
            );
            let label = if senders == 1 {
                "local cast, 1 sender"
            } else {
                "local cast, 2 senders"
            };
            push_figures(
                report,
                "cast",
                &[(label, "msg/s", true)],
                &results,
                own_column,
            );
        }
        report.notes.push(format!(
            "cast: {count} u64 casts per repetition (split evenly between 2 senders), each sender yielding every {} casts; the clock stops when the receiver has handled all",
            common::CAST_CHUNK
        ));
    }

    if wanted("spawn") {
        let count = plan.spawns;
        let results = interleave(&LOCAL_LIBRARIES, reps, 2, "spawn/stop", |name| {
            let times = lib(&mut libs, name).spawn_stop(count)?;
            Ok(vec![
                count as f64 / times.spawned.as_secs_f64(),
                count as f64 / times.total.as_secs_f64(),
            ])
        });
        push_figures(
            report,
            "spawn",
            &[
                (&format!("spawn of {count} processes"), "processes/s", true),
                (
                    &format!("spawn + stop of {count} processes"),
                    "processes/s",
                    true,
                ),
            ],
            &results,
            own_column,
        );
        report.notes.push(format!(
            "spawn: {count} processes spawned one after the other from one task, each awaited until started (the spawn row stops the clock there), then stopped one after the other, each awaited until ended (the spawn + stop row stops it there)"
        ));
    }

    if wanted("ring") {
        let (size, hops) = (plan.ring_size, plan.ring_hops);
        let results = interleave(&LOCAL_LIBRARIES, reps, 1, "ring", |name| {
            Ok(vec![
                hops as f64 / lib(&mut libs, name).ring(size, hops)?.as_secs_f64(),
            ])
        });
        push_figures(
            report,
            "ring",
            &[(&format!("ring of {size}, {hops} hops"), "hops/s", true)],
            &results,
            own_column,
        );
    }
    drop(libs);

    if wanted("memory") {
        let count = plan.memory_processes;
        let results = interleave(&LOCAL_LIBRARIES, reps, 1, "memory", |name| {
            let (before, after) = memory_in_child(name, count)?;
            Ok(vec![after.saturating_sub(before) as f64 / count as f64])
        });
        push_figures(
            report,
            "memory",
            &[(
                &format!("resident memory per idle process ({count} idle)"),
                "bytes",
                false,
            )],
            &results,
            own_column,
        );
        report.notes.push(
            "memory: each repetition is a fresh child process (this binary, re-executed) that spawns and stops 1,000 processes, reads /proc/self/statm, spawns the idle processes from one task, reads it again; (after − before) / count, handles kept by the spawner included".into(),
        );
    }
}

/// Runs this binary as `__memory <library> <count>` and parses its `rss <before> <after>`.
fn memory_in_child(library: &str, count: usize) -> Rep<(u64, u64)> {
    common::child_pair(&["__memory", library, &count.to_string()], "rss")
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
