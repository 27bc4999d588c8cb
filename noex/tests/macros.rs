//! Behaviours written with `#[behavior]`: generated dispatch, typed client methods, deferred
//! replies, local and generic behaviours, wire tags and the behaviour registry.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, run, within};
use noex::{
    behavior, BehaviorName, CallError, Ctx, ExitReason, Info, RemoteBehavior, ReplyTo, SendError,
    SpawnByNameError, SpawnError, SpawnOptions,
};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------
// A counter, under an explicit name, with a pinned tag.
// ---------------------------------------------------------------------------------------

#[behavior(name = "counter")]
pub struct Counter {
    count: i64,
}

#[behavior]
impl Counter {
    #[init]
    fn init(start: i64) -> Self {
        Counter { count: start }
    }

    #[call]
    fn get(&self) -> i64 {
        self.count
    }

    #[cast]
    fn add(&mut self, n: i64) {
        self.count += n;
    }

    #[call]
    #[tag = 7]
    fn reset(&mut self) {
        self.count = 0;
    }

    /// A raw identifier as a method name.
    #[call]
    fn r#type(&self) -> String {
        "counter".to_owned()
    }
}

// ---------------------------------------------------------------------------------------
// A key-value cache whose calls can fail.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CacheError {
    Full { capacity: usize },
}

#[behavior]
pub struct Cache {
    capacity: usize,
    entries: std::collections::BTreeMap<String, String>,
}

#[behavior]
impl Cache {
    #[init]
    async fn init(capacity: usize) -> Result<Self, String> {
        if capacity == 0 {
            return Err("a cache needs room for one entry".to_owned());
        }
        Ok(Cache {
            capacity,
            entries: Default::default(),
        })
    }

    /// Stores a value; returns the previous one.
    #[call]
    async fn put(&mut self, key: String, value: String) -> Result<Option<String>, CacheError> {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            return Err(CacheError::Full {
                capacity: self.capacity,
            });
        }
        Ok(self.entries.insert(key, value))
    }

    #[call]
    async fn get(&self, key: String) -> Option<String> {
        self.entries.get(&key).cloned()
    }

    #[cast]
    async fn delete(&mut self, key: String) {
        self.entries.remove(&key);
    }

    #[call]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

// ---------------------------------------------------------------------------------------
// A worker with every shape of method.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    id: u64,
    payload: String,
}

#[behavior]
pub struct Worker {
    processed: u64,
    labels: Vec<String>,
    waiting: Vec<ReplyTo<u64>>,
    report: Option<async_channel::Sender<String>>,
}

#[behavior]
impl Worker {
    /// Two init arguments become a tuple; the context is optional.
    #[init]
    async fn init(start: u64, label: String, ctx: &mut Ctx<Self>) -> Result<Self, String> {
        ctx.trap_exits(false);
        Ok(Worker {
            processed: start,
            labels: vec![label],
            waiting: Vec::new(),
            report: None,
        })
    }

    #[call]
    async fn status(&self) -> u64 {
        self.processed
    }

    #[call]
    async fn labels(&self) -> Vec<String> {
        self.labels.clone()
    }

    #[cast]
    async fn work(&mut self, task: Task) {
        self.processed += 1;
        self.labels.push(task.payload);
        let processed = self.processed;
        for waiting in self.waiting.drain(..) {
            waiting.send(processed);
        }
    }

    #[cast]
    fn work_many(&mut self, tasks: Vec<Task>, weight: u64) {
        self.processed += tasks.len() as u64 * weight;
    }

    #[call]
    fn add(&mut self, a: u64, b: u64, c: u64) -> Result<u64, String> {
        a.checked_add(b)
            .and_then(|ab| ab.checked_add(c))
            .ok_or_else(|| "overflow".to_owned())
    }

    /// Answers when the next task is done (a deferred reply).
    #[call]
    async fn next_change(&mut self, reply: ReplyTo<u64>) {
        self.waiting.push(reply);
    }

    #[call]
    async fn pid_text(&self, ctx: &mut Ctx<Self>) -> String {
        ctx.pid().to_string()
    }

    #[call]
    async fn quit(&mut self, reason: ExitReason, ctx: &mut Ctx<Self>) {
        ctx.stop(reason);
    }

    #[cast]
    async fn report_to(&mut self, label: String) {
        let (tx, _) = async_channel::unbounded();
        drop(label);
        self.report = Some(tx);
    }

    #[call]
    fn crash(&mut self) {
        panic!("told to crash");
    }

    #[info]
    async fn on_info(&mut self, info: Info<u64>) {
        if let Info::Message(n) = info {
            self.processed += n;
        }
    }

    #[terminate]
    async fn on_terminate(&mut self, reason: &ExitReason) {
        self.labels.push(format!("terminated: {reason}"));
    }
}

// ---------------------------------------------------------------------------------------
// A local behaviour: its messages carry things that cannot cross the network.
// ---------------------------------------------------------------------------------------

#[behavior]
pub struct Notifier {
    sink: Arc<Mutex<Vec<String>>>,
}

#[behavior(local)]
impl Notifier {
    #[init]
    fn init(sink: Arc<Mutex<Vec<String>>>) -> Self {
        Notifier { sink }
    }

    #[call]
    fn subscribe(&mut self, channel: async_channel::Sender<String>) -> usize {
        let _ = channel.try_send("subscribed".to_owned());
        self.sink.lock().unwrap().len()
    }

    #[cast]
    fn note(&mut self, text: String) {
        self.sink.lock().unwrap().push(text);
    }

    #[terminate]
    fn on_terminate(&mut self, reason: &ExitReason) {
        self.sink.lock().unwrap().push(format!("stopped: {reason}"));
    }
}

// ---------------------------------------------------------------------------------------
// A generic (hence local) behaviour.
// ---------------------------------------------------------------------------------------

#[behavior]
pub struct Stack<T> {
    items: Vec<T>,
}

#[behavior(local)]
impl<T: Clone + Send + Sync + 'static> Stack<T> {
    #[init]
    fn init(items: Vec<T>) -> Self {
        Stack { items }
    }

    #[cast]
    fn push(&mut self, item: T) {
        self.items.push(item);
    }

    #[call]
    fn pop(&mut self) -> Option<T> {
        self.items.pop()
    }

    #[call]
    fn peek(&self) -> Option<T> {
        self.items.last().cloned()
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn a_counter_counts_through_its_generated_methods() {
    run(|node| async move {
        let counter = node.spawn::<Counter>(40).await.unwrap();
        counter.add(2).unwrap();
        assert_eq!(counter.get().await, Ok(42));
        assert_eq!(counter.reset().await, Ok(()));
        assert_eq!(
            counter.get_with_timeout(Duration::from_secs(1)).await,
            Ok(0)
        );
        counter.stop(ExitReason::Normal).await.unwrap();
        assert_matches!(counter.get().await, Err(CallError::NoProc { .. }));
        assert_matches!(counter.add(1), Err(SendError::NoProc { .. }));
    });
}

#[test]
fn generated_methods_work_on_named_refs_too() {
    run(|node| async move {
        let options = SpawnOptions::new().name("the-counter");
        node.spawn_with::<Counter>(1, options).await.unwrap();
        let counter = node.named::<Counter>("the-counter");
        counter.add(1).unwrap();
        assert_eq!(counter.get().await, Ok(2));
        let nobody = node.named::<Counter>("nobody");
        assert_matches!(nobody.get().await, Err(CallError::NoProc { .. }));
    });
}

#[test]
fn a_handlers_error_reaches_the_caller_as_the_methods_own_error() {
    run(|node| async move {
        let cache = node.spawn::<Cache>(1).await.unwrap();
        assert_eq!(cache.put("a".into(), "1".into()).await, Ok(Ok(None)));
        assert_eq!(
            cache.put("b".into(), "2".into()).await,
            Ok(Err(CacheError::Full { capacity: 1 }))
        );
        assert_eq!(cache.get("a".into()).await, Ok(Some("1".into())));
        cache.delete("a".into()).unwrap();
        assert_eq!(cache.len().await, Ok(0));
        assert!(cache.is_alive(), "a handler's Err is a reply, not a crash");
    });
}

#[test]
fn an_init_error_fails_the_spawn_with_the_methods_error_type() {
    run(|node| async move {
        let result = node.spawn::<Cache>(0).await;
        assert_eq!(
            result.err(),
            Some(SpawnError::InitFailed(
                "a cache needs room for one entry".to_owned()
            ))
        );
    });
}

#[test]
fn methods_take_several_arguments_the_context_and_sync_or_async_bodies() {
    run(|node| async move {
        let worker = node.spawn::<Worker>((10, "first".into())).await.unwrap();
        worker
            .work(Task {
                id: 1,
                payload: "second".into(),
            })
            .unwrap();
        worker
            .work_many(
                vec![
                    Task {
                        id: 2,
                        payload: "x".into()
                    };
                    3
                ],
                2,
            )
            .unwrap();
        assert_eq!(worker.status().await, Ok(17));
        assert_eq!(
            worker.labels().await,
            Ok(vec!["first".to_owned(), "second".to_owned()])
        );
        assert_eq!(worker.add(1, 2, 3).await, Ok(Ok(6)));
        assert_eq!(
            worker.add(u64::MAX, 1, 0).await,
            Ok(Err("overflow".to_owned()))
        );
        assert_eq!(worker.pid_text().await, Ok(worker.pid().to_string()));
        worker.report_to("x".into()).unwrap();
        worker.send(3).unwrap();
        assert_eq!(worker.status().await, Ok(20));
    });
}

#[test]
fn a_call_can_defer_its_reply() {
    run(|node| async move {
        let worker = node.spawn::<Worker>((0, "w".into())).await.unwrap();
        let waiting = smol::spawn({
            let worker = worker.clone();
            async move { worker.next_change().await }
        });
        eventually("the deferred call to be handled", || {
            node.process_info(worker.pid()).unwrap().message_count == 1
        })
        .await;
        worker
            .work(Task {
                id: 1,
                payload: "done".into(),
            })
            .unwrap();
        assert_eq!(within("the deferred reply", waiting).await, Ok(1));
    });
}

#[test]
fn a_deferred_reply_fails_with_exited_when_the_server_dies() {
    run(|node| async move {
        let worker = node.spawn::<Worker>((0, "w".into())).await.unwrap();
        let waiting = smol::spawn({
            let worker = worker.clone();
            async move { worker.next_change().await }
        });
        eventually("the deferred call to be handled", || {
            node.process_info(worker.pid()).unwrap().message_count == 1
        })
        .await;
        let crash = worker.crash().await;
        assert_eq!(
            crash,
            Err(CallError::Exited(ExitReason::Panic("told to crash".into())))
        );
        assert!(matches!(
            within("the deferred failure", waiting).await,
            Err(CallError::Exited(ExitReason::Panic(_)))
        ));
    });
}

#[test]
fn terminate_and_stop_from_a_method_work() {
    run(|node| async move {
        let worker = node.spawn::<Worker>((0, "w".into())).await.unwrap();
        let reason = ExitReason::Custom("done".into());
        assert_eq!(worker.quit(reason.clone()).await, Ok(()));
        assert_eq!(worker.exited().await, reason);
    });
}

#[test]
fn a_local_behaviour_carries_values_that_cannot_be_serialized() {
    run(|node| async move {
        let sink = Arc::new(Mutex::new(Vec::new()));
        let notifier = node.spawn::<Notifier>(sink.clone()).await.unwrap();
        let (tx, rx) = async_channel::unbounded();
        notifier.note("hello".into()).unwrap();
        assert_eq!(notifier.subscribe(tx).await, Ok(1));
        assert_eq!(rx.recv().await.unwrap(), "subscribed");
        notifier.stop(ExitReason::Shutdown).await.unwrap();
        assert_eq!(*sink.lock().unwrap(), vec!["hello", "stopped: shutdown"]);
    });
}

/// A state holding deferred replies whose behaviour has a non-`Sync` reply type stays
/// usable from `&self` methods.
#[behavior]
pub struct Mailman {
    waiting: Vec<ReplyTo<u32>>,
}

#[behavior(local)]
impl Mailman {
    #[init]
    fn init() -> Self {
        Mailman {
            waiting: Vec::new(),
        }
    }

    #[call]
    async fn count(&self) -> usize {
        self.waiting.len()
    }

    #[call]
    fn wait(&mut self, reply: ReplyTo<u32>) {
        self.waiting.push(reply);
    }

    /// A reply that is `Send` but not `Sync`.
    #[call]
    fn cell(&self) -> std::cell::Cell<u32> {
        std::cell::Cell::new(self.waiting.len() as u32)
    }
}

#[test]
fn deferred_replies_do_not_require_sync_replies() {
    run(|node| async move {
        let mailman = node.spawn::<Mailman>(()).await.unwrap();
        assert_eq!(mailman.count().await, Ok(0));
        assert_eq!(mailman.cell().await.map(|c| c.get()), Ok(0));
    });
}

#[test]
fn a_generic_local_behaviour_works_for_each_type() {
    run(|node| async move {
        let numbers = node.spawn::<Stack<u32>>(vec![1, 2]).await.unwrap();
        numbers.push(3).unwrap();
        assert_eq!(numbers.pop().await, Ok(Some(3)));
        assert_eq!(numbers.peek().await, Ok(Some(2)));

        let words = node.spawn::<Stack<String>>(Vec::new()).await.unwrap();
        assert_eq!(words.pop().await, Ok(None));
    });
}

#[test]
fn behaviour_names_default_to_the_module_path_unless_given() {
    assert_eq!(<Counter as BehaviorName>::NAME, "counter");
    assert_eq!(<Cache as BehaviorName>::NAME, "macros::Cache");
    assert_eq!(<Stack<u8> as BehaviorName>::NAME, "macros::Stack");
}

/// A snapshot of the wire tags (FNV-1a of `behaviour::method`, computed independently): if
/// one changes, messages of older builds no longer decode.
#[test]
fn wire_tags_are_stable() {
    assert_eq!(
        <Counter as RemoteBehavior>::TAGS,
        &[
            ("get", 0xa0a4_153d),
            ("add", 0xc571_acd6),
            ("reset", 7),
            ("type", 0x79e9_ae8b),
        ]
    );
    assert_eq!(
        <Cache as RemoteBehavior>::TAGS,
        &[
            ("put", 0x54f6_1b7f),
            ("get", 0x6c37_1356),
            ("delete", 0x3ba2_5b45),
            ("len", 0x6a01_4fb1),
        ]
    );
    assert_eq!(
        noex::__private::tag("counter", "get"),
        <Counter as RemoteBehavior>::TAGS[0].1
    );
}

#[test]
fn messages_travel_tagged_and_an_unknown_tag_is_an_error() {
    let put = __NoexCacheCall::Put("k".into(), "v".into());
    let bytes = postcard::to_allocvec(&put).unwrap();
    match postcard::from_bytes::<__NoexCacheCall>(&bytes).unwrap() {
        __NoexCacheCall::Put(key, value) => assert_eq!((key, value), ("k".into(), "v".into())),
        _ => panic!("decoded another message"),
    }
    let reply = __NoexCacheReply::Len(3);
    let bytes = postcard::to_allocvec(&reply).unwrap();
    assert!(matches!(
        postcard::from_bytes::<__NoexCacheReply>(&bytes).unwrap(),
        __NoexCacheReply::Len(3)
    ));

    // A message of a method this build does not have: an error, not another method.
    let mut foreign = postcard::to_allocvec(&(0xdead_beef_u32, ())).unwrap();
    foreign.extend_from_slice(&[0; 4]);
    let decoded = postcard::from_bytes::<__NoexCacheCall>(&foreign);
    assert!(matches!(decoded, Err(postcard::Error::SerdeDeCustom)));
    // A truncated message: an error too.
    assert!(postcard::from_bytes::<__NoexCacheCall>(&bytes[..1]).is_err());
}

/// A behaviour with byte vectors in its messages.
#[behavior]
pub struct Store {
    data: Vec<u8>,
}

#[behavior]
impl Store {
    #[init]
    fn init() -> Self {
        Store { data: Vec::new() }
    }

    #[cast]
    fn put(&mut self, data: Vec<u8>, label: String) {
        self.data = data;
        self.data.extend_from_slice(label.as_bytes());
    }

    #[call]
    fn data(&self) -> Vec<u8> {
        self.data.clone()
    }
}

#[test]
fn byte_vectors_travel_as_blocks_in_the_same_format_as_sequences() {
    let tag = |name| {
        <Store as RemoteBehavior>::TAGS
            .iter()
            .find(|(method, _)| *method == name)
            .unwrap()
            .1
    };
    let data: Vec<u8> = (0..=255).collect();
    // The bytes serde's sequence of `u8`s gives: unchanged, only faster to produce.
    let put = __NoexStoreCast::Put(data.clone(), "label".into());
    let bytes = postcard::to_allocvec(&put).unwrap();
    let as_sequence = (tag("put"), (data.clone(), "label".to_string()));
    assert_eq!(bytes, postcard::to_allocvec(&as_sequence).unwrap());
    match postcard::from_bytes::<__NoexStoreCast>(&bytes).unwrap() {
        __NoexStoreCast::Put(decoded, label) => {
            assert_eq!((decoded, label.as_str()), (data.clone(), "label"))
        }
    }
    let reply = __NoexStoreReply::Data(data.clone());
    let bytes = postcard::to_allocvec(&reply).unwrap();
    assert_eq!(bytes, postcard::to_allocvec(&(tag("data"), &data)).unwrap());
    assert!(matches!(
        postcard::from_bytes::<__NoexStoreReply>(&bytes).unwrap(),
        __NoexStoreReply::Data(decoded) if decoded == data
    ));
}

#[test]
fn register_all_makes_behaviours_spawnable_by_name() {
    run(|node| async move {
        let count = noex::register_all!(node).unwrap();
        assert!(count >= 3, "counter, cache and worker at least");
        let names: Vec<_> = node.behaviors().iter().map(|b| b.name).collect();
        assert!(names.contains(&"counter"), "{names:?}");
        assert!(names.contains(&"macros::Cache"), "{names:?}");
        assert!(
            !names.contains(&"macros::Notifier"),
            "local behaviours are not registered"
        );
        let worker = node
            .behaviors()
            .into_iter()
            .find(|b| b.name == "macros::Worker");
        assert_eq!(
            worker.map(|b| b.args_type),
            Some("(u64, String)"),
            "the init arguments' types as written"
        );

        let args = postcard::to_allocvec(&5_i64).unwrap();
        let pid = node.spawn_by_name("counter", &args).await.unwrap();
        let counter = node.server_ref::<Counter>(&pid).unwrap();
        assert_eq!(counter.get().await, Ok(5));

        assert_eq!(
            node.spawn_by_name("nothing", &args).await,
            Err(SpawnByNameError::NotFound("nothing".into()))
        );
        assert!(matches!(
            node.spawn_by_name("macros::Cache", &[0xff]).await,
            Err(SpawnByNameError::BadArgs { .. })
        ));
        let zero = postcard::to_allocvec(&0_usize).unwrap();
        assert!(matches!(
            node.spawn_by_name("macros::Cache", &zero).await,
            Err(SpawnByNameError::InitFailed { .. })
        ));
        // A local behaviour is known, and refused as such.
        assert!(!node.has_behavior("macros::Notifier"));
        assert_eq!(
            node.spawn_by_name("macros::Notifier", &args).await,
            Err(SpawnByNameError::LocalOnly("macros::Notifier".into()))
        );
        assert!(node.has_behavior("counter"));
    });
}

#[test]
fn macro_behaviours_are_supervised_like_any_other() {
    use noex::supervisor::{ChildSpec, Strategy, SupervisorSpec};
    run(|node| async move {
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(ChildSpec::worker::<Counter>("counter", 0).name("counter"));
        node.spawn::<noex::Supervisor>(spec).await.unwrap();
        let counter = node.named::<Counter>("counter");
        counter.add(5).unwrap();
        assert_eq!(counter.get().await, Ok(5));
        let first = node.whereis("counter").unwrap();
        node.kill(&first);
        eventually("the restart", || {
            node.whereis("counter").is_some_and(|pid| pid != first)
        })
        .await;
        assert_eq!(
            counter.get().await,
            Ok(0),
            "the restarted counter starts over"
        );
    });
}
