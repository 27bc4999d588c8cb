//! [`NodeBuilder`]: a node's settings before it starts.

use std::sync::Arc;
use std::time::Duration;

use super::{Node, NodeInner, DEFAULT_BUSY_WAIT};
use crate::behavior::RegistryError;

/// Configures a [`Node`] before it starts.
#[derive(Debug, Clone)]
#[must_use = "a NodeBuilder does nothing until `build` or `try_build` is called"]
pub struct NodeBuilder {
    name: String,
    threads: usize,
    busy_wait: Duration,
    register_behaviors: bool,
    #[cfg(feature = "metrics")]
    metrics_interval: Duration,
}

impl Default for NodeBuilder {
    fn default() -> Self {
        NodeBuilder {
            name: "nonode".to_owned(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            busy_wait: DEFAULT_BUSY_WAIT,
            register_behaviors: false,
            #[cfg(feature = "metrics")]
            metrics_interval: crate::metrics::DEFAULT_METRICS_INTERVAL,
        }
    }
}

impl NodeBuilder {
    /// The node's name, shown in every pid (`<name.serial>`). Defaults to `nonode`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The number of scheduler threads, from 1 to 1,024. Defaults to the number of CPUs.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// How long a scheduler thread out of work busy-waits for more before it sleeps, and
    /// [`Node::block_on`] for its future before it parks; [`Duration::ZERO`] turns
    /// busy-waiting off. Defaults to [`DEFAULT_BUSY_WAIT`].
    ///
    /// Waking a sleeping thread costs tens of microseconds on a VM; a thread that
    /// busy-waits picks up a reply, a call from another thread or a frame from a peer
    /// that comes within the window at once. The price is CPU time: each thread spends up
    /// to `busy_wait` after each burst of work spinning (yielding to any other thread
    /// that wants its core). A node with nothing to do sleeps; one whose work comes less
    /// than `busy_wait` apart keeps its threads busy. Turn it off where idle CPU matters
    /// more than latency (a laptop on battery, many nodes sharing few cores).
    pub fn busy_wait(mut self, busy_wait: Duration) -> Self {
        self.busy_wait = busy_wait;
        self
    }

    /// Registers every behaviour of the program when the node starts, as
    /// [`Node::register_behaviors`] does.
    pub fn register_behaviors(mut self) -> Self {
        self.register_behaviors = true;
        self
    }

    /// How often the node samples its [metrics](crate::metrics) (the `metrics` feature);
    /// [`Duration::ZERO`] turns the sampling off. Defaults to
    /// [`DEFAULT_METRICS_INTERVAL`](crate::metrics::DEFAULT_METRICS_INTERVAL).
    #[cfg(feature = "metrics")]
    pub fn metrics_interval(mut self, interval: Duration) -> Self {
        self.metrics_interval = interval;
        self
    }

    /// Starts the node.
    ///
    /// # Panics
    ///
    /// If the node cannot start: see [`try_build`](Self::try_build), which returns why.
    pub fn build(self) -> Node {
        self.try_build()
            .unwrap_or_else(|error| panic!("noex: {error}"))
    }

    /// Starts the node, or says why it cannot: its scheduler threads could not be made
    /// (the OS is out of threads or file descriptors), or, with
    /// [`register_behaviors`](Self::register_behaviors), two behaviours of the program
    /// share a name.
    ///
    /// ```
    /// use noex::{BuildError, Node};
    ///
    /// let node = match Node::builder().name("worker").threads(2).try_build() {
    ///     Ok(node) => node,
    ///     Err(BuildError::Threads(error)) => panic!("out of threads: {error}"),
    ///     Err(error) => panic!("{error}"),
    /// };
    /// assert_eq!(node.threads(), 2);
    /// # node.shutdown();
    /// ```
    pub fn try_build(self) -> Result<Node, BuildError> {
        let inner = NodeInner::new(&self.name, self.threads, self.busy_wait)
            .map_err(BuildError::Threads)?;
        let node = Node {
            inner: Arc::new(inner),
        };
        if self.register_behaviors {
            node.register_behaviors()?;
        }
        #[cfg(feature = "metrics")]
        crate::metrics::start(&node.inner, self.metrics_interval, None);
        Ok(node)
    }
}

/// Why [`NodeBuilder::try_build`] could not start a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The node's scheduler threads, or the pollers they sleep in, could not be made: the
    /// OS is out of threads or file descriptors. The threads already started were stopped.
    #[error("cannot start the node's scheduler threads: {0}")]
    Threads(std::io::Error),
    /// The behaviours could not be registered (two share a name).
    #[error(transparent)]
    Behaviors(#[from] RegistryError),
}
