use noex::{behavior, Ctx, ExitReason, Info};
use serde::{Deserialize, Serialize};
#[derive(Serialize, Deserialize)]
pub enum Tick { A }
#[behavior]
pub struct S { n: u32 }
#[behavior]
impl S {
    #[init]
    async fn init(ctx: &mut Ctx<Self>) -> Self { let _ = ctx; S { n: 0 } }
    #[info]
    async fn tick(&mut self, ctx: &mut Ctx<Self>, info: Info<Tick>) { let _ = (ctx, info); }
    #[terminate]
    fn bye(&mut self, _reason: &ExitReason) {}
}
fn main() {}
