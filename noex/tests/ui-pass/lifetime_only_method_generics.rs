//! Lifetime parameters on a message method are fine (its message types own their data).

use noex::behavior;

#[behavior]
pub struct S {
    n: u32,
}

#[behavior]
impl S {
    #[init]
    fn init() -> Self {
        S { n: 0 }
    }

    #[call]
    fn get<'a>(&'a self) -> u32 {
        self.n
    }

    #[cast]
    fn set<'a>(&'a mut self, n: u32) {
        self.n = n;
    }
}

fn main() {}
