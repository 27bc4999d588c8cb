//! A small supervision tree, and what happens when its processes crash.
//!
//! ```text
//! root (one_for_one)
//! ├── cache      a key-value store, registered as "cache"
//! └── pool       (one_for_one)
//!     ├── worker-1 … worker-4, registered under their ids, restarted 100 ms after a crash
//! ```
//!
//! Both behaviours are written with `#[behavior]`: a struct and one annotated `impl` block.
//! The macro generates the `GenServer` impl and a client trait per behaviour (`CacheApi`,
//! `WorkerApi`), so a handle is used as `cache.get(key)` or `worker.square(n)`.
//!
//! Run it with `cargo run -p examples --bin supervision_tree`.

use std::collections::HashMap;
use std::time::Duration;

use noex::supervisor::{Backoff, ChildSpec, Strategy, SupervisorSpec};
use noex::{behavior, ExitReason, LifecycleEvent, Node, ServerRef, Supervisor};

/// A key-value cache. Its state is lost when it crashes; its name survives restarts.
#[behavior]
struct Cache {
    entries: HashMap<String, String>,
}

#[behavior]
impl Cache {
    #[init]
    async fn init() -> Self {
        Cache {
            entries: HashMap::new(),
        }
    }

    /// The value stored under `key`, if any.
    #[call]
    async fn get(&self, key: String) -> Option<String> {
        self.entries.get(&key).cloned()
    }

    /// Stores `value` under `key`; returns the value it replaces.
    #[call]
    async fn put(&mut self, key: String, value: String) -> Option<String> {
        self.entries.insert(key, value)
    }
}

/// A worker that squares numbers, and crashes on request.
#[behavior]
struct Worker {
    id: String,
    handled: u64,
}

#[behavior]
impl Worker {
    #[init]
    async fn init(id: String) -> Self {
        Worker { id, handled: 0 }
    }

    #[call]
    async fn square(&mut self, n: u64) -> Result<u64, String> {
        self.handled += 1;
        n.checked_mul(n).ok_or_else(|| "overflow".to_owned())
    }

    #[call]
    async fn crash(&mut self) {
        panic!("{} was told to crash", self.id);
    }

    #[terminate]
    async fn terminate(&mut self, reason: &ExitReason) {
        println!(
            "    {} stops ({reason}) after {} jobs",
            self.id, self.handled
        );
    }
}

fn tree() -> SupervisorSpec {
    let pool = (1..=4).fold(SupervisorSpec::new(Strategy::OneForOne), |pool, n| {
        let id = format!("worker-{n}");
        // As the guide's pool: a crashed worker comes back after 100 ms.
        let backoff = Backoff::fixed(Duration::from_millis(100));
        pool.child(
            ChildSpec::worker::<Worker>(id.clone(), id.clone())
                .name(id)
                .backoff(backoff),
        )
    });
    SupervisorSpec::new(Strategy::OneForOne)
        .child(ChildSpec::worker::<Cache>("cache", ()).name("cache"))
        .child(ChildSpec::supervisor("pool", pool))
}

async fn print_tree(node: &Node, root: &ServerRef<Supervisor>) {
    println!("  root {}", root.pid());
    let children = root.which_children().await.expect("root answers");
    let count = children.len();
    for (i, child) in children.into_iter().enumerate() {
        let last = i + 1 == count;
        let pid = child.pid.as_ref().map_or("-".to_owned(), |p| p.to_string());
        println!("  {} {:<9} {pid}", branch(last), child.id);
        if child.id == "pool" {
            let pool = node
                .server_ref::<Supervisor>(child.pid.as_ref().expect("pool runs"))
                .expect("pool is a supervisor");
            let indent = if last { "    " } else { "│   " };
            let workers = pool.which_children().await.expect("pool answers");
            let count = workers.len();
            for (i, worker) in workers.into_iter().enumerate() {
                let pid = worker.pid.map_or("-".to_owned(), |p| p.to_string());
                println!(
                    "  {indent}{} {:<9} {pid}",
                    branch(i + 1 == count),
                    worker.id
                );
            }
        }
    }
}

/// A tree branch: the last of its siblings closes it.
fn branch(last: bool) -> &'static str {
    if last {
        "└──"
    } else {
        "├──"
    }
}

/// Prints lifecycle events until the one `stop_at` accepts.
async fn show_events(events: &noex::Events, stop_at: impl Fn(&LifecycleEvent) -> bool) {
    let limit = smol::Timer::after(Duration::from_secs(5));
    let wait = async {
        while let Some(event) = events.recv().await {
            match &event {
                LifecycleEvent::Exited { pid, reason } => {
                    println!("  event: {pid} exited: {reason}")
                }
                LifecycleEvent::ChildRestarted { child, pid, .. } => {
                    println!("  event: {child} restarted as {pid}")
                }
                LifecycleEvent::Started {
                    pid,
                    name: Some(name),
                    ..
                } => {
                    println!("  event: {pid} started as {name:?}")
                }
                _ => {}
            }
            if stop_at(&event) {
                return;
            }
        }
    };
    smol::future::or(wait, async {
        limit.await;
        println!("  (no more events)");
    })
    .await;
}

fn main() {
    // Keep the crash report of a panicking handler to one line.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map_or("(no message)", String::as_str);
        println!("  panic in a handler: {message}");
    }));

    let node = Node::new();
    node.block_on(async {
        println!("Starting the tree:");
        let root = node
            .spawn::<Supervisor>(tree())
            .await
            .expect("the tree starts");
        print_tree(&node, &root).await;
        let events = node.events();

        let cache = node.named::<Cache>("cache");
        let worker = node.named::<Worker>("worker-2");
        cache.put("greeting".into(), "hello".into()).await.unwrap();
        println!(
            "\nworker-2 squares 12: {:?}",
            worker.square(12).await.unwrap()
        );

        println!("\nworker-2 crashes:");
        let crashed = std::time::Instant::now();
        let crash = worker.crash().await;
        println!("  the caller sees: {crash:?}");
        show_events(&events, |e| {
            matches!(e, LifecycleEvent::ChildRestarted { .. })
        })
        .await;
        println!(
            "  restarted {:.0?} after the crash (its backoff: 100 ms)",
            crashed.elapsed()
        );
        println!(
            "  the name reaches the new worker-2: 7 squared is {:?}",
            worker.square(7).await.unwrap()
        );

        println!("\nThe cache is killed:");
        let old = node.whereis("cache").expect("cache runs");
        node.kill(&old);
        show_events(&events, |e| {
            matches!(e, LifecycleEvent::ChildRestarted { .. })
        })
        .await;
        println!(
            "  the restarted cache starts empty: greeting = {:?}",
            cache.get("greeting".into()).await.unwrap()
        );

        println!("\nThe tree after both restarts:");
        print_tree(&node, &root).await;

        println!("\nStopping the root (children stop in reverse order):");
        let reason = root
            .stop(ExitReason::Shutdown)
            .await
            .expect("root was running");
        println!("  root exited: {reason}");
    });
    node.shutdown();
}
