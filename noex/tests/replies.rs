//! What a caller gets when its reply does not come: a reply dropped by a running handler
//! fails the call at once (`NoReply`), on this node and from another; a reply dropped as
//! the server ends gives the server's exit reason.

mod common;

use std::time::Duration;

use common::{run, run_blocking, shutdown_all, start_cluster, within};
use noex::{behavior, CallError, Ctx, ExitReason, GenServer, Node, ReplyTo};

/// Longer than any test waits: a call that fails does so for another reason.
const PATIENT: Duration = Duration::from_secs(600);

#[behavior(name = "replies-keeper")]
pub struct Keeper {
    kept: Option<ReplyTo<u32>>,
}

#[behavior]
impl Keeper {
    #[init]
    fn init() -> Self {
        Keeper { kept: None }
    }

    /// Never answered: the reply is dropped as the handler runs.
    #[call]
    fn discard(&mut self, reply: ReplyTo<u32>) {
        drop(reply);
    }

    /// Never answered: the reply is dropped after an `await`.
    #[call]
    async fn discard_later(&mut self, reply: ReplyTo<u32>) {
        futures_lite::future::yield_now().await;
        drop(reply);
    }

    /// Deferred: kept until the next `keep` replaces it (dropping it), or `release`.
    #[call]
    fn keep(&mut self, reply: ReplyTo<u32>) {
        self.kept = Some(reply);
    }

    /// Answers the call kept, if any.
    #[cast]
    fn release(&mut self, value: u32) {
        if let Some(kept) = self.kept.take() {
            kept.send(value);
        }
    }

    /// Keeps the reply, then panics.
    #[call]
    async fn keep_and_panic(&mut self, reply: ReplyTo<u32>) {
        self.kept = Some(reply);
        panic!("on purpose");
    }

    /// Keeps the reply, then stops: the reply is dropped as the process ends.
    #[call]
    fn keep_and_stop(&mut self, reply: ReplyTo<u32>, ctx: &mut Ctx<Self>) {
        self.kept = Some(reply);
        ctx.stop(ExitReason::Shutdown);
    }

    #[call]
    fn ping(&self) -> u32 {
        7
    }
}

/// A server written by hand that leaves calls to the default `handle_call`.
struct Deaf;

impl GenServer for Deaf {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        Ok(Deaf)
    }
}

#[test]
fn a_reply_dropped_by_a_running_handler_fails_the_call_at_once() {
    run(|node: Node| async move {
        let keeper = node.spawn::<Keeper>(()).await.unwrap();
        let discarded = within("the call", keeper.discard_with_timeout(PATIENT)).await;
        assert_eq!(discarded, Err(CallError::NoReply));
        let later = within("the call", keeper.discard_later_with_timeout(PATIENT)).await;
        assert_eq!(later, Err(CallError::NoReply));
        // The server runs on.
        assert_eq!(keeper.ping().await, Ok(7));
    });
}

#[test]
fn the_default_handle_call_fails_the_call_at_once() {
    run(|node: Node| async move {
        let deaf = node.spawn::<Deaf>(()).await.unwrap();
        let call = within("the call", deaf.call_with_timeout((), PATIENT)).await;
        assert_eq!(call, Err(CallError::NoReply));
        assert!(deaf.is_alive());
    });
}

#[test]
fn a_deferred_reply_replaced_by_another_fails_its_call_and_the_other_is_answered() {
    run(|node: Node| async move {
        let keeper = node.spawn::<Keeper>(()).await.unwrap();
        let first = node.spawn_task({
            let keeper = keeper.clone();
            async move { keeper.keep_with_timeout(PATIENT).await }
        });
        // The first is kept before the second replaces it (one mailbox, in order).
        let ping = keeper.ping().await;
        assert_eq!(ping, Ok(7));
        let second = node.spawn_task({
            let keeper = keeper.clone();
            async move { keeper.keep_with_timeout(PATIENT).await }
        });
        assert_eq!(within("the first", first).await, Err(CallError::NoReply));
        keeper.release(42).unwrap();
        assert_eq!(within("the second", second).await, Ok(42));
    });
}

#[test]
fn a_reply_dropped_as_the_server_ends_gives_its_exit_reason() {
    run(|node: Node| async move {
        let keeper = node.spawn::<Keeper>(()).await.unwrap();
        let stopped = within("the call", keeper.keep_and_stop_with_timeout(PATIENT)).await;
        assert_eq!(stopped, Err(CallError::Exited(ExitReason::Shutdown)));
        let keeper = node.spawn::<Keeper>(()).await.unwrap();
        let panicked = within("the call", keeper.keep_and_panic_with_timeout(PATIENT)).await;
        assert!(
            matches!(&panicked, Err(CallError::Exited(ExitReason::Panic(_)))),
            "{panicked:?}"
        );
        // Killed with a reply deferred.
        let keeper = node.spawn::<Keeper>(()).await.unwrap();
        let kept = node.spawn_task({
            let keeper = keeper.clone();
            async move { keeper.keep_with_timeout(PATIENT).await }
        });
        assert_eq!(keeper.ping().await, Ok(7));
        assert!(node.kill(keeper.pid()));
        assert_eq!(
            within("the call", kept).await,
            Err(CallError::Exited(ExitReason::Killed))
        );
    });
}

#[test]
fn a_reply_dropped_by_a_handler_on_another_node_fails_the_call_at_once() {
    run_blocking(async {
        let nodes = start_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        b.register_behaviors().unwrap();
        let keeper = b.spawn::<Keeper>(()).await.unwrap();
        let remote = a.server_ref::<Keeper>(keeper.pid()).unwrap();
        let discarded = within("the call", remote.discard_with_timeout(PATIENT)).await;
        assert_eq!(discarded, Err(CallError::NoReply));
        let later = within("the call", remote.discard_later_with_timeout(PATIENT)).await;
        assert_eq!(later, Err(CallError::NoReply));
        assert_eq!(within("a call", remote.ping()).await, Ok(7));
        let stopped = within("the call", remote.keep_and_stop_with_timeout(PATIENT)).await;
        assert_eq!(stopped, Err(CallError::Exited(ExitReason::Shutdown)));
        shutdown_all(nodes);
    });
}
