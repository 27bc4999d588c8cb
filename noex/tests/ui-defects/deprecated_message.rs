//! DEFECT: deprecating a message method warns twice at its own definition (the generated
//! dispatch calls it), while the client method `get` that callers use is not deprecated.
//! Should be: no warning in generated code (`#[allow(deprecated)]` on the dispatch), and the
//! `#[deprecated]` copied to the client method(s). `deny(deprecated)` shows the warnings.
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
}

fn main() {}
