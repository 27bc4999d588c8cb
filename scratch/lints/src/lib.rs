//! A library with strict lints.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, unreachable_pub, rust_2018_idioms)]
#![deny(unused_results, unused_qualifications, single_use_lifetimes, trivial_casts, unused_lifetimes, let_underscore_drop, variant_size_differences)]
#![warn(clippy::pedantic)]
use noex::behavior;
use serde::{Deserialize, Serialize};

/// A job.
#[derive(Debug, Serialize, Deserialize)]
pub struct Job(pub u64);

/// A counter.
#[derive(Debug)]
#[behavior]
pub struct Counter { n: u64 }

#[behavior]
impl Counter {
    #[init]
    fn init(n: u64) -> Self { Counter { n } }
    /// The count: [`Self::n`], see also [`Counter::reset`].
    #[call]
    fn get(&self) -> u64 { self.n }
    /// Resets.
    pub fn reset(&mut self) { self.n = 0 }
    /// Adds.
    #[cast]
    async fn add(&mut self, job: Job) { self.n += job.0; }
}

/// Private stuff.
mod private {
    use noex::behavior;
    #[derive(Debug)]
    #[behavior]
    pub(crate) struct Hidden { n: u64 }
    #[behavior]
    impl Hidden {
        #[init]
        fn init() -> Self { Hidden { n: 0 } }
        #[call]
        fn get(&self) -> u64 { self.n }
    }
}

/// A public module with a crate-private behaviour.
pub mod exposed {
    use noex::behavior;
    #[derive(Debug)]
    #[behavior]
    pub(crate) struct Internal { n: u64 }
    #[behavior]
    impl Internal {
        #[init]
        fn init() -> Self { Internal { n: 0 } }
        #[call]
        fn get(&self) -> u64 { self.n }
    }
}
