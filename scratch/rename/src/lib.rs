//! A library that depends on noex under another name.
// Uncomment to work around the defect (the crate is then known as `noex` too):
// extern crate actors as noex;
use actors::behavior;

/// A counter.
#[behavior]
pub struct Counter { n: u64 }

#[behavior]
impl Counter {
    #[init]
    fn init(n: u64) -> Self { Counter { n } }
    /// The count.
    #[call]
    fn get(&self) -> u64 { self.n }
}
