//! The local workloads, as each library module implements them.

use std::time::Duration;

use crate::common::Rep;

/// One library's local workloads. Each method is one repetition and returns the time the
/// timed part took (or why it did not finish).
pub trait Local {
    /// `calls` timed call round trips (after `warmup` untimed ones), one at a time, from a
    /// task inside the runtime to a server it spawned.
    fn call(&mut self, warmup: u64, calls: u64) -> Rep<Duration>;

    /// `count` casts from `senders` senders (1 or 2, on different threads where the library
    /// lets one choose), until the receiver has handled every one.
    fn cast(&mut self, count: u64, senders: usize) -> Rep<Duration>;

    /// Spawns `count` processes (each has finished its start hook), then stops them all (each
    /// has ended); the time the spawns took, and the whole time.
    fn spawn_stop(&mut self, count: usize) -> Rep<SpawnStop>;

    /// A ring of `size` processes passing one token `hops` times.
    fn ring(&mut self, size: usize, hops: u64) -> Rep<Duration>;

    /// `calls` call round trips (after `warmup` untimed ones), one at a time, each timed
    /// alone, from the program's own thread (not a task of the runtime) blocking on them, to
    /// a server running on the runtime's threads: the times in ns, sorted.
    fn call_outside(&mut self, warmup: u64, calls: u64) -> Rep<Vec<u64>>;

    /// Untimed: where the callee of the call workload ran, relative to its caller.
    fn placement(&mut self) -> Rep<String>;
}

/// One repetition of the spawn workload.
#[derive(Debug, Clone, Copy)]
pub struct SpawnStop {
    /// From before the first spawn until the last process has started.
    pub spawned: Duration,
    /// From before the first spawn until the last process has ended.
    pub total: Duration,
}

/// The libraries with local workloads, in column order.
pub const LOCAL_LIBRARIES: [&str; 5] = ["noex", "ractor", "kameo", "actix", "bare"];

/// Builds a library's runtime and state.
pub fn make(library: &str) -> Box<dyn Local> {
    match library {
        "noex" => Box::new(crate::noex_impl::NoexLocal::new()),
        "ractor" => Box::new(crate::ractor_impl::RactorLocal::new()),
        "kameo" => Box::new(crate::kameo_impl::KameoLocal::new()),
        "actix" => Box::new(crate::actix_impl::ActixLocal::new()),
        "bare" => Box::new(crate::bare::BareLocal::new()),
        other => panic!("unknown library {other}"),
    }
}

/// In a memory-measuring child: spawns `count` idle processes of `library` and returns
/// (resident bytes before, after).
pub fn idle_memory(library: &str, count: usize) -> Rep<(u64, u64)> {
    match library {
        "noex" => crate::noex_impl::idle_memory(count),
        "ractor" => crate::ractor_impl::idle_memory(count),
        "kameo" => crate::kameo_impl::idle_memory(count),
        "actix" => crate::actix_impl::idle_memory(count),
        "bare" => crate::bare::idle_memory(count),
        other => Err(format!("unknown library {other}")),
    }
}
