#![allow(dead_code)]
use noex::behavior;
#[derive(Debug)]
pub struct MyErr;
impl std::fmt::Display for MyErr { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("e") } }
mod errs { pub type Result<T> = std::result::Result<T, super::MyErr>; }
#[behavior]
pub struct A;
#[behavior]
impl A { #[init] fn init() -> errs::Result<Self> { Ok(A) } }
#[behavior]
pub struct B;
#[behavior]
impl B { #[init] fn init() -> Result<B, MyErr> { Ok(B) } }
fn main() {}
