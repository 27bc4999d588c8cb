//! A `#[deprecated]` message method: the generated dispatch does not warn (`deny(deprecated)`
//! shows it); its client methods are deprecated too (see `ui/deprecated_client_method.rs`).
#![deny(deprecated)]

use noex::behavior;

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

    #[deprecated(note = "use `value`")]
    #[call]
    fn get(&self) -> u32 {
        self.n
    }

    #[deprecated]
    #[cast]
    async fn set(&mut self, n: u32) {
        self.n = n;
    }

    #[deprecated]
    #[call]
    async fn get_later(&self) -> u32 {
        self.n
    }
}

fn main() {}
