//! DEFECT (error quality): an `impl Trait` argument gives four E0562 errors ("not allowed in
//! field types", "in paths", "in bounds", "in the type of variable bindings"). Should be one
//! error: a message argument needs a concrete type.

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
