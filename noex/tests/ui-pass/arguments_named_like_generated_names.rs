//! Arguments named like the parameters and bindings of the generated code (`serializer`,
//! `seq`, `tag`, `value`, `timeout`, ...) shadow nothing there.

use noex::behavior;

#[behavior]
pub struct S {
    format: String,
}

const TAG_SET_FORMAT: u32 = 7;

#[behavior]
impl S {
    #[init]
    fn init(serializer: String, deserializer: u8) -> Self {
        let _ = deserializer;
        S { format: serializer }
    }

    #[cast]
    fn set_format(&mut self, serializer: String) {
        self.format = serializer;
    }

    #[call]
    fn all(
        &mut self,
        seq: u32,
        tag: u32,
        value: String,
        other: u8,
        timeout: u64,
        call_timeout: u64,
    ) -> String {
        let _ = (seq, tag, other, timeout, call_timeout, TAG_SET_FORMAT);
        value
    }

    #[call]
    fn deserializer(&self, deserializer: Vec<u8>, out: Vec<u8>) -> Vec<u8> {
        let _ = out;
        deserializer
    }
}

fn main() {}
