//! A borrowed reply is one error at `&str`: the reply is moved to the caller and must own
//! its data.

use noex::behavior;

#[behavior]
pub struct S {
    name: String,
}

#[behavior(local)]
impl S {
    #[init]
    fn init() -> Self {
        S { name: String::new() }
    }

    #[call]
    fn label(&self) -> &str {
        &self.name
    }
}

fn main() {}
