//! DEFECT (error quality): a generic message method gives three "cannot find type `T`"
//! errors, one suggesting the macro-internal type parameter `A`. Should be one error at
//! `<T: Into<u32>>`: a message method cannot be generic (its arguments are one message type).

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
