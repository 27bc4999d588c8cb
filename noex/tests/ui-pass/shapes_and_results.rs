#![allow(dead_code)]
use std::time::Duration;
use noex::{behavior, CallError, Ctx, ServerRef};
use serde::{Deserialize, Serialize};
#[derive(Debug, Serialize, Deserialize)]
pub struct E;
#[behavior]
pub struct Unit;
#[behavior]
impl Unit {
    #[init]
    fn init() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> { Ok(Unit) }
    #[call]
    fn ping(&self) -> Result<u32, E> { Ok(1) }
    #[call]
    fn r#match(&self, r#type: u32) -> u32 { r#type }
    #[cast]
    fn r#loop(&mut self) {}
    #[call]
    fn lifetimes<'a>(&'a self, ctx: &mut Ctx<Self>) -> u32 { let _ = ctx; 1 }
    #[call]
    #[allow(clippy::needless_pass_by_value)]
    #[inline]
    fn allowed(&self, s: String) -> usize { s.len() }
    #[call]
    fn with_timeout_arg(&self, timeout: Duration) -> u64 { timeout.as_secs() }
}
#[behavior]
pub struct Tuple(u32, String);
#[behavior]
impl Tuple {
    #[init]
    async fn init(a: u32, b: String) -> std::io::Result<Self> { Ok(Tuple(a, b)) }
    #[call]
    async fn get(&mut self, ctx: &mut Ctx<Self>, extra: u32) -> u32 { let _ = ctx; self.0 + extra }
}
async fn use_it(u: ServerRef<Unit>, t: ServerRef<Tuple>) {
    let r: Result<Result<u32, E>, CallError> = u.ping().await;
    let _ = r;
    let _: Result<u32, CallError> = u.r#match(3).await;
    let _: Result<u64, CallError> = u.with_timeout_arg(Duration::ZERO).await;
    let _: Result<u32, CallError> = t.get(4).await;
}
fn main() { let _ = use_it; }
