//! The client method of a `#[deprecated]` message method is deprecated: calling it warns
//! (here an error, with `deny(deprecated)`) at the call, with the method's note.
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

fn main() {
    fn _uses(s: noex::ServerRef<S>) {
        let _ = SApi::get(&s);
    }
}
