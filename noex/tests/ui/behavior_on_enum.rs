use noex::behavior;

#[behavior]
pub enum Light {
    On,
    Off,
}

fn main() {}
