#![forbid(unsafe_code)]
#![deny(missing_docs)]
//! A crate with common lints.
use noex::behavior;
/// A doc.
#[behavior]
pub struct S { n: u32 }
#[behavior]
impl S {
    #[init]
    fn init() -> Self { S { n: 0 } }
    #[call]
    fn get(&self) -> u32 { self.n }
}
fn main() {}
