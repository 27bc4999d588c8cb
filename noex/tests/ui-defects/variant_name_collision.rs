//! DEFECT: `level_2` and `level2` both become variant `Level2`: five errors at
//! `#[behavior]` (E0428 "defined multiple times", non-exhaustive patterns). Should be one
//! error at the second method name, or distinct variants.

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
