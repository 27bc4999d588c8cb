//! An `impl Trait` argument is one error: a message argument needs a named type.

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
    fn rename(&mut self, name: impl Into<String> + Send + 'static) {
        self.name = name.into();
    }
}

fn main() {}
