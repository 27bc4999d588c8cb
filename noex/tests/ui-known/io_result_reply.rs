//! DEFECT (error quality): a remote behaviour's call returning `std::io::Result<_>` (or any
//! `Result<_, E>` with a non-serde `E`) fails with serde's raw "the trait bound
//! `std::io::Error: serde::Serialize` is not satisfied", its caret under `std` only, without
//! noex's own message ("cannot be sent to another node") or its hint to make the behaviour
//! `#[behavior(local)]`: the `on_unimplemented` of `RemoteSerialize` does not fire when the
//! unmet bound is nested. Should be noex's message, at the whole type.

use noex::behavior;
#[behavior]
pub struct S { n: u32 }
#[behavior]
impl S {
    #[init]
    fn init() -> Self { S { n: 0 } }
    #[call]
    fn read(&self, path: String) -> std::io::Result<Vec<u8>> { std::fs::read(path) }
}
fn main() {}
