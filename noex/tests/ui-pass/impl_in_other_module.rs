//! A behaviour whose impl block is in another module than its struct, with an `#[init]` named
//! `new` taking a tuple pattern and `_`.

#![allow(dead_code)]
mod state {
    use noex::behavior;
    #[behavior]
    pub struct Split { pub(crate) n: u32 }
}
mod handlers {
    use noex::behavior;
    use super::state::Split;
    #[behavior]
    impl Split {
        #[init]
        fn new((a, b): (u32, u32), _: String) -> Self { Split { n: a + b } }
        #[call]
        fn get(&self) -> u32 { self.n }
    }
}
use handlers::SplitApi;
async fn f(s: noex::ServerRef<state::Split>) { let _ = s.get().await; }
fn main() { let _ = f; }
