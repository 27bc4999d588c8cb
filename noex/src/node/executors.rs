//! The node's scheduler threads: one single-threaded smol executor per thread.
//!
//! A process spawned from one of the node's threads runs on that thread's executor, like
//! Erlang placing a spawned process on its parent's scheduler: processes that talk to each
//! other then share a thread, and a call between them costs no cross-thread wake-up. Work
//! spawned from any other thread is spread round-robin over the executors.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle, ThreadId};

use event_listener::Event;
use smol::{Executor, Task};

thread_local! {
    /// (identity of the executor set, index of the executor) for a node's own threads.
    static CURRENT: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

/// The executors and threads of one node.
pub(crate) struct Executors {
    executors: Vec<Arc<Executor<'static>>>,
    next: AtomicUsize,
    key: usize,
    stop: Arc<Stop>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    thread_ids: Vec<ThreadId>,
}

#[derive(Default)]
struct Stop {
    stopped: AtomicBool,
    event: Event,
}

impl Stop {
    async fn wait(&self) {
        loop {
            let listener = self.event.listen();
            if self.stopped.load(Ordering::Acquire) {
                return;
            }
            listener.await;
        }
    }
}

impl Executors {
    /// Starts `threads` scheduler threads named after the node.
    pub(crate) fn start(node_name: &str, threads: usize) -> Self {
        let threads = threads.max(1);
        let executors: Vec<_> = (0..threads).map(|_| Arc::new(Executor::new())).collect();
        let stop = Arc::new(Stop::default());
        // The stop flag's address identifies this executor set in thread-locals.
        let key = Arc::as_ptr(&stop) as usize;
        let mut handles = Vec::with_capacity(threads);
        for (index, executor) in executors.iter().enumerate() {
            let executor = executor.clone();
            let stop = stop.clone();
            let handle = thread::Builder::new()
                .name(format!("noex-{node_name}-{index}"))
                .spawn(move || {
                    CURRENT.with(|c| c.set(Some((key, index))));
                    executor
                        .spawn(crate::server::deadline::install_watch())
                        .detach();
                    smol::block_on(executor.run(stop.wait()));
                })
                .expect("failed to start a noex scheduler thread");
            handles.push(handle);
        }
        Executors {
            thread_ids: handles.iter().map(|h| h.thread().id()).collect(),
            executors,
            next: AtomicUsize::new(0),
            key,
            stop,
            threads: Mutex::new(handles),
        }
    }

    /// The executor of the calling thread, if it is one of ours.
    fn current(&self) -> Option<usize> {
        CURRENT.with(|c| match c.get() {
            Some((key, index)) if key == self.key => Some(index),
            _ => None,
        })
    }

    /// `true` when called from one of this node's scheduler threads.
    pub(crate) fn on_own_thread(&self) -> bool {
        self.current().is_some()
    }

    /// Spawns a task: on the calling thread's executor if it is ours, else round-robin.
    pub(crate) fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Task<T> {
        let index = self
            .current()
            .unwrap_or_else(|| self.next.fetch_add(1, Ordering::Relaxed) % self.executors.len());
        self.executors[index].spawn(future)
    }

    /// Number of scheduler threads.
    pub(crate) fn threads(&self) -> usize {
        self.executors.len()
    }

    /// Asks every thread to stop; joins them unless called from one of them.
    pub(crate) fn stop(&self) {
        self.stop.stopped.store(true, Ordering::Release);
        self.stop.event.notify(usize::MAX);
        let me = thread::current().id();
        if self.thread_ids.contains(&me) {
            return;
        }
        let handles =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for handle in handles {
            // A thread only ends by returning from `run`; a panic there was already reported.
            let _ = handle.join();
        }
    }
}
