//! A remote behaviour's call returning `std::io::Result<_>`: noex's own "`std::io::Error`
//! cannot be sent to another node", with its hint to make the behaviour `#[behavior(local)]`,
//! at the whole type. (`io::Result<T>` is checked as `T` and `std::io::Error`; checked as a
//! whole, the unmet bound would be nested in `Result`'s serde impl, where the
//! `on_unimplemented` of `RemoteSerialize` does not fire: serde's raw "the trait bound
//! `std::io::Error: serde::Serialize` is not satisfied" at `std` was the error.)

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
