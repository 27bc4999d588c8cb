//! The behaviours the chaos run starts: workers it calls, casts to, stops and crashes, and
//! the distributed supervisor's children. Each records its start, so that the run knows
//! which worker a pid is and where each supervised child runs.

use std::sync::Mutex;

use noex::{behavior, Ctx, Pid};

/// The worker id each pid was started with (`Worker::ping` answers it).
pub(crate) static WORKER_IDS: Mutex<Vec<(Pid, u64)>> = Mutex::new(Vec::new());
/// Every supervised child's start, by label (labels are unique per seed).
pub(crate) static CHILD_STARTS: Mutex<Vec<(String, Pid)>> = Mutex::new(Vec::new());

#[behavior(name = "chaos-worker")]
pub struct Worker {
    id: u64,
    casts: u64,
}

#[behavior]
impl Worker {
    #[init]
    fn init(id: u64, ctx: &mut Ctx<Self>) -> Self {
        WORKER_IDS.lock().unwrap().push((ctx.pid().clone(), id));
        Worker { id, casts: 0 }
    }

    #[call]
    fn ping(&self) -> u64 {
        self.id
    }

    #[cast]
    fn bump(&mut self) {
        self.casts += 1;
    }

    #[call]
    fn casts(&self) -> u64 {
        self.casts
    }

    #[call]
    fn crash(&self) {
        panic!("chaos crash");
    }
}

#[behavior(name = "chaos-child")]
pub struct Child;

#[behavior]
impl Child {
    #[init]
    fn init(label: String, ctx: &mut Ctx<Self>) -> Self {
        CHILD_STARTS
            .lock()
            .unwrap()
            .push((label, ctx.pid().clone()));
        Child
    }

    #[call]
    fn ping(&self) {}
}
