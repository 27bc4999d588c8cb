//! DEFECT (error quality): a borrowed reply is refused with "missing lifetime specifier"
//! and the suggestion `impl S<'a>` (which the macro refuses). Should be one error at `&str`:
//! the reply is sent to the caller and must be owned.

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
