//! A borrowed message argument is one error at `&str`: a message is moved to the process
//! and must own its data (`String`).

use noex::behavior;

#[behavior]
pub struct S {
    name: String,
}

#[behavior]
impl S {
    #[init]
    fn init() -> Self {
        S { name: String::new() }
    }

    #[cast]
    fn rename(&mut self, name: &str) {
        self.name = name.to_owned();
    }
}

fn main() {}
