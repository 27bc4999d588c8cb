//! DEFECT (hygiene): an argument named `serializer` shadows the parameter of the generated
//! `Serialize::serialize`: "the trait bound `&String: serde::Serializer` is not satisfied"
//! at `#[behavior]`. Should compile.

use noex::behavior;

#[behavior]
pub struct S {
    format: String,
}

#[behavior]
impl S {
    #[init]
    fn init() -> Self {
        S { format: String::new() }
    }

    #[cast]
    fn set_format(&mut self, serializer: String) {
        self.format = serializer;
    }
}

fn main() {}
