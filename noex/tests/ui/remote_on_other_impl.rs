pub struct Counter(u64);

#[noex::remote]
impl Default for Counter {
    fn default() -> Self {
        Counter(0)
    }
}

fn main() {}
