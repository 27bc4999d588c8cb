//! DEFECT (error quality): the context under an imported alias (`Ctx as Context`) is taken
//! for a message argument: eight errors (missing lifetime, `Self` not found, future not
//! `Send`, ...). The parameter is not recognized by its path; at least a `&mut` argument
//! should be refused with one error naming `ctx: &mut Ctx<Self>`.

use noex::{behavior, Ctx as Context};

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
    fn get(&self, ctx: &mut Context<Self>) -> u32 {
        let _ = ctx;
        self.n
    }
}

fn main() {}
