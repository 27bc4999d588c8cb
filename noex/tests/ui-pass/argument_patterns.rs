use noex::behavior;
use serde::{Deserialize, Serialize};
#[derive(Serialize, Deserialize)]
pub struct Point { x: i32, y: i32 }
#[behavior]
pub struct P { n: u32 }
#[behavior]
impl P {
    #[init]
    fn init(mut start: u32) -> Self { start += 1; P { n: start } }
    #[cast]
    fn a(&mut self, mut n: u32) { n += 1; self.n = n; }
    #[cast]
    fn b(&mut self, _: u32) {}
    #[call]
    fn c(&self, (a, b): (u32, u32)) -> u32 { a + b }
    #[call]
    fn d(&self, Point { x, y }: Point) -> i32 { x + y }
    #[cast]
    fn e(&mut self, _unused: u32, _: String) {}
}
fn main() {}
