//! A spawn on another node that its spawner gives up while the new process's `init` still
//! runs: the process is ended then, not once `init` is over, so nothing it holds (a global
//! name) outlasts the spawn.

mod common;

use std::time::Duration;

use common::{eventually, run_blocking, shutdown_all, start_cluster, within};
use noex::{behavior, RemoteSpawnError, SpawnOptions};

#[behavior(name = "given-up-slow")]
pub struct Slow;

#[behavior]
impl Slow {
    /// Takes `ms` milliseconds to start.
    #[init]
    async fn init(ms: u64) -> Self {
        smol::Timer::after(Duration::from_millis(ms)).await;
        Slow
    }

    #[call]
    fn ping(&self) {}
}

#[test]
fn a_remote_spawn_given_up_during_init_ends_the_process_and_frees_its_global_name() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        b.register_behaviors().unwrap();
        let on_b = b.local_node_id().unwrap().clone();
        let before = b.process_count();
        // An `init` of a minute, with no init timeout: only the spawner's giving up ends it.
        let impatient = SpawnOptions::new()
            .global_name("slow")
            .init_timeout(None)
            .spawn_timeout(Duration::from_millis(300));
        let spawned = within(
            "the spawn to give up",
            a.spawn_on_with::<Slow>(&on_b, 60_000, impatient),
        )
        .await;
        assert!(
            matches!(spawned, Err(RemoteSpawnError::Timeout { .. })),
            "{:?}",
            spawned.map(|_| ())
        );
        eventually("the process on b to end", || b.process_count() == before).await;
        eventually("the name to be free everywhere", || {
            nodes.iter().all(|n| n.whereis_global("slow").is_none())
        })
        .await;
        // The name can be taken again at once.
        let patient = SpawnOptions::new().global_name("slow");
        let again = within("a second spawn", a.spawn_on_with::<Slow>(&on_b, 0, patient)).await;
        let again = again.unwrap();
        within("a call", again.ping()).await.unwrap();
        shutdown_all(nodes);
    });
}
