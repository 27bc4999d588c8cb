mod common;

use std::time::Duration;

use noex::{behavior, ClusterConfig, ClusterEvent, Node, SpawnOptions};

#[behavior(name = "counter")]
pub struct Counter {
    n: u64,
}

#[behavior]
impl Counter {
    #[init]
    fn init(n: u64) -> Self {
        Counter { n }
    }
    #[call]
    fn get(&self) -> u64 {
        self.n
    }
    #[cast]
    fn add(&mut self, k: u64) {
        self.n += k;
    }
}

#[test]
fn two_nodes_call_each_other() {
    smol::block_on(async {
        let config = |name: &str| {
            ClusterConfig::new(name)
                .secret("s")
                .heartbeat(Duration::from_millis(100), Duration::from_millis(600))
        };
        let a = Node::start(config("a")).await.unwrap();
        let a_events = a.cluster_events();
        let seed = a.local_node_id().unwrap().to_string();
        let b = Node::start(config("b").seed(seed)).await.unwrap();
        let up = common::within("node up", a_events.recv()).await.unwrap();
        assert!(matches!(up, ClusterEvent::NodeUp { .. }), "{up:?}");

        let counter = b
            .spawn_with::<Counter>(5, SpawnOptions::new().name("c"))
            .await
            .unwrap();
        let b_id = b.local_node_id().unwrap().clone();
        let remote = a.named_on::<Counter>("c", &b_id);
        remote.add(2).unwrap();
        assert_eq!(remote.get().await, Ok(7));
        let by_pid = a.server_ref::<Counter>(counter.pid()).unwrap();
        assert!(!by_pid.is_local());
        assert_eq!(by_pid.get().await, Ok(7));
        let t = std::time::Instant::now();
        for _ in 0..1000 {
            by_pid.get().await.unwrap();
        }
        eprintln!("remote call from block_on: {:?}", t.elapsed() / 1000);
        b.shutdown();
        let down = common::within("node down", a_events.recv()).await.unwrap();
        eprintln!("{down:?}");
        assert_eq!(by_pid.get().await, Err(noex::CallError::NoConnection));
        a.shutdown();
    });
}
