use noex::behavior;

#[behavior]
pub struct Counter {
    count: u64,
}

#[behavior]
impl Counter {
    #[init]
    fn init(count: u64) -> Result<Self, Vec<u8>> {
        Ok(Counter { count })
    }
}

fn main() {}
