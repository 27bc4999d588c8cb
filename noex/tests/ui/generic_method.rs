//! A generic message method is one error at its generics: its arguments are the fields of
//! one message type (lifetime-only generics are fine).

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

    #[cast]
    fn set<T: Into<u32>>(&mut self, n: T) {
        self.n = n.into();
    }
}

fn main() {}
