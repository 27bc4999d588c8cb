//! DEFECT (error quality): with `#[noex::behavior]` written as a path, the markers written
//! the same way are not recognized: "a behaviour needs an #[init] method" plus "cannot find
//! `init` in `noex`". Should accept `#[noex::init]` etc., or say "write `#[init]`".

#[noex::behavior]
pub struct S {
    n: u32,
}

#[noex::behavior]
impl S {
    #[noex::init]
    fn init() -> Self {
        S { n: 0 }
    }

    #[noex::call]
    fn get(&self) -> u32 {
        self.n
    }
}

fn main() {}
