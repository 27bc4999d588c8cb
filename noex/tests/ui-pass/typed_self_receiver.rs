//! `self: &Self` / `self: &mut Self` are `&self` / `&mut self`.

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
    fn get(self: &Self) -> u32 {
        self.n
    }

    #[cast]
    fn set(self: &mut Self, n: u32) {
        self.n = n;
    }
}

fn main() {}
