//! DEFECT: a `#[cfg]`-ed-out message method still gets its enum variant, dispatch arm and
//! client method, so the build fails with "the method `debug_dump` exists for mutable
//! reference `&mut S`, but its trait bounds were not satisfied". Should compile: the
//! method's `#[cfg]`s belong on everything generated for it.

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

    #[call]
    fn get(&self) -> u32 {
        self.n
    }

    #[cfg(any())]
    #[call]
    fn debug_dump(&self) -> String {
        String::new()
    }
}

fn main() {}
