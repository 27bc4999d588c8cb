//! DEFECT (error quality): splitting a behaviour's messages over two `#[behavior]` impl
//! blocks fails with "a behaviour needs an #[init] method" at the second block. Should say
//! that a behaviour has one `#[behavior]` impl block (other impl blocks go unmarked).

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
}

#[behavior]
impl S {
    #[cast]
    fn set(&mut self, n: u32) {
        self.n = n;
    }
}

fn main() {}
