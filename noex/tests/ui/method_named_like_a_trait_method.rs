use noex::behavior;

#[behavior]
pub struct Converter {
    factor: u64,
}

#[behavior]
impl Converter {
    #[init]
    fn init() -> Self {
        Converter { factor: 2 }
    }

    // `ServerHandle::cast_message`, which the generated client trait builds on.
    #[cast]
    fn cast_message(&mut self, factor: u64) {
        self.factor = factor;
    }

    // `Into::into`, which every handle has.
    #[call]
    fn into(&self, n: u64) -> u64 {
        n * self.factor
    }
}

fn main() {}
