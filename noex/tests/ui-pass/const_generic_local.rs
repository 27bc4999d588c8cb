use noex::behavior;
#[behavior]
pub struct Ring<const N: usize> { items: Vec<u32> }
#[behavior(local)]
impl<const N: usize> Ring<N> {
    #[init]
    fn init() -> Self { Ring { items: Vec::with_capacity(N) } }
    #[cast]
    fn push(&mut self, t: u32) { self.items.push(t) }
    #[call]
    fn len(&self) -> usize { self.items.len() }
}
fn main() {}
