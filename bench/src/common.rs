//! What every library module shares: the counts of a run, time limits, the thread probe and
//! the resident-memory reading.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_lite::FutureExt;

/// Scheduler (worker) threads of every runtime, per node.
pub const THREADS: usize = 2;

/// A cast sender yields to its executor after this many messages (every library alike).
pub const CAST_CHUNK: u64 = 256;

/// A call with this argument answers with the id of the thread that handled it instead of
/// echoing it (used only by the untimed placement probe).
pub const PROBE: u64 = u64::MAX;

/// How long one repetition of one workload may take before it is abandoned.
pub const PHASE_LIMIT: Duration = Duration::from_secs(60);

/// The counts of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub quick: bool,
    pub reps: usize,
    pub calls: u64,
    pub call_warmup: u64,
    pub casts: u64,
    pub spawns: usize,
    pub memory_processes: usize,
    pub ring_size: usize,
    pub ring_hops: u64,
    /// Timed calls (after `outside_warmup` untimed) of `call-outside`, each timed alone.
    pub outside_calls: u64,
    pub outside_warmup: u64,
    pub remote_calls: u64,
    pub remote_casts_small: u64,
    pub remote_casts_large: u64,
    pub big_size: usize,
    /// Cluster sizes of `scale-cluster`.
    pub scale_nodes: Vec<usize>,
    /// Checkpoints of `scale-processes`, in increasing order.
    pub scale_processes: Vec<usize>,
}

impl Plan {
    pub fn full() -> Plan {
        Plan {
            quick: false,
            reps: 9,
            calls: 200_000,
            call_warmup: 10_000,
            casts: 1_000_000,
            spawns: 100_000,
            memory_processes: 100_000,
            ring_size: 100,
            ring_hops: 1_000_000,
            outside_calls: 20_000,
            outside_warmup: 2_000,
            remote_calls: 20_000,
            remote_casts_small: 200_000,
            remote_casts_large: 50_000,
            big_size: 64 << 20,
            scale_nodes: vec![8, 16, 32, 64, 80],
            scale_processes: vec![10_000, 100_000, 1_000_000],
        }
    }

    pub fn quick() -> Plan {
        Plan {
            quick: true,
            reps: 3,
            calls: 2_000,
            call_warmup: 100,
            casts: 10_000,
            spawns: 1_000,
            memory_processes: 2_000,
            ring_size: 100,
            ring_hops: 10_000,
            outside_calls: 500,
            outside_warmup: 50,
            remote_calls: 500,
            remote_casts_small: 2_000,
            remote_casts_large: 500,
            big_size: 1 << 20,
            scale_nodes: vec![4, 8],
            scale_processes: vec![1_000, 10_000],
        }
    }
}

/// The outcome of one repetition: a value, or why it did not finish.
pub type Rep<T> = Result<T, String>;

static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static THREAD_NUMBER: u64 = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

/// A small number naming the calling OS thread.
pub fn thread_number() -> u64 {
    THREAD_NUMBER.with(|n| *n)
}

/// What an echo server answers to `value`: the value, or its thread for [`PROBE`].
#[inline]
pub fn echo_reply(value: u64) -> u64 {
    if value == PROBE {
        thread_number()
    } else {
        value
    }
}

/// Describes the probe: how many of `calls` were handled on the caller's thread.
pub fn placement(same: usize, calls: usize) -> String {
    format!("callee on the caller's thread for {same}/{calls} probe calls")
}

/// Runs `future` on the calling thread with smol, giving up after [`PHASE_LIMIT`].
pub fn smol_limit<T>(what: &str, future: impl Future<Output = T>) -> Rep<T> {
    smol::block_on(async { Some(future.await) }.or(async {
        smol::Timer::after(PHASE_LIMIT).await;
        None
    }))
    .ok_or_else(|| format!("{what} did not finish within {} s", PHASE_LIMIT.as_secs()))
}

/// Runs `future` as a task on `rt` (so it runs on a worker thread), giving up after
/// [`PHASE_LIMIT`].
pub fn tokio_limit<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    what: &str,
    future: impl Future<Output = T> + Send + 'static,
) -> Rep<T> {
    rt.block_on(async {
        match tokio::time::timeout(PHASE_LIMIT, tokio::spawn(future)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(format!("{what} failed: {error}")),
            Err(_) => Err(format!(
                "{what} did not finish within {} s",
                PHASE_LIMIT.as_secs()
            )),
        }
    })
}

/// Runs `future` with `rt.block_on` on the calling thread (not a worker: the program's own
/// thread blocking on it), giving up after [`PHASE_LIMIT`].
pub fn tokio_outside<T>(
    rt: &tokio::runtime::Runtime,
    what: &str,
    future: impl Future<Output = T>,
) -> Rep<T> {
    rt.block_on(async {
        tokio::time::timeout(PHASE_LIMIT, future)
            .await
            .map_err(|_| format!("{what} did not finish within {} s", PHASE_LIMIT.as_secs()))
    })
}

/// Times `warmup + calls` calls of `call(i)` one at a time; the last `calls` in ns, sorted.
pub async fn timed_calls<F: Future<Output = u64>>(
    warmup: u64,
    calls: u64,
    mut call: impl FnMut(u64) -> F,
) -> Vec<u64> {
    let mut times = Vec::with_capacity(calls as usize);
    for i in 0..warmup + calls {
        let start = std::time::Instant::now();
        let answer = call(std::hint::black_box(i)).await;
        let elapsed = start.elapsed();
        assert_eq!(answer, i, "a wrong echo");
        if i >= warmup {
            times.push(elapsed.as_nanos() as u64);
        }
    }
    times.sort_unstable();
    times
}

/// A tokio runtime with [`THREADS`] worker threads, as ractor and kameo use.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Resident memory in bytes, from the second field of /proc/self/statm (pages).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

/// Times per-call samples: p-th percentile (0..=100) of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs this binary re-executed with `args` and parses the two numbers of the line of its
/// output that starts with `prefix` and a space (`rss 100 200`, say).
pub fn child_pair<T: std::str::FromStr>(args: &[&str], prefix: &str) -> Rep<(T, T)> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = std::process::Command::new(exe)
        .args(args)
        .output()
        .map_err(|e| format!("could not start the child: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix)?.strip_prefix(' '))
        .ok_or_else(|| {
            format!(
                "the child failed: {}",
                String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .last()
                    .unwrap_or("no output")
            )
        })?;
    let mut fields = line.split(' ').map(|f| f.parse::<T>().ok());
    match (fields.next().flatten(), fields.next().flatten()) {
        (Some(first), Some(second)) => Ok((first, second)),
        _ => Err(format!("bad child output {line:?}")),
    }
}
