//! The context imported under another name (`Ctx as Context`) is not recognised as the
//! context: one error at its type, saying to write `ctx: &mut Ctx<Self>`.

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
