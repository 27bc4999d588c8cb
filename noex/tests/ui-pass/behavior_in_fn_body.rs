use noex::behavior;
fn main() {
    #[behavior]
    pub struct Local { n: u32 }
    #[behavior]
    impl Local {
        #[init]
        fn init() -> Self { Local { n: 0 } }
        #[call]
        fn get(&self) -> u32 { self.n }
    }
}
