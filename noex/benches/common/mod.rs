//! What the benchmarks share: the threads that run the bare baselines.

use std::future::Future;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use async_channel::Sender;
use smol::{Executor, Task};

/// Scheduler threads for the bare baselines: one smol `Executor` per thread, each driven by
/// `block_on(executor.run(..))` on its own thread.
pub struct BareThreads {
    executors: Vec<Arc<Executor<'static>>>,
    stop: Sender<()>,
    threads: Vec<JoinHandle<()>>,
}

impl BareThreads {
    pub fn new(threads: usize) -> Self {
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let executors: Vec<_> = (0..threads).map(|_| Arc::new(Executor::new())).collect();
        let threads = executors
            .iter()
            .enumerate()
            .map(|(index, executor)| {
                let executor = executor.clone();
                let stopped = stopped.clone();
                thread::Builder::new()
                    .name(format!("bare-{index}"))
                    .spawn(move || {
                        smol::block_on(executor.run(async {
                            let _ = stopped.recv().await;
                        }))
                    })
                    .expect("failed to start a bare scheduler thread")
            })
            .collect();
        BareThreads {
            executors,
            stop,
            threads,
        }
    }

    pub fn executor(&self, index: usize) -> Arc<Executor<'static>> {
        self.executors[index].clone()
    }

    /// Runs `body` in a task on thread `index`; the task gets that thread's executor.
    pub fn spawn<F, T>(
        &self,
        index: usize,
        body: impl FnOnce(Arc<Executor<'static>>) -> F,
    ) -> Task<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let executor = self.executor(index);
        executor.spawn(body(executor.clone()))
    }
}

impl Drop for BareThreads {
    fn drop(&mut self) {
        self.stop.close();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
