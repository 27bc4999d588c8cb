#![deny(warnings)]
//! Arguments named with leading underscores (unused on purpose), beside one without.
use noex::behavior;

#[behavior]
pub struct S {
    n: u32,
}

#[behavior]
impl S {
    #[init]
    fn init(_seed: u32) -> Self {
        S { n: 0 }
    }

    #[call]
    fn set(&mut self, n: u32, _n: u32, __n: u32) -> u32 {
        self.n = n;
        self.n
    }

    #[cast]
    fn ignore(&mut self, _why: String) {}
}

fn main() {}
