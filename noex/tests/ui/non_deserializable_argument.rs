use noex::behavior;
use serde::Serialize;

/// Serializable, but not deserializable.
#[derive(Serialize)]
pub struct Report {
    lines: u64,
}

#[behavior]
pub struct Printer {
    printed: u64,
}

#[behavior]
impl Printer {
    #[init]
    fn init() -> Self {
        Printer { printed: 0 }
    }

    #[cast]
    fn print(&mut self, report: Report) {
        self.printed += report.lines;
    }
}

fn main() {}
