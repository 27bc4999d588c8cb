//! The markers can be written as paths (`#[noex::init]`, `#[noex::call]`, `#[noex::tag = ..]`),
//! as `#[noex::behavior]` can.

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

    #[noex::cast]
    #[noex::tag = 0x51]
    fn set(&mut self, n: u32) {
        self.n = n;
    }
}

fn main() {}
