//! A second `#[behavior]` impl block (no `#[init]`) is one error saying that a behaviour has
//! exactly one `#[behavior]` impl block.

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
    fn get(&self) -> u32 {
        self.n
    }
}

#[behavior]
impl S {
    #[cast]
    fn set(&mut self, n: u32) {
        self.n = n;
    }
}

fn main() {}
