//! DEFECT (error quality): a borrowed argument gives three errors, with rustc's suggestions
//! `impl S<'a>` and `for<'a> #[behavior]`, and "Deserialize is not general enough". Should
//! be one error at `&str`: a message argument is moved to the process and must be owned
//! (`String` rather than `&str`).

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
