//! DEFECT: `Self` in a message type is copied verbatim into the enums, the client trait and
//! free functions, where it means something else or nothing: "cannot find type `Self`",
//! "recursive type `__NoexSReply` has infinite size", "overflow evaluating ...". Should
//! compile (the macro knows the self type and can substitute it).

use noex::behavior;
use serde::{Deserialize, Serialize};

#[behavior]
#[derive(Clone, Serialize, Deserialize)]
pub struct S {
    n: u32,
}

#[behavior]
impl S {
    #[init]
    fn init() -> Self {
        S { n: 0 }
    }

    /// A copy of the state.
    #[call]
    fn snapshot(&self) -> Self {
        self.clone()
    }
}

fn main() {}
