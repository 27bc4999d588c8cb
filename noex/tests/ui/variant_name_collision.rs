//! `level_2` and `level2` would both be variant `Level2`: one error at the second method.

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
    fn level_2(&self) -> u32 {
        2
    }

    #[call]
    fn level2(&self) -> u32 {
        self.n
    }
}

fn main() {}
