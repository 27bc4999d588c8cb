//! A non-serde type inside `Result`, `Option`, `Vec` or a tuple is reported with noex's
//! message, at that type (the wrappers are looked through), once per type.

use noex::behavior;
pub struct Plain;
#[behavior]
pub struct S { n: u32 }
#[behavior]
impl S {
    #[init]
    fn init() -> Self { S { n: 0 } }
    #[call]
    fn a(&self) -> Result<u32, Plain> { Ok(self.n) }
    #[call]
    fn b(&self, _batch: Vec<(u8, Plain)>) -> Option<u8> { None }
    #[cast]
    fn c(&mut self, _maybe: Option<Plain>) {}
}
fn main() {}
