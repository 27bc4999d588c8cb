//! DEFECT (error quality): a non-`Send` reply gives the intended error at `Rc<u32>` ("cannot
//! be part of a message") last, after two errors at `impl S` / `#[behavior(local)]`: "`Rc<u32>`
//! cannot be sent between threads safely ... required by a bound in `GenServer::Reply`" and
//! "future returned by `init` is not `Send`". Should be the one error at the type.

use std::rc::Rc;

use noex::behavior;

#[behavior]
pub struct S {
    n: u32,
}

#[behavior(local)]
impl S {
    #[init]
    fn init() -> Self {
        S { n: 0 }
    }

    #[call]
    fn get(&self) -> Rc<u32> {
        Rc::new(self.n)
    }
}

fn main() {}
