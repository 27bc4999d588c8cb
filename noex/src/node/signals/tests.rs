use std::convert::Infallible;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{Ctx, ExitReason, GenServer, Info, MonitorRef, Node};

/// The `Down`s a [`Recorder`] got, with their reasons.
static SEEN: Mutex<Vec<(MonitorRef, ExitReason)>> = Mutex::new(Vec::new());

struct Idle;

impl GenServer for Idle {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = Infallible;

    async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Infallible> {
        Ok(Idle)
    }
}

struct Recorder;

impl GenServer for Recorder {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = Infallible;

    async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Infallible> {
        Ok(Recorder)
    }

    async fn handle_info(&mut self, info: Info<()>, _: &mut Ctx<Self>) {
        if let Info::Down {
            monitor, reason, ..
        } = info
        {
            SEEN.lock().unwrap().push((monitor, reason));
        }
    }
}

/// A monitor set on a process in the middle of ending (its end recorded, not yet fully
/// processed) gets its `Down` only once the end is processed — behind the release of
/// the process's names and groups, and its earlier watchers' `Down`s — and two such
/// monitors get theirs in the order they were set.
#[test]
fn a_monitor_of_a_process_in_the_middle_of_ending_is_answered_once_its_end_is_processed() {
    let node = Node::new();
    node.block_on(async {
        let target = node.spawn::<Idle>(()).await.unwrap();
        let watcher = node.spawn::<Recorder>(()).await.unwrap();
        let inner = &node.inner;
        let target_process = inner.resolve(target.pid()).unwrap();
        let watcher_process = inner.resolve(watcher.pid()).unwrap();
        let handled = watcher_process.core().message_count();
        // As `finalize` begins: the end recorded.
        let _remains = target_process.core().mark_exited(ExitReason::Normal);
        let first = inner.monitor(watcher_process.as_ref(), target.pid());
        let second = inner.monitor(watcher_process.as_ref(), target.pid());
        // Nothing yet: a Down is put in the mailbox when given, and stays counted there
        // until handled.
        assert_eq!(
            (
                watcher_process.mailbox_len(),
                watcher_process.core().message_count()
            ),
            (0, handled),
            "a Down given before the end was processed"
        );
        // As `finalize` ends.
        target_process.core().notify_exited();
        let deadline = Instant::now() + Duration::from_secs(10);
        while SEEN.lock().unwrap().len() < 2 {
            assert!(Instant::now() < deadline, "the Downs never came");
            smol::Timer::after(Duration::from_millis(1)).await;
        }
        let seen = SEEN.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![(first, ExitReason::NoProc), (second, ExitReason::NoProc)]
        );
    });
    node.shutdown();
}
