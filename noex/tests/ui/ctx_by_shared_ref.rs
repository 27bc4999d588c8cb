use noex::behavior;

#[behavior]
pub struct Counter {
    count: u64,
}

#[behavior]
impl Counter {
    #[init]
    fn init(count: u64) -> Self {
        Counter { count }
    }

    #[cast]
    fn bump(&mut self, ctx: &noex::Ctx<Self>) {
        let _ = ctx;
        self.count += 1;
    }
}

fn main() {}
